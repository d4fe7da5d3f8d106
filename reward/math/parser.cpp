#include "reward/math/parser.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <initializer_list>

#include "reward/math/latex_lexer.h"
#include "reward/math/normalize.h"

namespace grpo::reward::math {
namespace {

bool one_of(std::string_view s, std::initializer_list<std::string_view> names) {
  return std::find(names.begin(), names.end(), s) != names.end();
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool is_greek(std::string_view n) {
  return one_of(n, {"alpha",    "beta",  "gamma",    "delta",  "epsilon", "varepsilon", "zeta",   "eta",     "theta",
                    "vartheta", "iota",  "kappa",    "lambda", "mu",      "nu",         "xi",     "omicron", "rho",
                    "varrho",   "sigma", "varsigma", "tau",    "upsilon", "phi",        "varphi", "chi",     "psi",
                    "omega",    "Gamma", "Delta",    "Theta",  "Lambda",  "Xi",         "Sigma",  "Upsilon", "Phi",
                    "Psi",      "Omega", "Pi",       "ell",    "hbar",    "nabla",      "partial"});
}

// Functions written as commands (\sin) or, in plain text, as words (sin).
bool is_function_name(std::string_view n) {
  return one_of(n, {"sin",    "cos",    "tan",  "cot",  "sec",  "csc",  "arcsin", "arccos", "arctan", "arccot",
                    "arcsec", "arccsc", "sinh", "cosh", "tanh", "coth", "log",    "ln",     "lg",     "exp",
                    "det",    "gcd",    "lcm",  "max",  "min",  "sqrt", "abs",    "floor",  "ceil"});
}

// Relation operators, as symbols or commands.
bool rel_op(const Token& t, RelOp* op) {
  RelOp r;
  if (t.type == TokenType::Symbol) {
    if (t.text == "=" || t.text == ":=")
      r = RelOp::Eq;
    else if (t.text == "<")
      r = RelOp::Lt;
    else if (t.text == ">")
      r = RelOp::Gt;
    else if (t.text == "<=")
      r = RelOp::Le;
    else if (t.text == ">=")
      r = RelOp::Ge;
    else if (t.text == "!=")
      r = RelOp::Ne;
    else
      return false;
  } else if (t.type == TokenType::Command) {
    const std::string& n = t.text;
    if (one_of(n, {"le", "leq", "leqslant", "leqq"}))
      r = RelOp::Le;
    else if (one_of(n, {"ge", "geq", "geqslant", "geqq"}))
      r = RelOp::Ge;
    else if (one_of(n, {"lt"}))
      r = RelOp::Lt;
    else if (one_of(n, {"gt"}))
      r = RelOp::Gt;
    else if (one_of(n, {"ne", "neq"}))
      r = RelOp::Ne;
    else if (one_of(n, {"approx", "simeq", "approxeq", "sim", "thickapprox"}))
      r = RelOp::Approx;
    else if (one_of(n, {"equiv", "coloneqq", "eqqcolon"}))
      r = RelOp::Eq;
    else if (one_of(n, {"in", "subseteq", "subset"}))
      r = RelOp::In;
    else
      return false;
  } else {
    return false;
  }
  if (op) *op = r;
  return true;
}

// Commands that cannot start an operand (operators, closers, relations).
bool is_operator_command(std::string_view n) {
  return one_of(n, {"cdot",     "times", "div",    "ast",        "pm",         "mp",      "cup",   "cap",
                    "setminus", "end",   "rfloor", "rceil",      "rangle",     "rvert",   "rVert", "right",
                    "mid",      "colon", "to",     "rightarrow", "Rightarrow", "implies", "iff",   "Leftrightarrow",
                    "land",     "lor",   "wedge",  "vee",        "not",        "pmod",    "bmod",  "mod",
                    "over"}) ||
         rel_op(Token{TokenType::Command, std::string(n), false}, nullptr);
}

bool is_separator_word(std::string_view w) { return w == "and" || w == "or"; }

bool is_percent_word(std::string_view w) {
  std::string l = lower(std::string(w));
  return l == "percent" || l == "percentage" || l == "pct";
}

bool contains_number(const Node& n) {
  if (n.kind == Kind::Number) return true;
  if (n.kind == Kind::Percent) return true;
  for (const auto& a : n.args)
    if (contains_number(*a)) return true;
  return false;
}

bool is_integer_literal(const Node& n) { return n.kind == Kind::Number && n.exact && !n.decimal && n.q.is_integer(); }

// a/b with integer literals 0 < a < b, as \frac{1}{2} parses: Mul(a, Pow(b, -1)).
bool is_proper_fraction(const Node& n) {
  if (n.kind != Kind::Mul || n.args.size() != 2) return false;
  const Node& a = *n.args[0];
  const Node& p = *n.args[1];
  if (!is_integer_literal(a) || p.kind != Kind::Pow || !is_integer_literal(*p.args[0])) return false;
  const Node& e = *p.args[1];
  if (!is_integer_literal(e) || e.q != Rational(-1)) return false;
  return a.q.sign() > 0 && compare(a.q, p.args[0]->q) < 0;
}

class Parser {
 public:
  Parser(std::vector<Token> tokens, const ParseOptions& options, WorkBudget& budget, int depth = 0)
      : toks_(std::move(tokens)), opts_(options), budget_(budget), depth_(depth) {}

  NodePtr parse_top() {
    std::vector<NodePtr> groups;
    while (true) {
      std::vector<NodePtr> items = parse_items({";"}, false);
      if (items.size() == 1)
        groups.push_back(items[0]);
      else if (items.size() > 1)
        groups.push_back(make_node(Kind::List, std::move(items)));
      if (sym(";")) {
        next();
        continue;
      }
      break;
    }
    if (peek().type != TokenType::End) throw ParseError("unexpected '" + peek().text + "'");
    if (groups.empty()) throw ParseError("empty answer");
    if (groups.size() == 1) return groups[0];
    return make_node(Kind::List, std::move(groups));
  }

 private:
  struct DepthGuard {
    explicit DepthGuard(Parser& p) : p_(p) {
      if (++p_.depth_ > p_.opts_.max_depth)
        throw ParseError("nesting deeper than " + std::to_string(p_.opts_.max_depth));
    }
    ~DepthGuard() { --p_.depth_; }
    Parser& p_;
  };

  const Token& peek(size_t k = 0) const { return toks_[std::min(pos_ + k, toks_.size() - 1)]; }
  Token next() {
    budget_.charge();
    Token t = toks_[pos_];
    if (pos_ + 1 < toks_.size()) ++pos_;
    return t;
  }
  bool sym(std::string_view s, size_t k = 0) const { return peek(k).type == TokenType::Symbol && peek(k).text == s; }
  bool cmd(std::string_view s) const { return peek().type == TokenType::Command && peek().text == s; }
  void expect(std::string_view s) {
    if (!sym(s)) throw ParseError("expected '" + std::string(s) + "' but found '" + peek().text + "'");
    next();
  }
  bool at_end() const { return peek().type == TokenType::End; }

  bool is_terminator(std::initializer_list<std::string_view> terms) const {
    if (at_end()) return true;
    if (peek().type == TokenType::Symbol)
      for (auto t : terms)
        if (peek().text == t) return true;
    if (peek().type == TokenType::Command)
      for (auto t : terms)
        if (t.size() > 1 && t[0] == '\\' && peek().text == t.substr(1)) return true;
    return false;
  }

  bool is_separator() const {
    const Token& t = peek();
    if (t.type == TokenType::Symbol) return t.text == "," || t.text == "\\\\" || t.text == "&";
    if (t.type == TokenType::Word) return is_separator_word(t.text);
    return false;
  }

  // Items separated by commas / and / or until one of `terms` (not consumed). Empty items are
  // skipped, so "1, and 2" is two items.
  std::vector<NodePtr> parse_items(std::initializer_list<std::string_view> terms, bool semicolons) {
    std::vector<NodePtr> items;
    while (!is_terminator(terms)) {
      if (is_separator() || (semicolons && sym(";"))) {
        next();
        continue;
      }
      size_t before = pos_;
      NodePtr item = parse_relation();
      if (item) items.push_back(std::move(item));
      if (is_terminator(terms)) break;
      if (is_separator() || (semicolons && sym(";"))) continue;
      if (pos_ == before) throw ParseError("unexpected '" + peek().text + "'");
      throw ParseError("unexpected '" + peek().text + "'");
    }
    return items;
  }

  NodePtr parse_relation() {
    NodePtr first = parse_union();
    std::vector<NodePtr> parts{first};
    std::vector<RelOp> ops;
    while (true) {
      RelOp op;
      if (cmd("not") && sym("=", 1)) {
        next();
        next();
        op = RelOp::Ne;
      } else if (rel_op(peek(), &op)) {
        next();
      } else {
        break;
      }
      ops.push_back(op);
      parts.push_back(parse_union());
    }
    if (ops.empty()) return first;
    for (const auto& p : parts)
      if (!p) throw ParseError("relation with an empty side");
    return make_relation(std::move(parts), std::move(ops));
  }

  NodePtr parse_union() {
    NodePtr left = parse_ratio();
    if (!(cmd("cup") || cmd("cap") || cmd("setminus"))) return left;
    std::vector<NodePtr> parts{left};
    while (cmd("cup") || cmd("cap") || cmd("setminus")) {
      std::string op = next().text;
      NodePtr right = parse_ratio();
      if (!right || !parts.back()) throw ParseError("set operation with an empty side");
      if (op == "cup") {
        parts.push_back(right);
      } else {
        NodePtr l = parts.size() == 1 ? parts[0] : make_node(Kind::Union, parts);
        parts = {make_func(op, {l, right}, true)};
      }
    }
    return parts.size() == 1 ? parts[0] : make_node(Kind::Union, std::move(parts));
  }

  NodePtr parse_ratio() {
    NodePtr left = parse_additive();
    if (sym(":") && left) {
      next();
      NodePtr right = parse_additive();
      if (!right) throw ParseError("ratio with an empty side");
      return make_node(Kind::Ratio, {left, right});
    }
    return left;
  }

  NodePtr parse_additive() {
    NodePtr acc = parse_term();
    std::vector<NodePtr> terms;
    if (acc) terms.push_back(acc);
    while (true) {
      if (sym("+") || sym("-")) {
        bool minus = next().text == "-";
        NodePtr t = parse_term();
        if (!t) throw ParseError("operator without operand");
        terms.push_back(minus ? make_neg(t) : t);
      } else if (cmd("pm") || cmd("mp")) {
        bool mp = next().text == "mp";
        NodePtr t = parse_term();
        if (!t) throw ParseError("\\pm without operand");
        NodePtr left = terms.empty() ? make_int(0) : (terms.size() == 1 ? terms[0] : make_node(Kind::Add, terms));
        terms = {make_node(Kind::PlusMinus, {left, mp ? make_neg(t) : t})};
      } else {
        break;
      }
    }
    if (terms.empty()) return nullptr;
    return terms.size() == 1 ? terms[0] : make_node(Kind::Add, std::move(terms));
  }

  bool starts_factor(const Token& t) const {
    switch (t.type) {
      case TokenType::Number: return true;
      case TokenType::Word: return !is_separator_word(t.text);
      case TokenType::Command: return !is_operator_command(t.text);
      case TokenType::Symbol:
        return t.text == "(" || t.text == "{" || t.text == "\\{" || (t.text == "|" && abs_depth_ == 0);
      case TokenType::End: return false;
    }
    return false;
  }

  // Skips a unit word (and its ^2) after a number: "35 cm", "5 m^2" (plain), "3 dollars".
  bool skip_unit(const std::vector<NodePtr>& factors) {
    const Token& t = peek();
    if (t.type != TokenType::Word || factors.empty()) return false;
    std::string w = lower(t.text);
    bool numeric = std::any_of(factors.begin(), factors.end(), [](const NodePtr& f) { return contains_number(*f); });
    if (!numeric || !is_unit_word(w, opts_.plain)) return false;
    // In LaTeX mode a one-letter word is a variable; multi-letter unit words are units.
    next();
    if (sym("^") && (peek(1).type == TokenType::Number)) {
      next();
      next();
    }
    return true;
  }

  NodePtr parse_term() {
    std::vector<NodePtr> factors;
    NodePtr first = parse_unary();
    if (first) factors.push_back(first);
    while (true) {
      if (sym("*") || cmd("cdot") || cmd("times") || cmd("ast")) {
        next();
        NodePtr f = parse_unary();
        if (!f) throw ParseError("'*' without operand");
        factors.push_back(f);
      } else if (sym("/") || cmd("div")) {
        next();
        NodePtr f = parse_unary();
        if (!f) throw ParseError("'/' without operand");
        factors.push_back(make_pow(f, make_int(-1)));
      } else if (peek().type == TokenType::Word && is_percent_word(peek().text) && !factors.empty()) {
        next();
        NodePtr whole = factors.size() == 1 ? factors[0] : make_node(Kind::Mul, factors);
        factors = {make_node(Kind::Percent, {whole})};
      } else if (skip_unit(factors)) {
        continue;
      } else if (starts_factor(peek())) {
        size_t before = pos_;
        bool mixed_candidate = factors.size() == 1 && is_integer_literal(*factors[0]) && cmd("frac");
        NodePtr f = parse_power();
        if (f && mixed_candidate && is_proper_fraction(*f)) {
          // 2\frac{1}{2} is the mixed number 2 + 1/2 (and -1\frac14 is -(1 + 1/4)).
          bool negative = factors[0]->q.sign() < 0;
          factors[0] = make_node(Kind::Add, {factors[0], negative ? make_neg(f) : f});
          f = nullptr;
        }
        if (f) factors.push_back(f);
        if (pos_ == before) throw ParseError("unexpected '" + peek().text + "'");
      } else {
        break;
      }
    }
    if (factors.empty()) return nullptr;
    // Words next to math are units or filler ("5 apples"); words alone stay text.
    bool all_text = std::all_of(factors.begin(), factors.end(), [](const NodePtr& f) { return f->kind == Kind::Text; });
    if (all_text && factors.size() > 1) {
      std::string words;
      for (const auto& f : factors) words += (words.empty() ? "" : " ") + f->name;
      return make_text(words);
    }
    if (!all_text)
      factors.erase(
          std::remove_if(factors.begin(), factors.end(), [](const NodePtr& f) { return f->kind == Kind::Text; }),
          factors.end());
    return factors.size() == 1 ? factors[0] : make_node(Kind::Mul, std::move(factors));
  }

  NodePtr parse_unary() {
    if (!(sym("-") || sym("+") || cmd("pm") || cmd("mp"))) return parse_power();
    DepthGuard g(*this);  // each sign of "- - - 1" is a level
    if (sym("-")) {
      next();
      NodePtr x = parse_unary();
      if (!x) throw ParseError("'-' without operand");
      return make_neg(x);
    }
    if (sym("+")) {
      next();
      return parse_unary();
    }
    if (cmd("pm") || cmd("mp")) {
      bool mp = next().text == "mp";
      NodePtr x = parse_unary();
      if (!x) throw ParseError("\\pm without operand");
      return make_node(Kind::PlusMinus, {make_int(0), mp ? make_neg(x) : x});
    }
    return parse_power();
  }

  NodePtr parse_power() {
    NodePtr base = parse_postfix(parse_primary());
    if (!base) return nullptr;
    if (sym("^")) {
      next();
      NodePtr e = parse_exponent();
      base = parse_postfix(make_pow(base, e));
    }
    return base;
  }

  NodePtr parse_exponent() {
    DepthGuard g(*this);
    NodePtr e;
    if (sym("{")) {
      e = parse_brace_group();
    } else if (sym("-") || sym("+")) {
      bool minus = next().text == "-";
      e = parse_exponent();
      if (minus) e = make_neg(e);
    } else if (sym("(") || peek().type == TokenType::Command) {
      e = parse_primary();
    } else if (peek().type == TokenType::Number) {
      e = number(next().text);  // 2^10 means 1024 in practice, not 2^1 * 0
    } else if (peek().type == TokenType::Word) {
      e = single_letter_arg();
    }
    if (!e) throw ParseError("exponent missing");
    if (sym("^")) {
      next();
      e = make_pow(e, parse_exponent());
    }
    return e;
  }

  NodePtr parse_postfix(NodePtr x) {
    if (!x) return x;
    while (true) {
      if (sym("!") && !sym("=", 1)) {
        next();
        x = make_func("factorial", {x});
      } else if (sym("%")) {
        next();
        x = make_node(Kind::Percent, {x});
      } else {
        return x;
      }
    }
  }

  NodePtr number(const std::string& text) {
    bool decimal = text.find_first_of(".eE") != std::string::npos;
    if (auto q = Rational::parse_decimal(text)) return make_number(*q, decimal);
    long double v = std::strtold(text.c_str(), nullptr);
    auto n = std::make_shared<Node>(*make_float(v, decimal));
    if (!decimal) n->name = text;  // a huge integer literal: keep its digits for exact comparison
    return n;
  }

  // First character of the next Number/Word token, splitting the token (\frac12, \sqrt3, x^ab).
  std::string take_char() {
    Token& t = toks_[pos_];
    if ((t.type != TokenType::Number && t.type != TokenType::Word) || t.text.empty())
      throw ParseError("argument missing");
    std::string c(1, t.text[0]);
    if (t.text.size() == 1) {
      next();
    } else {
      budget_.charge();
      t.text.erase(0, 1);
      t.space_before = false;
    }
    return c;
  }

  NodePtr single_letter_arg() { return letter(take_char()); }

  // A LaTeX macro argument: {group}, one digit / letter, or one command.
  NodePtr parse_arg() {
    if (sym("{")) {
      NodePtr x = parse_brace_group();
      if (!x) throw ParseError("empty argument");
      return x;
    }
    if (peek().type == TokenType::Number) return number(take_char());
    if (peek().type == TokenType::Word) return single_letter_arg();
    if (peek().type == TokenType::Command) {
      NodePtr x = parse_primary();
      if (!x) throw ParseError("argument missing after command");
      return x;
    }
    throw ParseError("argument missing after command");
  }

  // {...}: nullptr if empty, the item if one, a List if several.
  NodePtr parse_brace_group() {
    DepthGuard g(*this);
    expect("{");
    std::vector<NodePtr> items = parse_items({"}"}, true);
    expect("}");
    if (items.empty()) return nullptr;
    if (items.size() == 1) return items[0];
    return make_node(Kind::List, std::move(items));
  }

  // Raw text of a {...} group or a single token (subscripts, \text, environment names).
  std::string raw_arg(bool spaced) {
    if (!sym("{")) {
      if (peek().type == TokenType::Number || peek().type == TokenType::Word) return take_char();
      if (peek().type == TokenType::Command) return "\\" + next().text;
      if (peek().type == TokenType::Symbol && !at_end()) return next().text;
      throw ParseError("argument missing");
    }
    next();
    std::string out;
    int depth = 1;
    while (!at_end()) {
      const Token& t = peek();
      if (t.type == TokenType::Symbol && t.text == "{") ++depth;
      if (t.type == TokenType::Symbol && t.text == "}" && --depth == 0) break;
      if (spaced && t.space_before && !out.empty()) out += ' ';
      out += t.type == TokenType::Command ? "\\" + t.text : t.text;
      next();
    }
    expect("}");
    return out;
  }

  // Tokens of a {...} group, for re-parsing (\text{13}).
  std::vector<Token> group_tokens() {
    std::vector<Token> out;
    expect("{");
    int depth = 1;
    while (!at_end()) {
      const Token& t = peek();
      if (t.type == TokenType::Symbol && t.text == "{") ++depth;
      if (t.type == TokenType::Symbol && t.text == "}" && --depth == 0) break;
      out.push_back(next());
    }
    expect("}");
    out.push_back(Token{TokenType::End, "", false});
    return out;
  }

  std::string subscript_suffix() {
    if (!sym("_")) return "";
    next();
    std::string sub = raw_arg(false);
    return "_{" + sub + "}";
  }

  NodePtr letter(const std::string& l) {
    std::string name = l + subscript_suffix();
    while (sym("'")) {
      next();
      name += "'";
    }
    if (name == "e") return make_constant("e");
    if (name == "i") return make_constant("i");
    return make_symbol(name);
  }

  // f(x), g(x, y): undefined function application.
  NodePtr maybe_apply(NodePtr head) {
    if (head->kind != Kind::Symbol || !sym("(")) return head;
    std::string base = head->name.substr(0, 1);
    if (!one_of(base, {"f", "g", "h", "F", "G", "H"})) return head;
    DepthGuard g(*this);
    next();
    std::vector<NodePtr> args = parse_items({")"}, true);
    expect(")");
    return make_func(head->name, std::move(args), true);
  }

  NodePtr parse_word() {
    Token t = peek();
    std::string lw = lower(t.text);
    if (is_function_name(lw) && (t.text.size() > 1)) {
      next();
      return parse_function(lw);
    }
    if (lw == "pi") {
      next();
      return make_constant("pi");
    }
    if (lw == "inf" || lw == "infinity" || lw == "infty" || lw == "oo") {
      next();
      return make_constant("inf");
    }
    if (opts_.plain && t.text.size() > 1) {
      next();
      return make_text(lw);
    }
    // LaTeX letters: "xy" is x*y; subscripts and primes bind to the last letter.
    if (t.text.size() == 1) return maybe_apply(letter(take_char()));
    std::vector<NodePtr> factors;
    while (peek().type == TokenType::Word && toks_[pos_].text.size() > 1) {
      budget_.charge();
      factors.push_back(letter(take_char()));
    }
    factors.push_back(maybe_apply(letter(take_char())));
    return make_node(Kind::Mul, std::move(factors));
  }

  // sin x, \sin^2 x, \sin(x), \log_2 8, \sqrt[3]{x}, \max(a, b)
  NodePtr parse_function(const std::string& name) {
    DepthGuard g(*this);
    if (name == "sqrt") {
      NodePtr index;
      if (sym("[")) {
        next();
        std::vector<NodePtr> items = parse_items({"]"}, false);
        expect("]");
        if (items.size() != 1) throw ParseError("bad root index");
        index = items[0];
      }
      NodePtr x = sym("(") ? parse_primary() : parse_arg();
      if (!index) return make_pow(x, make_number(*Rational::make(1, 2)));
      return make_func("root", {x, index});
    }
    NodePtr power;
    if (sym("^")) {
      next();
      power = parse_exponent();
    }
    NodePtr base;
    if ((name == "log") && sym("_")) {
      next();
      if (sym("{"))
        base = parse_brace_group();
      else if (peek().type == TokenType::Number)
        base = number(next().text);
      else
        base = parse_arg();
      if (!base) throw ParseError("log base missing");
    }
    std::vector<NodePtr> args;
    if (sym("(")) {
      next();
      args = parse_items({")"}, true);
      expect(")");
    } else if (sym("{")) {
      NodePtr x = parse_brace_group();
      if (x) args.push_back(x);
    } else {
      NodePtr x = parse_function_operand();
      if (x) args.push_back(x);
    }
    if (args.empty()) throw ParseError(name + " without argument");
    std::string fname = name;
    bool inverse = power && power->kind == Kind::Number && power->exact && power->q == Rational(-1);
    if (inverse && one_of(name, {"sin", "cos", "tan", "cot", "sec", "csc"})) {
      fname = "arc" + name;
      power = nullptr;
    }
    NodePtr f;
    if (fname == "log") {
      args.push_back(base ? base : make_int(10));
      f = make_func("log", std::move(args));
    } else if (fname == "lg") {
      args.push_back(make_int(10));
      f = make_func("log", std::move(args));
    } else if (fname == "exp") {
      f = make_pow(make_constant("e"), args[0]);
    } else {
      f = make_func(fname, std::move(args));
    }
    if (power) f = make_pow(f, power);
    return f;
  }

  // \sin 2x: the operand is a product of non-function factors.
  NodePtr parse_function_operand() {
    std::vector<NodePtr> factors;
    NodePtr first = parse_power();
    if (!first) return nullptr;
    factors.push_back(first);
    while (starts_factor(peek()) && !(peek().type == TokenType::Command && is_function_name(peek().text)) &&
           !(peek().type == TokenType::Word && is_function_name(lower(peek().text))) && !sym("(")) {
      NodePtr f = parse_power();
      if (!f) break;
      factors.push_back(f);
    }
    return factors.size() == 1 ? factors[0] : make_node(Kind::Mul, std::move(factors));
  }

  NodePtr parse_delimited(const std::string& open) {
    DepthGuard g(*this);
    next();
    std::vector<NodePtr> items = parse_items({")", "]"}, true);
    if (!(sym(")") || sym("]"))) throw ParseError("missing closing bracket");
    std::string close = next().text;
    if (items.empty()) throw ParseError("empty brackets");
    if (items.size() == 1) return items[0];
    if (items.size() == 2 && !(open == "(" && close == ")"))
      return make_interval(items[0], items[1], open == "[", close == "]");
    return make_node(Kind::Tuple, std::move(items));
  }

  NodePtr parse_abs() {
    DepthGuard g(*this);
    next();
    ++abs_depth_;
    NodePtr x = parse_additive();
    --abs_depth_;
    expect("|");
    if (!x) throw ParseError("empty |...|");
    return make_func("abs", {x});
  }

  // \lfloor x \rfloor, \lceil x \rceil, \langle a, b \rangle
  NodePtr parse_bracket_command(const std::string& closer, const std::string& fname) {
    DepthGuard g(*this);
    std::vector<NodePtr> items;
    while (!at_end() && !cmd(closer)) {
      if (is_separator() || sym(";")) {
        next();
        continue;
      }
      size_t before = pos_;
      NodePtr x = parse_relation();
      if (x) items.push_back(x);
      if (pos_ == before) throw ParseError("unexpected '" + peek().text + "'");
    }
    if (!cmd(closer)) throw ParseError("missing \\" + closer);
    next();
    if (items.empty()) throw ParseError("empty \\" + closer);
    if (fname == "tuple") return items.size() == 1 ? items[0] : make_node(Kind::Tuple, std::move(items));
    if (items.size() != 1) throw ParseError(fname + " of a list");
    return make_func(fname, {items[0]});
  }

  // In align/cases/... the & marks alignment only; removed up to the matching \end.
  void drop_alignment_marks() {
    int nesting = 0;
    for (size_t i = pos_; i < toks_.size(); ++i) {
      budget_.charge();
      const Token& t = toks_[i];
      if (t.type == TokenType::Command && t.text == "begin") ++nesting;
      if (t.type == TokenType::Command && t.text == "end" && nesting-- == 0) break;
      if (nesting == 0 && t.type == TokenType::Symbol && t.text == "&") {
        toks_.erase(toks_.begin() + static_cast<long>(i));
        --i;
      }
    }
  }

  std::string env_name() {
    expect("{");
    std::string name;
    while (!at_end() && !sym("}")) name += next().text;
    expect("}");
    return name;
  }

  // \begin{pmatrix} a & b \\ c & d \end{pmatrix} and friends.
  NodePtr parse_environment() {
    DepthGuard g(*this);
    std::string name = env_name();
    bool matrix =
        one_of(name, {"pmatrix", "bmatrix", "Bmatrix", "vmatrix", "Vmatrix", "matrix", "smallmatrix", "array"});
    if (name == "array" && sym("{")) raw_arg(false);  // column spec
    if (!matrix) drop_alignment_marks();
    // Each row always has a current (last) cell; '&' opens the next one.
    std::vector<std::vector<NodePtr>> rows{{nullptr}};
    while (!at_end() && !cmd("end")) {
      if (sym("&")) {
        next();
        rows.back().push_back(nullptr);
        continue;
      }
      if (sym("\\\\")) {
        next();
        rows.push_back({nullptr});
        continue;
      }
      size_t before = pos_;
      std::vector<NodePtr> items = parse_items({"&", "\\\\", "\\end"}, false);
      if (pos_ == before) throw ParseError("unexpected '" + peek().text + "' in environment");
      NodePtr cell = items.empty() ? nullptr : (items.size() == 1 ? items[0] : make_node(Kind::List, items));
      if (matrix)
        rows.back().back() = cell;
      else if (cell)
        rows.back().push_back(cell);
    }
    if (!cmd("end")) throw ParseError("missing \\end{" + name + "}");
    next();
    if (env_name() != name) throw ParseError("mismatched \\end for " + name);
    // Drop empty rows (a trailing \\ before \end).
    rows.erase(std::remove_if(rows.begin(), rows.end(),
                              [](const std::vector<NodePtr>& r) {
                                return std::all_of(r.begin(), r.end(), [](const NodePtr& c) { return !c; });
                              }),
               rows.end());
    if (rows.empty()) throw ParseError("empty environment");
    if (!matrix) {
      std::vector<NodePtr> items;
      for (auto& r : rows)
        for (auto& c : r)
          if (c) items.push_back(c);
      return items.size() == 1 ? items[0] : make_node(Kind::List, std::move(items));
    }
    size_t cols = rows[0].size();
    std::vector<NodePtr> cells;
    for (auto& r : rows) {
      if (r.size() != cols) throw ParseError("ragged matrix");
      for (auto& c : r) {
        if (!c) throw ParseError("empty matrix cell");
        cells.push_back(c);
      }
    }
    NodePtr m = make_matrix(static_cast<int>(rows.size()), static_cast<int>(cols), std::move(cells));
    if (name == "vmatrix") return make_func("det", {m});
    return m;
  }

  // \text{...}: connectors were handled by normalize; words stay text, math is parsed.
  NodePtr parse_text() {
    if (!sym("{")) return nullptr;
    size_t start = pos_;
    std::vector<Token> inner = group_tokens();
    bool has_word = std::any_of(inner.begin(), inner.end(),
                                [](const Token& t) { return t.type == TokenType::Word && t.text.size() > 1; });
    if (inner.size() == 1) return nullptr;  // \text{}
    if (has_word) {
      pos_ = start;
      std::string words = lower(raw_arg(true));
      return make_text(words);
    }
    // A single letter, possibly in parentheses: a choice label or a name.
    std::vector<const Token*> solid;
    for (const auto& t : inner)
      if (t.type != TokenType::End) solid.push_back(&t);
    if (solid.size() == 1 && solid[0]->type == TokenType::Word) return make_text(lower(solid[0]->text));
    if (solid.size() == 3 && solid[0]->text == "(" && solid[2]->text == ")" && solid[1]->type == TokenType::Word)
      return make_text(lower(solid[1]->text));
    ParseOptions sub = opts_;
    Parser p(std::move(inner), sub, budget_, depth_);
    return p.parse_top();
  }

  NodePtr parse_command() {
    DepthGuard g(*this);
    std::string name = next().text;
    if (name == "frac") {
      NodePtr a = parse_arg();
      NodePtr b = parse_arg();
      return make_div(a, b);
    }
    if (name == "binom") {
      NodePtr a = parse_arg();
      NodePtr b = parse_arg();
      return make_func("binom", {a, b});
    }
    if (name == "sqrt") return parse_function("sqrt");
    if (is_function_name(name) || name == "operatorname") {
      if (name == "operatorname") {
        std::string op = lower(raw_arg(false));
        if (is_function_name(op)) return parse_function(op);
        return make_symbol("\\operatorname{" + op + "}");
      }
      return parse_function(name);
    }
    if (name == "pi") return make_constant("pi");
    if (name == "infty" || name == "infinity") return make_constant("inf");
    if (name == "imath" || name == "jmath") return make_constant("i");
    if (name == "emptyset" || name == "varnothing") return make_node(Kind::Set, {});
    if (name == "dots" || name == "ldots" || name == "cdots" || name == "vdots") return make_symbol("...");
    if (is_greek(name)) return make_symbol("\\" + name + subscript_suffix());
    if (one_of(name, {"text", "textbf", "textit", "textrm", "textnormal", "mbox", "textsf", "texttt"}))
      return parse_text();
    if (one_of(name, {"mathrm", "mathbf", "mathit", "boldsymbol", "mathsf", "bm", "mathcal", "mathscr", "mathfrak",
                      "boxed", "fbox", "displaystyle", "textup", "emph", "mathnormal"})) {
      if (!sym("{")) return nullptr;
      return parse_brace_group();
    }
    if (name == "mathbb") {
      std::string set = raw_arg(false);
      if (set == "R") return make_interval(make_neg(make_constant("inf")), make_constant("inf"), false, false);
      return make_symbol("\\mathbb{" + set + "}");
    }
    if (one_of(name, {"overline", "bar", "vec", "hat", "widehat", "tilde", "widetilde", "dot", "ddot", "underline",
                      "overrightarrow", "overleftrightarrow", "overarc", "arc"})) {
      std::string content = raw_arg(false);
      return make_symbol("\\" + name + "{" + content + "}");
    }
    if (name == "lfloor") return parse_bracket_command("rfloor", "floor");
    if (name == "lceil") return parse_bracket_command("rceil", "ceil");
    if (name == "langle") return parse_bracket_command("rangle", "tuple");
    if (name == "lvert" || name == "vert") {
      // \lvert x \rvert or \vert x \vert
      std::string closer = name == "lvert" ? "rvert" : "vert";
      return parse_bracket_command(closer, "abs");
    }
    if (name == "begin") return parse_environment();
    if (name == "sum" || name == "prod" || name == "int" || name == "lim" || name == "iint" || name == "oint") {
      std::string lo, hi;
      if (sym("_")) {
        next();
        lo = raw_arg(false);
      }
      if (sym("^")) {
        next();
        hi = raw_arg(false);
      }
      NodePtr body = parse_function_operand();
      if (!body) throw ParseError("\\" + name + " without body");
      return make_func(name + "[" + lo + ";" + hi + "]", {body}, true);
    }
    if (name == "angle" || name == "triangle" || name == "measuredangle") {
      std::string obj;
      while (peek().type == TokenType::Word && !peek().space_before) obj += next().text;
      if (obj.empty() && peek().type == TokenType::Word) obj = next().text;
      return make_symbol("\\" + name + obj);
    }
    // Unknown command: a known command glued to letters ("\quadx", "\pix") splits; anything else
    // is an opaque symbol.
    for (size_t len = name.size() - 1; len >= 2; --len) {
      std::string head = name.substr(0, len);
      if (head == "pi" || is_greek(head) || is_function_name(head)) {
        toks_.insert(toks_.begin() + static_cast<long>(pos_), Token{TokenType::Word, name.substr(len), false});
        toks_.insert(toks_.begin() + static_cast<long>(pos_), Token{TokenType::Command, head, false});
        budget_.charge(static_cast<int64_t>(toks_.size() - pos_));
        return parse_command();
      }
    }
    return make_symbol("\\" + name);
  }

  NodePtr parse_primary() {
    const Token& t = peek();
    switch (t.type) {
      case TokenType::Number: {
        std::string text = next().text;
        NodePtr n = number(text);
        if (sym("_")) subscript_suffix();  // 204_5: digits in base 5, compared as written (204)
        return n;
      }
      case TokenType::Word: return parse_word();
      case TokenType::Command:
        if (is_operator_command(t.text)) throw ParseError("unexpected \\" + t.text);
        return parse_command();
      case TokenType::Symbol:
        if (t.text == "(" || t.text == "[") return parse_delimited(t.text);
        if (t.text == "{") return parse_brace_group();
        if (t.text == "\\{") {
          next();
          std::vector<NodePtr> items = parse_items({"\\}"}, true);
          expect("\\}");
          return make_node(Kind::Set, std::move(items));
        }
        if (t.text == "|") return parse_abs();
        throw ParseError("unexpected '" + t.text + "'");
      case TokenType::End: return nullptr;
    }
    return nullptr;
  }

  std::vector<Token> toks_;
  size_t pos_ = 0;
  const ParseOptions& opts_;
  WorkBudget& budget_;
  int depth_ = 0;
  int abs_depth_ = 0;
};

}  // namespace

NodePtr parse_answer(std::string_view normalized, const ParseOptions& options, WorkBudget& budget) {
  Parser p(tokenize(normalized, budget), options, budget);
  return p.parse_top();
}

}  // namespace grpo::reward::math
