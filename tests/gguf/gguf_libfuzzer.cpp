// libFuzzer entry point for the GGUF reader (optional, clang only; not run in CI).
// Build: CXX=clang++ cmake -DMOE_GGUF_LIBFUZZER=ON ..., target gguf_libfuzzer.
// Invariant checked: File::parse either succeeds, with every tensor's data inside
// the input (each byte is read so ASan sees it), or throws moe::Error.
#include <cstddef>
#include <cstdint>

#include "base/error.h"
#include "gguf/gguf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto f = moe::gguf::File::parse({data, size}, "libfuzzer.gguf");
    volatile uint8_t sink = 0;
    for (const auto& t : f.tensors())
      for (size_t i = 0; i < t.nbytes; ++i) sink = sink + static_cast<const uint8_t*>(t.data)[i];
    for (const auto& [k, v] : f.metadata()) {
      try {
        (void)f.get_float(k);
      } catch (const moe::Error&) {
      }
    }
  } catch (const moe::Error&) {
  }
  return 0;
}
