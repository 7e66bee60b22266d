// Internal interface of the packed (row-interleaved) weight layouts of ops/pack.h:
// the byte layout of one (tile, block) record, shared by the packer (ops/pack.cpp),
// the portable kernels (pack_portable.cpp) and the AVX-512 VNNI kernels
// (pack_avx512.cpp), and the kernel table that ops/pack.cpp dispatches through.
//
// A packed matrix is rows / 16 tiles, one after another; a tile is its nb blocks
// (b = 0 .. nb-1) one after another; a (tile, block) record holds block b of the
// tile's 16 rows. All fp16 fields are raw bits; r is the row in the tile (0..15).
//
// Nibble group (32 four-bit values q[r][0..31] per row, 256 bytes): byte
//   64*j + 4*r + i  (j = 0..3, i = 0..3)  =  q[r][8j + i] | q[r][8j + 4 + i] << 4,
// so that 32-bit lane r of the j-th 64-byte vector holds 4 low nibbles (elements
// 8j..8j+3) and 4 high nibbles (8j+4..8j+7) of row r.
// Byte group (32 int8 values q[r][0..31] per row, 512 bytes): byte
//   64*j + 4*r + i  (j = 0..7, i = 0..3)  =  q[r][4j + i] ^ 0x80   (i.e. q + 128, unsigned).
//
// Q4_0 record (288 B = 16 x 18): d[16] fp16 | nibble group of q = stored nibble (0..15,
//   value d * (q - 8)), element order of the block.
// Q8_0 record (544 B = 16 x 34): d[16] fp16 | byte group.
// Q4_K record (2304 B = 16 x 144): d[16] fp16 | dmin[16] fp16 | scales: 3 planes of
//   16 dwords, plane p lane r = bytes 4p..4p+3 of row r's 12 packed 6-bit scale/min
//   bytes | 8 nibble groups, group s = sub-block s (elements 32s..32s+31).
// Q5_K record (2816 B = 16 x 176): d, dmin and scales as Q4_K | 8 groups of 5 x 64
//   bytes, group s = sub-block s (elements 32s..32s+31): byte 64c + 4r + i (c = 0..4,
//   i = 0..3) = q5[r][32s + 4c + i] | (bits 3c..3c+2 of X) << 5, where the 15-bit
//   X = q5[r][32s + 20 + i] | q5[r][32s + 24 + i] << 5 | q5[r][32s + 28 + i] << 10:
//   the first 20 elements are one mask each, the last 12 gather from the top bits.
// Q6_K record (3360 B = 16 x 210): d[16] fp16 | scales: 16 planes of 16 bytes, byte
//   16u + r = int8 scale of sub-block u (elements 16u..16u+15) of row r | 16 groups of
//   3 x 64 bytes, group u = sub-block u: byte 64c + 4r + i (c = 0..2, i = 0..3) =
//   q6[r][16u + 4c + i] | (bits 2c, 2c+1 of q6[r][16u + 12 + i]) << 6, so the first
//   12 elements are one mask each and the last 4 gather their 6 bits from the top
//   bits of the three vectors. Value d * sc * (q6 - 32).
// Every record is exactly 16 rows' worth of the original blocks, so a packed
// matrix has the same size as the original.
#pragma once
#include <cstddef>
#include <cstdint>

#include "gguf/types.h"

namespace moe::ops::cpu {

inline constexpr int kTileRows = 16;
inline constexpr size_t kNibbleGroupBytes = 256;
inline constexpr size_t kByteGroupBytes = 512;
inline constexpr size_t kRecQ4_0 = 32 + kNibbleGroupBytes;          // 288
inline constexpr size_t kRecQ8_0 = 32 + kByteGroupBytes;            // 544
inline constexpr size_t kRecQ4K = 32 + 32 + 192 + 8 * kNibbleGroupBytes;  // 2304
inline constexpr size_t kQ5KGroupBytes = 5 * 64;
inline constexpr size_t kRecQ5K = 256 + 8 * kQ5KGroupBytes;  // 2816
inline constexpr size_t kQ6KGroupBytes = 3 * 64;
inline constexpr size_t kRecQ6K = 32 + 256 + 16 * kQ6KGroupBytes;  // 3360
inline constexpr size_t kQ4KScalesOff = 64;  // also Q5_K
inline constexpr size_t kQ4KQsOff = 256;     // also Q5_K (its 5-vector groups)
inline constexpr size_t kQ6KScalesOff = 32;
inline constexpr size_t kQ6KQsOff = 288;

// Bytes of one (tile, block) record of type t; 0 for a type without a packed layout.
inline size_t packed_record_bytes(GgmlType t) {
  switch (t) {
    case GgmlType::Q4_0: return kRecQ4_0;
    case GgmlType::Q8_0: return kRecQ8_0;
    case GgmlType::Q4_K: return kRecQ4K;
    case GgmlType::Q5_K: return kRecQ5K;
    case GgmlType::Q6_K: return kRecQ6K;
    default: return 0;
  }
}

// Y[t*ldy + 16*k + r] = dot(row r of tile k, X row t) for k < tiles, r < 16, t < m.
// Wp points at the first tile; nb blocks per row; X rows are x_stride bytes apart,
// each in vec_dot_type of the weight type.
using PackedGemmFn = void (*)(const uint8_t* Wp, int64_t tiles, int64_t nb, const uint8_t* X,
                              size_t x_stride, int64_t m, float* Y, int64_t ldy);

PackedGemmFn gemm_packed_portable(GgmlType t);  // Q4_0, Q8_0, Q4_K, Q5_K, Q6_K
PackedGemmFn gemm_packed_avx512(GgmlType t);    // same, AVX-512 F/BW/VL/DQ + VNNI

}  // namespace moe::ops::cpu
