// An expert-parallel model saved without gathering it on one rank: every rank writes its own
// tensors — rank 0 the replicated ones (embeddings, attention, routers, shared experts, norms)
// and its routed experts, rank r its routed experts — as shard r+1 of a HuggingFace sharded
// checkpoint (model-0000{r+1}-of-0000{W}.safetensors plus model.safetensors.index.json). The
// result loads like any HF checkpoint (load_pretrained, load_weights), at any expert-parallel
// size.
//
// DIR must be on a filesystem every rank sees (one machine, or a shared mount across hosts).
// The shards are written into DIR.tmp; rank 0 adds the index, config.json and `texts` (the
// tokenizer's files, a JSON state) and swaps the finished directory onto DIR,
// so DIR is always either the old or the new checkpoint. Collective: every rank calls it; an error
// on one rank makes the others fail at the next barrier (DistributedError).
#pragma once
#include <map>
#include <string>

#include "learner/distributed.h"
#include "model/causal_lm.h"
#include "model/checkpoint.h"

namespace grpo {

// Thread-safety: a plain value, no locking (concurrent reads only); copies share the tensors' storage.
struct ShardedSave {
  SaveOptions weights;                           // dtype of the weights (one file per rank regardless of size)
  std::map<std::string, std::string> texts;      // rank 0: name in DIR -> contents (tokenizer files, a JSON state)
  std::map<std::string, at::Tensor> rank_state;  // every rank: DIR/rank_state_file(r) (optimizer moments)
};

void save_sharded_pretrained(Distributed& dist, const CausalLM& model, const std::string& dir, const ShardedSave& save);

// The file a rank's ShardedSave::rank_state goes to: "rank-<r>-state.safetensors".
std::string rank_state_file(int rank);

}  // namespace grpo
