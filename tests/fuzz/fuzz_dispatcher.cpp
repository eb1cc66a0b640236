// fuzz_dispatcher.cpp: a libFuzzer target over the broker's whole request path without sockets: msgpack
// decoding, validation and dispatch into the index and a real SQLite store (in memory). Any crash, leak,
// sanitizer report or a reply that is not a well-formed map is a finding.
#include "broker/dispatcher.hpp"
#include "broker/sqlite_store.hpp"

#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

namespace {

using namespace zshare;
using namespace zshare::broker;

struct Broker {
  FileIndex index;
  SqliteStore store{":memory:"};
  ReplyCache replies{1000};
  BrokerStats stats;
  Dispatcher dispatcher{index, store, replies, stats, 0, DispatcherOptions{}};  // the defaults, named in one place
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Broker* broker = new Broker;  // state accumulates across inputs, as in a long-running broker
  std::vector<Event> events;
  broker->store.begin();
  const std::string reply =
      broker->dispatcher.handle(std::string_view(reinterpret_cast<const char*>(data), size), events);
  broker->store.commit();
  // Every reply must decode as a map with a status, whatever came in.
  Message m = Message::decode(reply.data(), reply.size());
  if (m.root().str("status", 64).empty()) std::abort();
  for (const auto& e : events) Message::decode(e.body.data(), e.body.size());
  return 0;
}
