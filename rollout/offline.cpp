#include "rollout/offline.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <tuple>

#include "common/error.h"
#include "model/pretrained.h"

namespace grpo::rollout {

std::vector<Completion> generate_offline(const std::string& model_dir, const ModelOptions& model_options,
                                         const std::vector<Request>& requests, const Tokenizer* tokenizer,
                                         const EngineOptions& engine_options, const std::vector<std::string>& names,
                                         const std::function<void(const Completion&)>& on_done, OfflineTiming* timing) {
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  std::shared_ptr<const CausalLM> model = load_causal_lm(model_dir, model_options);
  const auto t1 = Clock::now();
  EngineOptions eo = engine_options;
  eo.max_batched_tokens = std::max(eo.max_seqs, eo.max_batched_tokens);
  eo.max_queued_requests = std::max<int64_t>(eo.max_queued_requests, static_cast<int64_t>(requests.size()));
  Engine engine(model, 0, eo, tokenizer);
  std::map<uint64_t, size_t> index_of;  // engine request id -> request index
  for (size_t i = 0; i < requests.size(); ++i) {
    try {
      index_of[engine.submit(requests[i])] = i;
    } catch (const InputError& e) {
      throw InputError("prompt " + (i < names.size() ? names[i] : std::to_string(i)) + ": " + e.what());
    }
  }
  std::vector<Completion> done;
  for (bool more = true; more;) {
    more = engine.step();
    for (auto& c : engine.poll()) {
      c.request_id = index_of.at(c.request_id);
      if (on_done) on_done(c);
      done.push_back(std::move(c));
    }
  }
  if (timing) {
    timing->load_s = std::chrono::duration<double>(t1 - t0).count();
    timing->generate_s = std::chrono::duration<double>(Clock::now() - t1).count();
    timing->prompt_tokens = timing->generated_tokens = 0;
    timing->draft_tokens = engine.stats().draft_tokens;
    timing->accepted_drafts = engine.stats().accepted_drafts;
    for (const Completion& c : done) {
      timing->prompt_tokens += c.prompt_tokens;
      timing->generated_tokens += static_cast<int64_t>(c.token_ids.size());
    }
  }
  std::sort(done.begin(), done.end(), [](const Completion& a, const Completion& b) {
    return std::tie(a.request_id, a.sample_index) < std::tie(b.request_id, b.sample_index);
  });
  return done;
}

}  // namespace grpo::rollout
