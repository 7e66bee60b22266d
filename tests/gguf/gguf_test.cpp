// Unit tests for the GGUF reader and writer: exact round-trips of every value
// type (both versions), tensors of several types with zero-copy data checks,
// open() from a real file, getters, writer validation, and one test per
// malformed-input case asserting what the error message names.
// Malformed files are built byte by byte with ByteBuilder so offsets are known.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <random>
#include <unistd.h>

#include "base/error.h"
#include "gguf/gguf.h"

namespace moe::gguf {
namespace {

std::vector<uint8_t> random_bytes(std::mt19937& rng, size_t n) {
  std::vector<uint8_t> b(n);
  for (auto& x : b) x = static_cast<uint8_t>(rng());
  return b;
}

// Little-endian byte builder for hand-made (often malformed) files.
struct ByteBuilder {
  std::vector<uint8_t> b;
  size_t size() const { return b.size(); }
  ByteBuilder& le(uint64_t x, int n) {
    for (int i = 0; i < n; ++i) b.push_back(static_cast<uint8_t>(x >> (8 * i)));
    return *this;
  }
  ByteBuilder& u8(uint8_t x) { return le(x, 1); }
  ByteBuilder& u32(uint32_t x) { return le(x, 4); }
  ByteBuilder& u64(uint64_t x) { return le(x, 8); }
  ByteBuilder& str(std::string_view s) {
    u64(s.size());
    b.insert(b.end(), s.begin(), s.end());
    return *this;
  }
  ByteBuilder& header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
    b.insert(b.end(), {'G', 'G', 'U', 'F'});
    return u32(version).u64(n_tensors).u64(n_kv);
  }
  ByteBuilder& kv_u32(std::string_view key, uint32_t v) { return str(key).u32(4).u32(v); }
  // name, dims, type, offset
  ByteBuilder& tensor(std::string_view name, std::vector<uint64_t> ne, uint32_t type,
                      uint64_t offset) {
    str(name).u32(static_cast<uint32_t>(ne.size()));
    for (auto n : ne) u64(n);
    return u32(type).u64(offset);
  }
  ByteBuilder& pad(size_t a) {
    while (b.size() % a) b.push_back(0);
    return *this;
  }
  ByteBuilder& fill(std::mt19937& rng, size_t n) {
    auto r = random_bytes(rng, n);
    b.insert(b.end(), r.begin(), r.end());
    return *this;
  }
};

// Parses bytes that must be rejected; returns the message.
std::string parse_error(const std::vector<uint8_t>& bytes, const std::string& name = "bad.gguf") {
  try {
    File::parse(bytes, name);
  } catch (const moe::Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "parse of " << name << " unexpectedly succeeded";
  return {};
}

void expect_contains(const std::string& msg, std::initializer_list<std::string_view> parts) {
  for (auto p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
}

// Every value type, extremes, specials, nested arrays.
std::vector<std::pair<std::string, Value>> all_values(std::mt19937& rng) {
  std::uniform_int_distribution<int64_t> i64d(std::numeric_limits<int64_t>::min(),
                                              std::numeric_limits<int64_t>::max());
  std::uniform_real_distribution<double> fd(-1e6, 1e6);
  std::vector<std::pair<std::string, Value>> kv;
  kv.emplace_back("u8", Value::u8(static_cast<uint8_t>(rng())));
  kv.emplace_back("u8.max", Value::u8(255));
  kv.emplace_back("i8", Value::i8(static_cast<int8_t>(rng())));
  kv.emplace_back("i8.min", Value::i8(-128));
  kv.emplace_back("u16", Value::u16(static_cast<uint16_t>(rng())));
  kv.emplace_back("i16", Value::i16(static_cast<int16_t>(rng())));
  kv.emplace_back("i16.min", Value::i16(std::numeric_limits<int16_t>::min()));
  kv.emplace_back("u32", Value::u32(static_cast<uint32_t>(rng())));
  kv.emplace_back("i32", Value::i32(static_cast<int32_t>(rng())));
  kv.emplace_back("u64", Value::u64(static_cast<uint64_t>(i64d(rng)) ^ (uint64_t{1} << 63)));
  kv.emplace_back("u64.max", Value::u64(std::numeric_limits<uint64_t>::max()));
  kv.emplace_back("i64", Value::i64(i64d(rng)));
  kv.emplace_back("i64.min", Value::i64(std::numeric_limits<int64_t>::min()));
  kv.emplace_back("f32", Value::f32(static_cast<float>(fd(rng))));
  kv.emplace_back("f32.inf", Value::f32(-std::numeric_limits<float>::infinity()));
  kv.emplace_back("f32.negzero", Value::f32(-0.0f));
  kv.emplace_back("f32.nan", Value::f32(std::numeric_limits<float>::quiet_NaN()));
  kv.emplace_back("f32.denorm", Value::f32(std::numeric_limits<float>::denorm_min()));
  kv.emplace_back("f64", Value::f64(fd(rng)));
  kv.emplace_back("f64.tiny", Value::f64(std::numeric_limits<double>::denorm_min()));
  kv.emplace_back("bool.t", Value::boolean(true));
  kv.emplace_back("bool.f", Value::boolean(false));
  kv.emplace_back("str", Value::str("hello, world"));
  kv.emplace_back("str.empty", Value::str(""));
  kv.emplace_back("str.utf8", Value::str("\xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x98\x80"));
  kv.emplace_back("str.nul", Value::str(std::string("a\0b", 3)));
  std::vector<float> fs(37);
  for (auto& f : fs) f = static_cast<float>(fd(rng));
  kv.emplace_back("arr.f32", Value::f32s(fs));
  std::vector<int32_t> is(41);
  for (auto& i : is) i = static_cast<int32_t>(rng());
  kv.emplace_back("arr.i32", Value::i32s(is));
  kv.emplace_back("arr.str", Value::strings({"a", "", "bc", std::string(300, 'x')}));
  kv.emplace_back("arr.empty", Value::array(ValueType::UINT64, {}));
  // One array per scalar type.
  std::vector<Value> u8s, i8s, u16s, i16s, u32s, u64s, i64s, f64s, bools;
  for (int i = 0; i < 9; ++i) {
    u8s.push_back(Value::u8(static_cast<uint8_t>(rng())));
    i8s.push_back(Value::i8(static_cast<int8_t>(rng())));
    u16s.push_back(Value::u16(static_cast<uint16_t>(rng())));
    i16s.push_back(Value::i16(static_cast<int16_t>(rng())));
    u32s.push_back(Value::u32(static_cast<uint32_t>(rng())));
    u64s.push_back(Value::u64(static_cast<uint64_t>(i64d(rng))));
    i64s.push_back(Value::i64(i64d(rng)));
    f64s.push_back(Value::f64(fd(rng)));
    bools.push_back(Value::boolean(rng() & 1));
  }
  kv.emplace_back("arr.u8", Value::array(ValueType::UINT8, u8s));
  kv.emplace_back("arr.i8", Value::array(ValueType::INT8, i8s));
  kv.emplace_back("arr.u16", Value::array(ValueType::UINT16, u16s));
  kv.emplace_back("arr.i16", Value::array(ValueType::INT16, i16s));
  kv.emplace_back("arr.u32", Value::array(ValueType::UINT32, u32s));
  kv.emplace_back("arr.u64", Value::array(ValueType::UINT64, u64s));
  kv.emplace_back("arr.i64", Value::array(ValueType::INT64, i64s));
  kv.emplace_back("arr.f64", Value::array(ValueType::FLOAT64, f64s));
  kv.emplace_back("arr.bool", Value::array(ValueType::BOOL, bools));
  // Nested: array of arrays of arrays of strings, plus mixed-length inner arrays.
  std::vector<Value> outer;
  for (int i = 0; i < 3; ++i) {
    std::vector<Value> mid;
    for (int j = 0; j < i + 1; ++j) mid.push_back(Value::strings({"x" + std::to_string(i), "y"}));
    outer.push_back(Value::array(ValueType::ARRAY, mid));
  }
  outer.push_back(Value::array(ValueType::ARRAY, {}));
  kv.emplace_back("arr.nested", Value::array(ValueType::ARRAY, outer));
  // Exactly the depth limit.
  Value deep = Value::array(ValueType::INT8, {Value::i8(-1), Value::i8(7)});
  for (int d = 1; d < kMaxArrayDepth; ++d) deep = Value::array(ValueType::ARRAY, {deep, deep});
  kv.emplace_back("arr.deep", deep);
  return kv;
}

class RoundTrip : public ::testing::TestWithParam<uint32_t> {};

TEST_P(RoundTrip, EveryValueTypeIsExact) {
  std::mt19937 rng(1234 + GetParam());
  const auto kv = all_values(rng);
  Writer w;
  for (const auto& [k, v] : kv) w.set(k, v);
  const auto bytes = w.to_bytes(GetParam());
  const File f = File::parse(bytes, "rt.gguf");
  EXPECT_EQ(f.version(), GetParam());
  EXPECT_EQ(f.alignment(), 32u);
  EXPECT_EQ(f.find("general.alignment"), nullptr);  // default alignment is not written
  ASSERT_EQ(f.metadata().size(), kv.size());
  for (size_t i = 0; i < kv.size(); ++i) {
    EXPECT_EQ(f.metadata()[i].first, kv[i].first);
    EXPECT_TRUE(f.metadata()[i].second == kv[i].second) << kv[i].first;
  }
  // Rewriting what was read gives the same bytes.
  Writer w2;
  for (const auto& [k, v] : f.metadata()) w2.set(k, v);
  EXPECT_EQ(w2.to_bytes(GetParam()), bytes);
}

INSTANTIATE_TEST_SUITE_P(Versions, RoundTrip, ::testing::Values(2u, 3u));

TEST(GgufValue, EqualityIsBitwiseForFloats) {
  EXPECT_TRUE(Value::f32(NAN) == Value::f32(NAN));
  EXPECT_FALSE(Value::f64(0.0) == Value::f64(-0.0));
  EXPECT_FALSE(Value::u32(1) == Value::u64(1));
  EXPECT_FALSE(Value::i32s({1, 2}) == Value::i32s({1, 3}));
}

TEST(GgufGetters, TypesAndErrors) {
  Writer w;
  w.set("a.u8", Value::u8(200));
  w.set("a.i16", Value::i16(-5));
  w.set("a.u64big", Value::u64(std::numeric_limits<uint64_t>::max()));
  w.set("a.f32", Value::f32(1.5f));
  w.set("a.str", Value::str("s"));
  w.set("a.bool", Value::boolean(true));
  w.set("a.arr", Value::i32s({1, 2, 3}));
  w.set("a.str", Value::str("replaced"));  // set() replaces
  const auto bytes = w.to_bytes();
  const File f = File::parse(bytes, "get.gguf");
  EXPECT_EQ(f.metadata().size(), 7u);
  EXPECT_EQ(f.get_int("a.u8"), 200);
  EXPECT_EQ(f.get_int("a.i16"), -5);
  EXPECT_EQ(f.get_int("missing"), std::nullopt);
  EXPECT_EQ(f.get_float("a.f32"), 1.5);
  EXPECT_EQ(f.get_float("a.i16"), -5.0);
  EXPECT_EQ(f.get_bool("a.bool"), true);
  EXPECT_EQ(f.get_string("a.str"), "replaced");
  ASSERT_NE(f.get_array("a.arr"), nullptr);
  EXPECT_EQ(f.get_array("a.arr")->items.size(), 3u);
  EXPECT_EQ(f.get_array("missing"), nullptr);
  EXPECT_EQ(f.require_int("a.u8"), 200);
  EXPECT_EQ(f.require_string("a.str"), "replaced");
  const auto err = [&](auto fn) {
    try {
      fn();
    } catch (const moe::Error& e) {
      return std::string(e.what());
    }
    ADD_FAILURE() << "no error";
    return std::string();
  };
  expect_contains(err([&] { (void)f.get_int("a.str"); }), {"get.gguf", "a.str", "string", "integer"});
  expect_contains(err([&] { (void)f.get_int("a.f32"); }), {"get.gguf", "a.f32", "float32"});
  expect_contains(err([&] { (void)f.get_int("a.u64big"); }), {"get.gguf", "a.u64big", "int64"});
  expect_contains(err([&] { (void)f.get_float("a.str"); }), {"get.gguf", "a.str", "string"});
  expect_contains(err([&] { (void)f.get_bool("a.u8"); }), {"get.gguf", "a.u8", "uint8", "bool"});
  expect_contains(err([&] { (void)f.get_string("a.arr"); }), {"get.gguf", "a.arr", "array"});
  expect_contains(err([&] { (void)f.get_array("a.str"); }), {"get.gguf", "a.str", "array"});
  expect_contains(err([&] { (void)f.require_int("nope"); }), {"get.gguf", "missing required key 'nope'"});
  expect_contains(err([&] { (void)f.require_string("nope"); }), {"missing required key 'nope'"});
  expect_contains(err([&] { (void)f.find("a.str")->as_int(); }), {"string"});
}

struct TensorSpec {
  std::string name;
  GgmlType type;
  std::vector<int64_t> ne;
};

size_t spec_bytes(const TensorSpec& s) {
  size_t n = row_bytes(s.type, s.ne[0]);
  for (size_t d = 1; d < s.ne.size(); ++d) n *= static_cast<size_t>(s.ne[d]);
  return n;
}

const std::vector<TensorSpec> kSpecs = {
    {"tok_embd.weight", GgmlType::F32, {16, 5}},
    {"blk.0.attn_q.weight", GgmlType::F16, {8, 3, 2}},
    {"blk.0.ffn_up_exps.weight", GgmlType::Q4_0, {64, 2, 3, 2}},
    {"blk.0.ffn_down_exps.weight", GgmlType::Q8_0, {32, 7}},
    {"blk.0.ffn_gate_exps.weight", GgmlType::Q4_K, {256, 3, 2}},
    {"blk.1.unsupported.weight", GgmlType::IQ1_S, {512}},  // known but not computed: still listed
    {"blk.1.bf16", GgmlType::BF16, {3}},
    {"blk.1.i32", GgmlType::I32, {5, 1, 1, 1}},
    {"empty", GgmlType::Q6_K, {256, 0}},
};

class Tensors : public ::testing::TestWithParam<std::tuple<uint32_t, uint64_t>> {};

TEST_P(Tensors, ZeroCopyDataAndLayout) {
  const auto [version, alignment] = GetParam();
  std::mt19937 rng(77 + version * 1000 + static_cast<uint32_t>(alignment));
  Writer w(alignment);
  w.set("general.architecture", Value::str("test"));
  std::vector<std::vector<uint8_t>> data;
  for (const auto& s : kSpecs) {
    data.push_back(random_bytes(rng, spec_bytes(s)));
    w.add_tensor(s.name, s.type, s.ne, data.back());
  }
  const auto bytes = w.to_bytes(version);
  const File f = File::parse(bytes, "t.gguf");
  EXPECT_EQ(f.alignment(), alignment);
  EXPECT_EQ(f.find("general.alignment") != nullptr, alignment != 32);
  EXPECT_EQ(f.data_offset() % alignment, 0u);
  EXPECT_EQ(f.file_size(), bytes.size());
  ASSERT_EQ(f.tensors().size(), kSpecs.size());
  for (size_t i = 0; i < kSpecs.size(); ++i) {
    const TensorInfo& t = f.tensors()[i];
    const TensorSpec& s = kSpecs[i];
    EXPECT_EQ(f.tensor(s.name), &t);
    EXPECT_EQ(t.name, s.name);
    EXPECT_EQ(t.type, s.type);
    EXPECT_EQ(t.n_dims, s.ne.size());
    int64_t n = 1;
    for (size_t d = 0; d < 4; ++d) {
      const int64_t want = d < s.ne.size() ? s.ne[d] : 1;
      EXPECT_EQ(t.ne[d], want);
      n *= want;
    }
    EXPECT_EQ(t.n_elements(), n);
    EXPECT_EQ(t.nbytes, data[i].size());
    EXPECT_EQ(t.row_bytes(), row_bytes(s.type, s.ne[0]));
    EXPECT_EQ(t.offset % alignment, 0u);
    // Zero copy: the pointer is into the parsed buffer itself.
    EXPECT_EQ(static_cast<const uint8_t*>(t.data), bytes.data() + f.data_offset() + t.offset);
    if (t.nbytes) {
      EXPECT_EQ(std::memcmp(t.data, data[i].data(), t.nbytes), 0) << s.name;
    }
  }
  EXPECT_EQ(f.tensor("nope"), nullptr);
}

INSTANTIATE_TEST_SUITE_P(VersionsAndAlignments, Tensors,
                         ::testing::Combine(::testing::Values(2u, 3u),
                                            ::testing::Values(uint64_t{1}, uint64_t{32},
                                                              uint64_t{64}, uint64_t{4096})));

TEST(GgufFile, OpenFromRealFileKeepsMappingAlive) {
  std::mt19937 rng(5);
  const auto path = (std::filesystem::temp_directory_path() /
                     ("moe_gguf_test_" + std::to_string(::getpid()) + ".gguf")).string();
  Writer w(64);
  w.set("general.name", Value::str("tmp"));
  w.set("general.alignment", Value::u32(128));  // set by the user: changes the alignment
  const auto d = random_bytes(rng, 2 * 34 * 3);
  w.add_tensor("w", GgmlType::Q8_0, {64, 3}, d);
  w.write(path);
  File moved;
  {
    File f = File::open(path);
    std::filesystem::remove(path);  // the mapping stays valid
    moved = std::move(f);
  }
  EXPECT_EQ(moved.path(), path);
  EXPECT_EQ(moved.alignment(), 128u);
  EXPECT_EQ(moved.get_int("general.alignment"), 128);
  EXPECT_EQ(moved.data_offset() % 128, 0u);
  ASSERT_NE(moved.tensor("w"), nullptr);
  EXPECT_EQ(std::memcmp(moved.tensor("w")->data, d.data(), d.size()), 0);
  try {
    File::open(path);
    ADD_FAILURE() << "open of a removed file succeeded";
  } catch (const moe::Error& e) {
    expect_contains(e.what(), {path});
  }
}

TEST(GgufFile, MetadataOnlyFileWithoutPadding) {
  Writer w;
  w.set("k", Value::u32(1));
  const auto bytes = w.to_bytes();
  const File f = File::parse(bytes, "m.gguf");
  EXPECT_TRUE(f.tensors().empty());
  EXPECT_EQ(f.get_int("k"), 1);
}

TEST(GgufWriter, ValidatesItsInput) {
  const auto err = [](auto fn) {
    try {
      fn();
    } catch (const moe::Error& e) {
      return std::string(e.what());
    }
    ADD_FAILURE() << "no error";
    return std::string();
  };
  std::vector<uint8_t> d(10);
  expect_contains(err([] { Writer w(0); }), {"power of two"});
  expect_contains(err([] { Writer w(48); }), {"power of two"});
  expect_contains(err([&] { Writer().add_tensor("t", GgmlType::F32, {3}, d); }),
                  {"'t'", "10 bytes", "expected 12"});
  expect_contains(err([&] { Writer().add_tensor("t", GgmlType::Q8_0, {33}, d); }), {"block size"});
  expect_contains(err([&] { Writer().add_tensor("t", GgmlType::F32, {}, d); }), {"dimensions"});
  expect_contains(err([&] { Writer().add_tensor("t", GgmlType::F32, {1, 1, 1, 1, 1}, d); }),
                  {"dimensions"});
  expect_contains(err([&] { Writer().add_tensor("t", GgmlType::F32, {-1}, d); }), {"negative"});
  expect_contains(err([&] { Writer().add_tensor("t", GgmlType::F32, {1 << 30, 1 << 30, 1 << 30}, d); }),
                  {"overflows"});
  expect_contains(err([&] { Writer().add_tensor("t", static_cast<GgmlType>(4), {1}, d); }),
                  {"unknown ggml type id 4"});
  expect_contains(err([&] {
                    Writer w;
                    w.add_tensor("t", GgmlType::I8, {10}, d);
                    w.add_tensor("t", GgmlType::I8, {10}, d);
                  }),
                  {"duplicate tensor name 't'"});
  expect_contains(err([] { Writer().set("k", Value{ValueType::UINT8, uint64_t{256}}); }),
                  {"'k'", "256", "out of range"});
  expect_contains(err([] { Writer().set("k", Value{ValueType::INT32, uint64_t{1}}); }),
                  {"signed integer"});
  expect_contains(err([] { Writer().set("k", Value{ValueType::FLOAT32, 1e300}); }),
                  {"float32"});
  expect_contains(err([] { Writer().set("k", Value::array(ValueType::INT8, {Value::u8(1)})); }),
                  {"element 0", "uint8", "int8"});
  expect_contains(err([] { Writer().set("", Value::u8(1)); }), {"empty"});
  expect_contains(err([] { Writer().set("general.alignment", Value::u64(64)); }),
                  {"general.alignment", "uint64"});
  expect_contains(err([] { Writer().set("general.alignment", Value::u32(24)); }),
                  {"power of two"});
  expect_contains(err([] {
                    Value deep = Value::u8(1);
                    for (int i = 0; i <= kMaxArrayDepth; ++i)
                      deep = Value::array(deep.type, {deep});
                    Writer().set("deep", deep);
                  }),
                  {"nested deeper"});
  expect_contains(err([] { (void)Writer().to_bytes(1); }), {"version 1"});
  expect_contains(err([] { Writer().write("/nonexistent-dir/x.gguf"); }),
                  {"/nonexistent-dir/x.gguf"});
}

// ---- Malformed inputs ----------------------------------------------------

TEST(GgufMalformed, BadMagic) {
  ByteBuilder b;
  b.b = {'G', 'G', 'U', 'G'};
  b.u32(3).u64(0).u64(0);
  expect_contains(parse_error(b.b), {"bad.gguf", "offset 0", "magic", "47 47 55 46", "47 47 55 47"});
}

TEST(GgufMalformed, TruncatedHeaderAtEveryByte) {
  ByteBuilder full;
  full.header(0, 0);
  for (size_t n = 0; n < full.size(); ++n) {
    std::vector<uint8_t> cut(full.b.begin(), full.b.begin() + static_cast<long>(n));
    expect_contains(parse_error(cut), {"bad.gguf", "truncated"});
  }
  EXPECT_NO_THROW(File::parse(full.b, "ok.gguf"));
}

TEST(GgufMalformed, UnsupportedAndUnknownVersions) {
  ByteBuilder v1;
  v1.header(0, 0, 1);
  expect_contains(parse_error(v1.b), {"bad.gguf", "offset 4", "version 1", "2 or 3"});
  ByteBuilder v4;
  v4.header(0, 0, 4);
  expect_contains(parse_error(v4.b), {"offset 4", "unknown GGUF version 4", "2 or 3"});
  ByteBuilder be;
  be.header(0, 0, 0x03000000);
  expect_contains(parse_error(be.b), {"big-endian"});
}

TEST(GgufMalformed, TruncatedKeyValueAndArray) {
  // A leading entry keeps the up-front count check satisfied at every cut below.
  ByteBuilder b;
  b.header(0, 3).str("padding").u32(8).str(std::string(64, 'p'));
  const size_t key_at = b.size();
  b.str("key.one").u32(4);
  const size_t value_at = b.size();
  b.u32(7);
  const size_t key2_at = b.size();
  b.str("key.arr").u32(9).u32(4).u64(5);
  const size_t elems_at = b.size();
  for (int i = 0; i < 5; ++i) b.u32(static_cast<uint32_t>(i));
  EXPECT_NO_THROW(File::parse(b.b, "ok.gguf"));
  const auto cut = [&](size_t n) {
    return std::vector<uint8_t>(b.b.begin(), b.b.begin() + static_cast<long>(n));
  };
  expect_contains(parse_error(cut(key_at + 3)), {"bad.gguf", fmt::format("offset {}", key_at),
                                                 "truncated metadata key", "expected 8 bytes",
                                                 "found only 3"});
  expect_contains(parse_error(cut(key_at + 10)),
                  {"metadata key", "string length 7", "exceeds the 2 bytes"});
  expect_contains(parse_error(cut(value_at - 1)), {"truncated value type of 'key.one'"});
  expect_contains(parse_error(cut(value_at + 2)),
                  {fmt::format("offset {}", value_at), "truncated value of 'key.one'",
                   "expected 4 bytes", "found only 2"});
  expect_contains(parse_error(cut(key2_at + 20)), {"truncated array element type of 'key.arr'"});
  expect_contains(parse_error(cut(key2_at + 25)), {"truncated array count of 'key.arr'"});
  expect_contains(parse_error(cut(elems_at + 9)),
                  {fmt::format("offset {}", elems_at - 8), "array count 5 of 'key.arr' is too large",
                   "uint32", "at least 4 bytes each", "9 bytes remain"});
  // Fixed-size elements cannot be cut once the count check passed; strings can.
  ByteBuilder s;
  s.header(0, 1).str("key.sarr").u32(9).u32(8).u64(2);
  const size_t strs_at = s.size();
  s.str("ab").str("cd");
  EXPECT_NO_THROW(File::parse(s.b, "ok.gguf"));
  s.b.resize(strs_at + 10 + 6);
  expect_contains(parse_error(s.b), {fmt::format("offset {}", strs_at + 10),
                                     "truncated array element 1 of 'key.sarr'",
                                     "expected 8 bytes", "found only 6"});
  s.b.resize(strs_at + 10 + 8 + 1);
  expect_contains(parse_error(s.b), {fmt::format("offset {}", strs_at + 10),
                                     "array element 1 of 'key.sarr'", "string length 2",
                                     "exceeds the 1 bytes"});
}

TEST(GgufMalformed, StringLengthPastEndOfFile) {
  ByteBuilder b;
  b.header(0, 1).u64(1000).b.insert(b.b.end(), 20, 'k');
  expect_contains(parse_error(b.b), {"bad.gguf", "offset 24", "string length 1000", "exceeds the 20 bytes"});
  ByteBuilder v;
  v.header(0, 1).str("k").u32(8).u64(uint64_t{1} << 63).u8('x');
  expect_contains(parse_error(v.b), {"offset 37", "value of 'k'", "string length 9223372036854775808"});
}

TEST(GgufMalformed, ArrayCountOverflowAndTooLarge) {
  for (uint64_t count : {std::numeric_limits<uint64_t>::max(), uint64_t{1} << 61, uint64_t{3}}) {
    ByteBuilder b;
    b.header(0, 1).str("arr").u32(9).u32(12).u64(count).u64(1).u64(2);  // room for 2 f64
    expect_contains(parse_error(b.b), {"offset 43", fmt::format("array count {} of 'arr' is too large", count), "float64", "16 bytes remain"});
  }
  // Array of arrays: each element needs 12 bytes.
  ByteBuilder n;
  n.header(0, 1).str("arr").u32(9).u32(9).u64(2).u32(0).u64(0).u32(0);
  expect_contains(parse_error(n.b), {"array count 2 of 'arr' is too large", "12 bytes each"});
}

TEST(GgufMalformed, ArrayNestingDepthLimit) {
  const auto build = [](int levels) {
    ByteBuilder b;
    b.header(0, 1).str("deep").u32(9);
    for (int i = 1; i < levels; ++i) b.u32(9).u64(1);
    b.u32(0).u64(1).u8(42);
    return b.b;
  };
  EXPECT_NO_THROW(File::parse(build(kMaxArrayDepth), "ok.gguf"));
  expect_contains(parse_error(build(kMaxArrayDepth + 1)),
                  {"bad.gguf", "offset", "'deep'", "nested deeper than the limit of 8"});
  // Far deeper than the limit must not recurse without bound.
  expect_contains(parse_error(build(100000)), {"nested deeper"});
}

TEST(GgufMalformed, CountsLargerThanTheFile) {
  ByteBuilder kv;
  kv.header(0, uint64_t{1} << 40).str("k").u32(0).u8(1);
  expect_contains(parse_error(kv.b), {"offset 16", "metadata_kv_count 1099511627776 is too large", "14 bytes"});
  ByteBuilder kv2;
  kv2.header(0, 2).str("k").u32(0).u8(1);  // 14 bytes: room for exactly one entry
  expect_contains(parse_error(kv2.b), {"metadata_kv_count 2 is too large", "14 bytes remain"});
  ByteBuilder t;
  t.header(std::numeric_limits<uint64_t>::max(), 0).tensor("t", {1}, 0, 0);
  expect_contains(parse_error(t.b), {"offset 8", "tensor_count 18446744073709551615 is too large"});
}

TEST(GgufMalformed, EmptyKeyAndInvalidUtf8Key) {
  ByteBuilder e;
  e.header(0, 1).str("").u32(0).u8(1).u8(0);  // 14 bytes, the minimum for one entry
  expect_contains(parse_error(e.b), {"offset 24", "key length 0"});
  ByteBuilder u;
  u.header(0, 1).str("\xff\xfe bad utf8").u32(0).u8(1);
  const File f = File::parse(u.b, "utf8.gguf");
  EXPECT_EQ(f.metadata()[0].first, "\xff\xfe bad utf8");
}

TEST(GgufMalformed, DuplicateKey) {
  ByteBuilder b;
  b.header(0, 2).kv_u32("dup.key", 1);
  const size_t second = b.size();
  b.kv_u32("dup.key", 2);
  expect_contains(parse_error(b.b), {fmt::format("offset {}", second), "duplicate metadata key 'dup.key'"});
}

TEST(GgufMalformed, UnknownValueTypeAndBadBool) {
  ByteBuilder t;
  t.header(0, 1).str("k").u32(13).u32(0);
  expect_contains(parse_error(t.b), {"offset 33", "unknown value type 13", "0..12"});
  ByteBuilder a;
  a.header(0, 1).str("k").u32(9).u32(0xffffffff).u64(0);
  expect_contains(parse_error(a.b), {"offset 37", "array element type of 'k'", "unknown value type 4294967295"});
  ByteBuilder b;
  b.header(0, 1).str("k").u32(7).u8(2);
  expect_contains(parse_error(b.b), {"offset 37", "invalid bool byte 2", "0 or 1"});
}

TEST(GgufMalformed, AlignmentTypeAndValue) {
  ByteBuilder t;
  t.header(0, 1).str("general.alignment").u32(10).u64(64);
  expect_contains(parse_error(t.b), {"offset 53", "general.alignment has type uint64, expected uint32"});
  for (uint32_t a : {0u, 48u, 0xffffffffu}) {
    ByteBuilder v;
    v.header(0, 1).kv_u32("general.alignment", a);
    expect_contains(parse_error(v.b), {"offset 53", fmt::format("general.alignment is {}", a), "power of two"});
  }
}

// One valid tensor file with two F32 [4] tensors; returns the builder plus the
// offsets of the second tensor's info and offset field.
struct TwoTensors {
  ByteBuilder b;
  size_t info2_at = 0, ne2_at = 0, type2_at = 0, offset2_at = 0, data_at = 0;
};
TwoTensors two_tensors(std::mt19937& rng, uint64_t second_offset = 32,
                       std::vector<uint64_t> ne = {4}, uint32_t type = 0) {
  TwoTensors t;
  t.b.header(2, 0).tensor("first", {4}, 0, 0);
  t.info2_at = t.b.size();
  t.ne2_at = t.info2_at + 8 + 6 + 4;
  t.b.tensor("second", ne, type, second_offset);
  t.type2_at = t.b.size() - 12;
  t.offset2_at = t.b.size() - 8;
  t.b.pad(32);
  t.data_at = t.b.size();
  t.b.fill(rng, 48);
  return t;
}

TEST(GgufMalformed, ValidTwoTensorBaseline) {
  std::mt19937 rng(1);
  const auto t = two_tensors(rng);
  const File f = File::parse(t.b.b, "ok.gguf");
  EXPECT_EQ(f.tensors()[1].data, t.b.b.data() + t.data_at + 32);
}

TEST(GgufMalformed, TruncatedTensorInfoAndData) {
  std::mt19937 rng(2);
  const auto t = two_tensors(rng);
  // Early cuts trip the up-front tensor_count check, later ones the field reads.
  int truncated = 0;
  for (size_t n = t.info2_at; n < t.offset2_at + 8; ++n) {
    std::vector<uint8_t> cut(t.b.b.begin(), t.b.b.begin() + static_cast<long>(n));
    const std::string msg = parse_error(cut);
    expect_contains(msg, {"bad.gguf", "offset", "tensor"});
    const bool truncation = msg.find("truncated tensor") != std::string::npos;
    truncated += truncation;
    EXPECT_TRUE(truncation || msg.find("too large") != std::string::npos ||
                msg.find("exceeds") != std::string::npos) << msg;
  }
  EXPECT_GT(truncated, 10);
  std::vector<uint8_t> type_cut(t.b.b.begin(), t.b.b.begin() + static_cast<long>(t.type2_at + 2));
  expect_contains(parse_error(type_cut), {fmt::format("offset {}", t.type2_at),
                                          "truncated tensor type of 'second'", "expected 4 bytes"});
  std::vector<uint8_t> cut(t.b.b.begin(), t.b.b.begin() + static_cast<long>(t.offset2_at + 8 + 3));
  expect_contains(parse_error(cut), {"truncated padding before the data section"});
  cut.assign(t.b.b.begin(), t.b.b.begin() + static_cast<long>(t.data_at + 40));
  expect_contains(parse_error(cut), {fmt::format("offset {}", t.data_at + 32), "truncated data of tensor 'second'", "expected 16 bytes", "found only 8"});
}

TEST(GgufMalformed, TensorOffsetOutOfRangeOrMisaligned) {
  std::mt19937 rng(3);
  auto t = two_tensors(rng, uint64_t{1} << 62);
  expect_contains(parse_error(t.b.b), {fmt::format("offset {}", t.offset2_at), "tensor 'second'", "out of range", "48 bytes"});
  t = two_tensors(rng, 4);
  expect_contains(parse_error(t.b.b), {fmt::format("offset {}", t.offset2_at), "data offset 4 is not a multiple of the alignment 32"});
  t = two_tensors(rng, 64);  // in range but runs past the end: [64, 80) of 48
  expect_contains(parse_error(t.b.b), {"tensor 'second'", "out of range"});
}

TEST(GgufMalformed, OverlappingTensors) {
  std::mt19937 rng(4);
  const auto t = two_tensors(rng, 0);
  expect_contains(parse_error(t.b.b), {"'first'", "'second'", "overlap"});
}

TEST(GgufMalformed, DimensionOverflowAndNegative) {
  std::mt19937 rng(5);
  auto t = two_tensors(rng, 32, {uint64_t{1} << 31, uint64_t{1} << 31});
  expect_contains(parse_error(t.b.b), {fmt::format("offset {}", t.info2_at), "'second'", "overflows", "2^62"});
  t = two_tensors(rng, 32, {uint64_t{1} << 40, uint64_t{1} << 40, uint64_t{1} << 40, 0});
  expect_contains(parse_error(t.b.b), {"overflows"});  // even with a zero dimension
  // IQ1_S: bytes fit below 2^62 but the element count does not.
  t = two_tensors(rng, 32, {256, (uint64_t{1} << 54) + 1}, 19);
  expect_contains(parse_error(t.b.b), {"overflows"});
  t = two_tensors(rng, 32, {4, std::numeric_limits<uint64_t>::max()});
  expect_contains(parse_error(t.b.b), {fmt::format("offset {}", t.ne2_at + 8), "ne[1] is -1", "negative"});
}

TEST(GgufMalformed, UnknownTypeIdAndBlockSize) {
  std::mt19937 rng(6);
  auto t = two_tensors(rng, 32, {4}, 4);  // 4 and 5 were removed from ggml
  expect_contains(parse_error(t.b.b), {fmt::format("offset {}", t.type2_at), "'second'", "unknown ggml type id 4"});
  t = two_tensors(rng, 32, {4}, 1000);
  expect_contains(parse_error(t.b.b), {"unknown ggml type id 1000"});
  t = two_tensors(rng, 32, {33}, 8);
  expect_contains(parse_error(t.b.b), {fmt::format("offset {}", t.ne2_at), "ne[0] = 33", "block size 32", "q8_0"});
  // The low-bit types: a row that is not a whole number of blocks is refused at load.
  for (uint32_t id : {10u, 11u, 16u, 17u, 18u, 19u, 21u, 22u, 23u, 29u, 34u, 35u}) {
    t = two_tensors(rng, 32, {128}, id);
    expect_contains(parse_error(t.b.b), {"ne[0] = 128", "block size 256", std::string(type_traits(id)->name)});
  }
  t = two_tensors(rng, 32, {48}, 20);
  expect_contains(parse_error(t.b.b), {"ne[0] = 48", "block size 32", "iq4_nl"});
  // A whole block is accepted: ne [256] of iq2_xxs = 66 bytes, a type moe computes with.
  ByteBuilder b;
  b.header(1, 0).tensor("iq", {256}, 16, 0).pad(32).fill(rng, 66);
  const File f = File::parse(b.b, "iq.gguf");
  EXPECT_EQ(f.tensors()[0].type, GgmlType::IQ2_XXS);
  EXPECT_TRUE(traits(f.tensors()[0].type).supported);
}

TEST(GgufMalformed, DuplicateTensorNameAndBadDims) {
  std::mt19937 rng(7);
  ByteBuilder d;
  d.header(2, 0).tensor("same", {4}, 0, 0);
  const size_t second = d.size();
  d.tensor("same", {4}, 0, 32).pad(32).fill(rng, 48);
  expect_contains(parse_error(d.b), {fmt::format("offset {}", second), "duplicate tensor name 'same'"});
  for (uint32_t n : {0u, 5u}) {
    ByteBuilder b;
    b.header(1, 0).str("t").u32(n).u64(4).u64(1).u64(1).u64(1).u64(1).u32(0).u64(0).pad(32).fill(rng, 16);
    expect_contains(parse_error(b.b), {"offset 33", fmt::format("n_dims is {}", n), "1..4"});
  }
  ByteBuilder e;
  e.header(1, 0).tensor("", {4}, 0, 0).pad(32).fill(rng, 16);
  expect_contains(parse_error(e.b), {"offset 24", "empty name"});
}

TEST(GgufMalformed, ErrorNamesTheOpenedPath) {
  const auto path = (std::filesystem::temp_directory_path() /
                     ("moe_gguf_bad_" + std::to_string(::getpid()) + ".gguf")).string();
  {
    ByteBuilder b;
    b.header(0, 0, 7);
    std::FILE* f = std::fopen(path.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    std::fwrite(b.b.data(), 1, b.size(), f);
    std::fclose(f);
  }
  try {
    File::open(path);
    ADD_FAILURE() << "open succeeded";
  } catch (const moe::Error& e) {
    expect_contains(e.what(), {path, "version 7"});
  }
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace moe::gguf
