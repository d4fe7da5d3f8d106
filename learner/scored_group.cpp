#include "learner/scored_group.h"

#include <cstdio>
#include <cstring>
#include <limits>

#include "common/crc32c.h"
#include "common/error.h"

namespace grpo {
namespace {

static_assert(sizeof(float) == 4 && sizeof(double) == 8, "IEEE 754 float/double expected");
// The format is little-endian; on a little-endian host (x86-64, aarch64) values are copied as is.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the record codec assumes a little-endian host");

class Writer {
 public:
  explicit Writer(std::string& out) : out_(out) {}
  template <typename T>  // a fixed-width scalar: uint8_t, uint32_t, int64_t, double
  void put(T v) {
    out_.append(reinterpret_cast<const char*>(&v), sizeof v);
  }
  void count(size_t n, const char* field) {
    if (n > std::numeric_limits<uint32_t>::max())
      throw InputError(std::string("scored group: ") + field + " has " + std::to_string(n) +
                       " elements/bytes, more than the record format's 2^32-1");
    put(static_cast<uint32_t>(n));
  }
  void str(const std::string& s, const char* field) {
    count(s.size(), field);
    out_.append(s);
  }
  template <typename T>  // int32_t or float
  void words(const std::vector<T>& v, const char* field) {
    count(v.size(), field);
    array(v);
  }
  template <typename T>  // the elements only (their count is implied by earlier fields)
  void array(const std::vector<T>& v) {
    out_.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
  }

 private:
  std::string& out_;
};

// Bounds-checked reads; the first failure is kept and all later reads return zeros.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  size_t left() const { return in_.size() - pos_; }
  void fail(const std::string& msg) {
    if (error_.empty()) error_ = msg;
  }

  template <typename T>
  T get(const std::string& field) {
    T v{};
    if (const char* p = take(sizeof v, field)) std::memcpy(&v, p, sizeof v);
    return v;
  }
  std::string str(const std::string& field) {
    const auto n = get<uint32_t>(field + " length");
    const char* p = take(n, field);
    return p ? std::string(p, n) : std::string();
  }
  template <typename T>  // int32_t or float
  std::vector<T> words(const std::string& field) {
    return array<T>(get<uint32_t>(field + " count"), field);
  }
  // n elements; n * sizeof(T) must not overflow (callers bound n by left() first when it can).
  template <typename T>
  std::vector<T> array(uint64_t n, const std::string& field) {
    std::vector<T> v;
    if (const char* p = take(n * sizeof(T), field)) {  // checked before allocating
      v.resize(n);
      std::memcpy(v.data(), p, n * sizeof(T));
    }
    return v;
  }

 private:
  // Pointer to the next n bytes, or nullptr (and the error set) when there are fewer.
  const char* take(uint64_t n, const std::string& field) {
    if (!ok()) return nullptr;
    if (n > left()) {
      fail("truncated: " + field + " needs " + std::to_string(n) + " bytes, " + std::to_string(left()) +
           " left at offset " + std::to_string(pos_));
      return nullptr;
    }
    const char* p = in_.data() + pos_;
    pos_ += n;
    return p;
  }
  std::string_view in_;
  size_t pos_ = 0;
  std::string error_;
};

constexpr size_t kHeaderBytes = 5;  // version + crc

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

// The route tokens a completion of `completion_tokens` after `prompt_tokens` must have.
int64_t route_tokens(size_t prompt_tokens, size_t completion_tokens) {
  return static_cast<int64_t>(prompt_tokens + completion_tokens) - 1;
}

// The routes of a version-2 completion (after its other fields): sizes checked, ids not.
void decode_routes(Reader& r, const std::string& where, size_t prompt_tokens, Completion& c) {
  const auto layers = r.get<uint32_t>(where + " routes layers");
  const auto top_k = r.get<uint32_t>(where + " routes top_k");
  const auto tokens = r.get<uint32_t>(where + " routes tokens");
  if (!r.ok() || (layers == 0 && top_k == 0 && tokens == 0)) return;  // none recorded
  const std::string sizes =
      "layers " + std::to_string(layers) + ", top_k " + std::to_string(top_k) + ", tokens " + std::to_string(tokens);
  const int64_t expected = route_tokens(prompt_tokens, c.token_ids.size());
  if (layers == 0 || top_k == 0 || tokens == 0)
    return r.fail(where + " routes: " + sizes + "; expected all three >= 1, or all 0 (no routes)");
  if (tokens != expected)
    return r.fail(where + " routes: " + std::to_string(tokens) + " tokens, expected " + std::to_string(expected) +
                  " (prompt " + std::to_string(prompt_tokens) + " + completion " + std::to_string(c.token_ids.size()) +
                  " - 1)");
  const uint64_t per_token = uint64_t(layers) * top_k;  // < 2^64; times tokens may not be
  if (per_token > r.left() / sizeof(uint16_t) / tokens)
    return r.fail("truncated: " + where + " routes (" + sizes + ") cannot fit in " + std::to_string(r.left()) +
                  " bytes");
  c.routes.layers = layers;
  c.routes.top_k = top_k;
  c.routes.tokens = tokens;
  c.routes.experts = r.array<uint16_t>(per_token * tokens, where + " routes experts");
}

bool decode_completion(Reader& r, const std::string& where, Completion& c) {
  c.text = r.str(where + " text");
  c.token_ids = r.words<int32_t>(where + " token_ids");
  c.logprobs = r.words<float>(where + " logprobs");
  if (r.ok() && c.logprobs.size() != c.token_ids.size())
    r.fail(where + ": " + std::to_string(c.token_ids.size()) + " token_ids but " + std::to_string(c.logprobs.size()) +
           " logprobs");
  c.reward = r.get<double>(where + " reward");
  const uint32_t k = r.get<uint32_t>(where + " reward component count");
  for (uint32_t i = 0; i < k && r.ok(); ++i) {
    std::string name = r.str(where + " reward component name");
    double v = r.get<double>(where + " reward component '" + name + "'");
    if (r.ok() && !c.reward_components.empty() && !(c.reward_components.rbegin()->first < name))
      r.fail(where + ": reward component '" + name + "' out of order or repeated");
    c.reward_components.emplace_hint(c.reward_components.end(), std::move(name), v);
  }
  c.reward_reason = r.str(where + " reward_reason");
  const uint8_t correct = r.get<uint8_t>(where + " correct");
  if (r.ok() && correct > 1) r.fail(where + ": correct flag is " + std::to_string(correct) + ", expected 0 or 1");
  c.correct = correct == 1;
  const uint8_t finish = r.get<uint8_t>(where + " finish_reason");
  if (r.ok() && finish > static_cast<uint8_t>(FinishReason::kAbort))
    r.fail(where + ": unknown finish_reason code " + std::to_string(finish));
  c.finish_reason = static_cast<FinishReason>(finish);
  c.weight_version = r.get<int64_t>(where + " weight_version");
  c.finished_us = r.get<int64_t>(where + " finished_us");
  return r.ok();
}

// The routes of completion i of g (all counts 0 when it has none); InputError when their sizes
// do not match.
void put_routes(Writer& w, const Completion& c, const ScoredGroup& g, size_t i) {
  const Routes& routes = c.routes;
  if (routes.empty()) {
    for (int k = 0; k < 3; ++k) w.put(uint32_t{0});
    return;
  }
  const std::string where = "scored group (prompt '" + g.prompt_id + "'): completion " + std::to_string(i) + " routes";
  const int64_t expected = route_tokens(g.prompt_token_ids.size(), c.token_ids.size());
  constexpr int64_t kMax = std::numeric_limits<uint32_t>::max();
  if (routes.layers < 1 || routes.layers > kMax || routes.top_k < 1 || routes.top_k > kMax)
    throw InputError(where + ": layers " + std::to_string(routes.layers) + ", top_k " + std::to_string(routes.top_k) +
                     "; expected both in [1, 2^32-1]");
  if (routes.tokens != expected)
    throw InputError(where + ": " + std::to_string(routes.tokens) + " tokens, expected " + std::to_string(expected) +
                     " (prompt " + std::to_string(g.prompt_token_ids.size()) + " + completion " +
                     std::to_string(c.token_ids.size()) + " - 1)");
  const uint64_t per_token = uint64_t(routes.layers) * uint64_t(routes.top_k);  // no overflow: both < 2^32
  if (routes.experts.size() % per_token != 0 || routes.experts.size() / per_token != uint64_t(routes.tokens))
    throw InputError(where + ": " + std::to_string(routes.experts.size()) + " expert ids, expected tokens x layers x " +
                     "top_k = " + std::to_string(routes.tokens) + " x " + std::to_string(routes.layers) + " x " +
                     std::to_string(routes.top_k));
  w.put(static_cast<uint32_t>(routes.layers));
  w.put(static_cast<uint32_t>(routes.top_k));
  w.put(static_cast<uint32_t>(routes.tokens));
  w.array(routes.experts);
}

}  // namespace

std::string encode_scored_group(const ScoredGroup& g) {
  if (g.step < 0) throw InputError("scored group: step is " + std::to_string(g.step) + ", expected >= 0");
  std::string out(kHeaderBytes, '\0');
  Writer w(out);
  w.str(g.run_id, "run_id");
  w.put(g.step);
  w.str(g.prompt_id, "prompt_id");
  w.str(g.prompt_text, "prompt_text");
  w.words(g.prompt_token_ids, "prompt_token_ids");
  w.str(g.reference_answer, "reference_answer");
  w.put(g.created_us);
  w.put(g.scored_us);
  w.count(g.completions.size(), "completions");
  for (size_t i = 0; i < g.completions.size(); ++i) {
    const Completion& c = g.completions[i];
    if (c.token_ids.size() != c.logprobs.size())
      throw InputError("scored group (prompt '" + g.prompt_id + "'): completion " + std::to_string(i) + " has " +
                       std::to_string(c.token_ids.size()) + " token_ids but " + std::to_string(c.logprobs.size()) +
                       " logprobs; expected one log-prob per token");
    if (static_cast<uint8_t>(c.finish_reason) > static_cast<uint8_t>(FinishReason::kAbort))
      throw InputError("scored group (prompt '" + g.prompt_id + "'): completion " + std::to_string(i) +
                       " has an unknown finish_reason");
    w.str(c.text, "completion text");
    w.words(c.token_ids, "completion token_ids");
    w.words(c.logprobs, "completion logprobs");
    w.put(c.reward);
    w.count(c.reward_components.size(), "reward_components");
    for (const auto& [name, v] : c.reward_components) {
      w.str(name, "reward component name");
      w.put(v);
    }
    w.str(c.reward_reason, "reward_reason");
    w.put(static_cast<uint8_t>(c.correct ? 1 : 0));
    w.put(static_cast<uint8_t>(c.finish_reason));
    w.put(c.weight_version);
    w.put(c.finished_us);
    put_routes(w, c, g, i);
  }
  const uint32_t crc = crc32c(out.data() + kHeaderBytes, out.size() - kHeaderBytes);
  out[0] = static_cast<char>(kScoredGroupFormatVersion);
  std::memcpy(&out[1], &crc, 4);
  return out;
}

std::optional<ScoredGroup> decode_scored_group(std::string_view record, std::string* error) {
  auto failed = [&](const std::string& why) -> std::optional<ScoredGroup> {
    if (error) *error = why;
    return std::nullopt;
  };
  if (record.empty()) return failed("empty record");
  const auto version = static_cast<uint8_t>(record[0]);
  if (version < 1 || version > kScoredGroupFormatVersion)
    return failed("unknown format version " + std::to_string(version) + " (this build reads versions 1 to " +
                  std::to_string(kScoredGroupFormatVersion) + ")");
  if (record.size() < kHeaderBytes)
    return failed("truncated: " + std::to_string(record.size()) + " bytes, shorter than the record header");
  uint32_t stored;
  std::memcpy(&stored, record.data() + 1, 4);
  const uint32_t computed = crc32c(record.data() + kHeaderBytes, record.size() - kHeaderBytes);
  if (stored != computed) return failed("checksum mismatch: stored " + hex32(stored) + ", computed " + hex32(computed));

  Reader r(record.substr(kHeaderBytes));
  ScoredGroup g;
  g.run_id = r.str("run_id");
  g.step = r.get<int64_t>("step");
  if (r.ok() && g.step < 0) r.fail("step is " + std::to_string(g.step) + ", expected >= 0");
  g.prompt_id = r.str("prompt_id");
  g.prompt_text = r.str("prompt_text");
  g.prompt_token_ids = r.words<int32_t>("prompt_token_ids");
  g.reference_answer = r.str("reference_answer");
  g.created_us = r.get<int64_t>("created_us");
  g.scored_us = r.get<int64_t>("scored_us");
  const uint32_t n = r.get<uint32_t>("completion count");
  // Each completion takes at least 46 bytes (58 from version 2), so a garbage count fails before a huge allocation.
  if (r.ok() && n > r.left() / 46)
    r.fail("truncated: " + std::to_string(n) + " completions cannot fit in " + std::to_string(r.left()) + " bytes");
  if (r.ok()) g.completions.resize(n);
  for (uint32_t i = 0; i < n && r.ok(); ++i) {
    const std::string where = "completion " + std::to_string(i);
    decode_completion(r, where, g.completions[i]);
    if (version >= 2) decode_routes(r, where, g.prompt_token_ids.size(), g.completions[i]);
  }
  if (r.ok() && r.left() != 0) r.fail(std::to_string(r.left()) + " trailing bytes after the last completion");
  if (!r.ok()) return failed(r.error());
  return g;
}

std::string encode_scored_groups(const std::vector<ScoredGroup>& groups) {
  std::string out;
  for (const ScoredGroup& g : groups) {
    const std::string record = encode_scored_group(g);
    const uint64_t n = record.size();
    out.append(reinterpret_cast<const char*>(&n), sizeof n);
    out += record;
  }
  return out;
}

std::optional<std::vector<ScoredGroup>> decode_scored_groups(std::string_view bytes, std::string* error) {
  std::vector<ScoredGroup> out;
  for (size_t at = 0; at < bytes.size();) {
    uint64_t n = 0;
    std::string why;
    if (bytes.size() - at < sizeof n) {
      if (error) *error = "truncated";
      return std::nullopt;
    }
    std::memcpy(&n, bytes.data() + at, sizeof n);
    at += sizeof n;
    auto g = n <= bytes.size() - at ? decode_scored_group(bytes.substr(at, n), &why) : std::nullopt;
    if (!g) {
      if (error) *error = "bad group record: " + (why.empty() ? std::string("truncated") : why);
      return std::nullopt;
    }
    out.push_back(std::move(*g));
    at += n;
  }
  return out;
}

}  // namespace grpo
