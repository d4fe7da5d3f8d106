// "did you mean ...?" for a mistyped name (a flag, a config key, a command). Pure functions.
#pragma once
#include <string>
#include <vector>

namespace grpo {

// The candidate closest to `word` by edit distance (insertions, deletions, substitutions and
// swaps of adjacent characters), when it is close enough to be a typo: at most a third of the
// word's length in edits, and at least 1. "" when none is.
std::string closest_name(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace grpo
