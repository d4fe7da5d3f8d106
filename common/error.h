// Errors with context: every user-facing failure names the file, key or field it is about.
#pragma once
#include <stdexcept>
#include <string>

namespace grpo {

// A problem with user input (a file, a config key, a request field). The message says which
// input and what was expected; callers print it as is.
// Thread-safety: immutable once thrown; owns its message.
class InputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace grpo
