#include "reward/math/expr.h"

#include <cmath>
#include <sstream>

namespace grpo::reward::math {
namespace {

// Every operand must exist: a missing one is a parse error, never a null child.
const std::vector<NodePtr>& checked(const std::vector<NodePtr>& args) {
  for (const auto& a : args)
    if (!a) throw ParseError("missing operand");
  return args;
}

const NodePtr& checked(const NodePtr& a) {
  if (!a) throw ParseError("missing operand");
  return a;
}

}  // namespace

NodePtr make_number(const Rational& q, bool decimal) {
  auto n = std::make_shared<Node>();
  n->kind = Kind::Number;
  n->q = q;
  n->exact = true;
  n->decimal = decimal;
  n->approx = q.to_long_double();
  return n;
}

NodePtr make_float(long double v, bool decimal) {
  auto n = std::make_shared<Node>();
  n->kind = Kind::Number;
  n->exact = false;
  n->decimal = decimal;
  n->approx = v;
  return n;
}

NodePtr make_int(int64_t v) { return make_number(Rational(v)); }

NodePtr make_symbol(std::string name) {
  auto n = std::make_shared<Node>();
  n->kind = Kind::Symbol;
  n->name = std::move(name);
  return n;
}

NodePtr make_constant(std::string name) {
  auto n = std::make_shared<Node>();
  n->kind = Kind::Constant;
  n->name = std::move(name);
  return n;
}

NodePtr make_text(std::string words) {
  auto n = std::make_shared<Node>();
  n->kind = Kind::Text;
  n->name = std::move(words);
  return n;
}

NodePtr make_node(Kind kind, std::vector<NodePtr> args) {
  auto n = std::make_shared<Node>();
  n->kind = kind;
  checked(args);
  n->args = std::move(args);
  return n;
}

NodePtr make_func(std::string name, std::vector<NodePtr> args, bool undefined) {
  auto n = std::make_shared<Node>();
  n->kind = Kind::Func;
  n->name = std::move(name);
  checked(args);
  n->args = std::move(args);
  n->undefined_function = undefined;
  return n;
}

NodePtr make_neg(NodePtr a) {
  checked(a);
  if (a->kind == Kind::Number && a->exact) return make_number(neg(a->q), a->decimal);
  if (a->kind == Kind::Number) return make_float(-a->approx, a->decimal);
  return make_node(Kind::Mul, {make_int(-1), std::move(a)});
}

NodePtr make_sub(NodePtr a, NodePtr b) { return make_node(Kind::Add, {std::move(a), make_neg(std::move(b))}); }

NodePtr make_pow(NodePtr base, NodePtr exponent) {
  return make_node(Kind::Pow, {std::move(base), std::move(exponent)});
}

NodePtr make_div(NodePtr a, NodePtr b) {
  return make_node(Kind::Mul, {std::move(a), make_pow(std::move(b), make_int(-1))});
}

NodePtr make_interval(NodePtr lo, NodePtr hi, bool left_closed, bool right_closed) {
  auto n = std::make_shared<Node>();
  n->kind = Kind::Interval;
  n->args = checked(std::vector<NodePtr>{std::move(lo), std::move(hi)});
  n->left_closed = left_closed;
  n->right_closed = right_closed;
  return n;
}

NodePtr make_relation(std::vector<NodePtr> parts, std::vector<RelOp> ops) {
  auto n = std::make_shared<Node>();
  n->kind = Kind::Relation;
  checked(parts);
  n->args = std::move(parts);
  n->rel_ops = std::move(ops);
  return n;
}

NodePtr make_matrix(int rows, int cols, std::vector<NodePtr> cells) {
  auto n = std::make_shared<Node>();
  n->kind = Kind::Matrix;
  n->rows = rows;
  n->cols = cols;
  checked(cells);
  n->args = std::move(cells);
  return n;
}

namespace {

const char* rel_op_str(RelOp op) {
  switch (op) {
    case RelOp::Eq: return "=";
    case RelOp::Approx: return "~=";
    case RelOp::Lt: return "<";
    case RelOp::Le: return "<=";
    case RelOp::Gt: return ">";
    case RelOp::Ge: return ">=";
    case RelOp::Ne: return "!=";
    case RelOp::In: return " in ";
  }
  return "?";
}

std::string format_float(long double v) {
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  if (std::isnan(v)) return "nan";
  std::ostringstream os;
  os.precision(12);
  os << static_cast<double>(v);
  return os.str();
}

std::string join(const Node& n, const char* sep) {
  std::string s;
  for (size_t i = 0; i < n.args.size(); ++i) {
    if (i) s += sep;
    s += to_string(*n.args[i]);
  }
  return s;
}

bool needs_parens(const Node& n) {
  return n.kind == Kind::Add || n.kind == Kind::Mul || n.kind == Kind::Pow || n.kind == Kind::PlusMinus ||
         n.kind == Kind::Relation || n.kind == Kind::Ratio ||
         (n.kind == Kind::Number && (n.approx < 0 || (n.exact && !n.q.is_integer())));
}

std::string wrapped(const Node& n) { return needs_parens(n) ? "(" + to_string(n) + ")" : to_string(n); }

}  // namespace

std::string to_string(const Node& n) {
  switch (n.kind) {
    case Kind::Number:
      if (n.exact) return n.q.str();
      if (!n.name.empty()) return n.name;  // an integer literal beyond 128 bits
      return format_float(n.approx);
    case Kind::Symbol:
    case Kind::Constant: return n.name;
    case Kind::Text: return "\"" + n.name + "\"";
    case Kind::Add: {
      std::string s;
      for (size_t i = 0; i < n.args.size(); ++i) {
        std::string t = to_string(*n.args[i]);
        if (i && !(!t.empty() && t[0] == '-')) s += "+";
        s += t;
      }
      return s;
    }
    case Kind::Mul: {
      std::string s;
      for (size_t i = 0; i < n.args.size(); ++i) {
        const Node& f = *n.args[i];
        if (i == 0 && f.kind == Kind::Number && f.exact && f.q == Rational(-1) && n.args.size() > 1) {
          s += "-";
          continue;
        }
        if (!s.empty() && s != "-") s += "*";
        s += (f.kind == Kind::Pow || f.kind == Kind::Mul) ? to_string(f) : wrapped(f);
      }
      return s;
    }
    case Kind::Pow: return wrapped(*n.args[0]) + "^" + wrapped(*n.args[1]);
    case Kind::Func: return n.name + "(" + join(n, ", ") + ")";
    case Kind::Tuple: return "(" + join(n, ", ") + ")";
    case Kind::List: return join(n, ", ");
    case Kind::Set: return "{" + join(n, ", ") + "}";
    case Kind::Interval:
      return std::string(n.left_closed ? "[" : "(") + to_string(*n.args[0]) + ", " + to_string(*n.args[1]) +
             (n.right_closed ? "]" : ")");
    case Kind::Union: return join(n, " U ");
    case Kind::Matrix: {
      std::string s = "[";
      for (int r = 0; r < n.rows; ++r) {
        if (r) s += "; ";
        for (int c = 0; c < n.cols; ++c) {
          if (c) s += ", ";
          s += to_string(*n.args[static_cast<size_t>(r) * static_cast<size_t>(n.cols) + static_cast<size_t>(c)]);
        }
      }
      return s + "]";
    }
    case Kind::Relation: {
      std::string s = to_string(*n.args[0]);
      for (size_t i = 0; i < n.rel_ops.size(); ++i) s += rel_op_str(n.rel_ops[i]) + to_string(*n.args[i + 1]);
      return s;
    }
    case Kind::PlusMinus: return wrapped(*n.args[0]) + "+-" + wrapped(*n.args[1]);
    case Kind::Percent: return wrapped(*n.args[0]) + "%";
    case Kind::Ratio: return wrapped(*n.args[0]) + ":" + wrapped(*n.args[1]);
  }
  return "?";
}

}  // namespace grpo::reward::math
