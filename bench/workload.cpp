// workload.cpp: the synthetic catalogue (workload.hpp): word lists, names, descriptions and queries.
#include "bench/workload.hpp"

#include "common/content_hash.hpp"

#include <cinttypes>
#include <cstdio>

namespace zshare::bench {

namespace {


const char* const kAdjectives[] = {
    "blue",     "red",      "green",   "amber",    "silver",  "golden",   "quiet",   "loud",     "bright",
    "dark",     "early",    "late",    "wild",     "calm",    "cold",     "warm",    "deep",     "hollow",
    "lucky",    "lonely",   "misty",   "rapid",    "slow",    "sunny",    "stormy",  "velvet",   "wooden",
    "iron",     "crystal",  "hidden",  "frozen",   "burning", "gentle",   "bitter",  "sweet",    "empty",
    "heavy",    "little",   "ancient", "modern",   "northern", "southern", "eastern", "western", "broken",
    "electric", "neon",     "paper",   "rusty",    "salty",   "silent",   "smoky",   "sober",    "spare",
    "steady",   "strange",  "tender",  "tired",    "urban",   "violet",   "winter",  "summer",   "autumn",
    "spring",   "midnight", "morning", "evening",  "crimson", "scarlet",  "indigo",  "ivory",    "jade",
    "coral",    "copper",   "marble",  "dusty",    "faded",   "fearless", "fierce",  "floating", "foggy",
    "fragile",  "hazy",     "humble",  "lazy",     "lunar",   "solar",    "magic",   "mellow",   "mystic",
    "noble",    "pale",     "proud",   "restless", "royal",   "rustic",   "secret",  "shallow",  "shiny",
    "sleepy"};
const char* const kNouns[] = {
    "river",   "mountain", "ocean",   "forest",  "desert",  "valley",  "meadow",  "harbor",  "island",  "canyon",
    "garden",  "city",     "street",  "bridge",  "tower",   "castle",  "village", "window",  "mirror",  "shadow",
    "thunder", "rain",     "storm",   "cloud",   "moon",    "sun",     "star",    "comet",   "planet",  "galaxy",
    "engine",  "train",    "road",    "highway", "station", "airport", "market",  "factory", "church",  "temple",
    "palace",  "prison",   "school",  "library", "museum",  "theater", "stadium", "kitchen", "cellar",  "attic",
    "lantern", "candle",   "fire",    "ember",   "ash",     "smoke",   "stone",   "rock",    "sand",    "glass",
    "steel",   "gold",     "silk",    "cotton",  "leather", "feather", "wing",    "bird",    "wolf",    "fox",
    "bear",    "horse",    "tiger",   "whale",   "shark",   "eagle",   "raven",   "owl",     "deer",    "rabbit",
    "heart",   "soul",     "dream",   "memory",  "promise", "letter",  "song",    "dance",   "echo",    "voice",
    "whisper", "signal",   "wave",    "tide",    "shore",   "coast",   "lake",    "pond",    "creek",   "field"};
const char* const kGenres[] = {"ambient", "jazz",   "folk",  "techno", "blues",
                               "classical", "reggae", "house", "metal",  "punk"};
const char* const kExtensions[] = {"flac", "mp3", "ogg", "wav"};
constexpr std::size_t kAdjCount = sizeof kAdjectives / sizeof kAdjectives[0];
constexpr std::size_t kNounCount = sizeof kNouns / sizeof kNouns[0];
constexpr std::size_t kGenreCount = sizeof kGenres / sizeof kGenres[0];
constexpr std::size_t kExtCount = sizeof kExtensions / sizeof kExtensions[0];
constexpr std::size_t kVocabularySize = 1000;

// Three consonant-vowel syllables; (i % 70, i / 70) differ for every i < 4900, so the words are distinct.
std::string vocabulary_word(std::size_t i) {
  static const char kConsonants[] = "bdfgklmnprstvz";
  static const char kVowels[] = "aeiou";
  auto syllable = [](std::size_t s, std::string& out) {
    out.push_back(kConsonants[s / 5]);
    out.push_back(kVowels[s % 5]);
  };
  std::string w;
  syllable(i % 70, w);
  syllable((i / 70) % 70, w);
  syllable((i * 13 + 7) % 70, w);
  return w;
}

}  // namespace

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

const std::vector<std::string>& vocabulary() {
  static const std::vector<std::string> words = [] {
    std::vector<std::string> v;
    for (std::size_t i = 0; i < kVocabularySize; ++i) v.push_back(vocabulary_word(i));
    return v;
  }();
  return words;
}

std::string user_name(std::uint64_t u) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "user-%05" PRIu64, u);
  return buf;
}

std::string fake_endpoint(std::uint64_t u) { return "tcp://127.0.0.1:" + std::to_string(10000 + u % 50000); }

FileSpec file_spec(std::uint64_t i, std::uint64_t users) {
  const std::uint64_t h = splitmix64(i);
  const std::uint64_t g = splitmix64(h);
  const auto& vocab = vocabulary();
  FileSpec f;
  f.user = user_name(i % users);
  char buf[300];
  std::snprintf(buf, sizeof buf, "track-%06" PRIu64 "-%s-%s.%s", i, kAdjectives[h % kAdjCount],
                kNouns[(h >> 8) % kNounCount], kExtensions[(h >> 16) % kExtCount]);
  f.name = buf;
  f.description = std::string("a ") + kGenres[(h >> 20) % kGenreCount] + " piece with " +
                  vocab[g % kVocabularySize] + " " + vocab[(g >> 16) % kVocabularySize] + " and " +
                  vocab[(g >> 32) % kVocabularySize];
  f.size = 1'000'000 + (h >> 28) % 49'000'000;
  const std::string seed = "zshare-bench-file-" + std::to_string(i);
  f.cid = zshare::sha256(seed.data(), seed.size());
  return f;
}

std::string search_query(std::mt19937_64& rng) {
  const auto& vocab = vocabulary();
  switch (rng() % 4) {
    case 0: return vocab[rng() % kVocabularySize];
    case 1: return (rng() % 2) ? kAdjectives[rng() % kAdjCount] : kNouns[rng() % kNounCount];
    case 2: return std::string(kAdjectives[rng() % kAdjCount]) + " " + kNouns[rng() % kNounCount];
    default: return std::string(kAdjectives[rng() % kAdjCount]) + " " + vocab[rng() % kVocabularySize];
  }
}

}  // namespace zshare::bench
