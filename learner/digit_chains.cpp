#include "learner/digit_chains.h"

#include <algorithm>
#include <cstdlib>
#include <unordered_set>

#include "common/hash.h"

namespace grpo {
namespace {

uint64_t question_hash(const std::string& question) { return splitmix64(fnv1a(question)); }

}  // namespace

DigitChainsOptions DigitChainsOptions::from_config(const Config& config) {
  config.require_known({"min_terms", "max_terms", "min_term", "max_term", "heldout_every"});
  DigitChainsOptions o;
  o.min_terms = config.get<int>("min_terms", o.min_terms);
  o.max_terms = config.get<int>("max_terms", o.max_terms);
  o.min_term = config.get<int>("min_term", o.min_term);
  o.max_term = config.get<int>("max_term", o.max_term);
  o.heldout_every = config.get<int>("heldout_every", o.heldout_every);
  o.validate(config.where(""));
  return o;
}

void DigitChainsOptions::validate(const std::string& where) const {
  auto fail = [&](const std::string& what) { throw InputError(where + ": " + what); };
  if (min_terms < 2 || max_terms < min_terms || max_terms > 64)
    fail("min_terms/max_terms: expected 2 <= min_terms <= max_terms <= 64, got " + std::to_string(min_terms) + "/" +
         std::to_string(max_terms));
  if (min_term < 0 || max_term < min_term || max_term > 99)
    fail("min_term/max_term: expected 0 <= min_term <= max_term <= 99, got " + std::to_string(min_term) + "/" +
         std::to_string(max_term));
  if (heldout_every < 2) fail("heldout_every: expected an integer >= 2, got " + std::to_string(heldout_every));
}

TaskSplit parse_task_split(const std::string& name) {
  if (name == "train") return TaskSplit::kTrain;
  if (name == "heldout") return TaskSplit::kHeldout;
  throw InputError("unknown split \"" + name + "\" (expected train or heldout)");
}

const char* task_split_name(TaskSplit split) { return split == TaskSplit::kTrain ? "train" : "heldout"; }

std::string DigitChain::question() const {
  std::string q;
  for (size_t i = 0; i < terms.size(); ++i) q += (i ? " " : "") + std::to_string(terms[i]);
  return q;
}

std::vector<int64_t> DigitChain::running_values() const {
  std::vector<int64_t> values;
  for (size_t i = 0; i < terms.size(); ++i) values.push_back(i ? std::abs(values.back() - terms[i]) : terms[i]);
  return values;
}

int64_t DigitChain::answer() const { return terms.empty() ? 0 : running_values().back(); }

std::string reduction_steps(const DigitChain& chain) {
  // The running values, zero-padded to the widest term and space-separated ("7 2 1 7 5"): a step
  // is as wide as a question term, so the term a step uses sits at the same distance behind it in
  // every step, and the value before it just before it.
  size_t width = 1;
  for (int t : chain.terms) width = std::max(width, std::to_string(t).size());
  std::string out;
  for (int64_t v : chain.running_values()) {
    const std::string digits = std::to_string(v);
    out += (out.empty() ? "" : " ") + std::string(width - std::min(width, digits.size()), '0') + digits;
  }
  return out;
}

std::string solution(const DigitChain& chain, SolutionStyle style) {
  const std::string steps = style == SolutionStyle::kSteps ? reduction_steps(chain) : "";
  return steps + "</think><answer>" + std::to_string(chain.answer()) + "</answer>";
}

std::string worked_example(const DigitChain& chain) { return chain.question() + "\n" + reduction_steps(chain); }

std::string first_step_prefix(const DigitChain& chain) {
  if (chain.terms.empty()) throw InputError("first_step_prefix: a chain needs at least one term");
  const std::string steps = reduction_steps(chain);
  return steps.substr(0, steps.find(' '));
}

TaskSplit split_of(const DigitChain& chain, const DigitChainsOptions& options) {
  return question_hash(chain.question()) % static_cast<uint64_t>(options.heldout_every) == 0 ? TaskSplit::kHeldout
                                                                                             : TaskSplit::kTrain;
}

DigitChainSampler::DigitChainSampler(DigitChainsOptions options, TaskSplit split, uint64_t seed)
    : options_(options), split_(split), state_(seed) {
  options_.validate("digit chains");
}

uint64_t DigitChainSampler::uniform(uint64_t n) { return splitmix64_next(state_) % n; }

DigitChain DigitChainSampler::next() {
  const auto& o = options_;
  for (;;) {
    DigitChain c;
    const int k = o.min_terms + static_cast<int>(uniform(o.max_terms - o.min_terms + 1));
    for (int i = 0; i < k; ++i) c.terms.push_back(o.min_term + static_cast<int>(uniform(o.max_term - o.min_term + 1)));
    if (split_of(c, o) == split_) return c;
  }
}

std::vector<DigitChain> distinct_problems(const DigitChainsOptions& options, TaskSplit split, int64_t n,
                                          uint64_t seed) {
  if (n < 0) throw InputError("digit chains: the number of problems must be >= 0, got " + std::to_string(n));
  DigitChainSampler sampler(options, split, seed);
  std::unordered_set<std::string> seen;
  std::vector<DigitChain> out;
  const int64_t max_draws = 100 * n + 10000;
  for (int64_t draws = 0; static_cast<int64_t>(out.size()) < n; ++draws) {
    if (draws == max_draws)
      throw InputError("digit chains: only " + std::to_string(out.size()) + " distinct " + task_split_name(split) +
                       " problems found in " + std::to_string(max_draws) + " draws, " + std::to_string(n) +
                       " asked (widen min_terms..max_terms or min_term..max_term)");
    DigitChain c = sampler.next();
    if (seen.insert(c.question()).second) out.push_back(std::move(c));
  }
  return out;
}

}  // namespace grpo
