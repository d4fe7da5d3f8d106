// The error trainer_options_from_config gives for a run config (YAML text, read as "run.yaml")
// after one `key.path=value` override, or "no error".
#pragma once
#include <string>

#include "common/config.h"
#include "common/error.h"
#include "learner/trainer_options.h"

namespace grpo::testing {

inline std::string trainer_options_error(const std::string& yaml, const std::string& override_text) {
  Config c = Config::parse(yaml, "run.yaml");
  c.apply_override(override_text);
  try {
    trainer_options_from_config(c.sub("trainer"));
  } catch (const InputError& e) {
    return std::string(e.what());
  }
  return "no error";
}

}  // namespace grpo::testing
