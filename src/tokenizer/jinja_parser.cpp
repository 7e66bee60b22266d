// Recursive-descent parser for the Jinja subset. Precedence, lowest first:
// ternary (a if c else b), or, and, not, comparisons (== != < > <= >= in,
// not in), ~, + -, * / // %, **, unary -, then postfix . [] () |filter `is test`.
// Statements: if/elif/else, for (with tuple targets, `if` filter, else), set
// (incl. ns.attr and block set), macro, break, continue, generation (ignored).
// Bounded: parser recursion (Nest) and the height of every subtree (add) stay
// within kMaxParseDepth, so neither parsing, evaluating nor freeing the tree
// can exhaust the stack however the template nests or chains.
#include <charconv>
#include <cstdlib>

#include "base/error.h"
#include "tokenizer/jinja.h"

namespace moe::jinja {
namespace {

class Parser {
 public:
  Parser(std::vector<Token> toks, const std::string& src) : t_(std::move(toks)), src_(src) {}

  NodePtr program() {
    auto root = node(Node::Block, 0);
    std::string end;
    set_body(*root, body({}, end));
    return root;
  }

 private:
  std::vector<Token> t_;
  const std::string& src_;
  size_t p_ = 0;
  int nest_ = 0;

  // One level of parser recursion, for as long as it lives.
  class Nest {
   public:
    Nest(Parser& p, size_t pos) : p_(p) {
      if (++p_.nest_ > kMaxParseDepth) p_.fail(fmt::format("nesting deeper than {} levels", kMaxParseDepth), pos);
    }
    ~Nest() { --p_.nest_; }
    Nest(const Nest&) = delete;
    Nest& operator=(const Nest&) = delete;

   private:
    Parser& p_;
  };

  // Attaches a finished child (or nullptr) to `slot` of `parent`, keeping parent.depth
  // the height of its subtree.
  void add(Node& parent, std::vector<NodePtr>& slot, NodePtr child) {
    if (child && child->depth + 1 > parent.depth) {
      parent.depth = child->depth + 1;
      if (parent.depth > kMaxParseDepth)
        fail(fmt::format("expression or block nesting deeper than {} levels", kMaxParseDepth), child->pos);
    }
    slot.push_back(std::move(child));
  }
  void set_body(Node& block, std::vector<NodePtr> stmts) {
    for (auto& s : stmts) add(block, block.c, std::move(s));
  }

  [[noreturn]] void fail(const std::string& what, size_t pos) {
    throw_error("chat template: {} at {}", what, where(src_, pos));
  }
  const Token& peek(size_t k = 0) const { return t_[std::min(p_ + k, t_.size() - 1)]; }
  bool is_op(const char* op, size_t k = 0) const { return peek(k).type == Tok::Op && peek(k).text == op; }
  bool is_name(const char* nm, size_t k = 0) const { return peek(k).type == Tok::Name && peek(k).text == nm; }
  void expect_op(const char* op) {
    if (!is_op(op)) fail(fmt::format("expected '{}' but found '{}'", op, peek().text), peek().pos);
    ++p_;
  }
  void expect_name(const char* nm) {
    if (!is_name(nm)) fail(fmt::format("expected '{}' but found '{}'", nm, peek().text), peek().pos);
    ++p_;
  }
  std::string name() {
    if (peek().type != Tok::Name) fail(fmt::format("expected a name but found '{}'", peek().text), peek().pos);
    return t_[p_++].text;
  }
  void close_stmt() {
    if (peek().type != Tok::CloseStmt) fail(fmt::format("expected '%}}' but found '{}'", peek().text), peek().pos);
    ++p_;
  }
  static NodePtr node(Node::Kind k, size_t pos) {
    auto n = std::make_shared<Node>();
    n->kind = k;
    n->pos = pos;
    return n;
  }

  // Statements until one of `ends` opens a {% %} tag; `end` receives it.
  std::vector<NodePtr> body(const std::vector<std::string>& ends, std::string& end) {
    std::vector<NodePtr> out;
    for (;;) {
      const Token& tk = peek();
      if (tk.type == Tok::End) {
        if (!ends.empty()) fail(fmt::format("missing '{{% {} %}}'", ends.back()), tk.pos);
        return out;
      }
      if (tk.type == Tok::Text) {
        auto n = node(Node::Text, tk.pos);
        n->s = tk.text;
        out.push_back(n);
        ++p_;
      } else if (tk.type == Tok::OpenExpr) {
        ++p_;
        auto n = node(Node::Output, tk.pos);
        add(*n, n->c, expr());
        if (peek().type != Tok::CloseExpr) fail(fmt::format("expected '}}}}' but found '{}'", peek().text), peek().pos);
        ++p_;
        out.push_back(n);
      } else if (tk.type == Tok::OpenStmt) {
        const Token& kw = peek(1);
        for (const auto& e : ends)
          if (kw.type == Tok::Name && kw.text == e) {
            p_ += 2;
            end = e;
            return out;
          }
        ++p_;
        if (auto s = statement()) out.push_back(s);
      } else {
        fail(fmt::format("unexpected '{}'", tk.text), tk.pos);
      }
    }
  }

  NodePtr statement() {
    size_t pos = peek().pos;
    Nest nest(*this, pos);
    std::string kw = name();
    if (kw == "if") return if_stmt(pos);
    if (kw == "for") {
      auto n = node(Node::For, pos);
      n->names.push_back(name());
      while (is_op(",")) { ++p_; n->names.push_back(name()); }
      expect_name("in");
      add(*n, n->c, ternary(/*allow_if=*/false));
      add(*n, n->c, is_name("if") ? (++p_, or_expr()) : nullptr);
      close_stmt();
      std::string end;
      auto b = node(Node::Block, pos);
      set_body(*b, body({"else", "endfor"}, end));
      add(*n, n->c, b);
      if (end == "else") {
        close_stmt();
        auto e = node(Node::Block, pos);
        set_body(*e, body({"endfor"}, end));
        add(*n, n->extra, e);
      }
      close_stmt();
      return n;
    }
    if (kw == "set") {
      auto n = node(Node::Set, pos);
      auto target = node(Node::Name, peek().pos);
      target->s = name();
      while (is_op(",")) { ++p_; n->names.push_back(name()); }
      if (is_op(".")) {
        ++p_;
        auto a = node(Node::Attr, target->pos);
        add(*a, a->c, target);
        a->s = name();
        target = a;
      }
      add(*n, n->c, target);
      if (!n->names.empty()) n->names.insert(n->names.begin(), target->s);
      if (peek().type == Tok::CloseStmt) {  // block set
        if (target->kind != Node::Name) fail("block set needs a plain name", pos);
        close_stmt();
        n->kind = Node::SetBlock;
        std::string end;
        auto b = node(Node::Block, pos);
        set_body(*b, body({"endset"}, end));
        add(*n, n->c, b);
        close_stmt();
        return n;
      }
      expect_op("=");
      add(*n, n->c, tuple_or_expr());
      close_stmt();
      return n;
    }
    if (kw == "macro") {
      auto n = node(Node::Macro, pos);
      n->s = name();
      expect_op("(");
      while (!is_op(")")) {
        n->names.push_back(name());
        add(*n, n->extra, is_op("=") ? (++p_, expr()) : nullptr);
        if (is_op(",")) ++p_;
        else if (!is_op(")")) fail("expected ',' or ')' in macro parameters", peek().pos);
      }
      ++p_;
      close_stmt();
      std::string end;
      auto b = node(Node::Block, pos);
      set_body(*b, body({"endmacro"}, end));
      add(*n, n->c, b);
      close_stmt();
      return n;
    }
    if (kw == "break" || kw == "continue") {
      close_stmt();
      return node(kw == "break" ? Node::Break : Node::Continue, pos);
    }
    if (kw == "generation" || kw == "endgeneration") {
      close_stmt();
      return nullptr;
    }
    fail(fmt::format("unsupported statement '{{% {} %}}'", kw), pos);
  }

  NodePtr if_stmt(size_t pos) {
    Nest nest(*this, pos);
    auto n = node(Node::If, pos);
    add(*n, n->c, expr());
    close_stmt();
    std::string end;
    auto b = node(Node::Block, pos);
    set_body(*b, body({"elif", "else", "endif"}, end));
    add(*n, n->c, b);
    if (end == "elif") {
      add(*n, n->extra, if_stmt(peek().pos));  // consumes through endif
      return n;
    }
    if (end == "else") {
      close_stmt();
      auto e = node(Node::Block, pos);
      set_body(*e, body({"endif"}, end));
      add(*n, n->extra, e);
    }
    close_stmt();
    return n;
  }

  NodePtr tuple_or_expr() {
    auto first = expr();
    if (!is_op(",")) return first;
    auto n = node(Node::ListLit, first->pos);
    add(*n, n->c, first);
    while (is_op(",")) {
      ++p_;
      if (peek().type == Tok::CloseStmt || is_op(")")) break;
      add(*n, n->c, expr());
    }
    return n;
  }

 public:
  NodePtr expr() { return ternary(true); }

 private:
  NodePtr ternary(bool allow_if) {
    Nest nest(*this, peek().pos);
    auto a = or_expr();
    if (!allow_if || !is_name("if")) return a;
    size_t pos = peek().pos;
    ++p_;
    auto n = node(Node::Ternary, pos);
    add(*n, n->c, or_expr());
    add(*n, n->c, a);
    if (is_name("else")) {
      ++p_;
      add(*n, n->c, ternary(true));
    } else {
      auto u = node(Node::Literal, pos);
      add(*n, n->c, u);  // Undefined
    }
    return n;
  }
  NodePtr binary(const std::string& op, NodePtr a, NodePtr b, size_t pos) {
    auto n = node(Node::Binary, pos);
    n->s = op;
    add(*n, n->c, std::move(a));
    add(*n, n->c, std::move(b));
    return n;
  }
  NodePtr or_expr() {
    auto a = and_expr();
    while (is_name("or")) { size_t pos = peek().pos; ++p_; a = binary("or", a, and_expr(), pos); }
    return a;
  }
  NodePtr and_expr() {
    auto a = not_expr();
    while (is_name("and")) { size_t pos = peek().pos; ++p_; a = binary("and", a, not_expr(), pos); }
    return a;
  }
  NodePtr not_expr() {
    if (is_name("not")) {
      Nest nest(*this, peek().pos);
      auto n = node(Node::Unary, peek().pos);
      ++p_;
      n->s = "not";
      add(*n, n->c, not_expr());
      return n;
    }
    return compare();
  }
  NodePtr compare() {
    auto a = concat();
    for (;;) {
      size_t pos = peek().pos;
      if (peek().type == Tok::Op && (peek().text == "==" || peek().text == "!=" || peek().text == "<" ||
                                     peek().text == ">" || peek().text == "<=" || peek().text == ">=")) {
        std::string op = t_[p_++].text;
        a = binary(op, a, concat(), pos);
      } else if (is_name("in")) {
        ++p_;
        a = binary("in", a, concat(), pos);
      } else if (is_name("not") && is_name("in", 1)) {
        p_ += 2;
        a = binary("not in", a, concat(), pos);
      } else {
        return a;
      }
    }
  }
  NodePtr concat() {
    auto a = math1();
    while (is_op("~")) { size_t pos = peek().pos; ++p_; a = binary("~", a, math1(), pos); }
    return a;
  }
  NodePtr math1() {
    auto a = math2();
    while (is_op("+") || is_op("-")) { size_t pos = peek().pos; std::string op = t_[p_++].text; a = binary(op, a, math2(), pos); }
    return a;
  }
  NodePtr math2() {
    auto a = power();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      size_t pos = peek().pos;
      std::string op = t_[p_++].text;
      a = binary(op, a, power(), pos);
    }
    return a;
  }
  NodePtr power() {
    auto a = unary();
    while (is_op("**")) { size_t pos = peek().pos; ++p_; a = binary("**", a, unary(), pos); }
    return a;
  }
  NodePtr unary() {
    Nest nest(*this, peek().pos);
    if (is_op("-") || is_op("+")) {
      auto n = node(Node::Unary, peek().pos);
      n->s = t_[p_++].text;
      add(*n, n->c, unary());
      return n;
    }
    return postfix(primary());
  }

  void call_args(Node& n) {
    expect_op("(");
    while (!is_op(")")) {
      if (peek().type == Tok::Name && is_op("=", 1)) {
        n.names.push_back(t_[p_].text);
        p_ += 2;
        add(n, n.extra, expr());
      } else {
        if (!n.names.empty()) fail("positional argument after keyword argument", peek().pos);
        add(n, n.c, expr());
      }
      if (is_op(",")) ++p_;
      else if (!is_op(")")) fail(fmt::format("expected ',' or ')' but found '{}'", peek().text), peek().pos);
    }
    ++p_;
  }

  NodePtr postfix(NodePtr a) {
    for (;;) {
      size_t pos = peek().pos;
      if (is_op(".")) {
        ++p_;
        auto n = node(Node::Attr, pos);
        add(*n, n->c, a);
        if (peek().type == Tok::Int) n->s = t_[p_++].text;
        else n->s = name();
        a = n;
      } else if (is_op("[")) {
        ++p_;
        NodePtr parts[3];
        int colons = 0;
        while (!is_op("]")) {
          if (is_op(":")) { ++p_; if (++colons > 2) fail("too many ':' in slice", pos); continue; }
          if (parts[colons]) fail("expected ':' or ']' in subscript", peek().pos);
          parts[colons] = expr();
        }
        ++p_;
        if (colons == 0) {
          if (!parts[0]) fail("empty subscript", pos);
          auto n = node(Node::Index, pos);
          add(*n, n->c, a);
          add(*n, n->c, parts[0]);
          a = n;
        } else {
          auto n = node(Node::Slice, pos);
          for (auto* x : {&a, &parts[0], &parts[1], &parts[2]}) add(*n, n->c, *x);
          a = n;
        }
      } else if (is_op("(")) {
        auto n = node(Node::Call, pos);
        add(*n, n->c, a);
        call_args(*n);
        a = n;
      } else if (is_op("|")) {
        ++p_;
        auto n = node(Node::Filter, pos);
        n->s = name();
        add(*n, n->c, a);
        if (is_op("(")) call_args(*n);
        a = n;
      } else if (is_name("is")) {
        ++p_;
        auto n = node(Node::Test, pos);
        if (is_name("not")) { ++p_; n->negate = true; }
        n->s = name();
        add(*n, n->c, a);
        if (is_op("(")) call_args(*n);
        else if (peek().type == Tok::String || peek().type == Tok::Int || peek().type == Tok::Float ||
                 (peek().type == Tok::Name && !is_name("and") && !is_name("or") && !is_name("else") &&
                  !is_name("if") && !is_name("in") && !is_name("not") && !is_name("is")))
          add(*n, n->c, primary());
        a = n;
      } else {
        return a;
      }
    }
  }

  NodePtr primary() {
    const Token& tk = peek();
    size_t pos = tk.pos;
    switch (tk.type) {
      case Tok::String: {
        auto n = node(Node::Literal, pos);
        std::string s;
        while (peek().type == Tok::String) s += t_[p_++].text;  // adjacent literals concatenate
        n->lit = Value::str(s);
        return n;
      }
      case Tok::Int: {
        auto n = node(Node::Literal, pos);
        std::string digits;
        for (char ch : tk.text) if (ch != '_') digits += ch;
        int64_t v = 0;
        auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
        if (ec != std::errc() || end != digits.data() + digits.size())
          fail(fmt::format("integer literal {} is out of range", tk.text.substr(0, 40)), pos);
        n->lit = Value::integer(v);
        ++p_;
        return n;
      }
      case Tok::Float: {
        auto n = node(Node::Literal, pos);
        n->lit = Value::number(std::strtod(tk.text.c_str(), nullptr));  // overflow gives inf
        ++p_;
        return n;
      }
      case Tok::Name: {
        ++p_;
        auto n = node(Node::Literal, pos);
        if (tk.text == "true" || tk.text == "True") { n->lit = Value::boolean(true); return n; }
        if (tk.text == "false" || tk.text == "False") { n->lit = Value::boolean(false); return n; }
        if (tk.text == "none" || tk.text == "None") { n->lit = Value::none(); return n; }
        n->kind = Node::Name;
        n->s = tk.text;
        return n;
      }
      case Tok::Op:
        if (tk.text == "(") {
          ++p_;
          auto e = tuple_or_expr();
          expect_op(")");
          return e;
        }
        if (tk.text == "[") {
          ++p_;
          auto n = node(Node::ListLit, pos);
          while (!is_op("]")) {
            add(*n, n->c, expr());
            if (is_op(",")) ++p_;
            else if (!is_op("]")) fail("expected ',' or ']' in list", peek().pos);
          }
          ++p_;
          return n;
        }
        if (tk.text == "{") {
          ++p_;
          auto n = node(Node::DictLit, pos);
          while (!is_op("}")) {
            add(*n, n->c, expr());
            expect_op(":");
            add(*n, n->c, expr());
            if (is_op(",")) ++p_;
            else if (!is_op("}")) fail("expected ',' or '}' in dict", peek().pos);
          }
          ++p_;
          return n;
        }
        break;
      default: break;
    }
    fail(fmt::format("unexpected '{}' in expression", tk.text.empty() ? "end of tag" : tk.text), pos);
  }
};

}  // namespace

NodePtr parse(const std::string& src, std::string& preprocessed) {
  auto toks = lex(src, preprocessed);
  Parser p(std::move(toks), preprocessed);
  return p.program();
}

}  // namespace moe::jinja
