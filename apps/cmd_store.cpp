// `grpo store dump RUN [--step N] [--prompt ID] [--limit N] [--format text|jsonl]`: the groups of a
// run's experience store (store/experience_store.h), opened read-only so a running `grpo train` goes
// on undisturbed. Text shows invalid UTF-8 (a model's raw bytes) as U+FFFD, like jsonl.
#include <filesystem>
#include <iostream>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>

#include "common/cli.h"
#include "common/error.h"
#include "common/utf8.h"
#include "store/experience_store.h"
#include "train/weight_version.h"

namespace {
namespace fs = std::filesystem;
using nlohmann::json;

// RUN is a run directory (its store/ is read) or the store itself.
std::string store_dir_of(const std::string& run) {
  std::error_code ec;
  if (!fs::is_directory(run, ec))
    throw grpo::InputError("store dump: '" + run + "' is not a directory (expected a run's out_dir or its store/)");
  if (fs::is_directory(fs::path(run) / "store", ec)) return (fs::path(run) / "store").string();
  if (!fs::exists(fs::path(run) / "CURRENT", ec))
    throw grpo::InputError("store dump: '" + run +
                           "' is neither a run directory (no store/ in it) nor an experience store");
  return run;
}

json version_json(int64_t v) {
  return {{"value", v}, {"run_epoch", grpo::version_epoch(v)}, {"step", grpo::version_step(v)}};
}

json group_json(const grpo::GroupKey& key, const grpo::ScoredGroup& g) {
  json completions = json::array();
  for (const grpo::Completion& c : g.completions)
    completions.push_back({{"text", c.text},
                           {"reward", c.reward},
                           {"reward_components", c.reward_components},
                           {"reason", c.reward_reason},
                           {"correct", c.correct},
                           {"finish_reason", grpo::rollout::finish_reason_name(c.finish_reason)},
                           {"tokens", c.token_ids.size()},
                           {"weight_version", version_json(c.weight_version)},
                           {"finished_us", c.finished_us}});
  return {{"step", key.step},           {"seq", key.seq},           {"run_id", g.run_id},
          {"prompt_id", g.prompt_id},   {"prompt", g.prompt_text},  {"reference", g.reference_answer},
          {"created_us", g.created_us}, {"scored_us", g.scored_us}, {"completions", completions}};
}

void print_text(std::ostream& out, const grpo::GroupKey& key, const grpo::ScoredGroup& g) {
  out << "== step " << key.step << " · prompt " << g.prompt_id << " · seq " << key.seq << " · reference "
      << grpo::utf8::sanitize(g.reference_answer) << "\n"
      << grpo::utf8::sanitize(g.prompt_text) << "\n";
  for (size_t i = 0; i < g.completions.size(); ++i) {
    const grpo::Completion& c = g.completions[i];
    out << "-- completion " << i << ": reward " << c.reward;
    for (const auto& [name, value] : c.reward_components) out << " " << name << "=" << value;
    out << (c.correct ? " correct" : " wrong") << " (" << grpo::utf8::sanitize(c.reward_reason) << "), "
        << grpo::rollout::finish_reason_name(c.finish_reason) << ", " << c.token_ids.size() << " tokens, version "
        << grpo::describe_version(c.weight_version) << "\n"
        << grpo::utf8::sanitize(c.text) << "\n";
  }
}

int run_store(const grpo::Args& a) {
  const auto& pos = a.positional();
  if (pos.size() != 2 || pos[0] != "dump")
    throw grpo::InputError("store: expected 'grpo store dump RUN' (RUN: a run's out_dir or its store/)");
  const std::string format = a.get("format");
  if (format != "text" && format != "jsonl")
    throw grpo::InputError("--format: expected text or jsonl, got \"" + format + "\"");
  int64_t from = 0, to = std::numeric_limits<int64_t>::max();
  if (a.has("step")) from = to = a.get_int64("step", 0);
  const int64_t limit = a.has("limit") ? a.get_int64("limit", 1) : std::numeric_limits<int64_t>::max();
  const std::string dir = store_dir_of(pos[1]);
  auto store = grpo::ExperienceStore::open(dir, {.create_if_missing = false, .read_only = true});
  if (a.has("step") && from > store->last_step())
    throw grpo::InputError("--step " + std::to_string(from) + ": the store '" + dir + "' has steps 0.." +
                           std::to_string(store->last_step()));

  int64_t shown = 0;
  const grpo::ScanResult r = store->scan(from, to, [&](const grpo::GroupKey& key, const grpo::ScoredGroup& g) {
    if (a.has("prompt") && g.prompt_id != a.get("prompt")) return true;
    ++shown;
    if (format == "jsonl")
      std::cout << group_json(key, g).dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
    else
      print_text(std::cout, key, g);
    return shown < limit;  // false stops the scan
  });
  std::cout.flush();
  std::cerr << "store dump: " << shown << " group(s) from " << dir << " (" << store->count() << " stored, steps 0.."
            << store->last_step() << ")";
  if (r.skipped)
    std::cerr << "; skipped " << r.skipped << " corrupt record(s), first: " << r.corruptions[0].key << ": "
              << r.corruptions[0].reason;
  std::cerr << std::endl;
  if (shown == 0 && a.has("prompt"))
    throw grpo::InputError("--prompt " + a.get("prompt") + ": no group of that prompt" +
                           (a.has("step") ? " at step " + a.get("step") : std::string()));
  return 0;
}

}  // namespace

GRPO_COMMAND("store",
             "Print the groups of a run's experience store: prompts, completions, rewards, verifier reasons, versions "
             "(read-only: safe beside a running train)",
             "dump RUN",
             ({{"step", "N", "only the groups of step N", false},
               {"prompt", "ID", "only the groups of prompt ID", false},
               {"limit", "N", "at most N groups (the first ones; N >= 1)", false},
               {"format", "F", "text (for people) or jsonl (one group per line)", false, "text"}}),
             run_store, 2);
