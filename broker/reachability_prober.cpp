// reachability_prober.cpp: a job queue under one mutex and a few workers, each probing one endpoint at a time.
#include "broker/reachability_prober.hpp"

#include "common/port_probe.hpp"

namespace zshare::broker {

ReachabilityProber::ReachabilityProber(std::chrono::milliseconds timeout, std::size_t workers) : timeout_(timeout) {
  for (std::size_t i = 0; i < workers; ++i) workers_.emplace_back([this] { work(); });
}

ReachabilityProber::~ReachabilityProber() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (auto& w : workers_) w.join();  // a probe in progress ends within `timeout`
}

void ReachabilityProber::probe(std::string user, std::string endpoint) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (jobs_.size() >= kMaxQueued) return;
    jobs_.push_back(Job{std::move(user), std::move(endpoint)});
  }
  wake_.notify_one();
}

std::vector<ReachabilityProber::Result> ReachabilityProber::take() {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<Result> out;
  out.swap(results_);
  return out;
}

void ReachabilityProber::work() {
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      if (stopping_) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    // Not a tcp://HOST:PORT endpoint, or HOST does not resolve here: nobody can dial it from here either.
    const bool open = tcp_port_open(job.endpoint, timeout_).value_or(false);
    std::lock_guard<std::mutex> lock(mutex_);
    results_.push_back(Result{std::move(job.user), std::move(job.endpoint), open});
  }
}

}  // namespace zshare::broker
