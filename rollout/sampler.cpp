#include "rollout/sampler.h"

#include <array>
#include <cmath>
#include <string>

#include "common/error.h"

namespace grpo::rollout {
namespace {

// Philox-4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11).
std::array<uint32_t, 4> philox(std::array<uint32_t, 4> ctr, std::array<uint32_t, 2> key) {
  constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u, kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = static_cast<uint64_t>(kM0) * ctr[0], p1 = static_cast<uint64_t>(kM1) * ctr[2];
    ctr = {static_cast<uint32_t>(p1 >> 32) ^ ctr[1] ^ key[0], static_cast<uint32_t>(p1),
           static_cast<uint32_t>(p0 >> 32) ^ ctr[3] ^ key[1], static_cast<uint32_t>(p0)};
    key = {key[0] + kW0, key[1] + kW1};
  }
  return ctr;
}

bool truncates(const SamplingParams& p) { return p.top_k > 0 || p.top_p < 1.0; }

}  // namespace

void validate_sampling(const SamplingParams& p) {
  if (!(p.temperature >= 0) || !std::isfinite(p.temperature))
    throw InputError("temperature: must be a finite number >= 0, got " + std::to_string(p.temperature));
  if (!(p.top_p > 0 && p.top_p <= 1)) throw InputError("top_p: must be in (0, 1], got " + std::to_string(p.top_p));
  if (p.top_k < 0) throw InputError("top_k: must be >= 0, got " + std::to_string(p.top_k));
}

double counter_uniform(uint64_t seed, uint64_t sample, uint64_t step) {
  auto r = philox({static_cast<uint32_t>(sample), static_cast<uint32_t>(sample >> 32), static_cast<uint32_t>(step),
                   static_cast<uint32_t>(step >> 32)},
                  {static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)});
  const uint64_t bits = ((static_cast<uint64_t>(r[0]) << 32) | r[1]) >> 11;  // 53 bits
  return static_cast<double>(bits) * 0x1.0p-53;
}

std::vector<Draw> sample_tokens(const at::Tensor& logits, const std::vector<SampleRow>& rows) {
  const int64_t n = logits.size(0), v = logits.size(1);
  TORCH_CHECK(static_cast<int64_t>(rows.size()) == n, "sample_tokens: ", rows.size(), " rows for ", n, " logits");
  std::vector<Draw> out(n);
  if (n == 0) return out;
  // Rows fall in three kinds, each handled by batched ops; a row's result depends on its own
  // logits and key only.
  std::vector<int64_t> greedy, plain, truncated;
  for (int64_t i = 0; i < n; ++i) {
    const SamplingParams& p = *rows[i].params;
    (p.temperature == 0 ? greedy : truncates(p) ? truncated : plain).push_back(i);
  }
  const at::Tensor x = logits.to(at::kFloat);  // [N, V]
  auto index = [](const std::vector<int64_t>& ids) { return at::tensor(ids, at::kLong); };
  auto scaled_logp = [&](const std::vector<int64_t>& ids) {  // log_softmax(logits / T) of those rows
    std::vector<float> inv_t;
    inv_t.reserve(ids.size());
    for (int64_t i : ids) inv_t.push_back(static_cast<float>(1.0 / rows[i].params->temperature));
    at::Tensor z = x.index_select(0, index(ids)) * at::tensor(inv_t, at::kFloat).unsqueeze(1);  // [n, V]
    return z.log_softmax(-1);
  };
  auto uniforms = [&](const std::vector<int64_t>& ids) {
    std::vector<double> u;
    u.reserve(ids.size());
    for (int64_t i : ids) u.push_back(counter_uniform(rows[i].params->seed, rows[i].sample, rows[i].step));
    return at::tensor(u, at::kDouble).unsqueeze(1);  // [n, 1]
  };

  if (!greedy.empty()) {
    at::Tensor z = x.index_select(0, index(greedy));  // [g, V]
    at::Tensor tok = z.argmax(-1).contiguous();       // [g]
    at::Tensor lp = z.log_softmax(-1).gather(1, tok.unsqueeze(1)).squeeze(1).contiguous();
    for (size_t j = 0; j < greedy.size(); ++j) out[greedy[j]] = {tok.data_ptr<int64_t>()[j], lp.data_ptr<float>()[j]};
  }
  if (!plain.empty()) {                                             // inverse CDF in vocabulary order
    at::Tensor logp = scaled_logp(plain);                           // [p, V]
    at::Tensor cdf = logp.to(at::kDouble).exp().cumsum(-1);         // [p, V]
    at::Tensor target = uniforms(plain) * cdf.narrow(1, v - 1, 1);  // [p, 1]
    at::Tensor tok = at::searchsorted(cdf, target, /*out_int32=*/false, /*right=*/true).clamp_max(v - 1);
    at::Tensor lp = logp.gather(1, tok).squeeze(1).contiguous();
    tok = tok.squeeze(1).contiguous();
    for (size_t j = 0; j < plain.size(); ++j) out[plain[j]] = {tok.data_ptr<int64_t>()[j], lp.data_ptr<float>()[j]};
  }
  if (!truncated.empty()) {                    // inverse CDF over the kept tokens in descending-probability order
    at::Tensor logp = scaled_logp(truncated);  // [t, V]
    auto [sorted, order] = logp.sort(/*stable=*/true, /*dim=*/-1, /*descending=*/true);  // [t, V] each
    at::Tensor p = sorted.to(at::kDouble).exp();                                         // [t, V]
    std::vector<double> top_p;
    at::Tensor keep = at::ones({static_cast<int64_t>(truncated.size()), v}, at::kBool);
    for (size_t j = 0; j < truncated.size(); ++j) {
      const SamplingParams& sp = *rows[truncated[j]].params;
      top_p.push_back(sp.top_p);
      if (sp.top_k > 0 && sp.top_k < v) keep[j].copy_(sorted[j] >= sorted[j][sp.top_k - 1]);
    }
    p = p * keep;
    at::Tensor before = p.cumsum(-1) - p;  // mass of the more likely kept tokens
    at::Tensor mass_k = p.sum(-1, /*keepdim=*/true);
    keep = keep & (before < at::tensor(top_p, at::kDouble).unsqueeze(1) * mass_k);
    p = p * keep;
    at::Tensor cdf = p.cumsum(-1);              // [t, V]
    at::Tensor mass = cdf.narrow(1, v - 1, 1);  // [t, 1]
    at::Tensor pos = at::searchsorted(cdf, uniforms(truncated) * mass, false, /*right=*/true);
    pos = at::minimum(pos, keep.sum(-1, /*keepdim=*/true) - 1);  // never past the last kept token
    at::Tensor tok = order.gather(1, pos).squeeze(1).contiguous();
    at::Tensor lp = (sorted.gather(1, pos).to(at::kDouble) - mass.log()).squeeze(1).to(at::kFloat).contiguous();
    for (size_t j = 0; j < truncated.size(); ++j)
      out[truncated[j]] = {tok.data_ptr<int64_t>()[j], lp.data_ptr<float>()[j]};
  }
  return out;
}

}  // namespace grpo::rollout
