// The one place built-in verifiers are registered. To add yours: include its header and add a
// {name, factory, ""} row; its default options then come from `verifiers.<name>` in the config.
#include <utility>
#include <vector>

#include "reward/code/verifier.h"
#include "reward/format.h"
#include "reward/math/math_verifier.h"
#include "reward/registry.h"

namespace grpo::reward {

void register_builtin(VerifierRegistry& registry, const nlohmann::json& defaults) {
  struct Builtin {
    std::string name;
    VerifierFactory factory;
    std::string lazy_description;  // non-empty: made on first use unless the config names it
  };
  const std::vector<Builtin> builtins = {
      {"format", make_format_verifier, ""},
      {"language", make_language_verifier, ""},
      {"overlong", make_overlong_verifier, ""},
      {"math", make_math_verifier, ""},
      {"code", make_code_verifier, "runs the answer's program against the reference's tests in the sandbox"},
  };
  if (!defaults.is_null() && !defaults.is_object())
    throw InputError("verifier defaults: expected a map {name: options}, got " + defaults.dump());
  auto is_builtin = [&](const std::string& name) {
    for (const auto& b : builtins)
      if (b.name == name) return true;
    return false;
  };
  if (defaults.is_object())
    for (auto it = defaults.begin(); it != defaults.end(); ++it)
      if (!is_builtin(it.key())) {
        std::string list;
        for (const auto& b : builtins) list += (list.empty() ? "" : ", ") + b.name;
        throw InputError("verifiers." + it.key() + ": not a built-in verifier (built-ins: " + list + ")");
      }
  for (const auto& b : builtins) {
    const bool configured = defaults.is_object() && defaults.contains(b.name);
    registry.add_builtin(b.name, b.factory, configured ? defaults[b.name] : nlohmann::json(),
                         configured ? "" : b.lazy_description);
  }
}

}  // namespace grpo::reward
