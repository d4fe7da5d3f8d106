// RolloutService over gRPC loopback on bench/configs/dsv3-small.json (random weights):
//  1. weight sync: UpdateWeights of the whole model as fp32 (fp32 engine), bf16 (bf16 engine) and
//     FP8 codes + scales (FP8 engine): bytes, seconds, GB/s; beside it in the same run, the
//     in-process baseline (Engine::set_weights of the same state: no serialisation, no socket)
//     and a plain memcpy of the same bytes;
//  2. Generate throughput at 32 concurrent sequences (4 prompts x G = 8 and 32 prompts x 1, bf16)
//     through the service against the same engine driven in-process: the overhead ratio (one
//     untimed warm-up run of each first).
// Prints a table and writes bench/results/rollout_service.json (run from the repository root).
//
//   ./build/bench/bench_rollout_service [--threads N] [--repeats R] [--out FILE] [--quick]
//
// --threads defaults to 1 (see bench_rollout.cpp: on a shared machine, 2 intra-op threads
// measure the neighbours). The server's engine loop and the in-process engine use the same count.
#include <algorithm>
#include <chrono>
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
#include "model/init.h"
#include "model/model_config.h"
#include "model/runtime.h"
#include "rollout/service/client.h"
#include "rollout/service/server.h"

using namespace grpo;
using namespace grpo::rollout;
using nlohmann::json;
using namespace grpo::bench;

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

std::map<std::string, at::Tensor> to_dtype(const std::map<std::string, at::Tensor>& state, at::ScalarType t) {
  std::map<std::string, at::Tensor> out;
  for (const auto& [name, v] : state) out[name] = v.to(t).contiguous();
  return out;
}

struct Served {
  std::shared_ptr<Engine> engine;
  std::unique_ptr<RolloutServer> server;
  std::unique_ptr<RolloutClient> client;
  Served(std::shared_ptr<const DeepseekModel> model, const EngineOptions& eo) {
    engine = std::make_shared<Engine>(std::move(model), 0, eo);
    ServerOptions so;
    so.address = "127.0.0.1:0";
    server = std::make_unique<RolloutServer>(engine, so);
    server->start();
    ClientOptions co;
    co.timeout_ms = 600'000;
    client = std::make_unique<RolloutClient>(server->address(), co);
  }
};

struct SyncRow {
  std::string payload;
  int64_t tensors = 0, bytes = 0;
  double grpc_s = 0, apply_ms = 0, inproc_s = 0, memcpy_s = 0;
};

SyncRow weight_sync(const std::string& payload, const std::shared_ptr<const DeepseekModel>& model,
                    const std::map<std::string, at::Tensor>& state, bool fp8, int repeats) {
  Served served(model, EngineOptions{});
  Engine local(model, 0, EngineOptions{});
  SyncRow row{payload};
  std::vector<double> grpc_s, apply_ms, inproc_s, memcpy_s;
  for (int r = 1; r <= repeats; ++r) {
    const WeightUpdateStats st = served.client->update_weights(r, state, fp8);
    row.tensors = st.tensors;
    row.bytes = st.bytes;
    grpc_s.push_back(st.send_seconds);
    apply_ms.push_back(st.apply_ms);
    auto t0 = Clock::now();
    local.set_weights(r, state);  // the baseline: the same weights handed over in-process
    inproc_s.push_back(seconds_since(t0));
    std::vector<char> dst(static_cast<size_t>(st.bytes));
    t0 = Clock::now();
    size_t at = 0;
    for (const auto& [name, t] : state) {
      const size_t n = std::min(static_cast<size_t>(t.nbytes()), dst.size() - at);
      std::memcpy(dst.data() + at, t.data_ptr(), n);
      at += n;
    }
    memcpy_s.push_back(seconds_since(t0));
  }
  row.grpc_s = median(grpc_s);
  row.apply_ms = median(apply_ms);
  row.inproc_s = median(inproc_s);
  row.memcpy_s = median(memcpy_s);
  return row;
}

struct GenRow {
  int64_t prompts = 0, n = 0, tokens = 0;
  double inproc_tps = 0, grpc_tps = 0;
};

GenRow generate_throughput(const std::shared_ptr<const DeepseekModel>& model, int64_t prompts, int64_t n,
                           int64_t prompt_len, int64_t new_tokens, int repeats) {
  EngineOptions eo;
  eo.max_seqs = prompts * n;
  eo.max_batched_tokens = std::max<int64_t>(eo.max_seqs, prompts * prompt_len);
  eo.num_pages = 4096;
  GenerateCall call;
  for (int64_t i = 0; i < prompts; ++i)
    call.prompts.push_back({prompt_of(prompt_len, model->config().vocab_size, i + 1), n, static_cast<uint64_t>(i)});
  call.params.sampling = {1.0, 1.0, 0, 7};
  call.params.max_new_tokens = new_tokens;
  GenRow row{prompts, n, prompts * n * new_tokens};
  std::vector<double> inproc, grpc;
  Served served(model, eo);
  Engine local(model, 0, eo);
  for (int r = -1; r < repeats; ++r) {  // r = -1: warm-up of both, not timed
    std::vector<Request> requests;
    for (const GeneratePrompt& p : call.prompts) {
      Request q{p.token_ids, p.n, call.params};
      q.params.sampling.seed = *p.seed;
      requests.push_back(q);
    }
    auto t0 = Clock::now();
    local.submit(requests);
    const size_t done = local.run_until_idle().size();
    if (r >= 0) inproc.push_back(seconds_since(t0));
    if (static_cast<int64_t>(done) != prompts * n) throw std::runtime_error("in-process run lost completions");

    int64_t tokens = 0;
    t0 = Clock::now();
    served.client->generate(call, [&](size_t, Completion&& c) { tokens += static_cast<int64_t>(c.token_ids.size()); });
    if (r >= 0) grpc.push_back(seconds_since(t0));
    if (tokens != row.tokens) throw std::runtime_error("the service returned " + std::to_string(tokens) + " tokens");
  }
  row.inproc_tps = row.tokens / median(inproc);
  row.grpc_tps = row.tokens / median(grpc);
  return row;
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  flags.out = "bench/results/rollout_service.json";
  if (!parse_flags(argc, argv, true, "bench_rollout_service [--threads N] [--repeats R] [--out FILE] [--quick]", flags))
    return 2;
  const bool quick = flags.quick;
  const int repeats = flags.repeats;
  const std::string out_path = flags.out;
  const int threads = set_torch_threads(flags.threads);
  const ModelConfig config = small_config();

  const std::map<std::string, at::Tensor> fp32_state = random_state(config);
  auto fp32 = model_with(config, fp32_state, ModelOptions());
  auto bf16 = model_with(config, fp32_state, ModelOptions::for_dtype("bf16"));
  auto fp8 = model_with(config, fp32_state, ModelOptions::for_dtype("fp8"));

  json results = {{"config", kSmallConfig},
                  {"threads", threads},
                  {"repeats", repeats},
                  {"cores", std::thread::hardware_concurrency()},
                  {"load_average_start", load_average()}};
  std::cout << "bench_rollout_service: dsv3-small (random weights), " << threads << " threads, median of " << repeats
            << "; load average " << load_average() << " on " << std::thread::hardware_concurrency() << " cores\n\n";

  std::cout << "weight sync (UpdateWeights over loopback, 4 MiB chunks; GB/s = payload / whole call):\n";
  std::cout << std::left << std::setw(9) << "payload" << std::right << std::setw(9) << "tensors" << std::setw(11)
            << "MB" << std::setw(10) << "gRPC s" << std::setw(9) << "GB/s" << std::setw(11) << "apply ms"
            << std::setw(13) << "in-proc s" << std::setw(13) << "memcpy GB/s" << std::setw(14) << "gRPC/in-proc"
            << "\n";
  json sync = json::array();
  const std::vector<
      std::tuple<std::string, std::shared_ptr<const DeepseekModel>, std::map<std::string, at::Tensor>, bool>>
      payloads = {{"fp32", fp32, fp32_state, false},
                  {"bf16", bf16, to_dtype(fp32_state, at::kBFloat16), false},
                  {"fp8", fp8, fp32_state, true}};
  for (const auto& [name, model, state, quantise] : payloads) {
    const SyncRow r = weight_sync(name, model, state, quantise, repeats);
    const double gbps = r.bytes / r.grpc_s / 1e9;
    // The fp8 baseline hands over the fp32 state (the engine quantises it): the same end state.
    std::cout << std::left << std::setw(9) << name << std::right << std::setw(9) << r.tensors << std::fixed
              << std::setprecision(1) << std::setw(11) << r.bytes / 1e6 << std::setprecision(3) << std::setw(10)
              << r.grpc_s << std::setprecision(2) << std::setw(9) << gbps << std::setprecision(1) << std::setw(11)
              << r.apply_ms << std::setprecision(3) << std::setw(13) << r.inproc_s << std::setprecision(2)
              << std::setw(13) << r.bytes / r.memcpy_s / 1e9 << std::setw(13) << r.grpc_s / r.inproc_s << "x\n"
              << std::flush;
    sync.push_back({{"payload", name},
                    {"tensors", r.tensors},
                    {"bytes", r.bytes},
                    {"grpc_seconds", r.grpc_s},
                    {"grpc_gb_per_s", gbps},
                    {"server_apply_ms", r.apply_ms},
                    {"inprocess_set_weights_seconds", r.inproc_s},
                    {"memcpy_gb_per_s", r.bytes / r.memcpy_s / 1e9},
                    {"grpc_over_inprocess", r.grpc_s / r.inproc_s}});
  }
  results["weight_sync"] = sync;

  const int64_t prompt_len = 64, new_tokens = quick ? 8 : 32;
  std::cout << "\nGenerate at 32 sequences (bf16, prompts of " << prompt_len << " tokens, " << new_tokens
            << " new tokens each, T = 1):\n";
  std::cout << std::left << std::setw(16) << "shape" << std::right << std::setw(10) << "tokens" << std::setw(16)
            << "in-proc tok/s" << std::setw(14) << "gRPC tok/s" << std::setw(16) << "in-proc/gRPC"
            << "\n";
  json gen = json::array();
  for (auto [prompts, n] : {std::pair<int64_t, int64_t>{4, 8}, {32, 1}}) {
    const GenRow r = generate_throughput(bf16, prompts, n, prompt_len, new_tokens, repeats);
    const std::string shape = std::to_string(prompts) + " x G=" + std::to_string(n);
    std::cout << std::left << std::setw(16) << shape << std::right << std::setw(10) << r.tokens << std::fixed
              << std::setprecision(1) << std::setw(16) << r.inproc_tps << std::setw(14) << r.grpc_tps
              << std::setprecision(3) << std::setw(15) << r.inproc_tps / r.grpc_tps << "x\n"
              << std::flush;
    gen.push_back({{"prompts", prompts},
                   {"n", n},
                   {"generated_tokens", r.tokens},
                   {"inprocess_tokens_per_s", r.inproc_tps},
                   {"grpc_tokens_per_s", r.grpc_tps},
                   {"overhead_ratio", r.inproc_tps / r.grpc_tps}});
  }
  results["generate_32_sequences"] = gen;
  results["load_average_end"] = load_average();
  std::filesystem::create_directories(std::filesystem::path(out_path).parent_path());
  std::ofstream(out_path) << results.dump(2) << "\n";
  std::cout << "\nwrote " << out_path << "\n";
  return 0;
}
