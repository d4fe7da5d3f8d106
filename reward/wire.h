// Between the wire (proto/reward.proto) and the Verifier contract (reward/verifier.h).
#pragma once
#include <map>
#include <string>

#include "proto/reward.pb.h"
#include "reward/verifier.h"

namespace grpo::reward {

// A ScoreRequest as a VerifyRequest under the server's limits (requests may only lower them).
// Throws InputError naming the field: reference (invalid JSON when reference_is_json, or nested
// deeper than server_limits.max_json_depth), options (the same, or not a JSON object), limits.*
// (negative).
VerifyRequest request_from_proto(const v1::ScoreRequest& request, const Limits& server_limits);

// A VerifyRequest on the wire: a string reference goes as plain text, anything else as JSON.
// Limits are sent as they are (the receiving server clamps them to its own).
v1::ScoreRequest request_to_proto(const VerifyRequest& request, const std::string& verifier,
                                  const std::string& id = "");

// Fills the verdict fields; strings are made valid UTF-8 (invalid bytes become U+FFFD).
void result_to_proto(const VerifyResult& result, v1::ScoreResponse* response);
VerifyResult result_from_proto(const v1::ScoreResponse& response);

}  // namespace grpo::reward
