// keywords.cpp: a byte scanner; multi-byte UTF-8 characters stay inside words and are not case-folded.
// Duplicates are dropped so a word repeated in a description is indexed once.
#include "common/keywords.hpp"

#include <algorithm>

namespace zshare {

std::vector<std::string> keywords(std::string_view text) {
  std::vector<std::string> out;
  std::string word;
  auto flush = [&] {
    if (!word.empty() && std::find(out.begin(), out.end(), word) == out.end()) out.push_back(word);
    word.clear();
  };
  for (char ch : text) {
    auto c = static_cast<unsigned char>(ch);
    if (c >= 'A' && c <= 'Z') word.push_back(static_cast<char>(c - 'A' + 'a'));
    else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c >= 0x80) word.push_back(ch);
    else flush();
  }
  flush();
  return out;
}

}  // namespace zshare
