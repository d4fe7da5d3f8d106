// Weight publishing from expert-parallel ranks (train/ep_publisher.h), end to end with real
// processes and real gRPC on loopback: two RolloutServers (in this process) start on random
// weights of the run's tiny DeepSeek-V3; `grpo learner --nproc 2` trains 4 steps publishing every
// 2 steps (a bad publish section is refused first). Then
// * both workers serve version 4, reached by 2 updates;
// * their greedy completions equal, token for token and log-prob for log-prob (exactly), those of
//   an engine on the run's saved checkpoint: the published weights are the checkpoint's;
// * each rank sent only what it holds: rank 1 exactly the routed experts 4..7 (no replicated
//   tensor), rank 0 everything else, with those tensors' bytes to each of the 2 workers.
#include <gtest/gtest.h>

#include <regex>

#include "common/config.h"
#include "learner/pretrain.h"
#include "learner_ep_testutil.h"
#include "model/deepseek.h"
#include "model/init.h"
#include "model/pretrained.h"
#include "rollout/engine.h"
#include "rollout/service/client.h"
#include "rollout/service/server.h"

namespace grpo {
namespace {

using testing::free_port;
using testing::Learner;

// A rollout worker on its own weights, on 127.0.0.1:0.
struct Worker {
  std::shared_ptr<rollout::Engine> engine;
  std::unique_ptr<rollout::RolloutServer> server;
  std::unique_ptr<rollout::RolloutClient> client;

  explicit Worker(DeepseekModel model) {
    engine = std::make_shared<rollout::Engine>(std::make_shared<const DeepseekModel>(std::move(model)), 0,
                                               rollout::EngineOptions{});
    server = std::make_unique<rollout::RolloutServer>(engine, rollout::ServerOptions{});
    server->start();
    client = std::make_unique<rollout::RolloutClient>(server->address());
  }
};

// Greedy completions of `prompts` as one request each.
std::vector<rollout::Completion> greedy_served(const rollout::RolloutClient& client,
                                               const std::vector<std::vector<int64_t>>& prompts) {
  rollout::GenerateCall call;
  for (const auto& p : prompts) call.prompts.push_back({p, 1, {}});
  call.params.sampling.temperature = 0;
  call.params.max_new_tokens = 10;
  std::vector<rollout::Completion> out(prompts.size());
  client.generate(call, [&](size_t i, rollout::Completion&& c) { out[i] = std::move(c); });
  return out;
}

std::vector<rollout::Completion> greedy_local(rollout::Engine& engine,
                                              const std::vector<std::vector<int64_t>>& prompts) {
  rollout::GenerationParams params;
  params.sampling.temperature = 0;
  params.max_new_tokens = 10;
  std::vector<rollout::Completion> out(prompts.size());
  std::map<uint64_t, size_t> index;
  for (size_t i = 0; i < prompts.size(); ++i) {
    std::vector<rollout::Request> r{{prompts[i], 1, params}};
    index[engine.submit(r).at(0)] = i;
  }
  for (rollout::Completion& c : engine.run_until_idle()) out[index.at(c.request_id)] = std::move(c);
  return out;
}

TEST_F(Learner, EachRankPublishesItsOwnExpertsAndTheWorkersServeTheCheckpoint) {
  const PretrainOptions options = PretrainOptions::from_config(
      Config::load(dir_ + "/run.yaml", {"pretrain.out_dir=" + dir_ + "/ep2"}).sub("pretrain"));
  const ModelConfig config = ModelConfig::from_json(options.model, options.model_source);
  std::vector<std::unique_ptr<Worker>> workers;
  for (uint64_t seed : {101, 102}) {
    DeepseekModel m(config);
    init_weights(m, seed);
    workers.push_back(std::make_unique<Worker>(std::move(m)));
  }
  std::ofstream(dir_ + "/run.yaml", std::ios::app) << "publish: {rollout: [" << workers[0]->server->address() << ", "
                                                   << workers[1]->server->address() << "], every: 2}\n";
  // A bad publish section fails before any rank starts, naming the key.
  std::string err;
  EXPECT_EQ(shell(learner_cmd("bad", "--nproc 2", "publish.every=-1"), nullptr, &err, /*may_fail=*/true),
            2);  // input error
  EXPECT_NE(err.find("publish.every': expected an integer >= 0"), std::string::npos) << err;
  // Metrics every 3 steps: the publishes of steps 2 and 4 log their step anyway.
  ASSERT_EQ(shell(learner_cmd("ep2", "--nproc 2 --master-port " + std::to_string(free_port()), "pretrain.log_every=3")),
            0);

  for (const auto& w : workers) {
    const auto s = w->client->status();
    EXPECT_EQ(s.weight_version(), 4);
    EXPECT_EQ(s.weight_updates(), 2);
  }
  EXPECT_EQ(series("ep2", "sync/version"), (std::vector<double>{2, 4}));
  EXPECT_EQ(series("ep2", "sync/workers"), (std::vector<double>{2, 2}));

  // The served weights are the checkpoint's, exactly.
  auto saved = std::make_shared<const DeepseekModel>(load_pretrained(dir_ + "/ep2"));
  rollout::Engine local(saved, 4, rollout::EngineOptions{});
  std::vector<std::vector<int64_t>> prompts;
  for (int64_t i = 0; i < 3; ++i) prompts.push_back({0, 10 + i, 20, 30 + 2 * i, 40});
  const auto want = greedy_local(local, prompts);
  for (const auto& w : workers) {
    const auto got = greedy_served(*w->client, prompts);
    for (size_t i = 0; i < prompts.size(); ++i) {
      EXPECT_EQ(got[i].weight_version, 4);
      EXPECT_EQ(got[i].token_ids, want[i].token_ids) << "prompt " << i;
      EXPECT_EQ(got[i].logprobs, want[i].logprobs) << "prompt " << i;
    }
  }

  // What each rank sent: rank 1 the experts 4..7 of every MoE layer, rank 0 all the rest.
  const std::regex expert(R"(model\.layers\.\d+\.mlp\.experts\.(\d+)\..*)");
  int64_t tensors[2] = {0, 0}, bytes[2] = {0, 0};
  for (const auto& [name, t] : saved->state_dict()) {
    std::smatch m;
    const int rank = std::regex_match(name, m, expert) && std::stoi(m[1]) >= 4 ? 1 : 0;
    tensors[rank] += 1;
    bytes[rank] += t.nbytes() * 2;  // to each of the 2 workers
  }
  ASSERT_EQ(tensors[1], 3 * 4);  // one MoE layer, 4 experts, 3 projections
  for (int r = 0; r < 2; ++r) {
    const std::string rank = "sync/rank" + std::to_string(r) + "/";
    EXPECT_EQ(series("ep2", rank + "tensors"), (std::vector<double>{double(tensors[r]), double(tensors[r])}));
    EXPECT_EQ(series("ep2", rank + "bytes"), (std::vector<double>{double(bytes[r]), double(bytes[r])}));
  }
  EXPECT_EQ(series("ep2", "sync/bytes"),
            (std::vector<double>{double(bytes[0] + bytes[1]), double(bytes[0] + bytes[1])}));
}

}  // namespace
}  // namespace grpo
