// Typed access to the keys of a HuggingFace config.json object, with errors that name the file and
// the key path (InputError "FILE: key 'rope_scaling.factor': must be > 0"). Shared by the config
// parsers of the model families (model_config.h, dense_decoder.h).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace grpo {

// Thread-safety: const methods may be called concurrently. Keeps a reference to the JSON, which must outlive it.
class JsonKeys {
 public:
  JsonKeys(const nlohmann::json& j, std::string source, std::string prefix = "")
      : j_(j), source_(std::move(source)), prefix_(std::move(prefix)) {}

  [[noreturn]] void fail(const std::string& key, const std::string& what) const;
  bool has(const std::string& key) const { return j_.contains(key); }
  bool has_value(const std::string& key) const { return has(key) && !j_.at(key).is_null(); }

  int64_t integer(const std::string& key) const;                          // required
  int64_t integer(const std::string& key, int64_t fallback) const;        // absent or null: fallback
  std::optional<int64_t> nullable_integer(const std::string& key) const;  // required, null allowed
  double number(const std::string& key, double fallback) const;
  std::optional<double> optional_number(const std::string& key) const;
  bool boolean(const std::string& key, bool fallback) const;
  std::string string(const std::string& key, const std::string& fallback) const;
  const nlohmann::json& at(const std::string& key) const { return j_.at(key); }
  JsonKeys sub(const std::string& key) const;  // an object member

  // eos_token_id: an integer, a list of integers, or null (none); absent: {fallback}.
  std::vector<int64_t> eos_ids(int64_t fallback) const;
  void require_positive(const std::string& key, int64_t v) const;
  // fail(key, "WHAT needs N GiB, more than ...") when `bytes` exceed this machine's memory
  // (common/memory_limit.h): a size no allocation could meet fails here, naming its key.
  void require_memory(const std::string& key, double bytes, const std::string& what) const;

 private:
  int64_t as_int(const std::string& key, const nlohmann::json& v) const;

  const nlohmann::json& j_;
  std::string source_, prefix_;
};

// Reads a config.json (or DIR/config.json); `file` gets the path read. InputError when it cannot
// be opened or is not valid JSON.
nlohmann::json read_config_json(const std::string& path, std::string* file = nullptr);

}  // namespace grpo
