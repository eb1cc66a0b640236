// log_file.hpp: the append-only operations log. Appends a batch with one write and one fdatasync, skipping
// records already stored (per broker id, every seq up to the highest stored one). At open it repairs a
// torn last line left by a crash and rebuilds the high-water marks from the file itself.
#pragma once

#include "rpclog/log_record.hpp"

#include <cstdint>
#include <mutex>
#include <ostream>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

namespace zshare::rpclog {

struct LogFileError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class LogFile {
 public:
  // `report` receives one line about a repaired tail, if any.
  LogFile(std::string path, std::ostream& report);
  ~LogFile();
  LogFile(const LogFile&) = delete;
  LogFile& operator=(const LogFile&) = delete;

  struct Appended {
    std::size_t written = 0;     // records new to the log
    std::size_t duplicates = 0;  // records already stored, acknowledged again
  };
  // Durable when it returns. Throws LogFileError on I/O failure (then nothing of the batch is acknowledged).
  Appended append(std::vector<LogRecord> batch);

  // The newest `last` records matching user and operation (empty matches any), oldest first.
  std::vector<LogRecord> query(const std::string& user, const std::string& operation, std::size_t last) const;

  std::uint64_t high_water(const std::string& broker_id) const;
  std::size_t repaired_bytes() const { return repaired_bytes_; }
  const std::string& path() const { return path_; }

 private:
  void repair_and_scan(std::ostream& report);

  std::string path_;
  int fd_ = -1;
  std::size_t repaired_bytes_ = 0;
  std::unordered_map<std::string, std::uint64_t> high_water_;
  mutable std::mutex mutex_;
};

}  // namespace zshare::rpclog
