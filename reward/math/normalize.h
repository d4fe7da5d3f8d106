// String-level clean-up of an extracted answer before it is parsed.
//
// Follows the conventions of the usual graders (Qwen2.5-Math strip_string, verl math rewards,
// Math-Verify's normalisation): LaTeX spacing and sizing commands are dropped, \dfrac/\tfrac become
// \frac, unicode math becomes LaTeX, units in \text{} are removed, thousands separators (1,000 /
// 1{,}000 / 1,\!000) are joined, degrees (^\circ) are dropped. Percent signs are kept (the
// comparison decides what 50\% matches) and so are "x =" prefixes (the comparison unwraps them).
#pragma once
#include <string>
#include <string_view>

namespace grpo::reward::math {

// Unicode math to LaTeX/ASCII: − – × ÷ · √ ∛ π ∞ ≤ ≥ ≠ ≈ ∪ ∩ ∈ ° ² ³ ½ and non-breaking spaces.
std::string replace_unicode_math(std::string_view text);

// The whole clean-up. `plain` is true for answers taken from plain text (no LaTeX delimiters):
// there "1,5" is a decimal comma and "1 000" a thousands separator, as in Math-Verify.
std::string normalize_answer(std::string_view answer, bool plain);

// Unit words stripped after numbers ("cm", "dollars", "degrees", "mph", ...), lower-case input.
// Single letters (m, g, s, h, l) only count when `single_letters` is set (inside \text{} or after
// a number in plain text).
bool is_unit_word(std::string_view lower_word, bool single_letters);

}  // namespace grpo::reward::math
