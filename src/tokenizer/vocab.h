// Internal tokenizer state shared by the loaders (load_json.cpp, load_gguf.cpp),
// the pipeline (pipeline.cpp), the merge loops (bpe.cpp) and tokenizer.cpp.
// Invariants: for byte-level tokenizers every normal token's text is stored as
// raw bytes (the GPT-2 alphabet is undone at load), so encode works on bytes and
// decode is concatenation; added tokens are always stored as their raw content.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "tokenizer/regex.h"

namespace moe::tok {

enum class TokenType : uint8_t { Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 };

struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool special = false;  // matched only with parse_special; skipped by decode(skip_special)
  bool lstrip = false, rstrip = false;
};

struct NormStep {
  enum Kind { Nfc, Prepend, Replace, Lowercase } kind = Nfc;
  std::string a, b;  // Prepend: a; Replace: a -> b
};

struct PreStep {
  enum Kind { Split, ByteLevel, Digits, Metaspace, Whitespace } kind = Split;
  std::shared_ptr<Regex> re;       // Split; ByteLevel with use_regex (GPT-2 pattern)
  bool removed = false;            // Split behaviour Removed (else Isolated)
  bool invert = false;             // Split: keep only the matches
  bool add_prefix_space = false;   // ByteLevel / Metaspace
  bool individual_digits = false;  // Digits
  std::string replacement = "\xE2\x96\x81";  // Metaspace
  bool prepend_first_only = false;  // Metaspace prepend_scheme "first"
  bool prepend_never = false;       // Metaspace prepend_scheme "never"
};

struct DecodeStep {
  enum Kind { ByteLevel, Metaspace, ByteFallback, Fuse, Strip, Replace } kind = ByteLevel;
  std::string a, b;     // Replace a -> b; Strip content; Metaspace replacement
  int start = 0, stop = 0;  // Strip
  bool add_prefix_space = true;  // Metaspace: drop the leading space of the first token
};

enum class ModelKind { Bpe, Spm };

struct MergeResult {
  int32_t rank;
  int32_t id;
};

struct VocabData {
  ModelKind kind = ModelKind::Bpe;
  bool byte_level = false;     // tokens are raw bytes; pieces are byte strings
  bool byte_fallback = false;  // unknown characters become <0xNN> tokens
  bool ignore_merges = false;  // a pre-token found whole in the vocab is emitted as is
  bool spm_add_space_prefix = true;  // GGUF llama: leading "▁" before each text section

  std::vector<std::string> tokens;  // id -> text (raw bytes when byte_level)
  std::vector<TokenType> types;
  std::vector<float> scores;        // SPM
  std::unordered_map<std::string, int32_t> token_to_id;
  std::unordered_map<uint64_t, MergeResult> merges;  // (left << 32 | right) -> rank, merged id
  std::vector<int32_t> byte_tokens;  // byte -> id (byte-level single bytes or <0xNN>), -1 if none
  std::vector<AddedToken> added;
  std::vector<uint8_t> is_special;  // id -> 1 if skipped by decode(skip_special)

  std::vector<NormStep> normalizers;
  std::vector<PreStep> pretokenizers;
  std::vector<DecodeStep> decoders;

  int32_t bos = -1, eos = -1, pad = -1, unk = -1;
  bool add_bos = false, add_eos = false;
  std::vector<int32_t> eog;  // end-of-generation ids
  std::string chat_template;

  int32_t find(const std::string& s) const {
    auto it = token_to_id.find(s);
    return it == token_to_id.end() ? -1 : it->second;
  }
  static uint64_t pair_key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  // Fills byte_tokens, is_special, eog once tokens/added/types are known.
  void finalize();
};

}  // namespace moe::tok
