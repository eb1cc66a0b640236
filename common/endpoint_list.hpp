// endpoint_list.hpp: a list of brokers to fail over between, as `--broker` (ZSHARE_BROKER, the config key) gives
// it: endpoints separated by commas, each one checked as a single endpoint is (validate.hpp), in the order a client
// tries them. Invariant: a parsed list is never empty and holds no blank entry.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace zshare {

// "tcp://a:5555,tcp://b:5555" -> {"tcp://a:5555", "tcp://b:5555"} (spaces around an entry are dropped). Throws
// std::invalid_argument naming the entry that is not tcp://HOST:PORT (and its place, in a list of several).
std::vector<std::string> parse_endpoint_list(std::string_view text);

// The same list starting at `first` and going round: the order to try them in when `first` is the one in use.
std::vector<std::string> rotated(const std::vector<std::string>& endpoints, std::size_t first);

// "tcp://a:5555" or "tcp://a:5555, tcp://b:5555": a list for a sentence.
std::string joined(const std::vector<std::string>& endpoints);

}  // namespace zshare
