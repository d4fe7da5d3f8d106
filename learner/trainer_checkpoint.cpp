// Trainer checkpoints: the policy as an HF checkpoint plus trainer/{state.json,
// optimizer.safetensors, reference.safetensors} (one process), or sharded per rank (expert
// parallel, learner/sharded_checkpoint.h); the format is learner/trainer.h's.
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/fs.h"
#include "common/json_parse.h"
#include "common/kill_point.h"
#include "learner/sharded_checkpoint.h"
#include "learner/trainer.h"
#include "learner/trainer_state.h"
#include "model/checkpoint.h"
#include "model/pretrained.h"
#include "model/safetensors.h"

namespace fs = std::filesystem;

namespace grpo {
namespace {

constexpr int kStateFormat = 1;
constexpr const char* kTrainerDir = "trainer";
constexpr const char* kStateFile = "state.json";
constexpr const char* kOptimizerFile = "optimizer.safetensors";
constexpr const char* kReferenceFile = "reference.safetensors";
constexpr const char* kReferencePrefix = "reference/";  // expert-parallel: reference tensors in the rank's state file

nlohmann::json read_json(const fs::path& path) {
  std::ifstream in(path);
  if (!in) throw InputError("checkpoint '" + path.string() + "': cannot read the file");
  std::stringstream text;
  text << in.rdbuf();
  check_json_depth(text.str(), "checkpoint '" + path.string() + "'");
  try {
    return nlohmann::json::parse(text.str());
  } catch (const nlohmann::json::exception& e) {
    throw InputError("checkpoint '" + path.string() + "': not valid JSON: " + e.what());
  }
}

template <class T>
T json_field(const nlohmann::json& j, const std::string& key, const fs::path& path) {
  if (!j.is_object() || !j.contains(key))
    throw InputError("checkpoint '" + path.string() + "': no entry '" + key + "'");
  try {
    return j.at(key).get<T>();
  } catch (const nlohmann::json::exception&) {
    throw InputError("checkpoint '" + path.string() + "': entry '" + key + "' has the wrong type");
  }
}

}  // namespace

void Trainer::save_checkpoint(const std::string& dir_in, const std::map<std::string, std::string>& files) const {
  std::string dir_str = dir_in;
  while (dir_str.size() > 1 && dir_str.back() == '/') dir_str.pop_back();
  const fs::path dir(dir_str), stage(dir_str + ".tmp");
  std::string reference = "none";
  if (state_->reference) reference = state_->reference_is_initial ? "initial" : "saved";
  nlohmann::json state = {{"format", kStateFormat},
                          {"steps_done", steps_done_},
                          {"seed", options_.seed},
                          {"reference", reference},
                          {"initial_checksum", state_->initial_checksum},
                          {"zero1", options_.zero1}};
  if (dist_) {  // every rank its own tensors, optimizer state and reference experts (trainer.h)
    const at::Tensor sums = dist_->all_gather(at::tensor({int64_t(state_->initial_checksum)}, at::kLong));  // [W, 1]
    state["world_size"] = dist_->size();
    state["initial_checksum"] = std::vector<int64_t>(sums.data_ptr<int64_t>(), sums.data_ptr<int64_t>() + sums.numel());
    ShardedSave save;
    save.weights.dtype = dtype_of(policy_->options().param_dtype);
    save.rank_state = state_->optimizer->state();
    save.texts = files;
    if (reference == "saved")
      for (const auto& [name, t] : state_->reference->state_dict()) save.rank_state[kReferencePrefix + name] = t;
    save.texts[std::string(kTrainerDir) + "/" + kStateFile] = state.dump(2) + "\n";
    save_sharded_pretrained(*dist_, *policy_, dir.string(), save);
    return;
  }
  try {
    fs::remove_all(stage);  // leftover of an interrupted save
    SaveOptions save;
    save.dtype = dtype_of(policy_->options().param_dtype);  // master weights exactly
    save.files = files;
    save_pretrained(*policy_, stage.string(), save);
    kill_point("checkpoint/weights-written");
    const fs::path sub = stage / kTrainerDir;
    fs::create_directories(sub);
    save_tensors(sub / kOptimizerFile, state_->optimizer->state());
    if (reference == "saved") save_tensors(sub / kReferenceFile, state_->reference->state_dict());
    const std::string text = state.dump(2) + "\n";
    const std::string state_path = (sub / kStateFile).string();
    write_text_atomic(state_path, text);
    kill_point("checkpoint/staged");
    publish_dir(stage.string(), dir.string());
  } catch (const std::exception& e) {
    std::error_code ignored;
    fs::remove_all(stage, ignored);
    throw InputError("cannot write checkpoint '" + dir.string() + "': " + e.what());
  }
}

void Trainer::load_checkpoint(const std::string& dir_in) {
  const fs::path dir(dir_in), sub = dir / kTrainerDir;
  const fs::path state_path = sub / kStateFile;
  const nlohmann::json state = read_json(state_path);
  if (json_field<int>(state, "format", state_path) != kStateFormat)
    throw InputError("checkpoint '" + state_path.string() + "': unknown format " + state.at("format").dump());
  const int64_t steps_done = json_field<int64_t>(state, "steps_done", state_path);
  const uint64_t seed = json_field<uint64_t>(state, "seed", state_path);
  const std::string reference = json_field<std::string>(state, "reference", state_path);
  if (steps_done < 0) throw InputError("checkpoint '" + state_path.string() + "': steps_done is negative");
  if (reference != "none" && reference != "initial" && reference != "saved")
    throw InputError("checkpoint '" + state_path.string() + "': entry 'reference' is '" + reference +
                     "', expected none, initial or saved");
  const int world = dist_ ? dist_->size() : 1, rank = dist_ ? dist_->rank() : 0;
  const int saved_world = state.contains("world_size") ? json_field<int>(state, "world_size", state_path) : 1;
  if (saved_world != world)
    throw InputError("checkpoint '" + state_path.string() + "': saved by " + std::to_string(saved_world) +
                     " expert-parallel ranks, this trainer runs on " + std::to_string(world) +
                     " (the optimizer state is per rank)");
  if (state.value("zero1", false) != options_.zero1)
    throw InputError("checkpoint '" + state_path.string() +
                     "': saved with trainer.zero1=" + (options_.zero1 ? "false" : "true") +
                     ", this trainer has trainer.zero1=" + (options_.zero1 ? "true" : "false") +
                     " (the optimizer state is sharded differently)");
  uint32_t checksum = 0;
  if (dist_) {
    const auto sums = json_field<std::vector<int64_t>>(state, "initial_checksum", state_path);
    if (int(sums.size()) != world)
      throw InputError("checkpoint '" + state_path.string() + "': entry 'initial_checksum' needs one value per rank");
    checksum = static_cast<uint32_t>(sums[rank]);
  } else {
    checksum = json_field<uint32_t>(state, "initial_checksum", state_path);
  }

  // Read and check everything before changing anything.
  std::map<std::string, at::Tensor> weights;
  for (auto& [name, t] : load_weights(dir.string(), policy_->options().param_dtype)) weights[name] = t.clone();
  const fs::path optimizer_path = dist_ ? dir / rank_state_file(rank) : sub / kOptimizerFile;
  std::map<std::string, at::Tensor> optimizer_state, saved_reference;
  for (auto& [name, t] : load_tensors(optimizer_path)) {
    if (dist_ && name.rfind(kReferencePrefix, 0) == 0)
      saved_reference[name.substr(std::string(kReferencePrefix).size())] = t;
    else
      optimizer_state[name] = t;
  }
  State probe;  // the optimizer this trainer binds, to check the saved state's names and shapes
  probe.bind_optimizer(*policy_, options_, dist_);
  probe.optimizer->load_state(optimizer_state, optimizer_path.string());
  std::shared_ptr<CausalLM> new_reference = state_->reference;
  if (state_->reference && reference == "saved") {
    const fs::path ref_path = dist_ ? optimizer_path : sub / kReferenceFile;
    new_reference = make_reference(dist_ ? saved_reference : load_tensors(ref_path), ref_path.string());
  } else if (state_->reference && reference == "initial" && checksum != state_->initial_checksum) {
    throw InputError("checkpoint '" + state_path.string() +
                     "': its reference model is the run's initial policy, but this Trainer was constructed "
                     "from a different policy (checksum mismatch); construct it from the run's initial model");
  }
  policy_->load_state(weights, dir.string());  // all or nothing

  // Commit: the policy's tensors are new objects, so the optimizer is re-bound to them.
  policy_->set_requires_grad(true);
  state_->bind_optimizer(*policy_, options_, dist_);
  state_->optimizer->load_state(optimizer_state, optimizer_path.string());
  if (new_reference != state_->reference) state_->reference_is_initial = false;
  state_->reference = new_reference;
  steps_done_ = steps_done;
  options_.seed = seed;
}

}  // namespace grpo
