#include "tokenizer/json.h"

namespace grpo {

std::string json_kind(const nlohmann::json& v) {
  switch (v.type()) {
    case nlohmann::json::value_t::null: return "null";
    case nlohmann::json::value_t::object: return "an object";
    case nlohmann::json::value_t::array: return "an array";
    case nlohmann::json::value_t::string: return "a string";
    case nlohmann::json::value_t::boolean: return "a boolean";
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned: return "an integer";
    case nlohmann::json::value_t::number_float: return "a number";
    default: return "a binary value";
  }
}

void JsonWhere::expect_object(const nlohmann::json& v) const {
  if (!v.is_object()) fail("expected an object, got " + json_kind(v));
}

const nlohmann::json& JsonWhere::require(const nlohmann::json& obj, const char* name) const {
  auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) at(name).fail("required key is missing");
  return *it;
}

bool JsonWhere::get_bool(const nlohmann::json& obj, const char* name, bool fallback) const {
  auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) at(name).fail("expected a boolean, got " + json_kind(*it));
  return it->get<bool>();
}

std::string JsonWhere::get_string(const nlohmann::json& obj, const char* name, const std::string& fallback) const {
  auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) return fallback;
  if (!it->is_string()) at(name).fail("expected a string, got " + json_kind(*it));
  return it->get<std::string>();
}

}  // namespace grpo
