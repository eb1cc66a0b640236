// test_event_lines.cpp: zshare-events' text lines split into fields on spaces: values holding a space, a quote,
// `=` or a control character (and empty ones) are JSON-quoted; plain words and numbers are not.
#include "tools/events/event_stream.hpp"

#include <catch2/catch.hpp>

using zshare::tools::human_line;
using zshare::tools::StreamEvent;

TEST_CASE("event lines: values that would split or blur a line are quoted", "[events]") {
  StreamEvent e;
  e.topic = "file.published";
  e.seq = 7;
  e.fields = {{"seq", 7},         {"topic", "file.published"}, {"user", "alice"},  {"name", "summer holiday.txt"},
              {"description", ""}, {"size", 3},                 {"cid", "ab12"},    {"note", "a=b \"q\""}};
  CHECK(human_line(e) ==
        "#7 file.published alice cid=ab12 description=\"\" name=\"summer holiday.txt\" note=\"a=b \\\"q\\\"\" size=3");
}

TEST_CASE("event lines: plain words stay as they are", "[events]") {
  StreamEvent e;
  e.topic = "peer.connected";
  e.seq = 2;
  e.fields = {{"user", "bob"}, {"endpoint", "tcp://127.0.0.1:7000"}};
  CHECK(human_line(e) == "#2 peer.connected bob endpoint=tcp://127.0.0.1:7000");
}
