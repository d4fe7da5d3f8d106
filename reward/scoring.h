// One verification under the service's rules, shared by the server and `grpo verify`:
//  * a completion longer than limits.max_completion_bytes scores 0 without running the verifier
//    (reason "completion too long: N bytes > limit M"; components empty);
//  * otherwise the verifier runs; exceptions propagate (InputError = a bad request);
//  * with `weights`, the total becomes Σ weights[c] · components[c]; a weight naming a component
//    the verifier did not produce is an InputError listing the ones it did.
#pragma once
#include <map>
#include <string>

#include "reward/verifier.h"

namespace grpo::reward {

VerifyResult score(const Verifier& verifier, const VerifyRequest& request,
                   const std::map<std::string, double>& weights = {});

}  // namespace grpo::reward
