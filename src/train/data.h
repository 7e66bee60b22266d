// Training data: text files tokenized once, split into a training part and a
// held-out validation tail, and random windows drawn from the training part with
// a seeded generator (its state is saved in checkpoints).
#pragma once
#include <cstdint>
#include <random>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace moe {
class Tokenizer;
}

namespace moe::train {

// Reads and tokenizes the files (in order, joined by the tokenizer's EOS when it has one).
std::vector<int32_t> tokenize_files(const Tokenizer& tok, const std::vector<std::string>& paths);

// Reads each file and calls piece(text) on ~64 KiB pieces cut after a line end
// (pre-tokenizers never join across "\n" + letter), then file_done() after each file.
// Errors name the file.
void for_each_text_piece(const std::vector<std::string>& paths, const char* what,
                         const std::function<void(std::string_view)>& piece,
                         const std::function<void()>& file_done = {});

struct Dataset {
  std::vector<int32_t> train, val;
};
// The last val_frac of the tokens is the validation split.
Dataset split_dataset(const std::vector<int32_t>& tokens, double val_frac, int64_t min_len);

// B windows of S+1 tokens at random offsets: tokens[b*S + i], targets = the next token.
void sample_batch(const std::vector<int32_t>& data, int64_t B, int64_t S, std::mt19937_64& rng,
                  std::vector<int32_t>& tokens, std::vector<int32_t>& targets);
// The k-th of the consecutive validation windows (wraps around).
void val_batch(const std::vector<int32_t>& data, int64_t B, int64_t S, int64_t k,
               std::vector<int32_t>& tokens, std::vector<int32_t>& targets);

// Byte-level BPE training (GPT-2 pre-tokenizer regex, ByteLevel alphabet): learns
// merges until the vocabulary (256 bytes + merges + <|endoftext|>) has n_vocab
// tokens, and writes a Hugging Face tokenizer.json that Tokenizer::from_json loads.
struct BpeStats {
  int64_t n_words = 0, n_merges = 0;
};
BpeStats train_bpe(const std::vector<std::string>& paths, int64_t n_vocab, const std::string& out_json);

}  // namespace moe::train
