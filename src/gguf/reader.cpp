// GGUF v2/v3 reader: File::open (mmap) and File::parse (caller's buffer), plus
// File's metadata getters. Called by model loading, tools (moe inspect) and tests.
// Input is untrusted: every read is bounds-checked against the buffer, every count
// is checked against the bytes that remain (and against the limits in gguf.h)
// before anything is reserved, and every failure throws moe::Error naming the
// file, the byte offset, what was expected and what was found. Tensor data
// pointers are zero-copy views into the buffer (kept alive by map_ for open()).
#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>

#include "base/error.h"
#include "gguf/gguf.h"

namespace moe::gguf {
namespace {

constexpr uint64_t kMinKvBytes = 8 + 1 + 4 + 1;              // key len, 1-byte key, type, u8
constexpr uint64_t kMinTensorInfoBytes = 8 + 4 + 8 + 4 + 8;  // empty name, 1 dim, type, offset
constexpr uint32_t kMaxValueType = 12;
// Counts are checked against the bytes left, but in a multi-GB model file that is a
// weak bound: reserve at most this many up front and grow as entries really parse.
constexpr uint64_t kMaxReserve = 1 << 16;

// Bytes one element of type t occupies on the wire at least.
uint64_t min_wire_size(ValueType t) {
  switch (t) {
    case ValueType::UINT8:
    case ValueType::INT8:
    case ValueType::BOOL: return 1;
    case ValueType::UINT16:
    case ValueType::INT16: return 2;
    case ValueType::UINT32:
    case ValueType::INT32:
    case ValueType::FLOAT32: return 4;
    case ValueType::UINT64:
    case ValueType::INT64:
    case ValueType::FLOAT64:
    case ValueType::STRING: return 8;  // the length field
    case ValueType::ARRAY: return 12;  // element type + count
  }
  return 1;
}

// Keys and names from the file may be binary garbage: escape them for messages.
std::string printable(std::string_view s) {
  constexpr size_t kMax = 80;
  std::string out;
  for (size_t i = 0; i < s.size() && i < kMax; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'')
      out.push_back(static_cast<char>(c));
    else
      out += fmt::format("\\x{:02x}", c);
  }
  if (s.size() > kMax) out += fmt::format("...({} bytes)", s.size());
  return out;
}

// Where a read happens, formatted only when it fails.
struct Ctx {
  const char* what;
  std::string_view key = {};
  int64_t index = -1;
};

std::string describe(const Ctx& c) {
  std::string s = c.what;
  if (c.index >= 0) s += fmt::format(" {}", c.index);
  if (!c.key.empty()) s += fmt::format(" of '{}'", printable(c.key));
  return s;
}

}  // namespace

class Parser {
 public:
  Parser(File& f, std::span<const uint8_t> bytes, const std::string& name)
      : f_(f), b_(bytes), name_(name) {}

  void run() {
    f_.path_ = name_;
    f_.bytes_ = b_;
    header();
    metadata();
    alignment();
    tensor_infos();
    data_section();
  }

 private:
  template <typename... Args>
  [[noreturn]] void fail(uint64_t off, fmt::format_string<Args...> f, Args&&... args) {
    throw_error("{}: offset {}: {}", name_, off, fmt::format(f, std::forward<Args>(args)...));
  }

  uint64_t remaining() const { return b_.size() - pos_; }

  void need(uint64_t n, const Ctx& c) {
    if (n > remaining())
      fail(pos_, "truncated {}: expected {} bytes, found only {} before the end of the file ({} bytes)",
           describe(c), n, remaining(), b_.size());
  }
  uint64_t read_le(int n, const Ctx& c) {
    need(static_cast<uint64_t>(n), c);
    uint64_t x = 0;
    for (int i = 0; i < n; ++i) x |= static_cast<uint64_t>(b_[pos_ + i]) << (8 * i);
    pos_ += static_cast<size_t>(n);
    return x;
  }
  uint8_t u8(const Ctx& c) { return static_cast<uint8_t>(read_le(1, c)); }
  uint16_t u16(const Ctx& c) { return static_cast<uint16_t>(read_le(2, c)); }
  uint32_t u32(const Ctx& c) { return static_cast<uint32_t>(read_le(4, c)); }
  uint64_t u64(const Ctx& c) { return read_le(8, c); }

  std::string str(const Ctx& c) {
    const uint64_t at = pos_;
    const uint64_t len = u64(c);
    if (len > remaining())
      fail(at, "{}: string length {} exceeds the {} bytes left in the file ({} bytes)", describe(c),
           len, remaining(), b_.size());
    std::string s(reinterpret_cast<const char*>(b_.data() + pos_), static_cast<size_t>(len));
    pos_ += static_cast<size_t>(len);
    return s;
  }

  ValueType value_type(const Ctx& c) {
    const uint64_t at = pos_;
    const uint32_t t = u32(c);
    if (t > kMaxValueType)
      fail(at, "{}: unknown value type {}, expected 0..{}", describe(c), t, kMaxValueType);
    return static_cast<ValueType>(t);
  }

  void header() {
    if (b_.size() < 4)
      fail(0, "truncated header: expected the 4-byte magic \"GGUF\", found only {} bytes",
           b_.size());
    if (std::memcmp(b_.data(), "GGUF", 4) != 0)
      fail(0, "bad magic: expected \"GGUF\" (47 47 55 46), found {:02x} {:02x} {:02x} {:02x}",
           b_[0], b_[1], b_[2], b_[3]);
    pos_ = 4;
    const uint32_t v = u32({"header (version)"});
    if (v == 1)
      fail(4, "unsupported GGUF version 1 (32-bit counts): expected version 2 or 3");
    if (v != 2 && v != 3) {
      const uint32_t swapped = __builtin_bswap32(v);
      if (swapped >= 1 && swapped <= 3)
        fail(4, "version field {:#x} looks like a big-endian GGUF v{}: expected a little-endian "
                "file of version 2 or 3", v, swapped);
      fail(4, "unknown GGUF version {}: expected 2 or 3", v);
    }
    f_.version_ = v;
    n_tensors_ = u64({"header (tensor_count)"});
    n_kv_ = u64({"header (metadata_kv_count)"});
    const uint64_t rem = remaining();
    if (n_kv_ > kMaxMetadataKvs || n_kv_ > rem / kMinKvBytes)
      fail(16, "metadata_kv_count {} is too large: each entry needs at least {} bytes, {} bytes "
               "remain (limit {} entries)", n_kv_, kMinKvBytes, rem, kMaxMetadataKvs);
    if (n_tensors_ > kMaxTensors || n_tensors_ > rem / kMinTensorInfoBytes ||
        n_tensors_ * kMinTensorInfoBytes + n_kv_ * kMinKvBytes > rem)
      fail(8, "tensor_count {} is too large: each tensor info needs at least {} bytes and {} "
              "metadata entries at least {}, {} bytes remain (limit {} tensors)",
           n_tensors_, kMinTensorInfoBytes, n_kv_, n_kv_ * kMinKvBytes, rem, kMaxTensors);
  }

  Value value(ValueType t, int depth, std::string_view key, int64_t index) {
    const Ctx c{index < 0 ? "value" : "array element", key, index};
    switch (t) {
      case ValueType::UINT8: return {t, uint64_t{u8(c)}};
      case ValueType::INT8: return {t, int64_t{static_cast<int8_t>(u8(c))}};
      case ValueType::UINT16: return {t, uint64_t{u16(c)}};
      case ValueType::INT16: return {t, int64_t{static_cast<int16_t>(u16(c))}};
      case ValueType::UINT32: return {t, uint64_t{u32(c)}};
      case ValueType::INT32: return {t, int64_t{static_cast<int32_t>(u32(c))}};
      case ValueType::UINT64: return {t, u64(c)};
      case ValueType::INT64: return {t, static_cast<int64_t>(u64(c))};
      case ValueType::FLOAT32: return {t, double{std::bit_cast<float>(u32(c))}};
      case ValueType::FLOAT64: return {t, std::bit_cast<double>(u64(c))};
      case ValueType::BOOL: {
        const uint64_t at = pos_;
        const uint8_t x = u8(c);
        if (x > 1) fail(at, "{}: invalid bool byte {}, expected 0 or 1", describe(c), x);
        return {t, x == 1};
      }
      case ValueType::STRING: return {t, str(c)};
      case ValueType::ARRAY: return array(depth, key, index);
    }
    fail(pos_, "internal: unhandled value type {}", static_cast<uint32_t>(t));
  }

  Value array(int depth, std::string_view key, int64_t index) {
    const uint64_t at = pos_;
    if (depth >= kMaxArrayDepth)
      fail(at, "array{} of '{}' is nested deeper than the limit of {} levels",
           index >= 0 ? fmt::format(" element {}", index) : std::string(), printable(key),
           kMaxArrayDepth);
    const ValueType et = value_type({"array element type", key, index});
    const uint64_t count_at = pos_;
    const uint64_t count = u64({"array count", key, index});
    const uint64_t min = min_wire_size(et);
    if (count > remaining() / min)
      fail(count_at, "array count {} of '{}' is too large: {} elements need at least {} bytes "
                     "each, only {} bytes remain",
           count, printable(key), value_type_name(et), min, remaining());
    if (count > kMaxMetadataValues - n_values_)
      fail(count_at, "array count {} of '{}' exceeds the limit of {} metadata values in all",
           count, printable(key), kMaxMetadataValues);
    n_values_ += count;
    Array a{et, {}};
    a.items.reserve(static_cast<size_t>(std::min(count, kMaxReserve)));
    for (uint64_t i = 0; i < count; ++i)
      a.items.push_back(value(et, depth + 1, key, static_cast<int64_t>(i)));
    return {ValueType::ARRAY, std::move(a)};
  }

  void metadata() {
    f_.kv_.reserve(static_cast<size_t>(std::min(n_kv_, kMaxReserve)));
    for (uint64_t i = 0; i < n_kv_; ++i) {
      const uint64_t key_at = pos_;
      std::string key = str({"metadata key"});
      if (key.empty()) fail(key_at, "metadata entry {}: key length 0, expected a non-empty key", i);
      if (auto it = f_.kv_index_.find(key); it != f_.kv_index_.end())
        fail(key_at, "duplicate metadata key '{}' (entries {} and {})", printable(key), it->second,
             i);
      const ValueType t = value_type({"value type", key});
      const uint64_t value_at = pos_;
      Value v = value(t, 0, key, -1);
      if (key == "general.alignment") alignment_at_ = value_at;
      f_.kv_index_.emplace(key, f_.kv_.size());
      f_.kv_.emplace_back(std::move(key), std::move(v));
    }
  }

  void alignment() {
    const Value* v = f_.find("general.alignment");
    if (!v) return;
    if (v->type != ValueType::UINT32)
      fail(alignment_at_, "general.alignment has type {}, expected uint32",
           value_type_name(v->type));
    const uint64_t a = std::get<uint64_t>(v->v);
    if (a == 0 || (a & (a - 1)) != 0)
      fail(alignment_at_, "general.alignment is {}, expected a nonzero power of two", a);
    f_.alignment_ = a;
  }

  void tensor_infos() {
    f_.tensors_.reserve(static_cast<size_t>(std::min(n_tensors_, kMaxReserve)));
    offset_at_.reserve(static_cast<size_t>(std::min(n_tensors_, kMaxReserve)));
    for (uint64_t i = 0; i < n_tensors_; ++i) {
      const uint64_t info_at = pos_;
      TensorInfo t;
      t.name = str({"tensor name"});
      if (t.name.empty()) fail(info_at, "tensor {}: empty name, expected a non-empty name", i);
      if (auto it = f_.tensor_index_.find(t.name); it != f_.tensor_index_.end())
        fail(info_at, "duplicate tensor name '{}' (tensors {} and {})", printable(t.name),
             it->second, i);
      const std::string_view name = t.name;
      const uint64_t dims_at = pos_;
      t.n_dims = u32({"tensor n_dims", name});
      if (t.n_dims == 0 || t.n_dims > 4)
        fail(dims_at, "tensor '{}': n_dims is {}, expected 1..4", printable(name), t.n_dims);
      for (uint32_t d = 0; d < t.n_dims; ++d) {
        const uint64_t ne_at = pos_;
        const uint64_t ne = u64({"tensor dimension", name, d});
        if (ne > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
          fail(ne_at, "tensor '{}': ne[{}] is {} (negative as int64), expected 0..2^63-1",
               printable(name), d, static_cast<int64_t>(ne));
        t.ne[d] = static_cast<int64_t>(ne);
      }
      const uint64_t type_at = pos_;
      const uint32_t tid = u32({"tensor type", name});
      const auto tr = type_traits(tid);
      if (!tr) fail(type_at, "tensor '{}': unknown ggml type id {}", printable(name), tid);
      t.type = static_cast<GgmlType>(tid);
      if (t.ne[0] % tr->block_size != 0)
        fail(dims_at + 4, "tensor '{}': ne[0] = {} is not a multiple of the block size {} of type {}",
             printable(name), t.ne[0], tr->block_size, tr->name);
      t.nbytes = checked_size(t, *tr, info_at);
      offset_at_.push_back(pos_);
      t.offset = u64({"tensor data offset", name});
      if (t.offset % f_.alignment_ != 0)
        fail(offset_at_.back(), "tensor '{}': data offset {} is not a multiple of the alignment {}",
             printable(name), t.offset, f_.alignment_);
      f_.tensor_index_.emplace(t.name, f_.tensors_.size());
      f_.tensors_.push_back(std::move(t));
    }
  }

  // Byte size of t with every product checked against kMaxTensorBytes; the element
  // count is checked too, since it can exceed the byte size (IQ1_S: 256 per 50 bytes).
  // Zero dimensions count as 1 in the checks, so that every partial product of ne
  // (TensorInfo::n_elements) fits in int64 even for empty tensors.
  size_t checked_size(const TensorInfo& t, const TypeTraits& tr, uint64_t at) {
    const auto bs = static_cast<uint64_t>(tr.block_size);
    uint64_t elements = 1;
    uint64_t bytes = 1;
    bool zero = false;
    bool overflow = false;
    for (int d = 0; d < 4; ++d) {
      const auto n = static_cast<uint64_t>(t.ne[d]);
      zero = zero || n == 0;
      const uint64_t f = n == 0 ? 1 : n;
      overflow = overflow || __builtin_mul_overflow(elements, f, &elements);
      if (d == 0) {
        bytes = f % bs == 0 ? f / bs : 1;  // f % bs != 0 only for ne[0] == 0
        overflow = overflow || __builtin_mul_overflow(bytes, tr.type_size, &bytes);
      } else {
        overflow = overflow || __builtin_mul_overflow(bytes, f, &bytes);
      }
    }
    if (overflow || bytes >= kMaxTensorBytes || elements >= kMaxTensorBytes)
      fail(at, "tensor '{}': shape [{}, {}, {}, {}] of type {} overflows: expected fewer than 2^62 "
               "elements and bytes",
           printable(t.name), t.ne[0], t.ne[1], t.ne[2], t.ne[3], tr.name);
    return zero ? 0 : static_cast<size_t>(bytes);
  }

  void data_section() {
    const uint64_t a = f_.alignment_;
    const uint64_t start = (pos_ + a - 1) / a * a;
    f_.data_offset_ = start;
    if (n_tensors_ == 0) return;
    if (start > b_.size())
      fail(pos_, "truncated padding before the data section: expected {} bytes up to offset {}, "
                 "found only {} before the end of the file ({} bytes)",
           start - pos_, start, remaining(), b_.size());
    const uint64_t data_size = b_.size() - start;
    for (size_t i = 0; i < f_.tensors_.size(); ++i) {
      TensorInfo& t = f_.tensors_[i];
      if (t.offset > data_size)
        fail(offset_at_[i], "tensor '{}': data offset {} (file offset {}) is out of range: the "
                            "data section holds {} bytes",
             printable(t.name), t.offset, start + t.offset, data_size);
      if (t.nbytes > data_size - t.offset)
        fail(start + t.offset, "truncated data of tensor '{}': expected {} bytes at file offset {}, "
                               "found only {} before the end of the file ({} bytes)",
             printable(t.name), t.nbytes, start + t.offset, data_size - t.offset, b_.size());
      t.data = b_.data() + start + t.offset;
    }
    std::vector<size_t> order(f_.tensors_.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    const auto& ts = f_.tensors_;
    std::sort(order.begin(), order.end(),
              [&](size_t x, size_t y) { return ts[x].offset < ts[y].offset; });
    const TensorInfo* prev = nullptr;
    for (size_t i : order) {
      const TensorInfo& t = ts[i];
      if (t.nbytes == 0) continue;
      if (prev && t.offset < prev->offset + prev->nbytes)
        fail(start + t.offset, "tensors '{}' (data [{}, {})) and '{}' (data [{}, {})) overlap",
             printable(prev->name), prev->offset, prev->offset + prev->nbytes, printable(t.name),
             t.offset, t.offset + t.nbytes);
      prev = &t;
    }
  }

  File& f_;
  std::span<const uint8_t> b_;
  const std::string& name_;
  size_t pos_ = 0;
  uint64_t n_tensors_ = 0;
  uint64_t n_kv_ = 0;
  uint64_t n_values_ = 0;
  uint64_t alignment_at_ = 0;
  std::vector<uint64_t> offset_at_;
};

File File::parse(std::span<const uint8_t> bytes, const std::string& name) {
  File f;
  Parser(f, bytes, name).run();
  return f;
}

File File::open(const std::string& path) {
  auto map = std::make_shared<MappedFile>(path);
  File f = parse(map->bytes(), path);
  f.map_ = std::move(map);
  return f;
}

const Value* File::find(std::string_view key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

std::optional<int64_t> File::get_int(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return std::nullopt;
  if (!v->is_integer())
    throw_error("{}: key '{}' has type {}, expected an integer", path_, key,
                value_type_name(v->type));
  const auto* u = std::get_if<uint64_t>(&v->v);
  if (u && *u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
    throw_error("{}: key '{}' has value {} ({}), which does not fit in int64", path_, key, *u,
                value_type_name(v->type));
  return v->as_int();
}

std::optional<double> File::get_float(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return std::nullopt;
  if (!v->is_number())
    throw_error("{}: key '{}' has type {}, expected a number", path_, key,
                value_type_name(v->type));
  return v->as_float();
}

std::optional<bool> File::get_bool(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return std::nullopt;
  if (v->type != ValueType::BOOL)
    throw_error("{}: key '{}' has type {}, expected bool", path_, key, value_type_name(v->type));
  return std::get<bool>(v->v);
}

std::optional<std::string> File::get_string(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return std::nullopt;
  if (v->type != ValueType::STRING)
    throw_error("{}: key '{}' has type {}, expected string", path_, key, value_type_name(v->type));
  return v->as_string();
}

const Array* File::get_array(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return nullptr;
  if (v->type != ValueType::ARRAY)
    throw_error("{}: key '{}' has type {}, expected array", path_, key, value_type_name(v->type));
  return &v->as_array();
}

int64_t File::require_int(std::string_view key) const {
  auto v = get_int(key);
  if (!v) throw_error("{}: missing required key '{}'", path_, key);
  return *v;
}

std::string File::require_string(std::string_view key) const {
  auto v = get_string(key);
  if (!v) throw_error("{}: missing required key '{}'", path_, key);
  return *v;
}

const TensorInfo* File::tensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

}  // namespace moe::gguf
