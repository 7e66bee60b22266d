// UTF-8 sanitizing (maximal-subpart replacement, identical for a stream of pieces
// and for the whole) and stop-string matching with hold-back.
#include "server/text.h"

#include <algorithm>
#include <utility>

namespace moe::server {
namespace {

constexpr const char* kReplacement = "\xEF\xBF\xBD";

// Length of the sequence starting at s[i]: > 0 valid length, or -k: invalid,
// replace and skip k bytes; 0: incomplete at the end of the input (valid prefix).
int scan(std::string_view s, size_t i) {
  const auto b = static_cast<unsigned char>(s[i]);
  if (b < 0x80) return 1;
  int len = 0;
  unsigned char lo = 0x80, hi = 0xBF;
  if (b >= 0xC2 && b <= 0xDF) {
    len = 2;
  } else if (b >= 0xE0 && b <= 0xEF) {
    len = 3;
    if (b == 0xE0) lo = 0xA0;
    if (b == 0xED) hi = 0x9F;
  } else if (b >= 0xF0 && b <= 0xF4) {
    len = 4;
    if (b == 0xF0) lo = 0x90;
    if (b == 0xF4) hi = 0x8F;
  } else {
    return -1;
  }
  for (int k = 1; k < len; ++k) {
    if (i + k >= s.size()) return 0;
    const auto c = static_cast<unsigned char>(s[i + k]);
    const unsigned char l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
    if (c < l || c > h) return -k;
  }
  return len;
}

// Sanitizes s; stops before a trailing incomplete sequence when `hold` and
// returns its start in *held_from.
std::string run(std::string_view s, bool hold, size_t* held_from) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const int r = scan(s, i);
    if (r > 0) {
      out.append(s.substr(i, r));
      i += r;
    } else if (r < 0) {
      out += kReplacement;
      i += -r;
    } else {
      if (hold) break;
      out += kReplacement;
      i = s.size();
    }
  }
  if (held_from) *held_from = i;
  return out;
}

}  // namespace

std::string sanitize_utf8(std::string_view s) { return run(s, false, nullptr); }

std::string Utf8Stream::push(std::string_view bytes) {
  pending_.append(bytes);
  size_t from = 0;
  std::string out = run(pending_, true, &from);
  pending_.erase(0, from);
  return out;
}

std::string Utf8Stream::flush() {
  std::string out = run(pending_, false, nullptr);
  pending_.clear();
  return out;
}

std::string StopMatcher::push(std::string_view text) {
  if (stopped_) return {};
  held_.append(text);
  if (stops_.empty()) return std::exchange(held_, {});
  size_t first = std::string::npos;
  for (const auto& s : stops_) {
    if (s.empty()) continue;
    first = std::min(first, held_.find(s));
  }
  if (first != std::string::npos) {
    stopped_ = true;
    std::string out = held_.substr(0, first);
    held_.clear();
    return out;
  }
  // Hold the longest suffix that is a proper prefix of a stop string.
  size_t keep = 0;
  for (const auto& s : stops_) {
    for (size_t n = std::min(s.size() - (s.empty() ? 0 : 1), held_.size()); n > keep; --n) {
      if (held_.compare(held_.size() - n, n, s, 0, n) == 0) {
        keep = n;
        break;
      }
    }
  }
  std::string out = held_.substr(0, held_.size() - keep);
  held_.erase(0, held_.size() - keep);
  return out;
}

std::string StopMatcher::flush() { return stopped_ ? std::string() : std::exchange(held_, {}); }

}  // namespace moe::server
