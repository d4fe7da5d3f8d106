// The one place built-in verifiers are registered. To add yours: include its header and add a
// {name, factory} row; its default options then come from `verifiers.<name>` in the config.
#include <utility>
#include <vector>

#include "reward/format.h"
#include "reward/math/math_verifier.h"
#include "reward/registry.h"

namespace grpo::reward {

void register_builtin(VerifierRegistry& registry, const nlohmann::json& defaults) {
  const std::vector<std::pair<std::string, VerifierFactory>> builtins = {
      {"format", make_format_verifier},
      {"language", make_language_verifier},
      {"overlong", make_overlong_verifier},
      {"math", make_math_verifier},
      // INTEGRATION: once branch `code` is merged, #include "reward/code_verifier.h" and add
      //   {"code", make_code_verifier},
  };
  if (!defaults.is_null() && !defaults.is_object())
    throw InputError("verifier defaults: expected a map {name: options}, got " + defaults.dump());
  auto is_builtin = [&](const std::string& name) {
    for (const auto& b : builtins)
      if (b.first == name) return true;
    return false;
  };
  if (defaults.is_object())
    for (auto it = defaults.begin(); it != defaults.end(); ++it)
      if (!is_builtin(it.key())) {
        std::string list;
        for (const auto& b : builtins) list += (list.empty() ? "" : ", ") + b.first;
        throw InputError("verifiers." + it.key() + ": not a built-in verifier (built-ins: " + list + ")");
      }
  for (const auto& [name, factory] : builtins) {
    nlohmann::json opts = defaults.is_object() && defaults.contains(name) ? defaults[name] : nlohmann::json();
    registry.add_builtin(name, factory, opts);
  }
}

}  // namespace grpo::reward
