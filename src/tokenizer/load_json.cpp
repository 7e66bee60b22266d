// Loads a Hugging Face tokenizer.json (+ tokenizer_config.json beside it):
// model BPE (vocab, merges as "a b" or [a, b], byte_fallback, ignore_merges),
// added_tokens, normalizer, pre_tokenizer, decoder; bos/eos/add_bos_token and
// chat_template from the config. Unsupported components throw moe::Error.
// Both files are untrusted: every member is read through JNode (json_access.h),
// so a missing key or a wrong type is an error naming the file and JSON path,
// and every id, count, length and regex is checked against limits.h before use.
#include <cctype>
#include <filesystem>

#include "base/error.h"
#include "tokenizer/json_access.h"
#include "tokenizer/limits.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"
#include "tokenizer/vocab.h"

namespace moe {
using namespace tok;
using nlohmann::json;

namespace {

// A string of a pipeline step (Prepend, Replace, Metaspace, Strip); bounded
// because it can be inserted once per input byte.
std::string step_string(const JNode& n, bool allow_empty = true) {
  const std::string& s = n.str();
  if (s.size() > kMaxStepStringBytes)
    n.fail("string of {} bytes is over the limit of {} bytes", s.size(), kMaxStepStringBytes);
  if (!allow_empty && s.empty()) n.fail("must not be empty");
  return s;
}
std::string step_string_or(const JNode& parent, const char* key, const std::string& def, bool allow_empty) {
  auto n = parent.opt(key);
  return n ? step_string(*n, allow_empty) : def;
}

std::string pattern_string(const JNode& pat) {
  pat.expect_object();
  auto s = pat.opt("String");
  if (!s) pat.fail("only String patterns are supported here");
  return step_string(*s);
}

// A regex that matches `s` literally (PCRE2: a backslash before a non-alphanumeric
// ASCII character makes it literal; \Q...\E would break on an embedded "\E").
std::string literal_regex(std::string_view s) {
  std::string re;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x80 && !std::isalnum(u)) re += '\\';
    re += c;
  }
  return re;
}

std::shared_ptr<Regex> compile_regex(const JNode& where, const std::string& pattern) {
  if (pattern.size() > kMaxRegexBytes)
    where.fail("regex of {} bytes is over the limit of {} bytes", pattern.size(), kMaxRegexBytes);
  try {
    return std::make_shared<Regex>(pattern);
  } catch (const moe::Error& e) {
    where.fail("{}", e.what());
  }
}

struct Pipeline {
  std::vector<NormStep>& norm;
  std::vector<PreStep>& pre;
  std::vector<DecodeStep>& dec;
  bool& byte_level;
  size_t steps = 0;
  void count(const JNode& n) {
    if (++steps > kMaxPipelineSteps)
      n.fail("more than the limit of {} normalizer, pre-tokenizer and decoder steps", kMaxPipelineSteps);
  }
};

void parse_normalizer(const JNode& n, Pipeline& p) {
  p.count(n);
  const std::string& type = n.at("type").str();
  if (type == "Sequence") {
    JNode list = n.at("normalizers");
    for (size_t i = 0; i < list.array_size(); ++i) parse_normalizer(list.at(i), p);
  } else if (type == "NFC") {
    p.norm.push_back({NormStep::Nfc, "", ""});
  } else if (type == "Prepend") {
    p.norm.push_back({NormStep::Prepend, step_string(n.at("prepend")), ""});
  } else if (type == "Replace") {
    p.norm.push_back({NormStep::Replace, pattern_string(n.at("pattern")), step_string(n.at("content"))});
  } else if (type == "Lowercase") {
    p.norm.push_back({NormStep::Lowercase, "", ""});
  } else {
    n.fail("unsupported normalizer type '{}'", quote(type));
  }
}

void parse_pretokenizer(const JNode& n, Pipeline& p) {
  p.count(n);
  const std::string& type = n.at("type").str();
  PreStep st;
  if (type == "Sequence") {
    JNode list = n.at("pretokenizers");
    for (size_t i = 0; i < list.array_size(); ++i) parse_pretokenizer(list.at(i), p);
    return;
  } else if (type == "Split") {
    st.kind = PreStep::Split;
    JNode pat = n.at("pattern");
    pat.expect_object();
    if (auto re = pat.opt("Regex")) {
      st.re = compile_regex(*re, regex_compat(re->str()));
    } else if (auto lit = pat.opt("String")) {
      if (lit->str().empty()) lit->fail("must not be empty");
      st.re = compile_regex(*lit, literal_regex(lit->str()));
    } else {
      pat.fail("expected a 'Regex' or 'String' pattern");
    }
    const std::string behavior = n.str_or("behavior", "Isolated");
    if (behavior == "Removed") st.removed = true;
    else if (behavior != "Isolated")
      n.at("behavior").fail("'{}' is not supported (Isolated, Removed are)", quote(behavior));
    st.invert = n.bool_or("invert", false);
  } else if (type == "ByteLevel") {
    st.kind = PreStep::ByteLevel;
    p.byte_level = true;
    st.add_prefix_space = n.bool_or("add_prefix_space", false);
    if (n.bool_or("use_regex", true)) st.re = std::make_shared<Regex>(gpt2_pattern());
  } else if (type == "Digits") {
    st.kind = PreStep::Digits;
    st.individual_digits = n.bool_or("individual_digits", false);
  } else if (type == "Metaspace") {
    st.kind = PreStep::Metaspace;
    st.replacement = step_string_or(n, "replacement", "\xE2\x96\x81", /*allow_empty=*/false);
    const std::string scheme = n.str_or("prepend_scheme", "always");
    if (scheme != "always" && scheme != "first" && scheme != "never")
      n.at("prepend_scheme").fail("'{}' is not one of always, first, never", quote(scheme));
    st.add_prefix_space = n.bool_or("add_prefix_space", true);
    st.prepend_first_only = scheme == "first";
    st.prepend_never = scheme == "never";
  } else if (type == "Whitespace") {
    st.kind = PreStep::Whitespace;
  } else {
    n.fail("unsupported pre_tokenizer type '{}'", quote(type));
  }
  p.pre.push_back(std::move(st));
}

void parse_decoder(const JNode& n, Pipeline& p) {
  p.count(n);
  const std::string& type = n.at("type").str();
  DecodeStep st;
  if (type == "Sequence") {
    JNode list = n.at("decoders");
    for (size_t i = 0; i < list.array_size(); ++i) parse_decoder(list.at(i), p);
    return;
  } else if (type == "ByteLevel") {
    st.kind = DecodeStep::ByteLevel;
  } else if (type == "Metaspace") {
    st.kind = DecodeStep::Metaspace;
    st.a = step_string_or(n, "replacement", "\xE2\x96\x81", /*allow_empty=*/false);
    st.add_prefix_space = n.str_or("prepend_scheme", "always") != "never" && n.bool_or("add_prefix_space", true);
  } else if (type == "ByteFallback") {
    st.kind = DecodeStep::ByteFallback;
  } else if (type == "Fuse") {
    st.kind = DecodeStep::Fuse;
  } else if (type == "Strip") {
    st.kind = DecodeStep::Strip;
    st.a = step_string_or(n, "content", " ", /*allow_empty=*/true);
    const int64_t start = n.int_or("start", 0), stop = n.int_or("stop", 0);
    if (start < 0 || start > kMaxStripCount) n.at("start").fail("{} is not in [0, {}]", start, kMaxStripCount);
    if (stop < 0 || stop > kMaxStripCount) n.at("stop").fail("{} is not in [0, {}]", stop, kMaxStripCount);
    st.start = static_cast<int>(start);
    st.stop = static_cast<int>(stop);
  } else if (type == "Replace") {
    st.kind = DecodeStep::Replace;
    st.a = pattern_string(n.at("pattern"));
    st.b = step_string(n.at("content"));
  } else {
    n.fail("unsupported decoder type '{}'", quote(type));
  }
  p.dec.push_back(std::move(st));
}

// bos_token may be a string or {"content": ...}; "" when absent or null.
std::string config_token(const JNode& cfg, const char* key) {
  auto n = cfg.opt(key);
  if (!n) return "";
  if (n->json().is_string()) return n->str();
  if (n->json().is_object()) return n->at("content").str();
  n->type_error("a string or an object with 'content'");
}

bool is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f'); }

// A token id read from the file: an integer in [0, kMaxVocab).
int32_t token_id_at(const JNode& n) {
  const int64_t id = n.integer();
  if (id < 0 || id >= kMaxVocab) n.fail("token id {} is out of range [0, {})", id, kMaxVocab);
  return static_cast<int32_t>(id);
}

void check_token_text(const JNode& n, const std::string& text) {
  if (text.size() > kMaxTokenBytes)
    n.fail("token of {} bytes is over the limit of {} bytes", text.size(), kMaxTokenBytes);
}

}  // namespace

std::unique_ptr<Tokenizer> Tokenizer::from_json(const std::string& path) {
  const std::string tj = read_file_bounded(path, kMaxJsonFileBytes);
  const auto cfg_path = (std::filesystem::path(path).parent_path() / "tokenizer_config.json").string();
  std::error_code ec;
  std::string cfg;
  if (std::filesystem::exists(cfg_path, ec)) cfg = read_file_bounded(cfg_path, kMaxJsonFileBytes);
  return from_json_text(tj, path, cfg, cfg_path);
}

std::unique_ptr<Tokenizer> Tokenizer::from_json_text(std::string_view tokenizer_json, const std::string& name,
                                                     std::string_view config_json, const std::string& config_name) {
  const json tj = parse_json_bounded(tokenizer_json, name);
  const json cj = config_json.empty() ? json::object() : parse_json_bounded(config_json, config_name);
  const JNode root(tj, name, ""), cfg(cj, config_name, "");
  root.expect_object();
  cfg.expect_object();

  auto d = std::make_unique<VocabData>();
  const JNode model = root.at("model");
  const std::string mtype = model.str_or("type", "BPE");
  if (mtype != "BPE") model.fail("tokenizer model type '{}' is not supported (only BPE)", quote(mtype));

  Pipeline pipe{d->normalizers, d->pretokenizers, d->decoders, d->byte_level};
  if (auto n = root.opt("normalizer")) parse_normalizer(*n, pipe);
  if (auto n = root.opt("pre_tokenizer")) parse_pretokenizer(*n, pipe);
  if (auto n = root.opt("decoder")) parse_decoder(*n, pipe);
  for (const auto& st : d->decoders)
    if (st.kind == DecodeStep::ByteLevel) d->byte_level = true;
  d->byte_fallback = model.bool_or("byte_fallback", false);
  d->ignore_merges = model.bool_or("ignore_merges", false);

  // Vocabulary (raw bytes for byte-level models). Ids are bounded twice: below
  // kMaxVocab, and at most kMaxIdHoles past the number of entries.
  const JNode vocab = model.at("vocab");
  vocab.expect_object();
  const auto added_node = root.opt("added_tokens");
  const size_t n_added = added_node ? added_node->array_size() : 0;
  if (vocab.json().empty()) vocab.fail("the vocabulary is empty");
  if (n_added > kMaxAddedTokens) added_node->fail("{} added tokens, over the limit of {}", n_added, kMaxAddedTokens);
  const auto entry = [&](const json::const_iterator& it) {
    return JNode(it.value(), name, vocab.path() + "[\"" + quote(it.key()) + "\"]");
  };
  // Fast path for the common case; JNode (and its path string) only on a bad entry.
  const auto vocab_id = [&](const json::const_iterator& it) -> int32_t {
    const json& v = it.value();
    if (v.is_number_unsigned() && v.get<uint64_t>() < static_cast<uint64_t>(kMaxVocab))
      return static_cast<int32_t>(v.get<uint64_t>());
    return token_id_at(entry(it));
  };
  int64_t max_id = -1;
  for (auto it = vocab.json().begin(); it != vocab.json().end(); ++it) max_id = std::max<int64_t>(max_id, vocab_id(it));
  for (size_t i = 0; i < n_added; ++i) max_id = std::max<int64_t>(max_id, token_id_at(added_node->at(i).at("id")));
  const int64_t n_entries = static_cast<int64_t>(vocab.json().size() + n_added);
  if (max_id + 1 > n_entries + kMaxIdHoles)
    root.fail("highest token id {} leaves more than {} unused ids for {} entries (vocab + added_tokens)", max_id,
              kMaxIdHoles, n_entries);
  const size_t n_vocab = static_cast<size_t>(max_id + 1);
  d->tokens.assign(n_vocab, "");
  d->types.assign(n_vocab, TokenType::Unused);
  d->token_to_id.reserve(n_vocab * 2);
  std::vector<uint8_t> used(n_vocab, 0);
  std::string raw;
  for (auto it = vocab.json().begin(); it != vocab.json().end(); ++it) {
    const int32_t id = vocab_id(it);
    const std::string& text = it.key();
    if (text.size() > kMaxTokenBytes) check_token_text(entry(it), text);
    if (used[static_cast<size_t>(id)])
      entry(it).fail("token id {} is also given to '{}'", id, quote(d->tokens[static_cast<size_t>(id)]));
    used[static_cast<size_t>(id)] = 1;
    if (d->byte_level && byte_level_decode(text, raw)) d->tokens[id] = raw;
    else d->tokens[id] = text;
    d->types[id] = TokenType::Normal;
    d->token_to_id.emplace(d->tokens[id], id);
  }
  if (d->byte_fallback)
    for (size_t i = 0; i < d->tokens.size(); ++i) {
      const auto& t = d->tokens[i];
      if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && is_hex(t[3]) && is_hex(t[4]) && t[5] == '>')
        d->types[i] = TokenType::Byte;
    }
  size_t added_bytes = 0;
  for (size_t i = 0; i < n_added; ++i) {
    const JNode a = added_node->at(i);
    AddedToken at;
    at.id = token_id_at(a.at("id"));
    const JNode content = a.at("content");
    at.content = content.str();
    check_token_text(content, at.content);
    if ((added_bytes += at.content.size()) > kMaxAddedBytes)
      content.fail("added tokens hold more than the limit of {} bytes of text", kMaxAddedBytes);
    at.special = a.bool_or("special", false);
    at.lstrip = a.bool_or("lstrip", false);
    at.rstrip = a.bool_or("rstrip", false);
    d->tokens[at.id] = at.content;
    d->types[at.id] = at.special ? TokenType::Control : TokenType::UserDefined;
    d->token_to_id[at.content] = at.id;
    d->added.push_back(std::move(at));
  }

  // Merges: "a b" or ["a", "b"]; a merge whose parts or result are not tokens is skipped.
  if (auto merges = model.opt("merges")) {
    const size_t n_merges = merges->array_size();
    if (n_merges > kMaxMerges) merges->fail("{} merges, over the limit of {}", n_merges, kMaxMerges);
    d->merges.reserve(n_merges * 2);
    std::string a, b;
    for (size_t r = 0; r < n_merges; ++r) {
      const JNode m = merges->at(r);
      if (m.json().is_string()) {
        const std::string& s = m.str();
        const size_t sp = s.find(' ', 1);
        if (sp == std::string::npos) m.fail("merge '{}' has no space", quote(s));
        a = s.substr(0, sp);
        b = s.substr(sp + 1);
      } else if (m.json().is_array()) {
        if (m.array_size() != 2) m.fail("a merge must have 2 parts, found {}", m.array_size());
        a = m.at(size_t{0}).str();
        b = m.at(size_t{1}).str();
      } else {
        m.type_error("a string \"a b\" or an array [a, b]");
      }
      if (d->byte_level) {
        std::string ra, rb;
        if (byte_level_decode(a, ra) && byte_level_decode(b, rb)) { a.swap(ra); b.swap(rb); }
      }
      const int32_t ia = d->find(a), ib = d->find(b), im = d->find(a + b);
      if (ia >= 0 && ib >= 0 && im >= 0)
        d->merges.emplace(VocabData::pair_key(ia, ib), MergeResult{static_cast<int32_t>(r), im});
    }
  }

  // Special ids and flags from tokenizer_config.json (a name not in the vocabulary means none).
  auto id_of = [&](const std::string& s) { return s.empty() ? -1 : d->find(s); };
  d->bos = id_of(config_token(cfg, "bos_token"));
  d->eos = id_of(config_token(cfg, "eos_token"));
  d->pad = id_of(config_token(cfg, "pad_token"));
  d->unk = id_of(config_token(cfg, "unk_token"));
  if (d->unk < 0) d->unk = id_of(model.str_or("unk_token", ""));
  if (auto flag = cfg.opt("add_bos_token")) {
    d->add_bos = flag->boolean();
  } else if (auto pp = root.opt("post_processor")) {
    // No explicit flag: BOS is added when the post-processor template starts with it.
    pp->expect_object();
    if (pp->str_or("type", "") == "TemplateProcessing") {
      const JNode single = pp->at("single");
      if (single.array_size() > 0) {
        const JNode first = single.at(size_t{0});
        first.expect_object();
        if (auto st = first.opt("SpecialToken")) {
          d->add_bos = true;
          const int32_t id = id_of(st->str_or("id", ""));
          if (id >= 0) d->bos = id;
        }
      }
    }
  }
  d->add_eos = cfg.bool_or("add_eos_token", false);
  if (auto ct = cfg.opt("chat_template")) {
    if (ct->json().is_string()) {
      d->chat_template = ct->str();
    } else if (ct->json().is_array()) {
      for (size_t i = 0; i < ct->array_size(); ++i) {
        const JNode t = ct->at(i);
        if (t.str_or("name", "") == "default") d->chat_template = t.str_or("template", "");
      }
      if (d->chat_template.empty() && ct->array_size() > 0) d->chat_template = ct->at(size_t{0}).str_or("template", "");
    } else {
      ct->type_error("a string or an array of {name, template}");
    }
  }
  d->finalize();
  return std::make_unique<Tokenizer>(std::move(d));
}

}  // namespace moe
