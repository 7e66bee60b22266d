// Packing of weight matrices into the row-interleaved layouts of ops/pack.h and the
// dispatch of gemm_packed: the AVX-512 VNNI kernels (cpu/pack_avx512.cpp) on the
// avx512 kernel path, the portable kernels (cpu/pack_portable.cpp) on every other
// path (MOE_KERNEL / set_kernel_override), so a packed model runs on any CPU.
// The byte layout of a (tile, block) record is in cpu/pack_kernels.h; packing is
// plain C++, identical on every path, and the packed matrix has the original size.
#include "ops/pack.h"
#include "ops/cpu/profile.h"

#include <cstring>

#include "base/error.h"
#include "ops/cpu/pack_kernels.h"
#include "ops/cpu/quant_blocks.h"
#include "ops/quant.h"

namespace moe::ops {
namespace {

using cpu::kTileRows;

uint32_t load32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
void store32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, 4); }
uint64_t load64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

// One dword of a nibble group (pack_kernels.h) from the 8 bytes a = src[0..3],
// b = src[4..7] whose low (hi = false) or high nibbles are 8 consecutive values:
// byte i = nibble(a_i) | nibble(b_i) << 4.
uint32_t nibble_dword(uint32_t a, uint32_t b, bool hi) {
  constexpr uint32_t k = 0x0F0F0F0Fu;
  return hi ? ((a >> 4) & k) | (b & ~k) : (a & k) | ((b & k) << 4);
}

// Q4_0: element l < 16 is the low nibble of qs[l], l >= 16 the high nibble of
// qs[l - 16]; dword j of row r holds elements 8j .. 8j+7.
void pack_q4_0(const uint8_t* const* rows, int64_t b, uint8_t* rec) {
  for (int r = 0; r < kTileRows; ++r) {
    const auto& blk = reinterpret_cast<const BlockQ4_0*>(rows[r])[b];
    std::memcpy(rec + 2 * r, &blk.d, 2);
    for (int j = 0; j < 4; ++j) {
      const uint8_t* q = blk.qs + 8 * (j & 1);
      store32(rec + 32 + 64 * j + 4 * r, nibble_dword(load32(q), load32(q + 4), j >= 2));
    }
  }
}

void pack_q8_0(const uint8_t* const* rows, int64_t b, uint8_t* rec) {
  for (int r = 0; r < kTileRows; ++r) {
    const auto& blk = reinterpret_cast<const BlockQ8_0*>(rows[r])[b];
    std::memcpy(rec + 2 * r, &blk.d, 2);
    for (int j = 0; j < 8; ++j)
      store32(rec + 32 + 64 * j + 4 * r, load32(reinterpret_cast<const uint8_t*>(blk.qs) + 4 * j) ^ 0x80808080u);
  }
}

// Q4_K: chunk c (qs[32c .. 32c+31]) holds sub-block 2c in its low nibbles and
// 2c+1 in its high nibbles; the 12 scale bytes go to 3 dword planes as they are.
void pack_q4_k(const uint8_t* const* rows, int64_t b, uint8_t* rec) {
  for (int r = 0; r < kTileRows; ++r) {
    const auto& blk = reinterpret_cast<const BlockQ4K*>(rows[r])[b];
    std::memcpy(rec + 2 * r, &blk.d, 2);
    std::memcpy(rec + 32 + 2 * r, &blk.dmin, 2);
    for (int p = 0; p < 3; ++p) std::memcpy(rec + cpu::kQ4KScalesOff + 64 * p + 4 * r, blk.scales + 4 * p, 4);
    for (int s = 0; s < 8; ++s) {
      uint8_t* g = rec + cpu::kQ4KQsOff + cpu::kNibbleGroupBytes * s;
      for (int j = 0; j < 4; ++j) {
        const uint8_t* q = blk.qs + 32 * (s / 2) + 8 * j;
        store32(g + 64 * j + 4 * r, nibble_dword(load32(q), load32(q + 4), s & 1));
      }
    }
  }
}

// Q5_K: q5[e] = low nibble | bit 4; sub-block s = e / 32 sits in chunk s / 2 of qs
// (low nibbles for even s) and bit s of qh[e % 32]. Packed: whole 5-bit values in
// bytes, the last 12 of each 32 split over the top 3 bits (pack_kernels.h). Eight
// elements at a time, one per byte of a uint64 (values < 32: no carries between bytes).
void pack_q5_k(const uint8_t* const* rows, int64_t b, uint8_t* rec) {
  constexpr uint64_t k01 = 0x0101010101010101u, k0f = 0x0F0F0F0F0F0F0F0Fu;
  constexpr uint32_t k01d = 0x01010101u, k03d = 0x03030303u, k07d = 0x07070707u;
  for (int r = 0; r < kTileRows; ++r) {
    const auto& blk = reinterpret_cast<const BlockQ5K*>(rows[r])[b];
    std::memcpy(rec + 2 * r, &blk.d, 2);
    std::memcpy(rec + 32 + 2 * r, &blk.dmin, 2);
    for (int p = 0; p < 3; ++p) std::memcpy(rec + cpu::kQ4KScalesOff + 64 * p + 4 * r, blk.scales + 4 * p, 4);
    for (int s = 0; s < 8; ++s) {
      uint32_t q[8];  // q[k]: elements 32s + 4k .. 32s + 4k + 3
      for (int h = 0; h < 4; ++h) {
        const uint64_t v = load64(blk.qs + 32 * (s / 2) + 8 * h);
        const uint64_t e = ((s & 1) ? (v >> 4) & k0f : v & k0f) | ((load64(blk.qh + 8 * h) >> s) & k01) << 4;
        q[2 * h] = static_cast<uint32_t>(e);
        q[2 * h + 1] = static_cast<uint32_t>(e >> 32);
      }
      // 3-bit pieces c = 0..4 of X = q5 | q6 << 5 | q7 << 10 (bits 3c .. 3c + 2)
      const uint32_t x[5] = {q[5] & k07d, ((q[5] >> 3) & k03d) | (q[6] & k01d) << 2, (q[6] >> 1) & k07d,
                             ((q[6] >> 4) & k01d) | (q[7] & k03d) << 1, (q[7] >> 2) & k07d};
      uint8_t* g = rec + cpu::kQ4KQsOff + cpu::kQ5KGroupBytes * s + 4 * r;
      for (int c = 0; c < 5; ++c) store32(g + 64 * c, q[c] | x[c] << 5);
    }
  }
}

// Q6_K: element e = 128 n + 32 c + l (n < 2, c < 4, l < 32) has its low 4 bits in
// ql[64 n + l + 32 (c & 1)] (low nibble for c < 2) and its high 2 bits at bit 2c of
// qh[32 n + l]; scale of element e is scales[e / 16]. Packed: whole 6-bit values in
// bytes, the last 4 of each 16 split over the top 2 bits (pack_kernels.h). Eight
// elements at a time, one per byte of a uint64.
void pack_q6_k(const uint8_t* const* rows, int64_t b, uint8_t* rec) {
  constexpr uint64_t k03 = 0x0303030303030303u, k0f = 0x0F0F0F0F0F0F0F0Fu;
  constexpr uint32_t k03d = 0x03030303u;
  for (int r = 0; r < kTileRows; ++r) {
    const auto& blk = reinterpret_cast<const BlockQ6K*>(rows[r])[b];
    std::memcpy(rec + 2 * r, &blk.d, 2);
    for (int u = 0; u < 16; ++u) rec[cpu::kQ6KScalesOff + 16 * u + r] = static_cast<uint8_t>(blk.scales[u]);
    uint64_t q[32];  // q[j]: elements 8j .. 8j + 7
    for (int n = 0; n < 2; ++n)
      for (int c = 0; c < 4; ++c)
        for (int l = 0; l < 32; l += 8) {
          const uint64_t v = load64(blk.ql + 64 * n + l + 32 * (c & 1));
          q[16 * n + 4 * c + l / 8] =
              (c < 2 ? v & k0f : (v >> 4) & k0f) | ((load64(blk.qh + 32 * n + l) >> (2 * c)) & k03) << 4;
        }
    for (int u = 0; u < 16; ++u) {
      const uint32_t q3 = static_cast<uint32_t>(q[2 * u + 1] >> 32);  // elements 12..15
      const uint32_t w[3] = {static_cast<uint32_t>(q[2 * u]), static_cast<uint32_t>(q[2 * u] >> 32),
                             static_cast<uint32_t>(q[2 * u + 1])};
      uint8_t* g = rec + cpu::kQ6KQsOff + cpu::kQ6KGroupBytes * u + 4 * r;
      for (int c = 0; c < 3; ++c) store32(g + 64 * c, w[c] | ((q3 >> (2 * c)) & k03d) << 6);
    }
  }
}

using PackBlockFn = void (*)(const uint8_t* const*, int64_t, uint8_t*);
PackBlockFn pack_block_fn(GgmlType type) {
  switch (type) {
    case GgmlType::Q4_0: return pack_q4_0;
    case GgmlType::Q8_0: return pack_q8_0;
    case GgmlType::Q4_K: return pack_q4_k;
    case GgmlType::Q5_K: return pack_q5_k;
    case GgmlType::Q6_K: return pack_q6_k;
    default: return nullptr;
  }
}

}  // namespace

bool packable(GgmlType type, int64_t rows, int64_t n) {
  if (cpu::packed_record_bytes(type) == 0 || rows <= 0 || n <= 0) return false;
  return rows % kPackRows == 0 && n % traits(type).block_size == 0;
}

size_t packed_matrix_bytes(GgmlType type, int64_t rows, int64_t n) {
  MOE_CHECK(packable(type, rows, n), "{} x {} matrix of {} has no packed layout", rows, n,
            type_name(type));
  const int64_t nb = n / traits(type).block_size;
  return static_cast<size_t>(rows / kPackRows) * static_cast<size_t>(nb) * cpu::packed_record_bytes(type);
}

void pack_matrix(GgmlType type, const void* W, size_t row_stride, int64_t rows, int64_t n, void* dst) {
  MOE_CHECK(packable(type, rows, n), "{} x {} matrix of {} has no packed layout", rows, n,
            type_name(type));
  MOE_CHECK(row_stride >= row_bytes(type, n), "row stride {} < row bytes {}", row_stride,
            row_bytes(type, n));
  const int64_t nb = n / traits(type).block_size;
  const size_t rec = cpu::packed_record_bytes(type);
  const PackBlockFn pack_block = pack_block_fn(type);
  auto* out = static_cast<uint8_t*>(dst);
  const auto* w = static_cast<const uint8_t*>(W);
  for (int64_t t = 0; t < rows / kPackRows; ++t) {
    const uint8_t* tile_rows[kTileRows];
    for (int r = 0; r < kTileRows; ++r) tile_rows[r] = w + static_cast<size_t>(t * kPackRows + r) * row_stride;
    for (int64_t b = 0; b < nb; ++b, out += rec) pack_block(tile_rows, b, out);
  }
}

void gemm_packed(GgmlType type, const void* Wp, int64_t rows, const void* X_q, size_t x_stride,
                 int64_t m, float* Y, int64_t ldy, int64_t r0, int64_t r1, int64_t n) {
  if (r1 <= r0 || m <= 0) return;
  MOE_CHECK(packable(type, rows, n), "{} x {} matrix of {} has no packed layout", rows, n,
            type_name(type));
  MOE_CHECK(r0 >= 0 && r1 <= rows && r0 % kPackRows == 0 && r1 % kPackRows == 0,
            "gemm_packed rows [{}, {}) of {} are not whole 16-row tiles", r0, r1, rows);
  MOE_CHECK(m == 1 || (x_stride >= activation_row_bytes(type, n) && ldy >= r1 - r0),
            "gemm_packed: x_stride {} or ldy {} too small", x_stride, ldy);
  const int64_t nb = n / traits(type).block_size;
  const size_t tile_bytes = static_cast<size_t>(nb) * cpu::packed_record_bytes(type);
  const auto* w = static_cast<const uint8_t*>(Wp) + static_cast<size_t>(r0 / kPackRows) * tile_bytes;
  const cpu::PackedGemmFn fn = active_kernel_path() == KernelPath::avx512 ? cpu::gemm_packed_avx512(type)
                                                                          : cpu::gemm_packed_portable(type);
  const ProfileHook hook = profile_hook();
  const int64_t t0 = hook ? profile_now_ns() : 0;
  fn(w, (r1 - r0) / kPackRows, nb, static_cast<const uint8_t*>(X_q), x_stride, m, Y, ldy);
  if (hook) hook(Wp, r1 - r0, m, profile_now_ns() - t0);
}

}  // namespace moe::ops
