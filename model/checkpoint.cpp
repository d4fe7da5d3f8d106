#include "model/checkpoint.h"

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "common/error.h"
#include "common/fs.h"
#include "common/json_parse.h"
#include "model/fp8.h"

namespace fs = std::filesystem;

namespace grpo {
namespace {

constexpr const char* kSingleFile = "model.safetensors";
constexpr const char* kIndexFile = "model.safetensors.index.json";
constexpr const char* kConfigFile = "config.json";

// Tensors as stored plus the file each came from (for error messages).
struct RawCheckpoint {
  std::map<std::string, StoredTensor> tensors;
  std::map<std::string, std::string> file_of;
};

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw InputError("cannot open '" + path + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  check_json_depth(text, "'" + path + "'");
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw InputError("'" + path + "' is not valid JSON: " + e.what());
  }
}

void add_file(RawCheckpoint& raw, const SafetensorsReader& r) {
  for (const auto& name : r.names()) {
    raw.tensors[name] = r.get(name);
    raw.file_of[name] = r.path();
  }
}

RawCheckpoint read_index(const fs::path& dir) {
  const std::string index = (dir / kIndexFile).string();
  const nlohmann::json j = read_json(index);
  if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
    throw InputError("index '" + index + "': no \"weight_map\" object");
  std::map<std::string, SafetensorsReader> shards;
  RawCheckpoint raw;
  for (const auto& [tensor, shard_j] : j["weight_map"].items()) {
    if (!shard_j.is_string())
      throw InputError("index '" + index + "': weight_map entry for tensor '" + tensor + "' is not a file name");
    const std::string shard = shard_j.get<std::string>();
    if (shard.empty() || shard.find('/') != std::string::npos || shard == "." || shard == "..")
      throw InputError("index '" + index + "': tensor '" + tensor + "' maps to '" + shard +
                       "', which is not a file name in the checkpoint directory");
    auto it = shards.find(shard);
    if (it == shards.end()) {
      const fs::path p = dir / shard;
      if (!fs::is_regular_file(p))
        throw InputError("index '" + index + "': shard '" + shard + "' (holding tensor '" + tensor +
                         "') is missing: no file " + p.string());
      it = shards.emplace(shard, SafetensorsReader(p.string())).first;
    }
    if (!it->second.has(tensor))
      throw InputError("index '" + index + "': tensor '" + tensor + "' is mapped to shard '" + it->second.path() +
                       "', which does not contain it");
    raw.tensors[tensor] = it->second.get(tensor);
    raw.file_of[tensor] = it->second.path();
  }
  return raw;
}

RawCheckpoint read_raw(const std::string& path) {
  const fs::path p(path);
  RawCheckpoint raw;
  if (fs::is_directory(p)) {
    if (fs::exists(p / kIndexFile)) return read_index(p);
    if (!fs::exists(p / kSingleFile))
      throw InputError("checkpoint directory '" + path + "' has neither " + kSingleFile + " nor " + kIndexFile);
    add_file(raw, SafetensorsReader((p / kSingleFile).string()));
  } else if (fs::exists(p)) {
    add_file(raw, SafetensorsReader(path));
  } else {
    throw InputError("checkpoint '" + path + "': no such file or directory");
  }
  return raw;
}

// quantization_config.weight_block_size from DIR/config.json; 128 when absent.
int64_t fp8_block_size(const std::string& path) {
  const fs::path cfg = fs::path(path) / kConfigFile;
  if (!fs::is_directory(path) || !fs::exists(cfg)) return kFp8BlockSize;
  const nlohmann::json j = read_json(cfg.string());
  if (!j.is_object() || !j.contains("quantization_config")) return kFp8BlockSize;
  const auto& q = j["quantization_config"];
  if (!q.is_object() || !q.contains("weight_block_size")) return kFp8BlockSize;
  const auto& b = q["weight_block_size"];
  if (!b.is_array() || b.size() != 2 || !b[0].is_number_integer() || b[0] != b[1] || b[0].get<int64_t>() <= 0)
    throw InputError("'" + cfg.string() + "': quantization_config.weight_block_size is " + b.dump() +
                     "; expected two equal positive integers like [128, 128]");
  return b[0].get<int64_t>();
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string strip_slashes(std::string s) {
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

void fsync_dir(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

bool is_weight_file(const std::string& name) {
  static const std::regex shard("model-[0-9]+-of-[0-9]+\\.safetensors");
  return name == kSingleFile || name == kIndexFile || name == kConfigFile || std::regex_match(name, shard);
}

// DIR/model.safetensors, or greedy shards (in name order) of at most max_shard_bytes plus the index.
void write_weights(const fs::path& dir, const std::map<std::string, StoredTensor>& raw, int64_t max_shard_bytes) {
  std::vector<std::vector<std::pair<std::string, StoredTensor>>> shards(1);
  int64_t in_shard = 0, total = 0;
  for (const auto& [name, t] : raw) {
    const int64_t nbytes = t.data.numel() * static_cast<int64_t>(dtype_size(t.dtype));
    if (in_shard > 0 && in_shard + nbytes > max_shard_bytes) {
      shards.emplace_back();
      in_shard = 0;
    }
    shards.back().emplace_back(name, t);
    in_shard += nbytes;
    total += nbytes;
  }
  const std::map<std::string, std::string> meta{{"format", "pt"}};
  if (shards.size() == 1) {
    write_safetensors((dir / kSingleFile).string(), shards[0], meta);
    return;
  }
  nlohmann::json weight_map = nlohmann::json::object();
  char name[64];
  for (size_t i = 0; i < shards.size(); ++i) {
    std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", i + 1, shards.size());
    write_safetensors((dir / name).string(), shards[i], meta);
    for (const auto& entry : shards[i]) weight_map[entry.first] = name;
  }
  const nlohmann::json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
  write_text_atomic(dir / kIndexFile, index.dump(2) + "\n");
}

}  // namespace

void publish_dir(const std::string& stage_in, const std::string& dir_in) {
  const fs::path stage(stage_in), dir(dir_in);
  fsync_dir(stage);
  if (!fs::exists(dir)) {
    fs::rename(stage, dir);
  } else if (::renameat2(AT_FDCWD, stage.c_str(), AT_FDCWD, dir.c_str(), RENAME_EXCHANGE) == 0) {
    fs::remove_all(stage);  // now holds the old contents
  } else {
    if (errno != EINVAL && errno != ENOSYS)
      throw InputError("cannot replace '" + dir.string() + "' with '" + stage.string() + "': " + std::strerror(errno));
    // Filesystem without atomic exchange: two renames.
    const fs::path old = dir.string() + ".old";
    fs::remove_all(old);
    fs::rename(dir, old);
    fs::rename(stage, dir);
    fs::remove_all(old);
  }
  fsync_dir(dir.has_parent_path() ? dir.parent_path() : fs::path("."));
}

std::map<std::string, StoredTensor> load_checkpoint_raw(const std::string& path) { return read_raw(path).tensors; }

void save_tensors(const std::string& path, const std::map<std::string, at::Tensor>& tensors) {
  std::vector<std::pair<std::string, StoredTensor>> list;
  for (const auto& [name, t] : tensors) {
    const at::Tensor c = t.detach().cpu().contiguous();
    list.emplace_back(name, StoredTensor{c, dtype_of(c.scalar_type())});
  }
  write_safetensors(path, list);
}

std::map<std::string, at::Tensor> load_tensors(const std::string& path) {
  std::map<std::string, at::Tensor> out;
  for (auto& [name, st] : load_checkpoint_raw(path)) out[name] = st.data.clone();
  return out;
}

void begin_stage(const std::string& dir_in, const std::string& stage_in, bool keep_config) {
  const fs::path dir(dir_in), stage(stage_in);
  fs::remove_all(stage);  // leftover of an interrupted save
  fs::create_directories(stage);
  if (!fs::is_directory(dir)) return;
  for (const auto& e : fs::directory_iterator(dir)) {  // keep tokenizer files, logs and the like
    const std::string name = e.path().filename().string();
    if (!is_weight_file(name) || (keep_config && name == kConfigFile)) {
      std::error_code linked;  // the old DIR goes away after the swap: a hard link is as good as a copy
      if (e.is_directory() || (fs::create_hard_link(e.path(), stage / name, linked), linked))
        fs::copy(e.path(), stage / name, fs::copy_options::recursive);
    }
  }
}

void save_checkpoint_raw(const std::string& dir_in, const std::map<std::string, StoredTensor>& raw,
                         const nlohmann::json& config, int64_t max_shard_bytes,
                         const std::map<std::string, std::string>& files) {
  if (max_shard_bytes <= 0) throw std::invalid_argument("save_checkpoint_raw: max_shard_bytes must be positive");
  const fs::path dir(strip_slashes(dir_in));
  const fs::path stage = dir.string() + ".tmp";
  try {
    begin_stage(dir.string(), stage.string(), /*keep_config=*/config.is_null());
    write_weights(stage, raw, max_shard_bytes);
    if (!config.is_null()) write_text_atomic(stage / kConfigFile, config.dump(2) + "\n");
    for (const auto& [name, text] : files) write_text_atomic(stage / name, text);
    publish_dir(stage, dir);
  } catch (const fs::filesystem_error& e) {
    std::error_code ignored;
    fs::remove_all(stage, ignored);
    throw InputError("cannot write checkpoint '" + dir.string() + "': " + e.what());
  } catch (...) {
    std::error_code ignored;
    fs::remove_all(stage, ignored);
    throw;
  }
}

std::map<std::string, at::Tensor> load_weights(const std::string& path, at::ScalarType dtype, bool keep_fp8) {
  if (!at::isFloatingType(dtype))
    throw std::invalid_argument(std::string("load_weights: dtype must be floating, got ") + c10::toString(dtype));
  RawCheckpoint raw = read_raw(path);
  int64_t block = -1;  // read config.json only when there is something to dequantise
  std::map<std::string, at::Tensor> out;
  for (const auto& [name, st] : raw.tensors) {
    if (ends_with(name, kFp8ScaleSuffix)) {
      const std::string base = name.substr(0, name.size() - std::strlen(kFp8ScaleSuffix));
      auto it = raw.tensors.find(base);
      if (it != raw.tensors.end() && is_fp8(it->second.dtype)) continue;  // consumed with its weight
    }
    if (!is_floating(st.dtype)) {
      out[name] = st.data;
      continue;
    }
    if (!is_fp8(st.dtype)) {
      out[name] = st.data.to(dtype);
      continue;
    }
    auto scale = raw.tensors.find(name + kFp8ScaleSuffix);
    if (scale == raw.tensors.end()) {
      out[name] = fp8_decode(st.data).to(dtype);
      continue;
    }
    if (block < 0) block = fp8_block_size(path);
    const std::string& scale_name = scale->first;
    if (st.data.dim() != 2)
      throw InputError("checkpoint '" + raw.file_of[name] + "', tensor '" + name + "': has scale '" + scale_name +
                       "' but is not 2-D");
    if (!is_floating(scale->second.dtype) || is_fp8(scale->second.dtype))
      throw InputError("checkpoint '" + raw.file_of[scale_name] + "', tensor '" + scale_name + "': dtype " +
                       dtype_name(scale->second.dtype) + " is not a float scale");
    if (keep_fp8 && st.dtype == DType::F8_E4M3 && block == kFp8BlockSize &&
        scale->second.data.sizes() ==
            at::IntArrayRef({(st.data.size(0) + block - 1) / block, (st.data.size(1) + block - 1) / block})) {
      out[name] = st.data;
      out[scale_name] = scale->second.data.to(at::kFloat).contiguous();
      continue;
    }
    try {
      out[name] = dequantize_fp8_blocks(st.data, scale->second.data, block).to(dtype);
    } catch (const InputError& e) {
      throw InputError("checkpoint '" + raw.file_of[scale_name] + "', tensor '" + scale_name + "' (for '" + name +
                       "'): " + e.what());
    }
  }
  return out;
}

bool is_fp8_quantizable(const std::string& name, const at::Tensor& t) {
  if (t.dim() != 2 || !ends_with(name, ".weight")) return false;
  for (const char* keep : {"embed_tokens", "lm_head", "norm", "shared_head.head"})
    if (name.find(keep) != std::string::npos) return false;
  return !ends_with(name, ".gate.weight");  // the MoE router; gate_proj is quantised
}

void save_weights(const std::string& dir, const std::map<std::string, at::Tensor>& weights,
                  const nlohmann::json& config, const SaveOptions& opt) {
  const bool fp8 = opt.dtype == DType::F8_E4M3;
  const DType plain = fp8 ? opt.unquantized_dtype : opt.dtype;
  if (!is_floating(plain) || is_fp8(plain))
    throw std::invalid_argument(std::string("save_weights: cannot store floating weights as ") +
                                dtype_name(fp8 ? opt.unquantized_dtype : opt.dtype));
  std::map<std::string, StoredTensor> raw;
  for (const auto& [name, w] : weights) {
    const at::Tensor t = w.detach().cpu();
    if (!at::isFloatingType(t.scalar_type())) {
      raw[name] = {t.contiguous(), dtype_of(t.scalar_type())};
    } else if (fp8 && is_fp8_quantizable(name, t)) {
      Fp8Blocks b;
      try {
        b = quantize_fp8_blocks(t);
      } catch (const InputError& e) {
        throw InputError("saving '" + dir + "', tensor '" + name + "': " + e.what());
      }
      raw[name] = {b.q, DType::F8_E4M3};
      raw[name + kFp8ScaleSuffix] = {b.scale, DType::F32};
    } else {
      const DType d = ends_with(name, "e_score_correction_bias") ? DType::F32 : plain;
      raw[name] = {t.to(storage_scalar_type(d)).contiguous(), d};
    }
  }
  nlohmann::json cfg = config;
  if (cfg.is_object()) {
    if (fp8)
      cfg["quantization_config"] = {{"quant_method", "fp8"},
                                    {"fmt", "e4m3"},
                                    {"activation_scheme", "dynamic"},
                                    {"weight_block_size", {kFp8BlockSize, kFp8BlockSize}}};
    else
      cfg.erase("quantization_config");
    for (const char* key : {"dtype", "torch_dtype"})
      if (cfg.contains(key)) cfg[key] = torch_dtype_name(plain);
  }
  save_checkpoint_raw(dir, raw, cfg, opt.max_shard_bytes, opt.files);
}

}  // namespace grpo
