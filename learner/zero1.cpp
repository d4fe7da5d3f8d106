#include "learner/zero1.h"

#include <ATen/core/grad_mode.h>
#include <algorithm>
#include <stdexcept>

namespace grpo {

std::vector<int64_t> balanced_bounds(int64_t total, int world) {
  std::vector<int64_t> bounds;
  for (int r = 0; r <= world; ++r) bounds.push_back(total * r / world);
  return bounds;
}

std::vector<ParamSlice> slices_in(const std::vector<std::pair<std::string, at::Tensor>>& params, int64_t begin,
                                  int64_t end) {
  std::vector<ParamSlice> out;
  int64_t offset = 0;  // of the current parameter's first element in the flattened sequence
  for (const auto& [name, p] : params) {
    const int64_t lo = std::max(begin, offset), hi = std::min(end, offset + p.numel());
    if (lo < hi) out.push_back({name, p, lo - offset, hi - lo});
    offset += p.numel();
  }
  return out;
}

Zero1::Zero1(Distributed& dist, std::vector<std::pair<std::string, at::Tensor>> replicated)
    : dist_(dist), replicated_(std::move(replicated)) {
  int64_t total = 0;
  for (const auto& [name, p] : replicated_) {
    if (p.scalar_type() != replicated_.front().second.scalar_type())
      throw std::logic_error("ZeRO-1: replicated parameter " + name + " has another dtype than " +
                             replicated_.front().first);
    total += p.numel();
  }
  bounds_ = balanced_bounds(total, dist_.size());
  owned_ = slices_in(replicated_, bounds_[dist_.rank()], bounds_[dist_.rank() + 1]);
}

void Zero1::all_gather() {
  if (dist_.size() == 1 || replicated_.empty()) return;
  at::NoGradGuard no_grad;
  int64_t longest = 0;
  for (size_t r = 0; r + 1 < bounds_.size(); ++r) longest = std::max(longest, bounds_[r + 1] - bounds_[r]);
  // This rank's range, padded to the longest so that every rank sends the same size.
  at::Tensor mine = at::zeros({longest}, replicated_.front().second.options().requires_grad(false));  // [L]
  int64_t offset = 0;
  for (const ParamSlice& s : owned_) {
    mine.narrow(0, offset, s.size).copy_(s.of(s.param.detach()).view({-1}));
    offset += s.size;
  }
  const at::Tensor all = dist_.all_gather(mine);  // [W, L]
  for (int r = 0; r < dist_.size(); ++r) {
    if (r == dist_.rank()) continue;
    offset = 0;
    for (const ParamSlice& s : slices_in(replicated_, bounds_[r], bounds_[r + 1])) {
      s.of(s.param.detach()).view({-1}).copy_(all[r].narrow(0, offset, s.size));
      offset += s.size;
    }
  }
}

}  // namespace grpo
