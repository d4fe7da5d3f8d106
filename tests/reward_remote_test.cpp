// Remote verifier plugins: the Python example plugin (examples/python_verifier/server.py) runs as
// a real process on a free loopback port; the C++ reward server routes requests to it by name,
// with deadlines and retries, and reports UNAVAILABLE once it is gone.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "reward/client.h"
#include "reward/server.h"
#include "tests/subprocess.h"

using namespace grpo::reward;
using grpo::testing::Subprocess;

namespace {

// Debian's interpreter, which has python3-grpcio and python3-protobuf (a PATH python may not).
std::string python() {
  struct stat st;
  return stat("/usr/bin/python3", &st) == 0 ? "/usr/bin/python3" : "python3";
}

v1::ScoreRequest make(const std::string& verifier, const std::string& completion, const std::string& reference) {
  v1::ScoreRequest r;
  r.set_verifier(verifier);
  r.set_completion(completion);
  r.set_reference(reference);
  return r;
}

grpc::StatusCode code_of(const std::function<void()>& f, std::string* message) {
  try {
    f();
  } catch (const RpcError& e) {
    *message = e.what();
    return e.code();
  }
  return grpc::OK;
}

class RemoteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    plugin_ = std::make_unique<Subprocess>(
        std::vector<std::string>{python(), GRPO_SOURCE_DIR "/examples/python_verifier/server.py", "--port", "0"});
    std::string line = plugin_->read_line();
    ASSERT_EQ(line.rfind("listening on ", 0), 0u) << line;
    plugin_address_ = line.substr(std::string("listening on ").size());
    auto config = grpo::Config::parse(
        "remote:\n"
        "  py: {address: '" +
            plugin_address_ +
            "', verifier: contains, timeout_ms: 2000, retries: 2, backoff_ms: 20}\n"
            "composites:\n"
            "  mixed:\n"
            "    accuracy: {verifier: py}\n"
            "    format: {weight: 0.5}\n",
        "reward.yaml");
    ServerOptions o = server_options_from_config(config);
    o.address = "127.0.0.1:0";
    server_ = std::make_unique<RewardServer>(registry_from_config(config), o);
    server_->start();
    client_ = std::make_unique<RewardClient>(server_->address());
  }

  std::unique_ptr<Subprocess> plugin_;
  std::string plugin_address_;
  std::unique_ptr<RewardServer> server_;
  std::unique_ptr<RewardClient> client_;
};

}  // namespace

TEST_F(RemoteTest, RoutesByNameToThePythonPlugin) {
  v1::ScoreResponse r = client_->score(make("py", "<think>Paris?</think> The capital is Paris.", "paris"));
  EXPECT_DOUBLE_EQ(r.reward(), 1.0);
  EXPECT_TRUE(r.correct());
  EXPECT_EQ(r.reason(), "python: found 'paris'");
  EXPECT_EQ(r.extracted(), "The capital is Paris.");
  EXPECT_DOUBLE_EQ(r.components().at("accuracy"), 1.0);
  EXPECT_DOUBLE_EQ(client_->score(make("py", "<think>x</think> Lyon", "paris")).reward(), 0.0);

  // Inside a composite: accuracy from Python, format from C++: 1 + 0.5 * 1.
  r = client_->score(make("mixed", "<think>x</think> Paris", "paris"));
  EXPECT_DOUBLE_EQ(r.reward(), 1.5);
  EXPECT_EQ(r.reason(), "accuracy: python: found 'paris'; format: ok");

  // Batch and stream items are routed too.
  auto batch = client_->score_batch({make("py", "Paris", "paris"), make("py", "Rome", "paris")});
  EXPECT_DOUBLE_EQ(batch[0].reward(), 1.0);
  EXPECT_DOUBLE_EQ(batch[1].reward(), 0.0);
  int streamed = 0;
  client_->score_stream({make("py", "Paris", "paris")}, [&](v1::ScoreResponse&& s) {
    EXPECT_DOUBLE_EQ(s.reward(), 1.0);
    ++streamed;
  });
  EXPECT_EQ(streamed, 1);

  // The plugin's own errors come back with their code and name the plugin.
  std::string msg;
  EXPECT_EQ(code_of([&] { client_->score(make("py", "Paris", "")); }, &msg), grpc::INVALID_ARGUMENT);
  EXPECT_NE(msg.find("remote verifier 'py'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("reference: required"), std::string::npos) << msg;
}

TEST_F(RemoteTest, ListedAndServedLikeAnyRewardService) {
  bool found = false;
  for (const auto& v : client_->list_verifiers())
    if (v.name() == "py") {
      found = true;
      EXPECT_EQ(v.kind(), "remote");
      EXPECT_EQ(v.description(), "remote verifier 'contains' at " + plugin_address_);
    }
  EXPECT_TRUE(found);
  // The plugin is a full RewardService: the C++ client talks to it directly.
  RewardClient direct(plugin_address_);
  auto list = direct.list_verifiers();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].name(), "contains");
  EXPECT_EQ(direct.health().status(), v1::HealthResponse::SERVING);
  auto batch = direct.score_batch({make("contains", "Paris", "paris"), make("nope", "x", "y")});
  EXPECT_DOUBLE_EQ(batch[0].reward(), 1.0);
  EXPECT_EQ(batch[1].error_code(), grpc::NOT_FOUND);
}

TEST_F(RemoteTest, SlowPluginHitsTheDeadlineAfterRetries) {
  // The plugin sleeps 3 s; each attempt has min(timeout_ms 2000, request limit 300) ms.
  v1::ScoreRequest r = make("py", "Paris", "paris");
  r.set_options(R"({"delay_ms": 3000})");
  r.mutable_limits()->set_timeout_ms(300);
  std::string msg;
  EXPECT_EQ(code_of([&] { client_->score(r); }, &msg), grpc::DEADLINE_EXCEEDED);
  EXPECT_NE(msg.find("remote verifier 'py'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("DEADLINE_EXCEEDED after 3 attempts"), std::string::npos) << msg;
}

TEST_F(RemoteTest, DeadPluginIsUnavailableAfterRetries) {
  EXPECT_DOUBLE_EQ(client_->score(make("py", "Paris", "paris")).reward(), 1.0);
  plugin_->signal(SIGKILL);
  ASSERT_EQ(plugin_->wait(), 128 + SIGKILL);
  std::string msg;
  EXPECT_EQ(code_of([&] { client_->score(make("py", "Paris", "paris")); }, &msg), grpc::UNAVAILABLE);
  EXPECT_NE(msg.find("remote verifier 'py'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("at " + plugin_address_), std::string::npos) << msg;
  EXPECT_NE(msg.find("UNAVAILABLE after 3 attempts"), std::string::npos) << msg;
  // The reward server itself is fine.
  EXPECT_DOUBLE_EQ(client_->score(make("format", "<think>a</think> b", "")).reward(), 1.0);
  EXPECT_EQ(client_->health().status(), v1::HealthResponse::SERVING);
}
