// UTF-8 helpers shared by the tokenizer: code point decoding that tolerates
// invalid bytes, the GPT-2 byte <-> unicode alphabet used by byte-level BPE,
// and NFC normalisation through utf8proc (invalid byte runs pass unchanged).
// Everything here is stateless and thread-safe.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace moe::tok {

// Length of the UTF-8 sequence starting at s[i] if it is a complete, valid
// sequence; 0 if the byte at i does not start a valid sequence.
size_t utf8_valid_len(std::string_view s, size_t i);
// Decodes the code point at s[i]; invalid bytes decode as 0xFFFD with length 1.
uint32_t utf8_decode(std::string_view s, size_t i, size_t* len);
void utf8_append(std::string& out, uint32_t cp);
bool utf8_is_valid(std::string_view s);
// Number of bytes at the end of s that form an incomplete (but so far valid)
// UTF-8 sequence, which a streaming decoder should hold back.
size_t utf8_incomplete_tail(std::string_view s);

// GPT-2 byte-level alphabet: every byte maps to one printable code point.
const std::array<uint32_t, 256>& byte_to_unicode();
// Inverse; returns -1 for a code point outside the alphabet.
int unicode_to_byte(uint32_t cp);
// "Ġhello" -> " hello". Returns false (and leaves out undefined) if some code
// point is not in the alphabet.
bool byte_level_decode(std::string_view mapped, std::string& out);
std::string byte_level_encode(std::string_view raw);

// NFC over valid runs; invalid bytes are copied through.
std::string nfc(std::string_view s);

// Printable, escaped form of untrusted text for error messages: control and
// invalid bytes as \xNN, cut after about max_len bytes with "...".
std::string quote(std::string_view s, size_t max_len = 60);

}  // namespace moe::tok
