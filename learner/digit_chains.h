// "Digit chains", the synthetic reasoning task of the CPU demo (configs/tiny-zero.yaml): fold a
// chain of k small numbers with the absolute difference, left to right, e.g. "7 5 3 8 2" ->
// |||7−5|−3|−8|−2| = 5, and answer the integer.
//
// Solutions come in two styles (the text that follows a prompt ending in "<think>"):
//   steps   "7 2 1 7 5</think><answer>5</answer>"   (the running values: each step is one small
//            look-up, the term at a fixed distance behind it against the value just before it: easy)
//   direct  "</think><answer>5</answer>"            (k nonlinear steps in one forward pass: hard;
//            unlike a sum, the fold depends on the order, so attention cannot pool it)
// A base model pretrained on mostly direct and a few step solutions answers directly most of the
// time and is mostly wrong; GRPO can find that reasoning step by step pays (R1-Zero's signature:
// accuracy and response length rise together).
//
// Splits: a problem is held out when hash(question) % heldout_every == 0 (FNV-1a 64 of the
// question text, finalised with splitmix64), so the held-out split is disjoint from the train
// split and from any corpus drawn from it, whatever the seeds. Generation is pure and seeded
// (own splitmix64 stream: the same problems on every platform).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "common/config.h"

namespace grpo {

struct DigitChainsOptions {
  int min_terms = 4, max_terms = 6;  // chain length k, inclusive
  int min_term = 1, max_term = 9;    // each term, inclusive (0 <= min_term <= max_term <= 99)
  int heldout_every = 10;            // 1 in heldout_every problems (by hash) is held out

  // Keys min_terms, max_terms, min_term, max_term, heldout_every (all optional); unknown keys and
  // bad values are InputErrors naming the key.
  static DigitChainsOptions from_config(const Config& config);
  // InputError (prefixed with `where`) when a bound is out of range or min > max.
  void validate(const std::string& where) const;
};

enum class TaskSplit { kTrain, kHeldout };
TaskSplit parse_task_split(const std::string& name);  // "train" | "heldout"; InputError otherwise
const char* task_split_name(TaskSplit split);

enum class SolutionStyle { kDirect, kSteps };

struct DigitChain {
  std::vector<int> terms;

  std::string question() const;                 // "7 5 3 8 2"
  std::vector<int64_t> running_values() const;  // 7 2 1 7 5: the fold after each term
  int64_t answer() const;                       // 5: the last running value
};

// The completion after "<think>" in the given style (see the top of this file).
std::string solution(const DigitChain& chain, SolutionStyle style);
// The steps alone, "7 2 1 7 5": the running values, zero-padded to the widest term's width so that
// a step is as wide as a question term (which is what makes the step style easy for a small model).
std::string reduction_steps(const DigitChain& chain);
// A bare worked example outside any chat, "7 5 3 8 2\n7 2 1 7 5":
// pretraining text that teaches the step skill without making the chat model prefer the step style.
std::string worked_example(const DigitChain& chain);
// The first step of the step-style solution, "7" for 7 5 3 ...: a prompt ending with it forces
// that style.
std::string first_step_prefix(const DigitChain& chain);

TaskSplit split_of(const DigitChain& chain, const DigitChainsOptions& options);

// An endless seeded stream of problems of one split (repeats possible).
// Not thread-safe: next() and uniform() advance its stream; one owner. A plain value (owns its state).
class DigitChainSampler {
 public:
  DigitChainSampler(DigitChainsOptions options, TaskSplit split, uint64_t seed);
  DigitChain next();
  // A uniform draw in [0, n) from the same stream (style choices and the like).
  uint64_t uniform(uint64_t n);

 private:
  DigitChainsOptions options_;
  TaskSplit split_;
  uint64_t state_;
};

// n distinct problems of the split in draw order; deterministic for (options, split, n, seed).
// InputError when the split cannot supply n distinct problems within 100·n + 10000 draws.
std::vector<DigitChain> distinct_problems(const DigitChainsOptions& options, TaskSplit split, int64_t n, uint64_t seed);

}  // namespace grpo
