// chunk_pipeline.cpp: a queue of jobs under one mutex, N workers, one eventfd to wake the receive loop. A worker
// holds no lock while it hashes or writes.
#include "peer/chunk_pipeline.hpp"

#include "common/content_hash.hpp"

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <sys/eventfd.h>
#include <unistd.h>

namespace zshare::peer {

namespace {

bool all_zero(const char* p, std::size_t n) {
  return n == 0 || (p[0] == 0 && std::memcmp(p, p + 1, n - 1) == 0);
}

}  // namespace

ChunkPipeline::ChunkPipeline(const std::vector<Hash>& layer, unsigned height, std::uint32_t chunk_size,
                             PartFile& part, bool skip_zero_chunks, unsigned threads)
    : layer_(layer), height_(height), chunk_size_(chunk_size), part_(part), skip_zero_chunks_(skip_zero_chunks) {
  event_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (event_fd_ < 0) throw std::runtime_error(std::string("eventfd: ") + std::strerror(errno));
  for (unsigned i = 0; i < std::max(1u, threads); ++i) threads_.emplace_back([this] { work(); });
}

ChunkPipeline::~ChunkPipeline() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  ready_.notify_all();
  for (auto& t : threads_) t.join();
  ::close(event_fd_);
}

void ChunkPipeline::submit(ChunkJob job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    jobs_.push_back(std::move(job));
  }
  ready_.notify_one();
}

std::vector<ChunkChecked> ChunkPipeline::collect() {
  std::uint64_t ignored = 0;
  while (::read(event_fd_, &ignored, sizeof ignored) < 0 && errno == EINTR) {
  }
  std::vector<ChunkChecked> out;
  std::lock_guard<std::mutex> lock(mu_);
  if (!write_error_.empty()) throw DestinationError(write_error_);
  out.swap(checked_);
  return out;
}

void ChunkPipeline::work() {
  ChunkHasher hasher;
  for (;;) {
    ChunkJob job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      ready_.wait(lock, [&] { return stop_ || !jobs_.empty(); });
      if (stop_) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    const char* data = static_cast<const char*>(job.frame.data()) + job.offset;
    ChunkChecked result{job.source, job.index, hasher.node(data, job.size, height_) == layer_[job.index]};
    std::string error;
    if (result.good && !(skip_zero_chunks_ && all_zero(data, job.size))) {
      try {
        part_.write(data, job.size, std::uint64_t{job.index} * chunk_size_);
      } catch (const DestinationError& e) {
        error = e.what();
        result.good = false;
      }
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!error.empty() && write_error_.empty()) write_error_ = error;
      checked_.push_back(result);
    }
    const std::uint64_t one = 1;
    while (::write(event_fd_, &one, sizeof one) < 0 && errno == EINTR) {
    }
  }
}

}  // namespace zshare::peer
