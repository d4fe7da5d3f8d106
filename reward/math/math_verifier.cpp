#include "reward/math/math_verifier.h"

#include <algorithm>
#include <cctype>

#include "common/utf8.h"
#include "reward/math/normalize.h"
#include "reward/math/parser.h"
#include "reward/math/simplify.h"

namespace grpo::reward::math {
namespace {

constexpr size_t kReasonChars = 80;

std::string shorten(std::string s) {
  for (char& c : s)
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  if (s.size() > kReasonChars) s = s.substr(0, kReasonChars) + "...";
  return s;
}

std::string squeeze(std::string_view s) {
  std::string out;
  for (char c : s)
    if (!std::isspace(static_cast<unsigned char>(c))) out.push_back(c);
  return out;
}

// "B", "(B)", "\text{B}", "\textbf{(B)}", "B." -> 'B'; lower-case letters only when `any_case`.
std::optional<char> choice_letter(std::string_view s, bool any_case) {
  std::string t = squeeze(s);
  for (const char* w : {"\\text{", "\\textbf{", "\\mathrm{", "\\mathbf{", "\\boxed{"}) {
    std::string_view wv(w);
    if (t.compare(0, wv.size(), wv) == 0 && !t.empty() && t.back() == '}')
      t = t.substr(wv.size(), t.size() - wv.size() - 1);
  }
  t.erase(std::remove_if(t.begin(), t.end(),
                         [](char c) { return c == '$' || c == '(' || c == ')' || c == '.' || c == '*'; }),
          t.end());
  if (t.size() != 1) return std::nullopt;
  char c = t[0];
  if (std::isupper(static_cast<unsigned char>(c))) return c;
  if (any_case && std::islower(static_cast<unsigned char>(c)))
    return static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return std::nullopt;
}

// Parses the parts of an answer into one tree: several parts (or parts that are lists) become one
// List, as "1, 2 and 3" does.
NodePtr parse_parts(const Extraction& ex, bool plain, const MathVerifierOptions& o, WorkBudget& budget) {
  ParseOptions po;
  po.max_depth = o.max_depth;
  po.plain = plain;
  std::vector<NodePtr> nodes;
  for (const auto& part : ex.parts) {
    NodePtr n = parse_answer(normalize_answer(part, plain), po, budget);
    if (ex.parts.size() > 1 && n->kind == Kind::List)
      nodes.insert(nodes.end(), n->args.begin(), n->args.end());
    else
      nodes.push_back(n);
  }
  if (nodes.size() == 1) return nodes[0];
  return make_node(Kind::List, std::move(nodes));
}

MathVerdict choice_verdict(std::string_view section, char gold, const MathVerifierOptions& o) {
  MathVerdict v;
  std::string letters;
  for (char c = 'A'; c <= std::max<char>('E', gold); ++c) letters.push_back(c);
  std::optional<char> got;
  ExtractResult ex = extract_answer(section, o.extract);
  if (ex.answer) {
    got = choice_letter(ex.answer->text(), true);
    if (!got && ex.answer->parts.size() == 1) got = extract_choice(ex.answer->parts[0], letters);
  }
  if (!got) got = extract_choice(section, letters);
  if (!got) {
    v.reason = "no answer found";
    return v;
  }
  v.extracted = std::string(1, *got);
  v.correct = *got == gold;
  v.reason = std::string(v.correct ? "equal: " : "not equal: ") + gold + (v.correct ? " == " : " vs ") + *got;
  return v;
}

}  // namespace

MathVerdict verify_math(std::string_view completion, std::string_view gold_in, const MathVerifierOptions& o) {
  MathVerdict v;
  WorkBudget budget(o.max_work);
  try {
    std::string text = utf8::sanitize(completion);
    std::string gold = utf8::sanitize(gold_in);
    auto section = final_section(text);
    if (!section) {
      v.reason = "no answer found: <think> is not closed";
      return v;
    }
    if (auto letter = choice_letter(gold, false)) {
      v = choice_verdict(*section, *letter, o);
      v.work = budget.used();
      return v;
    }
    ExtractResult ex = extract_answer(*section, o.extract);
    if (!ex.answer) {
      v.reason = "no answer found";
      return v;
    }
    v.extracted = ex.answer->text();
    if (ex.oversized) {
      v.reason = "answer too long: more than " + std::to_string(o.extract.max_answer_bytes) + " bytes";
      return v;
    }
    Extraction gold_ex = extract_reference(gold, o.extract);
    bool gold_plain = gold_ex.method == "whole" ? o.plain_reference : gold_ex.plain;
    std::string gold_text = gold_ex.text();

    NodePtr g, p;
    std::string gold_error, pred_error;
    try {
      g = prepare(parse_parts(gold_ex, gold_plain, o, budget), budget);
    } catch (const ParseError& e) {
      gold_error = e.what();
    }
    try {
      p = prepare(parse_parts(*ex.answer, ex.answer->plain, o, budget), budget);
    } catch (const ParseError& e) {
      pred_error = e.what();
    }
    if (g && p) {
      v.correct = equivalent(g, p, o.compare, budget);
    } else {
      // Unparseable on one side: only an identical normalised string counts.
      v.correct =
          squeeze(normalize_answer(gold_text, gold_plain)) == squeeze(normalize_answer(v.extracted, ex.answer->plain));
    }
    v.reason = std::string(v.correct ? "equal: " : "not equal: ") + shorten(gold_text) + (v.correct ? " == " : " vs ") +
               shorten(v.extracted);
    if (!pred_error.empty()) v.reason += " (answer parse error: " + pred_error + ")";
    if (!gold_error.empty()) v.reason += " (reference parse error: " + gold_error + ")";
  } catch (const BudgetExceeded& e) {
    v.correct = false;
    v.reason = std::string("too complex: ") + e.what();
  } catch (const std::exception& e) {
    v.correct = false;
    v.reason = std::string("internal error: ") + e.what();
  }
  v.work = budget.used();
  return v;
}

namespace {

[[noreturn]] void bad(const std::string& where, const std::string& key, const std::string& expected,
                      const nlohmann::json& got) {
  throw InputError("math verifier: " + where + key + " must be " + expected + ", got " + got.dump());
}

bool get_bool(const nlohmann::json& v, const std::string& where, const std::string& key) {
  if (!v.is_boolean()) bad(where, key, "a boolean", v);
  return v.get<bool>();
}

int64_t get_int(const nlohmann::json& v, const std::string& where, const std::string& key, int64_t lo, int64_t hi) {
  if (!v.is_number_integer() || v.get<int64_t>() < lo || v.get<int64_t>() > hi)
    bad(where, key, "an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]", v);
  return v.get<int64_t>();
}

}  // namespace

MathVerifierOptions MathVerifierOptions::from_json(const nlohmann::json& j, const MathVerifierOptions& base,
                                                   const std::string& where) {
  MathVerifierOptions o = base;
  if (j.is_null()) return o;
  if (!j.is_object()) {
    std::string name = where.empty() ? "options" : where.substr(0, where.size() - 1);
    throw InputError("math verifier: " + name + " must be an object, got " + j.dump());
  }
  for (const auto& [key, v] : j.items()) {
    if (key == "extract") {
      if (!v.is_array() || v.empty()) bad(where, key, "a non-empty array of method names", v);
      o.extract.order.clear();
      for (const auto& m : v) {
        auto method = m.is_string() ? parse_extract_method(m.get<std::string>()) : std::nullopt;
        if (!method)
          bad(where, key, "made of \"boxed\", \"answer_tag\", \"answer_is\", \"last_latex\", \"last_number\"", m);
        o.extract.order.push_back(*method);
      }
    } else if (key == "float_rounding") {
      o.compare.float_rounding = static_cast<int>(get_int(v, where, key, 0, 15));
    } else if (key == "rel_tol") {
      if (!v.is_number() || !(v.get<double>() > 0) || !(v.get<double>() < 1)) bad(where, key, "a number in (0, 1)", v);
      o.compare.rel_tol = v.get<double>();
    } else if (key == "allow_percent") {
      o.compare.allow_percent = get_bool(v, where, key);
    } else if (key == "strict") {
      o.compare.strict = get_bool(v, where, key);
    } else if (key == "allow_set_relation_comp") {
      o.compare.allow_set_relation_comp = get_bool(v, where, key);
    } else if (key == "plain_reference") {
      o.plain_reference = get_bool(v, where, key);
    } else if (key == "max_depth") {
      o.max_depth = static_cast<int>(get_int(v, where, key, 1, 1000));
    } else if (key == "max_answer_bytes") {
      o.extract.max_answer_bytes = static_cast<size_t>(get_int(v, where, key, 1, 1 << 20));
    } else if (key == "max_work") {
      o.max_work = get_int(v, where, key, 1000, int64_t{1} << 40);
    } else {
      throw InputError("math verifier: unknown option " + where + key +
                       " (known: extract, float_rounding, rel_tol, allow_percent, strict, "
                       "allow_set_relation_comp, plain_reference, max_depth, max_answer_bytes, max_work)");
    }
  }
  return o;
}

std::string MathVerifier::description() const {
  return "Math answers: extracts the final answer (\\boxed{}, <answer>, 'the answer is', last math, last number) "
         "and checks equivalence with the reference (exact rationals, rational-function identity, numeric "
         "sampling, sets/intervals/tuples/matrices, equations and inequalities). Reward 1 or 0.";
}

VerifyResult MathVerifier::verify(const VerifyRequest& request) const {
  std::string gold;
  const nlohmann::json& ref = request.reference;
  if (ref.is_string()) {
    gold = ref.get<std::string>();
  } else if (ref.is_object() && ref.contains("answer") && ref["answer"].is_string()) {
    gold = ref["answer"].get<std::string>();
  } else if (ref.is_object() && ref.contains("answer") && ref["answer"].is_number()) {
    gold = ref["answer"].dump();
  } else if (ref.is_number()) {
    gold = ref.dump();
  } else {
    throw InputError("math verifier: reference must be a string or an object with a string field \"answer\", got " +
                     shorten(ref.dump()));
  }
  if (gold.find_first_not_of(" \t\r\n") == std::string::npos)
    throw InputError("math verifier: reference.answer is empty");
  MathVerifierOptions o = MathVerifierOptions::from_json(request.options, options_, "options.");

  VerifyResult r;
  if (request.limits.max_completion_bytes >= 0 &&
      static_cast<int64_t>(request.completion.size()) > request.limits.max_completion_bytes) {
    r.reason = "too long: " + std::to_string(request.completion.size()) + " bytes > limit " +
               std::to_string(request.limits.max_completion_bytes);
    r.components["accuracy"] = 0;
    return r;
  }
  MathVerdict v = verify_math(request.completion, gold, o);
  r.correct = v.correct;
  r.reward = v.correct ? 1.0 : 0.0;
  r.components["accuracy"] = r.reward;
  r.reason = v.reason;
  r.extracted = v.extracted;
  return r;
}

}  // namespace grpo::reward::math

namespace grpo::reward {

std::unique_ptr<Verifier> make_math_verifier(const nlohmann::json& options) {
  return std::make_unique<math::MathVerifier>(
      math::MathVerifierOptions::from_json(options, math::MathVerifierOptions{}, ""));
}

}  // namespace grpo::reward
