// Routes (model/routes.h) from the rollout side to the store: GenerateRequest.record_routes reaches
// the server, GenerateResponse.routes decodes into Completion::routes and survives an experience
// store put/get unchanged; routes whose sizes do not match the prompt and completion are a bad
// response naming the prompt and sample. A scripted RolloutService on loopback answers with routes
// built here; the real server with the dsv3-tiny engine returns the engine's own routes.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <functional>
#include <mutex>

#include "learner_scored_group_testutil.h"
#include "model_ckpt_testutil.h"
#include "rollout_service_util.h"
#include "store/experience_store.h"

using namespace grpo;
using namespace grpo::rollout;
using namespace grpo::testing;

namespace {

// Routes over `layers` MoE layers, top_k experts each, for `tokens` positions (ids from `salt`).
Routes make_routes(int64_t tokens, int64_t layers, int64_t top_k, int salt) {
  Routes r{tokens, layers, top_k, {}};
  for (int64_t i = 0; i < tokens * layers * top_k; ++i)
    r.experts.push_back(static_cast<uint16_t>((i * 37 + salt) % 65536));
  return r;
}

std::string route_bytes(const Routes& r) {
  return std::string(reinterpret_cast<const char*>(r.experts.data()), r.experts.size() * sizeof(uint16_t));
}

// A RolloutService whose Generate answers each prompt's n samples from `answer` (token ids and
// routes per (prompt, sample)) and keeps the last request.
class ScriptedRollout final : public v1::RolloutService::Service {
 public:
  std::function<void(size_t, int64_t, v1::GenerateResponse&)> answer;

  grpc::Status Generate(grpc::ServerContext*, const v1::GenerateRequest* request,
                        grpc::ServerWriter<v1::GenerateResponse>* writer) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      last_ = *request;
    }
    for (int p = 0; p < request->prompts_size(); ++p)
      for (int64_t k = 0; k < request->prompts(p).n(); ++k) {
        v1::GenerateResponse r;
        r.set_prompt_index(static_cast<uint32_t>(p));
        r.set_sample_index(k);
        r.set_finish_reason(v1::LENGTH);
        r.set_prompt_tokens(request->prompts(p).token_ids_size());
        answer(static_cast<size_t>(p), k, r);
        writer->Write(r);
      }
    return grpc::Status::OK;
  }
  v1::GenerateRequest last() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_;
  }

 private:
  std::mutex mu_;
  v1::GenerateRequest last_;
};

struct ScriptedServer {
  ScriptedRollout service;
  std::unique_ptr<grpc::Server> server;
  std::string address;
  ScriptedServer() {
    int port = 0;
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    b.RegisterService(&service);
    server = b.BuildAndStart();
    address = "127.0.0.1:" + std::to_string(port);
  }
  ~ScriptedServer() { server->Shutdown(); }
};

// The completion of (prompt p, sample k): 3 + k tokens; routes over 3 MoE layers, top-2.
void answer_with_routes(const GenerateCall& call, size_t p, int64_t k, v1::GenerateResponse& r) {
  for (int64_t t = 0; t < 3 + k; ++t) {
    r.add_token_ids(7 + t);
    r.add_logprobs(-0.5f * static_cast<float>(t));
  }
  const auto tokens = static_cast<int64_t>(call.prompts[p].token_ids.size()) + 3 + k - 1;
  r.set_routes(route_bytes(make_routes(tokens, 3, 2, static_cast<int>(10 * p + k))));
  r.set_route_layers(3);
  r.set_route_top_k(2);
}

GenerateCall two_prompts() {
  GenerateCall call;
  call.prompts = {{{1, 2, 3, 4}, 2, 5}, {{9, 8}, 3, 6}};
  call.params.max_new_tokens = 8;
  return call;
}

}  // namespace

TEST(RolloutSvcRoutes, ComeBackFromTheServerAndSurviveTheStore) {
  ScriptedServer scripted;
  GenerateCall call = two_prompts();
  scripted.service.answer = [&](size_t p, int64_t k, v1::GenerateResponse& r) { answer_with_routes(call, p, k, r); };
  RolloutClient client(scripted.address);
  const ServedMap plain = generate_all(client, call);
  EXPECT_FALSE(scripted.service.last().record_routes());
  call.record_routes = true;
  const ServedMap got = generate_all(client, call);
  EXPECT_TRUE(scripted.service.last().record_routes());
  ASSERT_EQ(got.size(), 5u);

  ScoredGroup group;  // prompt 0's samples, as the learner stores them
  group.prompt_id = "p0";
  group.prompt_token_ids = {1, 2, 3, 4};
  for (const auto& [key, c] : got) {
    const auto [p, k] = key;
    const Routes want = make_routes(static_cast<int64_t>(call.prompts[p].token_ids.size()) + 3 + k - 1, 3, 2,
                                    static_cast<int>(10 * p + k));
    EXPECT_EQ(c.routes.tokens, want.tokens) << p << " " << k;
    EXPECT_EQ(c.routes.layers, 3);
    EXPECT_EQ(c.routes.top_k, 2);
    EXPECT_EQ(c.routes.experts, want.experts) << p << " " << k;
    if (p != 0) continue;
    grpo::Completion s;
    s.token_ids.assign(c.token_ids.begin(), c.token_ids.end());
    s.logprobs = c.logprobs;
    s.routes = c.routes;
    group.completions.push_back(s);
  }
  ckpt_test::TempDir tmp;
  auto store = ExperienceStore::open(tmp / "db");
  const GroupKey key = store->put(group);
  store.reset();
  store = ExperienceStore::open(tmp / "db");
  ScoredGroup back;
  const ReadStatus st = store->get(key, &back);
  ASSERT_TRUE(st.ok()) << st.reason;
  store_test::expect_same_group(group, back);
  EXPECT_EQ(back.completions.at(1).routes.experts.size(), (4u + 4 - 1) * 3 * 2);
}

TEST(RolloutSvcRoutes, RoutesThatDoNotFitAreABadResponse) {
  ScriptedServer scripted;
  GenerateCall call = two_prompts();
  call.record_routes = true;
  RolloutClient client(scripted.address);
  auto expect_bad = [&](const std::function<void(v1::GenerateResponse&)>& spoil, const std::string& what) {
    scripted.service.answer = [&](size_t p, int64_t k, v1::GenerateResponse& r) {
      answer_with_routes(call, p, k, r);
      if (p == 1 && k == 2) spoil(r);
    };
    std::string message;
    EXPECT_EQ(rpc_code([&] { generate_all(client, call); }, &message), grpc::INTERNAL);
    EXPECT_NE(message.find("bad response: prompt 1, sample 2: " + what), std::string::npos) << message;
  };
  // prompt 1 sample 2: 2 + 5 - 1 = 6 positions x 3 layers x top-2 = 72 bytes
  expect_bad([](v1::GenerateResponse& r) { r.mutable_routes()->pop_back(); },
             "71 route bytes, route_layers 3, route_top_k 2: expected a multiple of 2 x route_layers x route_top_k");
  expect_bad([](v1::GenerateResponse& r) { r.mutable_routes()->resize(60); },
             "60 route bytes, route_layers 3, route_top_k 2: 5 positions, expected prompt + completion - 1 = 6");
  expect_bad([](v1::GenerateResponse& r) { r.set_route_top_k(0); },
             "72 route bytes, route_layers 3, route_top_k 0: expected a multiple");
  expect_bad([](v1::GenerateResponse& r) { r.set_route_layers(0xFFFFFFFF); },
             "72 route bytes, route_layers 4294967295");
  expect_bad(
      [](v1::GenerateResponse& r) {
        r.add_token_ids(3);
        r.add_logprobs(-1);
      },
      "72 route bytes, route_layers 3, route_top_k 2: 6 positions, expected prompt + completion - 1 = 7");
}

TEST(RolloutSvcRoutes, TheRealServerReturnsTheEnginesRoutes) {
  Served served(fixture_model());
  GenerateCall call;
  call.prompts = {{random_prompt(5, 512, 1), 2, 11}, {random_prompt(9, 512, 2), 1, 12}};
  call.params.sampling = {0.8, 0.9, 50, 99};
  call.params.max_new_tokens = 12;
  call.record_routes = true;
  const ServedMap got = generate_all(*served.client, call);

  Engine engine(fixture_model(), 0, EngineOptions{});
  std::vector<Request> requests;
  for (const GeneratePrompt& p : call.prompts) {
    Request r{p.token_ids, p.n, call.params};
    r.params.sampling.seed = *p.seed;
    r.record_routes = true;
    requests.push_back(r);
  }
  const std::vector<uint64_t> ids = engine.submit(requests);
  const CompletionMap want = by_key(engine.run_until_idle());
  ASSERT_EQ(got.size(), 3u);
  bool recorded = false;
  for (const auto& [key, c] : got) {
    const rollout::Completion& w = want.at({ids[key.first], key.second});
    EXPECT_EQ(c.token_ids, w.token_ids);
    EXPECT_EQ(c.routes.tokens, w.routes.tokens);
    EXPECT_EQ(c.routes.layers, w.routes.layers);
    EXPECT_EQ(c.routes.top_k, w.routes.top_k);
    EXPECT_EQ(c.routes.experts, w.routes.experts) << "prompt " << key.first << " sample " << key.second;
    recorded |= !w.routes.empty();
  }
  EXPECT_TRUE(recorded);
}
