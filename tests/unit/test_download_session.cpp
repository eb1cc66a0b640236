// test_download_session.cpp: a DownloadSession against real Seeders in this process (plaintext, loopback TCP):
// failover, bad chunks, mixed chunk sizes and resume, each in well under a second. The same behaviour through
// real processes is tests/integration/transfer_test.py.
#include "peer/downloader.hpp"
#include "peer/seeder.hpp"
#include "tests/unit/temp_folder.hpp"

#include <catch2/catch.hpp>

#include <fstream>
#include <iterator>
#include <memory>
#include <string>

using namespace zshare;
using namespace zshare::peer;

namespace {

constexpr std::uint32_t kChunk = 64 * 1024;

std::string pattern(std::size_t n, unsigned seed) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + seed + i / 7919) % 251 + 1);
  return s;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

curve::LinkSecurity plaintext() {
  curve::LinkSecurity s;
  s.plaintext = true;
  return s;
}

// One file, shared by a seeder in this process; hashed with `chunk` as its chunk size.
struct LocalSeeder {
  LocalSeeder(zmq::context_t& ctx, const std::string& path, std::uint32_t chunk, std::uint32_t corrupt_every = 0) {
    auto content = std::make_shared<SharedContent>();
    content->name = "file.bin";
    content->path = path;
    content->hashes = hash_file(path, chunk);
    content->identity = identity_of(path);
    catalog.add(content);
    SeederOptions options;
    options.security = plaintext();
    options.corrupt_every = corrupt_every;
    seeder = std::make_unique<Seeder>(ctx, "tcp://127.0.0.1:*", catalog, options);
  }
  Source source(const std::string& user) const { return Source{user, seeder->bound_endpoint(), ""}; }
  ContentCatalog catalog;
  std::unique_ptr<Seeder> seeder;
};

struct World {
  World() : folder("zshare-session"), data(pattern(2 * 1024 * 1024 + 4321, 7)) {
    std::ofstream(folder / "file.bin", std::ios::binary) << data;
    plan.cid = hash_file(folder / "file.bin", kChunk).cid;
    plan.size = data.size();
    plan.chunk_size = kChunk;
  }
  DownloadOptions options() const {
    DownloadOptions o;
    o.security = plaintext();
    o.window = 4;
    o.source_timeout = std::chrono::milliseconds(300);
    return o;
  }
  DownloadReport download(const DownloadOptions& o, const std::string& dest) {
    PartFile part = PartFile::beside(dest, plan.size);
    DownloadReport r = Downloader(ctx, o).run(plan, part);
    if (r.ok) part.commit(dest, false);
    return r;
  }
  test::TempFolder folder;
  std::string data;
  zmq::context_t ctx;
  DownloadPlan plan;
};

}  // namespace

TEST_CASE("session: bad chunks are caught, counted against their source and fetched from the other", "[session]") {
  World w;
  LocalSeeder bad(w.ctx, w.folder / "file.bin", kChunk, 3), good(w.ctx, w.folder / "file.bin", kChunk);
  w.plan.sources = {bad.source("bad"), good.source("good")};
  auto o = w.options();
  o.max_bad_chunks_per_source = 1000;  // kept in use: its good chunks count too
  const DownloadReport r = w.download(o, w.folder / "out.bin");
  REQUIRE(r.ok);
  CHECK(slurp(w.folder / "out.bin") == w.data);
  CHECK(r.bad_chunks >= 1);
  CHECK(r.sources[0].bad_chunks == r.bad_chunks);
  CHECK(r.sources[1].bad_chunks == 0);
  CHECK(r.sources[0].chunks + r.sources[1].chunks == r.chunks);
}

TEST_CASE("session: a lone source's bad chunk is never written; the source is dropped and the .part kept clean",
          "[session]") {
  World w;
  LocalSeeder bad(w.ctx, w.folder / "file.bin", kChunk, 1);  // every chunk flipped
  w.plan.sources = {bad.source("bad")};
  auto o = w.options();
  o.max_bad_chunks_per_source = 0;
  const std::string dest = w.folder / "out.bin";
  const DownloadReport r = w.download(o, dest);
  CHECK_FALSE(r.ok);
  CHECK(r.sources_failed);
  CHECK_THAT(r.error, Catch::Contains("failed verification"));
  const std::string part = slurp(dest + ".part");
  REQUIRE(part.size() == w.data.size());
  CHECK(part == std::string(w.data.size(), '\0'));  // nothing of the flipped chunks reached the file
}

TEST_CASE("session: a source that never answers is dropped and the other finishes (failover)", "[session]") {
  World w;
  zmq::socket_t silent(w.ctx, zmq::socket_type::router);  // accepts connections, answers nothing
  silent.set(zmq::sockopt::linger, 0);
  silent.bind("tcp://127.0.0.1:*");
  LocalSeeder good(w.ctx, w.folder / "file.bin", kChunk);
  w.plan.sources = {Source{"silent", silent.get(zmq::sockopt::last_endpoint), ""}, good.source("good")};
  const DownloadReport r = w.download(w.options(), w.folder / "out.bin");
  REQUIRE(r.ok);
  CHECK(slurp(w.folder / "out.bin") == w.data);
  CHECK(r.sources[0].dropped_because == "stopped answering");  // the layer came from the other first
  CHECK(r.sources[1].chunks == r.chunks);
}

TEST_CASE("session: a source that stops answering mid-transfer hands its chunks to the other", "[session]") {
  World w;
  auto leaving = std::make_unique<LocalSeeder>(w.ctx, w.folder / "file.bin", kChunk);
  LocalSeeder good(w.ctx, w.folder / "file.bin", kChunk);
  w.plan.sources = {leaving->source("leaving"), good.source("good")};
  PartFile part = PartFile::beside(w.folder / "out.bin", w.plan.size);
  std::uint64_t calls = 0;
  auto o = w.options();
  o.rate_limit = 4 * kChunk * 10;  // slow enough that the source leaves mid-way: about 40 chunks a second
  // The first progress report (after 200 ms) takes the first source away: its requests in flight go unanswered.
  const DownloadReport r = Downloader(w.ctx, o).run(w.plan, part, [&](const Progress&) {
    if (calls++ == 0) leaving.reset();
  });
  REQUIRE(r.ok);
  part.commit(w.folder / "out.bin", false);
  CHECK(slurp(w.folder / "out.bin") == w.data);
  CHECK(calls > 0);
  CHECK_THAT(r.sources[0].dropped_because, Catch::Contains("stopped answering"));
  CHECK(r.sources[0].chunks < r.chunks);
  CHECK(r.sources[0].chunks + r.sources[1].chunks == r.chunks);
}

TEST_CASE("session: seeders that hashed with different chunk sizes serve one download", "[session]") {
  World w;
  LocalSeeder small(w.ctx, w.folder / "file.bin", 16384), large(w.ctx, w.folder / "file.bin", 4 * kChunk);
  w.plan.sources = {small.source("small"), large.source("large")};
  w.plan.chunk_size = 4 * kChunk;  // the largest of the two, as get_command picks it
  const DownloadReport r = w.download(w.options(), w.folder / "out.bin");
  REQUIRE(r.ok);
  CHECK(slurp(w.folder / "out.bin") == w.data);
  CHECK(r.chunks == 9);
  CHECK(r.sources[0].chunks > 0);
  CHECK(r.sources[1].chunks > 0);
}

TEST_CASE("session: a .part with good and bad chunks resumes from the good ones", "[session]") {
  World w;
  LocalSeeder good(w.ctx, w.folder / "file.bin", kChunk);
  w.plan.sources = {good.source("good")};
  const std::string dest = w.folder / "out.bin";
  std::string half = w.data;
  for (std::size_t i = 0; i < half.size(); i += 2 * kChunk) half[i] ^= 1;  // every other chunk damaged
  std::ofstream(dest + ".part", std::ios::binary) << half;
  PartFile part = PartFile::beside(dest, w.plan.size, "", true);
  REQUIRE(part.existed());
  const DownloadReport r = Downloader(w.ctx, w.options()).run(w.plan, part);
  REQUIRE(r.ok);
  part.commit(dest, false);
  CHECK(slurp(dest) == w.data);
  CHECK(r.chunks == 33);
  CHECK(r.chunks_resumed == 16);  // chunks 1, 3, ..., 31 were intact
  CHECK(r.sources[0].chunks == 17);
}

TEST_CASE("session: with no source answering the error says so and why", "[session]") {
  World w;
  zmq::socket_t silent(w.ctx, zmq::socket_type::router);  // accepts connections, answers nothing
  silent.set(zmq::sockopt::linger, 0);
  silent.bind("tcp://127.0.0.1:*");
  w.plan.sources = {Source{"silent", silent.get(zmq::sockopt::last_endpoint), ""}};
  const DownloadReport r = w.download(w.options(), w.folder / "out.bin");
  CHECK_FALSE(r.ok);
  CHECK(r.sources_failed);
  CHECK(r.error == "no source answered; silent did not answer MANIFEST");
}

TEST_CASE("session: a source nothing listens for is called unreachable, not corrupt", "[session][nat]") {
  World w;
  std::string closed;
  {
    zmq::socket_t gone(w.ctx, zmq::socket_type::router);  // a port that was just free: nothing listens there now
    gone.set(zmq::sockopt::linger, 0);
    gone.bind("tcp://127.0.0.1:*");
    closed = gone.get(zmq::sockopt::last_endpoint);
  }
  w.plan.sources = {Source{"natted", closed, ""}};
  const DownloadReport r = w.download(w.options(), w.folder / "out.bin");
  CHECK_FALSE(r.ok);
  CHECK(r.error == "no source answered; natted did not answer MANIFEST (nothing accepts connections at " + closed +
                       " from here: it is behind NAT or a firewall, which the broker had not found out yet)");
}

TEST_CASE("session: an unreachable source dials out to the downloader's callback (reverse connection)",
          "[session][nat]") {
  World w;
  LocalSeeder natted(w.ctx, w.folder / "file.bin", kChunk);
  Source s = natted.source("natted");
  s.endpoint = "tcp://192.0.2.1:9";  // what it advertises: nobody can dial that
  s.reachable = false;
  w.plan.sources = {s};
  DownloadOptions o = w.options();
  o.callback_bind = "tcp://127.0.0.1:*";
  std::uint16_t asked_port = 0;
  o.rendezvous = [&](const Source& source, std::uint16_t callback_port) {
    CHECK(source.user == "natted");
    asked_port = callback_port;
    // What the broker and the seeder's heartbeat do between them: the seeder connects out to the callback.
    natted.seeder->dial({DialOut{"tcp://127.0.0.1:" + std::to_string(callback_port), ""}});
    return RendezvousAnswer{};
  };
  const DownloadReport r = w.download(o, w.folder / "out.bin");
  REQUIRE(r.ok);
  CHECK(asked_port != 0);
  CHECK(slurp(w.folder / "out.bin") == w.data);
  CHECK(r.sources.at(0).chunks == r.chunks);
}

TEST_CASE("session: an unreachable source that does not dial out, or cannot be asked, is dropped saying why",
          "[session][nat]") {
  World w;
  w.plan.sources = {Source{"mute", "tcp://192.0.2.1:9", "", false}, Source{"refused", "tcp://192.0.2.2:9", "", false}};
  DownloadOptions o = w.options();
  o.callback_bind = "tcp://127.0.0.1:*";
  o.rendezvous_timeout = std::chrono::milliseconds(300);
  o.rendezvous = [](const Source& source, std::uint16_t) {
    RendezvousAnswer a;
    if (source.user == "refused") a.error = "is behind NAT or a firewall, and the broker could not ask it to dial out";
    return a;
  };
  const DownloadReport r = w.download(o, w.folder / "out.bin");
  CHECK_FALSE(r.ok);
  CHECK(r.sources.at(0).dropped_because ==
        "is behind NAT or a firewall and did not dial out to us within 0.3 s (it may be unable to reach us, and there "
        "is no relay, or the relay refused)");
  CHECK(r.sources.at(1).dropped_because == "is behind NAT or a firewall, and the broker could not ask it to dial out");
}

TEST_CASE("session: sources whose MANIFEST answers come after the first are not dropped for them", "[session]") {
  test::TempFolder folder("zshare-session");
  const std::string data = pattern(9 * 1024 * 1024 + 5, 3);  // 577 chunks of 16 KiB: a layer page over 16 KiB
  std::ofstream(folder / "big.bin", std::ios::binary) << data;
  zmq::context_t ctx;
  LocalSeeder a(ctx, folder / "big.bin", 16384), b(ctx, folder / "big.bin", 16384), c(ctx, folder / "big.bin", 16384);
  DownloadPlan plan;
  plan.cid = hash_file(folder / "big.bin", 16384).cid;
  plan.size = data.size();
  plan.chunk_size = 16384;
  plan.sources = {a.source("a"), b.source("b"), c.source("c")};
  DownloadOptions o;
  o.security = plaintext();
  o.window = 4;
  PartFile part = PartFile::beside(folder / "out.bin", plan.size);
  const DownloadReport r = Downloader(ctx, o).run(plan, part);
  REQUIRE(r.ok);
  for (const auto& s : r.sources) {
    INFO(s.user << ": " << s.dropped_because);
    CHECK(s.dropped_because.empty());
    CHECK(s.chunks > 0);
  }
}

TEST_CASE("session: an index entry of size 0 for a content id that is not the empty file's is refused",
          "[session]") {
  World w;
  LocalSeeder good(w.ctx, w.folder / "file.bin", kChunk);
  w.plan.sources = {good.source("good")};
  w.plan.size = 0;
  const DownloadReport r = w.download(w.options(), w.folder / "out.bin");
  CHECK_FALSE(r.ok);
  CHECK_THAT(r.error, Catch::Contains("does not fit the content id"));
}
