// Normalizer and pre-tokenizer steps. Semantics follow Hugging Face tokenizers
// as exported in tokenizer.json: Split/Isolated keeps matches and the text
// between them as separate pieces, Split/Removed drops the matches; ByteLevel
// with use_regex splits with the GPT-2 pattern; Metaspace replaces ' ' by '▁'.
#include "tokenizer/pipeline.h"

#include <utf8proc.h>

#include "tokenizer/utf8.h"

namespace moe::tok {

static void replace_all(std::string& s, std::string_view from, std::string_view to) {
  if (from.empty()) return;
  std::string out;
  size_t pos = 0;
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, pos)) {
    out.append(s, pos, at - pos);
    out.append(to);
    pos = at + from.size();
  }
  if (pos == 0) return;
  out.append(s, pos, std::string::npos);
  s.swap(out);
}

std::string normalize(const std::vector<NormStep>& steps, std::string_view text) {
  std::string s(text);
  for (const auto& st : steps) {
    switch (st.kind) {
      case NormStep::Nfc: s = nfc(s); break;
      case NormStep::Prepend: s = st.a + s; break;
      case NormStep::Replace: replace_all(s, st.a, st.b); break;
      case NormStep::Lowercase: {
        std::string out;
        for (size_t i = 0; i < s.size();) {
          size_t len;
          uint32_t cp = utf8_decode(s, i, &len);
          if (utf8_valid_len(s, i) == 0) out += s[i];
          else utf8_append(out, static_cast<uint32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(cp))));
          i += len;
        }
        s.swap(out);
        break;
      }
    }
  }
  return s;
}

static void split_regex(const PreStep& st, Pieces& p) {
  std::vector<std::pair<size_t, size_t>> next, matches;
  next.reserve(p.ranges.size() * 2);
  for (auto [b, e] : p.ranges) {
    matches.clear();
    st.re->find_all(std::string_view(p.buf).substr(b, e - b), matches);
    size_t prev = 0, len = e - b;
    for (auto [mb, me] : matches) {
      if (!st.invert && mb > prev) next.emplace_back(b + prev, b + mb);
      if (!st.removed || st.invert) next.emplace_back(b + mb, b + me);
      prev = me;
    }
    if (!st.invert && prev < len) next.emplace_back(b + prev, b + len);
  }
  p.ranges.swap(next);
}

// Rebuilds the buffer with each piece transformed by f(piece) -> string.
template <typename F>
static void rewrite(Pieces& p, F f) {
  std::string nb;
  std::vector<std::pair<size_t, size_t>> nr;
  for (size_t i = 0; i < p.ranges.size(); ++i) {
    size_t b = nb.size();
    nb += f(p.piece(i), i);
    nr.emplace_back(b, nb.size());
  }
  p.buf.swap(nb);
  p.ranges.swap(nr);
}

static void split_digits(const PreStep& st, Pieces& p) {
  std::vector<std::pair<size_t, size_t>> next;
  for (auto [b, e] : p.ranges) {
    size_t start = b;
    for (size_t i = b; i < e;) {
      size_t len;
      uint32_t cp = utf8_decode(p.buf, i, &len);
      bool digit = utf8proc_category(static_cast<utf8proc_int32_t>(cp)) == UTF8PROC_CATEGORY_ND;
      if (digit) {
        size_t j = i + len;
        if (!st.individual_digits) {
          while (j < e) {
            size_t l2;
            uint32_t c2 = utf8_decode(p.buf, j, &l2);
            if (utf8proc_category(static_cast<utf8proc_int32_t>(c2)) != UTF8PROC_CATEGORY_ND) break;
            j += l2;
          }
        }
        if (i > start) next.emplace_back(start, i);
        next.emplace_back(i, j);
        start = i = j;
      } else {
        i += len;
      }
    }
    if (start < e) next.emplace_back(start, e);
  }
  p.ranges.swap(next);
}

void pretokenize(const std::vector<PreStep>& steps, std::string text, Pieces& p) {
  p.ranges.clear();
  p.buf = std::move(text);
  if (!p.buf.empty()) p.ranges.emplace_back(0, p.buf.size());
  for (const auto& st : steps) {
    switch (st.kind) {
      case PreStep::Split: split_regex(st, p); break;
      case PreStep::ByteLevel:
        if (st.add_prefix_space)
          rewrite(p, [](std::string_view s, size_t) {
            std::string r;
            if (s.empty() || s[0] != ' ') r += ' ';
            r.append(s);
            return r;
          });
        if (st.re) split_regex(st, p);
        break;
      case PreStep::Digits: split_digits(st, p); break;
      case PreStep::Metaspace:
        rewrite(p, [&](std::string_view s, size_t i) {
          std::string out(s);
          replace_all(out, " ", st.replacement);
          bool prepend = st.add_prefix_space && !st.prepend_never && (!st.prepend_first_only || i == 0);
          if (prepend && out.compare(0, st.replacement.size(), st.replacement) != 0) out = st.replacement + out;
          return out;
        });
        break;
      case PreStep::Whitespace: {
        PreStep split;
        static const auto ws = std::make_shared<Regex>(R"(\w+|[^\w\s]+)");
        split.re = ws;
        split.invert = true;
        split_regex(split, p);
        break;
      }
    }
  }
}

}  // namespace moe::tok
