// Requests that must not crash or stall the reward server (issue: "no request may crash or stall
// a server"): payloads that are not the method's message are INVALID_ARGUMENT on every method, and
// sandboxed code runs that use their whole time limit do not delay cheap verdicts (worker pools
// per kind of verifier).
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <thread>

#include "raw_call.h"
#include "reward/client.h"
#include "reward/registry.h"
#include "reward/server.h"

using namespace grpo::reward;
using grpo::testing::malformed_protobuf;
using grpo::testing::raw_call;

namespace {

TEST(RewardServerAbuse, MalformedPayloadsAreInvalidArgumentOnEveryMethod) {
  auto registry = std::make_shared<VerifierRegistry>();
  register_builtin(*registry, {});
  ServerOptions o;
  o.address = "127.0.0.1:0";
  RewardServer server(registry, o);
  server.start();
  for (const char* method : {"Score", "ScoreBatch", "ListVerifiers", "Health"}) {
    const grpc::Status s =
        raw_call(server.address(), std::string("/grpo.reward.v1.RewardService/") + method, malformed_protobuf());
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << method << ": " << s.error_message();
    EXPECT_NE(s.error_message().find("malformed"), std::string::npos) << method << ": " << s.error_message();
  }
  RewardClient client(server.address());
  EXPECT_EQ(client.health().status(), v1::HealthResponse::SERVING);
  EXPECT_FALSE(client.list_verifiers().empty());
  server.shutdown();
}

// 16 code requests that spin to their 2 s limit fill the sandbox pool (2 workers: 16 s of work);
// math verdicts asked meanwhile with a 3 s deadline are answered at once from the default pool.
TEST(RewardServerAbuse, CheapVerdictsDoNotWaitBehindSandboxedRuns) {
  auto registry = std::make_shared<VerifierRegistry>();
  register_builtin(*registry, {});
  ServerOptions o;
  o.address = "127.0.0.1:0";
  o.workers = 2;
  RewardServer server(registry, o);
  server.start();
  RewardClient client(server.address(), {.timeout_ms = 60'000});
  std::vector<std::future<v1::ScoreResponse>> spinning;
  for (int i = 0; i < 16; ++i)
    spinning.push_back(std::async(std::launch::async, [&] {
      v1::ScoreRequest r;
      r.set_verifier("code");
      r.set_completion("```python\ndef f(x):\n    while True:\n        pass\n```");
      r.set_reference(R"({"language": "python", "tests": ["assert f(1) == 2"]})");
      r.set_reference_is_json(true);
      r.mutable_limits()->set_timeout_ms(2000);
      return client.score(r);
    }));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the code requests are queued
  EXPECT_GT(server.health().queued(), 0);
  for (int i = 0; i < 8; ++i) {
    v1::ScoreRequest r;
    r.set_verifier("math");
    r.set_completion("so the answer is \\boxed{" + std::to_string(i + 1) + "}");
    r.set_reference(std::to_string(i + 1));
    const v1::ScoreResponse out = client.score(r, /*timeout_ms=*/3000);  // throws DEADLINE_EXCEEDED if stuck
    EXPECT_TRUE(out.correct()) << out.reason();
  }
  for (auto& f : spinning) EXPECT_FALSE(f.get().correct());
  server.shutdown();
}

}  // namespace
