// Loads a tokenizer from GGUF metadata (tokenizer.ggml.*): `gpt2` models are
// byte-level BPE with merges and a pre-tokenizer chosen by tokenizer.ggml.pre;
// `llama` models are SentencePiece BPE ordered by token scores with <0xNN>
// byte fallback. Control, user-defined and unknown tokens are matched as added
// tokens before BPE (control/unknown only with parse_special).
// The metadata is untrusted: array element types, token types (0..6), scores
// (no NaN), lengths and counts (limits.h) and every special-token id are checked,
// and errors name the file and the key (with the index of a bad element).
#include <algorithm>
#include <cmath>
#include <limits>

#include "base/error.h"
#include "gguf/gguf.h"
#include "tokenizer/limits.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"
#include "tokenizer/vocab.h"

namespace moe {
using namespace tok;

namespace {

// The array under `key` if present, after checking that every element has one
// of the accepted kinds (the reader keeps element types, but checking here keeps
// this loader independent of that).
const gguf::Array* checked_array(const gguf::File& f, const char* key, bool (*ok)(const gguf::Value&),
                                 const char* expected) {
  const gguf::Array* a = f.get_array(key);
  if (!a) return nullptr;
  for (size_t i = 0; i < a->items.size(); ++i)
    if (!ok(a->items[i]))
      throw_error("{}: {}[{}] has type {}, expected {}", f.path(), key, i, gguf::value_type_name(a->items[i].type),
                  expected);
  return a;
}
bool is_string(const gguf::Value& v) { return v.type == gguf::ValueType::STRING; }
bool is_int(const gguf::Value& v) { return v.is_integer(); }
bool is_num(const gguf::Value& v) { return v.is_number(); }

}  // namespace

std::unique_ptr<Tokenizer> Tokenizer::from_gguf(const gguf::File& f) {
  auto d = std::make_unique<VocabData>();
  const std::string& path = f.path();
  std::string model = f.require_string("tokenizer.ggml.model");
  const gguf::Array* toks = checked_array(f, "tokenizer.ggml.tokens", is_string, "string");
  if (!toks) throw_error("{}: missing required key 'tokenizer.ggml.tokens'", path);
  const gguf::Array* types = checked_array(f, "tokenizer.ggml.token_type", is_int, "an integer");
  const gguf::Array* scores = checked_array(f, "tokenizer.ggml.scores", is_num, "a number");
  const gguf::Array* merges = checked_array(f, "tokenizer.ggml.merges", is_string, "string");
  size_t n = toks->items.size();
  if (n == 0) throw_error("{}: tokenizer.ggml.tokens is empty", path);
  if (n > static_cast<size_t>(kMaxVocab))
    throw_error("{}: tokenizer.ggml.tokens has {} entries, over the limit of {}", path, n, kMaxVocab);
  if (types && types->items.size() != n)
    throw_error("{}: tokenizer.ggml.token_type has {} entries, expected {}", path, types->items.size(), n);
  if (scores && scores->items.size() != n)
    throw_error("{}: tokenizer.ggml.scores has {} entries, expected {}", path, scores->items.size(), n);

  if (model == "gpt2") {
    d->kind = ModelKind::Bpe;
    d->byte_level = true;
  } else if (model == "llama") {
    d->kind = ModelKind::Spm;
    d->byte_fallback = true;
    if (!scores) throw_error("{}: llama tokenizer needs 'tokenizer.ggml.scores'", path);
  } else {
    throw_error("{}: tokenizer.ggml.model '{}' is not supported (gpt2, llama are)", path, quote(model));
  }

  d->tokens.resize(n);
  d->types.resize(n, TokenType::Normal);
  if (scores) d->scores.resize(n, 0.0f);
  d->token_to_id.reserve(n * 2);
  std::string raw;
  size_t added_bytes = 0;
  for (size_t i = 0; i < n; ++i) {
    const std::string& t = toks->items[i].as_string();
    if (t.size() > kMaxTokenBytes)
      throw_error("{}: tokenizer.ggml.tokens[{}] has {} bytes, over the limit of {}", path, i, t.size(),
                  kMaxTokenBytes);
    auto ty = TokenType::Normal;
    if (types) {
      // llama.cpp's token types: 0 undefined (treated as normal), 1 normal, 2 unknown,
      // 3 control, 4 user-defined, 5 unused, 6 byte.
      const auto& v = types->items[i];
      const auto* u = std::get_if<uint64_t>(&v.v);
      const auto* sg = std::get_if<int64_t>(&v.v);
      const int64_t x = u ? (*u <= 6 ? static_cast<int64_t>(*u) : -1) : (sg ? *sg : -1);
      if (x < 0 || x > 6)
        throw_error("{}: tokenizer.ggml.token_type[{}] = {} is not a token type (0..6)", path, i,
                    u ? std::to_string(*u) : sg ? std::to_string(*sg) : std::string("?"));
      if (x != 0) ty = static_cast<TokenType>(x);
    }
    d->types[i] = ty;
    if (scores) {
      const double s = scores->items[i].as_float();
      if (std::isnan(s)) throw_error("{}: tokenizer.ggml.scores[{}] is NaN", path, i);
      constexpr double kMaxF = std::numeric_limits<float>::max();  // the cast is UB outside float's range
      d->scores[i] = static_cast<float>(std::clamp(s, -kMaxF, kMaxF));
    }
    if (d->byte_level && (ty == TokenType::Normal || ty == TokenType::Byte) && byte_level_decode(t, raw))
      d->tokens[i] = raw;
    else
      d->tokens[i] = t;
    d->token_to_id.emplace(d->tokens[i], static_cast<int32_t>(i));
    if (ty == TokenType::Control || ty == TokenType::UserDefined || ty == TokenType::Unknown) {
      if (t.empty()) continue;
      if ((added_bytes += t.size()) > kMaxAddedBytes || d->added.size() >= kMaxAddedTokens)
        throw_error("{}: tokenizer.ggml.tokens: control/user-defined tokens exceed the limit of {} tokens or {} bytes",
                    path, kMaxAddedTokens, kMaxAddedBytes);
      AddedToken at;
      at.id = static_cast<int32_t>(i);
      at.content = t;
      at.special = ty != TokenType::UserDefined;
      d->added.push_back(std::move(at));
    }
  }

  if (d->kind == ModelKind::Bpe) {
    if (!merges) throw_error("{}: gpt2 tokenizer needs 'tokenizer.ggml.merges'", path);
    if (merges->items.size() > kMaxMerges)
      throw_error("{}: tokenizer.ggml.merges has {} entries, over the limit of {}", path, merges->items.size(),
                  kMaxMerges);
    d->merges.reserve(merges->items.size() * 2);
    std::string ra, rb;
    for (size_t r = 0; r < merges->items.size(); ++r) {
      const std::string& s = merges->items[r].as_string();
      size_t sp = s.find(' ', 1);
      if (sp == std::string::npos)
        throw_error("{}: tokenizer.ggml.merges[{}] = '{}' has no space", path, r, quote(s));
      if (!byte_level_decode(std::string_view(s).substr(0, sp), ra) ||
          !byte_level_decode(std::string_view(s).substr(sp + 1), rb))
        continue;
      int32_t ia = d->find(ra), ib = d->find(rb), im = d->find(ra + rb);
      if (ia >= 0 && ib >= 0 && im >= 0)
        d->merges.emplace(VocabData::pair_key(ia, ib), MergeResult{static_cast<int32_t>(r), im});
    }
    std::string pre = f.get_string("tokenizer.ggml.pre").value_or("default");
    auto patterns = known_pretokenizer_patterns(pre);
    if (patterns.empty())
      throw_error("{}: tokenizer.ggml.pre '{}' is not known (known: default, gpt2, llama-bpe, qwen2, "
                  "deepseek-v3, gpt-4o, kimi-k2)", path, quote(pre));
    for (const auto& p : patterns) {
      PreStep st;
      st.kind = PreStep::Split;
      st.re = std::make_shared<Regex>(regex_compat(p));
      d->pretokenizers.push_back(std::move(st));
    }
    d->ignore_merges = pre == "llama3" || pre == "llama-v3" || pre == "llama-bpe" || pre == "gpt-4o" || pre == "kimi-k2";
    if (pre == "qwen2" || pre == "qwen35") d->normalizers.push_back({NormStep::Nfc, "", ""});
  } else {
    bool prefix = f.get_bool("tokenizer.ggml.add_space_prefix").value_or(true);
    d->spm_add_space_prefix = prefix;
    if (prefix) d->normalizers.push_back({NormStep::Prepend, "\xE2\x96\x81", ""});
    d->normalizers.push_back({NormStep::Replace, " ", "\xE2\x96\x81"});
    d->decoders.push_back({DecodeStep::Replace, "\xE2\x96\x81", " ", 0, 0, true});
    d->decoders.push_back({DecodeStep::ByteFallback, "", "", 0, 0, true});
    if (prefix) d->decoders.push_back({DecodeStep::Strip, " ", "", 1, 0, true});
  }

  // Special-token ids: absent, -1 or 0xFFFFFFFF (as some converters write "none")
  // mean none; anything else must be a token id. The padding id is never used to
  // encode or decode, so an out-of-range one (seen in converted models whose
  // embedding is padded past the vocabulary) means none instead of an error.
  auto get_id = [&](const char* key, bool strict = true) -> int32_t {
    const gguf::Value* v = f.find(key);
    if (!v) return -1;
    if (!v->is_integer()) throw_error("{}: {} has type {}, expected an integer", path, key, gguf::value_type_name(v->type));
    if (const auto* u = std::get_if<uint64_t>(&v->v)) {
      if (*u < n) return static_cast<int32_t>(*u);
      if (*u == 0xFFFFFFFFull || *u == ~uint64_t{0} || !strict) return -1;
      throw_error("{}: {} = {} is out of range [0, {})", path, key, *u, n);
    }
    const int64_t x = std::get<int64_t>(v->v);
    if (x >= 0 && x < static_cast<int64_t>(n)) return static_cast<int32_t>(x);
    if (x == -1 || !strict) return -1;
    throw_error("{}: {} = {} is out of range [0, {})", path, key, x, n);
  };
  d->bos = get_id("tokenizer.ggml.bos_token_id");
  d->eos = get_id("tokenizer.ggml.eos_token_id");
  d->pad = get_id("tokenizer.ggml.padding_token_id", /*strict=*/false);
  d->unk = get_id("tokenizer.ggml.unknown_token_id");
  if (d->unk < 0 && d->kind == ModelKind::Spm) d->unk = d->find("<unk>");
  d->add_bos = f.get_bool("tokenizer.ggml.add_bos_token").value_or(d->kind == ModelKind::Spm);
  d->add_eos = f.get_bool("tokenizer.ggml.add_eos_token").value_or(false);
  for (const char* key : {"tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"}) {
    int32_t id = get_id(key);
    if (id >= 0) d->eog.push_back(id);
  }
  d->chat_template = f.get_string("tokenizer.chat_template").value_or("");
  d->finalize();
  return std::make_unique<Tokenizer>(std::move(d));
}

std::unique_ptr<Tokenizer> Tokenizer::from_path(const std::string& path) {
  auto ends_with = [&](std::string_view suf) {
    return path.size() >= suf.size() && path.compare(path.size() - suf.size(), suf.size(), suf) == 0;
  };
  if (ends_with(".gguf")) return from_gguf(gguf::File::open(path));
  if (ends_with(".json")) return from_json(path);
  return from_json(path + "/tokenizer.json");
}

}  // namespace moe
