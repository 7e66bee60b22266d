// ExpertCache: slot layout, the budget plan, the eviction policy and the fills
// (O_DIRECT reads into the slot, or into a per-thread staging buffer that is then
// packed into the slot). See expert_cache.h for the contract; docs/STREAMING.md
// for the design and measurements.
#include "model/expert_cache.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "base/error.h"
#include "base/timer.h"
#include "gguf/gguf.h"
#include "ops/pack.h"

namespace moe {
namespace {

constexpr size_t A = kDirectAlign;
size_t round_up(size_t n, size_t a) { return (n + a - 1) / a * a; }

std::string mib(int64_t b) { return fmt::format("{:.1f} MiB", static_cast<double>(b) / (1 << 20)); }

}  // namespace

// ---- policy --------------------------------------------------------------------------

SlotPolicy::SlotPolicy(int64_t n_expert, int64_t n_slots, CachePolicy kind, int64_t age_period)
    : kind_(kind),
      age_period_(age_period > 0 ? age_period : 4 * n_expert),
      slot_expert_(n_slots, -1),
      expert_slot_(n_expert, -1),
      freq_(n_expert, 0.0f),
      last_(n_expert, 0),
      pinned_(n_slots, 0) {
  MOE_CHECK(n_slots > 0 && n_slots <= n_expert, "expert cache: {} slots for {} experts", n_slots,
            n_expert);
}

void SlotPolicy::place(std::span<const int32_t> experts, int32_t* slot, uint8_t* hit, bool count) {
  MOE_DASSERT(static_cast<int64_t>(experts.size()) <= n_slots());
  ++tick_;
  for (int32_t e : experts) {
    if (!count) break;
    freq_[e] += 1.0f;
    last_[e] = tick_;
    if (++since_ageing_ >= age_period_) {  // ageing: halve every count
      for (float& f : freq_) f *= 0.5f;
      since_ageing_ = 0;
    }
  }
  std::fill(pinned_.begin(), pinned_.end(), 0);
  for (size_t i = 0; i < experts.size(); ++i) {
    slot[i] = expert_slot_[experts[i]];
    hit[i] = slot[i] >= 0 ? 1 : 0;
    if (hit[i]) pinned_[slot[i]] = 1;
  }
  for (size_t i = 0; i < experts.size(); ++i) {
    if (hit[i]) continue;
    // Victim: an empty slot, else the unpinned resident expert with the lowest
    // (aged count, last use) for LFU, the lowest last use for LRU.
    int32_t best = -1;
    for (int32_t s = 0; s < n_slots(); ++s) {
      if (pinned_[s]) continue;
      const int32_t e = slot_expert_[s];
      if (e < 0) {
        best = s;
        break;
      }
      if (best < 0) {
        best = s;
        continue;
      }
      const int32_t b = slot_expert_[best];
      const bool better = kind_ == CachePolicy::lru
                              ? last_[e] < last_[b]
                              : (freq_[e] < freq_[b] || (freq_[e] == freq_[b] && last_[e] < last_[b]));
      if (better) best = s;
    }
    MOE_CHECK(best >= 0, "expert cache: no free slot (more experts than slots in one step)");
    if (slot_expert_[best] >= 0) expert_slot_[slot_expert_[best]] = -1;
    slot_expert_[best] = experts[i];
    expert_slot_[experts[i]] = best;
    pinned_[best] = 1;
    slot[i] = best;
  }
}

void SlotPolicy::place_guess(std::span<const int32_t> experts, int32_t* slot, uint8_t* hit) {
  std::fill(pinned_.begin(), pinned_.end(), 0);
  for (size_t i = 0; i < experts.size(); ++i) {
    slot[i] = expert_slot_[experts[i]];
    hit[i] = slot[i] >= 0 ? 1 : 0;
    if (hit[i]) pinned_[slot[i]] = 1;
  }
  for (size_t i = 0; i < experts.size(); ++i) {
    if (hit[i]) continue;
    int32_t best = -1;
    for (int32_t s = 0; s < n_slots(); ++s) {
      if (pinned_[s]) continue;
      const int32_t e = slot_expert_[s];
      if (e < 0) {
        best = s;
        break;
      }
      if (best < 0 || freq_[e] < freq_[slot_expert_[best]] ||
          (freq_[e] == freq_[slot_expert_[best]] && last_[e] < last_[slot_expert_[best]]))
        best = s;
    }
    const int32_t v = best >= 0 ? slot_expert_[best] : -1;
    if (best < 0 || (v >= 0 && freq_[v] > freq_[experts[i]])) {
      slot[i] = -1;
      continue;
    }
    if (v >= 0) expert_slot_[v] = -1;
    slot_expert_[best] = experts[i];
    expert_slot_[experts[i]] = best;
    pinned_[best] = 1;
    slot[i] = best;
  }
}

// ---- layout ---------------------------------------------------------------------------

struct ExpertCache::Source {
  const Tensor* t = nullptr;
  bool packed = false;       // the slot holds ops::pack_matrix's layout
  uint64_t file_offset = 0;  // of expert 0 of the tensor
  size_t region_offset = 0;  // of this matrix in a slot
  size_t region_bytes = 0;
};

struct ExpertCache::Layer {
  Source src[3];  // gate, up, down
  std::vector<uint8_t> predicted;  // [n_expert] in the last prefetch of this layer
  bool has_prediction = false;
  size_t slot_bytes = 0;
  uint8_t* base = nullptr;  // slot s at base + s * slot_bytes
  std::unique_ptr<SlotPolicy> policy;
};

namespace {

struct LayerLayout {
  const Tensor* t[3];
  bool packed[3];
  size_t region[3];
  size_t slot_bytes = 0;
  size_t staging = 0;  // one thread's staging buffer for the packed matrices
};

LayerLayout layout(const Model& m, const LayerWeights& L) {
  LayerLayout o{};
  const Tensor* ts[3] = {&L.gate_exps, &L.up_exps, &L.down_exps};
  for (int k = 0; k < 3; ++k) {
    const Tensor& t = *ts[k];
    o.t[k] = &t;
    o.packed[k] = m.experts_packed && ops::packable(t.type, t.ne[1], t.ne[0]);
    // Unpacked: the aligned file range is read straight into the region, the matrix
    // starts at its offset inside the first block. Packed: read into staging.
    const size_t read_span = round_up(t.matrix_bytes, A) + A;
    o.region[k] = o.packed[k] ? round_up(ops::packed_matrix_bytes(t.type, t.ne[1], t.ne[0]), A)
                              : read_span;
    if (o.packed[k]) o.staging = std::max(o.staging, read_span);
    o.slot_bytes += o.region[k];
  }
  return o;
}

}  // namespace

ExpertCachePlan plan_expert_cache(const Model& m, int64_t budget, int64_t context_bytes,
                                  int io_threads) {
  ExpertCachePlan p;
  p.budget = budget;
  p.resident = m.bytes_total - m.bytes_routed_experts;
  p.context = context_bytes;
  size_t staging = 0;
  int64_t moe_layers = 0;
  for (int64_t il = 0; il < m.cfg.n_layer; ++il) {
    if (!m.cfg.layer_is_moe(il)) continue;
    const LayerLayout l = layout(m, m.layers[il]);
    p.slot_bytes += static_cast<int64_t>(l.slot_bytes);
    staging = std::max(staging, l.staging);
    ++moe_layers;
  }
  p.staging = static_cast<int64_t>(staging) * std::max(1, io_threads);
  if (budget < p.min_budget())
    throw_error("memory budget {} is below the minimum {} for this model and context: resident "
                "weights {} + KV cache and scratch {} + read buffers {} + one expert slot in each "
                "of {} MoE layers {}",
                mib(budget), mib(p.min_budget()), mib(p.resident), mib(p.context), mib(p.staging),
                moe_layers, mib(p.slot_bytes));
  const int64_t avail = budget - p.resident - p.context - p.staging;
  p.slots_per_layer = std::min<int64_t>(m.cfg.n_expert, p.slot_bytes > 0 ? avail / p.slot_bytes : 0);
  return p;
}

void protect_streamed_experts(const Model& m) {
  if (!m.experts_streamed || !m.file || !m.file->mapping()) return;
  static const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  for (const LayerWeights& L : m.layers) {
    for (const Tensor* t : {&L.gate_exps, &L.up_exps, &L.down_exps}) {
      if (!t->present()) continue;
      const auto lo = (reinterpret_cast<uintptr_t>(t->data) + page - 1) / page * page;
      const auto hi = (reinterpret_cast<uintptr_t>(t->data) + t->matrix_bytes * t->ne[2]) / page * page;
      if (hi <= lo) continue;
      auto* p = reinterpret_cast<void*>(lo);
      ::madvise(p, hi - lo, MADV_DONTNEED);
      MOE_CHECK(::mprotect(p, hi - lo, PROT_NONE) == 0, "{}: cannot protect the pages of {}: {}",
                m.file->path(), t->name, std::strerror(errno));
    }
  }
}

// ---- the cache ------------------------------------------------------------------------

ExpertCache::ExpertCache(std::shared_ptr<const Model> model, const ExpertCacheOptions& o)
    : model_(std::move(model)), slots_per_layer_(o.slots_per_layer), policy_kind_(o.policy) {
  const Model& m = *model_;
  const ModelConfig& c = m.cfg;
  MOE_CHECK(c.is_moe(), "expert cache: {} has no routed experts", m.file ? m.file->path() : "model");
  MOE_CHECK(slots_per_layer_ >= 1 && slots_per_layer_ <= c.n_expert,
            "expert cache: {} slots per layer, expected 1..{}", slots_per_layer_, c.n_expert);
  if (m.file && m.file->mapping()) file_ = std::make_unique<DirectFile>(m.file->path(), o.direct_io);

  layers_.resize(c.n_layer);
  size_t total = 0;
  for (int64_t il = 0; il < c.n_layer; ++il) {
    if (!c.layer_is_moe(il)) continue;
    const LayerLayout l = layout(m, m.layers[il]);
    Layer& L = layers_[il];
    size_t off = 0;
    for (int k = 0; k < 3; ++k) {
      Source& s = L.src[k];
      s.t = l.t[k];
      s.packed = l.packed[k];
      s.region_offset = off;
      s.region_bytes = l.region[k];
      off += l.region[k];
      if (m.file) {
        const gguf::TensorInfo* ti = m.file->tensor(s.t->name);
        MOE_CHECK(ti != nullptr, "expert cache: tensor {} not in {}", s.t->name, m.file->path());
        s.file_offset = m.file->data_offset() + ti->offset;
      }
    }
    L.slot_bytes = l.slot_bytes;
    L.policy = std::make_unique<SlotPolicy>(c.n_expert, slots_per_layer_, o.policy);
    L.predicted.assign(c.n_expert, 0);
    staging_stride_ = std::max(staging_stride_, l.staging);
    total += l.slot_bytes * static_cast<size_t>(slots_per_layer_);
  }
  // One allocation for all slots (huge pages where the kernel gives them: the
  // kernels stream these bytes like any weight); nothing is touched until filled.
  constexpr size_t kHuge = size_t{2} << 20;
  slots_bytes_ = round_up(std::max<size_t>(total, 1), kHuge);
  slots_ = static_cast<uint8_t*>(std::aligned_alloc(kHuge, slots_bytes_));
  MOE_CHECK(slots_ != nullptr, "out of memory: expert cache of {}", mib(static_cast<int64_t>(slots_bytes_)));
  ::madvise(slots_, slots_bytes_, MADV_HUGEPAGE);
  size_t at = 0;
  for (Layer& L : layers_) {
    if (L.slot_bytes == 0) continue;
    L.base = slots_ + at;
    at += L.slot_bytes * static_cast<size_t>(slots_per_layer_);
  }
  io_ = std::make_unique<ThreadPool>(std::max(1, o.io_threads));
  pending_.assign(c.n_layer, 0);
  if (staging_stride_ > 0 && file_) {
    staging_bytes_ = staging_stride_ * static_cast<size_t>(io_->size());
    staging_ = static_cast<uint8_t*>(std::aligned_alloc(A, staging_bytes_));
    MOE_CHECK(staging_ != nullptr, "out of memory: expert read buffers of {}",
              mib(static_cast<int64_t>(staging_bytes_)));
  }
  io_thread_ = std::thread([this] { io_loop(); });
}

// The I/O thread: runs queued batches of reads on the I/O pool, in order.
void ExpertCache::io_loop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    queued_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) return;
    auto [il, jobs] = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    std::exception_ptr err;
    std::mutex err_mu;
    Timer t;
    io_->parallel_for(static_cast<int64_t>(jobs.size()), [&](int64_t j, int thread) {
      Job& job = jobs[j];
      try {
        fill(*job.src, job.expert, job.region, thread, &job.bytes);
      } catch (...) {
        std::lock_guard<std::mutex> g(err_mu);
        if (!err) err = std::current_exception();
      }
    });
    const double secs = t.seconds();
    lock.lock();
    stats_.read_seconds += secs;
    for (const Job& job : jobs) stats_.bytes_read += job.bytes;
    stats_.reads += static_cast<int64_t>(jobs.size());
    if (err && !error_) error_ = err;
    --pending_[il];
    done_.notify_all();
  }
}

void ExpertCache::submit(int il, std::vector<Job> jobs) {
  if (jobs.empty()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++pending_[il];
    queue_.emplace_back(il, std::move(jobs));
  }
  queued_.notify_one();
}

void ExpertCache::wait_layer(int il) {
  std::unique_lock<std::mutex> lock(mu_);
  done_.wait(lock, [&] { return pending_[il] == 0; });
  if (error_) {
    // The slots of a failed read hold garbage: forget what every layer holds.
    std::exception_ptr e = error_;
    error_ = nullptr;
    lock.unlock();
    for (Layer& L : layers_)
      if (L.policy) L.policy = std::make_unique<SlotPolicy>(model_->cfg.n_expert, slots_per_layer_,
                                                           policy_kind_);
    std::rethrow_exception(e);
  }
}

ExpertCache::~ExpertCache() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  queued_.notify_all();
  if (io_thread_.joinable()) io_thread_.join();
  std::free(slots_);
  std::free(staging_);
}

// The matrix as the kernels read it from a filled region: an unpacked matrix read
// from disk starts where it sat inside its first aligned block.
MatrixRef ExpertCache::view(const Source& s, int32_t e, const uint8_t* region) const {
  if (s.packed || !file_) return {region, s.packed};
  const uint64_t off = s.file_offset + static_cast<uint64_t>(e) * s.t->matrix_bytes;
  return {region + off % A, false};
}

void ExpertCache::fill(const Source& s, int32_t e, uint8_t* region, int thread, int64_t* bytes) {
  const Tensor& t = *s.t;
  const size_t n = t.matrix_bytes;
  if (!file_) {  // an in-memory file (gguf::File::parse): copy from its buffer
    if (s.packed) {
      ops::pack_matrix(t.type, t.matrix(e), t.row_bytes, t.ne[1], t.ne[0], region);
    } else {
      std::memcpy(region, t.matrix(e), n);
    }
    *bytes = static_cast<int64_t>(n);
    return;
  }
  const uint64_t off = s.file_offset + static_cast<uint64_t>(e) * n;
  const uint64_t off_a = off / A * A;
  const size_t delta = off - off_a, len = round_up(delta + n, A);
  MOE_DASSERT(off + n <= file_->size());
  uint8_t* dst = s.packed ? staging_ + static_cast<size_t>(thread) * staging_stride_ : region;
  MOE_DASSERT(len <= (s.packed ? staging_stride_ : s.region_bytes));
  file_->read_aligned(off_a, len, dst);
  if (s.packed) ops::pack_matrix(t.type, dst + delta, t.row_bytes, t.ne[1], t.ne[0], region);
  *bytes = static_cast<int64_t>(len);
}

void ExpertCache::resident_first(int il, std::span<int32_t> experts) const {
  const Layer& L = layers_.at(il);
  if (!L.policy) return;
  std::stable_partition(experts.begin(), experts.end(),
                        [&](int32_t e) { return L.policy->slot_of(e) >= 0; });
}

void ExpertCache::acquire(int il, std::span<const int32_t> experts, ExpertMatrices* out) {
  Layer& L = layers_.at(il);
  MOE_CHECK(L.policy != nullptr, "expert cache: layer {} has no routed experts", il);
  const size_t n = experts.size();
  MOE_CHECK(static_cast<int64_t>(n) <= slots_per_layer_,
            "expert cache: {} experts asked at once, {} slots per layer", n, slots_per_layer_);
  Timer t;
  wait_layer(il);  // a prefetch into this layer's slots lands before they are reassigned
  slot_.resize(n);
  hit_.resize(n);
  L.policy->place(experts, slot_.data(), hit_.data());
  auto region = [&](size_t i, int k) {
    return L.base + static_cast<size_t>(slot_[i]) * L.slot_bytes + L.src[k].region_offset;
  };
  std::vector<Job> jobs;
  int64_t hits = 0, predicted = 0;
  for (size_t i = 0; i < n; ++i) {
    predicted += L.predicted[experts[i]];
    L.predicted[experts[i]] = 0;
    if (hit_[i]) {
      ++hits;
      continue;
    }
    for (int k = 0; k < 3; ++k) jobs.push_back({&L.src[k], experts[i], region(i, k), 0});
  }
  const bool miss = !jobs.empty();
  submit(il, std::move(jobs));
  if (miss) wait_layer(il);
  {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.hits += hits;
    stats_.misses += static_cast<int64_t>(n) - hits;
    if (L.has_prediction) {
      stats_.predicted_accesses += static_cast<int64_t>(n);
      stats_.predicted_hits += predicted;
    }
    stats_.stall_seconds += t.seconds();
  }
  for (size_t i = 0; i < n; ++i) {
    out[i].gate = view(L.src[0], experts[i], region(i, 0));
    out[i].up = view(L.src[1], experts[i], region(i, 1));
    out[i].down = view(L.src[2], experts[i], region(i, 2));
  }
}

void ExpertCache::prefetch(int il, std::span<const int32_t> experts) {
  if (il < 0 || il >= static_cast<int>(layers_.size())) return;
  Layer& L = layers_[il];
  if (!L.policy) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (pending_[il] > 0) return;  // the previous prefetch of this layer is still running
  }
  const size_t n = std::min(experts.size(), static_cast<size_t>(slots_per_layer_));
  std::fill(L.predicted.begin(), L.predicted.end(), 0);
  for (size_t i = 0; i < n; ++i) L.predicted[experts[i]] = 1;
  L.has_prediction = true;
  slot_.resize(n);
  hit_.resize(n);
  L.policy->place_guess(experts.first(n), slot_.data(), hit_.data());
  std::vector<Job> jobs;
  int64_t fetched = 0;
  for (size_t i = 0; i < n; ++i) {
    if (hit_[i] || slot_[i] < 0) continue;
    ++fetched;
    for (int k = 0; k < 3; ++k)
      jobs.push_back({&L.src[k], experts[i],
                      L.base + static_cast<size_t>(slot_[i]) * L.slot_bytes + L.src[k].region_offset, 0});
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.prefetched += fetched;
  }
  submit(il, std::move(jobs));
}

}  // namespace moe
