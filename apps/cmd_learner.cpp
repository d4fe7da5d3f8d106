// `grpo learner --config FILE [--nproc N] [key.path=value ...]`: expert-parallel training, launched
// the way torchrun launches PyTorch jobs (learner/distributed.h, learner/expert_parallel.h).
//
// As a launcher (RANK not set): starts --nproc local ranks of this same command, each with RANK =
// node_rank·nproc + i, LOCAL_RANK = i, LOCAL_WORLD_SIZE = nproc, WORLD_SIZE = nnodes·nproc,
// MASTER_ADDR and MASTER_PORT set, and waits for them. When one rank fails, the others stop on
// their own within --timeout (their next collective fails, naming the cause); the launcher names
// the first rank that failed and exits 1. Multi-host: one launcher per host with --nnodes and
// --node-rank (Slurm: --node-rank $SLURM_NODEID; Kubernetes: the pod's completion index), or a
// scheduler that starts every rank itself with RANK/WORLD_SIZE/... set (docs/cluster.md).
//
// As a rank (RANK set): rendezvous on MASTER_ADDR:MASTER_PORT, then the job. The first learner
// job is the config's `pretrain:` section (next-token training, learner/pretrain.h) with routed
// experts sharded over the ranks; rank 0 prints the summary line
//   {"steps": ..., "first_loss": ..., "final_loss": ..., "world_size": 4, "all_to_all_bytes": ...,
//    "optimizer_state_bytes": [bytes of AdamW moments, per rank]}
// With a `publish:` section (train/ep_publisher.h; builds with services only), the ranks stream
// the weights to rollout workers every publish.every steps and after the last, each rank its own
// experts, as version = steps done; rank 0 logs the sync time and every rank's bytes.
//
// With --job grpo (or a config with train:/trainer: and no pretrain: section), the job is a GRPO
// run (`grpo train`'s config, train/controller.h):
// rank 0 runs the loop's services, store, metrics and evaluation, every rank trains its experts
// on rank 0's groups and streams them to the rollout workers; rank 0 prints
//   {"steps_done": ..., "start_step": ..., "world_size": ..., "last_eval_accuracy": ..., ...}
// (services builds only).
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "common/cli.h"
#include "common/config.h"
#include "common/error.h"
#include "learner/distributed.h"
#include "learner/pretrain.h"
#include "model/runtime.h"
#ifdef GRPO_SERVICES
#include "learner/trainer.h"
#include "train/controller.h"
#include "train/ep_publisher.h"
#include "train/run_config.h"
#endif

namespace {

// This process's own command line (to start the ranks with it).
std::vector<std::string> own_argv() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::vector<std::string> argv;
  for (std::string a; std::getline(in, a, '\0');) argv.push_back(a);
  return argv;
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("was killed by signal ") + strsignal(WTERMSIG(status));
  return "stopped";
}

int launch(const grpo::Args& args, int nproc) {
  const int nnodes = args.get_int("nnodes"), node_rank = args.get_int("node-rank");
  const int port = args.get_int("master-port"), timeout_s = args.get_int("timeout");
  if (nproc < 1) throw grpo::InputError("--nproc: expected an integer >= 1");
  if (nnodes < 1) throw grpo::InputError("--nnodes: expected an integer >= 1");
  if (node_rank < 0 || node_rank >= nnodes)
    throw grpo::InputError("--node-rank: " + std::to_string(node_rank) +
                           " outside [0, --nnodes=" + std::to_string(nnodes) + ")");
  const std::vector<std::string> argv = own_argv();
  const int world = nnodes * nproc;
  std::map<pid_t, int> ranks;  // pid -> rank
  for (int i = 0; i < nproc; ++i) {
    const int rank = node_rank * nproc + i;
    const std::map<std::string, std::string> env{{"RANK", std::to_string(rank)},
                                                 {"LOCAL_RANK", std::to_string(i)},
                                                 {"LOCAL_WORLD_SIZE", std::to_string(nproc)},
                                                 {"WORLD_SIZE", std::to_string(world)},
                                                 {"MASTER_ADDR", args.get("master-addr")},
                                                 {"MASTER_PORT", std::to_string(port)}};
    // Everything the child needs is built before fork: after it, only async-signal-safe calls.
    std::vector<std::string> env_strings;
    for (char** e = environ; *e; ++e) {
      const std::string kv = *e;
      if (!env.count(kv.substr(0, kv.find('=')))) env_strings.push_back(kv);
    }
    for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
    std::vector<char*> cargv, cenv;
    for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
    for (const auto& e : env_strings) cenv.push_back(const_cast<char*>(e.c_str()));
    cargv.push_back(nullptr);
    cenv.push_back(nullptr);
    std::cout.flush();
    std::cerr.flush();
    const pid_t pid = fork();
    if (pid < 0) throw std::runtime_error("learner: fork failed");
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGTERM);  // a rank does not outlive its launcher
      execve("/proc/self/exe", cargv.data(), cenv.data());
      _exit(127);
    }
    ranks[pid] = rank;
  }
  // Wait for all; after the first failure the others get the collective timeout (plus a margin)
  // to notice and exit on their own, then they are killed.
  int failed_rank = -1;
  std::string failure;
  auto deadline = std::chrono::steady_clock::time_point::max();
  while (!ranks.empty()) {
    int status = 0;
    const pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid > 0 && ranks.count(pid)) {
      const int rank = ranks[pid];
      ranks.erase(pid);
      if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0) && failed_rank < 0) {
        failed_rank = rank;
        failure = describe_status(status);
        std::cerr << "learner: rank " << rank << " (pid " << pid << ") " << failure << "; waiting up to "
                  << timeout_s + 10 << "s for the other ranks to stop\n";
        deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s + 10);
      }
      continue;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      for (const auto& [p, rank] : ranks) {
        std::cerr << "learner: rank " << rank << " (pid " << p << ") did not stop; killing it\n";
        kill(p, SIGKILL);
      }
      deadline = std::chrono::steady_clock::time_point::max();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (failed_rank >= 0) {
    std::cerr << "learner: failed: rank " << failed_rank << " " << failure << " (first failure of " << world
              << " ranks); rerun with pretrain.resume=true to continue from the last checkpoint\n";
    return 1;
  }
  return 0;
}

// The hook that publishes the weights as the config's `publish:` section says (none without the
// section); without `dist`, the section is only checked.
grpo::PretrainStepHook publish_hook(const grpo::Config& config, grpo::Distributed* dist, int64_t steps) {
  if (!config.has("publish")) return {};
#ifdef GRPO_SERVICES
  const grpo::EpPublishOptions options = grpo::EpPublishOptions::from_config(config.sub("publish"));
  return dist ? grpo::ep_publish_hook(options, *dist, steps) : grpo::PretrainStepHook();
#else
  (void)dist;
  (void)steps;
  throw grpo::InputError(config.where("publish") +
                         ": this grpo was built without services (GRPO_SERVICES=OFF), "
                         "so it cannot publish weights to rollout workers");
#endif
}

// The cores of this host shared by its ranks (LOCAL_WORLD_SIZE of them).
int threads_per_rank() {
  const char* local = std::getenv("LOCAL_WORLD_SIZE");
  const int per_host = local ? std::max(1, std::atoi(local)) : 1;
  return std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / per_host);
}

// Whether the job is the GRPO loop (`grpo train`'s config) rather than pretraining: --job, or with
// --job auto the config's sections (pretrain: vs train:/trainer:; both is ambiguous).
bool is_grpo_run(const grpo::Args& args, const grpo::Config& config) {
  const std::string job = args.get("job");
  if (job == "grpo") return true;
  if (job == "pretrain") return false;
  if (job != "auto") throw grpo::InputError("--job: expected auto, pretrain or grpo, got '" + job + "'");
  const bool pretrain = config.has("pretrain"), grpo_run = config.has("train") || config.has("trainer");
  if (pretrain && grpo_run)
    throw grpo::InputError(config.where("pretrain") +
                           ": the config has both a pretrain: and a train:/trainer: "
                           "section; choose the job with --job pretrain or --job grpo");
  return grpo_run;
}

// Checks a GRPO run config once, before any rank starts.
void check_grpo_run(const grpo::Config& config) {
#ifdef GRPO_SERVICES
  grpo::run_config_from(config);
  grpo::trainer_options_from_config(config.sub("trainer"));
#else
  throw grpo::InputError(config.where("pretrain") +
                         ": required (this grpo was built without services, "
                         "GRPO_SERVICES=OFF, so it runs pretraining jobs only)");
#endif
}

// One rank of the GRPO loop: rank 0 leads (services, store, metrics), every rank trains its experts.
int run_grpo_rank(const grpo::Args& args, const grpo::Config& config, const grpo::DistEnv& env) {
#ifdef GRPO_SERVICES
  grpo::Config run = config;
  if (run.get<int>("run.threads", 0) <= 0)  // unset: the cores shared by this host's ranks
    run.apply_override("run.threads=" + std::to_string(threads_per_rank()));
  grpo::Distributed dist(env, std::chrono::seconds(args.get_int("timeout")));
  const grpo::TrainSummary s =
      grpo::run_training(run, !args.flag("quiet"), {&dist, std::chrono::seconds(args.get_int("step-timeout"))});
  if (env.rank == 0) {
    nlohmann::json summary = {{"steps_done", s.steps_done},
                              {"start_step", s.start_step},
                              {"world_size", env.world_size},
                              {"out_dir", s.out_dir},
                              {"all_to_all_bytes", dist.all_to_all_bytes()}};
    if (s.first_eval_accuracy >= 0) summary["first_eval_accuracy"] = s.first_eval_accuracy;
    if (s.last_eval_accuracy >= 0) summary["last_eval_accuracy"] = s.last_eval_accuracy;
    std::cout << summary.dump() << std::endl;
  }
  return 0;
#else
  (void)args, (void)env;
  check_grpo_run(config);
  return 1;
#endif
}

int run_rank(const grpo::Args& args, const std::string& config_path) {
  const grpo::DistEnv env = grpo::DistEnv::from_env();
  const grpo::Config config = grpo::Config::load(config_path, args.overrides());
  if (is_grpo_run(args, config)) return run_grpo_rank(args, config, env);
  grpo::PretrainOptions options = grpo::PretrainOptions::from_config(config.sub("pretrain"));
  const int threads = options.train.threads > 0 ? options.train.threads : threads_per_rank();
  grpo::set_torch_threads(threads);
  grpo::Distributed dist(env, std::chrono::seconds(args.get_int("timeout")));
  if (env.rank == 0)
    std::cerr << "learner: " << env.world_size << " ranks, " << options.steps << " steps of "
              << options.train.batch_size << " sequences, " << threads << " threads a rank -> " << options.train.out_dir
              << "\n";
  const grpo::PretrainResult r =
      grpo::pretrain(options, !args.flag("quiet"), &dist, publish_hook(config, &dist, options.steps));
  if (env.rank == 0) {
    nlohmann::json summary = {{"steps", r.steps},
                              {"first_loss", r.first_loss},
                              {"final_loss", r.final_loss},
                              {"seconds", r.seconds},
                              {"tokens", r.tokens},
                              {"world_size", env.world_size},
                              {"all_to_all_bytes", dist.all_to_all_bytes()},
                              {"out_dir", options.train.out_dir},
                              {"optimizer_state_bytes", r.optimizer_state_bytes}};
    std::cout << summary.dump() << std::endl;
  }
  return 0;
}

int run_learner(const grpo::Args& args) {
  if (!args.has("config") && args.positional().empty())
    throw grpo::InputError("learner: give the run config (--config FILE or CONFIG)");
  const std::string config_path = args.has("config") ? args.get("config") : args.positional()[0];
  if (grpo::DistEnv::present()) {
    try {
      return run_rank(args, config_path);
    } catch (const grpo::DistributedError& e) {
      std::cerr << "learner: " << e.what() << "\n";
      return 1;
    }
  }
  // A bad config fails once, here, before any rank starts.
  const grpo::Config config = grpo::Config::load(config_path, args.overrides());
  if (is_grpo_run(args, config)) {
    check_grpo_run(config);
  } else {
    const grpo::PretrainOptions options = grpo::PretrainOptions::from_config(config.sub("pretrain"));
    publish_hook(config, nullptr, options.steps);
  }
  return launch(args, args.get_int("nproc"));
}

GRPO_COMMAND(
    "learner",
    "Expert-parallel training (pretraining or the GRPO loop) on N local ranks, or as one rank of a RANK/WORLD_SIZE job",
    "[CONFIG] [key.path=value ...]",
    ({{"config", "FILE",
       "run config YAML (or give CONFIG): a pretrain: section (next-token training, "
       "optionally publish:), or a GRPO run like `grpo train`'s",
       false},
      {"nproc", "N", "ranks to start on this host", false, "1"},
      {"nnodes", "M", "hosts in the job", false, "1"},
      {"node-rank", "K", "this host's number, 0..M-1 (its ranks are K·N .. K·N+N-1)", false, "0"},
      {"master-addr", "ADDR", "rank 0's host (the TCPStore rendezvous)", false, "127.0.0.1"},
      {"master-port", "PORT", "rendezvous port", false, "29500"},
      {"timeout", "SECONDS", "rendezvous and collective timeout: a dead or stuck rank fails the others after it", false,
       "120"},
      {"job", "JOB", "pretrain, grpo, or auto: the config's pretrain: or train:/trainer: section", false, "auto"},
      {"step-timeout", "SECONDS",
       "GRPO runs: how long ranks wait for rank 0's next step (it generates, scores, evaluates)", false, "3600"},
      {"quiet", "", "no progress line", false}}),
    run_learner);

}  // namespace
