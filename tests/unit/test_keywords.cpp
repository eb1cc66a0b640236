// test_keywords.cpp: how text is cut into search keywords, the rule index and queries share.
// Case folding is ASCII-only; multi-byte characters stay inside words.
#include "common/keywords.hpp"

#include <catch2/catch.hpp>

using zshare::keywords;

TEST_CASE("keywords split on punctuation, fold ASCII case and drop repeats", "[keywords]") {
  CHECK(keywords("Blue-River_live.FLAC blue") == std::vector<std::string>{"blue", "river", "live", "flac"});
  CHECK(keywords("   ").empty());
  CHECK(keywords("canción 2024") == std::vector<std::string>{"canción", "2024"});
}
