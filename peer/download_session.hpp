// download_session.hpp: one run of a download, as named steps: check the plan, fetch the chunk layer (manifest),
// keep what a .part already holds (resume), fetch the rest from every source at once (transfer: schedule, send,
// take replies, take verified chunks, drop silent or lying sources), and report (finish).
// The receive loop never hashes and never writes: a ChunkPipeline does, on its own threads.
#pragma once

#include "common/byte_bucket.hpp"
#include "peer/chunk_pipeline.hpp"
#include "peer/chunk_scheduler.hpp"
#include "peer/downloader.hpp"
#include "peer/source_link.hpp"

#include <zmq.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace zshare::peer {

class DownloadSession {
 public:
  DownloadSession(zmq::context_t& ctx, const DownloadOptions& options, const DownloadPlan& plan, PartFile& part,
                  const ProgressFn& progress, const OrderedSink& sink);
  // Never throws for network or source trouble (that is the report's error); throws DestinationError when the
  // file cannot be written, and whatever the sink throws.
  DownloadReport run();

 private:
  using Clock = SourceLink::Clock;

  std::optional<std::string> check_plan();  // what makes the index's plan impossible, if anything
  void await_dialled_sources();             // sources behind NAT: until they have dialled out to us
  bool fetch_manifest();                    // the chunk layer, verified against the content id
  void resume();                            // chunks an earlier run left good in the .part
  bool transfer();                          // every other chunk; false when it gave up (report.error says why)
  void top_up();                            // requests up to each source's window
  void receive(std::size_t source, Clock::time_point now);
  void on_chunk_reply(std::size_t source, zmq::message_t frame, Clock::time_point now);
  void take_checked();                      // chunks the pipeline verified (or refused)
  void checked(const ChunkChecked& chunk);  // one of them: counted, done or asked again
  void drop(std::size_t source, std::string why);
  void stream_in_order();                   // the sink gets the verified prefix
  bool may_ask();                           // the download cap
  void report_progress();
  std::size_t live_count() const;
  std::uint64_t chunk_bytes(std::uint64_t index) const;
  bool stopped() const { return options_.stop && options_.stop->load(); }
  DownloadReport finish(bool ok, std::string error);

  zmq::context_t& ctx_;
  const DownloadOptions& options_;
  const DownloadPlan& plan_;
  PartFile& part_;
  const ProgressFn& progress_;
  const OrderedSink& sink_;
  const Clock::time_point started_ = Clock::now();

  DownloadReport report_;
  std::uint64_t chunks_ = 0;
  unsigned height_ = 0;
  std::uint32_t window_ = 1;       // requests in flight per source (options_.window, fewer for large chunks)
  std::vector<std::unique_ptr<SourceLink>> links_;
  std::uint64_t next_id_ = 1;
  std::vector<Hash> layer_;
  std::unique_ptr<ChunkScheduler> scheduler_;
  std::unique_ptr<ChunkPipeline> pipeline_;
  std::uint64_t done_bytes_ = 0;   // verified bytes in the file, resumed ones included
  std::uint64_t streamed_ = 0;     // chunks given to the sink
  ByteBucket bucket_;              // the download cap (--rate-limit)
};

}  // namespace zshare::peer
