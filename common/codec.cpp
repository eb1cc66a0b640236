// codec.cpp: decoding with msgpack-c's unpack limits and typed, named field access; map encoding.
// Keys are compared as strings; non-string keys are skipped, unknown keys are ignored.
#include "common/codec.hpp"

namespace zshare {

namespace {

std::string type_error(std::string_view key, const char* expected) {
  return "field '" + std::string(key) + "' must be " + expected;
}

}  // namespace

MapView::MapView(const msgpack::object& obj) : obj_(&obj) {
  if (obj.type != msgpack::type::MAP) throw BadRequest("message is not a msgpack map");
}

const msgpack::object* MapView::find(std::string_view key) const {
  const auto& m = obj_->via.map;
  for (std::uint32_t i = 0; i < m.size; ++i) {
    const auto& k = m.ptr[i].key;
    if (k.type == msgpack::type::STR && std::string_view(k.via.str.ptr, k.via.str.size) == key) {
      return &m.ptr[i].val;
    }
  }
  return nullptr;
}

std::optional<std::string_view> MapView::opt_str(std::string_view key, std::size_t max_bytes) const {
  const auto* v = find(key);
  if (!v || v->type == msgpack::type::NIL) return std::nullopt;
  if (v->type != msgpack::type::STR) throw BadRequest(type_error(key, "a string"));
  if (v->via.str.size > max_bytes) {
    throw BadRequest("field '" + std::string(key) + "' is longer than " + std::to_string(max_bytes) + " bytes");
  }
  return std::string_view(v->via.str.ptr, v->via.str.size);
}

std::string_view MapView::str(std::string_view key, std::size_t max_bytes) const {
  auto s = opt_str(key, max_bytes);
  if (!s) throw BadRequest("missing field '" + std::string(key) + "'");
  return *s;
}

std::optional<std::uint64_t> MapView::opt_uint(std::string_view key) const {
  const auto* v = find(key);
  if (!v || v->type == msgpack::type::NIL) return std::nullopt;
  if (v->type != msgpack::type::POSITIVE_INTEGER) throw BadRequest(type_error(key, "a non-negative integer"));
  return v->via.u64;
}

std::uint64_t MapView::uint(std::string_view key) const {
  auto u = opt_uint(key);
  if (!u) throw BadRequest("missing field '" + std::string(key) + "'");
  return *u;
}

std::optional<bool> MapView::opt_bool(std::string_view key) const {
  const auto* v = find(key);
  if (!v || v->type == msgpack::type::NIL) return std::nullopt;
  if (v->type != msgpack::type::BOOLEAN) throw BadRequest(type_error(key, "a boolean"));
  return v->via.boolean;
}

bool MapView::is_nil(std::string_view key) const {
  const auto* v = find(key);
  return !v || v->type == msgpack::type::NIL;
}

std::string_view MapView::bin(std::string_view key, std::size_t max_bytes) const {
  const auto* v = find(key);
  if (!v) throw BadRequest("missing field '" + std::string(key) + "'");
  if (v->type != msgpack::type::BIN) throw BadRequest(type_error(key, "binary"));
  if (v->via.bin.size > max_bytes) {
    throw BadRequest("field '" + std::string(key) + "' is longer than " + std::to_string(max_bytes) + " bytes");
  }
  return std::string_view(v->via.bin.ptr, v->via.bin.size);
}

MapView MapView::map(std::string_view key) const {
  const auto* v = find(key);
  if (!v) throw BadRequest("missing field '" + std::string(key) + "'");
  if (v->type != msgpack::type::MAP) throw BadRequest(type_error(key, "a map"));
  return MapView(*v);
}

std::vector<MapView> MapView::maps(std::string_view key) const {
  const auto* v = find(key);
  if (!v) throw BadRequest("missing field '" + std::string(key) + "'");
  if (v->type != msgpack::type::ARRAY) throw BadRequest(type_error(key, "an array"));
  std::vector<MapView> out;
  out.reserve(v->via.array.size);
  for (std::uint32_t i = 0; i < v->via.array.size; ++i) {
    if (v->via.array.ptr[i].type != msgpack::type::MAP) throw BadRequest(type_error(key, "an array of maps"));
    out.emplace_back(v->via.array.ptr[i]);
  }
  return out;
}

Message Message::decode(const void* data, std::size_t size, const DecodeLimits& limits) {
  if (size == 0) throw BadRequest("empty message");
  const auto* bytes = static_cast<const char*>(data);
  std::size_t offset = 0;
  msgpack::object_handle handle;
  try {
    msgpack::unpack_limit lim(limits.array, limits.map, limits.str, limits.bin, 0, limits.depth);
    const msgpack::unpack_reference_func in_place = [](msgpack::type::object_type type, std::size_t, void*) {
      return type == msgpack::type::BIN;
    };
    handle = msgpack::unpack(bytes, size, offset, limits.bins_in_place ? in_place : nullptr, nullptr, lim);
  } catch (const msgpack::insufficient_bytes&) {
    throw BadRequest("message is truncated msgpack");
  } catch (const msgpack::depth_size_overflow&) {
    throw BadRequest("message is nested too deeply");
  } catch (const msgpack::size_overflow&) {
    throw BadRequest("message exceeds a decoding limit (array, map or string size)");
  } catch (const std::exception& e) {
    throw BadRequest(std::string("message is not valid msgpack: ") + e.what());
  }
  if (offset != size) throw BadRequest("extra bytes after the msgpack message");
  if (handle.get().type != msgpack::type::MAP) throw BadRequest("message is not a msgpack map");
  return Message(std::move(handle));
}

MapWriter::MapWriter(const MapWriter& other) : count_(other.count_) {
  body_.write(other.body_.data(), other.body_.size());
}

MapWriter& MapWriter::operator=(const MapWriter& other) {
  if (this != &other) {
    body_.clear();
    body_.write(other.body_.data(), other.body_.size());
    count_ = other.count_;
  }
  return *this;
}

void MapWriter::key(std::string_view k) {
  pk().pack(k);
  ++count_;
}

MapWriter& MapWriter::put(std::string_view k, std::string_view value) {
  key(k);
  pk().pack(value);
  return *this;
}

MapWriter& MapWriter::put(std::string_view k, std::uint64_t value) {
  key(k);
  pk().pack_uint64(value);
  return *this;
}

MapWriter& MapWriter::put(std::string_view k, std::int64_t value) {
  key(k);
  pk().pack_int64(value);
  return *this;
}

MapWriter& MapWriter::put(std::string_view k, bool value) {
  key(k);
  if (value) pk().pack_true(); else pk().pack_false();
  return *this;
}

MapWriter& MapWriter::put_nil(std::string_view k) {
  key(k);
  pk().pack_nil();
  return *this;
}

MapWriter& MapWriter::put_bin(std::string_view k, const void* data, std::size_t size) {
  put_bin_header(k, size);
  pk().pack_bin_body(static_cast<const char*>(data), static_cast<std::uint32_t>(size));
  return *this;
}

MapWriter& MapWriter::put_bin_header(std::string_view k, std::size_t size) {
  key(k);
  pk().pack_bin(static_cast<std::uint32_t>(size));
  return *this;
}

MapWriter& MapWriter::put(std::string_view k, const MapWriter& map) {
  key(k);
  pk().pack_map(map.count_);
  body_.write(map.body_.data(), map.body_.size());
  return *this;
}

MapWriter& MapWriter::put(std::string_view k, const std::vector<MapWriter>& maps) {
  key(k);
  pk().pack_array(static_cast<std::uint32_t>(maps.size()));
  for (const auto& m : maps) append(m);
  return *this;
}

void MapWriter::append(const MapWriter& map) {
  pk().pack_map(map.count_);
  body_.write(map.body_.data(), map.body_.size());
}

std::string MapWriter::finish() const {
  // The map header as msgpack's packer writes it (fixmap, map16 or map32), without a buffer of its own.
  char head[5];
  std::size_t n = 0;
  if (count_ < 16) {
    head[n++] = static_cast<char>(0x80 | count_);
  } else if (count_ < 0x10000) {
    head[n++] = static_cast<char>(0xde);
    head[n++] = static_cast<char>(count_ >> 8);
    head[n++] = static_cast<char>(count_);
  } else {
    head[n++] = static_cast<char>(0xdf);
    for (int shift = 24; shift >= 0; shift -= 8) head[n++] = static_cast<char>(count_ >> shift);
  }
  std::string out;
  out.reserve(n + body_.size());
  out.append(head, n);
  out.append(body_.data(), body_.size());
  return out;
}

}  // namespace zshare
