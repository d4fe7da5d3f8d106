// `grpo rollout-server` as the real binary: it prints its bound address, answers Status with
// the checkpoint's config, generates what the in-process engine generates, takes a weight update
// and stops cleanly on SIGTERM; config errors name the file and key.
#include <gtest/gtest.h>

#include "rollout_service_util.h"
#include "tests/subprocess.h"

using namespace grpo;
using namespace grpo::rollout;
using namespace grpo::testing;

namespace {

const std::string kConfig = GRPO_SOURCE_DIR "/configs/rollout.yaml";

TEST(RolloutSvcCli, ServesUntilSigterm) {
  Subprocess server({GRPO_BINARY, "rollout-server", "--model", fixture_dir(), "--config", kConfig, "--address",
                     "127.0.0.1:0", "--threads", "1", "--max-seqs", "6", "engine.num_pages=300"});
  const std::string first = server.read_line(60'000);
  const std::string prefix = "rollout-server listening on ";
  ASSERT_EQ(first.rfind(prefix, 0), 0u) << first;
  const std::string address = first.substr(prefix.size(), first.find(' ', prefix.size()) - prefix.size());
  EXPECT_EQ(address.rfind("127.0.0.1:", 0), 0u) << address;

  RolloutClient client(address);
  v1::StatusResponse s = client.status();
  EXPECT_EQ(s.model().vocab_size(), 512);
  EXPECT_EQ(s.model().hidden_size(), 64);
  EXPECT_EQ(s.model().dtype(), "fp32");
  EXPECT_EQ(s.max_seqs(), 6) << "--max-seqs";
  EXPECT_EQ(s.pages_total(), 300) << "engine.num_pages=300";
  EXPECT_EQ(s.weight_version(), 0);

  GenerateCall call;
  call.prompts = {{random_prompt(7, 512, 5), 3, 77}};
  call.params.max_new_tokens = 12;
  ServedMap got = generate_all(client, call);
  Engine local(fixture_model(), 0, EngineOptions{});
  Request r{call.prompts[0].token_ids, 3, call.params};
  r.params.sampling.seed = 77;
  const uint64_t id = local.submit(r);
  CompletionMap want = by_key(local.run_until_idle());
  for (int64_t k = 0; k < 3; ++k) {
    EXPECT_EQ(got.at({0, k}).token_ids, want.at({id, k}).token_ids) << "sample " << k;
    for (size_t t = 0; t < got.at({0, k}).logprobs.size(); ++t)
      EXPECT_NEAR(got.at({0, k}).logprobs[t], want.at({id, k}).logprobs[t], 1e-4);
  }
  EXPECT_EQ(client.update_weights(1, other_weights(51)->state_dict()).version, 1);

  // The client stays connected: an idle connection must not hold the shutdown up (the test's
  // wait() gives it 3 s, less than the 5 s grace).
  server.signal(SIGTERM);
  EXPECT_EQ(server.wait(3'000), 0);
  std::string message;
  ClientOptions quick;
  quick.timeout_ms = 500;
  RolloutClient gone(address, quick);
  EXPECT_EQ(rpc_code([&] { gone.status(); }, &message), grpc::UNAVAILABLE) << message;
}

TEST(RolloutSvcCli, ConfigErrorsNameFileAndKey) {
  auto run = [](const std::vector<std::string>& extra) {
    std::vector<std::string> argv = {GRPO_BINARY, "rollout-server", "--model", fixture_dir(), "--config", kConfig};
    argv.insert(argv.end(), extra.begin(), extra.end());
    Subprocess p(argv, "/dev/null", /*merge_stderr=*/true);
    std::string out = p.read_all();
    return std::make_pair(p.wait(), out);
  };
  auto [status, out] = run({"server.max_cals=3"});
  EXPECT_EQ(status, 2);
  EXPECT_NE(out.find("rollout.yaml: key 'server.max_cals': unknown key"), std::string::npos) << out;
  std::tie(status, out) = run({"engine.max_seqs=0"});
  EXPECT_EQ(status, 2);
  EXPECT_NE(out.find("rollout.yaml: key 'engine.max_seqs': must be >= 1, got 0"), std::string::npos) << out;
  std::tie(status, out) = run({"--dtype", "fp16"});
  EXPECT_EQ(status, 2);
  EXPECT_NE(out.find("--dtype: expected fp32, bf16, fp8 or auto"), std::string::npos) << out;
}

}  // namespace
