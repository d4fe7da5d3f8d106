#include "distill/distill.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <thread>

#include "common/error.h"
#include "common/fs.h"
#include "common/progress.h"
#include "distill/export.h"
#include "http/address.h"
#include "http/monitor.h"
#include "model/pretrained.h"
#include "reward/client.h"
#include "rollout/model_tokenizer.h"
#include "store/experience_store.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "train/group_metrics.h"
#include "train/local_services.h"
#include "train/prompt_schedule.h"
#include "train/rollout_pool.h"
#include "train/sample_and_score.h"

namespace fs = std::filesystem;

namespace grpo {
namespace {

using Ordered = nlohmann::ordered_json;

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

Ordered filters_json(const DistillFilters& f) {
  return {{"correct_only", f.correct_only},
          {"min_reward", std::isfinite(f.min_reward) ? Ordered(f.min_reward) : Ordered(nullptr)},
          {"drop_truncated", f.drop_truncated},
          {"max_tokens", f.max_tokens},
          {"require_format", f.require_format},
          {"answer_tags", f.answer_tags},
          {"language", f.language},
          {"min_language_share", f.min_language_share},
          {"max_repetition", f.max_repetition},
          {"repetition_ngram", f.repetition_ngram},
          {"dedupe", f.dedupe},
          {"per_prompt_cap", f.per_prompt_cap}};
}

// A file's digest when it exists, else the name as given (a built-in template; harvest mode's
// tokenizer, which it never reads).
Ordered identity(const std::string& path) {
  return std::filesystem::is_regular_file(path) ? file_digest(path) : Ordered(path);
}

class Distiller {
 public:
  Distiller(const Config& config, const DistillRun& how)
      : config_(config), how_(how), o_(DistillOptions::from_config(config)) {}

  DistillSummary run() {
    const std::string http_address = http_address_from(config_);
    if (!http_address.empty()) http_ = std::make_unique<Monitor>(MonitorOptions{http_address, "", "distill"});
    at::set_num_threads(o_.run.run.threads);
    // Input that can fail is read before anything is written.
    template_ = ChatTemplate::load(o_.run.chat_template);
    if (!o_.run.model.path.empty()) teacher_id_ = checkpoint_digest(o_.run.model.path);
    std::unique_ptr<ExperienceStore> store;
    if (o_.harvest_store.empty()) {
      store = sample();
      if (stopped_by_) {  // the resume samples the rest and exports
        DistillSummary s;
        s.out_dir = o_.out_dir;
        s.counts = counts_;
        s.sampled_now = sampled_now_;
        s.stopped_by = stopped_by_;
        return s;
      }
    } else {
      store = ExperienceStore::open(o_.harvest_store, {.create_if_missing = false, .read_only = true});
      sampling_ = {{"harvested", true}};
      fs::create_directories(o_.out_dir);
    }
    if (http_) http_->set_ready(true);
    export_store(*store);
    DistillSummary s;
    s.out_dir = o_.out_dir;
    s.counts = counts_;
    s.sampled_now = sampled_now_;
    s.empty = counts_.accepted == 0;
    return s;
  }

 private:
  // ---- sample mode -------------------------------------------------------------------

  // Samples the prompts the store in out/ does not have yet (none with export_only); returns
  // the store.
  std::unique_ptr<ExperienceStore> sample() {
    PromptDatasetSpec spec = o_.run.data.train;
    spec.skip_bad = true;  // bad rows are skipped and counted on the card
    PromptDatasetReport report;
    std::vector<PromptItem> items = load_prompt_dataset(spec, &report);
    std::optional<Tokenizer> tokenizer;
    if (!how_.export_only) tokenizer = load_model_tokenizer(o_.run.model.path, o_.run.model.tokenizer, true);
    counts_.prompts = int64_t(items.size());
    counts_.dataset_rows_skipped = report.skipped;
    counts_.dataset_skip_examples = report.reasons;
    counts_.prompts_without_answers = report.missing_answer;
    sources_ = {{"dataset", file_digest(spec.path)}, {"store", (fs::path(o_.out_dir) / "store").string()}};
    sources_["dataset"]["format"] = spec.format;
    sources_["dataset"]["rows"] = report.rows;
    sampling_ = {{"samples_per_prompt", o_.run.rollout.group_size},
                 {"temperature", o_.run.rollout.sampling.sampling.temperature},
                 {"top_p", o_.run.rollout.sampling.sampling.top_p},
                 {"top_k", o_.run.rollout.sampling.sampling.top_k},
                 {"max_new_tokens", o_.run.rollout.sampling.max_new_tokens},
                 {"seed", o_.run.run.seed},
                 {"dtype", o_.run.rollout.dtype},
                 {"verifier", o_.run.reward.verifier},
                 {"verifier_options", o_.run.reward.options},
                 {"reward_config", o_.run.reward.config}};

    const std::string store_dir = (fs::path(o_.out_dir) / "store").string();
    if (how_.export_only && !fs::exists(store_dir))
      throw InputError(store_dir + ": no distillation store to export (run without --export-only first)");
    fs::create_directories(o_.out_dir);
    auto store = ExperienceStore::open(store_dir);
    std::set<std::string> done;
    store->scan(0, std::numeric_limits<int64_t>::max(), [&](const GroupKey&, const ScoredGroup& g) {
      done.insert(g.prompt_id);
      return true;
    });
    std::vector<size_t> todo;
    for (size_t i = 0; i < items.size(); ++i)
      if (!done.count(items[i].id)) todo.push_back(i);
    if (!how_.export_only && !todo.empty()) {
      std::cerr << "distill: sampling " << todo.size() << " of " << items.size() << " prompts x "
                << o_.run.rollout.group_size << " from " << o_.run.model.path << " (" << done.size() << " already in "
                << store_dir << ")" << std::endl;
      sample_into(*store, items, todo, *tokenizer);
    } else if (!todo.empty()) {
      std::cerr << "distill: --export-only: " << todo.size() << " prompts of the dataset are not in the store"
                << std::endl;
    }
    return store;
  }

  // Fails before any sampling when a verifier the prompts need is not registered at the service
  // (every verdict would be an error).
  void require_verifiers(const reward::RewardClient& reward, const std::vector<PromptItem>& items,
                         const std::vector<size_t>& todo) const {
    std::set<std::string> known;
    std::string list;
    for (const auto& v : reward.list_verifiers()) {
      known.insert(v.name());
      list += (list.empty() ? "" : ", ") + v.name();
    }
    for (size_t i : todo) {
      const bool own = !items[i].verifier.empty();
      const std::string& name = own ? items[i].verifier : o_.run.reward.verifier;
      if (!known.count(name))
        throw InputError((own ? "prompt " + items[i].id : config_.where("reward.verifier")) + ": unknown verifier '" +
                         name + "' at " + reward.address() + " (registered: " + list + ")");
    }
  }

  // Samples the prompts `todo` (indices into items, ascending), batch_prompts dataset positions
  // at a time, storing each batch's groups in one write.
  void sample_into(ExperienceStore& store, const std::vector<PromptItem>& items, const std::vector<size_t>& todo,
                   const Tokenizer& tokenizer) {
    LocalServices services(o_.run);
    RolloutPool rollouts(services.rollout_addresses(), o_.run.rollout.timeout_ms, o_.run.rollout.retries);
    ClientOptions ro;
    ro.timeout_ms = o_.run.reward.timeout_ms;
    ro.retries = o_.run.reward.retries;
    ro.backoff_ms = 200;
    ro.outage_window_ms = int64_t(o_.run.reward.outage_window_s * 1000);
    reward::RewardClient reward(services.reward_address(), ro);
    reward.health();  // fails early, with retries, when the reward service is unreachable
    require_verifiers(reward, items, todo);
    if (http_) http_->set_ready(true);

    Progress bar("distill", int64_t(todo.size()), how_.progress);
    SampleStats stats;
    int64_t samples = 0, accepted = 0;
    const bool opens_think = !think_opening(template_).empty();
    size_t next = 0;
    while (next < todo.size()) {
      if (how_.stop && how_.stop->received()) {
        stopped_by_ = how_.stop->received();
        break;
      }
      // The batch: the not-yet-stored prompts of one block of batch_prompts dataset positions.
      const size_t block = todo[next] / size_t(o_.batch_prompts);
      std::vector<Prompt> prompts;
      std::vector<uint64_t> seeds;
      std::vector<int64_t> index;
      for (; next < todo.size() && todo[next] / size_t(o_.batch_prompts) == block; ++next) {
        prompts.push_back(prepare_prompt(items[todo[next]], template_, tokenizer));
        seeds.push_back(group_seed(o_.run.run.seed, 0, items[todo[next]].id));
        index.push_back(int64_t(todo[next]));
      }
      std::vector<const Prompt*> ptrs;
      ptrs.reserve(prompts.size());
      for (const auto& p : prompts) ptrs.push_back(&p);
      std::vector<ScoredGroup> groups = sample_and_score(o_.run, rollouts, reward, ptrs, seeds, 0, 0, o_.routes, stats);
      for (size_t i = 0; i < groups.size(); ++i) {
        groups[i].step = index[i];
        samples += int64_t(groups[i].completions.size());
        for (DistillVerdict v : filter_completions(groups[i].completions, o_.filters, opens_think))
          accepted += v == DistillVerdict::kAccepted;
      }
      store.put_batch(groups);  // durable before the next batch: a restart skips these prompts
      sampled_now_ += int64_t(groups.size());
      if (http_) show(groups, int64_t(todo.size()), samples, accepted);
      bar.advance(int64_t(groups.size()),
                  "samples=" + std::to_string(samples) + " accepted=" + std::to_string(accepted));
    }
    bar.finish("samples=" + std::to_string(samples) + " accepted=" + std::to_string(accepted));
  }

  // The live view (--http): progress, acceptance and the batch's groups for /samples.
  void show(const std::vector<ScoredGroup>& groups, int64_t prompts, int64_t samples, int64_t accepted) {
    LiveMetrics& m = http_->metrics();
    m.set("distill/prompts_sampled", double(sampled_now_), "prompts sampled by this run");
    m.set("distill/prompts_to_sample", double(prompts), "prompts this run samples");
    m.set("distill/samples", double(samples), "completions sampled by this run");
    m.set("distill/accepted", double(accepted), "of them, accepted by the filters");
    for (const auto& g : groups) http_->samples().add(sample_group(g));
  }

  // ---- export --------------------------------------------------------------------------

  // The store's groups in key order through the filters (groups of the same prompt id share one
  // PromptFilter), then the files. Only the accepted examples are held in memory.
  void export_store(const ExperienceStore& store) {
    const std::string opening = think_opening(template_);
    const std::string source = o_.harvest_store.empty() ? o_.run.data.train.path : o_.harvest_store;
    for (const DistillVerdict v : rejection_order()) counts_.rejected[verdict_name(v)] = 0;
    struct PromptState {
      std::optional<PromptFilter> filter;  // unset: the prompt is skipped (no answer, not the template's)
    };
    std::map<std::string, PromptState> prompts;
    std::set<std::string> runs;
    int64_t min_version = std::numeric_limits<int64_t>::max(), max_version = -1;
    std::vector<DistillExample> examples;
    ExperienceStore::Cursor cursor = store.cursor();
    while (cursor.next()) {
      const ScoredGroup& g = cursor.group();
      runs.insert(g.run_id);
      auto [it, first] = prompts.try_emplace(g.prompt_id);
      PromptState& state = it->second;
      const std::optional<std::string> user = user_message_of(template_, g.prompt_text);
      if (first) {
        if (g.reference_answer.find_first_not_of(" \t\r\n") == std::string::npos) {
          ++counts_.prompts_without_answers;
        } else if (!user) {
          ++counts_.prompts_not_in_template;
        } else {
          state.filter.emplace(o_.filters, !opening.empty());
          ++counts_.prompts_sampled;
        }
      }
      if (!state.filter || !user) continue;
      if (o_.routes) require_routes(g, config_.where("distill.routes") + " exports them from " + store.dir());
      for (const Completion& c : g.completions) {
        min_version = std::min(min_version, c.weight_version);
        max_version = std::max(max_version, c.weight_version);
        const int64_t index = state.filter->samples();
        const DistillVerdict v = state.filter->next(c);
        ++counts_.samples;
        counts_.reward_errors += c.reward_reason.rfind(kRewardErrorPrefix, 0) == 0;
        if (v != DistillVerdict::kAccepted) {
          ++counts_.rejected[verdict_name(v)];
          continue;
        }
        ++counts_.accepted;
        DistillExample e;
        e.id = g.prompt_id + "#" + std::to_string(index);
        e.source = source;
        e.user_message = *user;
        e.rendered_prompt = g.prompt_text;
        e.prompt_token_ids = g.prompt_token_ids;
        e.completion = c.text;
        e.completion_token_ids = c.token_ids;
        e.reward = c.reward;
        if (o_.routes) e.routes = c.routes;
        examples.push_back(std::move(e));
      }
    }
    counts_.corrupt_records = cursor.skipped();
    for (const auto& c : cursor.corruptions())
      if (counts_.corrupt_examples.size() < 5)
        counts_.corrupt_examples.push_back(store.dir() + " " + c.key + ": " + c.reason);
    for (const auto& [id, state] : prompts)
      counts_.prompts_with_zero_accepted += state.filter && state.filter->accepted() == 0;
    if (!o_.harvest_store.empty()) {
      counts_.prompts = int64_t(prompts.size());
      sources_ = {{"store", {{"path", o_.harvest_store}, {"groups", store.count()}, {"runs", runs}}}};
      sampling_["weight_versions"] = max_version < 0 ? Ordered(nullptr) : Ordered::array({min_version, max_version});
    }

    std::vector<TeacherTopK> teacher;
    if (o_.topk_logprobs > 0 && !examples.empty()) {
      if (o_.run.model.path.empty())
        throw InputError(config_.where("distill.topk_logprobs") + ": the teacher's log-probs need model.path");
      ModelOptions teacher_options = ModelOptions::for_dtype("fp32");
      teacher_options.device = o_.run.run.device;  // run.device, as the run's rollouts
      const std::unique_ptr<CausalLM> model = load_causal_lm(o_.run.model.path, teacher_options);
      Progress bar("teacher", int64_t(examples.size()), how_.progress);
      teacher = teacher_topk(*model, examples, o_.topk_logprobs, o_.topk_batch, &bar);
      bar.finish();
    }

    std::string lines, pairs;
    for (size_t i = 0; i < examples.size(); ++i) {
      lines += distill_line(examples[i], opening, teacher.empty() ? nullptr : &teacher[i]);
      pairs += pair_line(examples[i]);
    }
    Ordered filter_order = Ordered::array();
    for (const DistillVerdict v : rejection_order()) filter_order.push_back(verdict_name(v));
    Ordered card = {
        {"created", utc_now()},
        {"command", how_.command_line},
        {"mode", o_.harvest_store.empty() ? "sample" : "harvest"},
        {"empty", counts_.accepted == 0},
        {"files", {{"distill.jsonl", examples.size()}, {"pairs.jsonl", examples.size()}}},
        {"counts", counts_json(counts_)},
        {"filter_order", filter_order},
        {"sources", sources_},
        {"teacher",
         o_.run.model.path.empty() ? Ordered{{"note", "no model.path: the policy of the harvested run"}} : teacher_id_},
        {"sampling", sampling_},
        {"filters", filters_json(o_.filters)},
        {"tokenizer", identity(Tokenizer::json_path(o_.run.model.tokenizer))},
        {"template", identity(o_.run.chat_template)},
        {"topk_logprobs", o_.topk_logprobs}};
    const fs::path out(o_.out_dir);
    write_text_atomic((out / "distill.jsonl").string(), lines);
    write_text_atomic((out / "pairs.jsonl").string(), pairs);
    write_text_atomic((out / "dataset_card.json").string(), card.dump(2) + "\n");
    write_text_atomic((out / "dataset_card.md").string(), card_markdown(card));
  }

  const Config& config_;
  DistillRun how_;
  DistillOptions o_;
  ChatTemplate template_;
  DistillCounts counts_;
  Ordered sources_, sampling_, teacher_id_;
  int64_t sampled_now_ = 0;
  int stopped_by_ = 0;             // the stop signal that ended sampling (0: none)
  std::unique_ptr<Monitor> http_;  // the live view (--http); null when off
};

}  // namespace

DistillOptions DistillOptions::from_config(const Config& config) {
  DistillOptions o;
  const Config d = config.sub("distill");
  d.require_known(
      {"out", "batch_prompts", "per_prompt_cap", "topk_logprobs", "topk_batch", "routes", "filters", "harvest"});
  const Config harvest = d.sub("harvest");
  harvest.require_known({"store"});
  o.harvest_store = harvest.get_path("store");
  if (d.has("harvest") && o.harvest_store.empty())
    throw InputError(harvest.where("store") + ": required (the experience store to harvest, e.g. runs/x/store)");
  if (o.harvest_store.empty()) {
    o.run = sampling_config_from(config, {"train", "trainer", "pretrain", "distill", "http"});
  } else {
    // Harvest: no sampling, so only what names the output, the template and the (optional) teacher.
    config.require_known(
        {"run", "model", "template", "data", "reward", "rollout", "train", "trainer", "pretrain", "distill", "http"});
    o.run.run.name = config.get<std::string>("run.name", o.run.run.name);
    o.run.run.out_dir = config.get<std::string>("run.out_dir", "runs/" + o.run.run.name);
    o.run.run.threads = config.get<int>("run.threads", 0);
    if (o.run.run.threads <= 0) o.run.run.threads = int(std::max(1u, std::thread::hardware_concurrency()));
    o.run.model.path = config.get_path("model.path");
    o.run.model.tokenizer = config.get_path("model.tokenizer", o.run.model.path);
    o.run.chat_template = ChatTemplate::name_from_config(config, "template", o.run.chat_template);
  }
  o.out_dir = d.get<std::string>("out", (fs::path(o.run.run.out_dir) / "distill").string());
  o.batch_prompts = d.get<int64_t>("batch_prompts", o.batch_prompts);
  if (o.batch_prompts < 1) throw InputError(d.where("batch_prompts") + ": expected a positive integer");
  const int64_t cap = d.get<int64_t>("per_prompt_cap", 0);
  if (cap < 0) throw InputError(d.where("per_prompt_cap") + ": expected >= 0 (0 = no cap)");
  o.topk_logprobs = d.get<int64_t>("topk_logprobs", o.topk_logprobs);
  if (o.topk_logprobs < 0) throw InputError(d.where("topk_logprobs") + ": expected >= 0 (0 = off)");
  o.topk_batch = d.get<int64_t>("topk_batch", o.topk_batch);
  if (o.topk_batch < 1) throw InputError(d.where("topk_batch") + ": expected a positive integer");
  o.routes = d.get<bool>("routes", o.routes);
  o.filters = DistillFilters::from_config(d.sub("filters"), cap);
  if (!o.harvest_store.empty() && o.topk_logprobs > 0 && o.run.model.path.empty())
    throw InputError(d.where("topk_logprobs") + ": the teacher's log-probs need model.path");
  return o;
}

DistillSummary run_distill(const Config& config, const DistillRun& how) { return Distiller(config, how).run(); }

}  // namespace grpo
