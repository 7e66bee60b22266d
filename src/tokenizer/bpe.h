// Merge loops: rank-ordered BPE (Hugging Face / GPT-2 merges) and score-ordered
// SentencePiece BPE (GGUF `llama` vocabularies). Both run over a doubly linked
// list of symbols with a binary heap of candidate pairs: O(n log n) per word.
#pragma once
#include <cstdint>
#include <string_view>
#include <vector>

#include "tokenizer/vocab.h"

namespace moe::tok {

// piece: raw bytes (byte_level: one initial symbol per byte) or UTF-8 text
// (one initial symbol per character). Appends ids; unknown symbols become
// byte-fallback tokens or the unknown token.
void bpe_encode(const VocabData& d, std::string_view piece, bool byte_level, std::vector<int32_t>& out);
void spm_encode(const VocabData& d, std::string_view piece, std::vector<int32_t>& out);

}  // namespace moe::tok
