// RewardServer and RewardClient over real gRPC on a loopback port: round trips for every RPC,
// bad requests answered with the right status while the server keeps serving, the bounded queue,
// deadlines and graceful shutdown.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <set>
#include <thread>

#include "reward/client.h"
#include "reward/format.h"
#include "reward/server.h"

using namespace grpo::reward;
using grpo::InputError;

namespace {

// Blocks inside verify() until open() is called; lets a test hold workers busy deterministically.
class GateVerifier : public Verifier {
 public:
  std::string name() const override { return "gate"; }
  std::string description() const override { return "test: blocks until released"; }
  VerifyResult verify(const VerifyRequest&) const override {
    std::unique_lock<std::mutex> lock(mu_);
    ++entered_;
    cv_.notify_all();
    cv_.wait(lock, [&] { return open_; });
    VerifyResult r;
    r.reward = 1;
    r.correct = true;
    r.reason = "released";
    return r;
  }
  void open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  void wait_entered(int n) const {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return entered_ >= n; });
  }

 private:
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  mutable int entered_ = 0;
  bool open_ = false;
};

// Sleeps options.ms (default 300) and reports the timeout it was given.
class SlowVerifier : public Verifier {
 public:
  std::string name() const override { return "slow"; }
  std::string description() const override { return "test: sleeps"; }
  VerifyResult verify(const VerifyRequest& r) const override {
    int ms = r.options.is_object() && r.options.contains("ms") ? r.options["ms"].get<int>() : 300;
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    VerifyResult out;
    out.reason = "timeout_ms=" + std::to_string(r.limits.timeout_ms);
    return out;
  }
};

// reference "boom": a bug inside the verifier; reference {} : a request missing a field.
class FaultyVerifier : public Verifier {
 public:
  std::string name() const override { return "faulty"; }
  std::string description() const override { return "test: fails"; }
  VerifyResult verify(const VerifyRequest& r) const override {
    if (r.reference.is_object() && !r.reference.contains("tests"))
      throw InputError("reference.tests: required (a list of {input, output})");
    if (r.reference == "boom") throw std::runtime_error("boom: index 7 out of range");
    VerifyResult out;
    out.reward = 0.5;
    out.reason = "fine";
    out.extracted = r.completion;  // may hold invalid UTF-8; the server must clean it
    out.components["accuracy"] = 0.5;
    return out;
  }
};

ClientOptions client_options(int64_t timeout_ms, int retries = 0, int64_t backoff_ms = 50) {
  ClientOptions o;
  o.timeout_ms = timeout_ms;
  o.retries = retries;
  o.backoff_ms = backoff_ms;
  return o;
}

std::shared_ptr<const VerifierRegistry> test_registry(std::shared_ptr<GateVerifier> gate) {
  auto r = std::make_shared<VerifierRegistry>();
  register_builtin(*r, {{"overlong", {{"max_len", 8}, {"cache", 4}}}});
  r->add(gate, "test");
  r->add(std::make_shared<SlowVerifier>(), "test");
  r->add(std::make_shared<FaultyVerifier>(), "test");
  return r;
}

v1::ScoreRequest make(const std::string& verifier, const std::string& completion, const std::string& id = "") {
  v1::ScoreRequest r;
  r.set_id(id);
  r.set_verifier(verifier);
  r.set_completion(completion);
  return r;
}

grpc::StatusCode code_of(const std::function<void()>& f, std::string* message = nullptr) {
  try {
    f();
  } catch (const RpcError& e) {
    if (message) *message = e.what();
    return e.code();
  }
  return grpc::OK;
}

class ServerTest : public ::testing::Test {
 protected:
  void start(ServerOptions o = {}) {
    gate_ = std::make_shared<GateVerifier>();
    o.address = "127.0.0.1:0";
    server_ = std::make_unique<RewardServer>(test_registry(gate_), o);
    server_->start();
    client_ = std::make_unique<RewardClient>(server_->address());
  }
  void SetUp() override {
    ServerOptions o;
    o.workers = 2;
    o.stream_window = 4;
    start(o);
  }
  void TearDown() override {
    if (gate_) gate_->open();
  }
  // Polls Health until pred holds (at most 10 s).
  void wait_for(const std::function<bool(const v1::HealthResponse&)>& pred) {
    for (int i = 0; i < 1000; ++i) {
      if (pred(server_->health())) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    FAIL() << "server never reached the expected state: " << server_->health().DebugString();
  }

  std::shared_ptr<GateVerifier> gate_;
  std::unique_ptr<RewardServer> server_;
  std::unique_ptr<RewardClient> client_;
};

}  // namespace

TEST_F(ServerTest, ScoreRoundTrip) {
  EXPECT_EQ(server_->address().rfind("127.0.0.1:", 0), 0u);
  v1::ScoreResponse r = client_->score(make("format", "<think>2+2</think> <answer>4</answer>", "q1/0"));
  EXPECT_EQ(r.id(), "q1/0");
  EXPECT_EQ(r.verifier(), "format");
  EXPECT_DOUBLE_EQ(r.reward(), 1.0);
  EXPECT_TRUE(r.correct());
  EXPECT_EQ(r.reason(), "ok");
  EXPECT_EQ(r.extracted(), "4");
  EXPECT_DOUBLE_EQ(r.components().at("format"), 1.0);
  EXPECT_EQ(r.error_code(), 0);
  EXPECT_GE(r.timings().total_us(), r.timings().verify_us());
  EXPECT_GE(r.timings().queue_us(), 0);

  // Options and completion_tokens reach the verifier: 6 tokens with max_len 8, cache 4 -> -0.5.
  v1::ScoreRequest o = make("overlong", "short");
  o.set_completion_tokens(6);
  EXPECT_DOUBLE_EQ(client_->score(o).reward(), -0.5);
  o.set_options(R"({"cache": 2})");  // free up to 6 -> 0
  EXPECT_DOUBLE_EQ(client_->score(o).reward(), 0.0);
  // Request weights recombine the components.
  v1::ScoreRequest w = make("format", "<think>a</think> b");
  (*w.mutable_weights())["format"] = 0.25;
  EXPECT_DOUBLE_EQ(client_->score(w).reward(), 0.25);
}

TEST_F(ServerTest, MathVerifierOverTheWire) {
  v1::ScoreRequest r = make("math", "<think>one half</think> The answer is \\boxed{0.5}");
  r.set_reference("\\frac{1}{2}");
  v1::ScoreResponse out = client_->score(r);
  EXPECT_TRUE(out.correct()) << out.reason();
  EXPECT_DOUBLE_EQ(out.reward(), 1.0);
  EXPECT_DOUBLE_EQ(out.components().at("accuracy"), 1.0);
  EXPECT_FALSE(out.extracted().empty());
  // A structured reference travels as JSON text.
  r.set_completion("\\boxed{42}");
  r.set_reference(R"({"answer": 42})");
  r.set_reference_is_json(true);
  EXPECT_TRUE(client_->score(r).correct());
  r.set_completion("\\boxed{41}");
  EXPECT_FALSE(client_->score(r).correct());
  r.set_reference(R"({"answr": 42})");
  std::string msg;
  EXPECT_EQ(code_of([&] { client_->score(r); }, &msg), grpc::INVALID_ARGUMENT);
  EXPECT_NE(msg.find("reference"), std::string::npos) << msg;
}

TEST_F(ServerTest, CodeVerifierWithJsonReference) {
  // Code tests travel as JSON text; the program runs in the sandbox.
  v1::ScoreRequest r = make("code", "<think>add one</think>\n```python\ndef f(x):\n    return x + 1\n```");
  r.set_reference(R"({"language": "python", "tests": ["assert f(1) == 2", "assert f(-1) == 0"]})");
  r.set_reference_is_json(true);
  v1::ScoreResponse out = client_->score(r);
  EXPECT_TRUE(out.correct()) << out.reason();
  EXPECT_DOUBLE_EQ(out.reward(), 1.0);
  r.set_completion("```python\ndef f(x):\n    return x\n```");
  out = client_->score(r);
  EXPECT_FALSE(out.correct());
  EXPECT_NE(out.reason().find("assert f(1) == 2"), std::string::npos) << out.reason();
  r.set_reference(R"({"language": "python"})");
  std::string msg;
  EXPECT_EQ(code_of([&] { client_->score(r); }, &msg), grpc::INVALID_ARGUMENT);
  EXPECT_NE(msg.find("reference"), std::string::npos) << msg;
}

TEST_F(ServerTest, BatchKeepsOrderAndReportsItemErrors) {
  std::vector<v1::ScoreRequest> batch = {make("format", "<think>a</think> b", "a"), make("nope", "x", "b"),
                                         make("format", "no think", "c"), make("faulty", "x", "d")};
  batch[3].set_reference("boom");
  auto out = client_->score_batch(batch);
  ASSERT_EQ(out.size(), 4u);
  EXPECT_EQ(out[0].id(), "a");
  EXPECT_DOUBLE_EQ(out[0].reward(), 1.0);
  EXPECT_EQ(out[1].id(), "b");
  EXPECT_EQ(out[1].error_code(), grpc::NOT_FOUND);
  EXPECT_NE(out[1].error_message().find("unknown verifier 'nope'"), std::string::npos);
  EXPECT_EQ(out[2].id(), "c");
  EXPECT_DOUBLE_EQ(out[2].reward(), 0.0);
  EXPECT_EQ(out[2].reason(), "does not start with <think>");
  EXPECT_EQ(out[3].error_code(), grpc::INTERNAL);
  EXPECT_NE(out[3].error_message().find("boom: index 7 out of range"), std::string::npos);
  EXPECT_TRUE(client_->score_batch({}).empty());
}

TEST_F(ServerTest, StreamAnswersEveryRequestById) {
  // 40 requests through a window of 4: even ids well-formed, odd ids not.
  std::vector<v1::ScoreRequest> requests;
  for (int i = 0; i < 40; ++i)
    requests.push_back(make(i == 7 ? "nope" : "format", i % 2 ? "no think" : "<think>x</think> y", std::to_string(i)));
  std::map<std::string, v1::ScoreResponse> got;
  client_->score_stream(requests, [&](v1::ScoreResponse&& r) { got[r.id()] = r; });
  ASSERT_EQ(got.size(), 40u);
  for (int i = 0; i < 40; ++i) {
    const auto& r = got[std::to_string(i)];
    if (i == 7) {
      EXPECT_EQ(r.error_code(), grpc::NOT_FOUND);
      continue;
    }
    EXPECT_EQ(r.error_code(), 0) << r.error_message();
    EXPECT_DOUBLE_EQ(r.reward(), i % 2 ? 0.0 : 1.0) << i;
  }
  // An empty stream finishes cleanly.
  int n = 0;
  client_->score_stream({}, [&](v1::ScoreResponse&&) { ++n; });
  EXPECT_EQ(n, 0);
}

TEST_F(ServerTest, ListVerifiersAndHealth) {
  auto list = client_->list_verifiers();
  std::vector<std::string> names;
  for (const auto& v : list) names.push_back(v.name());
  EXPECT_EQ(names,
            (std::vector<std::string>{"code", "faulty", "format", "gate", "language", "math", "overlong", "slow"}));
  EXPECT_EQ(list[2].kind(), "builtin");
  EXPECT_EQ(list[3].kind(), "test");
  EXPECT_NE(list[2].description().find("R1 format"), std::string::npos);
  client_->score(make("format", "x"));
  v1::HealthResponse h = client_->health();
  EXPECT_EQ(h.status(), v1::HealthResponse::SERVING);
  EXPECT_EQ(h.workers(), 2);
  EXPECT_EQ(h.max_queue(), 1024);
  EXPECT_EQ(h.served(), 1u);
  EXPECT_EQ(h.queued(), 0);
}

TEST_F(ServerTest, BadRequestsGetStatusesAndServingContinues) {
  std::string msg;
  EXPECT_EQ(code_of([&] { client_->score(make("mth", "x")); }, &msg), grpc::NOT_FOUND);
  EXPECT_NE(msg.find("unknown verifier 'mth' (registered: code, faulty, format, gate"), std::string::npos) << msg;
  EXPECT_EQ(code_of([&] { client_->score(make("", "x")); }, &msg), grpc::INVALID_ARGUMENT);
  EXPECT_NE(msg.find("verifier: required"), std::string::npos);

  v1::ScoreRequest r = make("faulty", "x");
  r.set_reference("{}");
  r.set_reference_is_json(true);
  EXPECT_EQ(code_of([&] { client_->score(r); }, &msg), grpc::INVALID_ARGUMENT);
  EXPECT_NE(msg.find("reference.tests: required"), std::string::npos) << msg;
  r.set_reference("{\"tests\": [");
  EXPECT_EQ(code_of([&] { client_->score(r); }, &msg), grpc::INVALID_ARGUMENT);
  EXPECT_NE(msg.find("reference: invalid JSON"), std::string::npos) << msg;

  r = make("format", "x");
  r.set_options("[1]");
  EXPECT_EQ(code_of([&] { client_->score(r); }, &msg), grpc::INVALID_ARGUMENT);
  EXPECT_NE(msg.find("options: expected a JSON object"), std::string::npos) << msg;
  r.set_options(R"({"answer_tags": 1})");
  EXPECT_EQ(code_of([&] { client_->score(r); }, &msg), grpc::INVALID_ARGUMENT);
  EXPECT_NE(msg.find("option 'answer_tags': expected true or false"), std::string::npos) << msg;
  r.set_options("");
  r.mutable_limits()->set_timeout_ms(-5);
  EXPECT_EQ(code_of([&] { client_->score(r); }, &msg), grpc::INVALID_ARGUMENT);
  EXPECT_NE(msg.find("limits.timeout_ms: must be >= 0"), std::string::npos) << msg;
  r = make("format", "x");
  (*r.mutable_weights())["accuracy"] = 1;
  EXPECT_EQ(code_of([&] { client_->score(r); }, &msg), grpc::INVALID_ARGUMENT);
  EXPECT_NE(msg.find("has no component 'accuracy' (it has: format)"), std::string::npos) << msg;

  // A verifier that throws: INTERNAL with its message, and the next request is served.
  r = make("faulty", "x");
  r.set_reference("boom");
  EXPECT_EQ(code_of([&] { client_->score(r); }, &msg), grpc::INTERNAL);
  EXPECT_NE(msg.find("verifier 'faulty' failed: boom: index 7 out of range"), std::string::npos) << msg;
  EXPECT_DOUBLE_EQ(client_->score(make("faulty", "fine")).reward(), 0.5);
  EXPECT_EQ(client_->health().status(), v1::HealthResponse::SERVING);
}

TEST_F(ServerTest, InvalidUtf8) {
  // The completion is bytes: a completion cut inside a character is scored, and the response's
  // strings come back as valid UTF-8 (U+FFFD for the bad bytes).
  v1::ScoreResponse r = client_->score(make("faulty", "answer \xE4\xB8"));
  EXPECT_DOUBLE_EQ(r.reward(), 0.5);
  EXPECT_EQ(r.extracted(), "answer \xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_DOUBLE_EQ(client_->score(make("format", "<think>\xFF</think> \xC3")).reward(), 1.0);

  // A string field with invalid UTF-8 is refused naming the field (protobuf rejects it at parse).
  v1::ScoreRequest bad = make("format", "x");
  bad.set_reference("caf\xC3");
  std::string msg;
  EXPECT_EQ(code_of([&] { client_->score(bad); }, &msg), grpc::INVALID_ARGUMENT);
  EXPECT_NE(msg.find("field 'reference' is not valid UTF-8"), std::string::npos) << msg;
  bad = make("format", "x");
  (*bad.mutable_weights())["w\xFF"] = 1.0;
  EXPECT_EQ(code_of([&] { client_->score(bad); }, &msg), grpc::INVALID_ARGUMENT);
  EXPECT_NE(msg.find("field 'weights.key' is not valid UTF-8"), std::string::npos) << msg;
  std::vector<v1::ScoreRequest> batch = {make("format", "x"), make("format", "x")};
  batch[1].set_verifier("form\xE2\x82");
  EXPECT_EQ(code_of([&] { client_->score_batch(batch); }, &msg), grpc::INVALID_ARGUMENT);
  EXPECT_NE(msg.find("field 'requests[1].verifier' is not valid UTF-8"), std::string::npos) << msg;
  // In a stream the bad item gets an error reply and the others are scored.
  std::vector<v1::ScoreRequest> stream = {make("format", "<think>a</think> b", "ok"), make("format", "x", "bad")};
  stream[1].set_options("{\"x\": \"\xFF\"}");
  std::vector<v1::ScoreResponse> got;
  client_->score_stream(stream, [&](v1::ScoreResponse&& r) { got.push_back(r); });
  ASSERT_EQ(got.size(), 2u);
  int errors = 0;
  for (const auto& g : got)
    if (g.error_code() == grpc::INVALID_ARGUMENT) {
      ++errors;
      EXPECT_NE(g.error_message().find("field 'options' is not valid UTF-8"), std::string::npos);
    } else {
      EXPECT_EQ(g.id(), "ok");
    }
  EXPECT_EQ(errors, 1);
  EXPECT_DOUBLE_EQ(client_->score(make("format", "<think>a</think> b")).reward(), 1.0);
}

TEST_F(ServerTest, HugeCompletionsScoreZeroUnderTheLimit) {
  // 10 MB fits the 64 MB message limit but not max_completion_bytes (1 MiB): reward 0, reason.
  const std::string huge = "<think>" + std::string(10 << 20, 'a') + "</think> 4";
  v1::ScoreResponse r = client_->score(make("format", huge));
  EXPECT_DOUBLE_EQ(r.reward(), 0.0);
  EXPECT_FALSE(r.correct());
  EXPECT_EQ(r.reason(), "completion too long: " + std::to_string(huge.size()) + " bytes > limit 1048576");
  // A request may lower the limit, not raise it.
  v1::ScoreRequest lower = make("format", "<think>a</think> 4");
  lower.mutable_limits()->set_max_completion_bytes(5);
  EXPECT_EQ(client_->score(lower).reason(), "completion too long: 18 bytes > limit 5");
  v1::ScoreRequest higher = make("format", "<think>" + std::string(2 << 20, 'a') + "</think> 4");
  higher.mutable_limits()->set_max_completion_bytes(100 << 20);
  EXPECT_NE(client_->score(higher).reason().find("> limit 1048576"), std::string::npos);
}

TEST_F(ServerTest, MessagesOverTheMaxSizeAreResourceExhausted) {
  ServerOptions o;
  o.max_message_bytes = 4 << 20;
  start(o);
  std::string msg;
  EXPECT_EQ(code_of([&] { client_->score(make("format", std::string(10 << 20, 'a'))); }, &msg),
            grpc::RESOURCE_EXHAUSTED);
  EXPECT_NE(msg.find("larger than max"), std::string::npos) << msg;
  EXPECT_DOUBLE_EQ(client_->score(make("format", "<think>a</think> b")).reward(), 1.0);
}

TEST_F(ServerTest, FullQueueIsRefusedAtOnce) {
  ServerOptions o;
  o.workers = 1;
  o.max_queue = 1;
  start(o);
  auto first = std::async(std::launch::async, [&] { return client_->score(make("gate", "a", "first")); });
  gate_->wait_entered(1);  // the only worker is busy
  auto second = std::async(std::launch::async, [&] { return client_->score(make("gate", "b", "second")); });
  wait_for([](const v1::HealthResponse& h) { return h.running() == 1 && h.queued() == 1; });
  std::string msg;
  EXPECT_EQ(code_of([&] { client_->score(make("format", "c")); }, &msg), grpc::RESOURCE_EXHAUSTED);
  EXPECT_NE(msg.find("reward server busy: 1 tasks queued in pool 'default', 1 more do not fit (server.max_queue=1)"),
            std::string::npos)
      << msg;
  EXPECT_EQ(code_of([&] {
              client_->score_batch({make("format", "c"), make("format", "d")});
            }),
            grpc::RESOURCE_EXHAUSTED);
  // In a stream the refused item gets its own error reply.
  std::vector<v1::ScoreResponse> got;
  client_->score_stream({make("format", "c", "s")}, [&](v1::ScoreResponse&& r) { got.push_back(r); });
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].error_code(), grpc::RESOURCE_EXHAUSTED);
  EXPECT_EQ(server_->health().rejected(), 3u);
  gate_->open();
  EXPECT_EQ(first.get().reason(), "released");
  EXPECT_EQ(second.get().reason(), "released");
  EXPECT_DOUBLE_EQ(client_->score(make("format", "<think>a</think> b")).reward(), 1.0);
}

TEST_F(ServerTest, PendingRequestDataIsBounded) {
  ServerOptions o;
  o.workers = 2;
  o.max_message_bytes = 1 << 20;
  o.max_pending_bytes = 1 << 20;
  start(o);
  const std::string big(600 << 10, 'a');
  auto held = std::async(std::launch::async, [&] { return client_->score(make("gate", big)); });
  gate_->wait_entered(1);
  EXPECT_EQ(server_->health().pending_bytes(), 600 << 10);
  std::string msg;
  EXPECT_EQ(code_of([&] { client_->score(make("format", big)); }, &msg), grpc::RESOURCE_EXHAUSTED);
  EXPECT_NE(msg.find("more bytes do not fit (server.max_pending_mb=1)"), std::string::npos) << msg;
  EXPECT_DOUBLE_EQ(client_->score(make("format", "<think>small</think> ok")).reward(), 1.0);  // small still fits
  gate_->open();
  held.get();
  EXPECT_EQ(server_->health().pending_bytes(), 0);
  EXPECT_DOUBLE_EQ(client_->score(make("format", "<think>" + big + "</think> 4")).reward(), 1.0);
}

TEST_F(ServerTest, DeadlinesAreHonoured) {
  // The verifier runs past the call's deadline: the client gets DEADLINE_EXCEEDED.
  RewardClient quick(server_->address(), client_options(100));
  EXPECT_EQ(code_of([&] { quick.score(make("slow", "x")); }), grpc::DEADLINE_EXCEEDED);
  // The verifier's timeout is lowered to the time left before the deadline.
  RewardClient patient(server_->address(), client_options(2000));
  v1::ScoreResponse r = patient.score(make("slow", "x"));
  int timeout = std::stoi(r.reason().substr(std::string("timeout_ms=").size()));
  EXPECT_GT(timeout, 0);
  EXPECT_LT(timeout, 2100);  // well under the server's 10 s (grpc-timeout rounds up a little)

  // A task whose deadline passes while it waits in the queue is not run.
  ServerOptions o;
  o.workers = 1;
  start(o);
  auto hold = std::async(std::launch::async, [&] { return client_->score(make("gate", "a")); });
  gate_->wait_entered(1);
  RewardClient quick2(server_->address(), client_options(100));
  EXPECT_EQ(code_of([&] { quick2.score(make("format", "x")); }), grpc::DEADLINE_EXCEEDED);
  // The server's copy of the deadline can be a little later (grpc-timeout is rounded up).
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  gate_->open();
  hold.get();
  wait_for([](const v1::HealthResponse& h) { return h.expired() == 1; });
  EXPECT_EQ(server_->health().served(), 1u);  // only the gate request produced a verdict
}

TEST_F(ServerTest, RetriesOnlyRetryableCodes) {
  // NOT_FOUND is not retried: one attempt, no "after N attempts" in the message.
  RewardClient retrying(server_->address(), client_options(100, 3, 1));
  std::string msg;
  EXPECT_EQ(code_of([&] { retrying.score(make("nope", "x")); }, &msg), grpc::NOT_FOUND);
  EXPECT_EQ(msg.find("attempts"), std::string::npos) << msg;
  v1::ScoreRequest slow = make("slow", "x");
  slow.set_options(R"({"ms": 150})");
  EXPECT_EQ(code_of([&] { retrying.score(slow); }, &msg), grpc::DEADLINE_EXCEEDED);
  EXPECT_NE(msg.find("DEADLINE_EXCEEDED after 4 attempts"), std::string::npos) << msg;
}

TEST_F(ServerTest, ShutdownFinishesInFlightWork) {
  auto pending = std::async(std::launch::async, [&] { return client_->score(make("gate", "a")); });
  gate_->wait_entered(1);
  auto stopping = std::async(std::launch::async, [&] { server_->shutdown(); });
  EXPECT_EQ(stopping.wait_for(std::chrono::milliseconds(200)), std::future_status::timeout);  // waits for the gate
  gate_->open();
  EXPECT_EQ(pending.get().reason(), "released");
  stopping.get();
  server_->wait();
  EXPECT_EQ(code_of([&] { client_->score(make("format", "x")); }), grpc::UNAVAILABLE);
}

TEST_F(ServerTest, AddressInUseIsAnInputError) {
  ServerOptions o;
  o.address = server_->address();
  RewardServer second(test_registry(std::make_shared<GateVerifier>()), o);
  try {
    second.start();
    FAIL() << "bound twice";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot listen on " + server_->address()), std::string::npos);
  }
}
