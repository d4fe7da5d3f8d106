// Bounded integer config values, the check every options parser makes. Pure functions.
#pragma once
#include <string>

#include "common/config.h"
#include "common/error.h"

namespace grpo {

// c.get<T>(key, fallback), which must be >= min: InputError "FILE: key 'K': must be >= MIN, got V".
template <class T>
T config_at_least(const Config& c, const std::string& key, T fallback, T min) {
  const T v = c.get<T>(key, fallback);
  if (v < min) throw InputError(c.where(key) + ": must be >= " + std::to_string(min) + ", got " + std::to_string(v));
  return v;
}

// c.get<T>(key, fallback), which must lie in [min, max]: InputError "FILE: key 'K': must be in
// [MIN, MAX], got V".
template <class T>
T config_in_range(const Config& c, const std::string& key, T fallback, T min, T max) {
  const T v = c.get<T>(key, fallback);
  if (v < min || v > max)
    throw InputError(c.where(key) + ": must be in [" + std::to_string(min) + ", " + std::to_string(max) + "], got " +
                     std::to_string(v));
  return v;
}

}  // namespace grpo
