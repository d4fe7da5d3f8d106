#include "reward/options.h"

namespace grpo::reward {

OptionReader::OptionReader(std::string verifier, const nlohmann::json& defaults, const nlohmann::json& overrides)
    : verifier_(std::move(verifier)), merged_(nlohmann::json::object()) {
  for (const auto* part : {&defaults, &overrides}) {
    if (part->is_null()) continue;
    if (!part->is_object())
      throw InputError("verifier '" + verifier_ + "': options must be a JSON object, got " + part->dump());
    merged_.merge_patch(*part);
  }
}

void OptionReader::fail(const std::string& key, const std::string& what) const {
  throw InputError("verifier '" + verifier_ + "': option '" + key + "': " + what);
}

bool OptionReader::get_bool(const std::string& key, bool fallback) const {
  if (!has(key)) return fallback;
  const auto& v = merged_[key];
  if (!v.is_boolean()) fail(key, "expected true or false, got " + v.dump());
  return v.get<bool>();
}

int64_t OptionReader::get_int(const std::string& key, int64_t fallback) const {
  return has(key) ? require_int(key) : fallback;
}

int64_t OptionReader::require_int(const std::string& key) const {
  if (!has(key)) fail(key, "required option is missing");
  const auto& v = merged_[key];
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float() && v.get<double>() == static_cast<double>(static_cast<int64_t>(v.get<double>())))
    return static_cast<int64_t>(v.get<double>());
  fail(key, "expected an integer, got " + v.dump());
}

double OptionReader::get_double(const std::string& key, double fallback) const {
  if (!has(key)) return fallback;
  const auto& v = merged_[key];
  if (!v.is_number()) fail(key, "expected a number, got " + v.dump());
  return v.get<double>();
}

std::string OptionReader::get_string(const std::string& key, const std::string& fallback) const {
  if (!has(key)) return fallback;
  const auto& v = merged_[key];
  if (!v.is_string()) fail(key, "expected a string, got " + v.dump());
  return v.get<std::string>();
}

void OptionReader::require_known(const std::set<std::string>& known) const {
  for (const auto& [key, value] : merged_.items()) {
    if (known.count(key)) continue;
    std::string list;
    for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
    fail(key, "unknown option (expected one of: " + list + ")");
  }
}

}  // namespace grpo::reward
