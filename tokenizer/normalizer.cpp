#include "tokenizer/normalizer.h"

#include <unicode/bytestream.h>
#include <unicode/normalizer2.h>

#include "common/utf8.h"

namespace grpo {
namespace {

const icu::Normalizer2& instance(NormalForm form) {
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* n = nullptr;
  switch (form) {
    case NormalForm::kNFC: n = icu::Normalizer2::getNFCInstance(status); break;
    case NormalForm::kNFD: n = icu::Normalizer2::getNFDInstance(status); break;
    case NormalForm::kNFKC: n = icu::Normalizer2::getNFKCInstance(status); break;
    case NormalForm::kNFKD: n = icu::Normalizer2::getNFKDInstance(status); break;
  }
  if (U_FAILURE(status) || !n)
    throw std::runtime_error(std::string("ICU normalizer unavailable: ") + u_errorName(status));
  return *n;
}

// Normalizes valid UTF-8 `text` into out.
void normalize_valid(const icu::Normalizer2& n, std::string_view text, std::string& out) {
  UErrorCode status = U_ZERO_ERROR;
  icu::StringPiece piece(text.data(), static_cast<int32_t>(text.size()));
  if (n.isNormalizedUTF8(piece, status) && U_SUCCESS(status)) {
    out.append(text);
    return;
  }
  status = U_ZERO_ERROR;
  icu::StringByteSink<std::string> sink(&out);
  n.normalizeUTF8(0, piece, sink, nullptr, status);
  if (U_FAILURE(status)) throw std::runtime_error(std::string("ICU normalization failed: ") + u_errorName(status));
}

}  // namespace

void Normalizer::parse(const nlohmann::json& node, const JsonWhere& where, std::vector<NormalForm>& forms) {
  where.expect_object(node);
  const std::string type = where.get_string(node, "type", "");
  if (type == "Sequence") {
    const auto& list = where.require(node, "normalizers");
    if (!list.is_array()) where.at("normalizers").fail("expected an array, got " + json_kind(list));
    for (size_t i = 0; i < list.size(); ++i) parse(list[i], where.at("normalizers").at(i), forms);
  } else if (type == "NFC") {
    forms.push_back(NormalForm::kNFC);
  } else if (type == "NFD") {
    forms.push_back(NormalForm::kNFD);
  } else if (type == "NFKC") {
    forms.push_back(NormalForm::kNFKC);
  } else if (type == "NFKD") {
    forms.push_back(NormalForm::kNFKD);
  } else {
    where.at("type").fail("unsupported normalizer type \"" + type + "\" (supported: Sequence, NFC, NFD, NFKC, NFKD)");
  }
}

Normalizer Normalizer::from_json(const nlohmann::json& node, const JsonWhere& where) {
  Normalizer n;
  if (!node.is_null()) parse(node, where, n.forms_);
  return n;
}

std::string Normalizer::apply(std::string_view text) const {
  std::string cur(text), next;
  for (NormalForm f : forms_) {
    const icu::Normalizer2& n = instance(f);
    next.clear();
    size_t pos = 0;
    while (pos < cur.size()) {
      std::string_view rest = std::string_view(cur).substr(pos);
      size_t valid = utf8::valid_prefix(rest);
      normalize_valid(n, rest.substr(0, valid), next);
      pos += valid;
      if (pos < cur.size()) next += cur[pos++];  // an invalid byte, kept as is
    }
    cur.swap(next);
  }
  return cur;
}

}  // namespace grpo
