// `moe tokenizer-train`: a small byte-level BPE trainer. Text is split with the
// GPT-2 pre-tokenizer regex, words are counted, and the most frequent adjacent
// pair is merged until the vocabulary is full (ties: the smaller id pair). Pair
// counts are updated incrementally for the words a merge touches.
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unordered_map>

#include "base/error.h"
#include "model/synth_vocab.h"
#include "tokenizer/regex.h"
#include "train/data.h"

namespace moe::train {

BpeStats train_bpe(const std::vector<std::string>& paths, int64_t n_vocab, const std::string& out_json) {
  MOE_CHECK(n_vocab >= 258, "tokenizer-train: vocabulary size {} must be at least 258", n_vocab);
  tok::Regex re(tok::regex_compat(tok::gpt2_pattern()));
  std::unordered_map<std::string, int64_t> counts;
  std::vector<std::pair<size_t, size_t>> spans;
  for_each_text_piece(paths, "tokenizer-train", [&](std::string_view part) {
    spans.clear();
    re.find_all(part, spans);
    for (auto [a, b] : spans) counts[std::string(part.substr(a, b - a))]++;
  });
  // words as symbol ids (bytes first)
  std::vector<std::vector<int32_t>> words;
  std::vector<int64_t> freq;
  for (const auto& [w, c] : counts) {
    std::vector<int32_t> s;
    for (unsigned char ch : w) s.push_back(ch);
    words.push_back(std::move(s));
    freq.push_back(c);
  }
  // deterministic word order
  std::vector<size_t> order(words.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return words[a] < words[b]; });
  {
    std::vector<std::vector<int32_t>> w2;
    std::vector<int64_t> f2;
    for (size_t i : order) w2.push_back(std::move(words[i])), f2.push_back(freq[i]);
    words.swap(w2);
    freq.swap(f2);
  }
  std::vector<std::string> sym;  // symbol id -> bytes
  for (int i = 0; i < 256; ++i) sym.push_back(std::string(1, static_cast<char>(i)));
  auto key = [](int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); };
  std::unordered_map<uint64_t, int64_t> pairs;
  for (size_t wi = 0; wi < words.size(); ++wi)
    for (size_t i = 0; i + 1 < words[wi].size(); ++i) pairs[key(words[wi][i], words[wi][i + 1])] += freq[wi];
  std::vector<std::pair<int32_t, int32_t>> merges;
  std::unordered_map<std::string, int32_t> sym_id;
  for (int i = 0; i < 256; ++i) sym_id[sym[i]] = i;
  while (static_cast<int64_t>(sym.size()) < n_vocab - 1) {
    uint64_t best = 0;
    int64_t bc = 0;
    for (const auto& [k, c] : pairs)
      if (c > bc || (c == bc && c > 0 && k < best)) best = k, bc = c;
    if (bc < 2) break;
    const int32_t a = static_cast<int32_t>(best >> 32), b = static_cast<int32_t>(best & 0xffffffffu);
    // two merge paths can spell the same bytes: they share one token
    const std::string merged = sym[a] + sym[b];
    auto [it_id, fresh] = sym_id.try_emplace(merged, static_cast<int32_t>(sym.size()));
    const int32_t nid = it_id->second;
    if (fresh) sym.push_back(merged);
    merges.push_back({a, b});
    for (size_t wi = 0; wi < words.size(); ++wi) {
      auto& w = words[wi];
      bool has = false;
      for (size_t i = 0; i + 1 < w.size() && !has; ++i) has = w[i] == a && w[i + 1] == b;
      if (!has) continue;
      for (size_t i = 0; i + 1 < w.size(); ++i) {
        auto it = pairs.find(key(w[i], w[i + 1]));
        if ((it->second -= freq[wi]) == 0) pairs.erase(it);
      }
      std::vector<int32_t> nw;
      for (size_t i = 0; i < w.size(); ++i) {
        if (i + 1 < w.size() && w[i] == a && w[i + 1] == b) {
          nw.push_back(nid);
          ++i;
        } else {
          nw.push_back(w[i]);
        }
      }
      w.swap(nw);
      for (size_t i = 0; i + 1 < w.size(); ++i) pairs[key(w[i], w[i + 1])] += freq[wi];
    }
  }
  auto enc = [](const std::string& bytes) {
    std::string s;
    for (unsigned char c : bytes) s += byte_to_unicode(c);
    return s;
  };
  nlohmann::ordered_json vocab = nlohmann::ordered_json::object();
  for (size_t i = 0; i < sym.size(); ++i) vocab[enc(sym[i])] = i;
  nlohmann::ordered_json jm = nlohmann::ordered_json::array();
  for (auto [a, b] : merges) jm.push_back(enc(sym[a]) + " " + enc(sym[b]));
  const int64_t eot = static_cast<int64_t>(sym.size());
  nlohmann::ordered_json j;
  j["version"] = "1.0";
  j["truncation"] = nullptr;
  j["padding"] = nullptr;
  j["added_tokens"] = {{{"id", eot}, {"content", "<|endoftext|>"}, {"single_word", false},
                        {"lstrip", false}, {"rstrip", false}, {"normalized", false}, {"special", true}}};
  j["normalizer"] = nullptr;
  j["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true},
                        {"use_regex", true}};
  j["post_processor"] = nullptr;
  j["decoder"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true},
                  {"use_regex", true}};
  j["model"] = {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr},
                {"continuing_subword_prefix", nullptr}, {"end_of_word_suffix", nullptr},
                {"fuse_unk", false}, {"byte_fallback", false}, {"ignore_merges", false},
                {"vocab", vocab}, {"merges", jm}};
  const auto parent = std::filesystem::path(out_json).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent);
  std::ofstream out(out_json);
  MOE_CHECK(out.good(), "tokenizer-train: cannot write '{}'", out_json);
  out << j.dump(1) << "\n";
  // tokenizer_config.json beside it: eos (and bos) token for GGUF export
  const std::string dir = out_json.substr(0, out_json.find_last_of('/') + 1);
  nlohmann::ordered_json cfg = {{"bos_token", nullptr}, {"eos_token", "<|endoftext|>"},
                                {"add_bos_token", false}};
  std::ofstream cout_(dir + "tokenizer_config.json");
  cout_ << cfg.dump(1) << "\n";
  return {static_cast<int64_t>(words.size()), static_cast<int64_t>(merges.size())};
}

}  // namespace moe::train
