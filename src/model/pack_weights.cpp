// Load-time repacking of weight matrices into the row-interleaved layouts of
// ops/pack.h. Every tensor that the forward pass multiplies through
// Context::linear / expert_matmul (attention projections, dense and expert
// FFNs, shared experts, lm_head) is packed when its type has a packed layout.
// The token embedding is read row by row (dequantize_row) and stays as stored;
// so does a lm_head tied to it. Routed experts of a model loaded for streaming
// are left on disk (model/expert_cache.cpp packs them slot by slot). Tensor::data
// keeps pointing at the file, which the scalar reference forward pass and
// `moe inspect` read. With m.expert_ranks > 1 only the routed experts rank
// m.expert_rank owns are packed (expert parallelism).
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "base/error.h"
#include "base/log.h"
#include "base/timer.h"
#include "gguf/gguf.h"
#include "model/expert_group.h"
#include "model/model.h"
#include "ops/pack.h"
#include "ops/quant.h"

namespace moe {

bool packing_enabled() {
  const char* env = std::getenv("MOE_PACK");
  if (env && std::strcmp(env, "0") == 0) return false;
  return ops::active_kernel_path() == ops::KernelPath::avx512;
}

namespace {

std::vector<Tensor*> packable_tensors(Model& m) {
  std::vector<Tensor*> out;
  auto add = [&](Tensor& t) {
    if (t.present() && t.data != m.tok_embd.data && ops::packable(t.type, t.ne[1], t.ne[0]))
      out.push_back(&t);
  };
  add(m.output);
  for (LayerWeights& L : m.layers) {
    for (Tensor* t : {&L.wq, &L.wk, &L.wv, &L.wo, &L.wq_a, &L.wq_b, &L.wkv_a, &L.wk_b, &L.wv_b,
                      &L.ffn_gate, &L.ffn_up, &L.ffn_down, &L.gate_inp, &L.gate_shexp, &L.up_shexp,
                      &L.down_shexp})
      add(*t);
    // Streamed experts are packed into the expert cache's slots as they are read.
    if (!m.experts_streamed)
      for (Tensor* t : {&L.gate_exps, &L.up_exps, &L.down_exps}) add(*t);
  }
  return out;
}

// Gives the file pages of [p, p + n) back to the kernel (they stay in the page
// cache and fault in again if read): after packing, only the packed copy is hot.
void release_pages(const uint8_t* p, size_t n) {
  static const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  const auto lo = (reinterpret_cast<uintptr_t>(p) + page - 1) / page * page;
  const auto hi = (reinterpret_cast<uintptr_t>(p) + n) / page * page;
  if (hi > lo) ::madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_DONTNEED);
}

}  // namespace

int64_t pack_weights(Model& m, const std::function<void(int64_t, int64_t)>& progress) {
  Timer timer;
  std::vector<Tensor*> tensors = packable_tensors(m);
  if (tensors.empty()) return 0;

  // One allocation, each tensor at a 64-byte aligned offset, huge pages when the
  // kernel gives them (fewer TLB misses when decode streams gigabytes).
  struct Job {
    Tensor* t;
    int64_t expert;
    size_t offset;
  };
  std::vector<Job> jobs;
  std::vector<size_t> tensor_offset;
  size_t total = 0;
  auto routed = [&](const Tensor* t) {
    for (const LayerWeights& L : m.layers)
      if (t == &L.gate_exps || t == &L.up_exps || t == &L.down_exps) return true;
    return false;
  };
  for (Tensor* t : tensors) {
    const size_t per = ops::packed_matrix_bytes(t->type, t->ne[1], t->ne[0]);
    tensor_offset.push_back(total);
    const bool split = m.expert_ranks > 1 && routed(t);
    for (int64_t e = 0; e < t->ne[2] * t->ne[3]; ++e)
      if (!split || expert_owner(e, m.cfg.n_expert, m.expert_ranks) == m.expert_rank)
        jobs.push_back({t, e, total + e * per});
    total += (per * t->ne[2] * t->ne[3] + 63) / 64 * 64;
  }
  constexpr size_t kHuge = size_t{2} << 20;
  const size_t alloc = (total + kHuge - 1) / kHuge * kHuge;
  auto* buf = static_cast<uint8_t*>(std::aligned_alloc(kHuge, alloc));
  MOE_CHECK(buf != nullptr, "out of memory: packing {:.1f} MB of weights", alloc / 1e6);
  ::madvise(buf, alloc, MADV_HUGEPAGE);
  m.packed_storage = std::shared_ptr<uint8_t>(buf, [](uint8_t* p) { std::free(p); });

  const bool mapped = m.file && m.file->mapping() != nullptr;
  // Pack matrices in parallel; report progress by bytes.
  std::atomic<size_t> next{0};
  std::atomic<int64_t> done{0};
  int64_t last_reported = 0;  // only the reporting (calling) thread touches it
  const int64_t total_bytes = static_cast<int64_t>(total);
  auto worker = [&](bool reporter) {
    for (size_t j; (j = next.fetch_add(1, std::memory_order_relaxed)) < jobs.size();) {
      const Job& job = jobs[j];
      const Tensor& t = *job.t;
      ops::pack_matrix(t.type, t.matrix(job.expert), t.row_bytes, t.ne[1], t.ne[0], buf + job.offset);
      // Release the file pages as we go, so that the file copy and the packed copy
      // are not both resident at the peak (it matters under a memory budget).
      if (mapped) release_pages(t.matrix(job.expert), t.matrix_bytes);
      const int64_t d = done.fetch_add(static_cast<int64_t>(t.matrix_bytes)) + t.matrix_bytes;
      if (reporter && progress && d - last_reported >= (int64_t{64} << 20)) {
        last_reported = d;
        progress(std::min(d, total_bytes), total_bytes);
      }
    }
  };
  const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::thread> threads;
  for (unsigned i = 1; i < std::min<unsigned>(hw, 16); ++i) threads.emplace_back(worker, false);
  worker(true);
  for (std::thread& th : threads) th.join();
  if (progress) progress(total_bytes, total_bytes);

  for (size_t i = 0; i < tensors.size(); ++i) {
    Tensor& t = *tensors[i];
    t.packed = buf + tensor_offset[i];
    t.packed_matrix_bytes = ops::packed_matrix_bytes(t.type, t.ne[1], t.ne[0]);
    if (mapped) release_pages(t.data, t.matrix_bytes * t.ne[2] * t.ne[3]);  // the pages between matrices
  }
  m.bytes_packed = static_cast<int64_t>(total);
  m.tensors_packed = static_cast<int64_t>(tensors.size());
  MOE_LOG_DEBUG("packed {} tensors ({:.1f} MB) in {:.2f} s", tensors.size(), total / 1e6,
                timer.seconds());
  return m.tensors_packed;
}

}  // namespace moe
