// The normalizer of a tokenizer.json: null, NFC, NFD, NFKC, NFKD (ICU) or a Sequence of these.
// Valid UTF-8 stretches are normalized; invalid bytes pass through unchanged.
#pragma once
#include <nlohmann/json.hpp>

#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/json.h"

namespace grpo {

enum class NormalForm { kNFC, kNFD, kNFKC, kNFKD };

// Thread-safety: immutable once parsed; apply() may be called concurrently (ICU's normalizers are). A plain value.
class Normalizer {
 public:
  // Parses the `normalizer` node at `where` (null: no normalization); InputError naming the key
  // for unsupported types.
  static Normalizer from_json(const nlohmann::json& node, const JsonWhere& where);

  bool is_identity() const { return forms_.empty(); }
  std::string apply(std::string_view text) const;

 private:
  static void parse(const nlohmann::json& node, const JsonWhere& where, std::vector<NormalForm>& forms);
  std::vector<NormalForm> forms_;
};

}  // namespace grpo
