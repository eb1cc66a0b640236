// chunk_scheduler.hpp: which chunk each source is asked for next, and what becomes of a chunk whose request
// failed. No sockets and no clock, so its rules are unit-tested in milliseconds (tests/unit/test_chunk_scheduler.cpp).
// A request is a ticket (source, chunk): assigned once, released once, with how it ended. A chunk is asked of
// one source at a time; a chunk that came back bad or was lost goes to the front of the queue, and is not given
// back to the source that sent it bad while another source is there to ask.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

namespace zshare::peer {

class ChunkScheduler {
 public:
  enum class Outcome {
    kVerified,  // the chunk matched its node and is in the file
    kBad,       // its bytes did not match: ask someone else
    kLost,      // no answer (the source was dropped, or answered with a failure): ask again
    kUnused,    // a reply for a chunk already verified meanwhile
  };

  ChunkScheduler(std::uint64_t chunks, std::size_t sources);

  // A chunk already good before any request (found in a resumed .part).
  void mark_done(std::uint32_t index);
  // The next chunk for `source` to fetch, or nothing when every chunk is done or asked already. `others` says
  // whether another source is live (only then does a chunk avoid the source that sent it bad).
  std::optional<std::uint32_t> assign(std::size_t source, bool others);
  // Ends a ticket. A verified chunk is done (whoever's ticket it was); a bad or lost one, if nobody else is
  // fetching it, goes to the front of the queue.
  void release(std::size_t source, std::uint32_t index, Outcome outcome);

  bool done(std::uint32_t index) const { return done_[index] != 0; }
  std::uint64_t done_count() const { return done_count_; }
  bool complete() const { return done_count_ == done_.size(); }
  std::size_t outstanding(std::size_t source) const { return outstanding_[source]; }  // its tickets still open

 private:
  static constexpr std::int32_t kNobody = -1;
  std::vector<std::uint8_t> done_;
  std::vector<std::uint16_t> asked_;   // open tickets per chunk
  std::vector<std::int32_t> avoid_;    // the source that last sent it bad
  std::vector<std::size_t> outstanding_;
  std::deque<std::uint32_t> retry_;
  std::uint64_t next_fresh_ = 0;
  std::uint64_t done_count_ = 0;
};

}  // namespace zshare::peer
