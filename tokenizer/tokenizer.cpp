#include "tokenizer/tokenizer.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <unordered_map>

#include "common/json_parse.h"
#include "tokenizer/added.h"
#include "tokenizer/bpe.h"
#include "tokenizer/bytes.h"
#include "tokenizer/json.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/scratch.h"

namespace grpo {
namespace {

constexpr int64_t kMaxVocab = int64_t{1} << 24;  // ids above this are surely a corrupt file

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path + ": cannot open file");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_json(ss.str(), path);
}

std::vector<AddedToken> parse_added_tokens(const nlohmann::json& root, const JsonWhere& where) {
  std::vector<AddedToken> out;
  auto it = root.find("added_tokens");
  if (it == root.end() || it->is_null()) return out;
  if (!it->is_array()) where.fail("expected an array, got " + json_kind(*it));
  for (size_t i = 0; i < it->size(); ++i) {
    const auto& e = (*it)[i];
    const JsonWhere ew = where.at(i);
    ew.expect_object(e);
    AddedToken t;
    const auto& id = ew.require(e, "id");
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= kMaxVocab)
      ew.at("id").fail("expected an integer id in [0, " + std::to_string(kMaxVocab) + "), got " + id.dump());
    t.id = static_cast<int32_t>(id.get<int64_t>());
    t.content = ew.get_string(e, "content", "");
    if (t.content.empty()) ew.at("content").fail("expected a non-empty string");
    t.special = ew.get_bool(e, "special", false);
    t.single_word = ew.get_bool(e, "single_word", false);
    t.lstrip = ew.get_bool(e, "lstrip", false);
    t.rstrip = ew.get_bool(e, "rstrip", false);
    t.normalized = ew.get_bool(e, "normalized", !t.special);
    out.push_back(std::move(t));
  }
  return out;
}

void check_decoder(const nlohmann::json& root, const JsonWhere& where) {
  auto it = root.find("decoder");
  if (it == root.end() || it->is_null())
    where.fail("a ByteLevel decoder is required (only byte-level BPE tokenizers are supported)");
  where.expect_object(*it);
  const std::string type = where.get_string(*it, "type", "");
  if (type != "ByteLevel") where.at("type").fail("unsupported decoder type \"" + type + "\" (expected ByteLevel)");
}

}  // namespace

struct Tokenizer::Impl {
  std::string path;
  Normalizer normalizer;
  PreTokenizer pre_tokenizer;
  BpeModel model;
  AddedTokenMatcher raw_added;         // added tokens matched before normalization
  AddedTokenMatcher normalized_added;  // added tokens matched in normalized text
  std::unordered_map<std::string, int32_t> added_ids;
  std::vector<std::string> tokens;  // id -> token string ("" for gaps)
  std::vector<std::string> bytes;   // id -> the bytes decode writes
  std::vector<uint8_t> present, special;
  int32_t bos = -1, eos = -1;

  Impl(std::string p, Normalizer n, PreTokenizer pre, BpeModel m)
      : path(std::move(p)), normalizer(std::move(n)), pre_tokenizer(std::move(pre)), model(std::move(m)) {}

  int32_t lookup(std::string_view token) const {
    std::string key(token);
    if (auto it = added_ids.find(key); it != added_ids.end()) return it->second;
    if (auto it = model.vocab().find(key); it != model.vocab().end()) return it->second;
    return -1;
  }

  void encode_plain(std::string_view text, std::vector<int32_t>& out) const {
    thread_local PreTokenized pieces;
    pieces.clear();
    pre_tokenizer.split(text, pieces);
    for (std::string_view p : pieces.pieces) model.encode_piece(p, out);
    pieces.clear();
    trim_scratch(pieces.pieces);
  }

  // Resolves tokenizer_config.json's bos_token / eos_token (a string or {"content": ...}).
  int32_t config_token(const nlohmann::json& cfg, const char* key, const JsonWhere& where) const {
    auto it = cfg.find(key);
    if (it == cfg.end() || it->is_null()) return -1;
    std::string content;
    if (it->is_string()) {
      content = it->get<std::string>();
    } else if (it->is_object()) {
      content = where.at(key).get_string(*it, "content", "");
    } else {
      where.at(key).fail("expected a string or an object with \"content\", got " + json_kind(*it));
    }
    int32_t id = lookup(content);
    if (id < 0) where.at(key).fail("token \"" + content + "\" is not in the vocabulary of " + path);
    return id;
  }
};

std::string Tokenizer::json_path(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  return fs::is_directory(path, ec) ? (fs::path(path) / "tokenizer.json").string() : path;
}

Tokenizer Tokenizer::load(const std::string& path_in, const TokenizerOptions& options) {
  const std::string path = json_path(path_in);
  const nlohmann::json root = read_json(path);
  const JsonWhere top{path, ""};
  if (!root.is_object()) top.fail("expected a JSON object at the top level, got " + json_kind(root));

  const auto null = nlohmann::json();
  auto node = [&](const char* key) -> const nlohmann::json& {
    auto it = root.find(key);
    return it == root.end() ? null : *it;
  };
  Normalizer normalizer = Normalizer::from_json(node("normalizer"), top.at("normalizer"));
  PreTokenizer pre = PreTokenizer::from_json(node("pre_tokenizer"), top.at("pre_tokenizer"));
  BpeModel model = BpeModel::from_json(top.require(root, "model"), top.at("model"), options.cache_capacity);
  check_decoder(root, top.at("decoder"));
  auto impl = std::make_shared<Impl>(path, std::move(normalizer), std::move(pre), std::move(model));

  // id tables
  std::vector<AddedToken> added = parse_added_tokens(root, top.at("added_tokens"));
  int64_t size = 0;
  for (const auto& [token, id] : impl->model.vocab()) size = std::max<int64_t>(size, int64_t{id} + 1);
  for (const auto& t : added) size = std::max<int64_t>(size, int64_t{t.id} + 1);
  if (size > kMaxVocab)
    top.at("model.vocab")
        .fail("ids reach " + std::to_string(size - 1) + ", over the limit " + std::to_string(kMaxVocab - 1));
  impl->tokens.assign(size, "");
  impl->present.assign(size, 0);
  impl->special.assign(size, 0);
  for (const auto& [token, id] : impl->model.vocab()) impl->tokens[id] = token, impl->present[id] = 1;
  std::vector<AddedToken> raw, normalized;
  std::vector<std::string> raw_patterns, normalized_patterns;
  for (const auto& t : added) {
    impl->tokens[t.id] = t.content;
    impl->present[t.id] = 1;
    impl->special[t.id] = t.special;
    impl->added_ids[t.content] = t.id;
    if (t.normalized) {  // matched in normalized text, so normalized the same way
      normalized_patterns.push_back(impl->normalizer.apply(t.content));
      normalized.push_back(t);
    } else {
      raw_patterns.push_back(t.content);
      raw.push_back(t);
    }
  }
  impl->raw_added = AddedTokenMatcher(std::move(raw), raw_patterns);
  impl->normalized_added = AddedTokenMatcher(std::move(normalized), normalized_patterns);
  impl->bytes.resize(size);
  for (int64_t id = 0; id < size; ++id) {
    auto b = bytelevel::to_bytes(impl->tokens[id]);
    impl->bytes[id] = b ? std::move(*b) : impl->tokens[id];
  }

  namespace fs = std::filesystem;
  const fs::path config_path = fs::path(path).parent_path() / "tokenizer_config.json";
  std::error_code ec;
  if (fs::exists(config_path, ec)) {
    const std::string cp = config_path.string();
    const nlohmann::json cfg = read_json(cp);
    const JsonWhere cw{cp, ""};
    if (!cfg.is_object()) cw.fail("expected a JSON object at the top level, got " + json_kind(cfg));
    impl->bos = impl->config_token(cfg, "bos_token", cw);
    impl->eos = impl->config_token(cfg, "eos_token", cw);
  }
  return Tokenizer(std::move(impl));
}

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
  const Impl& m = *impl_;
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 4);
  std::vector<AddedTokenMatcher::Segment> outer, inner;
  m.raw_added.split(text, outer);
  for (const auto& seg : outer) {
    if (seg.id >= 0) {
      out.push_back(seg.id);
      continue;
    }
    std::string_view piece = text.substr(seg.begin, seg.end - seg.begin);
    std::string normalized;
    if (!m.normalizer.is_identity()) {
      normalized = m.normalizer.apply(piece);
      piece = normalized;
    }
    inner.clear();
    m.normalized_added.split(piece, inner);
    for (const auto& s : inner) {
      if (s.id >= 0) {
        out.push_back(s.id);
      } else {
        m.encode_plain(piece.substr(s.begin, s.end - s.begin), out);
      }
    }
  }
  return out;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special) const {
  const Impl& m = *impl_;
  std::string out;
  for (size_t i = 0; i < ids.size(); ++i) {
    const int32_t id = ids[i];
    if (id < 0 || id >= static_cast<int32_t>(m.present.size()) || !m.present[id])
      throw InputError("decode: ids[" + std::to_string(i) + "] = " + std::to_string(id) + " is not a token of " +
                       m.path + " (vocab_size " + std::to_string(m.present.size()) + ")");
    if (skip_special && m.special[id]) continue;
    out += m.bytes[id];
  }
  return out;
}

int32_t Tokenizer::token_to_id(std::string_view token) const { return impl_->lookup(token); }

std::string Tokenizer::id_to_token(int32_t id) const {
  const Impl& m = *impl_;
  if (id < 0 || id >= static_cast<int32_t>(m.present.size()) || !m.present[id])
    throw InputError("token id " + std::to_string(id) + " is not in the vocabulary of " + m.path);
  return m.tokens[id];
}

int32_t Tokenizer::vocab_size() const { return static_cast<int32_t>(impl_->present.size()); }
int32_t Tokenizer::bos_id() const { return impl_->bos; }
int32_t Tokenizer::eos_id() const { return impl_->eos; }
bool Tokenizer::is_special(int32_t id) const {
  return id >= 0 && id < static_cast<int32_t>(impl_->special.size()) && impl_->special[id];
}
const std::string& Tokenizer::path() const { return impl_->path; }

}  // namespace grpo
