// A composite verifier: several verifiers run on the same request, their rewards summed with
// weights. Defined in the reward config, e.g.
//
//   composites:
//     r1:
//       accuracy: {verifier: math, weight: 1.0}
//       format:   {weight: 0.1}                            # verifier defaults to the part's name
//       overlong: {max_len: 4096, cache: 512, weight: 1.0} # other keys: that verifier's options
//
// reward = Σ weight_p · reward_p; components[p] = reward_p (unweighted); correct = the verdict of
// the part named "accuracy" (without one: every part's verdict); extracted = the accuracy part's.
// Parts naming a built-in get their own instance with the part's options merged over the
// built-in's defaults; parts naming a remote or another composite take no options.
// Per request, options {"<part>": {...}} are passed to that part.
#pragma once
#include <memory>
#include <string>

#include "reward/registry.h"

namespace grpo::reward {

// spec: {part: {verifier?, weight?, ...options}}. Throws InputError naming "<name>.<part>[.key]".
std::unique_ptr<Verifier> make_composite_verifier(const std::string& name, const nlohmann::json& spec,
                                                  const VerifierRegistry& registry);

}  // namespace grpo::reward
