#include "distill/export.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <charconv>
#include <cmath>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/fs.h"
#include "common/progress.h"
#include "model/causal_lm.h"
#include "model/safetensors.h"
#include "tokenizer/chat_template.h"

namespace grpo {
namespace {

using Ordered = nlohmann::ordered_json;

std::string dump(const Ordered& j) { return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); }

void append_float(std::string& out, float v) {
  if (!std::isfinite(v)) {
    out += "null";
    return;
  }
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, v);  // shortest text that reads back as the same float
  out.append(buf, r.ptr);
}

template <class T, class Append>
void append_list(std::string& out, const std::vector<T>& v, const Append& append) {
  out += '[';
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) out += ',';
    append(out, v[i]);
  }
  out += ']';
}

void append_int(std::string& out, int32_t v) { out += std::to_string(v); }

}  // namespace

std::string think_opening(const ChatTemplate& chat_template) {
  const std::string& g = chat_template.generation_prompt;
  const size_t open = g.rfind("<think>");
  if (open == std::string::npos || g.find("</think>", open) != std::string::npos) return "";
  return g.substr(open);
}

std::optional<std::string> user_message_of(const ChatTemplate& chat_template, const std::string& rendered) {
  const std::string marker = "\x1f\x1e\x1d";  // control characters no template contains
  const std::string shape = chat_template.render({{"user", marker}}, /*add_generation_prompt=*/true);
  const size_t at = shape.find(marker);
  const std::string head = shape.substr(0, at), tail = shape.substr(at + marker.size());
  if (rendered.size() < head.size() + tail.size() || rendered.compare(0, head.size(), head) != 0 ||
      rendered.compare(rendered.size() - tail.size(), tail.size(), tail) != 0)
    return std::nullopt;
  return rendered.substr(head.size(), rendered.size() - head.size() - tail.size());
}

std::vector<TeacherTopK> teacher_topk(const CausalLM& model, const std::vector<DistillExample>& examples, int64_t k,
                                      int64_t batch, Progress* progress) {
  const int64_t vocab = model.spec().vocab_size;
  if (k < 1 || k > vocab)
    throw InputError("teacher top-k: k must be in 1..vocab_size (" + std::to_string(vocab) + "), got " +
                     std::to_string(k));
  if (batch < 1) throw InputError("teacher top-k: batch must be >= 1");
  at::NoGradGuard no_grad;
  std::vector<TeacherTopK> out(examples.size());
  for (size_t b0 = 0; b0 < examples.size(); b0 += size_t(batch)) {
    const size_t b1 = std::min(examples.size(), b0 + size_t(batch));
    // Input of example i: prompt + completion without its last token; completion token j is
    // predicted at position P - 1 + j.
    int64_t width = 1;
    for (size_t i = b0; i < b1; ++i) {
      const auto& e = examples[i];
      if (e.prompt_token_ids.empty()) throw InputError("teacher top-k: example " + e.id + " has no prompt tokens");
      width = std::max<int64_t>(width, int64_t(e.prompt_token_ids.size() + e.completion_token_ids.size()) - 1);
    }
    const int64_t rows_in_batch = int64_t(b1 - b0);
    at::Tensor ids = at::zeros({rows_in_batch, width}, at::kLong);  // [B, L], right-padded with 0
    std::vector<int64_t> rows;                                      // flattened B*L positions
    auto acc = ids.accessor<int64_t, 2>();
    for (size_t i = b0; i < b1; ++i) {
      const auto& e = examples[i];
      std::vector<int32_t> seq = e.prompt_token_ids;
      seq.insert(seq.end(), e.completion_token_ids.begin(), e.completion_token_ids.end());
      for (size_t t = 0; t + 1 < seq.size(); ++t) {
        if (seq[t] < 0 || seq[t] >= vocab)
          throw InputError("teacher top-k: example " + e.id + " has token id " + std::to_string(seq[t]) +
                           " outside the teacher's vocabulary (" + std::to_string(vocab) + ")");
        acc[int64_t(i - b0)][int64_t(t)] = seq[t];
      }
      const int64_t p = int64_t(e.prompt_token_ids.size());
      for (size_t j = 0; j < e.completion_token_ids.size(); ++j)
        rows.push_back(int64_t(i - b0) * width + p - 1 + int64_t(j));
    }
    if (!rows.empty()) {
      const at::Tensor h = model.hidden(ids);  // [B, L, D]
      at::Tensor values = at::empty({int64_t(rows.size()), k}, at::kFloat);
      at::Tensor indices = at::empty({int64_t(rows.size()), k}, at::kLong);
      // The head in chunks of rows: [rows, V] logits of a large vocabulary are big.
      constexpr int64_t kRowChunk = 256;
      const at::Tensor all_rows = at::tensor(rows, at::kLong);
      for (int64_t r0 = 0; r0 < int64_t(rows.size()); r0 += kRowChunk) {
        const int64_t n = std::min<int64_t>(kRowChunk, int64_t(rows.size()) - r0);
        const at::Tensor logits = model.logits_at(h, all_rows.narrow(0, r0, n));  // [n, V]
        auto [v, ix] = logits.to(at::kFloat).log_softmax(-1).topk(k, -1);         // [n, k], descending
        values.narrow(0, r0, n).copy_(v);
        indices.narrow(0, r0, n).copy_(ix);
      }
      const float* v = values.data_ptr<float>();
      const int64_t* ix = indices.data_ptr<int64_t>();
      size_t r = 0;
      for (size_t i = b0; i < b1; ++i)
        for (size_t j = 0; j < examples[i].completion_token_ids.size(); ++j, ++r) {
          out[i].ids.emplace_back(ix + r * k, ix + (r + 1) * k);
          out[i].logprobs.emplace_back(v + r * k, v + (r + 1) * k);
        }
    }
    if (progress) progress->advance(rows_in_batch);
  }
  return out;
}

std::string distill_line(const DistillExample& e, const std::string& opening, const TeacherTopK* teacher) {
  Ordered j = {{"messages", Ordered::array({Ordered{{"role", "user"}, {"content", e.user_message}},
                                            Ordered{{"role", "assistant"}, {"content", opening + e.completion}}})},
               {"id", e.id},
               {"source", e.source},
               {"reward", e.reward}};
  std::string line = dump(j);
  if (teacher) {
    line.pop_back();  // the closing brace: the teacher block is written by hand (compact floats)
    line += R"(,"teacher":{"token_ids":)";
    append_list(line, e.completion_token_ids, append_int);
    line += R"(,"topk_ids":)";
    append_list(line, teacher->ids,
                [](std::string& o, const std::vector<int32_t>& v) { append_list(o, v, append_int); });
    line += R"(,"topk_logprobs":)";
    append_list(line, teacher->logprobs,
                [](std::string& o, const std::vector<float>& v) { append_list(o, v, append_float); });
    line += "}}";
  }
  if (!e.routes.empty()) {
    const Routes& r = e.routes;
    line.pop_back();
    line += R"(,"routes":{"layers":)" + std::to_string(r.layers) + R"(,"top_k":)" + std::to_string(r.top_k) +
            R"(,"experts":[)";
    for (int64_t t = 0; t < r.tokens; ++t) {
      line += t ? ",[" : "[";
      for (int64_t l = 0; l < r.layers; ++l) {
        const uint16_t* ids = r.experts.data() + r.offset(t, l);
        line += l ? ",[" : "[";
        for (int64_t k = 0; k < r.top_k; ++k) line += (k ? "," : "") + std::to_string(ids[k]);
        line += ']';
      }
      line += ']';
    }
    line += "]}}";
  }
  return line + "\n";
}

std::string pair_line(const DistillExample& e) {
  return dump(Ordered{{"prompt", e.rendered_prompt}, {"completion", e.completion}}) + "\n";
}

}  // namespace grpo
