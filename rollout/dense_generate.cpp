#include "rollout/dense_generate.h"

#include <ATen/core/grad_mode.h>
#include <algorithm>
#include <tuple>

#include "common/error.h"

namespace grpo::rollout {
namespace {

struct Slot {
  size_t request;
  int64_t sample;
  std::vector<int64_t> tokens;  // generated
  std::vector<float> logprobs;
  std::string text;  // decoded so far (stop strings)
  bool done = false;
};

}  // namespace

std::vector<Completion> dense_generate(const DenseDecoder& model, const std::vector<Request>& requests,
                                       const Tokenizer* tokenizer, int64_t max_batch,
                                       const std::function<void(const Completion&)>& on_done) {
  if (max_batch < 1) throw InputError("dense_generate: max_batch must be >= 1");
  const DenseConfig& config = model.config();
  const int64_t max_context = config.max_position_embeddings;
  for (size_t i = 0; i < requests.size(); ++i) {
    try {
      validate_request(requests[i], config.vocab_size, max_context, tokenizer != nullptr);
      if (requests[i].n < 1) throw InputError("n: the number of samples must be >= 1");
    } catch (const InputError& e) {
      throw InputError("requests[" + std::to_string(i) + "]: " + e.what());
    }
  }
  std::vector<int64_t> eos_ids = config.eos_token_ids;
  if (tokenizer && tokenizer->eos_id() >= 0) eos_ids.push_back(tokenizer->eos_id());

  std::vector<Slot> all;
  for (size_t i = 0; i < requests.size(); ++i)
    for (int64_t k = 0; k < requests[i].n; ++k) all.push_back({i, k, {}, {}, {}, false});

  std::vector<Completion> out;
  at::NoGradGuard no_grad;
  for (size_t first = 0; first < all.size(); first += max_batch) {
    const size_t n = std::min(all.size() - first, static_cast<size_t>(max_batch));
    Slot* batch = all.data() + first;
    int64_t longest = 0;
    for (size_t s = 0; s < n; ++s) longest = std::max<int64_t>(longest, requests[batch[s].request].prompt.size());
    at::Tensor ids = at::zeros({static_cast<int64_t>(n), longest}, at::kLong);  // [N, P] left-padded
    at::Tensor valid = at::zeros({static_cast<int64_t>(n), longest}, at::kBool);
    for (size_t s = 0; s < n; ++s) {
      const auto& prompt = requests[batch[s].request].prompt;
      const int64_t p = prompt.size();
      ids[s].narrow(0, longest - p, p).copy_(at::tensor(prompt, at::kLong));
      valid[s].narrow(0, longest - p, p).fill_(true);
    }
    DenseKvCache cache;
    at::Tensor logits = model.forward(ids, &cache, valid).select(1, longest - 1);  // [N, V]
    for (int64_t step = 0;; ++step) {
      std::vector<SampleRow> rows;
      for (size_t s = 0; s < n; ++s)
        rows.push_back({&requests[batch[s].request].params.sampling, static_cast<uint64_t>(batch[s].sample),
                        static_cast<uint64_t>(step)});
      const std::vector<Draw> draws = sample_tokens(logits, rows);
      at::Tensor next = at::zeros({static_cast<int64_t>(n), 1}, at::kLong);  // [N, 1]
      at::Tensor next_valid = at::zeros({static_cast<int64_t>(n), 1}, at::kBool);
      bool running = false;
      for (size_t s = 0; s < n; ++s) {
        Slot& slot = batch[s];
        if (slot.done) continue;
        const Request& r = requests[slot.request];
        slot.tokens.push_back(draws[s].token);
        slot.logprobs.push_back(draws[s].logprob);
        const int64_t generated = slot.tokens.size();
        std::optional<FinishReason> reason =
            finish_reason_after(draws[s].token, r.params, eos_ids, tokenizer, slot.text, generated,
                                static_cast<int64_t>(r.prompt.size()) + generated, max_context);
        if (!reason) {
          next[s][0] = draws[s].token;
          next_valid[s][0] = true;
          running = true;
          continue;
        }
        slot.done = true;
        Completion c;
        c.request_id = slot.request;
        c.sample_index = slot.sample;
        c.token_ids = std::move(slot.tokens);
        c.logprobs = std::move(slot.logprobs);
        if (tokenizer) {  // the EOS that ended it is not part of the text
          const size_t keep = c.token_ids.size() - (*reason == FinishReason::kEos ? 1 : 0);
          c.text = decode_text(*tokenizer, std::vector<int64_t>(c.token_ids.begin(), c.token_ids.begin() + keep));
        }
        c.finish_reason = *reason;
        c.prompt_tokens = static_cast<int64_t>(r.prompt.size());
        if (on_done) on_done(c);
        out.push_back(std::move(c));
      }
      if (!running) break;
      logits = model.forward(next, &cache, next_valid).select(1, 0);  // [N, V]
    }
  }
  std::sort(out.begin(), out.end(), [](const Completion& a, const Completion& b) {
    return std::tie(a.request_id, a.sample_index) < std::tie(b.request_id, b.sample_index);
  });
  return out;
}

}  // namespace grpo::rollout
