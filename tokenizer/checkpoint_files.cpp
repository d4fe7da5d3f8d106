#include "tokenizer/checkpoint_files.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/json_parse.h"

namespace grpo {
namespace {

std::string read_whole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path + ": cannot open file");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// tokenizer_config.json's pad_token (a string or {"content": ...}) as an id, -1 when absent.
int32_t pad_id(const Tokenizer& tok, const nlohmann::json& config) {
  auto it = config.find("pad_token");
  if (it == config.end()) return -1;
  if (it->is_object()) it = it->find("content");
  return it != config.end() && it->is_string() ? tok.token_to_id(it->get<std::string>()) : -1;
}

}  // namespace

std::map<std::string, std::string> tokenizer_checkpoint_files(const Tokenizer& tok) {
  namespace fs = std::filesystem;
  std::map<std::string, std::string> files{{"tokenizer.json", read_whole(tok.path())}};
  const fs::path config_path = fs::path(tok.path()).parent_path() / "tokenizer_config.json";
  nlohmann::json config = nlohmann::json::object();
  if (fs::exists(config_path)) {
    files["tokenizer_config.json"] = read_whole(config_path.string());
    config = parse_json(files["tokenizer_config.json"], config_path.string());  // Tokenizer::load checked it
  } else {
    nlohmann::json minimal = {{"tokenizer_class", "PreTrainedTokenizerFast"}};
    if (tok.bos_id() >= 0) minimal["bos_token"] = tok.id_to_token(tok.bos_id());
    if (tok.eos_id() >= 0) minimal["eos_token"] = tok.id_to_token(tok.eos_id());
    files["tokenizer_config.json"] = minimal.dump(2) + "\n";
  }
  nlohmann::json generation = {{"_from_model_config", true}};
  if (tok.bos_id() >= 0) generation["bos_token_id"] = tok.bos_id();
  if (tok.eos_id() >= 0) generation["eos_token_id"] = tok.eos_id();
  if (const int32_t pad = pad_id(tok, config); pad >= 0) generation["pad_token_id"] = pad;
  files["generation_config.json"] = generation.dump(2) + "\n";
  return files;
}

void check_tokenizer_fits(int64_t ids, const std::string& tokenizer_file, int64_t model_vocab,
                          const std::string& model_file) {
  const int64_t padding = std::max<int64_t>(1024, ids / 16);
  const std::string sizes = "the model (" + model_file + ") has vocab_size " + std::to_string(model_vocab) +
                            ", the tokenizer (" + tokenizer_file + ") " + std::to_string(ids) + " ids";
  if (model_vocab < ids)
    throw InputError("tokenizer does not fit the model: " + sizes +
                     "; every tokenizer id needs a row (pass the model's own tokenizer)");
  if (model_vocab - ids > padding)
    throw InputError("tokenizer does not fit the model: " + sizes + "; a model may pad its vocabulary by at most " +
                     std::to_string(padding) + " rows (max(1024, ids/16)), so this is another model's tokenizer" +
                     " (pass the model's own tokenizer)");
}

}  // namespace grpo
