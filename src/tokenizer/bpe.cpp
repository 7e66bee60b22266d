// BPE merge loops over a symbol linked list with a binary heap.
// Rank BPE: repeatedly merge the adjacent pair with the lowest merge rank, the
// leftmost first among equal ranks (same order as tokenizers' BPE::merge_word).
// SPM BPE: repeatedly merge the adjacent pair whose concatenation is a vocab
// token with the highest score, leftmost first (llama.cpp / sentencepiece).
#include "tokenizer/bpe.h"

#include <queue>
#include <string>

#include "tokenizer/utf8.h"

namespace moe::tok {
namespace {

struct Sym {
  int32_t id;
  int32_t prev, next;
  uint32_t start, len;  // byte range in the piece
};

// Joins symbol `left` with the one after it into token `id` (the right one empties).
void merge_with_next(std::vector<Sym>& syms, int32_t left, int32_t id) {
  Sym& l = syms[left];
  Sym& r = syms[l.next];
  l.id = id;
  l.len += r.len;
  r.len = 0;
  l.next = r.next;
  if (r.next >= 0) syms[r.next].prev = left;
}

void split_symbols(const VocabData& d, std::string_view piece, bool byte_level, std::vector<Sym>& syms) {
  syms.clear();
  if (byte_level) {
    for (size_t i = 0; i < piece.size(); ++i)
      syms.push_back({d.byte_tokens[static_cast<unsigned char>(piece[i])], static_cast<int32_t>(i) - 1,
                      static_cast<int32_t>(i) + 1, static_cast<uint32_t>(i), 1});
  } else {
    std::string ch;
    for (size_t i = 0; i < piece.size();) {
      size_t len = utf8_valid_len(piece, i);
      if (len == 0) len = 1;
      ch.assign(piece.substr(i, len));
      int32_t n = static_cast<int32_t>(syms.size());
      syms.push_back({d.find(ch), n - 1, n + 1, static_cast<uint32_t>(i), static_cast<uint32_t>(len)});
      i += len;
    }
  }
  if (!syms.empty()) syms.back().next = -1;
}

void emit_symbol(const VocabData& d, std::string_view piece, const Sym& s, std::vector<int32_t>& out) {
  if (s.id >= 0) { out.push_back(s.id); return; }
  if (d.byte_fallback) {
    bool ok = true;
    for (uint32_t k = 0; k < s.len; ++k) ok &= d.byte_tokens[static_cast<unsigned char>(piece[s.start + k])] >= 0;
    if (ok) {
      for (uint32_t k = 0; k < s.len; ++k) out.push_back(d.byte_tokens[static_cast<unsigned char>(piece[s.start + k])]);
      return;
    }
  }
  if (d.unk >= 0) out.push_back(d.unk);
}

}  // namespace

void bpe_encode(const VocabData& d, std::string_view piece, bool byte_level, std::vector<int32_t>& out) {
  thread_local std::vector<Sym> syms;
  split_symbols(d, piece, byte_level, syms);
  struct Cand {
    int32_t rank, left, right_id, left_id;
    bool operator<(const Cand& o) const {  // max-heap -> invert: lowest rank, then leftmost
      return rank != o.rank ? rank > o.rank : left > o.left;
    }
  };
  thread_local std::vector<Cand> heap_storage;
  heap_storage.clear();
  std::priority_queue<Cand, std::vector<Cand>> heap(std::less<Cand>(), std::move(heap_storage));
  auto try_add = [&](int32_t l) {
    if (l < 0) return;
    int32_t r = syms[l].next;
    if (r < 0 || syms[l].id < 0 || syms[r].id < 0) return;
    auto it = d.merges.find(VocabData::pair_key(syms[l].id, syms[r].id));
    if (it == d.merges.end()) return;
    heap.push({it->second.rank, l, syms[r].id, syms[l].id});
  };
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(syms.size()); ++i) try_add(i);
  while (!heap.empty()) {
    Cand c = heap.top();
    heap.pop();
    Sym& l = syms[c.left];
    if (l.len == 0 || l.id != c.left_id || l.next < 0) continue;
    Sym& r = syms[l.next];
    if (r.id != c.right_id) continue;
    auto it = d.merges.find(VocabData::pair_key(l.id, r.id));
    merge_with_next(syms, c.left, it->second.id);
    try_add(l.prev);
    try_add(c.left);
  }
  for (int32_t i = syms.empty() ? -1 : 0; i >= 0; i = syms[i].next) emit_symbol(d, piece, syms[i], out);
}

void spm_encode(const VocabData& d, std::string_view piece, std::vector<int32_t>& out) {
  thread_local std::vector<Sym> syms;
  split_symbols(d, piece, /*byte_level=*/false, syms);
  struct Cand {
    float score;
    int32_t left;
    uint32_t size;
    int32_t id;
    bool operator<(const Cand& o) const { return score != o.score ? score < o.score : left > o.left; }
  };
  std::priority_queue<Cand> heap;
  std::string buf;
  auto try_add = [&](int32_t l) {
    if (l < 0) return;
    int32_t r = syms[l].next;
    if (r < 0) return;
    buf.assign(piece.substr(syms[l].start, syms[l].len + syms[r].len));
    int32_t id = d.find(buf);
    if (id < 0 || d.types[id] == TokenType::Unused) return;
    heap.push({d.scores[id], l, syms[l].len + syms[r].len, id});
  };
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(syms.size()); ++i) try_add(i);
  while (!heap.empty()) {
    Cand c = heap.top();
    heap.pop();
    Sym& l = syms[c.left];
    if (l.len == 0 || l.next < 0) continue;
    Sym& r = syms[l.next];
    if (l.len + r.len != c.size) continue;
    merge_with_next(syms, c.left, c.id);
    try_add(l.prev);
    try_add(c.left);
  }
  for (int32_t i = syms.empty() ? -1 : 0; i >= 0; i = syms[i].next) emit_symbol(d, piece, syms[i], out);
}

}  // namespace moe::tok
