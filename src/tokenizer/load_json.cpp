// Loads a Hugging Face tokenizer.json (+ tokenizer_config.json beside it):
// model BPE (vocab, merges as "a b" or [a, b], byte_fallback, ignore_merges),
// added_tokens, normalizer, pre_tokenizer, decoder; bos/eos/add_bos_token and
// chat_template from the config. Unsupported components throw moe::Error.
#include <filesystem>
#include <fstream>
#include <sstream>

#include "base/error.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"
#include "tokenizer/vocab.h"

namespace moe {
using namespace tok;
using nlohmann::json;

namespace {

json read_json(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw_error("{}: cannot open file", path);
  std::stringstream ss;
  ss << f.rdbuf();
  try {
    return json::parse(ss.str());
  } catch (const json::exception& e) {
    throw_error("{}: invalid JSON: {}", path, e.what());
  }
}

std::string str_or(const json& j, const char* key, const std::string& def = "") {
  auto it = j.find(key);
  return (it != j.end() && it->is_string()) ? it->get<std::string>() : def;
}
bool bool_or(const json& j, const char* key, bool def) {
  auto it = j.find(key);
  return (it != j.end() && it->is_boolean()) ? it->get<bool>() : def;
}

std::string pattern_string(const json& pat, const std::string& where) {
  if (pat.contains("String")) return pat["String"].get<std::string>();
  throw_error("tokenizer.json: {}: only String patterns are supported here, got {}", where, pat.dump());
}

void parse_normalizer(const json& n, std::vector<NormStep>& out) {
  if (n.is_null()) return;
  std::string type = str_or(n, "type");
  if (type == "Sequence") {
    for (const auto& x : n["normalizers"]) parse_normalizer(x, out);
  } else if (type == "NFC") {
    out.push_back({NormStep::Nfc, "", ""});
  } else if (type == "Prepend") {
    out.push_back({NormStep::Prepend, n["prepend"].get<std::string>(), ""});
  } else if (type == "Replace") {
    out.push_back({NormStep::Replace, pattern_string(n["pattern"], "Replace normalizer"),
                   n["content"].get<std::string>()});
  } else if (type == "Lowercase") {
    out.push_back({NormStep::Lowercase, "", ""});
  } else {
    throw_error("tokenizer.json: unsupported normalizer type '{}'", type);
  }
}

void parse_pretokenizer(const json& p, std::vector<PreStep>& out, bool& byte_level) {
  if (p.is_null()) return;
  std::string type = str_or(p, "type");
  PreStep st;
  if (type == "Sequence") {
    for (const auto& x : p["pretokenizers"]) parse_pretokenizer(x, out, byte_level);
    return;
  } else if (type == "Split") {
    st.kind = PreStep::Split;
    const auto& pat = p["pattern"];
    std::string re;
    if (pat.contains("Regex")) re = regex_compat(pat["Regex"].get<std::string>());
    else re = "\\Q" + pat["String"].get<std::string>() + "\\E";
    st.re = std::make_shared<Regex>(re);
    std::string behavior = str_or(p, "behavior", "Isolated");
    if (behavior == "Removed") st.removed = true;
    else if (behavior != "Isolated")
      throw_error("tokenizer.json: Split behavior '{}' is not supported (Isolated, Removed are)", behavior);
    st.invert = bool_or(p, "invert", false);
  } else if (type == "ByteLevel") {
    st.kind = PreStep::ByteLevel;
    byte_level = true;
    st.add_prefix_space = bool_or(p, "add_prefix_space", false);
    if (bool_or(p, "use_regex", true)) st.re = std::make_shared<Regex>(gpt2_pattern());
  } else if (type == "Digits") {
    st.kind = PreStep::Digits;
    st.individual_digits = bool_or(p, "individual_digits", false);
  } else if (type == "Metaspace") {
    st.kind = PreStep::Metaspace;
    st.replacement = str_or(p, "replacement", "\xE2\x96\x81");
    std::string scheme = str_or(p, "prepend_scheme", "always");
    st.add_prefix_space = bool_or(p, "add_prefix_space", true);
    st.prepend_first_only = scheme == "first";
    st.prepend_never = scheme == "never";
  } else if (type == "Whitespace") {
    st.kind = PreStep::Whitespace;
  } else {
    throw_error("tokenizer.json: unsupported pre_tokenizer type '{}'", type);
  }
  out.push_back(std::move(st));
}

void parse_decoder(const json& d, std::vector<DecodeStep>& out) {
  if (d.is_null()) return;
  std::string type = str_or(d, "type");
  DecodeStep st;
  if (type == "Sequence") {
    for (const auto& x : d["decoders"]) parse_decoder(x, out);
    return;
  } else if (type == "ByteLevel") {
    st.kind = DecodeStep::ByteLevel;
  } else if (type == "Metaspace") {
    st.kind = DecodeStep::Metaspace;
    st.a = str_or(d, "replacement", "\xE2\x96\x81");
    st.add_prefix_space = str_or(d, "prepend_scheme", "always") != "never" && bool_or(d, "add_prefix_space", true);
  } else if (type == "ByteFallback") {
    st.kind = DecodeStep::ByteFallback;
  } else if (type == "Fuse") {
    st.kind = DecodeStep::Fuse;
  } else if (type == "Strip") {
    st.kind = DecodeStep::Strip;
    st.a = str_or(d, "content", " ");
    st.start = d.value("start", 0);
    st.stop = d.value("stop", 0);
  } else if (type == "Replace") {
    st.kind = DecodeStep::Replace;
    st.a = pattern_string(d["pattern"], "Replace decoder");
    st.b = d["content"].get<std::string>();
  } else {
    throw_error("tokenizer.json: unsupported decoder type '{}'", type);
  }
  out.push_back(std::move(st));
}

// bos_token may be a string or {"content": ...}.
std::string config_token(const json& cfg, const char* key) {
  auto it = cfg.find(key);
  if (it == cfg.end() || it->is_null()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object()) return str_or(*it, "content");
  return "";
}

}  // namespace

std::unique_ptr<Tokenizer> Tokenizer::from_json(const std::string& path) {
  json tj = read_json(path);
  json cfg = json::object();
  auto cfg_path = std::filesystem::path(path).parent_path() / "tokenizer_config.json";
  if (std::filesystem::exists(cfg_path)) cfg = read_json(cfg_path.string());

  auto d = std::make_unique<VocabData>();
  const json& model = tj.at("model");
  std::string mtype = str_or(model, "type", "BPE");
  if (mtype != "BPE") throw_error("{}: tokenizer model type '{}' is not supported (only BPE)", path, mtype);

  parse_normalizer(tj.value("normalizer", json()), d->normalizers);
  parse_pretokenizer(tj.value("pre_tokenizer", json()), d->pretokenizers, d->byte_level);
  parse_decoder(tj.value("decoder", json()), d->decoders);
  for (const auto& st : d->decoders)
    if (st.kind == DecodeStep::ByteLevel) d->byte_level = true;
  d->byte_fallback = bool_or(model, "byte_fallback", false);
  d->ignore_merges = bool_or(model, "ignore_merges", false);

  // Vocabulary (raw bytes for byte-level models).
  const json& vocab = model.at("vocab");
  int32_t max_id = -1;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) max_id = std::max(max_id, it.value().get<int32_t>());
  for (const auto& a : tj.value("added_tokens", json::array())) max_id = std::max(max_id, a.at("id").get<int32_t>());
  d->tokens.assign(static_cast<size_t>(max_id + 1), "");
  d->types.assign(d->tokens.size(), TokenType::Unused);
  d->token_to_id.reserve(d->tokens.size() * 2);
  std::string raw;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    int32_t id = it.value().get<int32_t>();
    const std::string& text = it.key();
    if (d->byte_level && byte_level_decode(text, raw)) d->tokens[id] = raw;
    else d->tokens[id] = text;
    d->types[id] = TokenType::Normal;
    d->token_to_id.emplace(d->tokens[id], id);
  }
  if (d->byte_fallback)
    for (size_t i = 0; i < d->tokens.size(); ++i) {
      const auto& t = d->tokens[i];
      if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>') d->types[i] = TokenType::Byte;
    }
  for (const auto& a : tj.value("added_tokens", json::array())) {
    AddedToken at;
    at.id = a.at("id").get<int32_t>();
    at.content = a.at("content").get<std::string>();
    at.special = bool_or(a, "special", false);
    at.lstrip = bool_or(a, "lstrip", false);
    at.rstrip = bool_or(a, "rstrip", false);
    d->tokens[at.id] = at.content;
    d->types[at.id] = at.special ? TokenType::Control : TokenType::UserDefined;
    d->token_to_id[at.content] = at.id;
    d->added.push_back(std::move(at));
  }

  // Merges.
  const json& merges = model.value("merges", json::array());
  d->merges.reserve(merges.size() * 2);
  int32_t rank = 0;
  std::string a, b;
  for (const auto& m : merges) {
    if (m.is_string()) {
      const std::string& s = m.get_ref<const std::string&>();
      size_t sp = s.find(' ', 1);
      if (sp == std::string::npos) throw_error("{}: merge '{}' has no space", path, s);
      a = s.substr(0, sp);
      b = s.substr(sp + 1);
    } else {
      a = m.at(0).get<std::string>();
      b = m.at(1).get<std::string>();
    }
    if (d->byte_level) {
      std::string ra, rb;
      if (byte_level_decode(a, ra) && byte_level_decode(b, rb)) { a.swap(ra); b.swap(rb); }
    }
    int32_t ia = d->find(a), ib = d->find(b), im = d->find(a + b);
    if (ia >= 0 && ib >= 0 && im >= 0) d->merges.emplace(VocabData::pair_key(ia, ib), MergeResult{rank, im});
    ++rank;
  }

  // Special ids and flags from tokenizer_config.json.
  auto id_of = [&](const std::string& s) { return s.empty() ? -1 : d->find(s); };
  d->bos = id_of(config_token(cfg, "bos_token"));
  d->eos = id_of(config_token(cfg, "eos_token"));
  d->pad = id_of(config_token(cfg, "pad_token"));
  d->unk = id_of(config_token(cfg, "unk_token"));
  if (d->unk < 0) d->unk = id_of(str_or(model, "unk_token"));
  if (cfg.contains("add_bos_token") && cfg["add_bos_token"].is_boolean()) {
    d->add_bos = cfg["add_bos_token"].get<bool>();
  } else {
    // No explicit flag: BOS is added when the post-processor template starts with it.
    const json& pp = tj.value("post_processor", json());
    if (pp.is_object() && str_or(pp, "type") == "TemplateProcessing" && !pp["single"].empty() &&
        pp["single"][0].contains("SpecialToken")) {
      d->add_bos = true;
      int32_t id = id_of(pp["single"][0]["SpecialToken"].value("id", ""));
      if (id >= 0) d->bos = id;
    }
  }
  d->add_eos = bool_or(cfg, "add_eos_token", false);
  if (cfg.contains("chat_template")) {
    const json& ct = cfg["chat_template"];
    if (ct.is_string()) {
      d->chat_template = ct.get<std::string>();
    } else if (ct.is_array()) {
      for (const auto& t : ct)
        if (t.value("name", "") == "default") d->chat_template = t.value("template", "");
      if (d->chat_template.empty() && !ct.empty()) d->chat_template = ct[0].value("template", "");
    }
  }
  d->finalize();
  return std::make_unique<Tokenizer>(std::move(d));
}

}  // namespace moe
