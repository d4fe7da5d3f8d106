// Shared by the expert-parallel tests: ranks as threads over a real Gloo group (on_ranks), and the
// `grpo learner` end-to-end fixture: a temp directory with a tiny DeepSeek-V3 run config
// (run.yaml), the learner command line, a shell that records stderr, and the metrics of a run.
#pragma once
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "learner/distributed.h"
#include "model/checkpoint.h"
#include "subprocess.h"

namespace grpo::testing {

namespace fs = std::filesystem;

// A port nobody listens on right now (bound to 0, read back, closed).
inline int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) ADD_FAILURE() << "bind: " << std::strerror(errno);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

// Runs fn(dist) on `world` ranks, one thread each, over a real Gloo group on loopback.
//
// LibTorch's c10d flight recorder (a process-wide log of collectives, read from
// TORCH_FR_BUFFER_SIZE when the first group is made) is turned off here: with several ranks' groups
// in one process it crashed about one run in 60 inside its own bookkeeping (a SIGSEGV in
// FlightRecorder::recordWithResetEnabled under ProcessGroupGloo::enqueue, seen in
// DispatchCombineMatchesLocalExpertsOnFourRanks; 300 runs in a row pass without it). A real
// `grpo learner` has one group per process and keeps it.
inline void on_ranks(int world, const std::function<void(Distributed&)>& fn) {
  static const bool recorder_off = [] { return setenv("TORCH_FR_BUFFER_SIZE", "0", /*overwrite=*/0) == 0; }();
  EXPECT_TRUE(recorder_off);
  const int port = free_port();
  std::vector<std::thread> threads;
  std::vector<std::string> errors(world);
  for (int r = 0; r < world; ++r)
    threads.emplace_back([&, r] {
      try {
        DistEnv env;
        env.rank = r;
        env.world_size = world;
        env.master_port = port;
        Distributed dist(env, std::chrono::seconds(30));
        fn(dist);
      } catch (const std::exception& e) {
        errors[r] = e.what();
      }
    });
  for (auto& t : threads) t.join();
  for (int r = 0; r < world; ++r) EXPECT_EQ(errors[r], "") << "rank " << r;
}

// Starts `command` (a `grpo learner` rank's command line, its --timeout 20) as ranks 0 and 1 of 2,
// directly as a scheduler (srun, an indexed Job) would, with RANK/WORLD_SIZE/MASTER_* set; once
// the file `ready` exists, kills rank 1. Rank 0 must stop with status 1 within a minute, naming
// the collective that failed.
inline void kill_rank_one_when(const std::string& command, const std::string& ready) {
  const std::string port = std::to_string(free_port());
  auto rank = [&](int r) {
    return std::make_unique<Subprocess>(
        std::vector<std::string>{"bash", "-c",
                                 "RANK=" + std::to_string(r) +
                                     " WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" + port + " exec " + command},
        "/dev/null", /*merge_stderr=*/true);
  };
  auto rank0 = rank(0), rank1 = rank(1);
  for (int i = 0; i < 6000 && !fs::exists(ready); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_TRUE(fs::exists(ready)) << "no checkpoint appeared";
  rank1->signal(SIGKILL);
  EXPECT_EQ(rank1->wait(), 128 + SIGKILL);
  EXPECT_EQ(rank0->wait(60'000), 1);  // bounded by --timeout 20 (and at once: the peer's socket closed)
  const std::string said = rank0->read_all();
  EXPECT_NE(said.find("rank 0 of 2: "), std::string::npos) << said;
  EXPECT_NE(said.find("failed (a peer rank exited or did not answer within 20"), std::string::npos) << said;
}

inline const std::string kTokenizer = std::string(GRPO_SOURCE_DIR) + "/configs/tiny-zero/tokenizer.json";
inline const std::string kTemplate = std::string(GRPO_SOURCE_DIR) + "/configs/chat_templates/tiny-zero.yaml";

class Learner : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "grpo_ep_XXXXXX").string();
    dir_ = ::mkdtemp(tmpl.data());
    // A tiny DeepSeek-V3: one dense layer, then MoE with 8 routed experts in 4 groups (topk_group 2),
    // noaux_tc with the aux-loss-free bias update on.
    std::ofstream(dir_ + "/run.yaml")
        << "pretrain:\n"
           "  model: {architectures: [DeepseekV3ForCausalLM], model_type: deepseek_v3, vocab_size: 262,\n"
           "          hidden_size: 32, intermediate_size: 48, moe_intermediate_size: 16, num_hidden_layers: 2,\n"
           "          first_k_dense_replace: 1, num_attention_heads: 2, q_lora_rank: null, kv_lora_rank: 16,\n"
           "          qk_nope_head_dim: 8, qk_rope_head_dim: 8, v_head_dim: 8, n_routed_experts: 8,\n"
           "          n_shared_experts: 1, num_experts_per_tok: 2, n_group: 4, topk_group: 2, bos_token_id: 0,\n"
           "          eos_token_id: 1}\n"
           "  tokenizer: "
        << kTokenizer
        << "\n"
           "  corpus: {task: digit_chains, template: "
        << kTemplate
        << ", step_fraction: 0.5}\n"
           "  seq_len: 48\n  batch_size: 8\n  steps: 4\n  threads: 1\n  seed: 7\n  log_every: 1\n"
           "  bias_update_speed: 0.01\n"
           "  optim: {lr: 5.0e-3, warmup_steps: 1}\n";  // Adam amplifies fp32 summation-order noise by lr / sqrt(v)
  }
  void TearDown() override { fs::remove_all(dir_); }

 public:  // for helpers shared by several tests (they take the fixture)
  const std::string& dir() const { return dir_; }
  std::string learner_cmd(const std::string& run, const std::string& flags, const std::string& extra = "") const {
    return std::string(GRPO_BINARY) + " learner --config " + dir_ + "/run.yaml --quiet --timeout 20 " + flags +
           " pretrain.out_dir=" + dir_ + "/" + run + " " + extra;
  }
  // Runs a shell command; returns its exit status, stdout in *out, stderr in *err. A failure is a
  // test failure unless `may_fail`.
  int shell(const std::string& cmd, std::string* out = nullptr, std::string* err = nullptr,
            bool may_fail = false) const {
    const std::string err_file = dir_ + "/stderr.txt";
    Subprocess p({"bash", "-c", "{ " + cmd + "; } 2> " + err_file});
    const std::string o = p.read_all();
    const int status = p.wait(120'000);
    if (out) *out = o;
    std::ifstream in(err_file);
    std::stringstream ss;
    ss << in.rdbuf();
    if (err) *err = ss.str();
    if (status != 0 && !may_fail) ADD_FAILURE() << cmd << " -> " << status << "\n" << ss.str();
    return status;
  }
  // metrics.jsonl of a run: the value of `key` at every step that logged it.
  std::vector<double> series(const std::string& run, const std::string& key) const {
    std::ifstream in(dir_ + "/" + run + "/logs/metrics.jsonl");
    std::vector<double> out;
    for (std::string line; std::getline(in, line);) {
      if (line.empty()) continue;
      const nlohmann::json j = nlohmann::json::parse(line);
      if (j.contains(key)) out.push_back(j.at(key).get<double>());
    }
    return out;
  }
  void expect_same_run(const std::string& a, const std::string& b, double tol = 1e-5) const {
    for (const char* key : {"loss", "grad_norm"}) {
      const auto x = series(a, key), y = series(b, key);
      ASSERT_EQ(x.size(), 4u) << a;
      ASSERT_EQ(y.size(), 4u) << b;
      for (size_t i = 0; i < x.size(); ++i)
        EXPECT_NEAR(x[i], y[i], tol * std::max(1.0, std::abs(x[i]))) << key << " step " << i + 1;
    }
    const auto wa = load_weights(dir_ + "/" + a), wb = load_weights(dir_ + "/" + b);
    ASSERT_EQ(wa.size(), wb.size());
    double worst = 0;
    for (const auto& [name, t] : wa) {
      ASSERT_TRUE(wb.count(name)) << name;
      worst = std::max(worst, (t - wb.at(name)).abs().max().item<double>());
    }
    EXPECT_LT(worst, tol) << a << " vs " << b;
  }

 protected:
  std::string dir_;
};

}  // namespace grpo::testing
