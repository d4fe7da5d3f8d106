// `grpo generate`: sample completions with the rollout engine (rollout/engine.h) — the one way the
// project generates; dense Llama/Qwen2 checkpoints go through rollout/dense_generate.h. One prompt (--prompt-ids or
// --prompt) or many (--prompts FILE, JSONL lines
// {"prompt": "text"}, {"text": "..."} as `grpo chat-template` writes them, or {"prompt_ids": [..]};
// "-" reads stdin), each continued --n times. Prints
// one JSON line per completion, ordered by prompt then sample:
//   {"prompt_index": i, "sample": k, "output_ids": [...], "logprobs": [...],
//    "finish_reason": "eos" | "stop" | "length", "weight_version": 0, "text": "..." (with a tokenizer)}
#include <fstream>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/cli.h"
#include "common/error.h"
#include "model/pretrained.h"
#include "model/runtime.h"
#include "rollout/dense_generate.h"
#include "rollout/engine.h"
#include "tokenizer/tokenizer.h"

namespace {

using nlohmann::json;

std::vector<int64_t> parse_id_list(const std::string& s, const std::string& option) {
  std::vector<int64_t> ids;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    try {
      size_t pos = 0;
      ids.push_back(std::stoll(item, &pos));
      if (pos != item.size()) throw std::invalid_argument(item);
    } catch (const std::exception&) {
      throw grpo::InputError("--" + option + ": expected comma-separated integers, got \"" + item + "\"");
    }
  }
  if (ids.empty()) throw grpo::InputError("--" + option + ": empty");
  return ids;
}

std::vector<int64_t> encode(const grpo::Tokenizer& tok, const std::string& text, bool bos) {
  std::vector<int64_t> ids;
  if (bos && tok.bos_id() >= 0) ids.push_back(tok.bos_id());
  for (int32_t id : tok.encode(text)) ids.push_back(id);
  return ids;
}

// Prompts from a JSONL file ("-": stdin); errors name the file and line.
std::vector<std::vector<int64_t>> read_prompts(const std::string& path, const grpo::Tokenizer* tok, bool bos) {
  std::ifstream file;
  if (path != "-") {
    file.open(path);
    if (!file) throw grpo::InputError("--prompts: cannot read '" + path + "'");
  }
  std::istream& in = path == "-" ? std::cin : file;
  std::vector<std::vector<int64_t>> prompts;
  std::string line;
  for (int64_t n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = "--prompts " + path + ", line " + std::to_string(n) + ": ";
    json j;
    try {
      j = json::parse(line);
    } catch (const json::parse_error& e) {
      throw grpo::InputError(where + "invalid JSON: " + e.what());
    }
    if (j.is_object() && j.contains("prompt_ids") && j["prompt_ids"].is_array()) {
      std::vector<int64_t> ids;
      for (const json& v : j["prompt_ids"]) {
        if (!v.is_number_integer()) throw grpo::InputError(where + "\"prompt_ids\" must hold integers");
        ids.push_back(v.get<int64_t>());
      }
      prompts.push_back(std::move(ids));
    } else if (j.is_object() && (j.contains("prompt") || j.contains("text"))) {
      const json& text = j.contains("prompt") ? j["prompt"] : j["text"];
      if (!text.is_string()) throw grpo::InputError(where + "the prompt text must be a string");
      if (!tok) throw grpo::InputError(where + "a text prompt needs --tokenizer");
      prompts.push_back(encode(*tok, text.get<std::string>(), bos));
    } else {
      throw grpo::InputError(where + "expected {\"prompt\": \"text\"}, {\"text\": \"...\"} or {\"prompt_ids\": [ids]}");
    }
  }
  return prompts;
}

int run_generate(const grpo::Args& args) {
  const int sources = args.has("prompt") + args.has("prompt-ids") + args.has("prompts");
  if (sources != 1) throw grpo::InputError("grpo generate: give exactly one of --prompt-ids, --prompt or --prompts");
  if (args.has("prompt") && !args.has("tokenizer")) throw grpo::InputError("grpo generate: --prompt needs --tokenizer");
  grpo::set_torch_threads(args.get_int("threads"));

  std::optional<grpo::Tokenizer> tok;
  if (args.has("tokenizer")) tok = grpo::Tokenizer::load(args.get("tokenizer"));
  const bool bos = !args.flag("no-bos");
  std::vector<std::vector<int64_t>> prompts;
  if (args.has("prompt"))
    prompts.push_back(encode(*tok, args.get("prompt"), bos));
  else if (args.has("prompt-ids"))
    prompts.push_back(parse_id_list(args.get("prompt-ids"), "prompt-ids"));
  else
    prompts = read_prompts(args.get("prompts"), tok ? &*tok : nullptr, bos);

  grpo::rollout::GenerationParams params;
  params.max_new_tokens = args.get_int("max-new-tokens");
  params.sampling.temperature = args.get_double("temperature");
  params.sampling.top_p = args.get_double("top-p");
  params.sampling.top_k = args.get_int("top-k");
  params.sampling.seed = static_cast<uint64_t>(args.get_int("seed"));
  if (args.has("stop-ids")) params.stop_token_ids = parse_id_list(args.get("stop-ids"), "stop-ids");
  if (args.has("stop")) params.stop_strings.push_back(args.get("stop"));
  std::vector<grpo::rollout::Request> requests;
  for (const auto& p : prompts) requests.push_back({p, args.get_int("n"), params});

  const grpo::ModelOptions options = grpo::ModelOptions::for_dtype(args.get("dtype"));
  std::vector<grpo::rollout::Completion> done;
  std::map<uint64_t, size_t> prompt_index;  // request id -> prompt
  if (grpo::is_dense_checkpoint(args.get("model"))) {
    const grpo::DenseDecoder model = grpo::load_dense_pretrained(args.get("model"), options);
    done = grpo::rollout::dense_generate(model, requests, tok ? &*tok : nullptr, args.get_int("max-seqs"));
    for (size_t i = 0; i < requests.size(); ++i) prompt_index[i] = i;
  } else {
    auto model = std::make_shared<const grpo::DeepseekModel>(grpo::load_pretrained(args.get("model"), options));
    grpo::rollout::EngineOptions eo;
    eo.max_seqs = args.get_int("max-seqs");
    eo.max_batched_tokens = std::max<int64_t>(eo.max_seqs, args.get_int("max-batched-tokens"));
    eo.page_size = args.get_int("page-size");
    eo.num_pages = args.get_int("num-pages");
    grpo::rollout::Engine engine(model, 0, eo, tok ? &*tok : nullptr);
    for (size_t i = 0; i < requests.size(); ++i) {
      try {
        prompt_index[engine.submit(requests[i])] = i;
      } catch (const grpo::InputError& e) {
        throw grpo::InputError("prompt " + std::to_string(i) + ": " + e.what());
      }
    }
    done = engine.run_until_idle();
    std::sort(done.begin(), done.end(), [](const auto& a, const auto& b) {
      return std::tie(a.request_id, a.sample_index) < std::tie(b.request_id, b.sample_index);
    });
  }
  for (const auto& c : done) {
    json j = {{"prompt_index", prompt_index.at(c.request_id)},
              {"sample", c.sample_index},
              {"output_ids", c.token_ids},
              {"logprobs", c.logprobs},
              {"finish_reason", grpo::rollout::finish_reason_name(c.finish_reason)},
              {"weight_version", c.weight_version}};
    if (tok) j["text"] = c.text;
    std::cout << j.dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
  }
  return 0;
}

GRPO_COMMAND("generate", "Sample N completions per prompt with the rollout engine, JSONL out", "",
             ({{"model", "DIR", "HF checkpoint directory (config.json + safetensors)", true},
               {"prompt-ids", "IDS", "one prompt as comma-separated token ids, e.g. 1,2,3", false},
               {"prompt", "TEXT", "one prompt as text (needs --tokenizer)", false},
               {"prompts", "FILE", "JSONL of {\"prompt\"|\"text\": text} or {\"prompt_ids\": [..]} (- = stdin)", false},
               {"tokenizer", "PATH", "tokenizer.json or its directory (decodes \"text\", enables --stop)", false},
               {"no-bos", "", "do not prepend the tokenizer's BOS to text prompts", false},
               {"n", "G", "completions per prompt (the group size)", false, "1"},
               {"max-new-tokens", "N", "tokens to generate at most", true},
               {"temperature", "T", "0 = greedy", false, "0"},
               {"top-p", "P", "nucleus sampling mass", false, "1"},
               {"top-k", "K", "sample among the K most likely tokens (0 = all)", false, "0"},
               {"seed", "N", "sampling seed (sample k, token t draws with key (seed, k, t))", false, "0"},
               {"stop", "TEXT", "stop once the text contains this (needs --tokenizer)", false},
               {"stop-ids", "IDS", "stop after any of these comma-separated token ids", false},
               {"dtype", "TYPE", "fp32, bf16 or fp8 (FP8 weights, bf16 compute)", false, "fp32"},
               {"max-seqs", "N", "sequences decoded together", false, "64"},
               {"max-batched-tokens", "N", "tokens fed per engine step", false, "2048"},
               {"page-size", "N", "latent cache page size (tokens)", false, "16"},
               {"num-pages", "N", "latent cache pages", false, "2048"},
               {"threads", "N", "intra-op threads (0 = all cores)", false, "0"}}),
             run_generate);

}  // namespace
