// Rollout engine throughput on bench/configs/dsv3-small.json (random weights): decode and prefill
// tokens/s at 1, 8, 32 and 64 concurrent sequences, fp32, bf16 and FP8 weights, beside the naive
// baseline (no cache: a full forward over the whole sequence for every new token) in the same
// run; a group of 8 sharing a 128-token prompt against one sequence; latent-cache bytes per token
// against a standard MHA cache; the FP8-vs-bf16 log-prob gap, weight-only and W8A8 (activations
// in 1x128 e4m3 tiles). Prints a table and writes bench/results/rollout.json (run from the
// repository root).
//
//   ./build/bench/bench_rollout [--threads N] [--out FILE] [--quick] [--seqs 1,32] [--device cuda] [--fused-ab]
//
// --seqs: only these concurrency rows, and only the decode/prefill table (what
// bench/llamacpp/compare.sh runs beside llama.cpp).
// --fused-ab: only the fused decoder layer (model/fused_layer.h) against the op-by-op path it
// replaces, decode tokens/s per dtype at the --seqs rows (default 1 and 32), the two alternating
// three times, best of each, and their ratio; then the ATen operator calls per generated token of
// each path (a RecordFunction counter, nested calls included).
// --device: the models, the cache and the naive baseline on that device (model/device.h); off the
// CPU the FP8 column is left out (FP8 weights are CPU-only for now) and only the table runs.
//
// --threads defaults to 1: on a shared 2-core machine, intra-op parallel regions of 2 threads
// stall for milliseconds whenever another process holds a core (bf16 GEMMs went from ~40 µs to
// ~8 ms each in a microbenchmark here), which measures the neighbours, not the engine. The naive
// baseline and the engine always run with the same thread count.
#include <ATen/record_function.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <thread>

#include <nlohmann/json.hpp>

#include "bench/bench_models.h"
#include "bench/bench_util.h"
#include "model/deepseek.h"
#include "model/device.h"
#include "model/fused_layer.h"
#include "model/init.h"
#include "model/model_config.h"
#include "model/runtime.h"
#include "rollout/engine.h"

using namespace grpo;
using namespace grpo::rollout;
using nlohmann::json;
using namespace grpo::bench;

namespace {

struct EngineRun {
  double prefill_tps = 0, decode_tps = 0, prefill_s = 0, decode_s = 0;
  int64_t prefill_tokens = 0, decode_tokens = 0, peak_pages = 0;
};

// `requests` requests of `n` samples each; steps timed one by one and split into steps that fed
// a prompt (prefill) and pure decode steps.
EngineRun run_engine(const std::shared_ptr<const DeepseekModel>& model, int64_t requests, int64_t n, int64_t prompt_len,
                     int64_t new_tokens, bool same_prompt) {
  EngineOptions opt;
  opt.max_seqs = std::max<int64_t>(requests * n, 1);
  opt.max_batched_tokens = std::max<int64_t>(opt.max_seqs, requests * prompt_len);
  opt.num_pages = 4096;
  Engine engine(model, 0, opt);
  GenerationParams g;
  g.sampling = {1.0, 1.0, 0, 7};
  g.max_new_tokens = new_tokens;
  for (int64_t r = 0; r < requests; ++r)
    engine.submit({prompt_of(prompt_len, model->config().vocab_size, same_prompt ? 0 : r + 1), n, g});
  EngineRun out;
  bool more = true;
  while (more) {
    EngineStats before = engine.stats();
    auto t0 = Clock::now();
    more = engine.step();
    const double dt = seconds_since(t0);
    EngineStats after = engine.stats();
    if (after.prefill_tokens > before.prefill_tokens) {
      out.prefill_s += dt;
      out.prefill_tokens += after.prefill_tokens - before.prefill_tokens;
    } else {
      out.decode_s += dt;
      out.decode_tokens += after.decode_tokens - before.decode_tokens;
    }
  }
  out.peak_pages = engine.stats().peak_pages_used;
  engine.poll();
  out.prefill_tps = out.prefill_s > 0 ? out.prefill_tokens / out.prefill_s : 0;
  out.decode_tps = out.decode_s > 0 ? out.decode_tokens / out.decode_s : 0;
  return out;
}

// The naive baseline: every new token costs a full forward over prompt + generated tokens of all
// `batch` sequences (no cache); greedy. Returns generated tokens/s.
double run_naive(const DeepseekModel& model, int64_t batch, int64_t prompt_len, int64_t new_tokens) {
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> rows;
  for (int64_t b = 0; b < batch; ++b)
    rows.push_back(at::tensor(prompt_of(prompt_len, model.config().vocab_size, b + 1), at::kLong));
  at::Tensor ids = at::stack(rows);  // [B, T]
  auto t0 = Clock::now();
  for (int64_t i = 0; i < new_tokens; ++i) {
    at::Tensor logits = model.forward(ids);                          // [B, T, V]
    at::Tensor next = logits.select(1, ids.size(1) - 1).argmax(-1);  // [B]
    ids = at::cat({ids, next.to(ids.device()).unsqueeze(1)}, 1);
  }
  return batch * new_tokens / seconds_since(t0);
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  flags.out = "bench/results/rollout.json";
  // --seqs LIST is ours; the rest are the shared engine-bench flags.
  std::vector<int64_t> concurrency = {1, 8, 32, 64};
  bool table_only = false, fused_ab = false;
  at::Device device = at::kCPU;
  std::vector<char*> rest = {argv[0]};
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--device") == 0 && i + 1 < argc) {
      try {
        device = resolve_device(argv[++i], "--device").device;
      } catch (const std::exception& e) {
        std::cerr << "bench_rollout: " << e.what() << "\n";
        return 2;
      }
      table_only = table_only || !device.is_cpu();
    } else if (std::strcmp(argv[i], "--fused-ab") == 0) {
      fused_ab = true;
    } else if (std::strcmp(argv[i], "--seqs") == 0 && i + 1 < argc) {
      concurrency.clear();
      for (const char* p = argv[++i]; *p;) {
        char* end = nullptr;
        const long v = std::strtol(p, &end, 10);
        if (end == p || v < 1 || v > 4096) {
          std::cerr << "bench_rollout: --seqs: expected a comma-separated list of 1..4096, got \"" << argv[i] << "\"\n";
          return 2;
        }
        concurrency.push_back(v);
        p = *end == ',' ? end + 1 : end;
      }
      table_only = true;
    } else {
      rest.push_back(argv[i]);
    }
  }
  if (!parse_flags(static_cast<int>(rest.size()), rest.data(), false,
                   "bench_rollout [--threads N] [--out FILE] [--quick] [--seqs 1,32] [--device cuda] [--fused-ab]",
                   flags))
    return 2;
  const bool quick = flags.quick;
  const std::string out_path = flags.out;
  const int threads = set_torch_threads(flags.threads);
  const ModelConfig config = small_config();

  // Random weights (init_weights, seed 1), bf16; the FP8 model quantises the same weights.
  const std::map<std::string, at::Tensor> state = random_state(config);
  auto on_device = [&](ModelOptions o) {
    o.device = device;
    return o;
  };
  const auto master = model_with(config, state, on_device(ModelOptions()));  // the fp32 reference
  auto bf16 = model_with(config, state, on_device(ModelOptions::for_dtype("bf16")));
  std::shared_ptr<DeepseekModel> fp8, w8a8;  // CPU-only
  if (device.is_cpu()) {
    fp8 = model_with(config, state, ModelOptions::for_dtype("fp8"));
    ModelOptions a8_options = ModelOptions::for_dtype("fp8");
    a8_options.fp8_activations = true;  // W8A8: activations in 1x128 e4m3 tiles too
    w8a8 = model_with(config, state, a8_options);
  }

  const int64_t prompt_len = 64, new_tokens = quick ? 8 : 32, naive_tokens = quick ? 2 : 4;
  json results = {{"config", kSmallConfig},           {"threads", threads},
                  {"prompt_tokens", prompt_len},      {"engine_new_tokens", new_tokens},
                  {"naive_new_tokens", naive_tokens}, {"cores", std::thread::hardware_concurrency()},
                  {"device", device_name(device)},    {"load_average_start", load_average()}};

  if (fused_ab) {
    if (concurrency == std::vector<int64_t>{1, 8, 32, 64}) concurrency = {1, 32};
    std::vector<std::pair<std::string, std::shared_ptr<const DeepseekModel>>> models = {{"fp32", master},
                                                                                        {"bf16", bf16}};
    if (fp8) models.emplace_back("fp8", fp8);
    std::cout << "bench_rollout --fused-ab: dsv3-small, " << threads << " threads, prompts of " << prompt_len
              << " tokens, " << new_tokens << " new; load average " << load_average() << "\n"
              << "decode tok/s, best of 3 alternating: op-by-op / fused layer (ratio)\n";
    json rows = json::array();
    for (int64_t b : concurrency) {
      std::cout << "  " << b << (b == 1 ? " sequence: " : " sequences:");
      for (const auto& [name, m] : models) {
        double plain = 0, fused = 0;
        for (int rep = 0; rep < 3; ++rep) {
          set_fused_layers(false);
          plain = std::max(plain, run_engine(m, b, 1, prompt_len, new_tokens, false).decode_tps);
          set_fused_layers(true);
          fused = std::max(fused, run_engine(m, b, 1, prompt_len, new_tokens, false).decode_tps);
        }
        std::cout << "  " << name << " " << std::fixed << std::setprecision(1) << plain << " / " << fused << " ("
                  << std::setprecision(2) << fused / plain << "x)" << std::flush;
        rows.push_back({{"sequences", b},
                        {"dtype", name},
                        {"op_by_op_decode_tokens_per_s", plain},
                        {"fused_decode_tokens_per_s", fused}});
      }
      std::cout << "\n";
    }
    // ATen calls per generated token (one sequence, 32 tokens; the prompt's forward included):
    // every operator the dispatcher runs, counted by a RecordFunction callback.
    static std::atomic<int64_t> calls{0};
    auto handle = at::addGlobalCallback(
        at::RecordFunctionCallback([](const at::RecordFunction&) -> std::unique_ptr<at::ObserverContext> {
          ++calls;
          return nullptr;
        }).scopes({at::RecordScope::FUNCTION}));
    json counts;
    for (bool fused : {false, true}) {
      set_fused_layers(fused);
      calls = 0;
      const EngineRun r = run_engine(bf16, 1, 1, prompt_len, new_tokens, false);
      const double per_token = static_cast<double>(calls) / static_cast<double>(r.decode_tokens + 1);
      counts[fused ? "fused" : "op_by_op"] = per_token;
      std::cout << "ATen calls per generated token, 1 sequence bf16, " << (fused ? "fused" : "op-by-op") << ": "
                << std::setprecision(0) << per_token << "\n";
    }
    at::removeCallback(handle);
    json out = {{"config", kSmallConfig},
                {"threads", threads},
                {"load_average_end", load_average()},
                {"rows", rows},
                {"aten_calls_per_token", counts}};
    std::filesystem::create_directories(std::filesystem::path(out_path).parent_path());
    std::ofstream(out_path) << out.dump(2) << "\n";
    std::cout << "wrote " << out_path << "\n";
    return 0;
  }

  std::cout << "bench_rollout: dsv3-small (random weights) on " << device_name(device) << ", " << threads
            << " threads, prompts of " << prompt_len << " tokens; load average " << load_average() << " on "
            << std::thread::hardware_concurrency() << " cores\n\n";
  // Decode and prefill tokens/s per dtype: fp32, bf16 (weights and compute) and FP8 weights.
  std::vector<std::pair<std::string, std::shared_ptr<const DeepseekModel>>> dtypes = {{"fp32", master}, {"bf16", bf16}};
  if (fp8) dtypes.emplace_back("fp8", fp8);
  std::cout << std::left << std::setw(6) << "seqs" << std::right << std::setw(12) << "naive bf16";
  for (const auto& [name, m] : dtypes) std::cout << std::setw(13) << ("decode " + name);
  for (const auto& [name, m] : dtypes) std::cout << std::setw(14) << ("prefill " + name);
  std::cout << std::setw(14) << "decode/naive\n"
            << std::left << std::setw(6) << "" << std::right << std::setw(12) << "tok/s";
  for (size_t i = 0; i < 2 * dtypes.size(); ++i) std::cout << std::setw(i < dtypes.size() ? 13 : 14) << "tok/s";
  std::cout << std::setw(13) << "(bf16)"
            << "\n";
  json rows = json::array();
  for (int64_t b : concurrency) {
    const double naive = run_naive(*bf16, b, prompt_len, naive_tokens);
    std::vector<EngineRun> runs;
    runs.reserve(dtypes.size());
    for (const auto& [name, m] : dtypes) runs.push_back(run_engine(m, b, 1, prompt_len, new_tokens, false));
    std::cout << std::left << std::setw(6) << b << std::right << std::fixed << std::setprecision(1) << std::setw(12)
              << naive;
    for (const EngineRun& r : runs) std::cout << std::setw(13) << r.decode_tps;
    for (const EngineRun& r : runs) std::cout << std::setw(14) << r.prefill_tps;
    std::cout << std::setw(12) << runs[1].decode_tps / naive << "x\n" << std::flush;
    json row = {{"concurrent_sequences", b},
                {"naive_bf16_tokens_per_s", naive},
                {"decode_speedup_vs_naive_bf16", runs[1].decode_tps / naive}};
    for (size_t i = 0; i < dtypes.size(); ++i) {
      row["decode_" + dtypes[i].first + "_tokens_per_s"] = runs[i].decode_tps;
      row["prefill_" + dtypes[i].first + "_tokens_per_s"] = runs[i].prefill_tps;
    }
    rows.push_back(row);
  }
  results["concurrency"] = rows;
  if (table_only) {
    results["load_average_end"] = load_average();
    std::filesystem::create_directories(std::filesystem::path(out_path).parent_path());
    std::ofstream(out_path) << results.dump(2) << "\n";
    std::cout << "\nwrote " << out_path << "\n";
    return 0;
  }

  // Group prefix sharing: one request with n = 8 over a 128-token prompt against n = 1 (prefill
  // cost), and against 8 separate requests with the same prompt (no sharing).
  std::cout << "\ngroup of 8 sharing a 128-token prompt:\n";
  json groups = json::array();
  for (auto [name, model] : {std::pair{"bf16", std::shared_ptr<const DeepseekModel>(bf16)},
                             std::pair{"fp8", std::shared_ptr<const DeepseekModel>(fp8)}}) {
    EngineRun one = run_engine(model, 1, 1, 128, new_tokens, true);
    EngineRun group = run_engine(model, 1, 8, 128, new_tokens, true);
    EngineRun separate = run_engine(model, 8, 1, 128, new_tokens, true);
    const double ratio = group.prefill_s / one.prefill_s;
    std::cout << "  " << name << ": prefill 1 seq " << std::setprecision(4) << one.prefill_s * 1e3 << " ms; group of 8 "
              << group.prefill_s * 1e3 << " ms (" << std::setprecision(2) << ratio << "x one sequence, "
              << group.prefill_tokens << " prompt tokens fed); 8 unshared copies " << std::setprecision(4)
              << separate.prefill_s * 1e3 << " ms (" << separate.prefill_tokens << " tokens); peak cache pages "
              << group.peak_pages << " shared vs " << separate.peak_pages << " unshared\n";
    groups.push_back({{"dtype", name},
                      {"prefill_one_sequence_s", one.prefill_s},
                      {"prefill_group_of_8_s", group.prefill_s},
                      {"group_over_one_ratio", ratio},
                      {"prefill_8_unshared_s", separate.prefill_s},
                      {"group_prompt_tokens_fed", group.prefill_tokens},
                      {"unshared_prompt_tokens_fed", separate.prefill_tokens},
                      {"peak_pages_group", group.peak_pages},
                      {"peak_pages_unshared", separate.peak_pages},
                      {"group_decode_tokens_per_s", group.decode_tps}});
  }
  results["group_prefix_sharing"] = groups;

  // Cache size per token.
  const int64_t latent = config.kv_lora_rank + config.qk_rope_head_dim;
  const int64_t mha = config.num_attention_heads * (config.qk_head_dim() + config.v_head_dim);
  Engine probe(bf16, 0, EngineOptions{16, 1});
  std::cout << "\ncache per token per layer: latent " << latent << " values vs MHA " << mha << " ("
            << static_cast<double>(mha) / latent << "x); all " << config.num_hidden_layers
            << " layers in bf16: " << probe.cache_bytes_per_token() << " vs " << probe.mha_cache_bytes_per_token()
            << " bytes\n";
  results["cache"] = {{"latent_values_per_token_per_layer", latent},
                      {"mha_values_per_token_per_layer", mha},
                      {"latent_bytes_per_token_bf16", probe.cache_bytes_per_token()},
                      {"mha_bytes_per_token_bf16", probe.mha_cache_bytes_per_token()}};

  // FP8 (weight-only and W8A8) vs bf16 log-probs on fixed sequences.
  {
    at::NoGradGuard no_grad;
    std::vector<at::Tensor> seqs;
    for (int64_t s = 0; s < 4; ++s) seqs.push_back(at::tensor(prompt_of(128, config.vocab_size, 100 + s), at::kLong));
    at::Tensor ids = at::stack(seqs);  // [4, 128]
    const at::Tensor lp16 = bf16->logprobs(ids).to(at::kDouble);
    at::Tensor gap = (fp8->logprobs(ids).to(at::kDouble) - lp16).abs();
    at::Tensor gap_a8 = (w8a8->logprobs(ids).to(at::kDouble) - lp16).abs();
    at::Tensor ref = (master->logprobs(ids).to(at::kDouble) - lp16).abs();
    std::cout << "\nlog-prob gap on 4 x 128 fixed tokens: FP8 weight-only vs bf16 mean " << std::setprecision(5)
              << gap.mean().item<double>() << ", max " << gap.max().item<double>() << "; FP8 W8A8 (1x128 activation "
              << "tiles) vs bf16 mean " << gap_a8.mean().item<double>() << ", max " << gap_a8.max().item<double>()
              << "; bf16 vs fp32 mean " << ref.mean().item<double>() << ", max " << ref.max().item<double>() << "\n";
    results["fp8_logprob_gap"] = {{"tokens", gap.numel()},
                                  {"fp8_vs_bf16_mean", gap.mean().item<double>()},
                                  {"fp8_vs_bf16_max", gap.max().item<double>()},
                                  {"fp8_w8a8_vs_bf16_mean", gap_a8.mean().item<double>()},
                                  {"fp8_w8a8_vs_bf16_max", gap_a8.max().item<double>()},
                                  {"bf16_vs_fp32_mean", ref.mean().item<double>()},
                                  {"bf16_vs_fp32_max", ref.max().item<double>()}};
  }

  results["load_average_end"] = load_average();
  std::filesystem::create_directories(std::filesystem::path(out_path).parent_path());
  std::ofstream(out_path) << results.dump(2) << "\n";
  std::cout << "\nwrote " << out_path << "\n";
  return 0;
}
