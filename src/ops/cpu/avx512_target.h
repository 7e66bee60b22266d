// Compiler setup shared by the hand-written AVX-512 VNNI kernels (quant_avx512_zmm.cpp,
// pack_avx512.cpp): the files are compiled for the baseline ISA and their functions
// carry per-function target attributes, so one binary runs on any x86-64 and picks
// these kernels at run time (ops/quant.cpp's kernel path).
//   MOE_TF: the attribute for a kernel function; MOE_T: the same, inline (helpers).
#pragma once
#include <immintrin.h>

// GCC 12 flags the _mm512_undefined_* inside its own cast/reduce intrinsics.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#define MOE_TF __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx512dq,avx2,fma,f16c")))
#define MOE_T MOE_TF inline
