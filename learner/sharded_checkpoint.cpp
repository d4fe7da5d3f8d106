#include "learner/sharded_checkpoint.h"

#include <cstdint>
#include <filesystem>
#include <limits>

#include "common/error.h"
#include "common/fs.h"
#include "learner/expert_parallel.h"
#include "model/safetensors.h"

namespace grpo {
namespace fs = std::filesystem;

std::string rank_state_file(int rank) { return "rank-" + std::to_string(rank) + "-state.safetensors"; }

void save_sharded_pretrained(Distributed& dist, const CausalLM& model, const std::string& dir_in,
                             const ShardedSave& save) {
  std::string trimmed = dir_in;
  while (trimmed.size() > 1 && trimmed.back() == '/') trimmed.pop_back();
  const fs::path dir(trimmed), stage = trimmed + ".tmp";
  const int rank = dist.rank(), world = dist.size();
  if (rank == 0) begin_stage(dir.string(), stage.string(), /*keep_config=*/false);
  dist.barrier();

  // Every rank: its tensors as one complete file (config.json on rank 0 gets the dtype keys).
  const std::map<std::string, at::Tensor> mine = rank_shard(model, rank);
  const fs::path own = stage / ("rank-" + std::to_string(rank));
  SaveOptions one_file = save.weights;
  one_file.max_shard_bytes = std::numeric_limits<int64_t>::max();
  save_weights(own.string(), mine, rank == 0 ? model.config_json() : nlohmann::json(), one_file);
  if (!save.rank_state.empty()) save_tensors((stage / rank_state_file(rank)).string(), save.rank_state);
  dist.barrier();

  if (rank == 0) {
    nlohmann::json weight_map = nlohmann::json::object();
    int64_t total = 0;
    char name[64];
    for (int r = 0; r < world; ++r) {
      std::snprintf(name, sizeof name, "model-%05d-of-%05d.safetensors", r + 1, world);
      const fs::path from = stage / ("rank-" + std::to_string(r));
      fs::rename(from / "model.safetensors", stage / name);
      const SafetensorsReader reader((stage / name).string());
      for (const std::string& t : reader.names()) {
        weight_map[t] = name;
        total += reader.get(t).data.nbytes();
      }
      if (r == 0) fs::rename(from / "config.json", stage / "config.json");
      fs::remove_all(from);
    }
    const nlohmann::json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
    write_text_atomic(stage / "model.safetensors.index.json", index.dump(2) + "\n");
    for (const auto& [file, text] : save.texts) {
      fs::create_directories((stage / file).parent_path());
      write_text_atomic(stage / file, text);
    }
    publish_dir(stage.string(), dir.string());
  }
  dist.barrier();
}

}  // namespace grpo
