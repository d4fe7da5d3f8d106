// ZeRO stage 1 (Rajbhandari et al., "ZeRO: Memory Optimizations Toward Training Trillion
// Parameter Models", 2020) for the replicated parameters of an expert-parallel run
// (learner/expert_parallel.h): their AdamW moments are sharded over the ranks instead of kept
// whole on every one.
//
// The replicated parameters, flattened one after another in ShardedParameters order, are split
// into `world` contiguous ranges balanced by element count; rank r keeps exp_avg and exp_avg_sq
// for its range only and updates only it (from the all-reduced, globally clipped gradients, so
// the update equals the unsharded one element for element); then one all-gather gives every rank
// the others' updated ranges. The optimizer state of the replicated part drops from
// 2·N·4 bytes (fp32) to about 2·N·4 / world on each rank. Expert parameters are rank-local and
// keep their whole state.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "learner/distributed.h"
#include "learner/optim.h"

namespace grpo {

// A balanced split of `total` elements over `world` ranks: [world + 1] bounds, rank r owns
// [bounds[r], bounds[r+1]) (sizes differ by at most one). Pure.
std::vector<int64_t> balanced_bounds(int64_t total, int world);

// The parts of `params`, flattened one after another, that lie in [begin, end), in order.
std::vector<ParamSlice> slices_in(const std::vector<std::pair<std::string, at::Tensor>>& params, int64_t begin,
                                  int64_t end);

// Not thread-safe: all_gather() is a collective. Keeps a reference to dist (must outlive it); aliases the parameters.
class Zero1 {
 public:
  // `replicated`: the data-parallel parameters, the same on every rank (one floating dtype).
  Zero1(Distributed& dist, std::vector<std::pair<std::string, at::Tensor>> replicated);

  // This rank's range of the replicated parameters: what its AdamW owns.
  const std::vector<ParamSlice>& owned() const { return owned_; }
  // After every rank updated its owned slices: copies the other ranks' slices into this rank's
  // parameters (one all-gather of the largest range). Collective.
  void all_gather();

 private:
  Distributed& dist_;
  std::vector<std::pair<std::string, at::Tensor>> replicated_;
  std::vector<int64_t> bounds_;
  std::vector<ParamSlice> owned_;
};

}  // namespace grpo
