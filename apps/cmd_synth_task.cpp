// `grpo synth-task`: a prompt set of a synthetic task as JSONL, one problem a line:
//   {"id": "digit_chains/heldout/0", "prompt": "7 5 3 8 2", "answer": "5"}
// The prompt is the bare question (the run config's chat template renders it); problems are
// distinct and drawn from the requested split only (learner/digit_chains.h), deterministic for
// the seed. --out writes the file atomically; without it the lines go to stdout.
#include <iostream>

#include <nlohmann/json.hpp>

#include "common/cli.h"
#include "common/error.h"
#include "common/fs.h"
#include "learner/digit_chains.h"

namespace {

const grpo::DigitChainsOptions kDefaults;

int run_synth_task(const grpo::Args& args) {
  if (args.get("task") != "digit_chains")
    throw grpo::InputError("--task: unknown task \"" + args.get("task") + "\" (known: digit_chains)");
  grpo::DigitChainsOptions o;
  o.min_terms = args.get_int("min-terms");
  o.max_terms = args.get_int("max-terms");
  o.min_term = args.get_int("min-term");
  o.max_term = args.get_int("max-term");
  o.heldout_every = args.get_int("heldout-every");
  o.validate("grpo synth-task");
  const grpo::TaskSplit split = grpo::parse_task_split(args.get("split"));
  const int64_t seed = args.get_int64("seed", 0);

  std::string out;
  const auto problems = grpo::distinct_problems(o, split, args.get_int("n", 1), static_cast<uint64_t>(seed));
  for (size_t i = 0; i < problems.size(); ++i) {
    nlohmann::json j = {{"id", "digit_chains/" + std::string(grpo::task_split_name(split)) + "/" + std::to_string(i)},
                        {"prompt", problems[i].question()},
                        {"answer", std::to_string(problems[i].answer())}};
    out += j.dump() + "\n";
  }
  if (args.has("out")) {
    const std::string path = args.get("out");
    grpo::write_text_atomic(path, out);
    std::cerr << "wrote " << problems.size() << " " << grpo::task_split_name(split) << " problems to " << path << "\n";
  } else {
    std::cout << out;
  }
  return 0;
}

GRPO_COMMAND("synth-task", "Write a synthetic task's prompt set (train or held-out split) as JSONL", "",
             ({{"task", "NAME", "the task: digit_chains", true},
               {"split", "SPLIT", "train or heldout (disjoint by a hash of the question)", true},
               {"n", "N", "number of distinct problems", true},
               {"seed", "S", "sampling seed", false, "0"},
               {"out", "FILE", "write here (atomically) instead of stdout", false},
               {"min-terms", "K", "fewest numbers in a chain", false, std::to_string(kDefaults.min_terms)},
               {"max-terms", "K", "most numbers in a chain", false, std::to_string(kDefaults.max_terms)},
               {"min-term", "N", "smallest number", false, std::to_string(kDefaults.min_term)},
               {"max-term", "N", "largest number", false, std::to_string(kDefaults.max_term)},
               {"heldout-every", "M", "1 in M problems (by hash) is held out", false,
                std::to_string(kDefaults.heldout_every)}}),
             run_synth_task);

}  // namespace
