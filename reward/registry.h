// Verifiers by name: the built-ins (reward/builtin_verifiers.cpp), composites and remote plugins
// from a reward config, and any a program adds itself. Build it, then share it read-only
// (std::shared_ptr<const VerifierRegistry>): lookups are thread-safe, additions are not.
//
// Adding your own verifier:
//  * in C++: implement grpo::reward::Verifier (reward/verifier.h), write a factory
//    `std::unique_ptr<Verifier> make_x_verifier(const nlohmann::json& options)` and add one line to
//    the table in reward/builtin_verifiers.cpp; its options come from `verifiers.x` in the config.
//  * in any language: serve proto/reward.proto (examples/python_verifier/) and name it under
//    `remote:` in the reward config; the server routes requests for that name to it.
#pragma once
#include <nlohmann/json.hpp>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/config.h"
#include "reward/verifier.h"

namespace grpo::reward {

// A request named a verifier that is not registered (the server answers NOT_FOUND).
// Thread-safety: immutable once thrown; owns its message.
class UnknownVerifier : public InputError {
 public:
  using InputError::InputError;
};

struct VerifierInfo {
  std::string name;
  std::string kind;  // "builtin", "composite", "remote", or what the adder said
  std::string description;
};

using VerifierFactory = std::function<std::unique_ptr<Verifier>(const nlohmann::json& options)>;

// Lookups (const) are thread-safe, additions are not. Owns its factories; shares its verifiers with get()'s callers.
class VerifierRegistry {
 public:
  // A built-in, made now with `defaults` (bad defaults fail here); composites make further
  // instances of it with their parts' options. Throws InputError for a duplicate name.
  // With a non-empty `lazy_description` it is made on first get() instead (for verifiers whose
  // construction is costly, e.g. starts sandboxed processes); list() shows that description
  // until then.
  void add_builtin(const std::string& name, VerifierFactory factory, const nlohmann::json& defaults = nullptr,
                   const std::string& lazy_description = "");
  // Any other verifier, under verifier->name(). Throws InputError for a duplicate name.
  void add(std::shared_ptr<const Verifier> verifier, const std::string& kind);

  bool contains(const std::string& name) const { return entries_.count(name) > 0; }
  // Throws UnknownVerifier naming the registered verifiers; for a lazy built-in that fails to
  // start, what its factory threw.
  std::shared_ptr<const Verifier> get(const std::string& name) const;
  // A new instance of built-in `name` with `options` merged over its defaults (JSON merge patch).
  // Throws UnknownVerifier when `name` is not a built-in.
  std::unique_ptr<Verifier> make_builtin(const std::string& name, const nlohmann::json& options) const;
  bool is_builtin(const std::string& name) const;
  std::vector<VerifierInfo> list() const;  // sorted by name
  std::vector<std::string> names() const;  // sorted

 private:
  struct Entry {
    mutable std::shared_ptr<const Verifier> verifier;  // null until a lazy built-in is made
    std::string kind;
    VerifierFactory factory;  // built-ins only
    nlohmann::json defaults;
    std::string lazy_description;
  };
  void insert(const std::string& name, Entry e);
  std::map<std::string, Entry> entries_;
  mutable std::mutex lazy_mu_;
};

// Registers the built-in verifiers; defaults: {"<name>": {options}} (the config's `verifiers`).
// Those that start processes (code) are made on first use unless `defaults` names them, which
// makes them now, so a broken sandbox fails at startup. Throws InputError naming the verifier for
// bad defaults or a name that is not a built-in.
void register_builtin(VerifierRegistry& registry, const nlohmann::json& defaults = nlohmann::json::object());

// The registry a reward config describes (configs/reward.yaml): built-ins with the options under
// `verifiers`, remote plugins under `remote`, composites under `composites`. Errors name the
// config file and key. `config` is the reward section (top-level keys server, limits, verifiers,
// composites, remote).
std::shared_ptr<const VerifierRegistry> registry_from_config(const Config& config);

using grpo::yaml_to_json;  // common/config.h

}  // namespace grpo::reward
