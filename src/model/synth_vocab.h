// Vocabularies for synthesized models: a byte-level BPE trained on a small
// built-in English text, or one imported from a Hugging Face tokenizer.json.
// Output is in the GGUF tokenizer.ggml.* form.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace moe {

struct SynthVocab {
  std::string model = "gpt2";  // tokenizer.ggml.model
  std::string pre = "qwen2";   // tokenizer.ggml.pre
  std::vector<std::string> tokens;
  std::vector<int32_t> types;  // 1 normal, 3 control, 4 user-defined, 5 unused
  std::vector<std::string> merges;
  int32_t bos = -1, eos = -1, pad = -1;
  bool add_bos = false;
  std::string chat_template;
};

// 256 byte tokens + merges learned from the built-in text + 3 control tokens,
// padded to n_vocab with <|unused_N|> tokens. n_vocab >= 260.
SynthVocab builtin_bpe_vocab(int64_t n_vocab);

// Imports tokens, merges and added tokens of a byte-level BPE tokenizer.json
// (and chat_template, bos/eos from the tokenizer_config.json beside it).
SynthVocab vocab_from_tokenizer_json(const std::string& path, const std::string& pre);

// The GPT-2 byte-to-unicode alphabet: printable bytes map to themselves, the rest to U+0100+.
std::string byte_to_unicode(uint8_t b);

}  // namespace moe
