// Finding the program in a model's answer.
//
//   "<think>…</think> Here it is:\n```python\ndef f(x):\n    return x\n```"  ->  "def f(x):\n    return x\n"
//
// Only the text after the last </think> counts (a <think> that is never closed means there is no
// answer). The code is the last fenced block labelled for the language (```python / ```py /
// ```python3, ```cpp / ```c++ / ```cc / ```cxx), else the last unlabelled block; a block left open
// at the end runs to the end of the text. Without any fence the whole answer is the code unless
// `require_fence` is set.
#pragma once
#include <string>
#include <string_view>

#include "reward/code/runner.h"

namespace grpo::reward {

struct ExtractedCode {
  bool found = false;
  std::string code;
  std::string reason;  // when !found, e.g. "no ```python block (found ```cpp)"
};

ExtractedCode extract_code(std::string_view completion, Language language, bool require_fence);

}  // namespace grpo::reward
