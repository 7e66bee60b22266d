// Deterministic bounded mutation fuzzer for the GGUF reader (runs in CI).
// Seeds are valid files from the Writer (both versions, several alignments,
// nested arrays, several tensor types); mutants come from bit flips, interesting
// bytes, u32/u64 field overwrites, range insert/delete/duplicate and truncation,
// plus exhaustive single-byte mutations and every truncation of a small file.
// Every parse must succeed or throw moe::Error; accepted files must have their
// tensor data in bounds (ASan checks the touch) and must rewrite to themselves.
// MOE_FUZZ_ITERS, MOE_FUZZ_SECONDS and MOE_FUZZ_SEED override the budget and the
// mutation seed (defaults fit CI: ~4 s in Release, ~10 s under ASan).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <random>

#include "base/error.h"
#include "base/timer.h"
#include "gguf/gguf.h"

namespace moe::gguf {
namespace {

using Bytes = std::vector<uint8_t>;

Bytes random_bytes(std::mt19937& rng, size_t n) {
  Bytes b(n);
  for (auto& x : b) x = static_cast<uint8_t>(rng());
  return b;
}

Value random_scalar(std::mt19937& rng, ValueType t) {
  switch (t) {
    case ValueType::UINT8: return Value::u8(static_cast<uint8_t>(rng()));
    case ValueType::INT8: return Value::i8(static_cast<int8_t>(rng()));
    case ValueType::UINT16: return Value::u16(static_cast<uint16_t>(rng()));
    case ValueType::INT16: return Value::i16(static_cast<int16_t>(rng()));
    case ValueType::UINT32: return Value::u32(static_cast<uint32_t>(rng()));
    case ValueType::INT32: return Value::i32(static_cast<int32_t>(rng()));
    case ValueType::UINT64: return Value::u64((uint64_t{rng()} << 32) | rng());
    case ValueType::INT64: return Value::i64(static_cast<int64_t>((uint64_t{rng()} << 32) | rng()));
    case ValueType::FLOAT32: return Value::f32(static_cast<float>(rng() % 100000) / 7.0f);
    case ValueType::FLOAT64: return Value::f64(static_cast<double>(rng()) / 3.0);
    case ValueType::BOOL: return Value::boolean(rng() & 1);
    default: return Value::str(std::string(rng() % 12, static_cast<char>('a' + rng() % 26)));
  }
}

constexpr ValueType kScalars[] = {
    ValueType::UINT8,  ValueType::INT8,  ValueType::UINT16,  ValueType::INT16, ValueType::UINT32,
    ValueType::INT32,  ValueType::UINT64, ValueType::INT64,  ValueType::FLOAT32,
    ValueType::FLOAT64, ValueType::BOOL, ValueType::STRING};

Value random_value(std::mt19937& rng, int depth) {
  if (depth < 3 && rng() % 4 == 0) {
    const bool nested = rng() % 3 == 0;
    const ValueType et = nested ? ValueType::ARRAY : kScalars[rng() % std::size(kScalars)];
    std::vector<Value> items;
    const size_t n = rng() % 6;
    if (nested) {
      const ValueType inner = kScalars[rng() % std::size(kScalars)];
      for (size_t i = 0; i < n; ++i) {
        std::vector<Value> in;
        for (size_t j = rng() % 4; j > 0; --j) in.push_back(random_scalar(rng, inner));
        items.push_back(Value::array(inner, std::move(in)));
      }
    } else {
      for (size_t i = 0; i < n; ++i) items.push_back(random_scalar(rng, et));
    }
    return Value::array(et, std::move(items));
  }
  return random_scalar(rng, kScalars[rng() % std::size(kScalars)]);
}

struct TensorKind {
  GgmlType type;
  int64_t block;
};
constexpr TensorKind kKinds[] = {{GgmlType::F32, 1},   {GgmlType::F16, 1},   {GgmlType::Q4_0, 32},
                                 {GgmlType::Q8_0, 32}, {GgmlType::Q4_K, 256}, {GgmlType::BF16, 1},
                                 {GgmlType::IQ1_S, 256}, {GgmlType::I8, 1},  {GgmlType::MXFP4, 32}};

// A small valid file; seed picks version, alignment, metadata and tensors.
Bytes make_seed(uint32_t seed) {
  std::mt19937 rng(seed);
  constexpr uint64_t kAlign[] = {32, 32, 1, 8, 64, 256};
  Writer w(kAlign[seed % std::size(kAlign)]);
  w.set("general.architecture", Value::str("fuzz"));
  const int n_kv = static_cast<int>(rng() % 6);
  for (int i = 0; i < n_kv; ++i) w.set("k." + std::to_string(i), random_value(rng, 0));
  if (seed % 5 == 0) {  // deep nesting at the limit
    Value deep = Value::array(ValueType::UINT16, {Value::u16(7)});
    for (int d = 1; d < kMaxArrayDepth; ++d) deep = Value::array(ValueType::ARRAY, {deep});
    w.set("deep", deep);
  }
  const int n_t = static_cast<int>(rng() % 4);
  for (int i = 0; i < n_t; ++i) {
    const TensorKind k = kKinds[rng() % std::size(kKinds)];
    std::vector<int64_t> ne = {k.block * (1 + static_cast<int64_t>(rng() % 2))};
    for (size_t d = rng() % 3; d > 0; --d) ne.push_back(1 + static_cast<int64_t>(rng() % 3));
    if (rng() % 8 == 0) ne.push_back(0);
    size_t n = row_bytes(k.type, ne[0]);
    for (size_t d = 1; d < ne.size(); ++d) n *= static_cast<size_t>(ne[d]);
    w.add_tensor("t." + std::to_string(i), k.type, ne, random_bytes(rng, n));
  }
  return w.to_bytes(2 + seed % 2);
}

// "fuzz.gguf: offset 12: tensor 'x': ne[0] = 33 ..." -> "tensor K: N = N ...": quoted
// names fold to K, words with a digit to N, and the message stops at "found" or at
// the second ':'. Hand-rolled (std::regex would dominate the fuzz loop).
std::string category(std::string_view m) {
  const std::string_view file = "fuzz.gguf: ", off = "offset ";
  if (m.starts_with(file)) m.remove_prefix(file.size());
  if (m.starts_with(off)) m.remove_prefix(std::min(m.size(), m.find(": ") + 2));
  std::string folded;
  for (size_t i = 0; i < m.size(); ++i) {
    if (m[i] == '\'') {
      const size_t close = m.find('\'', i + 1);
      folded += 'K';
      i = close == std::string_view::npos ? m.size() : close;
    } else {
      folded += m[i];
    }
  }
  std::string out;
  int colons = 0;
  size_t i = 0;
  while (i < folded.size()) {
    const size_t end = std::min(folded.find(' ', i), folded.size());
    std::string word = folded.substr(i, end - i);
    i = end + 1;
    if (word == "found") {
      out += out.empty() ? "found X" : " found X";
      break;
    }
    if (std::any_of(word.begin(), word.end(), [](char c) { return c >= '0' && c <= '9'; }))
      word = std::string("N") + (word.back() == ':' || word.back() == ',' ? word.substr(word.size() - 1) : "");
    if (!out.empty()) out += ' ';
    out += word;
    if (word.back() == ':' && ++colons == 2) break;
  }
  if (!out.empty() && (out.back() == ':' || out.back() == ',')) out.pop_back();
  return out;
}

Bytes rewrite(const File& f) {
  Writer w;
  for (const auto& [k, v] : f.metadata()) w.set(k, v);
  for (const auto& t : f.tensors()) {
    std::vector<int64_t> ne(t.ne, t.ne + t.n_dims);
    w.add_tensor(t.name, t.type, ne, {static_cast<const uint8_t*>(t.data), t.nbytes});
  }
  return w.to_bytes(f.version());
}

struct Stats {
  uint64_t execs = 0, accepted = 0, rejected = 0;
  std::map<std::string, uint64_t> categories;
  uint64_t checksum = 0;
};

// One execution. Returns false (after recording a test failure) on a finding.
bool run_one(const Bytes& in, Stats& st) {
  ++st.execs;
  try {
    const File f = File::parse(in, "fuzz.gguf");
    ++st.accepted;
    for (const auto& t : f.tensors()) {
      const auto* p = static_cast<const uint8_t*>(t.data);
      if (t.nbytes && (p < in.data() || p + t.nbytes > in.data() + in.size())) {
        ADD_FAILURE() << "tensor '" << t.name << "' data out of bounds";
        return false;
      }
      for (size_t i = 0; i < t.nbytes; ++i) st.checksum += p[i];  // ASan checks every byte
    }
    for (const auto& [k, v] : f.metadata()) {
      try {
        (void)f.get_int(k);
      } catch (const moe::Error&) {
      }
      try {
        (void)f.get_float(k);
      } catch (const moe::Error&) {
      }
    }
    // What the reader accepts, the writer must write, and rewriting is stable.
    const Bytes once = rewrite(f);
    const File g = File::parse(once, "rewrite.gguf");
    if (g.metadata().size() != f.metadata().size() || g.tensors().size() != f.tensors().size()) {
      ADD_FAILURE() << "rewrite changed the number of entries";
      return false;
    }
    for (size_t i = 0; i < f.metadata().size(); ++i) {
      if (!(g.metadata()[i].second == f.metadata()[i].second)) {
        ADD_FAILURE() << "rewrite changed key " << f.metadata()[i].first;
        return false;
      }
    }
    if (rewrite(g) != once) {
      ADD_FAILURE() << "rewrite is not stable";
      return false;
    }
  } catch (const moe::Error& e) {
    ++st.rejected;
    ++st.categories[category(e.what())];
  } catch (const std::exception& e) {
    ADD_FAILURE() << "non-moe::Error exception: " << e.what();
    return false;
  } catch (...) {
    ADD_FAILURE() << "unknown exception";
    return false;
  }
  return true;
}

void put_le(Bytes& b, size_t at, uint64_t x, int n) {
  for (int i = 0; i < n && at + static_cast<size_t>(i) < b.size(); ++i)
    b[at + static_cast<size_t>(i)] = static_cast<uint8_t>(x >> (8 * i));
}

constexpr uint8_t kBytes[] = {0x00, 0xff, 0x7f, 0x80, 0x01, 0x02, 0x09, 0x0c, 0x0d, 0x20};
constexpr uint32_t kU32[] = {0, 1, 2, 3, 4, 5, 8, 9, 12, 13, 31, 32, 33, 255, 256,
                             0x7fffffff, 0x80000000, 0xffffffff};
constexpr uint64_t kU64[] = {0,
                             1,
                             7,
                             32,
                             64,
                             0xffffffffull,
                             0x100000000ull,
                             (1ull << 62) - 1,
                             1ull << 62,
                             0x7fffffffffffffffull,
                             0x8000000000000000ull,
                             0xfffffffffffffff0ull,
                             0xffffffffffffffffull};

void mutate(Bytes& b, std::mt19937& rng) {
  const auto pos = [&](size_t extra = 0) { return b.empty() ? 0 : rng() % (b.size() + extra); };
  switch (rng() % 9) {
    case 0:  // bit flips
      for (int i = 1 + static_cast<int>(rng() % 4); i > 0 && !b.empty(); --i)
        b[pos()] ^= static_cast<uint8_t>(1u << (rng() % 8));
      break;
    case 1:
      if (!b.empty()) b[pos()] = kBytes[rng() % std::size(kBytes)];
      break;
    case 2:
      if (!b.empty()) put_le(b, pos(), kU32[rng() % std::size(kU32)], 4);
      break;
    case 3: {  // u64 fields are mostly 8-aligned after the 4-byte magic+version
      if (b.empty()) break;
      size_t at = pos();
      if (rng() % 2) at = at / 4 * 4;
      uint64_t x = kU64[rng() % std::size(kU64)];
      if (rng() % 4 == 0) x = b.size() + rng() % 64;  // just past the end
      put_le(b, at, x, 8);
      break;
    }
    case 4: {  // insert random bytes
      const size_t at = pos(1), n = 1 + rng() % 16;
      const Bytes r = random_bytes(rng, n);
      b.insert(b.begin() + static_cast<long>(at), r.begin(), r.end());
      break;
    }
    case 5: {  // delete a range
      if (b.empty()) break;
      const size_t at = pos(), n = std::min<size_t>(1 + rng() % 32, b.size() - at);
      b.erase(b.begin() + static_cast<long>(at), b.begin() + static_cast<long>(at + n));
      break;
    }
    case 6: {  // duplicate a range elsewhere
      if (b.empty()) break;
      const size_t from = pos(), n = std::min<size_t>(1 + rng() % 48, b.size() - from);
      const Bytes chunk(b.begin() + static_cast<long>(from), b.begin() + static_cast<long>(from + n));
      const size_t to = pos(1);
      b.insert(b.begin() + static_cast<long>(to), chunk.begin(), chunk.end());
      break;
    }
    case 7:  // truncate
      b.resize(pos());
      break;
    case 8:  // small increment/decrement of a byte (lengths, counts off by one)
      if (!b.empty()) b[pos()] += static_cast<uint8_t>(rng() % 2 ? 1 : 0xff);
      break;
  }
}

uint64_t env_or(const char* name, uint64_t def) {
  const char* s = std::getenv(name);
  return s ? std::strtoull(s, nullptr, 10) : def;
}

void report(const char* what, const Stats& st) {
  std::printf("[%s] executions=%llu accepted=%llu rejected=%llu categories=%zu\n", what,
              static_cast<unsigned long long>(st.execs),
              static_cast<unsigned long long>(st.accepted),
              static_cast<unsigned long long>(st.rejected), st.categories.size());
  std::vector<std::pair<uint64_t, std::string>> sorted;
  for (const auto& [c, n] : st.categories) sorted.emplace_back(n, c);
  std::sort(sorted.rbegin(), sorted.rend());
  for (const auto& [n, c] : sorted)
    std::printf("  %8llu  %s\n", static_cast<unsigned long long>(n), c.c_str());
  std::fflush(stdout);
}

TEST(GgufFuzz, SeedsAreValid) {
  for (uint32_t s = 0; s < 24; ++s) {
    const Bytes b = make_seed(s);
    const File f = File::parse(b, "seed.gguf");
    EXPECT_EQ(rewrite(f), b) << "seed " << s;
  }
}

// Every truncation and every single-byte interesting value / bit flip of small seeds.
TEST(GgufFuzz, ExhaustiveSmallFiles) {
  Stats st;
  for (uint32_t s : {1u, 2u, 5u, 6u}) {
    const Bytes seed = make_seed(s);
    ASSERT_LT(seed.size(), 4096u) << "seed " << s << " too large for exhaustive mutation";
    for (size_t n = 0; n < seed.size(); ++n)
      ASSERT_TRUE(run_one(Bytes(seed.begin(), seed.begin() + static_cast<long>(n)), st));
    Bytes m = seed;
    for (size_t i = 0; i < seed.size(); ++i) {
      for (uint8_t v : kBytes) {
        m[i] = v;
        ASSERT_TRUE(run_one(m, st)) << "seed " << s << " byte " << i << " = " << int{v};
      }
      for (int bit = 0; bit < 8; ++bit) {
        m[i] = static_cast<uint8_t>(seed[i] ^ (1u << bit));
        ASSERT_TRUE(run_one(m, st)) << "seed " << s << " byte " << i << " bit " << bit;
      }
      m[i] = seed[i];
    }
  }
  report("exhaustive", st);
  EXPECT_GT(st.accepted, 0u);
  EXPECT_GT(st.rejected, 0u);
}

TEST(GgufFuzz, RandomMutations) {
  const uint64_t iters = env_or("MOE_FUZZ_ITERS", 250000);
  const double seconds = static_cast<double>(env_or("MOE_FUZZ_SECONDS", 15));
  std::vector<Bytes> seeds;
  for (uint32_t s = 0; s < 24; ++s) seeds.push_back(make_seed(s));
  std::mt19937 rng(static_cast<uint32_t>(env_or("MOE_FUZZ_SEED", 20240607)));
  Stats st;
  Timer timer;
  uint64_t i = 0;
  for (; i < iters; ++i) {
    if ((i & 1023) == 0 && timer.seconds() > seconds) break;
    Bytes b = seeds[rng() % seeds.size()];
    for (int m = 1 + static_cast<int>(rng() % 4); m > 0; --m) mutate(b, rng);
    ASSERT_TRUE(run_one(b, st)) << "iteration " << i;
  }
  if (i < iters) std::printf("stopped after %.1f s at iteration %llu of %llu\n", timer.seconds(),
                             static_cast<unsigned long long>(i),
                             static_cast<unsigned long long>(iters));
  report("random", st);
  EXPECT_GT(st.accepted, 0u);
  EXPECT_GT(st.rejected, 0u);
}

}  // namespace
}  // namespace moe::gguf
