// temporary
#include "ops/cpu/quant_kernels.h"
namespace moe::ops::cpu {
GemmFn gemm_float_hwy(GgmlType t, int) { return gemm_portable(t); }
}
