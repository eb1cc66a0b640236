// transfer_protocol.hpp: the constants of the peer-to-peer transfer protocol (schemas/transfer.md).
// Seeder and downloader both use these, so their limits always agree.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace zshare::transfer {

inline constexpr std::uint64_t kVersion = 3;  // 3: content ids are Merkle roots over 16 KiB blocks (protocol.md)
inline constexpr std::size_t kMaxLeavesPerManifest = 8192;         // 256 KiB of layer hashes per MANIFEST reply
inline constexpr std::size_t kMaxRequestBytes = 1024;              // a request is a small map
inline constexpr std::int64_t kSocketMaxMessageBytes = 32 << 20;   // a chunk (16 MiB at most) plus its map
inline constexpr std::uint32_t kDefaultWindow = 32;                // chunk requests in flight per source
inline constexpr std::uint32_t kMaxWindow = 64;
inline constexpr std::uint64_t kWindowUnitBytes = 1 << 20;         // a window of N holds N x 1 MiB at most
inline constexpr int kSeederSendHwm = 2 * kMaxWindow;              // replies queued per downloader at most
inline constexpr std::int64_t kSeederQueuedBytesPerDownloader = 128 << 20;  // and bytes of them (send_budget.hpp)

// Statuses of the transfer protocol beyond the broker's (protocol::status): OK, FILE NOT EXIST, BAD REQUEST and
// INTERNAL ERROR are shared.
namespace status {
inline constexpr std::string_view kFileChanged = "FILE CHANGED";  // the file changed on disk since it was hashed
}  // namespace status

}  // namespace zshare::transfer
