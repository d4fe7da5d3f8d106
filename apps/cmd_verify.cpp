// `grpo verify`: score JSONL completions on stdin with a verifier, in-process or through a reward
// server; the line formats are reward/verify_jsonl.h's.
#include <iostream>

#include "common/cli.h"
#include "common/config.h"
#include "common/error.h"
#include "common/json_parse.h"
#include "reward/scorer.h"
#include "reward/verify_jsonl.h"

namespace {

using nlohmann::json;

// Local: the registry of --config (or the built-in defaults) with key=value overrides. Remote: the
// server's verifiers and limits.
grpo::reward::Scorer make_scorer(const grpo::Args& a) {
  if (a.has("server")) {
    if (a.has("config")) throw grpo::InputError("--config and --server: the server uses its own config");
    if (!a.overrides().empty())
      throw grpo::InputError("override '" + a.overrides()[0] + "': --server scores with the server's own config");
    return grpo::reward::Scorer::remote(a.get("server"), a.get_int("timeout-ms", 1));
  }
  return grpo::reward::Scorer::local(grpo::config_from_args(a));
}

int run_verify(const grpo::Args& a) {
  grpo::reward::VerifyJsonlOptions o;
  o.verifier = a.get("verifier");
  if (a.has("options")) {
    o.options = grpo::parse_json(a.get("options"), "--options");
    if (!o.options.is_object()) throw grpo::InputError("--options: expected a JSON object");
  }
  o.batch = a.get_int("batch", 1);
  const int64_t failed = grpo::reward::verify_jsonl(make_scorer(a), o, std::cin, std::cout);
  if (failed) std::cerr << "grpo verify: " << failed << " line(s) could not be scored\n";
  return failed ? 1 : 0;
}

}  // namespace

GRPO_COMMAND("verify",
             "score JSONL completions on stdin with a verifier (in-process or via --server); one JSON line out "
             "per line in, an {\"error\"} line for a line that cannot be scored (then exit status 1)",
             "[key.path=value ...] < in.jsonl > out.jsonl",
             ({{"verifier", "NAME", "verifier to use: format, language, overlong, a composite, a remote, ...", true},
               {"config", "PATH", "reward config for the in-process registry (configs/reward.yaml)", false},
               {"server", "ADDR", "score through the reward server at host:port instead", false},
               {"options", "JSON", "verifier options for every line (a line's \"options\" override them)", false},
               {"batch", "N", "lines per ScoreBatch call with --server", false, "64"},
               {"timeout-ms", "N", "deadline of each call with --server", false, "60000"}}),
             run_verify);
