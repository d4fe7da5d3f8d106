// bench_model [CONFIG] [OUT_JSON]: the DeepSeek model on CPU (defaults:
// bench/configs/dsv3-small.json, bench/results/model.json, paths from the repository root).
//  1. forward and forward+backward tokens/s, fp32 and bf16 (bf16 compute, fp32 master weights),
//     1 and 2 intra-op threads, batch 4 x 128 tokens;
//  2. the MoE block (grouped by expert, ours) against two naive baselines on the same routing:
//     every token x each of its experts in a loop, and all experts on all tokens masked;
//  3. decoding over the latent cache: absorbed MLA (ours) against re-expanding K/V (naive form).
// Prints tables and writes the figures as JSON (temp file + rename). Each figure is the best of
// a few runs after a warm-up; the machine's load average is recorded beside them, since on a
// shared machine it moves the figures more than anything else.
#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <thread>

#include <nlohmann/json.hpp>

#include "bench/bench_util.h"
#include "model/deepseek.h"
#include "model/init.h"
#include "model/moe.h"
#include "model/runtime.h"

using namespace grpo;
using nlohmann::json;
using namespace grpo::bench;

namespace {

// Baseline 1: one token, one expert at a time.
at::Tensor moe_per_token(const MoeWeights& w, const Routing& r, const at::Tensor& x) {
  at::Tensor out = at::zeros_like(x);
  for (int64_t n = 0; n < x.size(0); ++n)
    for (int64_t k = 0; k < r.experts.size(1); ++k)
      out[n] += r.weights[n][k] * mlp_forward(w.experts[r.experts[n][k].item<int64_t>()], x[n].unsqueeze(0))[0];
  return out;
}

// Baseline 2: every expert on every token, weighted by a dense [N, E] routing matrix (zeros
// for the experts a token did not choose).
at::Tensor moe_dense_masked(const MoeWeights& w, const Routing& r, const at::Tensor& x) {
  at::Tensor dense = at::zeros({x.size(0), static_cast<int64_t>(w.experts.size())}, x.options())
                         .scatter(1, r.experts, r.weights.to(x.scalar_type()));
  at::Tensor out = at::zeros_like(x);
  for (size_t e = 0; e < w.experts.size(); ++e) out += dense.narrow(1, e, 1) * mlp_forward(w.experts[e], x);
  return out;
}

MoeWeights moe_of(DeepseekModel& m, int layer) {
  auto sd = m.state_dict();
  const std::string p = "model.layers." + std::to_string(layer) + ".mlp.";
  MoeWeights w;
  w.gate = sd.at(p + "gate.weight");
  w.e_score_correction_bias = sd.at(p + "gate.e_score_correction_bias");
  for (int64_t e = 0; e < m.config().n_routed_experts; ++e) {
    std::string q = p + "experts." + std::to_string(e) + ".";
    w.experts.push_back({sd.at(q + "gate_proj.weight"), sd.at(q + "up_proj.weight"), sd.at(q + "down_proj.weight")});
  }
  return w;
}

void write_json_atomic(const std::string& path, const json& j) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp);
    out << j.dump(2) << "\n";
    out.flush();
    if (!out) throw std::runtime_error("cannot write " + tmp);
  }
  std::filesystem::rename(tmp, path);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string config_path = argc > 1 ? argv[1] : "bench/configs/dsv3-small.json";
  const std::string out_path = argc > 2 ? argv[2] : "bench/results/model.json";
  ModelConfig config = ModelConfig::load(config_path);
  const int64_t batch = 4, seq = 128, tokens = batch * seq;
  const int reps = 2;
  at::manual_seed(0);
  at::Tensor ids = at::randint(config.vocab_size, {batch, seq}, at::TensorOptions().dtype(at::kLong));
  json result = {{"config", config_path},
                 {"batch", batch},
                 {"seq", seq},
                 {"best_of_runs", reps},
                 {"cores", std::thread::hardware_concurrency()},
                 {"load_average_start", load_average()}};
  std::printf("load average %.2f on %u cores\n", load_average(), std::thread::hardware_concurrency());
  if (load_average() > std::thread::hardware_concurrency())
    std::printf("warning: the machine is oversubscribed; multi-thread figures mostly measure waiting for cores\n");

  // 1. Whole model.
  std::printf("DeepSeek model %s: %lld layers, hidden %lld, %lld experts top-%lld; batch %lldx%lld tokens\n",
              config_path.c_str(), (long long)config.num_hidden_layers, (long long)config.hidden_size,
              (long long)config.n_routed_experts, (long long)config.num_experts_per_tok, (long long)batch,
              (long long)seq);
  std::printf("%-6s %-8s %16s %22s\n", "dtype", "threads", "forward tok/s", "forward+backward tok/s");
  for (const char* dtype : {"fp32", "bf16"}) {
    ModelOptions opts;
    opts.compute_dtype = std::string(dtype) == "bf16" ? at::kBFloat16 : at::kFloat;
    DeepseekModel model(config, opts);
    init_weights(model, 1);
    for (int threads : {1, 2}) {
      set_torch_threads(threads);
      double fwd = seconds(
          [&] {
            at::NoGradGuard no_grad;
            model.forward(ids);
          },
          reps);
      model.set_requires_grad(true);
      double train = seconds(
          [&] {
            at::Tensor loss = -model.logprobs(ids).mean();
            loss.backward();
            for (auto& [name, p] : model.named_trainable())
              if (p.grad().defined()) p.mutable_grad() = at::Tensor();
          },
          reps);
      model.set_requires_grad(false);
      std::printf("%-6s %-8d %16.0f %22.0f\n", dtype, threads, tokens / fwd, (tokens - batch) / train);
      result["model"].push_back({{"dtype", dtype},
                                 {"threads", threads},
                                 {"forward_tokens_per_s", tokens / fwd},
                                 {"forward_backward_tokens_per_s", (tokens - batch) / train}});
    }
  }

  // 2. The MoE block against naive baselines (fp32, same inputs and routing).
  {
    DeepseekModel model(config);
    init_weights(model, 1);
    MoeWeights w = moe_of(model, static_cast<int>(config.first_k_dense_replace));
    at::NoGradGuard no_grad;
    at::Tensor x = at::randn({tokens, config.hidden_size}) * 0.5;
    Routing r = moe_gate(router_logits(w, x), w.e_score_correction_bias, GateSpec::from(config));
    at::Tensor ours = routed_experts_forward(w, r, x);
    // The per-token loop runs on the first `loop_tokens` tokens only (it is that slow).
    const int64_t loop_tokens = 128;
    Routing r_loop{r.experts.narrow(0, 0, loop_tokens), r.weights.narrow(0, 0, loop_tokens)};
    at::Tensor x_loop = x.narrow(0, 0, loop_tokens);
    double diff_loop = (moe_per_token(w, r_loop, x_loop) - ours.narrow(0, 0, loop_tokens)).abs().max().item<double>();
    double diff_dense = (moe_dense_masked(w, r, x) - ours).abs().max().item<double>();
    std::printf("\nRouted experts, %lld tokens x top-%lld of %lld (max |diff| vs ours: loop %.1e, masked %.1e)\n",
                (long long)tokens, (long long)config.num_experts_per_tok, (long long)config.n_routed_experts, diff_loop,
                diff_dense);
    std::printf("%-8s %14s %18s %20s %14s %14s\n", "threads", "ours tok/s", "per-token tok/s", "dense-masked tok/s",
                "ours/loop", "ours/masked");
    for (int threads : {1, 2}) {
      set_torch_threads(threads);
      double t_ours = seconds([&] { routed_experts_forward(w, r, x); }, reps);
      double t_loop = seconds([&] { moe_per_token(w, r_loop, x_loop); }, 1) * tokens / loop_tokens;
      double t_dense = seconds([&] { moe_dense_masked(w, r, x); }, reps);
      std::printf("%-8d %14.0f %18.0f %20.0f %13.1fx %13.1fx\n", threads, tokens / t_ours, tokens / t_loop,
                  tokens / t_dense, t_loop / t_ours, t_dense / t_ours);
      result["moe"].push_back({{"threads", threads},
                               {"ours_tokens_per_s", tokens / t_ours},
                               {"per_token_loop_tokens_per_s", tokens / t_loop},
                               {"dense_masked_tokens_per_s", tokens / t_dense},
                               {"speedup_vs_per_token_loop", t_loop / t_ours},
                               {"speedup_vs_dense_masked", t_dense / t_ours}});
    }
  }

  // 3. Decoding over the latent cache: absorbed (ours) vs naive re-expansion of K/V.
  {
    DeepseekModel model(config);
    init_weights(model, 1);
    at::NoGradGuard no_grad;
    const int64_t prompt = 128, steps = 16;
    at::Tensor p = ids.narrow(1, 0, prompt);
    std::printf("\nDecoding, batch %lld, prompt %lld, %lld new tokens (fp32)\n", (long long)batch, (long long)prompt,
                (long long)steps);
    std::printf("%-8s %20s %20s %10s\n", "threads", "absorbed tok/s", "naive tok/s", "ratio");
    for (int threads : {1, 2}) {
      set_torch_threads(threads);
      auto decode = [&](AttentionForm form) {
        LatentCache cache = model.make_cache(batch, prompt + steps);
        at::Tensor logits = model.forward(p, {}, &cache, AttentionForm::kNaive);
        double t = 0;
        for (int64_t s = 0; s < steps; ++s) {
          at::Tensor next = logits.select(1, -1).argmax(-1).unsqueeze(1);
          auto t0 = std::chrono::steady_clock::now();
          logits = model.forward(next, {}, &cache, form);
          t += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        }
        return batch * steps / t;
      };
      double absorbed = decode(AttentionForm::kAbsorbed), naive = decode(AttentionForm::kNaive);
      std::printf("%-8d %20.0f %20.0f %9.2fx\n", threads, absorbed, naive, absorbed / naive);
      result["decode"].push_back({{"threads", threads},
                                  {"prompt", prompt},
                                  {"new_tokens", steps},
                                  {"absorbed_tokens_per_s", absorbed},
                                  {"naive_tokens_per_s", naive}});
    }
  }
  result["load_average_end"] = load_average();
  result["oversubscribed"] =
      std::max(result["load_average_start"].get<double>(), load_average()) > std::thread::hardware_concurrency();
  std::printf("\nload average %.2f at the end\n", load_average());
  write_json_atomic(out_path, result);
  std::printf("\nwrote %s\n", out_path.c_str());
  return 0;
}
