// Where a value sits in a tokenizer.json, for errors that name the file and the key:
//   tokenizer.json: key 'pre_tokenizer.pretokenizers[2].type': unsupported type "Whitespace"
#pragma once
#include <nlohmann/json.hpp>

#include <string>

#include "common/error.h"

namespace grpo {

struct JsonWhere {
  std::string file;
  std::string key;  // dotted path with [i] for array elements; empty at the top level

  JsonWhere at(const std::string& child) const { return {file, key.empty() ? child : key + "." + child}; }
  JsonWhere at(size_t index) const { return {file, key + "[" + std::to_string(index) + "]"}; }
  std::string describe() const { return file + (key.empty() ? "" : ": key '" + key + "'"); }
  [[noreturn]] void fail(const std::string& what) const { throw InputError(describe() + ": " + what); }

  // Typed access to obj[name] (obj must be an object); `where` is obj's own location.
  // The value of a required key (fails when absent or null).
  const nlohmann::json& require(const nlohmann::json& obj, const char* name) const;
  bool get_bool(const nlohmann::json& obj, const char* name, bool fallback) const;
  // A string, or `fallback` when absent or null.
  std::string get_string(const nlohmann::json& obj, const char* name, const std::string& fallback) const;
  // Fails unless the value is an object.
  void expect_object(const nlohmann::json& v) const;
};

// A short description of a JSON value's kind for messages: "a string", "null", ...
std::string json_kind(const nlohmann::json& v);

}  // namespace grpo
