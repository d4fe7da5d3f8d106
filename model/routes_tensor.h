// Routes (model/routes.h) to and from the tensors of a forward: the routes a forward reports
// (Feed::routes, per decoder layer [N, k] int64) and the replay it takes (Feed::replay).
#pragma once
#include <ATen/ATen.h>

#include <vector>

#include "model/routes.h"

namespace grpo {

// Appends rows [begin, begin + count) of a forward's Feed::routes (per decoder layer [N, k] int64;
// undefined entries, the dense layers, are skipped) to `out` as `count` more tokens. An empty
// `out` takes its layers and top_k from them; otherwise they must match (std::logic_error).
// Rows of -1 (positions that skipped the routed experts) cannot be stored: std::logic_error.
void append_routes(Routes& out, const std::vector<at::Tensor>& layer_routes, int64_t begin, int64_t count);

// Drops the tokens from `tokens` on (a sequence fed again from there).
void truncate_routes(Routes& r, int64_t tokens);

// [tokens, layers, top_k] int64 expert ids of `r`.
at::Tensor routes_tensor(const Routes& r);

}  // namespace grpo
