// A verifier's options: the server's defaults for that verifier with the request's options
// merged over them (JSON merge patch), read through typed getters whose errors name the verifier
// and the option, e.g.  verifier 'overlong': option 'cache': expected an integer, got "big".
// All errors are grpo::InputError (a bad request or config, never bad model output).
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <set>
#include <string>

#include "common/error.h"

namespace grpo::reward {

// Thread-safety: const methods may be called concurrently. Owns a merged copy of the defaults and overrides.
class OptionReader {
 public:
  // defaults and overrides: JSON objects or null.
  OptionReader(std::string verifier, const nlohmann::json& defaults, const nlohmann::json& overrides = nullptr);

  bool has(const std::string& key) const { return merged_.contains(key) && !merged_[key].is_null(); }
  bool get_bool(const std::string& key, bool fallback) const;
  int64_t get_int(const std::string& key, int64_t fallback) const;
  int64_t require_int(const std::string& key) const;
  double get_double(const std::string& key, double fallback) const;
  std::string get_string(const std::string& key, const std::string& fallback) const;
  // Fails naming the first option not in `known`.
  void require_known(const std::set<std::string>& known) const;
  [[noreturn]] void fail(const std::string& key, const std::string& what) const;

 private:
  std::string verifier_;
  nlohmann::json merged_;
};

}  // namespace grpo::reward
