// Tensor names in an error message: the first 8, then "... (N in all)".
#pragma once
#include <string>
#include <vector>

namespace grpo {

inline std::string name_listing(const std::vector<std::string>& names) {
  std::string s;
  for (size_t i = 0; i < names.size() && i < 8; ++i) s += (i ? ", " : "") + names[i];
  if (names.size() > 8) s += ", ... (" + std::to_string(names.size()) + " in all)";
  return s;
}

}  // namespace grpo
