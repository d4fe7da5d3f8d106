// `grpo logprobs`: per-token log-probabilities of token sequences under a checkpoint (DeepSeek or
// dense Llama/Qwen2).
//   stdin:  {"ids": [t0, t1, ...]}          one JSON object per line
//   stdout: {"logprobs": [lp1, ...]}       log p(t_i | t_<i) for i >= 1 (len(ids) - 1 values)
// A bad line answers {"error": "line N: ..."} and processing goes on; the exit code is 1 if any
// line failed. A line is bad when it holds more ids than the model's context
// (max_position_embeddings), or more bytes than such a line could (read no further).
#include <iostream>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "apps/device_choice.h"
#include "apps/dtype_choice.h"
#include "apps/jsonl_filter.h"
#include "common/cli.h"
#include "common/error.h"
#include "common/json_parse.h"
#include "model/pretrained.h"
#include "model/runtime.h"

namespace {

using nlohmann::json;

std::vector<int64_t> parse_ids(const std::string& line, int64_t vocab, int64_t context) {
  const json j = grpo::parse_json(line, "");
  if (!j.is_object() || !j.contains("ids")) throw grpo::InputError("expected an object with \"ids\"");
  const json& a = j.at("ids");
  if (!a.is_array()) throw grpo::InputError("\"ids\" must be an array of token ids");
  if (a.size() < 2) throw grpo::InputError("\"ids\" needs at least 2 tokens");
  if (static_cast<int64_t>(a.size()) > context)
    throw grpo::InputError("\"ids\": " + std::to_string(a.size()) + " tokens, more than the model's context of " +
                           std::to_string(context) + " positions (max_position_embeddings)");
  std::vector<int64_t> ids;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!a[i].is_number_integer()) throw grpo::InputError("\"ids\"[" + std::to_string(i) + "] is not an integer");
    int64_t id = a[i].get<int64_t>();
    if (id < 0 || id >= vocab)
      throw grpo::InputError("\"ids\"[" + std::to_string(i) + "] = " + std::to_string(id) + " is outside [0, " +
                             std::to_string(vocab) + ")");
    ids.push_back(id);
  }
  return ids;
}

int run_logprobs(const grpo::Args& args) {
  grpo::set_torch_threads(args.get_int("threads", 0));
  // A DeepSeek or a dense (Llama/Qwen2) checkpoint, by its config.json's model_type.
  grpo::ModelOptions mo = grpo::ModelOptions::for_dtype(grpo::dtype_flag(args, "logprobs"));
  mo.device = grpo::device_flag(args, "logprobs");
  const std::unique_ptr<grpo::CausalLM> model = grpo::load_causal_lm(args.get("model"), mo);
  const int64_t vocab = model->spec().vocab_size, context = model->spec().max_position_embeddings;
  // A line of `context` ids, each at most 20 digits and a separator, with room for spacing.
  const size_t max_bytes = static_cast<size_t>(context) * 32 + 4096;
  at::NoGradGuard no_grad;
  bool failed = false;
  std::string line;
  bool too_long = false;
  for (int64_t n = 1; grpo::read_bounded_line(std::cin, line, max_bytes, &too_long); ++n) {
    if (!too_long && line.find_first_not_of(" \t\r") == std::string::npos) continue;
    json out;
    try {
      if (too_long)
        throw grpo::InputError("longer than " + std::to_string(max_bytes) +
                               " bytes, more than the ids of the model's context of " + std::to_string(context) +
                               " positions (max_position_embeddings)");
      std::vector<int64_t> ids = parse_ids(line, vocab, context);
      at::Tensor lp = model->logprobs(at::tensor(ids, at::kLong).unsqueeze(0))[0].to(at::kCPU, at::kFloat).contiguous();
      out["logprobs"] = std::vector<float>(lp.data_ptr<float>(), lp.data_ptr<float>() + lp.numel());
    } catch (const std::exception& e) {
      out = {{"error", "line " + std::to_string(n) + ": " + e.what()}};
      failed = true;
    }
    std::cout << out.dump() << "\n" << std::flush;
  }
  return failed ? 1 : 0;
}

GRPO_COMMAND("logprobs", "Per-token log-probs of JSONL {\"ids\": [...]} lines under a checkpoint", "< ids.jsonl",
             ({{"model", "DIR", "HF checkpoint directory (config.json + safetensors)", true},
               {"dtype", "TYPE",
                "compute dtype: fp32, bf16, or auto (bf16 where the CPU has native bf16 dot products, else fp32)",
                false, "fp32"},
               grpo::device_option(),
               {"threads", "N", "intra-op threads (0 = all cores)", false, "0"}}),
             run_logprobs);

}  // namespace
