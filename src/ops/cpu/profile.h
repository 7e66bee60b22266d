// Optional profiling hook of the weight-type API (ops/quant.h), for `moe bench
// --profile`: when a hook is installed, every gemm/gemv call reports its weight
// pointer and duration, and every quantize_activation_row call reports with
// W == nullptr. The hook runs on the calling thread (often a pool worker), so it
// must be thread-safe. With no hook installed the cost is one relaxed atomic load
// per call. Not part of the stable API: a profiling aid only.
#pragma once
#include <cstdint>

namespace moe::ops {

// W: first byte of the weight rows multiplied (nullptr for activation rounding);
// rows, m: weight rows and tokens of the call; ns: wall time of the call.
using ProfileHook = void (*)(const void* W, int64_t rows, int64_t m, int64_t ns);
void set_profile_hook(ProfileHook hook);  // nullptr: off
ProfileHook profile_hook();               // the installed hook, or nullptr
int64_t profile_now_ns();                 // the clock the hooks are timed with

}  // namespace moe::ops
