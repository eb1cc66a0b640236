// test_log_file.cpp: the operations log against real files and a real in-process ONC-RPC server:
// the line format both ways, append-once by (broker id, seq) across batches and reopens, the torn-tail
// repair at open, QUERY's filters, LOG/QUERY over TCP through RpcLogClient, and its connect deadline.
#include "rpclog/log_file.hpp"
#include "rpclog/log_record.hpp"
#include "rpclog/rpclog_client.hpp"
#include "rpclog/rpclog_server.hpp"
#include "loopback.hpp"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <netinet/in.h>
#include <poll.h>
#include <sstream>
#include <string>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace zshare::rpclog;

namespace Catch {
template <>
struct StringMaker<LogRecord> {
  static std::string convert(const LogRecord& r) {
    std::string line = format_line(r);
    line.pop_back();
    return "{" + line + "}";
  }
};
}  // namespace Catch

namespace {

struct TempLog {
  TempLog() {
    char dir[] = "/tmp/zshare-logfile-XXXXXX";
    REQUIRE(mkdtemp(dir) != nullptr);
    folder = dir;
    path = folder + "/operations.log";
  }
  ~TempLog() { std::system(("rm -rf '" + folder + "'").c_str()); }
  std::string folder;
  std::string path;
};

LogRecord record(const std::string& broker, std::uint64_t seq, const std::string& user = "alice",
                 const std::string& op = "PUBLISH", const std::string& args = "") {
  LogRecord r;
  r.broker_id = broker;
  r.seq = seq;
  r.timestamp = "2024-05-01T12:00:00.000Z";
  r.ts_local = seq % 3 == 0;
  r.user = user;
  r.operation = op;
  r.args = args.empty() ? "file-" + std::to_string(seq) + ".dat " + std::to_string(seq * 10) + " abcdef" : args;
  return r;
}

std::vector<LogRecord> range(const std::string& broker, std::uint64_t from, std::uint64_t to) {
  std::vector<LogRecord> out;
  for (std::uint64_t s = from; s <= to; ++s) out.push_back(record(broker, s));
  return out;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::string> lines_of(const std::string& path) {
  std::vector<std::string> out;
  std::istringstream in(slurp(path));
  std::string line;
  while (std::getline(in, line)) out.push_back(line);
  return out;
}

// Every line of the file parsed; fails the test on a line that does not parse.
std::vector<LogRecord> records_of(const std::string& path) {
  std::vector<LogRecord> out;
  for (const auto& line : lines_of(path)) {
    auto r = parse_line(line);
    INFO("line: " << line);
    REQUIRE(r.has_value());
    out.push_back(*r);
  }
  return out;
}

std::vector<std::uint64_t> seqs(const std::vector<LogRecord>& rs, const std::string& broker) {
  std::vector<std::uint64_t> out;
  for (const auto& r : rs) {
    if (r.broker_id == broker) out.push_back(r.seq);
  }
  return out;
}

std::vector<std::uint64_t> iota(std::uint64_t from, std::uint64_t to) {
  std::vector<std::uint64_t> out;
  for (std::uint64_t s = from; s <= to; ++s) out.push_back(s);
  return out;
}

std::string line_without_newline(const LogRecord& r) {
  std::string line = format_line(r);
  REQUIRE(!line.empty());
  REQUIRE(line.back() == '\n');
  line.pop_back();
  return line;
}

// A TCP port on 127.0.0.1 that nothing listens on right now.
std::uint16_t unused_port() {
  std::uint16_t port = 0;
  ::close(zshare::test::bound_loopback_socket(port));
  return port;
}

// A loopback port where connect() neither succeeds nor fails, as with a host that went away: a listener with
// backlog 0 that never accepts, its accept queue filled, so Linux drops every further SYN.
struct Blackhole {
  Blackhole() {
    listener = zshare::test::bound_loopback_socket(port, SOCK_CLOEXEC);
    REQUIRE(::listen(listener, 0) == 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    // Connect until one connect is still pending after a second: its SYN was dropped.
    for (int i = 0; i < 16 && !holes; ++i) {
      const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      REQUIRE(fd >= 0);
      fillers.push_back(fd);
      if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) continue;
      if (errno != EINPROGRESS) break;
      pollfd p{fd, POLLOUT, 0};
      holes = ::poll(&p, 1, 1000) == 0;
    }
  }
  ~Blackhole() {
    for (int fd : fillers) ::close(fd);
    ::close(listener);
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port); }
  int listener = -1;
  std::uint16_t port = 0;
  bool holes = false;  // false: this kernel never left a connect pending, so there is nothing to test
  std::vector<int> fillers;
};

// An RpcLogServer on a free port, served by a thread until destruction.
struct ServedLog {
  explicit ServedLog(const std::string& path) : log(path, report), server(log, "127.0.0.1", 0, report) {
    thread = std::thread([this] { server.run(stop); });
  }
  ~ServedLog() {
    stop.store(true);
    thread.join();
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(server.port()); }
  std::ostringstream report;
  LogFile log;
  RpcLogServer server;
  std::atomic<bool> stop{false};
  std::thread thread;
};

}  // namespace

TEST_CASE("log line: format and parse round trip", "[rpclog][format]") {
  SECTION("a plain record, server stamp") {
    LogRecord r = record("0123456789abcdef", 42, "alice", "PUBLISH", "song.mp3 1234 ab12");
    r.ts_local = false;
    CHECK(format_line(r) == "2024-05-01T12:00:00.000Z alice PUBLISH song.mp3 1234 ab12\t#0123456789abcdef:42\n");
    auto back = parse_line(line_without_newline(r));
    REQUIRE(back);
    CHECK(*back == r);
  }
  SECTION("the local-stamp marker") {
    LogRecord r = record("b", 7, "bob", "CONNECT", "tcp://127.0.0.1:7000");
    r.ts_local = true;
    const std::string line = format_line(r);
    CHECK(line.rfind("2024-05-01T12:00:00.000Z* bob CONNECT ", 0) == 0);
    auto back = parse_line(line_without_newline(r));
    REQUIRE(back);
    CHECK(back->ts_local);
    CHECK(back->timestamp == "2024-05-01T12:00:00.000Z");
    CHECK(*back == r);
  }
  SECTION("spaces in args, leading, doubled and trailing, survive") {
    LogRecord r = record("b", 8, "carol", "PUBLISH", "  my holiday  video.mkv 99 ff ");
    auto back = parse_line(line_without_newline(r));
    REQUIRE(back);
    CHECK(back->args == "  my holiday  video.mkv 99 ff ");
    CHECK(*back == r);
  }
  SECTION("empty args") {
    LogRecord r = record("b", 9, "dave", "REGISTER", "x");
    r.args.clear();
    CHECK(format_line(r) == "2024-05-01T12:00:00.000Z* dave REGISTER\t#b:9\n");
    auto back = parse_line(line_without_newline(r));
    REQUIRE(back);
    CHECK(back->args.empty());
    CHECK(*back == r);
  }
  SECTION("a colon in the broker id and a large seq") {
    LogRecord r = record("host:1", 18446744073709551615ULL, "erin", "DELETE", "a.txt");
    auto back = parse_line(line_without_newline(r));
    REQUIRE(back);
    CHECK(*back == r);
  }
  SECTION("control bytes never break the line or forge the key") {
    LogRecord r = record("b", 10, "fr\ted", "DEL\nETE", "evil\t#other:999\nsecond line\r\x01\x7f end");
    r.timestamp = "2024 05\t01";
    const std::string line = format_line(r);
    CHECK(line.find('\n') == line.size() - 1);            // one line
    CHECK(line.find('\t') == line.rfind('\t'));           // one tab: the key's
    CHECK(line.find('\r') == std::string::npos);
    CHECK(line.find('\x01') == std::string::npos);
    CHECK(line.find('\x7f') == std::string::npos);
    auto back = parse_line(line_without_newline(r));
    REQUIRE(back);
    CHECK(back->broker_id == "b");
    CHECK(back->seq == 10);
    CHECK(back->timestamp == "2024_05_01");
    CHECK(back->user == "fr_ed");
    CHECK(back->operation == "DEL_ETE");
    CHECK(back->args == "evil #other:999 second line    end");
  }
  SECTION("lines that are not ours") {
    CHECK_FALSE(parse_line(""));
    CHECK_FALSE(parse_line("hello world"));
    CHECK_FALSE(parse_line("ts alice PUBLISH x\t#b"));         // no seq
    CHECK_FALSE(parse_line("ts alice PUBLISH x\t#b:"));        // empty seq
    CHECK_FALSE(parse_line("ts alice PUBLISH x\t#b:12x"));     // not a number
    CHECK_FALSE(parse_line("ts alice PUBLISH x\t#b:-1"));      // not unsigned
    CHECK_FALSE(parse_line("ts alice PUBLISH x #b:12"));       // no tab before the key
  }
}

TEST_CASE("log file: a resent or overlapping batch is stored once, also after a reopen", "[rpclog][logfile]") {
  TempLog t;
  std::ostringstream report;
  {
    LogFile log(t.path, report);
    CHECK(log.high_water("b1") == 0);
    auto a = log.append(range("b1", 1, 5));
    CHECK(a.written == 5);
    CHECK(a.duplicates == 0);
    CHECK(log.high_water("b1") == 5);

    auto resent = log.append(range("b1", 1, 5));
    CHECK(resent.written == 0);
    CHECK(resent.duplicates == 5);

    auto overlap = log.append(range("b1", 4, 8));
    CHECK(overlap.written == 3);
    CHECK(overlap.duplicates == 2);
    CHECK(log.high_water("b1") == 8);

    // Another broker's seqs are its own.
    auto other = log.append(range("b2", 1, 3));
    CHECK(other.written == 3);
    CHECK(other.duplicates == 0);
    CHECK(log.high_water("b2") == 3);
    CHECK(log.high_water("b1") == 8);
  }
  auto rs = records_of(t.path);
  CHECK(rs.size() == 11);
  CHECK(seqs(rs, "b1") == iota(1, 8));
  CHECK(seqs(rs, "b2") == iota(1, 3));
  for (const auto& r : rs) CHECK(r == record(r.broker_id, r.seq));  // every field, as sent

  // Reopen: the high-water marks come from the file itself.
  {
    LogFile log(t.path, report);
    CHECK(log.repaired_bytes() == 0);
    CHECK(log.high_water("b1") == 8);
    CHECK(log.high_water("b2") == 3);
    auto again = log.append(range("b1", 6, 10));
    CHECK(again.written == 2);
    CHECK(again.duplicates == 3);
    auto b2 = log.append(range("b2", 1, 3));
    CHECK(b2.written == 0);
    CHECK(b2.duplicates == 3);
  }
  CHECK(report.str().empty());  // nothing to repair in a clean file
  rs = records_of(t.path);
  CHECK(rs.size() == 13);
  CHECK(seqs(rs, "b1") == iota(1, 10));
  CHECK(seqs(rs, "b2") == iota(1, 3));
}

TEST_CASE("log file: records out of order in one batch are written in seq order, each once", "[rpclog][logfile]") {
  TempLog t;
  std::ostringstream report;
  LogFile log(t.path, report);
  std::vector<LogRecord> batch = {record("b1", 3), record("b2", 2), record("b1", 1), record("b2", 1),
                                  record("b1", 2), record("b1", 3) /* twice in the same batch */};
  auto a = log.append(batch);
  CHECK(a.written == 5);
  CHECK(a.duplicates == 1);
  auto rs = records_of(t.path);
  CHECK(rs.size() == 5);
  CHECK(seqs(rs, "b1") == iota(1, 3));
  CHECK(seqs(rs, "b2") == iota(1, 2));

  auto b = log.append({record("b1", 5), record("b1", 2), record("b1", 4)});
  CHECK(b.written == 2);
  CHECK(b.duplicates == 1);
  CHECK(seqs(records_of(t.path), "b1") == iota(1, 5));

  auto empty = log.append({});
  CHECK(empty.written == 0);
  CHECK(empty.duplicates == 0);
}

TEST_CASE("log file: a torn last line is cut at open, reported, and later appends are intact", "[rpclog][logfile]") {
  TempLog t;
  {
    std::ostringstream report;
    LogFile log(t.path, report);
    log.append(range("b1", 1, 3));
  }
  const std::string clean = slurp(t.path);
  REQUIRE(clean.size() > 0);

  SECTION("a partial line") {
    const std::string torn = "2024-05-01T12:00:00.000Z alice PUBL";
    { std::ofstream(t.path, std::ios::app | std::ios::binary) << torn; }
    REQUIRE(slurp(t.path).size() == clean.size() + torn.size());

    std::ostringstream report;
    LogFile log(t.path, report);
    CHECK(log.repaired_bytes() == torn.size());
    CHECK(report.str().find("repaired") != std::string::npos);
    CHECK(report.str().find(t.path) != std::string::npos);
    CHECK(report.str().find(std::to_string(torn.size()) + " bytes") != std::string::npos);
    CHECK(slurp(t.path) == clean);  // cut at open, before any append
    CHECK(log.high_water("b1") == 3);

    auto a = log.append(range("b1", 3, 5));
    CHECK(a.written == 2);
    CHECK(a.duplicates == 1);
    auto rs = records_of(t.path);  // every line parses: nothing glued to the torn bytes
    CHECK(seqs(rs, "b1") == iota(1, 5));
    CHECK(log.query("", "", 100).size() == 5);
  }
  SECTION("a whole record but its newline: not counted as stored, so its resend is written") {
    const std::string torn = line_without_newline(record("b1", 4));
    { std::ofstream(t.path, std::ios::app | std::ios::binary) << torn; }

    std::ostringstream report;
    LogFile log(t.path, report);
    CHECK(log.repaired_bytes() == torn.size());
    CHECK(report.str().find("repaired") != std::string::npos);
    CHECK(log.high_water("b1") == 3);
    auto a = log.append(range("b1", 4, 4));
    CHECK(a.written == 1);
    CHECK(seqs(records_of(t.path), "b1") == iota(1, 4));
  }
  SECTION("a torn line alone in the file") {
    { std::ofstream(t.path, std::ios::trunc | std::ios::binary) << "2024-05"; }
    std::ostringstream report;
    LogFile log(t.path, report);
    CHECK(log.repaired_bytes() == 7);
    CHECK(slurp(t.path).empty());
    CHECK(log.high_water("b1") == 0);
    log.append(range("b1", 1, 2));
    CHECK(seqs(records_of(t.path), "b1") == iota(1, 2));
  }
  SECTION("reopening the repaired file reports nothing more") {
    { std::ofstream(t.path, std::ios::app | std::ios::binary) << "x"; }
    {
      std::ostringstream report;
      LogFile log(t.path, report);
      CHECK(log.repaired_bytes() == 1);
    }
    std::ostringstream report;
    LogFile log(t.path, report);
    CHECK(log.repaired_bytes() == 0);
    CHECK(report.str().empty());
    CHECK(slurp(t.path) == clean);
  }
}

// KNOWN BUG (reported, not fixed here): LogFile::append leaves the bytes of a failed write in the file. A short
// write followed by an error (disk full; here RLIMIT_FSIZE) leaves complete lines that were never acknowledged,
// so the resent batch writes them again, and a partial line the next append glues its first line to.
TEST_CASE("log file: a failed write leaves nothing behind that a resend doubles or corrupts",
          "[rpclog][logfile]") {
  TempLog t;
  std::ostringstream report;
  LogFile log(t.path, report);
  const auto batch = range("b1", 1, 20);
  log.append({batch.begin(), batch.begin() + 5});
  const std::string before = slurp(t.path);

  // Room for two and a half more lines: the write of the rest of the batch is cut short, then fails.
  rlimit old{};
  REQUIRE(::getrlimit(RLIMIT_FSIZE, &old) == 0);
  rlimit small = old;
  small.rlim_cur = before.size() + format_line(batch[5]).size() * 5 / 2;
  auto previous = std::signal(SIGXFSZ, SIG_IGN);
  REQUIRE(::setrlimit(RLIMIT_FSIZE, &small) == 0);
  bool threw = false;
  try {
    log.append(batch);
  } catch (const LogFileError&) {
    threw = true;
  }
  REQUIRE(::setrlimit(RLIMIT_FSIZE, &old) == 0);
  std::signal(SIGXFSZ, previous);
  REQUIRE(threw);  // nothing of it acknowledged
  CHECK(log.high_water("b1") == 5);

  auto again = log.append(batch);  // the broker resends the whole batch
  CHECK(again.written == 15);
  const auto lines = lines_of(t.path);
  CHECK(lines.size() == 20);
  std::vector<LogRecord> rs;
  for (const auto& line : lines) {
    auto r = parse_line(line);
    INFO("line: " << line);
    CHECK(r.has_value());
    if (r) rs.push_back(*r);
  }
  CHECK(rs == batch);  // each once, every field intact
}

TEST_CASE("log file: query by user, by operation, the last N", "[rpclog][logfile][query]") {
  TempLog t;
  std::ostringstream report;
  LogFile log(t.path, report);
  std::vector<LogRecord> batch;
  const char* users[] = {"alice", "bob", "carol"};
  const char* ops[] = {"REGISTER", "PUBLISH", "PUBLISH", "DELETE"};
  for (std::uint64_t s = 1; s <= 24; ++s) {
    batch.push_back(record("b1", s, users[s % 3], ops[s % 4], "arg-" + std::to_string(s)));
  }
  log.append(batch);

  auto want = [&](const std::string& user, const std::string& op, std::size_t last) {
    std::vector<LogRecord> match;
    for (const auto& r : batch) {
      if ((user.empty() || r.user == user) && (op.empty() || r.operation == op)) match.push_back(r);
    }
    if (match.size() > last) match.erase(match.begin(), match.end() - static_cast<std::ptrdiff_t>(last));
    return match;
  };

  CHECK(log.query("", "", 100) == batch);
  CHECK(log.query("", "", 5) == want("", "", 5));
  CHECK(log.query("", "", 5).front().seq == 20);  // the newest five, oldest first
  CHECK(log.query("alice", "", 100) == want("alice", "", 100));
  CHECK(log.query("alice", "", 100).size() == 8);
  CHECK(log.query("", "PUBLISH", 100) == want("", "PUBLISH", 100));
  CHECK(log.query("", "PUBLISH", 100).size() == 12);
  CHECK(log.query("bob", "PUBLISH", 2) == want("bob", "PUBLISH", 2));
  CHECK(log.query("bob", "PUBLISH", 2).size() == 2);
  CHECK(log.query("carol", "DELETE", 100) == want("carol", "DELETE", 100));
  CHECK(log.query("nobody", "", 100).empty());
  CHECK(log.query("", "UNREGISTER", 100).empty());
  CHECK(log.query("", "", 0).empty());
  for (const auto& r : log.query("", "PUBLISH", 100)) CHECK(r.operation == "PUBLISH");
  // A user whose name is a prefix of another's is not matched by it.
  log.append({record("b1", 25, "ali", "REGISTER", "")});
  CHECK(log.query("ali", "", 100).size() == 1);
  CHECK(log.query("alice", "", 100).size() == 8);
}

TEST_CASE("rpclog server: LOG then QUERY over TCP, a resent LOG is acknowledged and not stored twice",
          "[rpclog][rpc]") {
  TempLog t;
  ServedLog served(t.path);
  REQUIRE(served.server.port() != 0);
  CHECK(served.report.str().find("program 536894035 version 1") != std::string::npos);

  RpcLogClient client(served.address(), std::chrono::seconds(5));
  std::vector<LogRecord> batch;
  for (std::uint64_t s = 1; s <= 10; ++s) {
    batch.push_back(record("beef", s, s % 2 ? "alice" : "bob", s % 5 ? "PUBLISH" : "DELETE",
                           "name with spaces " + std::to_string(s) + ".txt " + std::to_string(s) + " 00ff"));
  }
  CHECK(client.log(batch) == 10);
  CHECK(client.query("", "", 100) == batch);

  SECTION("the same batch again") {
    CHECK(client.log(batch) == 10);
    CHECK(client.query("", "", 100) == batch);
    CHECK(records_of(t.path) == batch);
  }
  SECTION("an overlapping batch, out of order") {
    std::vector<LogRecord> more = {record("beef", 12), record("beef", 9), record("beef", 11), record("beef", 10)};
    CHECK(client.log(more) == 12);
    auto got = client.query("", "", 100);
    REQUIRE(got.size() == 12);
    CHECK(std::vector<LogRecord>(got.begin(), got.begin() + 10) == batch);
    CHECK(got[10] == record("beef", 11));
    CHECK(got[11] == record("beef", 12));
    CHECK(seqs(records_of(t.path), "beef") == iota(1, 12));
  }
  SECTION("QUERY filters over the wire") {
    auto alice = client.query("alice", "", 100);
    CHECK(alice.size() == 5);
    for (const auto& r : alice) CHECK(r.user == "alice");
    auto deletes = client.query("", "DELETE", 100);
    REQUIRE(deletes.size() == 2);
    CHECK(deletes[0] == batch[4]);
    CHECK(deletes[1] == batch[9]);
    auto last3 = client.query("", "", 3);
    CHECK(last3 == std::vector<LogRecord>(batch.end() - 3, batch.end()));
  }
  SECTION("a second client sees the same log") {
    RpcLogClient other(served.address(), std::chrono::seconds(5));
    CHECK(other.log(batch) == 10);
    CHECK(other.query("", "", 100) == batch);
  }
  SECTION("a batch over RPCLOG_MAX_BATCH is refused whole") {
    std::vector<LogRecord> huge = range("beef", 11, 11 + 1024);  // 1,025 records
    CHECK_THROWS_AS(client.log(huge), LoggerUnavailable);
    CHECK(client.query("", "", 10000) == batch);  // the client reconnects; nothing of it was stored
  }
}

TEST_CASE("rpclog client: an unreachable logger is an exception, not a hang", "[rpclog][rpc]") {
  const std::string address = "127.0.0.1:" + std::to_string(unused_port());
  RpcLogClient client(address, std::chrono::seconds(2));
  const auto start = std::chrono::steady_clock::now();
  CHECK_THROWS_AS(client.log({record("b", 1)}), LoggerUnavailable);
  CHECK_THROWS_AS(client.query("", "", 1), LoggerUnavailable);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
  CHECK_THROWS_AS(RpcLogClient("no-port-here", std::chrono::seconds(1)), std::invalid_argument);
  CHECK_THROWS_AS(RpcLogClient("127.0.0.1:0", std::chrono::seconds(1)), std::invalid_argument);
  CHECK_THROWS_AS(RpcLogClient("127.0.0.1:70000", std::chrono::seconds(1)), std::invalid_argument);
}

TEST_CASE("rpclog client: a logger host that drops SYNs costs the timeout, not the kernel's minutes of retries",
          "[rpclog][rpc]") {
  Blackhole hole;
  // Linux drops SYNs to a listener whose accept queue is full (net.ipv4.tcp_abort_on_overflow=0, the default).
  INFO("no loopback port drops SYNs here (every connect completed or failed): the premise of this test broke");
  REQUIRE(hole.holes);
  RpcLogClient client(hole.address(), std::chrono::milliseconds(500));
  for (int attempt = 0; attempt < 2; ++attempt) {  // and again: a failed connect leaves nothing behind
    const auto start = std::chrono::steady_clock::now();
    std::string what;
    try {
      client.log({record("b", 1)});
    } catch (const LoggerUnavailable& e) {
      what = e.what();
    }
    const auto took = std::chrono::steady_clock::now() - start;
    CHECK(what.find("connect timed out") != std::string::npos);
    CHECK(took >= std::chrono::milliseconds(450));
    CHECK(took < std::chrono::seconds(5));  // blocking connect: about 2 minutes (tcp_syn_retries)
  }
}

TEST_CASE("rpclog server: a restarted server on the same file keeps deduplicating", "[rpclog][rpc]") {
  TempLog t;
  {
    ServedLog served(t.path);
    RpcLogClient client(served.address(), std::chrono::seconds(5));
    CHECK(client.log(range("cafe", 1, 6)) == 6);
  }
  ServedLog served(t.path);
  RpcLogClient client(served.address(), std::chrono::seconds(5));
  CHECK(client.log(range("cafe", 4, 9)) == 9);
  CHECK(seqs(client.query("", "", 100), "cafe") == iota(1, 9));
  CHECK(seqs(records_of(t.path), "cafe") == iota(1, 9));
}
