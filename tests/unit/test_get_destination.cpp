// test_get_destination.cpp: the pieces `get` decides with before and after a transfer: byte sizes as people
// write them, the progress meter's rate window, what a destination means and when it is refused, and a .part
// that never replaces a file that appeared during the download.
#include "common/byte_size.hpp"
#include "common/content_hash.hpp"
#include "peer/destination.hpp"
#include "peer/part_file.hpp"
#include "peer/progress_meter.hpp"
#include "temp_folder.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/socket.h>
#include <unistd.h>

using namespace zshare;
using namespace zshare::peer;
using zshare::test::TempFolder;
namespace fs = std::filesystem;

namespace {

// Writes `content` to <folder>/<name>; returns the path.
std::string write_file(const zshare::test::TempFolder& t, const std::string& name, const std::string& content) {
  const std::string p = t / name;
  std::ofstream(p, std::ios::binary) << content;
  return p;
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

Hash cid_of(const std::string& content) { return sha256(content.data(), content.size()); }

}  // namespace

TEST_CASE("byte sizes: plain numbers, binary multiples, decimals; nonsense refused", "[get]") {
  CHECK(parse_byte_size("65536") == 65536u);
  CHECK(parse_byte_size("512K") == 512u * 1024);
  CHECK(parse_byte_size("10M") == 10u * 1024 * 1024);
  CHECK(parse_byte_size("10MiB") == 10u * 1024 * 1024);
  CHECK(parse_byte_size("10mb") == 10u * 1024 * 1024);
  CHECK(parse_byte_size("1.5G") == 1610612736u);
  CHECK(parse_byte_size("2T") == 2ull << 40);
  CHECK_FALSE(parse_byte_size(""));
  CHECK_FALSE(parse_byte_size("M"));
  CHECK_FALSE(parse_byte_size("-1M"));
  CHECK_FALSE(parse_byte_size("10X"));
  CHECK_FALSE(parse_byte_size("1.2.3"));
  CHECK_FALSE(parse_byte_size("99999999999T"));  // past 2^64
  CHECK_FALSE(parse_byte_size(std::string(400, '9')));  // past any double: refused, never thrown
  CHECK(format_bytes(512) == "512 B");
  CHECK(format_bytes(1536) == "1.5 KiB");
  CHECK(format_bytes(40.0 * 1024 * 1024) == "40.0 MiB");
  CHECK(format_duration(7) == "0:07");
  CHECK(format_duration(3723) == "1:02:03");
}

TEST_CASE("the progress rate covers only the last seconds and only bytes fetched by this run", "[get]") {
  std::ostringstream err;
  ProgressMeter meter(err, std::chrono::seconds(5));
  const auto t0 = ProgressMeter::Clock::now();
  using std::chrono::seconds;
  // 100 MiB resumed from a .part, then 1 MiB/s for 10 s, then 4 MiB/s: the rate follows the last 5 s only.
  const std::uint64_t MiB = 1 << 20, resumed = 100 * MiB;
  for (int s = 0; s <= 10; ++s) meter.update(Progress{"a.bin", resumed + s * MiB, 1000 * MiB, s * MiB, 1}, t0 + seconds(s));
  CHECK(meter.rate() == Approx(1.0 * MiB).epsilon(0.01));
  for (int s = 11; s <= 20; ++s) {
    meter.update(Progress{"a.bin", resumed + (10 + 4 * (s - 10)) * MiB, 1000 * MiB, (10 + 4 * (s - 10)) * MiB, 2},
                 t0 + seconds(s));
  }
  CHECK(meter.rate() == Approx(4.0 * MiB).epsilon(0.01));
  const std::string line = meter.line(Progress{"a.bin", 150 * MiB, 1000 * MiB, 50 * MiB, 2}, t0 + seconds(20));
  CHECK(line.find("a.bin") == 0);
  CHECK(line.find("4.0 MiB/s") != std::string::npos);
  CHECK(line.find("2 sources") != std::string::npos);
  CHECK(line.find("0:20") != std::string::npos);  // elapsed
  ProgressMeter narrow(err, std::chrono::seconds(5), 80);  // an 80-column terminal: the line never wraps
  const std::string long_name(200, 'x');
  const std::string fitted = narrow.line(Progress{long_name + ".iso", 1, 1000, 1, 1}, t0);
  CHECK(fitted.size() < 80);
  CHECK(fitted.find("x.iso  ") != std::string::npos);  // the name keeps its end
  CHECK(fitted.find("  0%") != std::string::npos);       // rounded down: 100% only when complete
  meter.break_line();
  CHECK(err.str().back() == '\n');  // what follows starts on its own line
  const auto before = err.str().size();
  meter.break_line();  // nothing open: nothing written
  CHECK(err.str().size() == before);
}

TEST_CASE("a destination: '-', a folder, a path ending in '/', a file", "[get]") {
  TempFolder t;
  CHECK(resolve_destination("-", "x.bin").to_stdout);
  CHECK(resolve_destination(t.path, "x.bin").path == t.path + "/x.bin");
  CHECK(resolve_destination(t.path + "/", "x.bin").path == t.path + "/x.bin");
  CHECK(resolve_destination(t.path + "/y.bin", "x.bin").path == t.path + "/y.bin");
  CHECK_THROWS_AS(resolve_destination(t.path + "/missing/", "x.bin"), DestinationError);
  CHECK(resolve_destination("", "x.bin").path == "./x.bin");
}

TEST_CASE("an existing destination: same content kept, other content refused unless forced, never a device, FIFO, "
          "socket or symlink", "[get]") {
  TempFolder t;
  const std::string content = "the published bytes";
  const Hash cid = cid_of(content);
  CHECK(check_existing(Destination{false, t.path + "/absent"}, cid, content.size(), false) == ExistingFile::kAbsent);
  const auto same = write_file(t, "same", content);
  CHECK(check_existing(Destination{false, same}, cid, content.size(), false) == ExistingFile::kSameContent);
  const auto other = write_file(t, "other", "other bytes of the same length");
  CHECK_THROWS_AS(check_existing(Destination{false, other}, cid, content.size(), false), DestinationError);
  CHECK(check_existing(Destination{false, other}, cid, content.size(), true) == ExistingFile::kReplace);

  const std::string fifo = t.path + "/fifo";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  const std::string link = t.path + "/link";
  REQUIRE(::symlink(same.c_str(), link.c_str()) == 0);
  const std::string sock = t.path + "/sock";
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", sock.c_str());
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  for (const auto& path : {fifo, link, sock, t.path}) {
    INFO(path);
    for (bool force : {false, true}) {
      CHECK_THROWS_AS(check_existing(Destination{false, path}, cid, content.size(), force), DestinationError);
    }
  }
  ::close(fd);
  struct stat st {};
  REQUIRE(::lstat(fifo.c_str(), &st) == 0);
  CHECK(S_ISFIFO(st.st_mode));  // left untouched
}

TEST_CASE("free space: a download larger than the filesystem's free room is refused up front", "[get]") {
  TempFolder t;
  CHECK_NOTHROW(check_free_space(Destination{false, t.path + "/small"}, 1024));
  CHECK_THROWS_WITH(check_free_space(Destination{false, t.path + "/huge"}, std::uint64_t{1} << 62),
                    Catch::Contains("not enough free space"));
}

TEST_CASE("a .part is never a symlink or FIFO, and never renamed over a file that appeared meanwhile", "[get]") {
  TempFolder t;
  const std::string dest = t.path + "/d.bin";
  const auto target = write_file(t, "target", "keep me");
  REQUIRE(::symlink(target.c_str(), (dest + ".part").c_str()) == 0);
  CHECK_THROWS_AS(PartFile::beside(dest, 10), DestinationError);
  CHECK(read_all(target) == "keep me");
  fs::remove(dest + ".part");

  {
    PartFile part = PartFile::beside(dest, 5);
    CHECK_FALSE(part.existed());
    part.write("hello", 5, 0);
    write_file(t, "d.bin", "appeared");  // someone else wrote the destination during the download
    CHECK_THROWS_WITH(part.commit(dest, false), Catch::Contains("appeared during the download"));
  }
  CHECK(read_all(dest) == "appeared");
  CHECK(read_all(dest + ".part") == "hello");  // kept for a resume
  {
    PartFile part = PartFile::beside(dest, 5);
    CHECK(part.existed());
    part.commit(dest, true);  // --force
  }
  CHECK(read_all(dest) == "hello");
  CHECK_FALSE(fs::exists(dest + ".part"));

  PartFile gone = PartFile::beside(t.path + "/g.bin", 5);
  gone.discard();
  CHECK_FALSE(fs::exists(t.path + "/g.bin.part"));
}
