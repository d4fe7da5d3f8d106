// libFuzzer target for the math verifier (optional, not part of ctest).
//
// The input is "gold\0completion" (or the completion alone with gold "1"). Every call must
// return without crashing, stay within its work budget and be deterministic. Build and run with
// clang from the repository root:
//
//   clang++ -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -I. \
//       tests/fuzz/math_fuzz.cpp reward/math/*.cpp -o build/math_fuzz
//   ./build/math_fuzz -max_len=4096 -max_total_time=300 tests/fuzz/corpus/
//
// (tests/fuzz/corpus/ may be empty; libFuzzer fills it.)
#include <cstdint>
#include <cstdlib>
#include <string>

#include "reward/math/math_verifier.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string input(reinterpret_cast<const char*>(data), size);
  size_t split = input.find('\0');
  std::string gold = split == std::string::npos ? "1" : input.substr(0, split);
  std::string completion = split == std::string::npos ? input : input.substr(split + 1);
  if (gold.find_first_not_of(" \t\r\n") == std::string::npos) gold = "1";
  grpo::reward::math::MathVerifierOptions options;
  options.max_work = 200'000;
  auto v = grpo::reward::math::verify_math(completion, gold, options);
  if (v.work > options.max_work || v.reason.empty()) std::abort();
  auto again = grpo::reward::math::verify_math(completion, gold, options);
  if (again.correct != v.correct || again.reason != v.reason) std::abort();
  return 0;
}
