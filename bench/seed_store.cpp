// seed_store.cpp: bulk-loads the synthetic catalogue into a new broker database (seed_store.hpp), in transactions
// of kBatch rows, through broker::Store (the same statements the broker runs for REGISTER and PUBLISH).
#include "bench/seed_store.hpp"

#include "bench/workload.hpp"
#include "broker/store.hpp"
#include "common/content_hash.hpp"
#include "common/timestamp.hpp"

#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <stdexcept>

namespace zshare::bench {

namespace {

constexpr std::uint64_t kBatch = 200000;

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Runs write(i) for i in [0, count) in transactions of kBatch; reports progress every tenth.
template <class Write>
void in_batches(broker::Store& store, const char* what, std::uint64_t count, Write&& write) {
  const auto t0 = std::chrono::steady_clock::now();
  std::uint64_t next_report = count / 10;
  for (std::uint64_t i = 0; i < count;) {
    store.begin();
    for (const std::uint64_t end = std::min(count, i + kBatch); i < end; ++i) write(i);
    store.commit();
    if (count >= 1000000 && i >= next_report) {
      std::fprintf(stderr, "seed: %s %" PRIu64 "/%" PRIu64 " in %.1f s\n", what, i, count, seconds_since(t0));
      next_report += count / 10;
    }
  }
}

}  // namespace

int seed_store(const std::string& db, std::uint64_t users, std::uint64_t files, const std::string& key) {
  if (users == 0) throw std::runtime_error("--users must be at least 1");
  if (!broker::is_postgres_uri(db) && std::filesystem::exists(db))
    throw std::runtime_error(db + " exists: seed writes a new database only");
  const auto t0 = std::chrono::steady_clock::now();
  const std::unique_ptr<broker::Store> store = broker::open_store(db);
  const std::string ts = iso8601_utc(now_epoch_ms());
  in_batches(*store, "users", users, [&](std::uint64_t u) { store->insert_user(user_name(u), key, ts); });
  in_batches(*store, "files", files, [&](std::uint64_t i) {
    FileSpec f = file_spec(i, users);
    broker::FileRecord r;
    r.cid = f.cid;
    r.size = f.size;
    r.name = std::move(f.name);
    r.description = std::move(f.description);
    r.chunk_size = static_cast<std::uint32_t>(kDefaultChunkSize);
    r.live = true;
    store->insert_file(f.user, r, ts);
  });
  std::printf("RESULT seed users=%" PRIu64 " files=%" PRIu64 " seconds=%.3f\n", users, files, seconds_since(t0));
  return 0;
}

}  // namespace zshare::bench
