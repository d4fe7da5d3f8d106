#include "learner/train_batch.h"

#include <algorithm>
#include <cmath>

#include "common/error.h"
#include "learner/grpo.h"
#include "model/routes_tensor.h"

namespace grpo {
namespace {

std::string group_name(const std::vector<ScoredGroup>& groups, size_t g) {
  return "group " + std::to_string(g) + " (prompt_id '" + groups[g].prompt_id + "')";
}

void check_ids(const std::vector<int32_t>& ids, int64_t vocab, const std::string& what) {
  if (vocab <= 0) return;
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] < 0 || ids[i] >= vocab)
      throw InputError(what + "[" + std::to_string(i) + "] = " + std::to_string(ids[i]) +
                       " is outside the vocabulary [0, " + std::to_string(vocab) + ")");
}

// Feed::routes of a [b, w] forward as [b, w, L_moe, k] (undefined for a dense model).
at::Tensor stacked_routes(const std::vector<at::Tensor>& routes, int64_t b, int64_t w) {
  std::vector<at::Tensor> moe;
  for (const at::Tensor& r : routes)
    if (r.defined()) moe.push_back(r);
  if (moe.empty()) return {};
  return at::stack(moe, 1).view({b, w, static_cast<int64_t>(moe.size()), moe[0].size(1)});
}

}  // namespace

double TrainBatch::tokens() const { return mask.sum().item<double>(); }

TrainBatch TrainBatch::to(at::Device device) const {
  TrainBatch out = *this;
  for (at::Tensor* t : {&out.ids, &out.mask, &out.rollout_logp, &out.rewards, &out.lengths, &out.old_logp,
                        &out.ref_logp, &out.advantages, &out.routes})
    if (t->defined()) *t = t->to(device);
  return out;
}

TrainBatch TrainBatch::select(const at::Tensor& index_in) const {
  const at::Tensor index = index_in.to(ids.device());
  // At least 2 columns (one prediction) even when every chosen row is a 1-token prompt with an
  // empty completion; the batch itself always has them (make_train_batch wants a completion token).
  const int64_t longest = index.numel() ? lengths.index_select(0, index).max().item<int64_t>() : 0;
  const int64_t t = std::min(ids.size(1), std::max<int64_t>(2, longest));
  auto rows = [&](const at::Tensor& x, int64_t width) {
    return x.defined() ? x.index_select(0, index).narrow(1, 0, width).contiguous() : at::Tensor();
  };
  TrainBatch out;
  out.ids = rows(ids, t);
  out.mask = rows(mask, t - 1);
  out.rollout_logp = rows(rollout_logp, t - 1);
  out.old_logp = rows(old_logp, t - 1);
  out.ref_logp = rows(ref_logp, t - 1);
  out.routes = rows(routes, t - 1);
  out.rewards = rewards.index_select(0, index);
  out.lengths = lengths.index_select(0, index);
  if (advantages.defined()) out.advantages = advantages.index_select(0, index);
  out.group_size = group_size;
  return out;
}

TrainBatch make_train_batch(const std::vector<ScoredGroup>& groups, const TrainBatchLimits& limits, int64_t pad_id,
                            at::ScalarType dtype) {
  if (groups.empty()) throw InputError("training batch: no groups");
  const size_t g_size = groups[0].completions.size();
  int64_t rows = 0, longest = 0, tokens = 0;
  for (size_t g = 0; g < groups.size(); ++g) {
    const ScoredGroup& grp = groups[g];
    const std::string name = group_name(groups, g);
    if (grp.completions.empty()) throw InputError(name + ": no completions");
    if (grp.completions.size() != g_size)
      throw InputError(name + ": has " + std::to_string(grp.completions.size()) + " completions, group 0 has " +
                       std::to_string(g_size) + " (all groups of a batch need the same G)");
    if (grp.prompt_token_ids.empty()) throw InputError(name + ": prompt_token_ids is empty");
    check_ids(grp.prompt_token_ids, limits.vocab_size, name + ": prompt_token_ids");
    for (size_t c = 0; c < grp.completions.size(); ++c) {
      const Completion& comp = grp.completions[c];
      const std::string cname = name + ", completion " + std::to_string(c);
      if (comp.logprobs.size() != comp.token_ids.size())
        throw InputError(cname + ": " + std::to_string(comp.token_ids.size()) + " token_ids but " +
                         std::to_string(comp.logprobs.size()) + " logprobs");
      check_ids(comp.token_ids, limits.vocab_size, cname + ": token_ids");
      for (size_t i = 0; i < comp.logprobs.size(); ++i)
        if (!std::isfinite(comp.logprobs[i]) || comp.logprobs[i] > 0)
          throw InputError(cname + ": logprobs[" + std::to_string(i) + "] = " + std::to_string(comp.logprobs[i]) +
                           " is not a log-probability");
      if (!std::isfinite(comp.reward)) throw InputError(cname + ": reward is not finite");
      const int64_t len = static_cast<int64_t>(grp.prompt_token_ids.size() + comp.token_ids.size());
      if (limits.max_seq_len > 0 && len > limits.max_seq_len)
        throw InputError(cname + ": prompt + completion is " + std::to_string(len) + " tokens, more than the limit " +
                         std::to_string(limits.max_seq_len));
      longest = std::max(longest, len);
      tokens += static_cast<int64_t>(comp.token_ids.size());
      ++rows;
    }
  }
  if (tokens == 0) throw InputError("training batch: no completion tokens (every completion is empty)");

  TrainBatch b;
  b.group_size = static_cast<int64_t>(g_size);
  b.ids = at::full({rows, longest}, pad_id, at::kLong);     // [B, T]
  auto mask = at::zeros({rows, longest - 1}, at::kDouble);  // [B, T-1]
  auto rollout = at::zeros({rows, longest - 1}, at::kDouble);
  b.rewards = at::empty({rows}, at::kDouble);
  b.lengths = at::empty({rows}, at::kLong);
  auto ids_a = b.ids.accessor<int64_t, 2>();
  auto mask_a = mask.accessor<double, 2>();
  auto roll_a = rollout.accessor<double, 2>();
  auto reward_a = b.rewards.accessor<double, 1>();
  auto len_a = b.lengths.accessor<int64_t, 1>();
  int64_t r = 0;
  for (const ScoredGroup& grp : groups) {
    const int64_t p = static_cast<int64_t>(grp.prompt_token_ids.size());
    for (const Completion& comp : grp.completions) {
      const double counted = limits.mask_truncated && comp.finish_reason == FinishReason::kLength ? 0.0 : 1.0;
      for (int64_t i = 0; i < p; ++i) ids_a[r][i] = grp.prompt_token_ids[i];
      for (size_t i = 0; i < comp.token_ids.size(); ++i) {
        const int64_t pos = p + static_cast<int64_t>(i);
        ids_a[r][pos] = comp.token_ids[i];
        mask_a[r][pos - 1] = counted;  // the prediction of token `pos` is made at position pos - 1
        roll_a[r][pos - 1] = comp.logprobs[i];
      }
      reward_a[r] = comp.reward;
      len_a[r] = p + static_cast<int64_t>(comp.token_ids.size());
      ++r;
    }
  }
  if (mask.sum().item<double>() == 0)
    throw InputError("training batch: no completion tokens to learn from (every completion is empty or truncated)");
  b.mask = mask.to(dtype);
  b.rollout_logp = rollout.to(dtype);
  return b;
}

at::Tensor replay_routes(const std::vector<ScoredGroup>& groups, const RouteShape& shape, int64_t width) {
  int64_t rows = 0;
  for (const ScoredGroup& g : groups) rows += static_cast<int64_t>(g.completions.size());
  at::Tensor out = at::full({rows, width, shape.layers, shape.top_k}, -1, at::kLong);  // [B, T-1, L, k]
  int64_t r = 0;
  for (size_t g = 0; g < groups.size(); ++g) {
    const ScoredGroup& grp = groups[g];
    for (size_t c = 0; c < grp.completions.size(); ++c, ++r) {
      const Routes& routes = grp.completions[c].routes;
      const std::string name = group_name(groups, g) + ", completion " + std::to_string(c);
      if (routes.empty())
        throw InputError(
            "routing_replay: rollout needs routes: " + name +
            " has none (the train loop asks the rollouts for them when trainer.routing_replay is rollout)");
      if (routes.layers != shape.layers || routes.top_k != shape.top_k)
        throw InputError(name + ": routes of " + std::to_string(routes.layers) + " MoE layers × top-" +
                         std::to_string(routes.top_k) + ", the model has " + std::to_string(shape.layers) + " × top-" +
                         std::to_string(shape.top_k));
      const int64_t want = static_cast<int64_t>(grp.prompt_token_ids.size() + grp.completions[c].token_ids.size()) - 1;
      if (routes.tokens != want ||
          static_cast<int64_t>(routes.experts.size()) != routes.tokens * routes.layers * routes.top_k)
        throw InputError(name + ": routes of " + std::to_string(routes.tokens) + " positions (" +
                         std::to_string(routes.experts.size()) +
                         " ids), expected prompt + completion − 1 = " + std::to_string(want) + " positions");
      for (int64_t t = 0; t < routes.tokens; ++t)
        for (int64_t l = 0; l < routes.layers; ++l)
          for (int64_t k = 0; k < routes.top_k; ++k)
            if (routes.experts[routes.offset(t, l) + k] >= shape.experts)
              throw InputError(name + ": routes at token " + std::to_string(t) + ", MoE layer " + std::to_string(l) +
                               ": expert " + std::to_string(routes.experts[routes.offset(t, l) + k]) + " outside [0, " +
                               std::to_string(shape.experts) + ")");
      out[r].narrow(0, 0, routes.tokens).copy_(routes_tensor(routes));
    }
  }
  return out;
}

CompletionForward completion_forward(const CausalLM& model, const TrainBatch& batch, bool entropy_grad,
                                     const rollout::SamplingParams& sampling, bool pack) {
  const at::Tensor &ids = batch.ids, &mask = batch.mask;
  const int64_t b = ids.size(0), t = ids.size(1);
  CompletionForward out;
  std::vector<at::Tensor> routes;  // per decoder layer [positions, k]
  std::vector<at::Tensor> chosen;  // the same for the routers' own choice
  Feed feed;
  feed.expert_load = &out.expert_load;
  feed.routes = &routes;
  feed.router_choice = &chosen;
  // Packed: every row's positions that predict one of its tokens (0 .. length-2), back to back.
  std::vector<int64_t> lengths;                                    // [rows with a prediction]
  std::vector<at::Tensor> places;                                  // their positions in the [b·(T-1)] layout
  const at::TensorOptions longs = ids.options().dtype(at::kLong);  // on the batch's device
  if (pack) {
    const at::Tensor len = batch.lengths.to(at::kCPU, at::kLong).contiguous();
    for (int64_t i = 0; i < b; ++i) {
      const int64_t n = len.data_ptr<int64_t>()[i] - 1;
      if (n < 1) continue;
      lengths.push_back(n);
      places.push_back(at::arange(n, longs) + i * (t - 1));
    }
  }
  const at::Tensor rows = at::nonzero(mask.reshape({-1}) > 0).squeeze(1);  // [N] in the [b·(T-1)] layout
  at::Tensor h, head_rows;  // hidden states, and the rows of h that predict rows' tokens
  if (lengths.empty()) {
    // The positions that predict a token of their row: every row's own, however the rows are padded.
    feed.tokens = at::arange(t - 1, longs).unsqueeze(0) < (batch.lengths - 1).unsqueeze(1);  // [b, T-1]
    feed.replay = batch.routes;
    h = model.hidden(ids.narrow(1, 0, t - 1), feed);  // [b, T-1, D]
    out.routes = stacked_routes(routes, b, t - 1);
    out.chosen = stacked_routes(chosen, b, t - 1);
    head_rows = rows;
  } else {
    const at::Tensor place = at::cat(places);  // [P]
    const int64_t p = place.size(0);
    feed.packed = lengths;
    if (batch.routes.defined())  // [b, T-1, L, k] -> [1, P, L, k]
      feed.replay = batch.routes.reshape({b * (t - 1), batch.routes.size(2), batch.routes.size(3)})
                        .index_select(0, place)
                        .unsqueeze(0);
    h = model.hidden(ids.narrow(1, 0, t - 1).reshape({-1}).index_select(0, place).unsqueeze(0), feed);  // [1, P, D]
    auto unpacked = [&](const std::vector<at::Tensor>& r) {  // [1, P, L, k] -> [b, T-1, L, k], -1 elsewhere
      at::Tensor packed = stacked_routes(r, 1, p);
      if (!packed.defined()) return packed;
      at::Tensor all = at::full({b * (t - 1), packed.size(2), packed.size(3)}, -1, packed.options());
      return all.index_copy_(0, place, packed.squeeze(0)).view({b, t - 1, packed.size(2), packed.size(3)});
    };
    out.routes = unpacked(routes);
    out.chosen = unpacked(chosen);
    head_rows = at::full({b * (t - 1)}, -1, longs).index_copy_(0, place, at::arange(p, longs)).index_select(0, rows);
  }
  at::Tensor logits = model.logits_at(h, head_rows);  // [N, V]
  at::Tensor targets =
      ids.narrow(1, 1, t - 1).reshape({-1}).index_select(0, rows).unsqueeze(1).to(logits.device());  // [N, 1]
  at::Tensor lp = rollout::sampling_log_probs(logits, sampling).gather(-1, targets).squeeze(1);      // [N]
  const double temperature = sampling.temperature > 0 ? sampling.temperature : 1.0;
  at::Tensor z = logits / temperature;                                   // [N, V]
  if (rollout::truncates(sampling)) {                                    // a token cut since it was sampled
    at::Tensor full = z.log_softmax(-1).gather(-1, targets).squeeze(1);  // [N]
    lp = at::where(at::isinf(lp), full, lp);
  }
  at::Tensor ent = entropy_from_logits(entropy_grad ? z : z.detach());  // [N]
  auto dense = [&](const at::Tensor& v) {
    return at::zeros({b * (t - 1)}, v.options()).index_put({rows.to(v.device())}, v).view({b, t - 1});
  };
  out.logp = dense(lp);
  out.entropy = dense(ent);
  return out;
}

int64_t forward_passes(int64_t rows, int64_t rows_per_forward) {
  const int64_t step = std::max<int64_t>(1, rows_per_forward);
  return (rows + step - 1) / step;
}

at::Tensor completion_logprobs(const CausalLM& model, const TrainBatch& batch, int64_t rows_per_forward,
                               const rollout::SamplingParams& sampling, const RankPart* part, at::Tensor* routes,
                               bool pack) {
  at::NoGradGuard no_grad;
  const int64_t n = batch.rows(), step = std::max<int64_t>(1, rows_per_forward);
  const int64_t width = batch.mask.size(1);
  const int64_t passes = std::max(forward_passes(n, step), part ? part->passes : 0);
  const at::Tensor by_length = std::get<1>(batch.lengths.sort(c10::optional<bool>(true), 0));  // [B]: less padding
  at::Tensor out = at::zeros_like(batch.mask);                                                 // [B, T-1]
  for (int64_t i = 0, s = 0; i < passes; ++i, s += step) {
    if (s >= n) {  // this rank's rows are done: a pass without rows, for the other ranks' collectives
      const TrainBatch none = batch.select(at::empty({0}, at::kLong)).to(model.options().device);
      completion_forward(model, none, false, sampling);
      continue;
    }
    const at::Tensor rows = by_length.narrow(0, s, std::min(n, s + step) - s);
    TrainBatch chosen = batch.select(rows).to(model.options().device);
    CompletionForward f = completion_forward(model, chosen, false, sampling, pack);
    f.logp = f.logp.to(out.device()), f.chosen = f.chosen.defined() ? f.chosen.to(out.device()) : f.chosen;
    out.index_copy_(0, rows, at::constant_pad_nd(f.logp, {0, width - f.logp.size(1)}));  // [rows, T'-1]
    if (routes && f.chosen.defined()) {  // [rows, T'-1, L, k] -> [B, T-1, L, k]
      if (!routes->defined()) *routes = at::full({n, width, f.chosen.size(2), f.chosen.size(3)}, -1, at::kLong);
      routes->index_copy_(0, rows, at::constant_pad_nd(f.chosen, {0, 0, 0, 0, 0, width - f.chosen.size(1)}, -1));
    }
  }
  return out;
}

}  // namespace grpo
