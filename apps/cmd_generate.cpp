// `grpo generate`: continue one prompt with a checkpoint over the latent KV cache, printing
// {"output_ids": [...]} (generated tokens only, ending at EOS if one was produced) and, with a
// tokenizer, "text" (the generated tokens decoded, special tokens skipped).
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/cli.h"
#include "common/error.h"
#include "model/generate.h"
#include "model/pretrained.h"
#include "model/runtime.h"
#include "model/tokenizer.h"

namespace {

std::vector<int64_t> parse_id_list(const std::string& s) {
  std::vector<int64_t> ids;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    try {
      size_t pos = 0;
      ids.push_back(std::stoll(item, &pos));
      if (pos != item.size()) throw std::invalid_argument(item);
    } catch (const std::exception&) {
      throw grpo::InputError("--prompt-ids: expected comma-separated integers, got \"" + item + "\"");
    }
  }
  if (ids.empty()) throw grpo::InputError("--prompt-ids: empty");
  return ids;
}

int run_generate(const grpo::Args& args) {
  if (args.has("prompt") == args.has("prompt-ids"))
    throw grpo::InputError("grpo generate: give exactly one of --prompt-ids or --prompt");
  if (args.has("prompt") && !args.has("tokenizer"))
    throw grpo::InputError("grpo generate: --prompt needs --tokenizer");
  grpo::set_torch_threads(args.get_int("threads"));

  std::optional<grpo::Tokenizer> tok;
  if (args.has("tokenizer")) tok = grpo::Tokenizer::load(args.get("tokenizer"));
  std::vector<int64_t> prompt;
  if (args.has("prompt")) {
    if (tok->bos_id() >= 0 && !args.flag("no-bos")) prompt.push_back(tok->bos_id());
    for (int32_t id : tok->encode(args.get("prompt"))) prompt.push_back(id);
  } else {
    prompt = parse_id_list(args.get("prompt-ids"));
  }

  grpo::DeepseekModel model =
      grpo::load_pretrained(args.get("model"), grpo::ModelOptions::for_dtype(args.get("dtype")));
  for (int64_t id : prompt)
    if (id < 0 || id >= model.config().vocab_size)
      throw grpo::InputError("prompt token " + std::to_string(id) + " is outside the model's vocabulary [0, " +
                             std::to_string(model.config().vocab_size) + ")");
  grpo::GenerateOptions opt;
  opt.max_new_tokens = args.get_int("max-new-tokens");
  opt.sampling.temperature = args.get_double("temperature");
  opt.sampling.top_p = args.get_double("top-p");
  opt.sampling.top_k = args.get_int("top-k");
  opt.sampling.seed = static_cast<uint64_t>(args.get_int("seed"));
  opt.stop_ids = model.config().eos_token_ids;
  if (tok && tok->eos_id() >= 0) opt.stop_ids.push_back(tok->eos_id());

  std::vector<int64_t> out = grpo::generate(model, prompt, opt);
  nlohmann::json j = {{"output_ids", out}};
  if (tok) j["text"] = tok->decode(std::vector<int32_t>(out.begin(), out.end()), /*skip_special=*/true);
  std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  return 0;
}

GRPO_COMMAND("generate", "Continue a prompt with a checkpoint (greedy or sampled), print the new token ids", "",
             ({{"model", "DIR", "HF checkpoint directory (config.json + safetensors)", true},
               {"prompt-ids", "IDS", "prompt as comma-separated token ids, e.g. 1,2,3", false},
               {"prompt", "TEXT", "prompt text (needs --tokenizer)", false},
               {"tokenizer", "PATH", "tokenizer.json or its directory", false},
               {"no-bos", "", "do not prepend the tokenizer's BOS to --prompt", false},
               {"max-new-tokens", "N", "tokens to generate at most", true},
               {"temperature", "T", "0 = greedy", false, "0"},
               {"top-p", "P", "nucleus sampling mass", false, "1"},
               {"top-k", "K", "sample among the K most likely tokens (0 = all)", false, "0"},
               {"seed", "N", "sampling seed", false, "0"},
               {"dtype", "TYPE", "compute dtype: fp32 or bf16", false, "fp32"},
               {"threads", "N", "intra-op threads (0 = all cores)", false, "0"}}),
             run_generate);

}  // namespace
