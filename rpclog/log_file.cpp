// log_file.cpp: POSIX I/O on one descriptor opened O_APPEND; the torn-tail repair truncates to the last
// newline, which is safe because a record is acknowledged only after its batch's fdatasync.
#include "rpclog/log_file.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <fcntl.h>
#include <fstream>
#include <sys/stat.h>
#include <unistd.h>

namespace zshare::rpclog {

namespace {

std::string errno_text(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + std::strerror(errno);
}

}  // namespace

LogFile::LogFile(std::string path, std::ostream& report) : path_(std::move(path)) {
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) throw LogFileError(errno_text("cannot open log", path_));
  repair_and_scan(report);
}

LogFile::~LogFile() {
  if (fd_ >= 0) ::close(fd_);
}

void LogFile::repair_and_scan(std::ostream& report) {
  struct stat st {};
  if (::fstat(fd_, &st) != 0) throw LogFileError(errno_text("cannot stat log", path_));
  std::ifstream in(path_, std::ios::binary);
  std::string line;
  std::uint64_t good_bytes = 0;
  while (std::getline(in, line)) {
    if (in.eof()) break;  // no newline after it: a torn last line
    good_bytes += line.size() + 1;
    if (auto r = parse_line(line)) {
      auto& hw = high_water_[r->broker_id];
      hw = std::max(hw, r->seq);
    }
  }
  if (good_bytes < static_cast<std::uint64_t>(st.st_size)) {
    repaired_bytes_ = static_cast<std::size_t>(st.st_size - good_bytes);
    if (::ftruncate(fd_, static_cast<off_t>(good_bytes)) != 0 || ::fsync(fd_) != 0) {
      throw LogFileError(errno_text("cannot repair log", path_));
    }
    report << "zshare-rpclog: repaired " << path_ << ": dropped a torn last line of " << repaired_bytes_
           << " bytes (never acknowledged; the broker sends it again)" << std::endl;
  }
}

LogFile::Appended LogFile::append(std::vector<LogRecord> batch) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::stable_sort(batch.begin(), batch.end(), [](const LogRecord& a, const LogRecord& b) {
    return a.broker_id == b.broker_id ? a.seq < b.seq : a.broker_id < b.broker_id;
  });
  Appended result;
  std::string out;
  std::unordered_map<std::string, std::uint64_t> raised;
  for (const auto& r : batch) {
    auto it = raised.find(r.broker_id);
    const std::uint64_t hw = it != raised.end() ? it->second : high_water(r.broker_id);
    if (r.seq <= hw) {
      ++result.duplicates;
      continue;
    }
    out += format_line(r);
    raised[r.broker_id] = r.seq;
    ++result.written;
  }
  if (out.empty()) return result;
  // On any failure the file goes back to its size before the batch: a resend must neither double records
  // nor glue a new line onto a partial one.
  const off_t start = ::lseek(fd_, 0, SEEK_END);
  if (start < 0) throw LogFileError(errno_text("cannot seek log", path_));
  auto undo_and_throw = [&](const std::string& what) {
    const std::string why = errno_text(what, path_);
    if (::ftruncate(fd_, start) != 0) {
      throw LogFileError(why + "; and cannot truncate it back: " + std::strerror(errno));
    }
    throw LogFileError(why);
  };
  const char* p = out.data();
  std::size_t left = out.size();
  while (left > 0) {
    ssize_t n = ::write(fd_, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      undo_and_throw("cannot write log");
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  if (::fdatasync(fd_) != 0) undo_and_throw("cannot sync log");
  for (const auto& [broker, seq] : raised) high_water_[broker] = seq;
  return result;
}

std::uint64_t LogFile::high_water(const std::string& broker_id) const {
  auto it = high_water_.find(broker_id);
  return it == high_water_.end() ? 0 : it->second;
}

std::vector<LogRecord> LogFile::query(const std::string& user, const std::string& operation,
                                      std::size_t last) const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::deque<LogRecord> newest;
  std::ifstream in(path_, std::ios::binary);
  std::string line;
  while (last > 0 && std::getline(in, line)) {
    auto r = parse_line(line);
    if (!r || (!user.empty() && r->user != user) || (!operation.empty() && r->operation != operation)) continue;
    newest.push_back(std::move(*r));
    if (newest.size() > last) newest.pop_front();
  }
  return {newest.begin(), newest.end()};
}

}  // namespace zshare::rpclog
