// codec.hpp: one msgpack map per ZeroMQ message, read with checked field access and written by name.
// A read that finds a field missing, of the wrong type or out of range throws BadRequest with a sentence.
#pragma once

#include <msgpack.hpp>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace zshare {

// A message that breaks the protocol; what() is the sentence sent back in the reply's `error`.
struct BadRequest : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Bounds applied while decoding, so a hostile message cannot make us allocate without limit.
struct DecodeLimits {
  std::size_t array = 4096;
  std::size_t map = 64;
  std::size_t str = 1 << 20;
  std::size_t bin = 1 << 20;
  std::size_t depth = 6;
  // Bins point into the decoded bytes instead of being copied: for a large payload the caller keeps alive as
  // long as the Message, such as a chunk in its ZeroMQ frame. `bin` still bounds them.
  bool bins_in_place = false;
};

// A non-owning view of a msgpack map; valid while the Message it came from lives.
class MapView {
 public:
  explicit MapView(const msgpack::object& obj);

  const msgpack::object* find(std::string_view key) const;
  bool has(std::string_view key) const { return find(key) != nullptr; }

  std::string_view str(std::string_view key, std::size_t max_bytes) const;
  std::optional<std::string_view> opt_str(std::string_view key, std::size_t max_bytes) const;
  std::uint64_t uint(std::string_view key) const;
  std::optional<std::uint64_t> opt_uint(std::string_view key) const;
  std::optional<bool> opt_bool(std::string_view key) const;
  bool is_nil(std::string_view key) const;
  std::string_view bin(std::string_view key, std::size_t max_bytes) const;
  MapView map(std::string_view key) const;
  std::vector<MapView> maps(std::string_view key) const;  // an array of maps

 private:
  const msgpack::object* obj_;
};

// An owned, decoded message whose root is a map.
class Message {
 public:
  // Throws BadRequest when the bytes are not exactly one msgpack map within the limits.
  static Message decode(const void* data, std::size_t size, const DecodeLimits& limits = {});
  MapView root() const { return MapView(handle_.get()); }

 private:
  explicit Message(msgpack::object_handle h) : handle_(std::move(h)) {}
  msgpack::object_handle handle_;
};

// Writes a map field by field; finish() returns the encoded bytes.
class MapWriter {
 public:
  MapWriter() = default;
  MapWriter(const MapWriter& other);
  MapWriter& operator=(const MapWriter& other);
  MapWriter(MapWriter&&) = default;
  MapWriter& operator=(MapWriter&&) = default;

  MapWriter& put(std::string_view key, std::string_view value);
  MapWriter& put(std::string_view key, const char* value) { return put(key, std::string_view(value)); }
  MapWriter& put(std::string_view key, const std::string& value) { return put(key, std::string_view(value)); }
  MapWriter& put(std::string_view key, std::uint64_t value);
  MapWriter& put(std::string_view key, std::int64_t value);
  MapWriter& put(std::string_view key, int value) { return put(key, static_cast<std::int64_t>(value)); }
  MapWriter& put(std::string_view key, unsigned value) { return put(key, static_cast<std::uint64_t>(value)); }
  MapWriter& put(std::string_view key, bool value);
  MapWriter& put_nil(std::string_view key);
  MapWriter& put_bin(std::string_view key, const void* data, std::size_t size);
  // The header of a bin of `size` bytes whose body the caller appends right after finish()'s bytes, so a large
  // payload can be read straight into the outgoing message. It must be the last field put.
  MapWriter& put_bin_header(std::string_view key, std::size_t size);
  MapWriter& put(std::string_view key, const MapWriter& map);
  MapWriter& put(std::string_view key, const std::vector<MapWriter>& maps);
  // An array of `n` maps written straight into this one: fill(i, m) puts map i's fields into `m`, one scratch
  // writer reused from map to map (no vector of writers, no allocation per map).
  template <class Fill>
  MapWriter& put_maps(std::string_view key, std::size_t n, Fill&& fill) {
    this->key(key);
    pk().pack_array(static_cast<std::uint32_t>(n));
    MapWriter m;
    for (std::size_t i = 0; i < n; ++i) {
      m.clear();
      fill(i, m);
      append(m);
    }
    return *this;
  }

  std::string finish() const;

 private:
  void key(std::string_view k);
  void clear() {
    body_.clear();
    count_ = 0;
  }
  void append(const MapWriter& map);  // map's header and fields, as one value
  msgpack::packer<msgpack::sbuffer> pk() { return msgpack::packer<msgpack::sbuffer>(body_); }
  msgpack::sbuffer body_{256};  // most maps are small: the default 8 KiB would be a large malloc per map
  std::uint32_t count_ = 0;
};

}  // namespace zshare
