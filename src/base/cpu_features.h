// CPU features that need more than CPUID: AMX tiles must also be enabled by
// the operating system per process (Linux: arch_prctl ARCH_REQ_XCOMP_PERM for
// XTILEDATA, kernel 5.16+). amx_status() asks once and caches the answer; the
// kernels use AMX only when it says `granted`, and fall back to AVX-512 VNNI
// otherwise.
#pragma once

namespace moe {

enum class AmxStatus { absent, refused, granted };

AmxStatus amx_status();
const char* amx_status_name(AmxStatus s);  // "absent", "refused", "granted"

}  // namespace moe
