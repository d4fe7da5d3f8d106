// `grpo init-model`: a randomly initialised HF checkpoint (config.json + safetensors) for a
// DeepSeek V2/V3 or dense Llama/Qwen2 config.json (dispatch on model_type), like HF's
// _init_weights; MTP modules included when the config has num_nextn_predict_layers > 0. --dtype fp8 block-quantises the
// linear weights (DeepSeek-V3 format).
#include <iostream>

#include "common/cli.h"
#include "common/error.h"
#include "model/dense_decoder.h"
#include "model/init.h"
#include "model/json_keys.h"
#include "model/pretrained.h"
#include "model/runtime.h"

namespace {

grpo::DType parse_save_dtype(const std::string& s) {
  if (s == "fp32" || s == "float32") return grpo::DType::F32;
  if (s == "bf16" || s == "bfloat16") return grpo::DType::BF16;
  if (s == "fp8" || s == "float8_e4m3") return grpo::DType::F8_E4M3;
  throw grpo::InputError("--dtype: expected bf16, fp32 or fp8, got \"" + s + "\"");
}

int run_init_model(const grpo::Args& args) {
  grpo::set_torch_threads(args.get_int("threads", 0));
  grpo::SaveOptions save;
  save.dtype = parse_save_dtype(args.get("dtype"));
  std::string file;
  const nlohmann::json config = grpo::read_config_json(args.get("config"), &file);
  if (save.dtype == grpo::DType::F8_E4M3 && grpo::is_dense_config(config))
    throw grpo::InputError("--dtype: fp8 is for DeepSeek models, not dense ones");
  grpo::ModelOptions opts;
  const auto mtp = config.find("num_nextn_predict_layers");
  opts.mtp = mtp != config.end() && mtp->is_number_integer() && mtp->get<int64_t>() > 0;
  const std::unique_ptr<grpo::CausalLM> model = grpo::make_causal_lm(config, file, opts);
  grpo::init_weights(*model, static_cast<uint64_t>(args.get_int64("seed", 0)));
  grpo::save_pretrained(*model, args.get("out"), save);
  std::cerr << "wrote " << args.get("out") << "\n";
  return 0;
}

GRPO_COMMAND("init-model", "Write a randomly initialised HF checkpoint for a DeepSeek V2/V3 or Llama/Qwen2 config.json",
             "",
             ({{"config", "FILE", "config.json (or its directory)", true},
               {"out", "DIR", "output checkpoint directory", true},
               {"seed", "N", "random seed", false, "0"},
               {"dtype", "TYPE", "stored dtype: bf16, fp32 or fp8", false, "bf16"},
               {"threads", "N", "intra-op threads (0 = all cores)", false, "0"}}),
             run_init_model);

}  // namespace
