// Limits the tokenizer loaders enforce on untrusted input (tokenizer.json,
// tokenizer_config.json, GGUF tokenizer.ggml.* metadata) and on pre-tokenizer
// regexes. Each is far above what real vocabularies use (largest seen: 262k
// tokens, 500k merges, 35 MB tokenizer.json, depth 6, 300-byte regexes) and low
// enough that a hostile file cannot make us allocate gigabytes or run unbounded.
// Exceeding one is a moe::Error naming the file, the field and the limit.
#pragma once
#include <cstddef>
#include <cstdint>

namespace moe::tok {

inline constexpr size_t kMaxJsonFileBytes = size_t{128} << 20;  // tokenizer.json / tokenizer_config.json
inline constexpr int kMaxJsonDepth = 64;                        // nesting of arrays/objects
inline constexpr size_t kMaxJsonValues = size_t{1} << 23;       // values in one file (bounds the DOM)

inline constexpr int64_t kMaxVocab = int64_t{1} << 24;  // token ids are in [0, kMaxVocab)
// tokenizer.json: the highest id may leave at most this many unused ids (holes)
// beyond the number of entries (vocab + added tokens), so a tiny file cannot
// make us allocate a vocabulary of 2^24 slots.
inline constexpr int64_t kMaxIdHoles = int64_t{1} << 16;
inline constexpr size_t kMaxTokenBytes = size_t{64} << 10;   // text of one token
inline constexpr size_t kMaxAddedTokens = size_t{1} << 20;   // added / special tokens
inline constexpr size_t kMaxAddedBytes = size_t{16} << 20;   // their total text (the match trie)
inline constexpr size_t kMaxMerges = size_t{1} << 24;

inline constexpr size_t kMaxRegexBytes = size_t{16} << 10;   // one pre-tokenizer pattern
inline constexpr size_t kMaxStepStringBytes = 64;            // Prepend/Replace/Metaspace/Strip strings
inline constexpr int kMaxStripCount = 64;                    // Strip decoder start/stop
inline constexpr size_t kMaxPipelineSteps = 64;              // normalizers + pre-tokenizers + decoders

// PCRE2 match limits (see regex.cpp): a pattern that backtracks catastrophically
// fails the encode with an error instead of running for hours.
inline constexpr uint32_t kRegexMatchLimit = 10'000'000;  // pcre2_set_match_limit, per match call
inline constexpr uint32_t kRegexDepthLimit = 100'000;     // pcre2_set_depth_limit (interpreter)
inline constexpr uint32_t kRegexHeapLimitKiB = 64 << 10;  // pcre2_set_heap_limit: 64 MiB
inline constexpr size_t kRegexJitStackBytes = size_t{1} << 20;  // JIT stack per thread, at most

}  // namespace moe::tok
