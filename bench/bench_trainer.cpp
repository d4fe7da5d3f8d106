// bench_trainer [CONFIG] [OUT_JSON] [THREADS]: the GRPO learner update on CPU (defaults:
// bench/configs/dsv3-small.json, bench/results/trainer.json, 1 thread; paths from the repository
// root). A synthetic batch of 4 prompts x 4 completions (prompt 48 tokens, completions 16..192):
//  1. one mini-batch's gradient in micro-batches of 4 rows: ours (rows sorted by length, the head
//     applied at completion positions only; learner/minibatch_loss.h), packed (each micro-batch's
//     rows back to back in one row, no padding) and padded to the micro-batch's longest row,
//     against the plain way
//     (micro-batches in batch order, padded to the whole batch, logits at every position through
//     DeepseekModel::logprobs) — the same loss, printed beside the times;
//  2. a whole Trainer::step (old log-probs, advantages, update, AdamW) in fp32 and in bf16 compute
//     with fp32 master weights, packed (the default) and padded micro-batches, beside the same step in PyTorch eager
//     (bench/pytorch/trainer_step.py: HF transformers' DeepseekV3ForCausalLM on the same checkpoint, batch and
//     LibTorch; micro-batches in batch order, padded to the batch) with the ratio, and both sides' pre-clip grad norm
//     of the first step, which must agree. The Python is $GRPO_BENCH_PYTHON, else the project's environment
//     (scripts/pyenv.sh --path); without one, the eager column says why it is missing;
//  3. the optimizer step (grad-norm clip + AdamW) over the policy's parameters: fused against the
//     same update op by op in LibTorch.
// Each figure is the best of a few runs after a warm-up, with the load average beside it.
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "bench/bench_util.h"
#include "learner/minibatch_loss.h"
#include "learner/optim.h"
#include "learner/train_batch.h"
#include "learner/trainer.h"
#include "model/checkpoint.h"
#include "model/deepseek.h"
#include "model/init.h"
#include "model/pretrained.h"

using namespace grpo;
using nlohmann::json;
using namespace grpo::bench;

namespace {

std::vector<ScoredGroup> synthetic_groups(int64_t vocab) {
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(3);
  auto randint = [&](int64_t lo, int64_t hi) {
    return at::randint(lo, hi, {1}, gen, at::TensorOptions().dtype(at::kLong)).item<int64_t>();
  };
  std::vector<ScoredGroup> groups(4);
  for (auto& g : groups) {
    for (int t = 0; t < 48; ++t) g.prompt_token_ids.push_back(int32_t(randint(2, vocab)));
    for (int c = 0; c < 4; ++c) {
      Completion comp;
      for (int64_t t = 0, n = randint(16, 193); t < n; ++t) {
        comp.token_ids.push_back(int32_t(randint(2, vocab)));
        comp.logprobs.push_back(-8.0f);
      }
      comp.reward = double(randint(0, 2));
      g.completions.push_back(comp);
    }
  }
  return groups;
}

// The plain way: micro-batches in batch order, each padded to the batch's length, log-probs of
// every position (the full head), masked afterwards. Returns the loss.
double plain_minibatch(const DeepseekModel& m, const TrainBatch& b, const PolicyLossOptions& o, int64_t micro) {
  double loss = 0;
  const double tokens = b.tokens();
  for (int64_t s = 0; s < b.rows(); s += micro) {
    const int64_t n = std::min(micro, b.rows() - s);
    at::Tensor mask = b.mask.narrow(0, s, n);
    at::Tensor logp = m.logprobs(b.ids.narrow(0, s, n)) * mask;  // [n, T-1]
    at::Tensor l = policy_loss(logp, b.old_logp.narrow(0, s, n), b.advantages.narrow(0, s, n), mask, o).loss *
                   (mask.sum().item<double>() / tokens);
    l.backward();
    loss += l.item<double>();
  }
  return loss;
}

// The Python that runs the PyTorch-eager baseline: $GRPO_BENCH_PYTHON, else the project's
// environment; "" (and `why`) when there is none.
std::string eager_python(std::string& why) {
  if (const char* env = std::getenv("GRPO_BENCH_PYTHON")) return env;
  std::string dir;
  if (FILE* f = popen("scripts/pyenv.sh --path 2>/dev/null", "r")) {
    char buf[4096];
    while (std::fgets(buf, sizeof buf, f)) dir += buf;
    pclose(f);
  }
  while (!dir.empty() && (dir.back() == '\n' || dir.back() == ' ')) dir.pop_back();
  std::string py = dir + "/bin/python";
  if (dir.empty() || !std::filesystem::exists(py)) {
    why = "no Python environment (set GRPO_BENCH_PYTHON, or run scripts/pyenv.sh)";
    return "";
  }
  return py;
}

// Runs bench/pytorch/trainer_step.py; its JSON line, or null (and `why`) when it failed.
json eager_step(const std::string& python, const std::string& model_dir, const std::string& batch_file,
                const std::string& dtype, int threads, int reps, int64_t micro, std::string& why) {
  const std::string cmd = "'" + python + "' bench/pytorch/trainer_step.py --model '" + model_dir + "' --batch '" +
                          batch_file + "' --dtype " + dtype + " --threads " + std::to_string(threads) + " --reps " +
                          std::to_string(reps) + " --micro " + std::to_string(micro) + " --lr 1e-5";
  std::string out;
  FILE* f = popen(cmd.c_str(), "r");
  if (!f) {
    why = "cannot start " + python;
    return nullptr;
  }
  char buf[4096];
  while (std::fgets(buf, sizeof buf, f)) out += buf;
  const int status = pclose(f);
  const size_t line = out.rfind('{');
  if (status != 0 || line == std::string::npos) {
    why = "bench/pytorch/trainer_step.py failed (status " + std::to_string(status) + ")";
    return nullptr;
  }
  return json::parse(out.substr(line));
}

}  // namespace

int main(int argc, char** argv) {
  const std::string config_path = argc > 1 ? argv[1] : "bench/configs/dsv3-small.json";
  const std::string out_path = argc > 2 ? argv[2] : "bench/results/trainer.json";
  const int threads = argc > 3 ? std::atoi(argv[3]) : 1;
  at::set_num_threads(threads);
  const ModelConfig config = ModelConfig::load(config_path);
  const auto groups = synthetic_groups(config.vocab_size);
  const int reps = 2;
  const int64_t micro = 4;

  auto policy = std::make_shared<DeepseekModel>(config);
  init_weights(*policy, 1);
  policy->set_requires_grad(true);
  TrainBatch batch = make_train_batch(groups, {config.vocab_size, 0}, 1, at::kFloat);
  batch.old_logp = completion_logprobs(*policy, batch, micro);
  batch.advantages = group_advantages(batch.rewards, batch.group_size, AdvantageEstimator::kGrpo).to(at::kFloat);
  const double tokens = batch.tokens();
  int64_t padded = batch.ids.numel();
  // The forward inputs of the mini-batch gradient: micro-batches of `micro` length-sorted rows,
  // padded to their longest (T-1 inputs each) or packed (each row's length-1 inputs).
  int64_t sorted_padded = 0, packed = 0;
  {
    std::vector<int64_t> len(batch.lengths.data_ptr<int64_t>(), batch.lengths.data_ptr<int64_t>() + batch.rows());
    std::sort(len.begin(), len.end());
    for (size_t i = 0; i < len.size(); i += size_t(micro)) {
      const size_t end = std::min(len.size(), i + size_t(micro));
      sorted_padded += int64_t(end - i) * (len[end - 1] - 1);
      for (size_t j = i; j < end; ++j) packed += len[j] - 1;
    }
  }

  json result = {{"config", config_path},       {"threads", threads},      {"sequences", batch.rows()},
                 {"completion_tokens", tokens}, {"padded_tokens", padded}, {"sorted_micro_batch_inputs", sorted_padded},
                 {"packed_inputs", packed},     {"best_of_runs", reps},    {"load_average_before", load_average()}};
  std::printf("bench_trainer: %s, %lld sequences, %.0f completion tokens (%lld padded), %d thread(s), load %.2f\n",
              config_path.c_str(), (long long)batch.rows(), tokens, (long long)padded, threads, load_average());
  std::printf("forward inputs in micro-batches of %lld sorted rows: %lld padded, %lld packed\n\n", (long long)micro,
              (long long)sorted_padded, (long long)packed);

  auto zero = [&] {
    for (auto& [name, p] : policy->named_trainable()) p.mutable_grad() = at::Tensor();
  };
  LossSpec spec;
  double packed_loss = 0, ours_loss = 0, plain_loss = 0;
  const double t_packed = seconds(
      [&] {
        zero();
        packed_loss = accumulate_minibatch(*policy, batch, spec, micro, /*pack=*/true).loss;
      },
      reps);
  const double t_ours = seconds(
      [&] {
        zero();
        ours_loss = accumulate_minibatch(*policy, batch, spec, micro, /*pack=*/false).loss;
      },
      reps);
  const double t_plain = seconds(
      [&] {
        zero();
        plain_loss = plain_minibatch(*policy, batch, spec.policy, micro);
      },
      reps);
  std::printf("1. mini-batch gradient, micro-batches of %lld rows        seconds   completion tok/s   loss\n",
              (long long)micro);
  std::printf("   ours, packed: length-sorted rows back to back     %9.3f   %16.0f   %.6f\n", t_packed,
              tokens / t_packed, packed_loss);
  std::printf("   ours, padded: length-sorted, head at completions  %9.3f   %16.0f   %.6f\n", t_ours, tokens / t_ours,
              ours_loss);
  std::printf("   plain: batch order, full padding, full head       %9.3f   %16.0f   %.6f\n", t_plain, tokens / t_plain,
              plain_loss);
  std::printf("   speed-up packed %.2fx, padded %.2fx over plain\n\n", t_plain / t_packed, t_plain / t_ours);
  result["minibatch_gradient"] = {{"packed_s", t_packed},
                                  {"ours_s", t_ours},
                                  {"plain_s", t_plain},
                                  {"packed_tokens_per_s", tokens / t_packed},
                                  {"ours_tokens_per_s", tokens / t_ours},
                                  {"plain_tokens_per_s", tokens / t_plain},
                                  {"packed_loss", packed_loss},
                                  {"ours_loss", ours_loss},
                                  {"plain_loss", plain_loss}};

  // The baseline's inputs: the policy's weights as an HF checkpoint, the padded batch.
  const std::filesystem::path scratch =
      std::filesystem::temp_directory_path() / ("grpo_bench_trainer_" + std::to_string(::getpid()));
  std::filesystem::create_directories(scratch);
  const std::string model_dir = (scratch / "model").string(), batch_file = (scratch / "batch.safetensors").string();
  save_pretrained(*policy, model_dir);
  save_tensors(batch_file, {{"ids", batch.ids}, {"mask", batch.mask}, {"advantages", batch.advantages}});
  std::string why;
  const std::string python = eager_python(why);

  std::printf("2. Trainer::step (1 epoch, 1 mini-batch, micro %lld)\n", (long long)micro);
  std::printf("   dtype  rows     grpo s   tok/s   PyTorch eager s   tok/s   grpo speed-up   grad norm grpo | eager\n");
  std::map<std::string, json> eager_of;  // by dtype: the baseline runs once per dtype
  for (const auto& [dtype, pack] :
       {std::pair<const char*, bool>{"fp32", true}, {"fp32", false}, {"bf16", true}, {"bf16", false}}) {
    TrainerOptions o;
    o.dtype = dtype;
    o.micro_batch_size = micro;
    o.pack_sequences = pack;
    o.lr = 1e-5;
    auto p = std::make_shared<DeepseekModel>(config, o.model_options());
    init_weights(*p, 1);
    Trainer trainer(p, o);
    double first_norm = -1;
    const double t = seconds(
        [&] {
          const TrainStats st = trainer.step(groups);
          if (first_norm < 0) first_norm = st.grad_norm_mean;  // fresh weights, as the baseline's first step
        },
        reps);
    if (!eager_of.count(dtype))
      eager_of[dtype] =
          python.empty() ? json(nullptr) : eager_step(python, model_dir, batch_file, dtype, threads, reps, micro, why);
    const json& eager = eager_of[dtype];
    const std::string key = std::string(dtype) + (pack ? "" : "_padded");
    const char* rows = pack ? "packed" : "padded";
    result["step_" + key + "_s"] = t;
    result["step_" + key + "_tokens_per_s"] = tokens / t;
    result["step_" + key + "_grad_norm"] = first_norm;
    if (eager.is_null()) {
      std::printf("   %-4s  %s  %7.3f   %5.0f   (not run: %s)\n", dtype, rows, t, tokens / t, why.c_str());
      result["eager_" + std::string(dtype)] = {{"not_run", why}};
      continue;
    }
    const double te = eager["step_s"].get<double>();
    std::printf("   %-4s  %s  %7.3f   %5.0f   %15.3f   %5.0f   %12.2fx   %.6f | %.6f\n", dtype, rows, t, tokens / t, te,
                tokens / te, te / t, first_norm, eager["grad_norm"].get<double>());
    result["eager_" + std::string(dtype)] = eager;
    result["step_" + key + "_speedup_vs_eager"] = te / t;
  }
  std::filesystem::remove_all(scratch);
  // 3. The optimizer over the policy's parameters with random gradients: clip + AdamW, fused
  // (learner/optim.h over kernels/adamw.h) against the same update op by op in LibTorch.
  {
    at::NoGradGuard no_grad;
    std::vector<std::pair<std::string, at::Tensor>> named;
    std::vector<at::Tensor> params;
    int64_t elements = 0;
    for (auto& [name, p] : policy->named_trainable()) {
      named.emplace_back(name, p);
      params.push_back(p);
      p.mutable_grad() = at::randn_like(p) * 1e-3;
      elements += p.numel();
    }
    AdamW fused(named, {});
    const double t_fused = seconds(
        [&] {
          clip_grad_norm(params, 1.0);
          fused.step(1e-5);
        },
        reps);
    std::vector<at::Tensor> m, v;
    for (const auto& p : params) m.push_back(at::zeros_like(p)), v.push_back(at::zeros_like(p));
    int64_t t = 0;
    const double t_ops = seconds(
        [&] {  // LibTorch's ops: the fp64 norm through an fp64 copy, then torch.optim.AdamW's update
          double sq = 0;
          for (const auto& p : params) sq += p.grad().to(at::kDouble).pow(2).sum().item<double>();
          const double norm = std::sqrt(sq);
          if (norm > 1.0)
            for (const auto& p : params) p.mutable_grad().mul_(1.0 / (norm + 1e-6));
          ++t;
          const double bc1 = 1 - std::pow(0.9, double(t)), bc2 = 1 - std::pow(0.999, double(t));
          for (size_t i = 0; i < params.size(); ++i) {
            at::Tensor p = params[i].detach();
            const at::Tensor& g = params[i].grad();
            m[i].mul_(0.9).add_(g, 0.1);
            v[i].mul_(0.999).addcmul_(g, g, 0.001);
            p.addcdiv_(m[i], (v[i] / bc2).sqrt_().add_(1e-8), -1e-5 / bc1);
          }
        },
        reps);
    std::printf("\n3. optimizer step: grad-norm clip + AdamW over %.1f M fp32 parameters   seconds\n",
                double(elements) / 1e6);
    std::printf("   fused (kernels/adamw.h)                                      %9.3f\n", t_fused);
    std::printf("   LibTorch ops (fp64 copy for the norm, op-by-op AdamW)        %9.3f\n", t_ops);
    std::printf("   speed-up %.2fx\n", t_ops / t_fused);
    result["optimizer"] = {
        {"parameters", elements}, {"fused_s", t_fused}, {"libtorch_ops_s", t_ops}, {"speedup", t_ops / t_fused}};
  }
  result["load_average_after"] = load_average();

  std::filesystem::create_directories(std::filesystem::path(out_path).parent_path());
  const std::string tmp = out_path + ".tmp";
  std::ofstream(tmp) << result.dump(2) << "\n";
  std::filesystem::rename(tmp, out_path);
  std::printf("\nwrote %s\n", out_path.c_str());
  return 0;
}
