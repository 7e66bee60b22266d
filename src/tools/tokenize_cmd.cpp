// `moe tokenize` and `moe detokenize`: text -> token ids and back, with the
// tokenizer of a GGUF model (its metadata) or of a Hugging Face tokenizer.json.
// tokenize prints ids space-separated on one line (one line per input line
// with --jsonl); no BOS/EOS unless --add-special. Errors throw moe::Error.
#include <CLI/CLI.hpp>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "base/error.h"
#include "tokenizer/tokenizer.h"

namespace {

struct TokenizeOpts {
  std::string model, text, file, jsonl;
  bool add_special = false, parse_special = false;
};
struct DetokenizeOpts {
  std::string model, ids;
  bool skip_special = false;
};

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) moe::throw_error("{}: cannot open file", path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void print_ids(const std::vector<int32_t>& ids) {
  std::string line;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) line += ' ';
    line += std::to_string(ids[i]);
  }
  line += '\n';
  std::cout << line;
}

void run_tokenize(const TokenizeOpts& o) {
  int sources = !o.text.empty() + !o.file.empty() + !o.jsonl.empty();
  if (sources > 1) moe::throw_error("tokenize: give only one of --text, --file, --jsonl");
  auto tok = moe::Tokenizer::from_path(o.model);
  if (!o.jsonl.empty()) {
    std::ifstream f(o.jsonl, std::ios::binary);
    if (!f) moe::throw_error("{}: cannot open file", o.jsonl);
    std::string line;
    size_t lineno = 0;
    while (std::getline(f, line)) {
      ++lineno;
      if (line.empty()) continue;
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(line);
      } catch (const nlohmann::json::exception& e) {
        moe::throw_error("{}:{}: invalid JSON: {}", o.jsonl, lineno, e.what());
      }
      if (!j.is_string()) moe::throw_error("{}:{}: expected a JSON string, found {}", o.jsonl, lineno, j.type_name());
      print_ids(tok->encode(j.get<std::string>(), o.add_special, o.parse_special));
    }
    return;
  }
  std::string text;
  if (!o.file.empty()) text = read_file(o.file);
  else if (!o.text.empty()) text = o.text;
  else {
    std::stringstream ss;
    ss << std::cin.rdbuf();
    text = ss.str();
  }
  print_ids(tok->encode(text, o.add_special, o.parse_special));
}

void run_detokenize(const DetokenizeOpts& o) {
  auto tok = moe::Tokenizer::from_path(o.model);
  std::string src = o.ids;
  if (src.empty()) {
    std::stringstream ss;
    ss << std::cin.rdbuf();
    src = ss.str();
  }
  for (char& c : src)
    if (c == ',' || c == '[' || c == ']') c = ' ';
  std::vector<int32_t> ids;
  std::istringstream in(src);
  std::string w;
  while (in >> w) {
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(w, &used);
    } catch (...) {
      used = 0;
    }
    if (used != w.size()) moe::throw_error("detokenize: '{}' is not a token id", w);
    if (v < 0 || v >= tok->n_vocab()) moe::throw_error("detokenize: token id {} out of range [0, {})", v, tok->n_vocab());
    ids.push_back(static_cast<int32_t>(v));
  }
  std::cout << tok->decode(ids, o.skip_special);
  std::cout.flush();
}

}  // namespace

void register_tokenize_commands(CLI::App& app) {
  auto t = std::make_shared<TokenizeOpts>();
  auto* tc = app.add_subcommand("tokenize", "Print the token ids of a text");
  tc->add_option("-m,--model", t->model, "GGUF model or tokenizer.json")->required();
  tc->add_option("--text", t->text, "Text to tokenize (default: stdin)");
  tc->add_option("--file", t->file, "File whose whole content is tokenized");
  tc->add_option("--jsonl", t->jsonl, "File with one JSON string per line; prints one line of ids per string");
  tc->add_flag("--add-special", t->add_special, "Add BOS/EOS as the model's config asks");
  tc->add_flag("--parse-special", t->parse_special, "Text spelling a special token becomes that token");
  tc->callback([t] { run_tokenize(*t); });

  auto d = std::make_shared<DetokenizeOpts>();
  auto* dc = app.add_subcommand("detokenize", "Print the text of token ids");
  dc->add_option("-m,--model", d->model, "GGUF model or tokenizer.json")->required();
  dc->add_option("--ids", d->ids, "Token ids separated by spaces or commas (default: stdin)");
  dc->add_flag("--skip-special", d->skip_special, "Leave out special tokens");
  dc->callback([d] { run_detokenize(*d); });
}
