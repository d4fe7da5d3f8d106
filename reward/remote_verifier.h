// A verifier served by another process over RewardService (a plugin in any language), configured
// under `remote:` in the reward config:
//
//   remote:
//     myverifier: {address: "127.0.0.1:50100", timeout_ms: 2000, retries: 2}
//
// verify() sends the request to `address` for the verifier named `verifier` there (default: the
// same name), with deadline min(timeout_ms, the request's timeout), retrying only on UNAVAILABLE
// and DEADLINE_EXCEEDED. Failures throw RpcError (reward/client.h) carrying the remote status, so
// the server answers with that code and a message naming the plugin, its address and attempts.
#pragma once
#include <memory>
#include <string>

#include "reward/verifier.h"

namespace grpo::reward {

struct RemoteOptions {
  std::string address;
  std::string verifier;  // its name at the remote server; empty = the local name
  int64_t timeout_ms = 10'000;
  int retries = 2;
  int64_t backoff_ms = 50;
  int max_message_bytes = 64 << 20;
};

std::unique_ptr<Verifier> make_remote_verifier(const std::string& name, const RemoteOptions& options);

}  // namespace grpo::reward
