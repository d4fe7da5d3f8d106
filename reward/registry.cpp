#include "reward/registry.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <set>

#include "reward/composite.h"
#include "reward/remote_verifier.h"

namespace grpo::reward {

void VerifierRegistry::insert(const std::string& name, Entry e) {
  if (name.empty()) throw InputError("verifier registry: empty verifier name");
  auto it = entries_.find(name);
  if (it != entries_.end())
    throw InputError("verifier '" + name + "' is already registered (as " + it->second.kind + ")");
  entries_.emplace(name, std::move(e));
}

void VerifierRegistry::add_builtin(const std::string& name, VerifierFactory factory, const nlohmann::json& defaults,
                                   const std::string& lazy_description) {
  Entry e;
  if (lazy_description.empty()) e.verifier = std::shared_ptr<const Verifier>(factory(defaults));
  e.lazy_description = lazy_description;
  e.kind = "builtin";
  e.factory = std::move(factory);
  e.defaults = defaults;
  insert(name, std::move(e));
}

void VerifierRegistry::add(std::shared_ptr<const Verifier> verifier, const std::string& kind) {
  Entry e;
  std::string name = verifier->name();
  e.verifier = std::move(verifier);
  e.kind = kind;
  insert(name, std::move(e));
}

std::shared_ptr<const Verifier> VerifierRegistry::get(const std::string& name) const {
  auto it = entries_.find(name);
  if (it != entries_.end()) {
    const Entry& e = it->second;
    if (auto v = std::atomic_load(&e.verifier)) return v;
    std::lock_guard<std::mutex> lock(lazy_mu_);  // a lazy built-in: the first caller makes it
    if (!e.verifier) std::atomic_store(&e.verifier, std::shared_ptr<const Verifier>(e.factory(e.defaults)));
    return e.verifier;
  }
  std::string list;
  for (const auto& n : names()) list += (list.empty() ? "" : ", ") + n;
  throw UnknownVerifier("unknown verifier '" + name + "' (registered: " + (list.empty() ? "none" : list) + ")");
}

bool VerifierRegistry::is_builtin(const std::string& name) const {
  auto it = entries_.find(name);
  return it != entries_.end() && it->second.factory;
}

std::unique_ptr<Verifier> VerifierRegistry::make_builtin(const std::string& name, const nlohmann::json& options) const {
  if (!is_builtin(name)) {
    get(name);  // throws UnknownVerifier when absent
    throw UnknownVerifier("verifier '" + name + "' is not a built-in");
  }
  const Entry& e = entries_.at(name);
  nlohmann::json merged = e.defaults.is_object() ? e.defaults : nlohmann::json::object();
  if (!options.is_null()) merged.merge_patch(options);
  return e.factory(merged);
}

std::vector<VerifierInfo> VerifierRegistry::list() const {
  std::vector<VerifierInfo> out;
  for (const auto& [name, e] : entries_) {
    auto v = std::atomic_load(&e.verifier);
    out.push_back({name, e.kind, v ? v->description() : e.lazy_description + " (starts on first use)"});
  }
  return out;
}

std::vector<std::string> VerifierRegistry::names() const {
  std::vector<std::string> out;
  for (const auto& kv : entries_) out.push_back(kv.first);
  return out;
}

namespace {

// The verifier names a composite spec's parts refer to.
std::set<std::string> part_verifiers(const nlohmann::json& spec) {
  std::set<std::string> out;
  if (!spec.is_object()) return out;
  for (auto it = spec.begin(); it != spec.end(); ++it) {
    const auto& v = it.value();
    out.insert(v.is_object() && v.contains("verifier") && v["verifier"].is_string() ? v["verifier"].get<std::string>()
                                                                                    : it.key());
  }
  return out;
}

}  // namespace

std::shared_ptr<const VerifierRegistry> registry_from_config(const Config& config) {
  config.require_known({"server", "limits", "verifiers", "composites", "remote", "http"});
  const std::string& src = config.source();
  auto registry = std::make_shared<VerifierRegistry>();
  try {
    register_builtin(*registry, yaml_to_json(config.sub("verifiers").node()));
  } catch (const InputError& e) {
    throw InputError(src + ": key 'verifiers': " + e.what());
  }

  Config remotes = config.sub("remote");
  for (const auto& name : remotes.keys()) {
    Config r = remotes.sub(name);
    r.require_known({"address", "verifier", "timeout_ms", "retries", "backoff_ms", "max_message_mb"});
    RemoteOptions o;
    o.address = r.get<std::string>("address");
    o.verifier = r.get<std::string>("verifier", "");
    o.timeout_ms = r.get<int64_t>("timeout_ms", o.timeout_ms);
    o.retries = r.get<int>("retries", o.retries);
    o.backoff_ms = r.get<int64_t>("backoff_ms", o.backoff_ms);
    o.max_message_bytes = r.get<int>("max_message_mb", o.max_message_bytes >> 20) << 20;
    try {
      registry->add(make_remote_verifier(name, o), "remote");
    } catch (const InputError& e) {
      throw InputError(src + ": key 'remote." + name + "': " + e.what());
    }
  }

  // Composites may use each other: build those whose parts all exist until none is left.
  nlohmann::json pending = yaml_to_json(config.sub("composites").node());
  if (pending.is_null()) pending = nlohmann::json::object();
  while (!pending.empty()) {
    std::string ready;
    for (auto it = pending.begin(); it != pending.end() && ready.empty(); ++it) {
      bool all = true;
      for (const auto& v : part_verifiers(it.value())) {
        if (registry->contains(v)) continue;
        all = false;
        if (v == it.key()) throw InputError(src + ": key 'composites." + v + "': a composite cannot contain itself");
        if (!pending.contains(v)) {
          std::string list;
          for (const auto& n : registry->names()) list += (list.empty() ? "" : ", ") + n;
          throw InputError(src + ": key 'composites." + it.key() + "': unknown verifier '" + v +
                           "' (registered: " + list + ")");
        }
      }
      if (all) ready = it.key();
    }
    if (ready.empty())
      throw InputError(src + ": key 'composites': composites refer to each other in a cycle (" + pending.begin().key() +
                       ", …)");
    try {
      registry->add(make_composite_verifier(ready, pending[ready], *registry), "composite");
    } catch (const InputError& e) {
      throw InputError(src + ": key 'composites': " + e.what());
    }
    pending.erase(ready);
  }
  return registry;
}

}  // namespace grpo::reward
