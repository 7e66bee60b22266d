// Temporary stubs until the SIMD kernels land: every path falls back to portable code.
#include "ops/cpu/quant_kernels.h"
namespace moe::ops::cpu {
GemmFn gemm_avx2(GgmlType) { return nullptr; }
GemmFn gemm_avx512(GgmlType) { return nullptr; }
GemmFn gemm_float_hwy(GgmlType t, int) { return gemm_portable(t); }
}
