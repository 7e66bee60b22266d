// Jinja lexer. Preprocessing matches transformers' environment (trim_blocks,
// lstrip_blocks, one trailing newline dropped); `{%-`/`-%}` (and the {{ }} and
// {# #} forms) strip whitespace before/after the tag; comments are dropped.
// Inside tags: names, numbers, quoted strings with escapes, operators.
#include <cctype>

#include "base/error.h"
#include "tokenizer/jinja.h"

namespace moe::jinja {

std::string where(const std::string& src, size_t pos) {
  size_t line = 1, col = 1;
  for (size_t k = 0; k < pos && k < src.size(); ++k) {
    if (src[k] == '\n') { ++line; col = 1; } else { ++col; }
  }
  return fmt::format("line {}, column {}", line, col);
}

static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

static std::string preprocess(const std::string& in) {
  std::string s = in;
  if (!s.empty() && s.back() == '\n') s.pop_back();
  // lstrip_blocks: spaces/tabs from the start of a line up to "{%" or "{#".
  std::string a;
  a.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    if (i == 0 || s[i - 1] == '\n') {
      size_t j = i;
      while (j < s.size() && (s[j] == ' ' || s[j] == '\t')) ++j;
      if (j + 1 < s.size() && s[j] == '{' && (s[j + 1] == '%' || s[j + 1] == '#' || s[j + 1] == '-')) {
        i = j;
      }
    }
    a += s[i++];
  }
  // trim_blocks: the first newline after "%}" or "#}".
  std::string b;
  b.reserve(a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    b += a[i];
    if (a[i] == '}' && i > 0 && (a[i - 1] == '%' || a[i - 1] == '#' || a[i - 1] == '-') && i + 1 < a.size() &&
        a[i + 1] == '\n')
      ++i;
  }
  return b;
}

std::vector<Token> lex(const std::string& src_in, std::string& src) {
  src = preprocess(src_in);
  std::vector<Token> toks;
  size_t i = 0, n = src.size();
  auto err = [&](const std::string& what, size_t at) -> void {
    throw_error("chat template: {} at {}", what, where(src, at));
  };
  auto strip_prev_text = [&]() {
    if (!toks.empty() && toks.back().type == Tok::Text) {
      auto& t = toks.back().text;
      while (!t.empty() && is_ws(t.back())) t.pop_back();
      if (t.empty()) toks.pop_back();
    }
  };
  bool skip_ws = false;
  while (i < n) {
    // Text up to the next tag.
    size_t start = i;
    while (i < n && !(src[i] == '{' && i + 1 < n && (src[i + 1] == '{' || src[i + 1] == '%' || src[i + 1] == '#'))) ++i;
    if (i > start) {
      size_t b = start;
      if (skip_ws)
        while (b < i && is_ws(src[b])) ++b;
      if (i > b) toks.push_back({Tok::Text, src.substr(b, i - b), b});
    }
    skip_ws = false;
    if (i >= n) break;
    char kind = src[i + 1];
    size_t tag_pos = i;
    i += 2;
    if (i < n && src[i] == '-') { strip_prev_text(); ++i; }
    else if (i < n && src[i] == '+') ++i;
    if (kind == '#') {
      size_t end = src.find("#}", i);
      if (end == std::string::npos) err("unterminated comment", tag_pos);
      if (end > i && src[end - 1] == '-') skip_ws = true;
      i = end + 2;
      continue;
    }
    toks.push_back({kind == '{' ? Tok::OpenExpr : Tok::OpenStmt, "", tag_pos});
    const char close = kind == '{' ? '}' : '%';
    for (;;) {
      while (i < n && is_ws(src[i])) ++i;
      if (i >= n) err(kind == '{' ? "unterminated '{{'" : "unterminated '{%'", tag_pos);
      char c = src[i];
      // Closing tag, with optional '-'.
      if ((c == '-' || c == '+') && i + 2 < n + 1 && i + 1 < n && src[i + 1] == close && i + 2 < n && src[i + 2] == '}') {
        if (c == '-') skip_ws = true;
        i += 3;
        toks.push_back({kind == '{' ? Tok::CloseExpr : Tok::CloseStmt, "", i});
        break;
      }
      if (c == close && i + 1 < n && src[i + 1] == '}') {
        i += 2;
        toks.push_back({kind == '{' ? Tok::CloseExpr : Tok::CloseStmt, "", i});
        break;
      }
      size_t p = i;
      if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
        while (i < n && (std::isalnum(static_cast<unsigned char>(src[i])) || src[i] == '_')) ++i;
        toks.push_back({Tok::Name, src.substr(p, i - p), p});
      } else if (std::isdigit(static_cast<unsigned char>(c))) {
        while (i < n && (std::isdigit(static_cast<unsigned char>(src[i])) || src[i] == '_')) ++i;
        bool is_float = false;
        if (i + 1 < n && src[i] == '.' && std::isdigit(static_cast<unsigned char>(src[i + 1]))) {
          is_float = true;
          ++i;
          while (i < n && std::isdigit(static_cast<unsigned char>(src[i]))) ++i;
        }
        toks.push_back({is_float ? Tok::Float : Tok::Int, src.substr(p, i - p), p});
      } else if (c == '\'' || c == '"') {
        std::string v;
        ++i;
        while (i < n && src[i] != c) {
          if (src[i] == '\\' && i + 1 < n) {
            char e = src[i + 1];
            i += 2;
            switch (e) {
              case 'n': v += '\n'; break;
              case 't': v += '\t'; break;
              case 'r': v += '\r'; break;
              case 'b': v += '\b'; break;
              case 'f': v += '\f'; break;
              case 'v': v += '\v'; break;
              case '\\': v += '\\'; break;
              case '\'': v += '\''; break;
              case '"': v += '"'; break;
              default: err(fmt::format("unsupported escape '\\{}' in string", e), i - 2);
            }
          } else {
            v += src[i++];
          }
        }
        if (i >= n) err("unterminated string literal", p);
        ++i;
        toks.push_back({Tok::String, v, p});
      } else {
        static const char* ops[] = {"==", "!=", "<=", ">=", "//", "**", "+", "-", "*", "/", "%", "~", "<", ">",
                                    "(", ")", "[", "]", "{", "}", ",", ".", ":", "|", "="};
        bool found = false;
        for (const char* op : ops) {
          size_t len = std::char_traits<char>::length(op);
          if (src.compare(i, len, op) == 0) {
            toks.push_back({Tok::Op, op, p});
            i += len;
            found = true;
            break;
          }
        }
        if (!found) err(fmt::format("unexpected character '{}'", c), p);
      }
    }
  }
  toks.push_back({Tok::End, "", n});
  return toks;
}

}  // namespace moe::jinja
