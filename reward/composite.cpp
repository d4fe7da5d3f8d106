#include "reward/composite.h"

#include <cstdio>
#include <vector>

namespace grpo::reward {
namespace {

struct Part {
  std::string name;  // the component it fills
  std::string verifier_name;
  std::shared_ptr<const Verifier> verifier;
  double weight = 1.0;
};

std::string fmt_weight(double w) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", w);
  return buf;
}

class CompositeVerifier : public Verifier {
 public:
  CompositeVerifier(std::string name, std::vector<Part> parts) : name_(std::move(name)), parts_(std::move(parts)) {
    for (const auto& p : parts_) has_accuracy_ = has_accuracy_ || p.name == "accuracy";
  }
  std::string name() const override { return name_; }
  // Its slowest part's: sandbox over remote over default.
  std::string pool() const override {
    std::string pool = kDefaultPool;
    for (const auto& p : parts_) {
      const std::string q = p.verifier->pool();
      if (q == kSandboxPool || pool == kDefaultPool) pool = q;
    }
    return pool;
  }
  std::string description() const override {
    std::string d = "composite:";
    for (size_t i = 0; i < parts_.size(); ++i)
      d +=
          (i ? " + " : " ") + fmt_weight(parts_[i].weight) + "*" + parts_[i].name + "(" + parts_[i].verifier_name + ")";
    return d;
  }

  VerifyResult verify(const VerifyRequest& request) const override {
    if (!request.options.is_null() && !request.options.is_object())
      throw InputError("composite '" + name_ + "': options must be {\"<part>\": {...}}, got " + request.options.dump());
    if (request.options.is_object())
      for (auto it = request.options.begin(); it != request.options.end(); ++it) {
        bool known = false;
        for (const auto& p : parts_) known = known || p.name == it.key();
        if (!known) throw InputError("composite '" + name_ + "': options name no part '" + it.key() + "'");
      }
    VerifyResult out;
    out.correct = true;
    for (const auto& p : parts_) {
      VerifyRequest sub = request;
      sub.options =
          request.options.is_object() && request.options.contains(p.name) ? request.options[p.name] : nlohmann::json();
      VerifyResult r = p.verifier->verify(sub);
      out.components[p.name] = r.reward;
      out.reward += p.weight * r.reward;
      if (has_accuracy_ ? p.name == "accuracy" : true) out.correct = out.correct && r.correct;
      if (p.name == "accuracy") out.extracted = r.extracted;
      out.reason += (out.reason.empty() ? "" : "; ") + p.name + ": " + r.reason;
    }
    return out;
  }

 private:
  std::string name_;
  std::vector<Part> parts_;
  bool has_accuracy_ = false;
};

}  // namespace

std::unique_ptr<Verifier> make_composite_verifier(const std::string& name, const nlohmann::json& spec,
                                                  const VerifierRegistry& registry) {
  if (!spec.is_object() || spec.empty())
    throw InputError(name + ": expected a map of parts {part: {verifier, weight, options...}}");
  std::vector<Part> parts;
  for (auto it = spec.begin(); it != spec.end(); ++it) {
    const std::string where = name + "." + it.key();
    Part p;
    p.name = it.key();
    nlohmann::json options = it.value().is_null() ? nlohmann::json::object() : it.value();
    if (!options.is_object()) throw InputError(where + ": expected a map {verifier, weight, options...}");
    p.verifier_name = p.name;
    if (options.contains("verifier")) {
      if (!options["verifier"].is_string()) throw InputError(where + ".verifier: expected a verifier name");
      p.verifier_name = options["verifier"].get<std::string>();
      options.erase("verifier");
    }
    if (options.contains("weight")) {
      if (!options["weight"].is_number()) throw InputError(where + ".weight: expected a number");
      p.weight = options["weight"].get<double>();
      options.erase("weight");
    }
    if (p.verifier_name == name) throw InputError(where + ": a composite cannot contain itself");
    try {
      if (registry.is_builtin(p.verifier_name)) {
        p.verifier = registry.make_builtin(p.verifier_name, options);
      } else {
        p.verifier = registry.get(p.verifier_name);
        if (!options.empty())
          throw InputError("options (" + options.begin().key() + ", …) are only for built-in verifiers; '" +
                           p.verifier_name + "' is configured in its own section");
      }
    } catch (const InputError& e) {
      throw InputError(where + ": " + e.what());
    }
    parts.push_back(std::move(p));
  }
  return std::make_unique<CompositeVerifier>(name, std::move(parts));
}

}  // namespace grpo::reward
