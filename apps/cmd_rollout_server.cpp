// `grpo rollout-server`: serves RolloutService (proto/rollout.proto) for one model until
// SIGINT/SIGTERM. Settings: defaults < --config YAML (configs/rollout.yaml documents the keys)
// < key.path=value overrides < the explicit flags below.
#include <cstring>
#include <iostream>
#include <optional>

#include "common/cli.h"
#include "common/host_port.h"
#include "common/stop_signals.h"
#include "model/pretrained.h"
#include "model/runtime.h"
#include "rollout/service/server.h"
#include "tokenizer/tokenizer.h"

namespace {

int run_rollout_server(const grpo::Args& a) {
  using namespace grpo::rollout;
  const int64_t version = a.get_int64("version", 0);
  grpo::StopSignals stop;  // before any thread starts

  grpo::Config config = grpo::config_from_args(a);
  config.require_known({"server", "engine"});
  ServerOptions options = server_options_from_config(config.sub("server"));
  EngineOptions eo = engine_options_from_config(config.sub("engine"));
  if (a.has("address")) grpo::check_port(options.address = a.get("address"), "--address", 0);
  if (a.has("max-seqs")) eo.max_seqs = a.get_int("max-seqs", 1);
  if (a.has("max-batched-tokens")) eo.max_batched_tokens = a.get_int("max-batched-tokens", 1);
  if (a.has("page-size")) eo.page_size = a.get_int("page-size", 1);
  if (a.has("num-pages")) eo.num_pages = a.get_int("num-pages", 1);
  if (grpo::dry_run(a)) {
    std::cout << config.dump() << "\n";
    return 0;
  }
  const int threads = grpo::set_torch_threads(a.get_int("threads", 0));

  std::optional<grpo::Tokenizer> tok;
  if (a.has("tokenizer")) tok = grpo::Tokenizer::load(a.get("tokenizer"));
  std::shared_ptr<const grpo::CausalLM> model =
      grpo::load_causal_lm(a.get("model"), grpo::ModelOptions::for_dtype(a.get("dtype")));
  auto engine = std::make_shared<Engine>(model, version, eo, tok ? &*tok : nullptr);
  model.reset();  // the engine holds it (and drops it at the first weight update)
  RolloutServer server(engine, options);
  server.start();
  std::cout << "rollout-server listening on " << server.address() << " (" << a.get("model") << ", " << a.get("dtype")
            << ", version " << version << ", " << threads << " threads)" << std::endl;

  const int sig = stop.wait("rollout-server");
  std::cerr << "rollout-server: " << strsignal(sig) << ", shutting down (grace " << options.shutdown_grace_ms
            << " ms; a second signal exits at once)" << std::endl;
  server.shutdown();
  const grpo::rollout::v1::StatusResponse s = server.status();
  std::cerr << "rollout-server: stopped after " << s.completions() << " completions, " << s.generated_tokens()
            << " tokens, " << s.weight_updates() << " weight updates" << std::endl;
  return 0;
}

}  // namespace

GRPO_COMMAND("rollout-server", "serve a model's rollouts over gRPC (RolloutService) until SIGINT/SIGTERM",
             "[CONFIG] [key.path=value ...]",
             ({{"model", "DIR", "HF checkpoint directory (config.json + safetensors)", true},
               {"tokenizer", "PATH", "tokenizer.json or its directory (completion text, stop strings)", false},
               {"dtype", "TYPE", "fp32, bf16 or fp8 (FP8 weights, bf16 compute)", false, "fp32"},
               {"version", "N", "weight version of the checkpoint", false, "0"},
               {"address", "HOST:PORT", "listen address (port 0: a free port); overrides server.address", false},
               {"threads", "N", "intra-op threads (0 = all cores)", false, "0"},
               {"max-seqs", "N", "sequences decoded together (engine.max_seqs)", false},
               {"max-batched-tokens", "N", "tokens fed per engine step (engine.max_batched_tokens)", false},
               {"page-size", "N", "latent cache page size in tokens (engine.page_size)", false},
               {"num-pages", "N", "latent cache pages (engine.num_pages)", false},
               {"config", "PATH", "rollout config (or CONFIG; configs/rollout.yaml documents the keys)", false},
               {"dry-run", "", "check the config and the flags, print the config and exit", false}}),
             run_rollout_server);
