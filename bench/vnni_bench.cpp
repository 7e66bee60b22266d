// The int8 ceilings of the packed kernels on this core, for reading their GMAC/s:
//   vnni_peak:       12 independent 512-bit vpdpbusd chains (64 int8 MACs each), the
//                    instruction's throughput limit;
//   vnni_block_mix:  the Q8_0/Q4_0 inner step of ops/cpu/pack_avx512.cpp per token and
//                    block: 8 vpdpbusd with a broadcast activation dword, then
//                    vcvtdq2ps, vmulps (weight x activation scale) and vfmadd231ps,
//                    for 8 interleaved tokens: what the op mix alone allows.
// Both count 64 MACs per vpdpbusd. x86-64 with AVX-512 VNNI only (skipped elsewhere).
#include <benchmark/benchmark.h>

#include <cstdint>

namespace {

#if defined(__x86_64__)
bool has_vnni() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512f");
}

// One iteration: 12 x 8 = 96 vpdpbusd.
__attribute__((target("avx512f,avx512vnni"), noinline)) void peak_loop(int64_t n) {
  asm volatile(
      "vpxord %%zmm0, %%zmm0, %%zmm0\n\t"
      "vmovdqa64 %%zmm0, %%zmm1\n\t vmovdqa64 %%zmm0, %%zmm2\n\t vmovdqa64 %%zmm0, %%zmm3\n\t"
      "vmovdqa64 %%zmm0, %%zmm4\n\t vmovdqa64 %%zmm0, %%zmm5\n\t vmovdqa64 %%zmm0, %%zmm6\n\t"
      "vmovdqa64 %%zmm0, %%zmm7\n\t vmovdqa64 %%zmm0, %%zmm8\n\t vmovdqa64 %%zmm0, %%zmm9\n\t"
      "vmovdqa64 %%zmm0, %%zmm10\n\t vmovdqa64 %%zmm0, %%zmm11\n\t"
      "1:\n\t"
      ".rept 8\n\t"
      "vpdpbusd %%zmm30, %%zmm31, %%zmm0\n\t vpdpbusd %%zmm30, %%zmm31, %%zmm1\n\t"
      "vpdpbusd %%zmm30, %%zmm31, %%zmm2\n\t vpdpbusd %%zmm30, %%zmm31, %%zmm3\n\t"
      "vpdpbusd %%zmm30, %%zmm31, %%zmm4\n\t vpdpbusd %%zmm30, %%zmm31, %%zmm5\n\t"
      "vpdpbusd %%zmm30, %%zmm31, %%zmm6\n\t vpdpbusd %%zmm30, %%zmm31, %%zmm7\n\t"
      "vpdpbusd %%zmm30, %%zmm31, %%zmm8\n\t vpdpbusd %%zmm30, %%zmm31, %%zmm9\n\t"
      "vpdpbusd %%zmm30, %%zmm31, %%zmm10\n\t vpdpbusd %%zmm30, %%zmm31, %%zmm11\n\t"
      ".endr\n\t"
      "dec %0\n\t jnz 1b\n\t"
      : "+r"(n)
      :
      : "zmm0", "zmm1", "zmm2", "zmm3", "zmm4", "zmm5", "zmm6", "zmm7", "zmm8", "zmm9", "zmm10",
        "zmm11", "cc");
}

// One iteration: one block for 8 tokens = 64 vpdpbusd + 8 x (cvt, mul, fma); the
// activations (8 tokens x 32 bytes) and their scales are read from x, as the kernel
// reads its regrouped activations.
__attribute__((target("avx512f,avx512vnni"), noinline)) void mix_loop(int64_t n, const void* x) {
  asm volatile(
      "vbroadcastss (%1), %%zmm28\n\t"
      ".irp j, 0, 1, 2, 3, 4, 5, 6, 7\n\t"
      "vmovdqu64 64*\\j(%1), %%zmm2\\j\n\t"
      ".endr\n\t"
      ".irp t, 0, 1, 2, 3, 4, 5, 6, 7\n\t"
      "vpxord %%zmm1\\t, %%zmm1\\t, %%zmm1\\t\n\t"
      ".endr\n\t"
      "1:\n\t"
      ".irp t, 0, 1, 2, 3, 4, 5, 6, 7\n\t"
      "vpbroadcastd 256+8*\\t(%1), %%zmm\\t\n\t"
      ".endr\n\t"
      ".irp j, 0, 1, 2, 3, 4, 5, 6, 7\n\t"
      ".irp t, 0, 1, 2, 3, 4, 5, 6, 7\n\t"
      "vpdpbusd 32*\\t+4*\\j(%1)%{1to16%}, %%zmm2\\j, %%zmm\\t\n\t"
      ".endr\n\t"
      ".endr\n\t"
      ".irp t, 0, 1, 2, 3, 4, 5, 6, 7\n\t"
      "vcvtdq2ps %%zmm\\t, %%zmm\\t\n\t"
      "vmulps 260+8*\\t(%1)%{1to16%}, %%zmm28, %%zmm29\n\t"
      "vfmadd231ps %%zmm29, %%zmm\\t, %%zmm1\\t\n\t"
      ".endr\n\t"
      "dec %0\n\t jnz 1b\n\t"
      : "+r"(n)
      : "r"(x)
      : "zmm0", "zmm1", "zmm2", "zmm3", "zmm4", "zmm5", "zmm6", "zmm7", "zmm10", "zmm11", "zmm12",
        "zmm13", "zmm14", "zmm15", "zmm16", "zmm17", "zmm20", "zmm21", "zmm22", "zmm23",
        "zmm24", "zmm25", "zmm26", "zmm27", "zmm28", "zmm29", "memory", "cc");
}

void bm_vnni_peak(benchmark::State& state) {
  if (!has_vnni()) return state.SkipWithError("no AVX-512 VNNI");
  constexpr int64_t kIters = 1 << 16;
  for (auto _ : state) peak_loop(kIters);
  state.counters["GMAC/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * kIters * 96 * 64 / 1e9,
                         benchmark::Counter::kIsRate);
}

void bm_vnni_block_mix(benchmark::State& state) {
  if (!has_vnni()) return state.SkipWithError("no AVX-512 VNNI");
  alignas(64) static float x[128];  // activation bytes, weights and scales: all 1.0f
  for (float& v : x) v = 1.0f;
  constexpr int64_t kIters = 1 << 14;
  for (auto _ : state) mix_loop(kIters, x);
  state.counters["GMAC/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * kIters * 64 * 64 / 1e9,
                         benchmark::Counter::kIsRate);
}

BENCHMARK(bm_vnni_peak)->Name("vnni_peak");
BENCHMARK(bm_vnni_block_mix)->Name("vnni_block_mix");
#endif

}  // namespace
