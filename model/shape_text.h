// A tensor shape in an error message: "[2, 3, 128]".
#pragma once
#include <string>

#include <c10/util/ArrayRef.h>

namespace grpo {

inline std::string shape_str(c10::IntArrayRef s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

}  // namespace grpo
