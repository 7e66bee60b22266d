#include "base/cpu_features.h"

#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace moe {

namespace {

constexpr int kArchReqXcompPerm = 0x1023;  // ARCH_REQ_XCOMP_PERM (asm/prctl.h)
constexpr int kXfeatureXtiledata = 18;     // XFEATURE_XTILEDATA

bool cpu_has_amx_int8() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  const bool tile = (d >> 24) & 1u, int8 = (d >> 25) & 1u;
  return tile && int8;
}

AmxStatus detect() {
  if (!cpu_has_amx_int8()) return AmxStatus::absent;
  if (::syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) != 0) return AmxStatus::refused;
  return AmxStatus::granted;
}

}  // namespace

AmxStatus amx_status() {
  static const AmxStatus s = detect();
  return s;
}

const char* amx_status_name(AmxStatus s) {
  switch (s) {
    case AmxStatus::absent: return "absent";
    case AmxStatus::refused: return "refused";
    case AmxStatus::granted: return "granted";
  }
  return "?";
}

}  // namespace moe
