// chunk_pipeline.hpp: a download's verifying stage, off the receive loop. Worker threads fold each chunk's 16 KiB
// blocks up to its node, compare it with the chunk layer, and pwrite a good chunk into the .part straight from the
// message it arrived in; the receive loop only decodes replies and hands them over. Memory stays bounded because
// the scheduler counts a chunk against its source's window until it comes out of here.
#pragma once

#include "common/validate.hpp"
#include "peer/part_file.hpp"

#include <zmq.hpp>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace zshare::peer {

struct ChunkJob {
  std::size_t source = 0;
  std::uint32_t index = 0;
  zmq::message_t frame;     // the CHUNK reply; the chunk's bytes are at frame.data() + offset
  std::size_t offset = 0;
  std::size_t size = 0;
};

struct ChunkChecked {
  std::size_t source = 0;
  std::uint32_t index = 0;
  bool good = false;        // it matched its node and is written
};

class ChunkPipeline {
 public:
  // `skip_zero_chunks`: the .part is fresh and sparse, so an all-zero chunk needs no write.
  ChunkPipeline(const std::vector<Hash>& layer, unsigned height, std::uint32_t chunk_size, PartFile& part,
                bool skip_zero_chunks, unsigned threads);
  ~ChunkPipeline();
  ChunkPipeline(const ChunkPipeline&) = delete;
  ChunkPipeline& operator=(const ChunkPipeline&) = delete;

  void submit(ChunkJob job);
  // What the workers finished since the last call. Throws DestinationError when a write failed (a full disk...).
  std::vector<ChunkChecked> collect();
  // Readable while results wait: poll it beside the sockets (an eventfd).
  int wake_fd() const { return event_fd_; }

 private:
  void work();

  const std::vector<Hash>& layer_;
  const unsigned height_;
  const std::uint32_t chunk_size_;
  PartFile& part_;
  const bool skip_zero_chunks_;
  int event_fd_ = -1;
  std::mutex mu_;
  std::condition_variable ready_;
  std::deque<ChunkJob> jobs_;
  std::vector<ChunkChecked> checked_;
  std::string write_error_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace zshare::peer
