// Public tokenizer API: byte-level BPE (GPT-2 style: Qwen, Llama-3, DeepSeek-V3,
// gpt-oss) and SentencePiece-style BPE with byte fallback (Llama-2, Mixtral),
// loaded from GGUF metadata or a Hugging Face tokenizer.json; a UTF-8-safe
// streaming decoder; and chat-template rendering (Jinja subset, jinja_*.cpp).
// A Tokenizer is immutable after loading; encode/decode are thread-safe.
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace moe {
namespace gguf {
class File;
}
namespace tok {
struct VocabData;
}

class Tokenizer {
 public:
  static std::unique_ptr<Tokenizer> from_gguf(const gguf::File& file);
  // tokenizer_config.json (bos/eos, add_bos_token, chat_template) is read from
  // the same folder when present.
  // Both files are untrusted: sizes, depth, ids, counts and regexes are bounded
  // (tokenizer/limits.h); a bad file is a moe::Error naming the file and field.
  static std::unique_ptr<Tokenizer> from_json(const std::string& tokenizer_json_path);
  // The same from the files' contents (fuzzers, tests); an empty config_json
  // means no tokenizer_config.json. The names are used in error messages.
  static std::unique_ptr<Tokenizer> from_json_text(std::string_view tokenizer_json, const std::string& name,
                                                   std::string_view config_json = {},
                                                   const std::string& config_name = "tokenizer_config.json");
  // Picks from_gguf for *.gguf, from_json otherwise (a folder means folder/tokenizer.json).
  static std::unique_ptr<Tokenizer> from_path(const std::string& path);
  ~Tokenizer();

  // add_special: BOS/EOS as the model's config asks. parse_special: text that
  // spells a special (control) token becomes that token; added tokens that are
  // not special are always matched, as in Hugging Face tokenizers.
  std::vector<int32_t> encode(std::string_view text, bool add_special = false,
                              bool parse_special = false) const;
  std::string decode(std::span<const int32_t> ids, bool skip_special = false) const;
  // The token's text as stored (raw bytes for byte-level vocabularies).
  std::string token_text(int32_t id) const;
  int32_t token_id(std::string_view text) const;  // -1 if absent
  int32_t n_vocab() const;
  int32_t bos_id() const;
  int32_t eos_id() const;
  bool add_bos() const;
  bool is_eog(int32_t id) const;  // eos, eot, <|im_end|>, <|return|>, ...
  bool is_special(int32_t id) const;
  const std::string& chat_template() const;

  // Internal: used by StreamDecoder and the loaders.
  explicit Tokenizer(std::unique_ptr<tok::VocabData> data);
  const tok::VocabData& data() const { return *d_; }
  // The bytes one token contributes before string-level decoder steps (strip).
  void append_piece(int32_t id, bool skip_special, std::string& out) const;
  size_t leading_strip() const;  // number of leading spaces decode() removes

 private:
  struct Trie;
  void encode_section(std::string_view text, std::vector<int32_t>& out) const;
  void encode_piece(std::string_view piece, bool byte_level, std::vector<int32_t>& out) const;

  std::unique_ptr<tok::VocabData> d_;
  std::unique_ptr<Trie> trie_;
  size_t strip_ = 0;
  // Cache of BPE results per pre-token (bounded; cleared when full).
  mutable std::mutex cache_mu_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

// Token-by-token decoding that never splits a UTF-8 sequence: bytes of an
// incomplete trailing sequence are held until a later token completes them.
// The concatenation of every push() and the final flush() equals decode(ids).
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tok, bool skip_special = false)
      : tok_(tok), skip_special_(skip_special), strip_left_(tok.leading_strip()) {}
  std::string push(int32_t id);
  std::string flush();

 private:
  const Tokenizer& tok_;
  bool skip_special_;
  size_t strip_left_;
  std::string pending_;
};

struct ChatMessage {
  std::string role, content;
  nlohmann::json extra = nlohmann::json::object();  // tool_calls, name, reasoning_content, ...
  nlohmann::json to_json() const;
};

// Renders a Hugging Face chat template. `messages` is an array of objects;
// `extra` adds variables (bos_token, eos_token, tools, enable_thinking, ...).
// Throws moe::Error for template errors, naming the construct and line:column.
// Prefer the ordered_json overload: `tojson` then keeps the caller's key order
// (Python dicts keep insertion order; nlohmann::json sorts keys).
std::string render_chat(const std::string& template_src, const nlohmann::json& messages,
                        bool add_generation_prompt, const nlohmann::json& extra = nlohmann::json::object());
std::string render_chat(const std::string& template_src, const nlohmann::ordered_json& messages,
                        bool add_generation_prompt,
                        const nlohmann::ordered_json& extra = nlohmann::ordered_json::object());

}  // namespace moe
