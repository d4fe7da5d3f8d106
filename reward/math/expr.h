// The expression tree the math verifier parses answers into.
//
// Nodes are immutable and shared (NodePtr = shared_ptr<const Node>), so trees can be reused across
// threads. Subtraction is Add(a, Mul(-1, b)) and division Mul(a, Pow(b, -1)); ordering and
// folding are done by simplify.h, not here.
#pragma once
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "reward/math/rational.h"

namespace grpo::reward::math {

enum class Kind {
  Number,     // exact rational (or a float once exactness was lost); `decimal` marks 0.5-style
  Symbol,     // x, x_{1}, \alpha, AB (one name per letter; subscripts are part of the name)
  Constant,   // name: "pi", "e", "i", "inf"
  Text,       // \text{...} words that are not units, lower-cased with single spaces
  Add,        // args: terms
  Mul,        // args: factors
  Pow,        // args: base, exponent
  Func,       // name + args: sin, cos, ..., "log" (x, base), "root" (x, n), "abs", undefined f(x)
  Tuple,      // (a, b, ...): ordered; a 2-tuple may also mean an open interval
  List,       // a, b, c  — several answers without delimiters ("2 or -5", two \boxed{})
  Set,        // \{a, b\}
  Interval,   // [a, b), (a, b], [a, b]; left_closed/right_closed
  Union,      // A \cup B
  Matrix,     // rows x cols, args row-major
  Relation,   // chain a op b op c ...; ops in `rel_ops`
  PlusMinus,  // a \pm b (args: a, b) or \pm b (args: 0, b); expanded into alternatives later
  Percent,    // x\%
  Ratio,      // a : b
};

enum class RelOp { Eq, Approx, Lt, Le, Gt, Ge, Ne, In };

struct Node;
using NodePtr = std::shared_ptr<const Node>;

struct Node {
  Kind kind = Kind::Number;
  // Number: exact value when `exact`, always `approx` (the long double value).
  Rational q;
  bool exact = true;
  bool decimal = false;  // written with a decimal point / exponent: compared with float rounding
  long double approx = 0;
  std::string name;  // Symbol / Constant / Text / Func name
  std::vector<NodePtr> args;
  std::vector<RelOp> rel_ops;                      // Relation: size == args.size() - 1
  bool left_closed = false, right_closed = false;  // Interval
  int rows = 0, cols = 0;                          // Matrix
  bool undefined_function = false;                 // Func: f(x) with no known meaning
};

// Thrown for input the parser refuses (too deep, too big, malformed). Never escapes the verifier.
// Thread-safety: immutable once thrown; owns its message.
class ParseError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Thrown when a verification would exceed its work budget (see WorkBudget).
// Thread-safety: immutable once thrown; owns its message.
class BudgetExceeded : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Counts abstract work units (tokens parsed, nodes evaluated, polynomial terms multiplied, pairs
// compared). Every loop whose length depends on the input charges it, so a verification costs at
// most `limit` units whatever the input; the fuzz test checks the counts.
// Not thread-safe: one per verification, used by its thread. A plain counter (owns nothing).
class WorkBudget {
 public:
  explicit WorkBudget(int64_t limit) : limit_(limit) {}
  void charge(int64_t units = 1) {
    if (units > limit_ - used_) {
      used_ = limit_;
      throw BudgetExceeded("work budget of " + std::to_string(limit_) + " units exceeded");
    }
    used_ += units;
  }
  int64_t used() const { return used_; }
  int64_t limit() const { return limit_; }

 private:
  int64_t limit_;
  int64_t used_ = 0;
};

// Constructors.
NodePtr make_number(const Rational& q, bool decimal = false);
NodePtr make_float(long double v, bool decimal = true);
NodePtr make_int(int64_t v);
NodePtr make_symbol(std::string name);
NodePtr make_constant(std::string name);
NodePtr make_text(std::string words);
NodePtr make_node(Kind kind, std::vector<NodePtr> args);
NodePtr make_func(std::string name, std::vector<NodePtr> args, bool undefined = false);
NodePtr make_neg(NodePtr a);
NodePtr make_sub(NodePtr a, NodePtr b);
NodePtr make_div(NodePtr a, NodePtr b);
NodePtr make_pow(NodePtr base, NodePtr exponent);
NodePtr make_interval(NodePtr lo, NodePtr hi, bool left_closed, bool right_closed);
NodePtr make_relation(std::vector<NodePtr> parts, std::vector<RelOp> ops);
NodePtr make_matrix(int rows, int cols, std::vector<NodePtr> cells);

// A readable, deterministic rendering ("(x+1)^2", "{1, 2}", "[0, 1)"); used in reasons and as
// the key of opaque sub-expressions, so equal trees render equally.
std::string to_string(const Node& n);

}  // namespace grpo::reward::math
