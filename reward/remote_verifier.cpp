#include "reward/remote_verifier.h"

#include <algorithm>

#include "reward/client.h"
#include "reward/wire.h"

namespace grpo::reward {
namespace {

class RemoteVerifier : public Verifier {
 public:
  RemoteVerifier(std::string name, const RemoteOptions& o)
      : name_(std::move(name)),
        remote_name_(o.verifier.empty() ? name_ : o.verifier),
        options_(o),
        client_(o.address, client_options(name_, o)) {}
  std::string name() const override { return name_; }
  std::string description() const override { return "remote verifier '" + remote_name_ + "' at " + options_.address; }
  std::string pool() const override { return kRemotePool; }

  VerifyResult verify(const VerifyRequest& request) const override {
    const int64_t timeout_ms = std::min(options_.timeout_ms, request.limits.timeout_ms);
    try {
      return result_from_proto(client_.score(request_to_proto(request, remote_name_), timeout_ms));
    } catch (const RpcError& e) {
      std::string what = "remote verifier '" + name_ + "': " + e.what();
      if (e.code() == grpc::INVALID_ARGUMENT) throw InputError(what);
      throw RpcError(e.code(), what);
    }
  }

 private:
  static ClientOptions client_options(const std::string& name, const RemoteOptions& o) {
    if (o.address.empty()) throw InputError("remote verifier '" + name + "': address is empty");
    if (o.timeout_ms <= 0 || o.retries < 0 || o.backoff_ms < 0)
      throw InputError("remote verifier '" + name + "': need timeout_ms > 0, retries >= 0, backoff_ms >= 0");
    ClientOptions c;
    c.timeout_ms = o.timeout_ms;
    c.retries = o.retries;
    c.backoff_ms = o.backoff_ms;
    c.max_message_bytes = o.max_message_bytes;
    return c;
  }

  std::string name_, remote_name_;
  RemoteOptions options_;
  RewardClient client_;
};

}  // namespace

std::unique_ptr<Verifier> make_remote_verifier(const std::string& name, const RemoteOptions& options) {
  return std::make_unique<RemoteVerifier>(name, options);
}

}  // namespace grpo::reward
