// Final-answer extraction from a model completion.
//
// Methods, tried in the configured order until one finds something; neighbours in the order of
// the same tier compete and the answer that ends last in the text wins (as in Math-Verify, where
// "The final answer is $x$" after a \boxed{} overrides it). Tiers: {boxed, answer_is},
// {answer_tag}, {last_latex, last_number}.
//   boxed       last \boxed{...} / \fbox{...} (nested braces; also "\boxed 5"); neighbouring boxes
//               joined by "and" / "or" / commas form one multi-part answer
//   answer_tag  <answer>...</answer> (the last closed one)
//   answer_is   "the answer is ...", "final answer: ...", "Final Answer: The final answer is $x$."
//   last_latex  the last math environment ($..$, $$..$$, \(..\), \[..\]), joined like boxes
//   last_number the last number in the text ("1,000.99", "-10/9", "28 percent", "\frac{1}{2}")
// Only the text after </think> counts when a think block is present; an unclosed <think> means
// there is no answer. All scans are linear in the text length.
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace grpo::reward::math {

enum class ExtractMethod { Boxed, AnswerTag, AnswerIs, LastLatex, LastNumber };

// "boxed" -> ExtractMethod::Boxed, ...; nullopt for an unknown name.
std::optional<ExtractMethod> parse_extract_method(std::string_view name);
const char* extract_method_name(ExtractMethod m);

struct ExtractOptions {
  std::vector<ExtractMethod> order{ExtractMethod::AnswerTag, ExtractMethod::Boxed, ExtractMethod::AnswerIs,
                                   ExtractMethod::LastLatex, ExtractMethod::LastNumber};
  size_t max_answer_bytes = 2000;  // an extracted answer longer than this is refused
};

struct Extraction {
  std::vector<std::string> parts;  // one answer, or several (\boxed{1} and \boxed{2})
  std::string method;              // extract_method_name(...) or "whole" (a reference as is)
  bool plain = false;              // parts come from plain text, not LaTeX math
  bool math_like = true;           // holds math (a box, an environment or a digit), not only words
  size_t end = 0;                  // offset just past the answer in the searched text
  std::string text() const;        // the parts joined by ", "
};

// The part of a completion that may hold the final answer: after the last </think>, or all of
// it without a think block. nullopt when <think> is never closed.
std::optional<std::string_view> final_section(std::string_view completion);

// nullopt when no method finds an answer. Throws nothing; an answer over max_answer_bytes is
// returned truncated with `oversized` set so the caller can refuse it.
struct ExtractResult {
  std::optional<Extraction> answer;
  bool oversized = false;
};
ExtractResult extract_answer(std::string_view text, const ExtractOptions& options);

// A reference answer: the structured methods (boxed, answer tag, "answer is", math environments)
// when the reference is a worked solution, otherwise the whole string.
Extraction extract_reference(std::string_view reference, const ExtractOptions& options);

// Multiple-choice letter: "the answer is (B)", a leading "B." or a standalone letter; the letter
// must be in `letters`. nullopt when there is none.
std::optional<char> extract_choice(std::string_view text, std::string_view letters);

}  // namespace grpo::reward::math
