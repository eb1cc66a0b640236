// seed_store.hpp: the benchmarks' bulk-load path: writes the synthetic catalogue (workload.hpp) straight into a new
// broker database through the broker's own Store, so a 10M-file index loads in a minute instead of an hour of
// PUBLISHes. The broker then starts on it as after any restart; what the bench measures is the serving path.
#pragma once

#include <cstdint>
#include <string>

namespace zshare::bench {

// Fills `db` (a new SQLite file: one that exists is refused; or a PostgreSQL URI) with `users` users and `files`
// files; prints a RESULT seed line.
// `key`: the Z85 CurveZMQ public key that owns every user, or empty (unbound, as under --plaintext).
int seed_store(const std::string& db, std::uint64_t users, std::uint64_t files, const std::string& key);

}  // namespace zshare::bench
