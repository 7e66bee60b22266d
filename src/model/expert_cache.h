// The expert cache: runs models larger than memory by keeping only the non-expert
// weights resident and reading routed experts (the 3-D ffn_{gate,up,down}_exps
// tensors) from the GGUF file on demand into a fixed number of slots per MoE
// layer. Context::moe_ffn asks it for the active experts of a layer
// (Context::expert_weights, the one entry point); with fewer slots than active
// experts (prefill) it asks for them in chunks, so every expert is read at most
// once per batch for all the tokens that chose it.
// Invariants: a slot holds exactly the bytes the resident model would hand the
// kernels (packed with ops::pack_matrix where the loader packs, else the file's
// bytes), so logits are bit-identical to the resident run; the mapped pages of
// routed experts are never touched (reads go through base/direct_file.h);
// memory is allocated once, at construction (slots + per-thread staging).
#pragma once
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include "base/direct_file.h"
#include "base/thread_pool.h"
#include "model/model.h"

namespace moe {

// One weight matrix as the kernels read it.
struct MatrixRef {
  const uint8_t* data = nullptr;
  bool packed = false;  // ops/pack.h layout (gemm_packed), else as stored (gemm)
};
struct ExpertMatrices {
  MatrixRef gate, up, down;
};

// Which expert of a layer to evict. lfu_aged: the resident expert with the fewest
// accesses, counts halved every age_period accesses of the layer (so popularity
// follows the recent past), ties to the least recently used; the counts cover
// every expert, resident or not, so an evicted hot expert comes back with its
// history. lru: least recently used (the baseline it is measured against).
enum class CachePolicy { lfu_aged, lru };

// Slot bookkeeping of one layer (no memory of its own beyond the tables).
class SlotPolicy {
 public:
  // age_period <= 0: 4 * n_expert accesses.
  SlotPolicy(int64_t n_expert, int64_t n_slots, CachePolicy kind, int64_t age_period = 0);
  // One step's experts of this layer (distinct, at most n_slots): counts the
  // accesses (unless count is false: a prefetch) and gives each a slot; hit[i]
  // tells whether slot[i] already holds experts[i]. Slots of the step's experts
  // are never evicted for each other.
  void place(std::span<const int32_t> experts, int32_t* slot, uint8_t* hit, bool count = true);
  // For a prefetch: gives each predicted expert a slot only if it is resident
  // already or the victim's aged count is no higher than its own (a guess must
  // not evict a hotter expert); slot[i] = -1 where refused. Counts nothing.
  void place_guess(std::span<const int32_t> experts, int32_t* slot, uint8_t* hit);
  int32_t slot_of(int32_t e) const { return expert_slot_[e]; }
  int64_t n_slots() const { return static_cast<int64_t>(slot_expert_.size()); }

 private:
  CachePolicy kind_;
  int64_t age_period_, since_ageing_ = 0, tick_ = 0;
  std::vector<int32_t> slot_expert_;  // [n_slots] expert in the slot, -1 if empty
  std::vector<int32_t> expert_slot_;  // [n_expert] slot of the expert, -1 if not resident
  std::vector<float> freq_;           // [n_expert] aged access counts
  std::vector<int64_t> last_;         // [n_expert] tick of the last access
  std::vector<uint8_t> pinned_;       // [n_slots] scratch for place()
};

struct ExpertCacheStats {
  int64_t hits = 0, misses = 0;  // expert accesses (one per expert per layer per batch)
  int64_t bytes_read = 0;        // bytes read from the file (aligned ranges)
  int64_t reads = 0;             // matrices read
  double read_seconds = 0;       // wall time the I/O pool was busy (reads + packing)
  double stall_seconds = 0;      // wall time acquire() waited for reads
  int64_t prefetched = 0;        // experts read ahead of need
  // Prefetch accuracy: accesses of layers with a prediction, and how many of
  // those experts were predicted.
  int64_t predicted_accesses = 0, predicted_hits = 0;
  double hit_rate() const { return hits + misses > 0 ? double(hits) / double(hits + misses) : 0.0; }
  double prediction_accuracy() const {
    return predicted_accesses > 0 ? double(predicted_hits) / double(predicted_accesses) : 0.0;
  }
};

// How a memory budget splits (bytes). budget >= min_budget() is required.
struct ExpertCachePlan {
  int64_t budget = 0;
  int64_t resident = 0;    // non-expert weights (mapped or packed, all resident)
  int64_t context = 0;     // KV cache + scratch of the Context
  int64_t staging = 0;     // per-thread read buffers of the cache
  int64_t slot_bytes = 0;  // one slot in every MoE layer
  int64_t slots_per_layer = 0;
  int64_t min_budget() const { return resident + context + staging + slot_bytes; }
  int64_t cache_bytes() const { return staging + slot_bytes * slots_per_layer; }
};
// For a model loaded with stream_experts from a mapped file: makes the whole
// pages of the routed experts in the mapping inaccessible (PROT_NONE) and drops
// any already mapped. Without it, the kernel's fault-around and read-around for
// neighbouring resident weights (norms, routers, embedding rows) map large
// folios of expert bytes into the process; with it, the experts' pages can only
// come in through the cache's reads, and a stray read of t.data faults loudly.
// Called by load_model.
void protect_streamed_experts(const Model& m);

// Throws moe::Error stating the minimum when the budget cannot hold the resident
// part plus one slot per MoE layer. Slots per layer are capped at n_expert.
ExpertCachePlan plan_expert_cache(const Model& m, int64_t budget, int64_t context_bytes,
                                  int io_threads = 8);

struct ExpertCacheOptions {
  int64_t slots_per_layer = 1;
  CachePolicy policy = CachePolicy::lfu_aged;
  bool direct_io = true;  // try O_DIRECT (falls back to buffered reads where refused)
  // Threads of the cache's own I/O pool: each reads (blocking pread) and packs one
  // matrix at a time, so this is also the depth of the disk queue.
  int io_threads = 8;
};

class ExpertCache {
 public:
  ExpertCache(std::shared_ptr<const Model> model, const ExpertCacheOptions& o);
  ~ExpertCache();
  ExpertCache(const ExpertCache&) = delete;
  ExpertCache& operator=(const ExpertCache&) = delete;

  // Makes experts (distinct, at most slots_per_layer()) of MoE layer il resident,
  // reading the missing ones in parallel on the I/O pool; out[i] views experts[i],
  // valid until the next acquire() for this layer. Call from one thread.
  void acquire(int il, std::span<const int32_t> experts, ExpertMatrices* out);
  // Starts reading the first slots_per_layer() of experts (most likely first) of
  // layer il in the background and returns; acquire(il) waits for them. Not
  // counted as accesses. Same thread as acquire().
  void prefetch(int il, std::span<const int32_t> experts);

  // Reorders experts of layer il so that those already in a slot come first: a
  // batch that needs more experts than there are slots then uses the resident
  // ones before later chunks evict them.
  void resident_first(int il, std::span<int32_t> experts) const;

  int64_t slots_per_layer() const { return slots_per_layer_; }
  ExpertCacheStats stats() const {
    std::lock_guard<std::mutex> lock(mu_);
    return stats_;
  }
  void reset_stats() {
    std::lock_guard<std::mutex> lock(mu_);
    stats_ = {};
  }
  int64_t allocated_bytes() const { return static_cast<int64_t>(slots_bytes_ + staging_bytes_); }
  // O_DIRECT in use (false: buffered reads, or an in-memory file).
  bool direct_io() const { return file_ && file_->direct(); }

 private:
  struct Source;  // where one expert matrix of a layer comes from and goes to
  struct Layer;
  struct Job {
    const Source* src;
    int32_t expert;
    uint8_t* region;  // in the slot
    int64_t bytes;    // read from the file
  };
  void fill(const Source& s, int32_t expert, uint8_t* slot_region, int thread, int64_t* bytes);
  MatrixRef view(const Source& s, int32_t expert, const uint8_t* slot_region) const;
  // Queues reads for layer il on the I/O thread; wait_layer(il) returns when all
  // of that layer's queued reads are done (rethrowing a read error).
  void submit(int il, std::vector<Job> jobs);
  void wait_layer(int il);
  void io_loop();

  std::shared_ptr<const Model> model_;
  int64_t slots_per_layer_ = 0;
  CachePolicy policy_kind_ = CachePolicy::lfu_aged;
  std::unique_ptr<DirectFile> file_;  // null when the model's file is not on disk
  std::vector<Layer> layers_;         // [n_layer]; empty for dense layers
  uint8_t* slots_ = nullptr;
  size_t slots_bytes_ = 0;
  uint8_t* staging_ = nullptr;  // [n_threads][staging_stride_]
  size_t staging_bytes_ = 0, staging_stride_ = 0;
  std::unique_ptr<ThreadPool> io_;  // used by the I/O thread only
  // The I/O thread and its queue; mu_ also guards stats_ and pending_.
  mutable std::mutex mu_;
  std::condition_variable queued_, done_;
  std::deque<std::pair<int, std::vector<Job>>> queue_;
  std::vector<int> pending_;  // [n_layer] queued or running batches
  std::exception_ptr error_;
  bool stop_ = false;
  ExpertCacheStats stats_;
  std::thread io_thread_;
  // acquire() scratch
  std::vector<int32_t> slot_;
  std::vector<uint8_t> hit_;
};

}  // namespace moe
