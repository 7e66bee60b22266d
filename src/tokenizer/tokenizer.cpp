// Tokenizer: added/special token matching (leftmost-longest over a byte trie),
// then per section normalize -> pre-tokenize -> BPE with a per-word cache;
// decode via per-token pieces plus string-level steps; the streaming decoder.
#include "tokenizer/tokenizer.h"

#include <algorithm>

#include "base/error.h"
#include "tokenizer/bpe.h"
#include "tokenizer/pipeline.h"
#include "tokenizer/utf8.h"
#include "tokenizer/vocab.h"

namespace moe {
using namespace tok;

static int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

namespace tok {
void VocabData::finalize() {
  if (types.size() < tokens.size()) types.resize(tokens.size(), TokenType::Normal);
  is_special.assign(tokens.size(), 0);
  for (size_t i = 0; i < tokens.size(); ++i)
    if (types[i] == TokenType::Control || types[i] == TokenType::Unknown) is_special[i] = 1;
  for (const auto& a : added)
    if (a.special && a.id >= 0 && a.id < static_cast<int32_t>(tokens.size())) is_special[a.id] = 1;
  byte_tokens.assign(256, -1);
  for (int b = 0; b < 256; ++b) {
    if (byte_level) {
      byte_tokens[b] = find(std::string(1, static_cast<char>(b)));
    } else {
      char name[8];
      snprintf(name, sizeof(name), "<0x%02X>", b);
      byte_tokens[b] = find(name);
    }
  }
  static const char* kEog[] = {"<|eot_id|>", "<|im_end|>", "<|return|>", "<|call|>", "<|eom_id|>",
                               "<|end_of_text|>", "<|endoftext|>", "<｜end▁of▁sentence｜>", "</s>",
                               "<end_of_turn>", "<|end|>"};
  if (eos >= 0) eog.push_back(eos);
  for (const char* s : kEog) {
    int32_t id = find(s);
    if (id >= 0 && is_special[id]) eog.push_back(id);
  }
  // "<|end|>" ends a message but not generation for gpt-oss (which ends at <|return|> / <|call|>).
  if (find("<|return|>") >= 0) {
    int32_t end = find("<|end|>");
    if (end != eos) eog.erase(std::remove(eog.begin(), eog.end(), end), eog.end());
  }
  std::sort(eog.begin(), eog.end());
  eog.erase(std::unique(eog.begin(), eog.end()), eog.end());
}
}  // namespace tok

// Byte trie over added-token contents.
struct Tokenizer::Trie {
  struct Node {
    std::vector<std::pair<unsigned char, int32_t>> next;  // sorted by byte
    int32_t added = -1;                                  // index into VocabData::added
  };
  std::vector<Node> nodes{1};
  bool first[256] = {};

  void insert(const std::string& s, int32_t idx) {
    if (s.empty()) return;
    first[static_cast<unsigned char>(s[0])] = true;
    int32_t n = 0;
    for (unsigned char c : s) {
      auto& nx = nodes[n].next;
      auto it = std::lower_bound(nx.begin(), nx.end(), std::make_pair(c, INT32_MIN));
      if (it != nx.end() && it->first == c) {
        n = it->second;
      } else {
        int32_t id = static_cast<int32_t>(nodes.size());
        nx.insert(it, {c, id});
        nodes.emplace_back();
        n = id;
      }
    }
    nodes[n].added = idx;
  }
  int32_t step(int32_t n, unsigned char c) const {
    const auto& nx = nodes[n].next;
    auto it = std::lower_bound(nx.begin(), nx.end(), std::make_pair(c, INT32_MIN));
    return (it != nx.end() && it->first == c) ? it->second : -1;
  }
};

Tokenizer::Tokenizer(std::unique_ptr<VocabData> data) : d_(std::move(data)), trie_(std::make_unique<Trie>()) {
  for (size_t i = 0; i < d_->added.size(); ++i) trie_->insert(d_->added[i].content, static_cast<int32_t>(i));
  for (const auto& st : d_->decoders) {
    if (st.kind == DecodeStep::Strip && (st.a == " " || st.a.empty())) strip_ = static_cast<size_t>(st.start);
    if (st.kind == DecodeStep::Metaspace && st.add_prefix_space) strip_ = 1;
  }
}
Tokenizer::~Tokenizer() = default;

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
  std::vector<int32_t> out;
  if (add_special && d_->add_bos && d_->bos >= 0) out.push_back(d_->bos);
  // Split into text sections and added tokens (leftmost-longest match).
  struct Sec {
    size_t b, e;
    int32_t added;
  };
  std::vector<Sec> secs;
  size_t start = 0, i = 0, n = text.size();
  while (i < n) {
    if (!trie_->first[static_cast<unsigned char>(text[i])]) { ++i; continue; }
    int32_t node = 0, match = -1;
    size_t mlen = 0;
    for (size_t j = i; j < n; ++j) {
      node = trie_->step(node, static_cast<unsigned char>(text[j]));
      if (node < 0) break;
      int32_t a = trie_->nodes[node].added;
      if (a >= 0 && (parse_special || !d_->added[a].special)) { match = a; mlen = j + 1 - i; }
    }
    if (match < 0) { ++i; continue; }
    if (i > start) secs.push_back({start, i, -1});
    secs.push_back({i, i + mlen, match});
    i += mlen;
    start = i;
  }
  if (start < n) secs.push_back({start, n, -1});
  // lstrip / rstrip of neighbouring text.
  auto is_ws = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; };
  for (size_t k = 0; k < secs.size(); ++k) {
    if (secs[k].added < 0) continue;
    const auto& a = d_->added[secs[k].added];
    if (a.lstrip && k > 0 && secs[k - 1].added < 0)
      while (secs[k - 1].e > secs[k - 1].b && is_ws(text[secs[k - 1].e - 1])) --secs[k - 1].e;
    if (a.rstrip && k + 1 < secs.size() && secs[k + 1].added < 0)
      while (secs[k + 1].b < secs[k + 1].e && is_ws(text[secs[k + 1].b])) ++secs[k + 1].b;
  }
  for (const auto& s : secs) {
    if (s.added >= 0) out.push_back(d_->added[s.added].id);
    else if (s.e > s.b) encode_section(text.substr(s.b, s.e - s.b), out);
  }
  if (add_special && d_->add_eos && d_->eos >= 0) out.push_back(d_->eos);
  return out;
}

void Tokenizer::encode_section(std::string_view text, std::vector<int32_t>& out) const {
  std::string norm = normalize(d_->normalizers, text);
  if (norm.empty()) return;
  thread_local Pieces pieces;
  pretokenize(d_->pretokenizers, std::move(norm), pieces);
  for (size_t i = 0; i < pieces.ranges.size(); ++i) {
    std::string_view p = pieces.piece(i);
    if (!p.empty()) encode_piece(p, d_->byte_level, out);
  }
}

void Tokenizer::encode_piece(std::string_view piece, bool byte_level, std::vector<int32_t>& out) const {
  if (d_->ignore_merges || piece.size() == 1) {
    auto it = d_->token_to_id.find(std::string(piece));
    if (it != d_->token_to_id.end()) { out.push_back(it->second); return; }
  }
  constexpr size_t kMaxCached = 256;
  constexpr size_t kCacheCap = 1 << 16;
  bool cacheable = piece.size() < kMaxCached;
  std::string key;
  if (cacheable) {
    key.assign(piece);
    std::lock_guard<std::mutex> lk(cache_mu_);
    auto it = cache_.find(key);
    if (it != cache_.end()) { out.insert(out.end(), it->second.begin(), it->second.end()); return; }
  }
  size_t before = out.size();
  if (d_->kind == ModelKind::Spm) spm_encode(*d_, piece, out);
  else bpe_encode(*d_, piece, byte_level, out);
  if (cacheable) {
    std::lock_guard<std::mutex> lk(cache_mu_);
    if (cache_.size() >= kCacheCap) cache_.clear();
    cache_.emplace(std::move(key), std::vector<int32_t>(out.begin() + static_cast<std::ptrdiff_t>(before), out.end()));
  }
}

void Tokenizer::append_piece(int32_t id, bool skip_special, std::string& out) const {
  if (id < 0 || id >= n_vocab()) throw_error("decode: token id {} out of range [0, {})", id, n_vocab());
  if (d_->is_special[id]) {
    if (!skip_special) out += d_->tokens[id];
    return;
  }
  const std::string& t = d_->tokens[id];
  if (d_->byte_level || d_->types[id] == TokenType::UserDefined) { out += t; return; }
  std::string s = t;
  for (const auto& st : d_->decoders) {
    switch (st.kind) {
      case DecodeStep::Replace: {
        std::string r;
        for (size_t at = 0;;) {
          size_t f = st.a.empty() ? std::string::npos : s.find(st.a, at);
          if (f == std::string::npos) { r.append(s, at, std::string::npos); break; }
          r.append(s, at, f - at);
          r += st.b;
          at = f + st.a.size();
        }
        s.swap(r);
        break;
      }
      case DecodeStep::ByteFallback:
        if (s.size() == 6 && s.compare(0, 3, "<0x") == 0 && s[5] == '>') {
          const int hi = hex_digit(s[3]), lo = hex_digit(s[4]);
          if (hi >= 0 && lo >= 0) s = std::string(1, static_cast<char>(hi * 16 + lo));
        }
        break;
      case DecodeStep::Metaspace: {
        std::string r;
        for (size_t at = 0;;) {
          size_t f = st.a.empty() ? std::string::npos : s.find(st.a, at);
          if (f == std::string::npos) { r.append(s, at, std::string::npos); break; }
          r.append(s, at, f - at);
          r += ' ';
          at = f + st.a.size();
        }
        s.swap(r);
        break;
      }
      case DecodeStep::ByteLevel: {
        std::string raw;
        if (byte_level_decode(s, raw)) s.swap(raw);
        break;
      }
      case DecodeStep::Fuse:
      case DecodeStep::Strip: break;
    }
  }
  out += s;
}

size_t Tokenizer::leading_strip() const { return strip_; }

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
  StreamDecoder sd(*this, skip_special);
  std::string out;
  for (int32_t id : ids) out += sd.push(id);
  out += sd.flush();
  return out;
}

std::string Tokenizer::token_text(int32_t id) const {
  if (id < 0 || id >= n_vocab()) throw_error("token id {} out of range [0, {})", id, n_vocab());
  return d_->tokens[id];
}
int32_t Tokenizer::token_id(std::string_view text) const { return d_->find(std::string(text)); }
int32_t Tokenizer::n_vocab() const { return static_cast<int32_t>(d_->tokens.size()); }
int32_t Tokenizer::bos_id() const { return d_->bos; }
int32_t Tokenizer::eos_id() const { return d_->eos; }
bool Tokenizer::add_bos() const { return d_->add_bos; }
bool Tokenizer::is_eog(int32_t id) const { return std::binary_search(d_->eog.begin(), d_->eog.end(), id); }
bool Tokenizer::is_special(int32_t id) const { return id >= 0 && id < n_vocab() && d_->is_special[id]; }
const std::string& Tokenizer::chat_template() const { return d_->chat_template; }

std::string StreamDecoder::push(int32_t id) {
  size_t before = pending_.size();
  tok_.append_piece(id, skip_special_, pending_);
  if (strip_left_ > 0 && pending_.size() > before) {
    // Only reached while nothing has been emitted: pending_ holds the output start.
    size_t k = 0;
    while (k < strip_left_ && k < pending_.size() && pending_[k] == ' ') ++k;
    pending_.erase(0, k);
    strip_left_ = 0;
  }
  size_t hold = utf8_incomplete_tail(pending_);
  std::string out = pending_.substr(0, pending_.size() - hold);
  pending_.erase(0, pending_.size() - hold);
  return out;
}

std::string StreamDecoder::flush() {
  std::string out;
  out.swap(pending_);
  return out;
}

}  // namespace moe
