// The last few scored groups of a training run, served at /samples: prompts, completions, rewards
// and the verifiers' reasons, as an HTML page (every text HTML-escaped, metrics/svg_plot.h) or JSON.
#pragma once
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

namespace grpo {

struct SampleCompletion {
  std::string text;
  double reward = 0;
  bool correct = false;
  std::string reason;  // the verifier's verdict
};

struct SampleGroup {
  int64_t step = 0;
  std::string prompt_id, prompt, reference;
  std::vector<SampleCompletion> completions;
};

// Thread-safety: every method may be called from any thread.
class RecentSamples {
 public:
  explicit RecentSamples(size_t capacity = 8) : capacity_(capacity) {}

  // Adds a group; the oldest goes when more than `capacity` are held.
  void add(SampleGroup group);
  // The groups held, newest first, as a page titled `title`.
  std::string html(const std::string& title) const;
  // The groups held, newest first: {"groups": [{"step", "prompt_id", "prompt", "reference",
  // "completions": [{"text", "reward", "correct", "reason"}]}]}. Invalid UTF-8 is replaced (U+FFFD).
  std::string json() const;

 private:
  size_t capacity_;
  mutable std::mutex mu_;
  std::deque<SampleGroup> groups_;  // newest first
};

}  // namespace grpo
