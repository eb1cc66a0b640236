// keywords.hpp: how names, descriptions and queries are cut into search keywords (schemas/protocol.md).
// Index and query use this one function, so they always agree.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace zshare {

// Words of ASCII letters, digits and bytes >= 0x80, ASCII-lowercased, each at most once, in first-seen order.
std::vector<std::string> keywords(std::string_view text);

}  // namespace zshare
