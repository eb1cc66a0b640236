// store.cpp: what both stores share: the load order (users, then files grouped by owner in publishing order,
// then the seq), reloading the reply cache, and the choice of implementation from the --db string.
#include "broker/store.hpp"

#include "broker/pg_store.hpp"
#include "broker/sqlite_store.hpp"

#include <optional>

namespace zshare::broker {

std::uint64_t Store::load(FileIndex& index) {
  begin_snapshot();
  try {
    const std::uint64_t seq = load_snapshot(index);
    end_snapshot();
    return seq;
  } catch (...) {
    end_snapshot();
    throw;
  }
}

std::uint64_t Store::load_snapshot(FileIndex& index) {
  index.reserve(count_rows("users"), count_rows("files"));
  scan_users([&](std::string name, std::string key) { index.add_user(std::move(name), std::move(key)); });
  std::optional<UserId> owner;  // rows come grouped by publishing order; look the owner up when it changes
  std::string owner_name;
  IndexLoader loader(index);
  scan_files([&](StoredFile& row) {
    if (!owner || row.user != owner_name) {
      owner = index.find_user(row.user);
      owner_name = row.user;
    }
    if (!owner) return;  // cannot happen with our writes; skip rather than invent a user
    row.file.user = *owner;
    loader.add(row.file);
  });
  loader.finish();
  scan_sessions([&](std::string user, std::string endpoint) {
    if (auto id = index.find_user(user)) index.connect(*id, std::move(endpoint));
  });
  return stored_seq();
}

void Store::load_replies(std::size_t keep, const std::function<void(std::string, std::string)>& each) {
  prune_replies(keep);
  scan_replies(each);
}

bool is_postgres_uri(std::string_view db) {
  return db.rfind("postgresql://", 0) == 0 || db.rfind("postgres://", 0) == 0;
}

std::unique_ptr<Store> open_store(const std::string& db) {
  if (is_postgres_uri(db)) return std::make_unique<PgStore>(db);
  return std::make_unique<SqliteStore>(db);
}

}  // namespace zshare::broker
