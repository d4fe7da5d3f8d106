#include "learner/scored_group.h"

#include <cstring>
#include <limits>

#include "common/crc32c.h"
#include "common/error.h"

namespace grpo {
namespace {

static_assert(sizeof(float) == 4 && sizeof(double) == 8, "IEEE 754 float/double expected");

// Little-endian appends. The host is little-endian (x86-64, aarch64); the byte loops make the
// format independent of that anyway and compile to plain stores.
class Writer {
 public:
  explicit Writer(std::string& out) : out_(out) {}
  void u8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void u32(uint32_t v) {
    for (int i = 0; i < 4; ++i) out_.push_back(static_cast<char>(v >> (8 * i)));
  }
  void u64(uint64_t v) {
    for (int i = 0; i < 8; ++i) out_.push_back(static_cast<char>(v >> (8 * i)));
  }
  void i64(int64_t v) { u64(static_cast<uint64_t>(v)); }
  void f64(double v) {
    uint64_t b;
    std::memcpy(&b, &v, 8);
    u64(b);
  }
  void count(size_t n, const char* field) {
    if (n > std::numeric_limits<uint32_t>::max())
      throw InputError(std::string("scored group: ") + field + " has " + std::to_string(n) +
                       " elements/bytes, more than the record format's 2^32-1");
    u32(static_cast<uint32_t>(n));
  }
  void str(const std::string& s, const char* field) {
    count(s.size(), field);
    out_.append(s);
  }
  template <typename T>  // int32_t or float: 4-byte elements
  void words(const std::vector<T>& v, const char* field) {
    static_assert(sizeof(T) == 4, "4-byte elements");
    count(v.size(), field);
    for (T x : v) {
      uint32_t b;
      std::memcpy(&b, &x, 4);
      u32(b);
    }
  }

 private:
  std::string& out_;
};

// Bounds-checked little-endian reads; the first failure is kept and all later reads return zeros.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  size_t left() const { return in_.size() - pos_; }
  void fail(const std::string& msg) {
    if (error_.empty()) error_ = msg;
  }

  uint8_t u8(const std::string& field) { return static_cast<uint8_t>(take(1, field)[0]); }
  uint32_t u32(const std::string& field) {
    const char* p = take(4, field);
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= uint32_t(static_cast<unsigned char>(p[i])) << (8 * i);
    return v;
  }
  uint64_t u64(const std::string& field) {
    const char* p = take(8, field);
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= uint64_t(static_cast<unsigned char>(p[i])) << (8 * i);
    return v;
  }
  int64_t i64(const std::string& field) { return static_cast<int64_t>(u64(field)); }
  double f64(const std::string& field) {
    uint64_t b = u64(field);
    double v;
    std::memcpy(&v, &b, 8);
    return v;
  }
  std::string str(const std::string& field) {
    uint32_t n = u32(field + " length");
    const char* p = take(n, field);
    return ok() ? std::string(p, n) : std::string();
  }
  template <typename T>
  std::vector<T> words(const std::string& field) {
    uint32_t n = u32(field + " count");
    const char* p = take(uint64_t(n) * 4, field);  // checked before anything is allocated
    std::vector<T> v;
    if (!ok()) return v;
    v.resize(n);
    for (uint32_t i = 0; i < n; ++i) {
      uint32_t b = 0;
      for (int k = 0; k < 4; ++k) b |= uint32_t(static_cast<unsigned char>(p[4 * i + k])) << (8 * k);
      std::memcpy(&v[i], &b, 4);
    }
    return v;
  }

 private:
  const char* take(uint64_t n, const std::string& field) {
    static const char kZeros[8] = {};
    if (!ok()) return kZeros;
    if (n > left()) {
      fail("truncated: " + field + " needs " + std::to_string(n) + " bytes, " + std::to_string(left()) +
           " left at offset " + std::to_string(pos_));
      return kZeros;
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

char hex_digit(unsigned v) { return "0123456789abcdef"[v & 15]; }
std::string hex32(uint32_t v) {
  std::string s = "0x";
  for (int i = 7; i >= 0; --i) s.push_back(hex_digit(v >> (4 * i)));
  return s;
}

bool decode_completion(Reader& r, const std::string& where, Completion& c) {
  c.text = r.str(where + " text");
  c.token_ids = r.words<int32_t>(where + " token_ids");
  c.logprobs = r.words<float>(where + " logprobs");
  if (r.ok() && c.logprobs.size() != c.token_ids.size())
    r.fail(where + ": " + std::to_string(c.token_ids.size()) + " token_ids but " +
           std::to_string(c.logprobs.size()) + " logprobs");
  c.reward = r.f64(where + " reward");
  const uint32_t k = r.u32(where + " reward component count");
  for (uint32_t i = 0; i < k && r.ok(); ++i) {
    std::string name = r.str(where + " reward component name");
    double v = r.f64(where + " reward component '" + name + "'");
    if (r.ok() && !c.reward_components.empty() && !(c.reward_components.rbegin()->first < name))
      r.fail(where + ": reward component '" + name + "' out of order or repeated");
    c.reward_components.emplace_hint(c.reward_components.end(), std::move(name), v);
  }
  c.reward_reason = r.str(where + " reward_reason");
  const uint8_t correct = r.u8(where + " correct");
  if (r.ok() && correct > 1) r.fail(where + ": correct flag is " + std::to_string(correct) + ", expected 0 or 1");
  c.correct = correct == 1;
  const uint8_t finish = r.u8(where + " finish_reason");
  if (r.ok() && finish > static_cast<uint8_t>(FinishReason::kAbort))
    r.fail(where + ": unknown finish_reason code " + std::to_string(finish));
  c.finish_reason = static_cast<FinishReason>(finish);
  c.weight_version = r.i64(where + " weight_version");
  c.finished_us = r.i64(where + " finished_us");
  return r.ok();
}

}  // namespace

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength: return "length";
    case FinishReason::kAbort: return "abort";
  }
  return "unknown";
}

std::string encode_scored_group(const ScoredGroup& g) {
  if (g.step < 0) throw InputError("scored group: step is " + std::to_string(g.step) + ", expected >= 0");
  std::string out(kHeaderBytes, '\0');
  Writer w(out);
  w.str(g.run_id, "run_id");
  w.i64(g.step);
  w.str(g.prompt_id, "prompt_id");
  w.str(g.prompt_text, "prompt_text");
  w.words(g.prompt_token_ids, "prompt_token_ids");
  w.str(g.reference_answer, "reference_answer");
  w.i64(g.created_us);
  w.i64(g.scored_us);
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
    w.f64(c.reward);
    w.count(c.reward_components.size(), "reward_components");
    for (const auto& [name, v] : c.reward_components) {
      w.str(name, "reward component name");
      w.f64(v);
    }
    w.str(c.reward_reason, "reward_reason");
    w.u8(c.correct ? 1 : 0);
    w.u8(static_cast<uint8_t>(c.finish_reason));
    w.i64(c.weight_version);
    w.i64(c.finished_us);
  }
  const uint32_t crc = crc32c(out.data() + kHeaderBytes, out.size() - kHeaderBytes);
  out[0] = static_cast<char>(kScoredGroupFormatVersion);
  for (int i = 0; i < 4; ++i) out[1 + i] = static_cast<char>(crc >> (8 * i));
  return out;
}

std::optional<ScoredGroup> decode_scored_group(std::string_view record, std::string* error) {
  auto failed = [&](const std::string& why) -> std::optional<ScoredGroup> {
    if (error) *error = why;
    return std::nullopt;
  };
  if (record.empty()) return failed("empty record");
  const auto version = static_cast<uint8_t>(record[0]);
  if (version != kScoredGroupFormatVersion)
    return failed("unknown format version " + std::to_string(version) + " (this build reads version " +
                  std::to_string(kScoredGroupFormatVersion) + ")");
  if (record.size() < kHeaderBytes)
    return failed("truncated: " + std::to_string(record.size()) + " bytes, shorter than the record header");
  Reader header(record.substr(1, 4));
  const uint32_t stored = header.u32("crc");
  const uint32_t computed = crc32c(record.data() + kHeaderBytes, record.size() - kHeaderBytes);
  if (stored != computed) return failed("checksum mismatch: stored " + hex32(stored) + ", computed " + hex32(computed));

  Reader r(record.substr(kHeaderBytes));
  ScoredGroup g;
  g.run_id = r.str("run_id");
  g.step = r.i64("step");
  if (r.ok() && g.step < 0) r.fail("step is " + std::to_string(g.step) + ", expected >= 0");
  g.prompt_id = r.str("prompt_id");
  g.prompt_text = r.str("prompt_text");
  g.prompt_token_ids = r.words<int32_t>("prompt_token_ids");
  g.reference_answer = r.str("reference_answer");
  g.created_us = r.i64("created_us");
  g.scored_us = r.i64("scored_us");
  const uint32_t n = r.u32("completion count");
  // Each completion takes at least 46 bytes, so a garbage count fails before a huge allocation.
  if (r.ok() && n > r.left() / 46) r.fail("truncated: " + std::to_string(n) + " completions cannot fit in " +
                                          std::to_string(r.left()) + " bytes");
  if (r.ok()) g.completions.resize(n);
  for (uint32_t i = 0; i < n && r.ok(); ++i) decode_completion(r, "completion " + std::to_string(i), g.completions[i]);
  if (r.ok() && r.left() != 0) r.fail(std::to_string(r.left()) + " trailing bytes after the last completion");
  if (!r.ok()) return failed(r.error());
  return g;
}

}  // namespace grpo
