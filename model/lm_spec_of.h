// Internal to model/ (deepseek.cpp, dense_decoder.cpp): the LmSpec fields every family's config
// names alike. Not a public header.
#pragma once
#include "model/causal_lm.h"

namespace grpo {

// Config: ModelConfig or DenseConfig. The cache widths are the family's own (left 0 here).
template <typename Config>
LmSpec lm_spec_of(const Config& c) {
  LmSpec s;
  s.model_type = c.model_type;
  s.vocab_size = c.vocab_size;
  s.hidden_size = c.hidden_size;
  s.num_hidden_layers = c.num_hidden_layers;
  s.max_position_embeddings = c.max_position_embeddings;
  s.eos_token_ids = c.eos_token_ids;
  s.initializer_range = c.initializer_range;
  return s;
}

}  // namespace grpo
