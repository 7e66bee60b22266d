// Row-interleaved ("packed") weight layouts for the int8 dot-product kernels.
//
// A GGUF matrix stores each row's blocks one after another. The packed layout
// groups kPackRows = 16 rows into a tile and, inside a tile, stores block b of
// all 16 rows together, arranged so that one 512-bit VNNI instruction
// (vpdpbusd) multiplies 4 weights of each of the 16 rows by the same 4
// activation bytes (broadcast): each lane of the accumulator is one row. The
// float work (scales) then happens once per block for 16 rows instead of once
// per row, the weights of a tile are one sequential stream for the prefetcher,
// and for several tokens the unpacked weights of a block are reused from
// registers.
//
// A packed matrix has exactly the original size (rows x row bytes); the byte
// layout of a tile's records is described in ops/cpu/pack_kernels.h. gemm_packed
// runs the AVX-512 VNNI kernels on the avx512 kernel path and portable C++ on the
// others, so a packed matrix works on any CPU.
//
// The loader packs weight matrices once at load time (model/model.cpp); the
// results of gemm_packed equal ops::gemm on the original matrix up to float
// summation order. The activations are the same rounded rows as ops::gemm's
// (quantize_activation_row, vec_dot_type).
#pragma once
#include <cstddef>
#include <cstdint>

#include "gguf/types.h"

namespace moe::ops {

inline constexpr int64_t kPackRows = 16;

// Whether a rows x n matrix of `type` has a packed layout: the type is one of
// the packed types (Q8_0, Q4_0, Q4_K, Q5_K, Q6_K), rows % kPackRows == 0 and n is a whole
// number of the type's blocks.
bool packable(GgmlType type, int64_t rows, int64_t n);

// Bytes of the packed form of a rows x n matrix (rows % kPackRows == 0).
size_t packed_matrix_bytes(GgmlType type, int64_t rows, int64_t n);

// Packs rows [0, rows) of W (rows row_stride bytes apart) into dst
// (packed_matrix_bytes(type, rows, n) bytes).
void pack_matrix(GgmlType type, const void* W, size_t row_stride, int64_t rows, int64_t n,
                 void* dst);

// As ops::gemm on the original matrix: Y[t][r - r0] = dot(W[r], X_q[t]) for t in
// [0, m), r in [r0, r1), on the packed matrix Wp (rows x n). r0 and r1 are
// multiples of kPackRows. X_q rows are x_stride bytes apart; Y rows ldy floats.
// m == 1 is decode (streams the tiles once); m > 1 reuses each block of weights
// for all m tokens.
void gemm_packed(GgmlType type, const void* Wp, int64_t rows, const void* X_q, size_t x_stride,
                 int64_t m, float* Y, int64_t ldy, int64_t r0, int64_t r1, int64_t n);

}  // namespace moe::ops
