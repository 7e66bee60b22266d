// Loads a tokenizer from GGUF metadata (tokenizer.ggml.*): `gpt2` models are
// byte-level BPE with merges and a pre-tokenizer chosen by tokenizer.ggml.pre;
// `llama` models are SentencePiece BPE ordered by token scores with <0xNN>
// byte fallback. Control, user-defined and unknown tokens are matched as added
// tokens before BPE (control/unknown only with parse_special).
#include "base/error.h"
#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"
#include "tokenizer/vocab.h"

namespace moe {
using namespace tok;

std::unique_ptr<Tokenizer> Tokenizer::from_gguf(const gguf::File& f) {
  auto d = std::make_unique<VocabData>();
  const std::string& path = f.path();
  std::string model = f.require_string("tokenizer.ggml.model");
  const gguf::Array* toks = f.get_array("tokenizer.ggml.tokens");
  if (!toks) throw_error("{}: missing required key 'tokenizer.ggml.tokens'", path);
  const gguf::Array* types = f.get_array("tokenizer.ggml.token_type");
  const gguf::Array* scores = f.get_array("tokenizer.ggml.scores");
  const gguf::Array* merges = f.get_array("tokenizer.ggml.merges");
  size_t n = toks->items.size();
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
    throw_error("{}: tokenizer.ggml.model '{}' is not supported (gpt2, llama are)", path, model);
  }

  d->tokens.resize(n);
  d->types.resize(n, TokenType::Normal);
  if (scores) d->scores.resize(n, 0.0f);
  d->token_to_id.reserve(n * 2);
  std::string raw;
  for (size_t i = 0; i < n; ++i) {
    const std::string& t = toks->items[i].as_string();
    auto ty = types ? static_cast<TokenType>(types->items[i].as_int()) : TokenType::Normal;
    d->types[i] = ty;
    if (scores) d->scores[i] = static_cast<float>(scores->items[i].as_float());
    if (d->byte_level && (ty == TokenType::Normal || ty == TokenType::Byte) && byte_level_decode(t, raw))
      d->tokens[i] = raw;
    else
      d->tokens[i] = t;
    d->token_to_id.emplace(d->tokens[i], static_cast<int32_t>(i));
    if (ty == TokenType::Control || ty == TokenType::UserDefined || ty == TokenType::Unknown) {
      if (t.empty()) continue;
      AddedToken at;
      at.id = static_cast<int32_t>(i);
      at.content = t;
      at.special = ty != TokenType::UserDefined;
      d->added.push_back(std::move(at));
    }
  }

  if (d->kind == ModelKind::Bpe) {
    if (!merges) throw_error("{}: gpt2 tokenizer needs 'tokenizer.ggml.merges'", path);
    d->merges.reserve(merges->items.size() * 2);
    std::string ra, rb;
    for (size_t r = 0; r < merges->items.size(); ++r) {
      const std::string& s = merges->items[r].as_string();
      size_t sp = s.find(' ', 1);
      if (sp == std::string::npos) throw_error("{}: tokenizer.ggml.merges[{}] = '{}' has no space", path, r, s);
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
                  "deepseek-v3, gpt-4o)", path, pre);
    for (const auto& p : patterns) {
      PreStep st;
      st.kind = PreStep::Split;
      st.re = std::make_shared<Regex>(regex_compat(p));
      d->pretokenizers.push_back(std::move(st));
    }
    d->ignore_merges = pre == "llama3" || pre == "llama-v3" || pre == "llama-bpe" || pre == "gpt-4o";
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

  auto get_id = [&](const char* key) -> int32_t {
    auto v = f.get_int(key);
    if (!v) return -1;
    if (*v < 0 || *v >= static_cast<int64_t>(n)) return -1;
    return static_cast<int32_t>(*v);
  };
  d->bos = get_id("tokenizer.ggml.bos_token_id");
  d->eos = get_id("tokenizer.ggml.eos_token_id");
  d->pad = get_id("tokenizer.ggml.padding_token_id");
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
