// Builds synthesizer vocabularies. The BPE trainer is the textbook algorithm
// (Sennrich et al. 2016): count adjacent symbol pairs within words, merge the
// most frequent (ties: lexicographically smallest), repeat.
#include "model/synth_vocab.h"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "base/error.h"

namespace moe {
namespace {

const char* kTrainingText =
    "In the beginning the engine read the model file and mapped every tensor into memory. "
    "The router picked a few experts for each token, and only those experts were read. "
    "A mixture of experts keeps the total number of parameters large while the number of "
    "parameters used for each token stays small. The quick brown fox jumps over the lazy dog. "
    "She sells sea shells by the sea shore, and the shells she sells are surely sea shells. "
    "It was the best of times, it was the worst of times, it was the age of wisdom, it was the "
    "age of foolishness. We hold these truths to be self-evident, that all men are created "
    "equal. To be, or not to be, that is the question: whether it is nobler in the mind to "
    "suffer the slings and arrows of outrageous fortune. Hello world! The answer is 42. "
    "int main() { return 0; } for (int i = 0; i < n; ++i) { sum += x[i] * w[i]; } ";

std::string utf8(uint32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else if (cp < 0x800) {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    s += static_cast<char>(0xE0 | (cp >> 12));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

}  // namespace

std::string byte_to_unicode(uint8_t b) {
  auto printable = [](int c) { return (c >= 33 && c <= 126) || (c >= 161 && c <= 172) || c >= 174; };
  if (printable(b)) return utf8(b);
  int n = 0;
  for (int c = 0; c < b; ++c)
    if (!printable(c)) ++n;
  return utf8(256 + n);
}

SynthVocab builtin_bpe_vocab(int64_t n_vocab) {
  MOE_CHECK(n_vocab >= 260, "vocabulary size {} too small for a byte-level BPE (need >= 260)", n_vocab);
  SynthVocab v;
  for (int b = 0; b < 256; ++b) {
    v.tokens.push_back(byte_to_unicode(static_cast<uint8_t>(b)));
    v.types.push_back(1);
  }
  const int64_t n_special = 3;
  const int64_t n_merges_max = n_vocab - 256 - n_special;

  // Words: a leading space joins the following word (GPT-2 style), as symbol lists.
  std::map<std::vector<std::string>, int64_t> words;
  std::string text = kTrainingText;
  size_t i = 0;
  while (i < text.size()) {
    size_t j = i + 1;
    while (j < text.size() && text[j] != ' ') ++j;
    std::vector<std::string> sym;
    for (size_t k = i; k < j; ++k) sym.push_back(byte_to_unicode(static_cast<uint8_t>(text[k])));
    words[sym]++;
    i = j;
  }
  for (int64_t m = 0; m < n_merges_max; ++m) {
    std::map<std::pair<std::string, std::string>, int64_t> pairs;
    for (const auto& [w, cnt] : words)
      for (size_t k = 0; k + 1 < w.size(); ++k) pairs[{w[k], w[k + 1]}] += cnt;
    if (pairs.empty()) break;
    auto best = pairs.begin();
    for (auto it = pairs.begin(); it != pairs.end(); ++it)
      if (it->second > best->second) best = it;
    if (best->second < 2) break;
    const auto [a, b] = best->first;
    v.merges.push_back(a + " " + b);
    v.tokens.push_back(a + b);
    v.types.push_back(1);
    std::map<std::vector<std::string>, int64_t> next;
    for (const auto& [w, cnt] : words) {
      std::vector<std::string> nw;
      for (size_t k = 0; k < w.size(); ++k) {
        if (k + 1 < w.size() && w[k] == a && w[k + 1] == b) {
          nw.push_back(a + b);
          ++k;
        } else {
          nw.push_back(w[k]);
        }
      }
      next[nw] += cnt;
    }
    words.swap(next);
  }
  for (const char* s : {"<|endoftext|>", "<|im_start|>", "<|im_end|>"}) {
    v.tokens.push_back(s);
    v.types.push_back(3);
  }
  v.eos = static_cast<int32_t>(v.tokens.size()) - 1;  // <|im_end|>
  v.bos = v.eos - 2;                                  // <|endoftext|>
  v.pad = v.bos;
  for (int64_t k = 0; static_cast<int64_t>(v.tokens.size()) < n_vocab; ++k) {
    v.tokens.push_back(fmt::format("<|unused_{}|>", k));
    v.types.push_back(5);
  }
  v.chat_template =
      "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] "
      "+ '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' "
      "}}{% endif %}";
  return v;
}

namespace {

// Ids of an embedded vocabulary: the GGUF writer stores one entry per id up to the
// largest, so a hostile id would be an unbounded loop (same bound as the tokenizer
// loaders, src/tokenizer/limits.h).
constexpr int64_t kMaxTokenId = int64_t{1} << 24;

int64_t checked_id(const nlohmann::json& id, const std::string& path, const std::string& what) {
  MOE_CHECK(id.is_number_integer(), "{}: {}: token id must be an integer, found {}", path, what,
            id.type_name());
  const int64_t v = id.get<int64_t>();
  MOE_CHECK(v >= 0 && v < kMaxTokenId, "{}: {}: token id {} is out of range [0, {})", path, what, v,
            kMaxTokenId);
  return v;
}

SynthVocab vocab_from_tokenizer_json_unchecked(const std::string& path, const std::string& pre);

}  // namespace

// nlohmann's own errors (a missing key read with at(), a wrong type) become one
// line naming the file instead of an internal error.
SynthVocab vocab_from_tokenizer_json(const std::string& path, const std::string& pre) {
  try {
    return vocab_from_tokenizer_json_unchecked(path, pre);
  } catch (const nlohmann::json::exception& e) {
    throw_error("{}: {}", path, e.what());
  }
}

namespace {

SynthVocab vocab_from_tokenizer_json_unchecked(const std::string& path, const std::string& pre) {
  std::ifstream in(path);
  MOE_CHECK(in.good(), "{}: cannot open tokenizer.json", path);
  nlohmann::json j;
  try {
    in >> j;
  } catch (const std::exception& e) {
    throw_error("{}: invalid JSON: {}", path, e.what());
  }
  const auto& model = j.at("model");
  MOE_CHECK(model.value("type", "") == "BPE", "{}: model.type is '{}', only BPE can be embedded",
            path, model.value("type", ""));
  MOE_CHECK(!model.value("byte_fallback", false),
            "{}: SentencePiece-style (byte_fallback) tokenizers cannot be embedded yet", path);
  SynthVocab v;
  v.pre = pre;
  std::map<int64_t, std::pair<std::string, int32_t>> by_id;
  for (const auto& [tok, id] : model.at("vocab").items())
    by_id[checked_id(id, path, "model.vocab")] = {tok, 1};
  if (j.contains("added_tokens"))
    for (const auto& t : j.at("added_tokens"))
      by_id[checked_id(t.at("id"), path, "added_tokens")] = {t.at("content").get<std::string>(),
                                                             t.value("special", false) ? 3 : 4};
  const int64_t n = by_id.empty() ? 0 : by_id.rbegin()->first + 1;
  MOE_CHECK(n <= static_cast<int64_t>(by_id.size()) + (int64_t{1} << 16),
            "{}: ids reach {} but only {} tokens are defined (too many unused ids)", path, n - 1,
            by_id.size());
  for (int64_t id = 0; id < n; ++id) {
    auto it = by_id.find(id);
    v.tokens.push_back(it == by_id.end() ? fmt::format("[PAD{}]", id) : it->second.first);
    v.types.push_back(it == by_id.end() ? 5 : it->second.second);
  }
  for (const auto& mg : model.at("merges")) {
    if (mg.is_string()) {
      v.merges.push_back(mg.get<std::string>());
    } else {
      v.merges.push_back(mg.at(0).get<std::string>() + " " + mg.at(1).get<std::string>());
    }
  }
  // tokenizer_config.json beside it: bos/eos/chat template.
  std::string cfg_path = path.substr(0, path.find_last_of('/') + 1) + "tokenizer_config.json";
  std::ifstream cin(cfg_path);
  if (cin.good()) {
    nlohmann::json cfg;
    try {
      cin >> cfg;
    } catch (const std::exception& e) {
      throw_error("{}: invalid JSON: {}", cfg_path, e.what());
    }
    MOE_CHECK(cfg.is_object(), "{}: expected a JSON object", cfg_path);
    auto token_id = [&](const char* key) -> int32_t {
      if (!cfg.contains(key) || cfg.at(key).is_null()) return -1;
      const auto& t = cfg.at(key);
      MOE_CHECK(t.is_string() || t.is_object(), "{}: {}: expected a string or an object", cfg_path, key);
      std::string s = t.is_string() ? t.get<std::string>() : t.value("content", std::string());
      for (size_t id = 0; id < v.tokens.size(); ++id)
        if (v.tokens[id] == s) return static_cast<int32_t>(id);
      return -1;
    };
    v.bos = token_id("bos_token");
    v.eos = token_id("eos_token");
    v.pad = token_id("pad_token");
    v.add_bos = cfg.value("add_bos_token", false);
    if (cfg.contains("chat_template")) {
      const auto& ct = cfg.at("chat_template");
      if (ct.is_string()) {
        v.chat_template = ct.get<std::string>();
      } else if (ct.is_array()) {
        for (const auto& t : ct)
          if (t.is_object() && t.value("name", "") == "default") v.chat_template = t.value("template", "");
      }
    }
  }
  return v;
}

}  // namespace

}  // namespace moe
