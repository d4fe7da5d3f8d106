// The `math` verifier: reward 1 when the completion's final answer is mathematically equivalent
// to the reference, else 0 (component "accuracy").
//
// Options (factory JSON and per-request VerifyRequest.options; request keys override):
//   extract                  ["boxed", "answer_tag", "answer_is", "last_latex", "last_number"]
//                            methods tried in order (extract.h)
//   float_rounding           6      decimal places compared when a decimal literal is involved
//   rel_tol                  1e-12  relative tolerance of numeric comparisons
//   allow_percent            true   50\% matches 50 and 0.5
//   strict                   true   false: variable names do not matter (f(x) == f(y))
//   allow_set_relation_comp  false  a gold set may match a predicted inequality
//   plain_reference          false  a bare reference is plain text (1,5 is a decimal comma)
//   max_depth                100    parser nesting limit
//   max_answer_bytes         2000   longer extracted answers get reward 0
//   max_work                 2000000 work units per verification (see expr.h WorkBudget)
// Unknown keys and wrong types are a grpo::InputError naming the key. The reference is a string
// or {"answer": string|number}; anything else is an InputError naming "reference".
#pragma once
#include <memory>
#include <string>
#include <string_view>

#include "reward/math/compare.h"
#include "reward/math/extract.h"
#include "reward/verifier.h"

namespace grpo::reward::math {

struct MathVerifierOptions {
  ExtractOptions extract;
  CompareOptions compare;
  bool plain_reference = false;
  int max_depth = 100;
  int64_t max_work = 2'000'000;

  // `base` with the keys of `j` applied; `where` prefixes key names in error messages.
  static MathVerifierOptions from_json(const nlohmann::json& j, const MathVerifierOptions& base,
                                       const std::string& where);
};

struct MathVerdict {
  bool correct = false;
  std::string reason;
  std::string extracted;  // the prediction's final answer as extracted ("" when none)
  int64_t work = 0;       // work units spent (<= options.max_work)
};

// The whole pipeline on one (completion, gold answer) pair. Never throws.
MathVerdict verify_math(std::string_view completion, std::string_view gold, const MathVerifierOptions& options);

// Thread-safe: verify() keeps no state (a WorkBudget per call). Owns a copy of its options.
class MathVerifier : public Verifier {
 public:
  explicit MathVerifier(MathVerifierOptions options) : options_(std::move(options)) {}
  std::string name() const override { return "math"; }
  std::string description() const override;
  VerifyResult verify(const VerifyRequest& request) const override;

 private:
  MathVerifierOptions options_;
};

}  // namespace grpo::reward::math

namespace grpo::reward {
// Factory the verifier registry uses for the name "math". Throws grpo::InputError on bad options.
std::unique_ptr<Verifier> make_math_verifier(const nlohmann::json& options);
}  // namespace grpo::reward
