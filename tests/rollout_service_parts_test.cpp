// Multi-part weight updates (UpdateBegin.part_index / part_count, as expert-parallel learner ranks
// send them) over a real RolloutServer on loopback (dsv3-tiny):
// * two parts sent by concurrent calls, in either order, are applied once as their union: no
//   part's call returns before the other part arrived, each reports its own tensors and bytes,
//   and the new version serves exactly the union's log-probs;
// * errors, each with its code and message, the old weights serving afterwards: a duplicate
//   part, a part of another version or part count while one is pending, a tensor name sent by
//   two parts, a broken part (which fails the other part too), bad part fields, and a version
//   whose second part never comes (dropped after update_timeout_ms, also for a late part).
#include <gtest/gtest.h>

#include <future>

#include "rollout_service_util.h"

using namespace grpo;
using namespace grpo::rollout;
using namespace grpo::testing;

namespace {

using State = std::map<std::string, at::Tensor>;

// The state in two disjoint halves (alternate names).
std::pair<State, State> halves(const State& state) {
  std::pair<State, State> out;
  bool first = true;
  for (const auto& [name, t] : state) {
    (first ? out.first : out.second)[name] = t;
    first = !first;
  }
  return out;
}

int64_t bytes_of(const State& state) {
  int64_t n = 0;
  for (const auto& [name, t] : state) n += t.nbytes();
  return n;
}

class RolloutSvcParts : public ::testing::Test {
 protected:
  void SetUp() override { serve(600'000); }

  void serve(int64_t update_timeout_ms) {
    ServerOptions so;
    so.update_timeout_ms = update_timeout_ms;
    served_ = std::make_unique<Served>(fixture_model(), EngineOptions{}, so);
  }

  WeightUpdateStats send(int64_t version, const State& state, UpdatePart part) const {
    return served_->client->update_weights(version, state, false, kWeightChunkBytes, part);
  }
  std::future<WeightUpdateStats> send_async(int64_t version, const State& state, UpdatePart part) const {
    return std::async(std::launch::async, [=] { return send(version, state, part); });
  }
  grpc::StatusCode code(int64_t version, const State& state, UpdatePart part, std::string* message) const {
    return rpc_code([&] { send(version, state, part); }, message);
  }
  // Waits until the server holds `staged` complete parts of a pending version.
  void wait_staged(int64_t staged) const {
    ASSERT_TRUE(served_->wait_for([&](const v1::StatusResponse& s) { return s.update_parts_staged() == staged; }));
  }

  // Sampled completions (T = 1) carry the log-probs of `model`, at `version`.
  void expect_serving(int64_t version, const std::shared_ptr<const DeepseekModel>& model) const {
    GenerateCall call;
    call.prompts = {{random_prompt(7, 512, 3), 2, 5}};
    call.params.sampling.temperature = 1.0;
    call.params.max_new_tokens = 12;
    const ServedMap done = generate_all(*served_->client, call);
    ASSERT_EQ(done.size(), 2u);
    for (const auto& [key, c] : done) EXPECT_EQ(c.weight_version, version);
    expect_logprobs_of_version(done, {call.prompts[0].token_ids}, {{version, model}});
    const v1::StatusResponse s = served_->client->status();
    EXPECT_EQ(s.weight_version(), version);
    EXPECT_FALSE(s.updating());
  }

  std::unique_ptr<Served> served_;
};

TEST_F(RolloutSvcParts, PartsInAnyOrderAreAppliedOnceAsTheirUnion) {
  const auto v1_model = other_weights(51);
  const auto [a, b] = halves(v1_model->state_dict());
  auto second = send_async(1, b, {1, 2});  // part 1 first
  wait_staged(1);
  EXPECT_EQ(second.wait_for(std::chrono::seconds(0)), std::future_status::timeout) << "returned before part 0 came";
  v1::StatusResponse s = served_->client->status();
  EXPECT_TRUE(s.updating());
  EXPECT_EQ(s.update_version(), 1);
  EXPECT_EQ(s.update_parts(), 2);
  EXPECT_EQ(s.weight_version(), 0);
  const WeightUpdateStats first = send(1, a, {0, 2});
  const WeightUpdateStats other = second.get();
  EXPECT_EQ(first.version, 1);
  EXPECT_EQ(other.version, 1);
  EXPECT_EQ(first.tensors, static_cast<int64_t>(a.size()));
  EXPECT_EQ(other.tensors, static_cast<int64_t>(b.size()));
  EXPECT_EQ(first.bytes, bytes_of(a));
  EXPECT_EQ(other.bytes, bytes_of(b));
  EXPECT_EQ(served_->client->status().weight_updates(), 1);
  expect_serving(1, v1_model);

  // Version 2 in three parts, all at once.
  const auto v2_model = other_weights(52);
  std::vector<State> parts(3);
  size_t i = 0;
  for (const auto& [name, t] : v2_model->state_dict()) parts[i++ % 3][name] = t;
  std::vector<std::future<WeightUpdateStats>> calls;
  for (int64_t p = 0; p < 3; ++p) calls.push_back(send_async(2, parts[p], {p, 3}));
  for (auto& c : calls) EXPECT_EQ(c.get().version, 2);
  EXPECT_EQ(served_->client->status().weight_updates(), 2);
  expect_serving(2, v2_model);
}

TEST_F(RolloutSvcParts, ADuplicatePartIsRefusedAndTheVersionStillCompletes) {
  const auto v1_model = other_weights(53);
  const auto [a, b] = halves(v1_model->state_dict());
  auto first = send_async(1, a, {0, 2});
  wait_staged(1);
  std::string message;
  EXPECT_EQ(code(1, a, {0, 2}, &message), grpc::ALREADY_EXISTS) << message;
  EXPECT_NE(message.find("begin.part_index: part 0 of 2 of version 1 was sent by another call"), std::string::npos)
      << message;
  send(1, b, {1, 2});
  EXPECT_EQ(first.get().version, 1);
  expect_serving(1, v1_model);
}

TEST_F(RolloutSvcParts, AnotherVersionOrPartCountWaitsForThePendingOne) {
  const auto v1_model = other_weights(54);
  const auto [a, b] = halves(v1_model->state_dict());
  auto first = send_async(1, a, {0, 2});
  wait_staged(1);
  std::string message;
  EXPECT_EQ(code(2, b, {1, 2}, &message), grpc::ABORTED) << message;
  EXPECT_NE(message.find("another update is in progress (version 1 in 2 parts; this call: version 2 in 2)"),
            std::string::npos)
      << message;
  EXPECT_EQ(code(1, b, {1, 3}, &message), grpc::ABORTED) << message;
  EXPECT_NE(message.find("this call: version 1 in 3"), std::string::npos) << message;
  EXPECT_EQ(code(2, other_weights(55)->state_dict(), {}, &message), grpc::ABORTED) << message;
  send(1, b, {1, 2});
  EXPECT_EQ(first.get().version, 1);
  expect_serving(1, v1_model);
}

TEST_F(RolloutSvcParts, ANameSentByTwoPartsDropsTheVersion) {
  const auto v1_model = other_weights(56);
  auto [a, b] = halves(v1_model->state_dict());
  auto first = send_async(1, a, {0, 2});
  wait_staged(1);
  const std::string shared = a.begin()->first;
  State clash = b;
  clash[shared] = a.at(shared);
  std::string message;
  EXPECT_EQ(code(1, clash, {1, 2}, &message), grpc::INVALID_ARGUMENT) << message;
  const std::string why = "tensor '" + shared + "': sent by part 0 and part 1 of version 1";
  EXPECT_NE(message.find(why), std::string::npos) << message;
  // The staged part fails with the other part's reason; so does a late part of the version.
  EXPECT_EQ(rpc_code([&] { first.get(); }, &message), grpc::ABORTED) << message;
  const std::string dropped = "weights version 1: part 1 of 2 failed (" + why + "); the version was dropped";
  EXPECT_NE(message.find(dropped), std::string::npos) << message;
  EXPECT_EQ(code(1, b, {1, 2}, &message), grpc::ABORTED) << message;
  EXPECT_NE(message.find(dropped), std::string::npos) << message;
  expect_serving(0, fixture_model());
  // The version may come again whole.
  send(1, v1_model->state_dict(), {});
  expect_serving(1, v1_model);
}

TEST_F(RolloutSvcParts, ABrokenPartFailsTheOtherAndBadPartFieldsAreRefused) {
  const int f32 = v1::FLOAT32;
  const auto [a, b] = halves(other_weights(57)->state_dict());
  auto first = send_async(1, a, {0, 2});
  wait_staged(1);
  // Part 1 announces two tensors and ends after one.
  grpc::Status s = served_->raw_update({begin(1, 2, 0, 1, 2), piece("x", f32, {1}, 0, 4)});
  EXPECT_EQ(s.error_code(), grpc::INVALID_ARGUMENT) << s.error_message();
  EXPECT_NE(s.error_message().find("the stream ended after 1 of 2 tensors"), std::string::npos) << s.error_message();
  std::string message;
  EXPECT_EQ(rpc_code([&] { first.get(); }, &message), grpc::ABORTED) << message;
  EXPECT_NE(message.find("weights version 1: part 1 of 2 failed (the stream ended after 1 of 2 tensors"),
            std::string::npos)
      << message;

  s = served_->raw_update({begin(2, 1, 0, 2, 2)});
  EXPECT_EQ(s.error_code(), grpc::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("begin.part_index: 2 outside [0, part_count=2)"), std::string::npos)
      << s.error_message();
  s = served_->raw_update({begin(2, 1, 0, 0, -1)});
  EXPECT_EQ(s.error_code(), grpc::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("begin.part_count: must be >= 0 (0: one part), got -1"), std::string::npos)
      << s.error_message();
  expect_serving(0, fixture_model());
}

TEST_F(RolloutSvcParts, AVersionWhosePartNeverComesIsDropped) {
  serve(/*update_timeout_ms=*/1000);
  const auto [a, b] = halves(other_weights(58)->state_dict());
  std::string message;
  EXPECT_EQ(code(1, a, {0, 2}, &message), grpc::DEADLINE_EXCEEDED) << message;
  const std::string why =
      "weights version 1: part(s) 1 (never began) of 2 did not arrive complete within update_timeout_ms (1000 ms of "
      "the first part); the version was dropped";
  EXPECT_NE(message.find(why), std::string::npos) << message;
  EXPECT_EQ(code(1, b, {1, 2}, &message), grpc::DEADLINE_EXCEEDED) << message;  // too late
  EXPECT_NE(message.find(why), std::string::npos) << message;
  expect_serving(0, fixture_model());
  // The next version, its parts on time.
  const auto v2_model = other_weights(59);
  const auto [c, d] = halves(v2_model->state_dict());
  auto part1 = send_async(2, d, {1, 2});
  send(2, c, {0, 2});
  EXPECT_EQ(part1.get().version, 2);
  expect_serving(2, v2_model);
}

}  // namespace
