// Normalizers and pre-tokenizers (the steps of a Hugging Face tokenizer.json
// before the model): NFC / Prepend / Replace / Lowercase, then Split (regex),
// ByteLevel, Digits, Metaspace, Whitespace. Pieces are byte ranges into one
// buffer so that splitting allocates nothing per piece.
#pragma once
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tokenizer/vocab.h"

namespace moe::tok {

struct Pieces {
  std::string buf;
  std::vector<std::pair<size_t, size_t>> ranges;  // [begin, end) into buf
  std::string_view piece(size_t i) const {
    return std::string_view(buf).substr(ranges[i].first, ranges[i].second - ranges[i].first);
  }
};

std::string normalize(const std::vector<NormStep>& steps, std::string_view text);
// Splits `text` (already normalized) into pre-tokens.
void pretokenize(const std::vector<PreStep>& steps, std::string text, Pieces& out);

}  // namespace moe::tok
