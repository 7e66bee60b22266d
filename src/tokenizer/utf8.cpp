// UTF-8 decoding, the GPT-2 byte alphabet and NFC (utf8proc) for the tokenizer.
// The byte alphabet is the one from GPT-2's encoder: printable Latin-1 bytes map
// to themselves, the other 68 bytes map to U+0100.. in byte order.
#include "tokenizer/utf8.h"

#include <utf8proc.h>

#include <cstdlib>

#include <fmt/format.h>

namespace moe::tok {

size_t utf8_valid_len(std::string_view s, size_t i) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size();
  unsigned char c = p[i];
  if (c < 0x80) return 1;
  size_t len;
  uint32_t cp;
  if ((c & 0xE0) == 0xC0) { len = 2; cp = c & 0x1F; }
  else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0F; }
  else if ((c & 0xF8) == 0xF0) { len = 4; cp = c & 0x07; }
  else return 0;
  if (i + len > n) return 0;
  for (size_t k = 1; k < len; ++k) {
    if ((p[i + k] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (p[i + k] & 0x3F);
  }
  if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000)) return 0;
  if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

uint32_t utf8_decode(std::string_view s, size_t i, size_t* len) {
  size_t l = utf8_valid_len(s, i);
  if (l == 0) { *len = 1; return 0xFFFD; }
  *len = l;
  const auto* p = reinterpret_cast<const unsigned char*>(s.data()) + i;
  switch (l) {
    case 1: return p[0];
    case 2: return ((p[0] & 0x1Fu) << 6) | (p[1] & 0x3Fu);
    case 3: return ((p[0] & 0x0Fu) << 12) | ((p[1] & 0x3Fu) << 6) | (p[2] & 0x3Fu);
    default:
      return ((p[0] & 0x07u) << 18) | ((p[1] & 0x3Fu) << 12) | ((p[2] & 0x3Fu) << 6) | (p[3] & 0x3Fu);
  }
}

void utf8_append(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

bool utf8_is_valid(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    size_t l = utf8_valid_len(s, i);
    if (l == 0) return false;
    i += l;
  }
  return true;
}

size_t utf8_incomplete_tail(std::string_view s) {
  // Look back at most 3 bytes for a lead byte whose sequence runs past the end.
  size_t n = s.size();
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    auto c = static_cast<unsigned char>(s[n - back]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte, keep looking
    size_t need = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
    return need > back ? back : 0;
  }
  return 0;
}

const std::array<uint32_t, 256>& byte_to_unicode() {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    uint32_t extra = 256;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      t[b] = printable ? static_cast<uint32_t>(b) : extra++;
    }
    return t;
  }();
  return table;
}

int unicode_to_byte(uint32_t cp) {
  static const std::array<int16_t, 324> inv = [] {
    std::array<int16_t, 324> t{};
    t.fill(-1);
    const auto& f = byte_to_unicode();
    for (int b = 0; b < 256; ++b) t[f[b]] = static_cast<int16_t>(b);
    return t;
  }();
  return cp < inv.size() ? inv[cp] : -1;
}

bool byte_level_decode(std::string_view mapped, std::string& out) {
  out.clear();
  for (size_t i = 0; i < mapped.size();) {
    size_t len;
    uint32_t cp = utf8_decode(mapped, i, &len);
    int b = unicode_to_byte(cp);
    if (b < 0) return false;
    out += static_cast<char>(b);
    i += len;
  }
  return true;
}

std::string byte_level_encode(std::string_view raw) {
  std::string out;
  const auto& f = byte_to_unicode();
  for (unsigned char c : raw) utf8_append(out, f[c]);
  return out;
}

static void nfc_valid_run(std::string_view run, std::string& out) {
  bool ascii = true;
  for (unsigned char c : run) ascii &= c < 0x80;
  if (ascii) { out.append(run); return; }
  utf8proc_uint8_t* dst = nullptr;
  utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(run.data()),
                                    static_cast<utf8proc_ssize_t>(run.size()), &dst,
                                    static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  if (n < 0) { out.append(run); return; }
  out.append(reinterpret_cast<const char*>(dst), static_cast<size_t>(n));
  std::free(dst);
}

std::string nfc(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t run = 0, i = 0;
  while (i < s.size()) {
    size_t l = utf8_valid_len(s, i);
    if (l == 0) {
      nfc_valid_run(s.substr(run, i - run), out);
      out += s[i];
      run = ++i;
    } else {
      i += l;
    }
  }
  nfc_valid_run(s.substr(run), out);
  return out;
}

std::string quote(std::string_view s, size_t max_len) {
  std::string out;
  for (size_t i = 0; i < s.size();) {
    if (out.size() >= max_len) {
      out += "...";
      break;
    }
    const auto c = static_cast<unsigned char>(s[i]);
    const size_t len = utf8_valid_len(s, i);
    if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c == '\r') out += "\\r";
    else if (c == '\\') out += "\\\\";
    else if (len == 0 || c < 0x20 || c == 0x7f) out += fmt::format("\\x{:02X}", c);
    else out.append(s.substr(i, len));
    i += len == 0 ? 1 : len;
  }
  return out;
}

}  // namespace moe::tok
