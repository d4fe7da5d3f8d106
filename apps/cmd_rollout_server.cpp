// `grpo rollout-server`: serves RolloutService (proto/rollout.proto) for one model until
// SIGINT/SIGTERM; with --http also the live view (http/monitor.h): pages used, sequences running
// and queued, tokens/s, weight version (ready once the model is loaded and the server is up). Settings: defaults <
// --config YAML (configs/rollout.yaml documents the keys) < key.path=value overrides < the explicit flags below.
#include <cstring>
#include <iostream>
#include <optional>

#include "apps/device_choice.h"
#include "apps/dtype_choice.h"
#include "common/cli.h"
#include "common/host_port.h"
#include "common/stop_signals.h"
#include "http/address.h"
#include "http/monitor.h"
#include "model/pretrained.h"
#include "model/runtime.h"
#include "rollout/model_tokenizer.h"
#include "rollout/service/server.h"
#include "tokenizer/tokenizer.h"

namespace {

// The server's status, read at each scrape; tokens/s over the time since the previous scrape.
void watch_status(const grpo::rollout::RolloutServer& server, grpo::LiveMetrics& metrics) {
  metrics.on_scrape([&server, last_tokens = int64_t(0), last_ms = int64_t(0)](grpo::LiveMetrics& m) mutable {
    const grpo::rollout::v1::StatusResponse s = server.status();
    m.set("rollout_server/weight_version", double(s.weight_version()), "the weights serving now");
    m.set("rollout_server/pages_used", double(s.pages_used()), "latent cache pages in use");
    m.set("rollout_server/pages_total", double(s.pages_total()), "latent cache pages");
    m.set("rollout_server/sequences_running", double(s.running_sequences()), "sequences being decoded");
    m.set("rollout_server/sequences_waiting", double(s.waiting_sequences()), "sequences waiting for the engine");
    m.set("rollout_server/queued_requests", double(s.queued_requests()), "prompts not yet taken by the engine");
    m.set("rollout_server/generated_tokens", double(s.generated_tokens()), "tokens generated since start");
    m.set("rollout_server/completions", double(s.completions()), "completions since start");
    m.set("rollout_server/weight_updates", double(s.weight_updates()), "weight updates applied since start");
    m.set("rollout_server/preemptions", double(s.preemptions()), "sequences preempted since start");
    const int64_t dt_ms = s.uptime_ms() - last_ms;  // 0 at a scrape within a millisecond of the start
    m.set("rollout_server/tokens_per_s",
          dt_ms > 0 ? double(s.generated_tokens() - last_tokens) * 1000.0 / double(dt_ms) : 0.0,
          "tokens generated per second since the previous scrape");
    last_tokens = s.generated_tokens();
    last_ms = s.uptime_ms();
  });
}

int run_rollout_server(const grpo::Args& a) {
  using namespace grpo::rollout;
  const int64_t version = a.get_int64("version", 0);
  grpo::StopSignals stop;  // before any thread starts

  grpo::Config config = grpo::config_from_args(a);
  grpo::apply_http_flag(a, config);
  config.require_known({"server", "engine", "http"});
  const std::string http_address = grpo::http_address_from(config);
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
  const std::string dtype = grpo::dtype_flag(a, "rollout-server");
  grpo::ModelOptions mo = grpo::ModelOptions::for_dtype(dtype);
  mo.device = grpo::device_flag(a, "rollout-server");

  // Up before the model loads: /readyz answers 503 until the server serves.
  std::unique_ptr<grpo::Monitor> http;
  if (!http_address.empty())
    http = std::make_unique<grpo::Monitor>(grpo::MonitorOptions{http_address, "", "rollout-server"});
  const std::optional<grpo::Tokenizer> tok =  // --tokenizer, else the checkpoint's own (if any)
      grpo::load_model_tokenizer(a.get("model"), a.has("tokenizer") ? a.get("tokenizer") : "", false);
  std::shared_ptr<const grpo::CausalLM> model = grpo::load_causal_lm(a.get("model"), mo);
  auto engine = std::make_shared<Engine>(model, version, eo, tok ? &*tok : nullptr);
  model.reset();  // the engine holds it (and drops it at the first weight update)
  RolloutServer server(engine, options);
  server.start();
  if (http) {
    watch_status(server, http->metrics());
    http->set_ready(true);
  }
  std::cout << "rollout-server listening on " << server.address() << " (" << a.get("model") << ", " << dtype << " on "
            << grpo::device_name(mo.device) << ", version " << version << ", tokenizer "
            << (tok ? tok->path() : std::string("none")) << ", " << threads << " threads)" << std::endl;

  const int sig = stop.wait("rollout-server");
  std::cerr << "rollout-server: " << strsignal(sig) << ", shutting down (grace " << options.shutdown_grace_ms
            << " ms; a second signal exits at once)" << std::endl;
  if (http) http->set_ready(false);
  server.shutdown();
  http.reset();  // its scrapes read the server: it stops first
  const grpo::rollout::v1::StatusResponse s = server.status();
  std::cerr << "rollout-server: stopped after " << s.completions() << " completions, " << s.generated_tokens()
            << " tokens, " << s.weight_updates() << " weight updates" << std::endl;
  return 0;
}

}  // namespace

GRPO_COMMAND("rollout-server", "serve a model's rollouts over gRPC (RolloutService) until SIGINT/SIGTERM",
             "[CONFIG] [key.path=value ...]",
             ({{"model", "DIR", "HF checkpoint directory (config.json + safetensors)", true},
               {"tokenizer", "PATH",
                "tokenizer.json or its directory (default: the model's; completion text, stop strings)", false},
               {"dtype", "TYPE",
                "fp32, bf16, fp8 (FP8 weights, bf16 compute), or auto (bf16 where the CPU has native bf16 dot "
                "products, else fp32)",
                false, "fp32"},
               grpo::device_option(),
               {"version", "N", "weight version of the checkpoint", false, "0"},
               {"address", "HOST:PORT", "listen address (port 0: a free port); overrides server.address", false},
               {"threads", "N", "intra-op threads (0 = all cores)", false, "0"},
               {"max-seqs", "N", "sequences decoded together (engine.max_seqs)", false},
               {"max-batched-tokens", "N", "tokens fed per engine step (engine.max_batched_tokens)", false},
               {"page-size", "N", "latent cache page size in tokens (engine.page_size)", false},
               {"num-pages", "N", "latent cache pages (engine.num_pages)", false},
               {"config", "PATH", "rollout config (or CONFIG; configs/rollout.yaml documents the keys)", false},
               {"dry-run", "", "check the config and the flags, print the config and exit", false},
               grpo::http_option()}),
             run_rollout_server);
