#include "model/json_keys.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/error.h"
#include "common/json_parse.h"
#include "common/memory_limit.h"

namespace grpo {
namespace {

using nlohmann::json;

const char* type_name(const json& v) {
  if (v.is_null()) return "null";
  if (v.is_boolean()) return "a boolean";
  if (v.is_number_integer()) return "an integer";
  if (v.is_number()) return "a number";
  if (v.is_string()) return "a string";
  if (v.is_array()) return "an array";
  return "an object";
}

}  // namespace

void JsonKeys::fail(const std::string& key, const std::string& what) const {
  throw InputError(source_ + ": key '" + prefix_ + key + "': " + what);
}

int64_t JsonKeys::integer(const std::string& key) const {
  if (!has(key)) fail(key, "missing (required)");
  return as_int(key, j_.at(key));
}

int64_t JsonKeys::integer(const std::string& key, int64_t fallback) const {
  return has_value(key) ? as_int(key, j_.at(key)) : fallback;
}

std::optional<int64_t> JsonKeys::nullable_integer(const std::string& key) const {
  if (!has(key)) fail(key, "missing (required; null allowed)");
  if (j_.at(key).is_null()) return std::nullopt;
  return as_int(key, j_.at(key));
}

double JsonKeys::number(const std::string& key, double fallback) const {
  if (!has_value(key)) return fallback;
  const json& v = j_.at(key);
  if (!v.is_number()) fail(key, std::string("expected a number, got ") + type_name(v));
  return v.get<double>();
}

std::optional<double> JsonKeys::optional_number(const std::string& key) const {
  if (!has_value(key)) return std::nullopt;
  return number(key, 0.0);
}

bool JsonKeys::boolean(const std::string& key, bool fallback) const {
  if (!has_value(key)) return fallback;
  const json& v = j_.at(key);
  if (!v.is_boolean()) fail(key, std::string("expected true or false, got ") + type_name(v));
  return v.get<bool>();
}

std::string JsonKeys::string(const std::string& key, const std::string& fallback) const {
  if (!has_value(key)) return fallback;
  const json& v = j_.at(key);
  if (!v.is_string()) fail(key, std::string("expected a string, got ") + type_name(v));
  return v.get<std::string>();
}

JsonKeys JsonKeys::sub(const std::string& key) const {
  const json& v = j_.at(key);
  if (!v.is_object()) fail(key, std::string("expected an object, got ") + type_name(v));
  return JsonKeys(v, source_, prefix_ + key + ".");
}

std::vector<int64_t> JsonKeys::eos_ids(int64_t fallback) const {
  if (!has("eos_token_id")) return {fallback};
  const json& v = at("eos_token_id");
  if (v.is_null()) return {};
  if (v.is_array()) {
    std::vector<int64_t> out;
    for (const auto& e : v) {
      if (!e.is_number_integer()) fail("eos_token_id", "expected integers in the list");
      out.push_back(e.get<int64_t>());
    }
    return out;
  }
  return {integer("eos_token_id")};
}

void JsonKeys::require_positive(const std::string& key, int64_t v) const {
  if (v <= 0) fail(key, "must be > 0, got " + std::to_string(v));
}

void JsonKeys::require_memory(const std::string& key, double bytes, const std::string& what) const {
  const std::string shortfall = memory_shortfall(bytes);
  if (!shortfall.empty()) fail(key, what + " " + shortfall);
}

int64_t JsonKeys::as_int(const std::string& key, const json& v) const {
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (std::isfinite(d) && std::floor(d) == d) return static_cast<int64_t>(d);
  }
  fail(key, std::string("expected an integer, got ") + type_name(v));
}

json read_config_json(const std::string& path, std::string* file_out) {
  namespace fs = std::filesystem;
  const std::string file = fs::is_directory(path) ? (fs::path(path) / "config.json").string() : path;
  if (file_out) *file_out = file;
  std::ifstream in(file);
  if (!in) throw InputError(file + ": cannot open model config");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_json(ss.str(), file);
}

}  // namespace grpo
