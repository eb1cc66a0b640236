// protocol.hpp: the constants of schemas/catalogue.json in C++: version, statuses, limits.
// Keep in step with the catalogue; tests/conformance checks the broker against the catalogue itself.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace zshare::protocol {

inline constexpr std::uint64_t kVersion = 3;  // 2 skipped: the control and transfer protocols share one number

inline constexpr std::size_t kMaxMessageBytes = 64 * 1024;         // answered with BAD REQUEST above this
inline constexpr std::int64_t kSocketMaxMessageBytes = 1 << 20;    // ZMQ_MAXMSGSIZE on the broker's sockets
inline constexpr std::int64_t kClientMaxMessageBytes = 16 << 20;   // replies can carry up to 1000 results
inline constexpr std::size_t kMaxIdBytes = 64;
inline constexpr std::size_t kMaxTimestampBytes = 64;
inline constexpr std::size_t kMaxUserBytes = 64;
inline constexpr std::size_t kMaxFileNameBytes = 255;
inline constexpr std::size_t kMaxDescriptionBytes = 1024;
inline constexpr std::size_t kMaxEndpointBytes = 255;
inline constexpr std::size_t kMaxQueryBytes = 256;
inline constexpr std::size_t kMaxOpBytes = 32;
inline constexpr std::uint64_t kMaxFileSize = 9223372036854775807ULL;
inline constexpr std::uint64_t kMinChunkSize = 16 * 1024;
inline constexpr std::uint64_t kMaxChunkSize = 16 * 1024 * 1024;
inline constexpr std::uint64_t kDefaultSearchLimit = 100;
inline constexpr std::uint64_t kMaxSearchLimit = 1000;
// HEARTBEAT intervals (heartbeat_ms), promised at CONNECT and asked for in replies: from 100 ms to one hour.
inline constexpr std::uint64_t kMinHeartbeatMs = 100;
inline constexpr std::uint64_t kMaxHeartbeatMs = 3600 * 1000;

namespace status {
inline constexpr std::string_view kOk = "OK";
inline constexpr std::string_view kUsernameInUse = "USERNAME IN USE";
inline constexpr std::string_view kUserDoesNotExist = "USER DOES NOT EXIST";
inline constexpr std::string_view kUserNotConnected = "USER NOT CONNECTED";
inline constexpr std::string_view kUserAlreadyConnected = "USER ALREADY CONNECTED";
inline constexpr std::string_view kContentAlreadyPublished = "CONTENT ALREADY PUBLISHED";
inline constexpr std::string_view kContentNotPublished = "CONTENT NOT PUBLISHED";
inline constexpr std::string_view kFileNotExist = "FILE NOT EXIST";
inline constexpr std::string_view kDenied = "DENIED";  // the user belongs to another CurveZMQ key
inline constexpr std::string_view kBadRequest = "BAD REQUEST";
inline constexpr std::string_view kInternalError = "INTERNAL ERROR";
inline constexpr std::string_view kRateLimited = "RATE LIMITED";      // any op but HEARTBEAT; carries retry_after_ms
inline constexpr std::string_view kLimitExceeded = "LIMIT EXCEEDED";  // PUBLISH beyond the files-per-user limit
inline constexpr std::string_view kNoRoute = "NO ROUTE";  // DIAL: no callback given and the broker has no relay
// Any op: the broker's database is out of reach (PostgreSQL down); nothing was done. Carries retry_after_ms.
inline constexpr std::string_view kStoreUnavailable = "STORE UNAVAILABLE";
// Client-side only: never sent by the broker.
inline constexpr std::string_view kBrokerUnreachable = "BROKER UNREACHABLE";
}  // namespace status

}  // namespace zshare::protocol
