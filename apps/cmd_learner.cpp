// `grpo learner`: expert-parallel training. Without RANK set it launches --nproc ranks of this same
// command (learner/launcher.h); a rank runs the config's pretrain: job (learner/pretrain.h, publish:
// train/ep_publisher.h) or a GRPO run (train/ep_rank.h); rank 0 prints the job's summary JSON.
#include <chrono>
#include <iostream>

#include <nlohmann/json.hpp>

#include "apps/dtype_choice.h"
#include "apps/lm_dry_run.h"
#include "common/cli.h"
#include "common/config.h"
#include "common/error.h"
#include "http/address.h"
#include "learner/distributed.h"
#include "learner/launcher.h"
#include "learner/pretrain.h"
#ifdef GRPO_SERVICES
#include "train/ep_publisher.h"
#include "train/ep_rank.h"
#include "train/run_plan.h"
#endif

namespace {
const char* kNoServices = ": this grpo was built without services (GRPO_SERVICES=OFF), so it ";

// The publish: section's hook (none without it); without `dist` the section is only checked.
grpo::PretrainStepHook publish_hook(const grpo::Config& config, grpo::Distributed* dist, int64_t steps) {
  if (!config.has("publish")) return {};
#ifdef GRPO_SERVICES
  const grpo::EpPublishOptions options = grpo::EpPublishOptions::from_config(config.sub("publish"));
  return dist ? grpo::ep_publish_hook(options, *dist, steps) : grpo::PretrainStepHook();
#else
  (void)dist, (void)steps;
  throw grpo::InputError(config.where("publish") + kNoServices + "cannot publish weights to rollout workers");
#endif
}

bool is_grpo_run(const grpo::Args& args, const grpo::Config& config) {
  const bool grpo = grpo::is_grpo_job(args.get("job"), config);
#ifndef GRPO_SERVICES
  if (grpo) throw grpo::InputError(config.where("pretrain") + ": required" + kNoServices + "runs pretraining only");
#endif
  return grpo;
}

nlohmann::json run_rank(const grpo::Args& args, const grpo::Config& config, const grpo::DistEnv& env,
                        std::chrono::seconds timeout) {
  if (is_grpo_run(args, config)) {
#ifdef GRPO_SERVICES
    return grpo::run_grpo_rank(config, env, timeout, std::chrono::seconds(args.get_int("step-timeout", 1)),
                               !args.flag("quiet"));
#endif
  }
  grpo::PretrainOptions options = grpo::PretrainOptions::from_config(config.sub("pretrain"));
  options.train.http_address = grpo::http_address_from(config);  // served by rank 0
  return grpo::pretrain_rank(options, env, timeout, !args.flag("quiet"),
                             [&](grpo::Distributed& dist) { return publish_hook(config, &dist, options.steps); });
}

int run_learner(const grpo::Args& args) {
  const int timeout = args.get_int("timeout", 1);  // flags first: a bad one fails before any work
  const int nnodes = args.get_int("nnodes", 1);
  const grpo::LaunchOptions launch{args.get_int("nproc", 1),
                                   nnodes,
                                   args.get_int("node-rank", 0, nnodes - 1),
                                   args.get("master-addr"),
                                   args.get_int("master-port", 1, 65535),
                                   timeout};
  grpo::Config config = grpo::config_from_args(args, {true, ""});
  grpo::apply_http_flag(args, config);  // each rank parses the same arguments; rank 0 serves
  grpo::http_address_from(config);      // a bad address fails here, before any rank starts
  const bool grpo_run = is_grpo_run(args, config);
  if (!grpo::DistEnv::present())  // the launcher says it once; every rank resolves "auto" on its own CPU
    grpo::say_auto_dtypes(config, {"rollout.dtype", "trainer.dtype", "pretrain.dtype"}, "learner");
  if (args.has("threads"))  // the job's section: a GRPO run's run:, a pretraining job's pretrain:
    config.apply_override((grpo_run ? "run.threads=" : "pretrain.threads=") +
                          std::to_string(args.get_int("threads", 0, 4096)));
#ifdef GRPO_SERVICES
  if (grpo_run) config = grpo::resolve_run_config(config);
#endif
  if (grpo::dry_run(args)) {
#ifdef GRPO_SERVICES
    if (grpo_run) {
      std::cout << grpo::describe_run(config);
      return 0;
    }
#endif
    const grpo::PretrainOptions options = grpo::PretrainOptions::from_config(config.sub("pretrain"));
    publish_hook(config, nullptr, options.steps);
    std::cout << grpo::describe_lm_run(config, options.train, std::to_string(options.steps));
    return 0;
  }
  if (grpo::DistEnv::present()) {
    try {
      const nlohmann::json summary = run_rank(args, config, grpo::DistEnv::from_env(), std::chrono::seconds(timeout));
      if (!summary.is_null()) std::cout << summary.dump() << std::endl;
      return 0;
    } catch (const grpo::DistributedError& e) {
      std::cerr << "learner: " << e.what() << "\n";
      return 1;
    }
  }
  if (grpo_run) {  // a bad config fails once, here, before any rank starts
#ifdef GRPO_SERVICES
    grpo::check_grpo_run_config(config);
    grpo::check_resume_config(config, args.flag("allow-config-change"));
#endif
  } else {
    publish_hook(config, nullptr, grpo::PretrainOptions::from_config(config.sub("pretrain")).steps);
  }
  return grpo::launch_ranks(launch);
}

GRPO_COMMAND(
    "learner",
    "Expert-parallel training (pretraining or the GRPO loop) on N local ranks, or as one rank of a RANK/WORLD_SIZE job",
    "CONFIG [key.path=value ...]",
    ({{"config", "FILE", "run config (or CONFIG): a pretrain: job (+ publish:) or a `grpo train` run", false},
      {"nproc", "N", "ranks to start on this host", false, "1"},
      {"nnodes", "M", "hosts in the job", false, "1"},
      {"node-rank", "K", "this host's number, 0..M-1 (its ranks are K·N .. K·N+N-1)", false, "0"},
      {"master-addr", "ADDR", "rank 0's host (the TCPStore rendezvous)", false, "127.0.0.1"},
      {"master-port", "PORT", "rendezvous port", false, "29500"},
      {"timeout", "SECONDS", "rendezvous and collective timeout (a dead rank fails the others)", false, "120"},
      {"job", "JOB", "pretrain, grpo, or auto: the config's pretrain: or train:/trainer: section", false, "auto"},
      {"step-timeout", "SECONDS", "GRPO runs: how long ranks wait for rank 0's next step", false, "3600"},
      {"threads", "N", "intra-op threads a rank (run.threads or pretrain.threads; 0 = the cores / ranks)", false},
      grpo::dry_run_option(),
      grpo::print_config_option(),
      {"allow-config-change", "", "GRPO runs: resume a run whose saved config.yaml differs", false},
      {"quiet", "", "no progress line", false},
      grpo::http_option()}),
    run_learner);

}  // namespace
