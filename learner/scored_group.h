// A scored group: one prompt, its G sampled completions with the rollout engine's per-token
// log-probs and the reward service's verdicts. This is what the experience store keeps and what the
// trainer and the distillation exporter read back.
//
// Binary record (little-endian, format version 2), as stored under one key of the experience store:
//
//   u8   version            = 2 (1: the same without the routes; still read, as groups without routes)
//   u32  crc                CRC-32C of every byte after this field (the body)
//   body:
//     str  run_id           str  := u32 byte length, bytes (no terminator; any bytes)
//     i64  step
//     str  prompt_id
//     str  prompt_text
//     ids  prompt_token_ids ids  := u32 count, count x i32
//     str  reference_answer
//     i64  created_us       when the prompt was sent to the rollouts (unix time, microseconds)
//     i64  scored_us        when the last reward arrived
//     u32  G, then G completions:
//       str  text
//       ids  token_ids
//       f32s logprobs       f32s := u32 count, count x f32 (IEEE 754); count == token_ids count
//       f64  reward
//       u32  K, then K x (str name, f64 value)   reward components, names strictly increasing
//       str  reward_reason
//       u8   correct        0 or 1
//       u8   finish_reason  0 stop, 1 length, 2 abort
//       i64  weight_version
//       i64  finished_us
//       (version 2 on:) the routes (model/routes.h), all three counts 0 when none were recorded:
//       u32  layers         MoE layers, >= 1
//       u32  top_k          experts per token, >= 1
//       u32  tokens         == prompt_token_ids count + token_ids count - 1
//       u16 x tokens x layers x top_k  expert ids, [token][layer][k] (no count of their own;
//                           not range-checked: the model is not known here)
//
// A record that fails to decode (unknown version, checksum mismatch, truncated, trailing bytes,
// an out-of-range field) yields an error message saying which and where; nothing throws.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "model/routes.h"
#include "rollout/finish_reason.h"

namespace grpo {

// Stored as its byte: stop (the end-of-sequence token too), length or abort.
using rollout::FinishReason;

struct Completion {
  std::string text;                                 // as generated; may end inside a UTF-8 character
  std::vector<int32_t> token_ids;                   // [T]
  std::vector<float> logprobs;                      // [T] the rollout engine's log-prob of each sampled token
  double reward = 0;                                // total reward the trainer uses
  std::map<std::string, double> reward_components;  // "accuracy", "format", "overlong", ...
  std::string reward_reason;                        // the verifier's short verdict
  bool correct = false;
  FinishReason finish_reason = FinishReason::kStop;
  int64_t weight_version = 0;  // policy weight version that generated it
  int64_t finished_us = 0;     // generation finished (unix time, microseconds)
  // The experts the rollout's routers chose (MoE models, for trainer.routing_replay: rollout):
  // prompt + token_ids − 1 positions; empty when not recorded.
  Routes routes;
};

struct ScoredGroup {
  std::string run_id;
  int64_t step = 0;  // learner step the group was generated for, >= 0
  std::string prompt_id;
  std::string prompt_text;
  std::vector<int32_t> prompt_token_ids;
  std::string reference_answer;
  std::vector<Completion> completions;  // G
  int64_t created_us = 0;
  int64_t scored_us = 0;
};

constexpr uint8_t kScoredGroupFormatVersion = 2;

// Encodes `g` as a version-2 record. Throws grpo::InputError naming the field when `g` cannot be
// stored: negative step, token_ids/logprobs of different lengths, routes whose sizes do not match
// (experts count != tokens x layers x top_k, tokens != prompt + completion - 1, a count of 0 or
// above 2^32-1), a string or list over 4 GiB.
std::string encode_scored_group(const ScoredGroup& g);

// Decodes a record of version 1 or 2. On failure returns nullopt and, when `error` is given, sets it to the reason
// ("checksum mismatch: stored 0x.., computed 0x..", "truncated: completion 2 token_ids needs 40
// bytes, 12 left", "unknown format version 7", ...).
std::optional<ScoredGroup> decode_scored_group(std::string_view record, std::string* error = nullptr);

// A list of groups as one message (rank 0 to the other ranks of an expert-parallel run): each
// record (above) prefixed by its byte length, a little-endian uint64.
std::string encode_scored_groups(const std::vector<ScoredGroup>& groups);
// The inverse; nullopt and `error` ("truncated", "bad group record: ...") when `bytes` is not one.
std::optional<std::vector<ScoredGroup>> decode_scored_groups(std::string_view bytes, std::string* error = nullptr);

}  // namespace grpo
