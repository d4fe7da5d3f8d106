#include "rollout/sampler.h"

#include <array>
#include <cmath>
#include <limits>
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

}  // namespace

bool truncates(const SamplingParams& p) { return p.temperature > 0 && (p.top_k > 0 || p.top_p < 1.0); }

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

namespace {

// The kept tokens of the rows that truncate, in vocabulary order: top-k (ties with the k-th kept),
// then the smallest most-likely prefix holding top_p of the remaining mass. logp [n, V]: each
// row's log_softmax(logits / T), no grad. Rows that do not truncate keep everything.
at::Tensor kept_tokens(const at::Tensor& logp, const std::vector<const SamplingParams*>& params) {
  const int64_t n = logp.size(0), v = logp.size(1);
  at::Tensor keep = at::ones({n, v}, logp.options().dtype(at::kBool));
  std::vector<int64_t> rows;
  std::vector<double> top_p;
  for (int64_t i = 0; i < n; ++i)
    if (truncates(*params[i])) rows.push_back(i), top_p.push_back(params[i]->top_p);
  if (rows.empty()) return keep;
  const at::Tensor index = at::tensor(rows, at::kLong).to(logp.device());
  auto [sorted, order] = logp.index_select(0, index).sort(/*stable=*/true, /*dim=*/-1, /*descending=*/true);
  at::Tensor in_k = at::ones_like(sorted, at::kBool);  // [t, V] in descending order
  for (size_t j = 0; j < rows.size(); ++j) {
    const int64_t k = params[rows[j]]->top_k;
    if (k > 0 && k < v) in_k[j].copy_(sorted[j] >= sorted[j][k - 1]);
  }
  at::Tensor p = sorted.to(at::kDouble).exp() * in_k;  // [t, V]
  at::Tensor before = p.cumsum(-1) - p;                // mass of the more likely kept tokens
  at::Tensor mass = p.sum(-1, /*keepdim=*/true);
  at::Tensor kept = in_k & (before < at::tensor(top_p, at::kDouble).to(logp.device()).unsqueeze(1) * mass);
  return keep.index_copy(0, index, at::zeros_like(kept).scatter(1, order, kept));  // back to vocabulary order
}

}  // namespace

at::Tensor sampling_log_probs(const at::Tensor& logits, const std::vector<const SamplingParams*>& params) {
  const int64_t n = logits.size(0);
  TORCH_CHECK(static_cast<int64_t>(params.size()) == n, "sampling_log_probs: ", params.size(), " params for ", n,
              " rows");
  std::vector<double> inv_t(n);
  bool truncating = false;
  for (int64_t i = 0; i < n; ++i) {
    const SamplingParams& p = *params[i];
    inv_t[i] = p.temperature == 0 ? 1.0 : 1.0 / p.temperature;
    truncating = truncating || truncates(p);
  }
  const at::ScalarType acc = logits.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  const at::Tensor z = logits.to(acc) * at::tensor(inv_t, at::kDouble).to(logits.device(), acc).unsqueeze(1);  // [N, V]
  if (!truncating) return z.log_softmax(-1);
  const at::Tensor keep = kept_tokens(z.detach().log_softmax(-1), params);
  return z.masked_fill(keep.logical_not(), -std::numeric_limits<double>::infinity()).log_softmax(-1);
}

at::Tensor sampling_log_probs(const at::Tensor& logits, const SamplingParams& params) {
  return sampling_log_probs(logits, std::vector<const SamplingParams*>(logits.size(0), &params));
}

std::vector<Draw> sample_tokens(const at::Tensor& logits, const std::vector<SampleRow>& rows) {
  const int64_t n = logits.size(0), v = logits.size(1);
  TORCH_CHECK(static_cast<int64_t>(rows.size()) == n, "sample_tokens: ", rows.size(), " rows for ", n, " logits");
  std::vector<Draw> out(n);
  if (n == 0) return out;
  // Rows fall in three kinds, each handled by batched ops; a row's result depends on its own
  // logits and key only.
  std::vector<int64_t> greedy, plain, truncated;
  std::vector<const SamplingParams*> params(n);
  for (int64_t i = 0; i < n; ++i) {
    const SamplingParams& p = *rows[i].params;
    params[i] = &p;
    (p.temperature == 0 ? greedy : truncates(p) ? truncated : plain).push_back(i);
  }
  const at::Tensor logp = sampling_log_probs(logits, params);  // [N, V], what every row is drawn from
  // Index and uniforms built on the CPU and moved to the logits' device; the draws come back to the CPU.
  const at::Device device = logits.device();
  auto index = [&](const std::vector<int64_t>& ids) { return at::tensor(ids, at::kLong).to(device); };
  auto uniforms = [&](const std::vector<int64_t>& ids) {
    std::vector<double> u;
    u.reserve(ids.size());
    for (int64_t i : ids) u.push_back(counter_uniform(rows[i].params->seed, rows[i].sample, rows[i].step));
    return at::tensor(u, at::kDouble).to(device).unsqueeze(1);  // [n, 1]
  };
  auto emit = [&](const std::vector<int64_t>& ids, const at::Tensor& tok, const at::Tensor& lp) {
    const at::Tensor t = tok.reshape({-1}).to(at::kCPU).contiguous(),
                     l = lp.reshape({-1}).to(at::kCPU, at::kFloat).contiguous();
    for (size_t j = 0; j < ids.size(); ++j) out[ids[j]] = {t.data_ptr<int64_t>()[j], l.data_ptr<float>()[j]};
  };

  if (!greedy.empty()) {
    const at::Tensor tok = logits.index_select(0, index(greedy)).argmax(-1, /*keepdim=*/true);  // [g, 1]
    emit(greedy, tok, logp.index_select(0, index(greedy)).gather(1, tok));
  }
  if (!plain.empty()) {                                             // inverse CDF in vocabulary order
    const at::Tensor z = logp.index_select(0, index(plain));        // [p, V]
    at::Tensor cdf = z.to(at::kDouble).exp().cumsum(-1);            // [p, V]
    at::Tensor target = uniforms(plain) * cdf.narrow(1, v - 1, 1);  // [p, 1]
    at::Tensor tok = at::searchsorted(cdf, target, /*out_int32=*/false, /*right=*/true).clamp_max(v - 1);
    emit(plain, tok, z.gather(1, tok));
  }
  if (!truncated.empty()) {  // inverse CDF over the kept tokens in descending-probability order
    auto [sorted, order] =
        logp.index_select(0, index(truncated)).sort(/*stable=*/true, /*dim=*/-1, /*descending=*/true);
    at::Tensor cdf = sorted.to(at::kDouble).exp().cumsum(-1);  // [t, V]; the dropped tokens add 0
    at::Tensor mass = cdf.narrow(1, v - 1, 1);                 // [t, 1]
    at::Tensor pos = at::searchsorted(cdf, uniforms(truncated) * mass, false, /*right=*/true);
    const at::Tensor kept = sorted.isfinite().sum(-1, /*keepdim=*/true);  // [t, 1]
    pos = at::minimum(pos, kept - 1);                                     // never past the last kept token
    emit(truncated, order.gather(1, pos), sorted.gather(1, pos));
  }
  return out;
}

}  // namespace grpo::rollout
