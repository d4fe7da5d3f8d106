// bench_ep [STEPS] [GAMMA] [OUT_JSON]: expert-parallel training (`grpo learner`, learner/expert_parallel.h)
// on bench/configs/dsv3-small.json (16 routed experts, top-4), next-token loss on the digit-chains
// task, batch 8 × up to 96 tokens, on EP = 1, 2 and 4 local ranks (processes, Gloo over loopback;
// the machine's cores split among the ranks). Per EP size: the learner step time beside EP=1's
// (the ratio), the all-to-all bytes a rank sends per step, and the expert load balance (max/mean
// tokens per expert, averaged over the MoE layers and the last half of the steps) with the
// aux-loss-free bias update (γ = GAMMA) and without it (γ = 0). Then the GRPO loop
// (`grpo learner --job grpo`, train/controller.h) from the EP=1 run's checkpoint, on EP = 1, 2 and
// 4: the trainer step's time (`time/train`, 16 prompts × 4 samples of up to 24 tokens, beside
// EP=1's) and its all-to-all bytes; generation on rank 0's in-process worker is not counted.
// Defaults: 12 steps, γ = 0.01, bench/results/ep.json. Each run is one measurement (no best-of: a
// run is many steps); the machine's load average is printed beside the table (shared cores make
// the times rough).
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "bench/bench_util.h"

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

const std::string kSource = GRPO_SOURCE_DIR;

// Runs `grpo learner` and returns its summary line plus the metrics of every step.
json run_learner(const fs::path& dir, int ranks, int steps, double gamma, int port) {
  const fs::path out = dir / ("ep" + std::to_string(ranks) + "_g" + std::to_string(gamma));
  std::ostringstream cmd;
  cmd << GRPO_BINARY << " learner --quiet --config " << (dir / "run.yaml").string() << " --nproc " << ranks
      << " --master-port " << port << " pretrain.steps=" << steps << " pretrain.bias_update_speed=" << gamma
      << " pretrain.threads=" << std::max(1u, std::thread::hardware_concurrency() / ranks)
      << " pretrain.out_dir=" << out.string() << " 2>" << (dir / "stderr.txt").string();
  FILE* p = popen(cmd.str().c_str(), "r");
  std::string line;
  for (int c; p && (c = fgetc(p)) != EOF;) line += static_cast<char>(c);
  if (!p || pclose(p) != 0) throw std::runtime_error("failed: " + cmd.str() + "\n" + line);
  json r = json::parse(line);
  std::ifstream in(out / "logs" / "metrics.jsonl");
  for (std::string l; std::getline(in, l);)
    if (!l.empty()) r["metrics"].push_back(json::parse(l));
  return r;
}

// Runs the GRPO loop of `dir`/grpo.yaml on `ranks` ranks for `steps` steps: its summary line plus
// the metrics of every trained step.
json run_grpo_learner(const fs::path& dir, int ranks, int steps, int port) {
  const fs::path out = dir / ("grpo" + std::to_string(ranks));
  std::ostringstream cmd;
  cmd << GRPO_BINARY << " learner --quiet --job grpo --config " << (dir / "grpo.yaml").string() << " --nproc " << ranks
      << " --master-port " << port << " train.steps=" << steps << " run.out_dir=" << out.string() << " 2>"
      << (dir / "stderr.txt").string();
  FILE* p = popen(cmd.str().c_str(), "r");
  std::string line;
  for (int c; p && (c = fgetc(p)) != EOF;) line += static_cast<char>(c);
  if (!p || pclose(p) != 0) throw std::runtime_error("failed: " + cmd.str() + "\n" + line);
  json r = json::parse(line);
  std::ifstream in(out / "metrics.jsonl");
  for (std::string l; std::getline(in, l);)
    if (!l.empty() && l.find("\"time/train\"") != std::string::npos) r["metrics"].push_back(json::parse(l));
  return r;
}

// Mean of `key` over the steps after the first (the first pays for warm-up).
double mean_after_first(const json& r, const std::string& key) {
  const auto& m = r["metrics"];
  double sum = 0;
  for (size_t s = 1; s < m.size(); ++s) sum += m[s][key].get<double>();
  return m.size() > 1 ? sum / double(m.size() - 1) : 0;
}

// Mean of moe/layer*/load_max_over_mean over the layers and the last half of the steps.
double load_balance(const json& r) {
  const auto& m = r["metrics"];
  double sum = 0;
  int n = 0;
  for (size_t s = m.size() / 2; s < m.size(); ++s)
    for (const auto& [key, v] : m[s].items())
      if (key.find("load_max_over_mean") != std::string::npos) sum += v.get<double>(), ++n;
  return n ? sum / n : 0;
}

}  // namespace

int main(int argc, char** argv) {
  const int steps = argc > 1 ? std::stoi(argv[1]) : 12;
  const double gamma = argc > 2 ? std::stod(argv[2]) : 0.01;
  const std::string out_json = argc > 3 ? argv[3] : kSource + "/bench/results/ep.json";
  const fs::path dir = fs::temp_directory_path() / ("grpo_bench_ep_" + std::to_string(getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "run.yaml") << "pretrain:\n"
                                     "  model: "
                                  << kSource
                                  << "/bench/configs/dsv3-small.json\n"
                                     "  tokenizer: "
                                  << kSource
                                  << "/configs/tiny-zero/tokenizer.json\n"
                                     "  corpus: {task: digit_chains, template: "
                                  << kSource
                                  << "/configs/chat_templates/tiny-zero.yaml, step_fraction: 0.5}\n"
                                     "  seq_len: 96\n  batch_size: 8\n  seed: 1\n  log_every: 1\n"
                                     "  optim: {lr: 3.0e-3, warmup_steps: 2}\n";
  const double load_before = grpo::bench::load_average();
  json results = json::array();
  double base = 0;
  std::printf("%-4s %12s %10s %18s %14s %14s\n", "EP", "step s", "vs EP=1", "all-to-all MB/step", "load (bias)",
              "load (no bias)");
  int port = 29700 + static_cast<int>(getpid() % 1000);
  for (int ranks : {1, 2, 4}) {
    const json with_bias = run_learner(dir, ranks, steps, gamma, port++);
    const json without = run_learner(dir, ranks, steps, 0.0, port++);
    const double step_s = with_bias["seconds"].get<double>() / steps;
    if (ranks == 1) base = step_s;
    const double mb = with_bias["all_to_all_bytes"].get<double>() / steps / 1e6;
    std::printf("%-4d %12.3f %10.2f %18.3f %14.3f %14.3f\n", ranks, step_s, step_s / base, mb, load_balance(with_bias),
                load_balance(without));
    results.push_back({{"ep", ranks},
                       {"step_seconds", step_s},
                       {"ratio_vs_ep1", step_s / base},
                       {"all_to_all_mb_per_step_rank0", mb},
                       {"load_max_over_mean_bias", load_balance(with_bias)},
                       {"load_max_over_mean_no_bias", load_balance(without)},
                       {"final_loss", with_bias["final_loss"]}});
  }

  // The GRPO loop from the EP=1 pretraining run's checkpoint (it has the tokenizer).
  const int grpo_steps = std::max(3, steps / 3);
  std::ofstream(dir / "grpo.yaml")
      << "run: {name: bench-ep, seed: 1}\n"
         "model: {path: "
      << (dir / ("ep1_g" + std::to_string(gamma))).string()
      << "}\n"
         "template: "
      << kSource
      << "/configs/chat_templates/tiny-zero.yaml\n"
         "data:\n  train: {path: "
      << kSource
      << "/configs/tiny-zero/train.jsonl, prompt_field: prompt, answer_field: answer}\n"
         "reward: {config: "
      << kSource
      << "/configs/reward.yaml, verifier: r1, options: {format: {prompt_opens_think: true}}}\n"
         "rollout: {workers: 1, group_size: 4, sampling: {temperature: 1.0, max_new_tokens: 24}}\n"
         "train: {prompts_per_step: 16, checkpoint_every: 1000}\n"
         "trainer: {lr: 1.0e-5, micro_batch_size: 16, mini_batches: 1, bias_update_gamma: 0.001}\n";
  json grpo_runs = json::array();
  double grpo_base = 0;
  std::printf("\nGRPO learner step (%d steps, 16 prompts x 4)\n%-4s %12s %10s %18s\n", grpo_steps, "EP", "train s",
              "vs EP=1", "all-to-all MB/step");
  for (int ranks : {1, 2, 4}) {
    const json r = run_grpo_learner(dir, ranks, grpo_steps, port++);
    const double train_s = mean_after_first(r, "time/train");
    if (ranks == 1) grpo_base = train_s;
    const double mb = r["all_to_all_bytes"].get<double>() / grpo_steps / 1e6;
    std::printf("%-4d %12.3f %10.2f %18.3f\n", ranks, train_s, train_s / grpo_base, mb);
    grpo_runs.push_back({{"ep", ranks},
                         {"train_seconds", train_s},
                         {"ratio_vs_ep1", train_s / grpo_base},
                         {"all_to_all_mb_per_step_rank0", mb},
                         {"train_loss", r["metrics"].back()["train/loss"]}});
  }
  std::printf("load average %.2f -> %.2f, %u cores\n", load_before, grpo::bench::load_average(),
              std::thread::hardware_concurrency());
  fs::create_directories(fs::path(out_json).parent_path());
  std::ofstream(out_json)
      << json{{"steps", steps},  {"gamma", gamma},           {"config", "bench/configs/dsv3-small.json"},
              {"runs", results}, {"grpo_steps", grpo_steps}, {"grpo_runs", grpo_runs}}
             .dump(2)
      << "\n";
  fs::remove_all(dir);
  return 0;
}
