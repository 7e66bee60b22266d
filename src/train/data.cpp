// Tokenized text files, the train/validation split and batch sampling.
#include "train/data.h"

#include <fstream>
#include <sstream>

#include "base/error.h"
#include "tokenizer/tokenizer.h"

namespace moe::train {

void for_each_text_piece(const std::vector<std::string>& paths, const char* what,
                         const std::function<void(std::string_view)>& piece,
                         const std::function<void()>& file_done) {
  for (const std::string& p : paths) {
    std::ifstream in(p, std::ios::binary);
    MOE_CHECK(in.good(), "{}: cannot open data file '{}'", what, p);
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string text = ss.str();
    size_t pos = 0;
    while (pos < text.size()) {
      size_t end = std::min(text.size(), pos + (1 << 16));
      if (end < text.size()) {
        const size_t nl = text.find('\n', end);
        end = nl == std::string::npos ? text.size() : nl + 1;
      }
      piece(std::string_view(text).substr(pos, end - pos));
      pos = end;
    }
    if (file_done) file_done();
  }
}

std::vector<int32_t> tokenize_files(const Tokenizer& tok, const std::vector<std::string>& paths) {
  std::vector<int32_t> out;
  for_each_text_piece(
      paths, "train",
      [&](std::string_view part) {
        auto ids = tok.encode(part);
        out.insert(out.end(), ids.begin(), ids.end());
      },
      [&] {
        if (tok.eos_id() >= 0) out.push_back(tok.eos_id());
      });
  return out;
}

Dataset split_dataset(const std::vector<int32_t>& tokens, double val_frac, int64_t min_len) {
  const int64_t n = static_cast<int64_t>(tokens.size());
  int64_t n_val = static_cast<int64_t>(double(n) * val_frac);
  if (val_frac > 0) n_val = std::max(n_val, min_len);
  MOE_CHECK(n - n_val >= min_len,
            "train: {} tokens are too few for a {} validation split and windows of {} tokens", n,
            val_frac, min_len);
  Dataset d;
  d.train.assign(tokens.begin(), tokens.end() - n_val);
  d.val.assign(tokens.end() - n_val, tokens.end());
  return d;
}

void sample_batch(const std::vector<int32_t>& data, int64_t B, int64_t S, std::mt19937_64& rng,
                  std::vector<int32_t>& tokens, std::vector<int32_t>& targets) {
  const int64_t span = static_cast<int64_t>(data.size()) - S - 1;
  MOE_CHECK(span >= 0, "train: data has {} tokens, fewer than a window of {}", data.size(), S + 1);
  tokens.resize(B * S);
  targets.resize(B * S);
  for (int64_t b = 0; b < B; ++b) {
    const int64_t o = static_cast<int64_t>(rng() % static_cast<uint64_t>(span + 1));
    for (int64_t i = 0; i < S; ++i) {
      tokens[b * S + i] = data[o + i];
      targets[b * S + i] = data[o + i + 1];
    }
  }
}

void val_batch(const std::vector<int32_t>& data, int64_t B, int64_t S, int64_t k,
               std::vector<int32_t>& tokens, std::vector<int32_t>& targets) {
  const int64_t n_win = std::max<int64_t>(1, (static_cast<int64_t>(data.size()) - 1) / S);
  tokens.resize(B * S);
  targets.resize(B * S);
  for (int64_t b = 0; b < B; ++b) {
    const int64_t o = ((k * B + b) % n_win) * S;
    for (int64_t i = 0; i < S; ++i) {
      const bool ok = o + i + 1 < static_cast<int64_t>(data.size());
      tokens[b * S + i] = ok ? data[o + i] : data[0];
      targets[b * S + i] = ok ? data[o + i + 1] : -1;
    }
  }
}

}  // namespace moe::train
