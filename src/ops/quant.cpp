// Dispatch of the weight-type API (ops/quant.h): picks, per call, the kernel
// table of the active instruction set (AVX-512 VNNI, AVX2, portable) and falls
// back to the portable kernel for a type a SIMD table lacks. CPU features are
// read once (__builtin_cpu_supports); MOE_KERNEL or set_kernel_override() can
// force a lower path. On the avx512 path the 512-bit kernels (quant_avx512_zmm.cpp)
// come first for Q8_0/Q4_0/MXFP4/Q4_K, and activation rounding into q8_0/q8_1/q8_K
// uses AVX-512 code bit-exact with the reference; other paths round with the
// reference. gemm/gemv/quantize_activation_row report to the profiling hook of
// ops/cpu/profile.h when one is installed.
#include "ops/quant.h"

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "base/error.h"
#include "ops/cpu/profile.h"
#include "ops/cpu/quant_kernels.h"
#include "ops/reference/quant_ref.h"

namespace moe::ops {
namespace {

KernelPath detect_cpu() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx2") &&
      __builtin_cpu_supports("fma"))
    return KernelPath::avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
      __builtin_cpu_supports("f16c"))
    return KernelPath::avx2;
  return KernelPath::scalar;
}

KernelPath cap(KernelPath p) {
  return static_cast<int>(p) <= static_cast<int>(best_kernel_path()) ? p : best_kernel_path();
}

KernelPath env_path() {
  static const KernelPath p = [] {
    const char* e = std::getenv("MOE_KERNEL");
    if (e == nullptr || *e == 0) return best_kernel_path();
    const std::string_view v(e);
    if (v == "scalar") return KernelPath::scalar;
    if (v == "avx2") return cap(KernelPath::avx2);
    if (v == "avx512") return cap(KernelPath::avx512);
    throw_error("MOE_KERNEL={} is not one of scalar, avx2, avx512", v);
  }();
  return p;
}

std::atomic<ProfileHook> g_hook{nullptr};

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

constexpr int kNoOverride = -1;
std::atomic<int> g_override{kNoOverride};

struct Picked {
  cpu::GemmFn fn;
  const char* name;
};

Picked pick(GgmlType t) {
  const KernelPath p = active_kernel_path();
  const bool is_float = t == GgmlType::F32 || t == GgmlType::F16 || t == GgmlType::BF16;
  if (p == KernelPath::avx512) {
    if (is_float) return {cpu::gemm_float_hwy(t, 2), "hwy_avx3"};
    if (auto f = cpu::gemm_avx512_zmm(t)) return {f, "avx512_vnni"};
    if (auto f = cpu::gemm_avx512(t)) return {f, "avx512_vnni"};
  }
  if (p >= KernelPath::avx2) {
    if (is_float) return {cpu::gemm_float_hwy(t, 1), "hwy_avx2"};
    if (auto f = cpu::gemm_avx2(t)) return {f, "avx2"};
  }
  if (auto f = cpu::gemm_portable(t)) return {f, "scalar"};
  throw_error("weight type {} has no dot-product kernel", type_name(t));
}

}  // namespace

KernelPath best_kernel_path() {
  static const KernelPath p = detect_cpu();
  return p;
}

KernelPath active_kernel_path() {
  const int o = g_override.load(std::memory_order_relaxed);
  return o == kNoOverride ? env_path() : static_cast<KernelPath>(o);
}

void set_kernel_override(std::optional<KernelPath> path) {
  g_override.store(path ? static_cast<int>(cap(*path)) : kNoOverride, std::memory_order_relaxed);
}

std::vector<KernelPath> available_kernel_paths() {
  std::vector<KernelPath> v;
  for (int p = 0; p <= static_cast<int>(best_kernel_path()); ++p) v.push_back(static_cast<KernelPath>(p));
  return v;
}

const char* kernel_path_name(KernelPath path) {
  switch (path) {
    case KernelPath::scalar: return "scalar";
    case KernelPath::avx2: return "avx2";
    case KernelPath::avx512: return "avx512";
  }
  return "?";
}

GgmlType vec_dot_type(GgmlType weight_type) {
  switch (weight_type) {
    case GgmlType::F32:
    case GgmlType::F16:
    case GgmlType::BF16: return weight_type;
    case GgmlType::Q4_0:
    case GgmlType::Q5_0:
    case GgmlType::Q8_0:
    case GgmlType::MXFP4: return GgmlType::Q8_0;
    case GgmlType::IQ4_NL: return GgmlType::Q8_0;
    case GgmlType::Q4_1:
    case GgmlType::Q5_1: return GgmlType::Q8_1;
    case GgmlType::Q2_K:
    case GgmlType::Q3_K:
    case GgmlType::Q4_K:
    case GgmlType::Q5_K:
    case GgmlType::Q6_K:
    case GgmlType::TQ1_0:
    case GgmlType::TQ2_0:
    case GgmlType::IQ1_S:
    case GgmlType::IQ1_M:
    case GgmlType::IQ2_XXS:
    case GgmlType::IQ2_XS:
    case GgmlType::IQ2_S:
    case GgmlType::IQ3_XXS:
    case GgmlType::IQ3_S:
    case GgmlType::IQ4_XS: return GgmlType::Q8_K;
    default: throw_error("weight type {} is not supported for dot products", type_name(weight_type));
  }
}

size_t activation_row_bytes(GgmlType weight_type, int64_t n) {
  const GgmlType t = vec_dot_type(weight_type);
  MOE_CHECK(n % traits(t).block_size == 0, "activation row of {} elements is not a multiple of {} ({})",
            n, traits(t).block_size, type_name(t));
  return row_bytes(t, n);
}

void set_profile_hook(ProfileHook hook) { g_hook.store(hook, std::memory_order_relaxed); }
ProfileHook profile_hook() { return g_hook.load(std::memory_order_relaxed); }
int64_t profile_now_ns() { return now_ns(); }

void quantize_activation_row(GgmlType weight_type, const float* x, void* dst, int64_t n) {
  const ProfileHook hook = g_hook.load(std::memory_order_relaxed);
  const int64_t t0 = hook ? now_ns() : 0;
  if (!(active_kernel_path() == KernelPath::avx512 &&
        cpu::quantize_activation_avx512(vec_dot_type(weight_type), x, dst, n)))
    ref::quantize_activation_row_ref(weight_type, x, dst, n);
  if (hook) hook(nullptr, 1, 1, now_ns() - t0);
}

float vec_dot(GgmlType weight_type, const void* w_row, const void* x_q, int64_t n) {
  float y = 0.f;
  pick(weight_type).fn(w_row, 0, x_q, 0, 1, &y, 1, 1, n);
  return y;
}

void gemv(GgmlType weight_type, const void* W, size_t row_stride, const void* x_q, float* y,
          int64_t r0, int64_t r1, int64_t n) {
  if (r1 <= r0) return;
  const auto* w = static_cast<const uint8_t*>(W) + static_cast<size_t>(r0) * row_stride;
  const ProfileHook hook = g_hook.load(std::memory_order_relaxed);
  const int64_t t0 = hook ? now_ns() : 0;
  pick(weight_type).fn(w, row_stride, x_q, 0, 1, y, r1 - r0, r1 - r0, n);
  if (hook) hook(W, r1 - r0, 1, now_ns() - t0);
}

void gemm(GgmlType weight_type, const void* W, size_t row_stride, const void* X_q,
          size_t x_stride, int64_t m, float* Y, int64_t ldy, int64_t r0, int64_t r1, int64_t n) {
  if (r1 <= r0 || m <= 0) return;
  const auto* w = static_cast<const uint8_t*>(W) + static_cast<size_t>(r0) * row_stride;
  const ProfileHook hook = g_hook.load(std::memory_order_relaxed);
  const int64_t t0 = hook ? now_ns() : 0;
  pick(weight_type).fn(w, row_stride, X_q, x_stride, m, Y, ldy, r1 - r0, n);
  if (hook) hook(W, r1 - r0, m, now_ns() - t0);
}

void dequantize_row(GgmlType type, const void* src, float* dst, int64_t n) {
  ref::dequantize_row_ref(type, src, dst, n);
}

void quantize_row(GgmlType type, const float* src, void* dst, int64_t n) {
  ref::quantize_row_ref(type, src, dst, n);
}

const char* kernel_name(GgmlType weight_type) { return pick(weight_type).name; }

}  // namespace moe::ops
