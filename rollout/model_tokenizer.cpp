#include "rollout/model_tokenizer.h"

#include <filesystem>

#include "common/error.h"
#include "model/json_keys.h"
#include "tokenizer/checkpoint_files.h"

namespace grpo {

std::optional<Tokenizer> load_model_tokenizer(const std::string& model_dir, const std::string& tokenizer,
                                              bool required) {
  const std::string own = (std::filesystem::path(model_dir) / "tokenizer.json").string();
  if (tokenizer.empty() && !std::filesystem::exists(own)) {
    if (!required) return std::nullopt;
    throw InputError("model '" + model_dir + "' has no tokenizer.json: pass --tokenizer (or set model.tokenizer)");
  }
  Tokenizer tok = Tokenizer::load(tokenizer.empty() ? own : tokenizer);
  std::string file;
  const nlohmann::json config = read_config_json(model_dir, &file);
  const auto vocab = config.find("vocab_size");
  if (vocab == config.end() || !vocab->is_number_integer())
    throw InputError(file + ": key 'vocab_size': expected an integer");
  check_tokenizer_fits(tok.vocab_size(), tok.path(), vocab->get<int64_t>(), file);
  return tok;
}

}  // namespace grpo
