// Metrics: metrics.jsonl and TensorBoard event files read back with readers written here
// (TFRecord framing with CRC checks, a protobuf wire decoder) and, when protoc is installed, decoded
// by protoc against our own copy of the Event schema.
#include "metrics/metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/crc32c.h"
#include "metrics/tensorboard_events.h"
#include "tests/file_testutil.h"

using grpo::MetricsHistory;
using grpo::MetricsWriter;
using grpo::ckpt_test::expect_input_error;
using grpo::ckpt_test::read_bytes;
using grpo::ckpt_test::TempDir;
using grpo::ckpt_test::write_bytes;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

namespace {

// ---- an independent reader: TFRecord framing + protobuf wire format ------------------------

uint64_t le(const std::string& s, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= uint64_t(static_cast<unsigned char>(s[at + i])) << (8 * i);
  return v;
}

uint32_t masked(const std::string& s) {
  const uint32_t c = grpo::crc32c(s);
  return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

// Splits a TFRecord file into its records, checking both CRCs of each.
std::vector<std::string> read_tfrecords(const std::string& path) {
  const std::string f = read_bytes(path);
  std::vector<std::string> out;
  size_t at = 0;
  while (at < f.size()) {
    EXPECT_GE(f.size() - at, 12u) << "torn header at " << at;
    if (f.size() - at < 12) break;
    const uint64_t n = le(f, at, 8);
    EXPECT_EQ(le(f, at + 8, 4), masked(f.substr(at, 8))) << "length CRC at " << at;
    EXPECT_GE(f.size() - at - 12, n + 4) << "torn record at " << at;
    if (f.size() - at - 12 < n + 4) break;
    out.push_back(f.substr(at + 12, n));
    EXPECT_EQ(le(f, at + 12 + n, 4), masked(out.back())) << "data CRC at " << at;
    at += 12 + n + 4;
  }
  return out;
}

struct Field {
  uint32_t number = 0, type = 0;
  uint64_t varint = 0;  // types 0, 1, 5 (fixed values as raw bits)
  std::string bytes;    // type 2
};

std::vector<Field> decode_message(const std::string& m) {
  std::vector<Field> out;
  size_t at = 0;
  auto varint = [&] {
    uint64_t v = 0;
    for (int shift = 0; at < m.size(); shift += 7) {
      const auto b = static_cast<unsigned char>(m[at++]);
      v |= uint64_t(b & 0x7F) << shift;
      if (!(b & 0x80)) return v;
    }
    ADD_FAILURE() << "truncated varint";
    return v;
  };
  while (at < m.size()) {
    const uint64_t key = varint();
    Field f;
    f.number = static_cast<uint32_t>(key >> 3);
    f.type = static_cast<uint32_t>(key & 7);
    if (f.type == 0)
      f.varint = varint();
    else if (f.type == 1)
      f.varint = le(m, at, 8), at += 8;
    else if (f.type == 5)
      f.varint = le(m, at, 4), at += 4;
    else if (f.type == 2) {
      const uint64_t n = varint();
      f.bytes = m.substr(at, n);
      at += n;
    } else {
      ADD_FAILURE() << "unexpected wire type " << f.type;
      break;
    }
    out.push_back(f);
  }
  EXPECT_EQ(at, m.size());
  return out;
}

struct Event {
  double wall_time = 0;
  int64_t step = 0;
  std::string file_version;
  std::vector<std::pair<std::string, float>> values;
};

Event decode_event(const std::string& rec) {
  Event e;
  for (const Field& f : decode_message(rec)) {
    if (f.number == 1 && f.type == 1)
      std::memcpy(&e.wall_time, &f.varint, 8);
    else if (f.number == 2 && f.type == 0)
      e.step = static_cast<int64_t>(f.varint);
    else if (f.number == 3 && f.type == 2)
      e.file_version = f.bytes;
    else if (f.number == 5 && f.type == 2) {
      for (const Field& v : decode_message(f.bytes)) {
        EXPECT_EQ(v.number, 1u);
        std::string tag;
        float x = NAN;
        for (const Field& g : decode_message(v.bytes)) {
          if (g.number == 1 && g.type == 2)
            tag = g.bytes;
          else if (g.number == 2 && g.type == 5) {
            const auto bits = static_cast<uint32_t>(g.varint);
            std::memcpy(&x, &bits, 4);
          } else
            ADD_FAILURE() << "unexpected Value field " << g.number;
        }
        e.values.emplace_back(tag, x);
      }
    } else
      ADD_FAILURE() << "unexpected Event field " << f.number << " type " << f.type;
  }
  return e;
}

std::vector<std::string> event_files(const std::string& run_dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(run_dir + "/tb")) out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> lines_of(const std::string& path) {
  std::vector<std::string> out;
  std::istringstream in(read_bytes(path));
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

std::string run_capture(const std::string& cmd, int* code) {
  FILE* p = ::popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  *code = WEXITSTATUS(::pclose(p));
  return out;
}

}  // namespace

TEST(TfRecord, FramingAndMask) {
  const std::string data = "hello";
  const std::string rec = grpo::tfrecord_frame(data);
  ASSERT_EQ(rec.size(), 8 + 4 + 5 + 4u);
  EXPECT_EQ(le(rec, 0, 8), 5u);
  EXPECT_EQ(rec.substr(12, 5), data);
  // mask(c) = rotate right by 15, plus a constant; the CRC itself is pinned by the CRC-32C vectors.
  const uint32_t c = grpo::crc32c(data);
  const uint32_t m = static_cast<uint32_t>(le(rec, 17, 4));
  EXPECT_EQ(m, ((c >> 15) | (c << 17)) + 0xa282ead8u);
  EXPECT_EQ(grpo::tfrecord_masked_crc(data), m);
}

TEST(MetricsWriter, WritesJsonLinesAndTensorBoardEvents) {
  TempDir tmp;
  const std::string run = tmp / "run";
  {
    MetricsWriter w(run);
    w.log(0, {{"reward/mean", 0.25}, {"lr", 1e-6}});
    w.log(1, {{"reward/mean", 0.5}, {"lr", 2e-6}, {"kl", std::nan("")}});
    w.log(2, {{"reward/mean", -1.0 / 3}, {"time/generate", 12.5}, {"kl", INFINITY}});
    // Flushed at every log: readable while the writer is still open.
    EXPECT_EQ(lines_of(run + "/metrics.jsonl").size(), 3u);
    EXPECT_EQ(read_tfrecords(w.event_path()).size(), 4u);
  }
  const auto lines = lines_of(run + "/metrics.jsonl");
  ASSERT_EQ(lines.size(), 3u);
  auto j0 = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(j0["step"], 0);
  EXPECT_NEAR(j0["time"].get<double>(), static_cast<double>(std::time(nullptr)), 60);
  EXPECT_EQ(j0["reward/mean"].get<double>(), 0.25);
  EXPECT_EQ(j0["lr"].get<double>(), 1e-6);
  auto j1 = nlohmann::json::parse(lines[1]);
  EXPECT_TRUE(j1["kl"].is_null());
  auto j2 = nlohmann::json::parse(lines[2]);
  EXPECT_EQ(j2["reward/mean"].get<double>(), -1.0 / 3);  // full double precision
  EXPECT_TRUE(j2["kl"].is_null());

  const MetricsHistory h = grpo::read_metrics(run + "/metrics.jsonl");
  EXPECT_EQ(h.steps, (std::vector<int64_t>{0, 1, 2}));
  ASSERT_EQ(h.series.at("reward/mean").size(), 3u);
  EXPECT_EQ(h.series.at("reward/mean")[2], std::make_pair(int64_t{2}, -1.0 / 3));
  EXPECT_EQ(h.series.at("time/generate").size(), 1u);
  ASSERT_EQ(h.series.at("kl").size(), 2u);
  EXPECT_TRUE(std::isnan(h.series.at("kl")[0].second));
  EXPECT_EQ(h.wall_time.size(), 3u);
  EXPECT_TRUE(h.bad_lines.empty());

  const auto files = event_files(run);
  ASSERT_EQ(files.size(), 1u);
  EXPECT_THAT(fs::path(files[0]).filename().string(), ::testing::StartsWith("events.out.tfevents."));
  const auto recs = read_tfrecords(files[0]);
  ASSERT_EQ(recs.size(), 4u);
  const Event v = decode_event(recs[0]);
  EXPECT_EQ(v.file_version, "brain.Event:2");
  EXPECT_TRUE(v.values.empty());
  EXPECT_GT(v.wall_time, 1.6e9);
  std::vector<Event> ev;
  for (size_t i = 1; i < recs.size(); ++i) ev.push_back(decode_event(recs[i]));
  EXPECT_EQ(ev[0].step, 0);
  EXPECT_EQ(ev[1].step, 1);
  EXPECT_EQ(ev[2].step, 2);
  EXPECT_DOUBLE_EQ(ev[0].wall_time, j0["time"].get<double>());
  using V = std::vector<std::pair<std::string, float>>;
  EXPECT_EQ(ev[0].values, (V{{"lr", 1e-6f}, {"reward/mean", 0.25f}}));
  ASSERT_EQ(ev[1].values.size(), 3u);
  EXPECT_EQ(ev[1].values[0].first, "kl");
  EXPECT_TRUE(std::isnan(ev[1].values[0].second));
  EXPECT_EQ(ev[2].values[1], (std::pair<std::string, float>{"reward/mean", static_cast<float>(-1.0 / 3)}));
  EXPECT_EQ(ev[2].values[2], (std::pair<std::string, float>{"time/generate", 12.5f}));
  EXPECT_TRUE(std::isinf(ev[2].values[0].second));
}

TEST(MetricsWriter, ProtocDecodesOurEvents) {
  int code = 0;
  run_capture("protoc --version 2>&1", &code);
  if (code != 0) GTEST_SKIP() << "protoc is not installed";
  TempDir tmp;
  MetricsWriter w(tmp / "run");
  w.log(7, {{"reward/mean", 0.5}, {"accuracy", 0.75}});
  w.log(-3, {{"x", -2}});
  const auto recs = read_tfrecords(w.event_path());
  ASSERT_EQ(recs.size(), 3u);
  std::vector<std::string> text;
  for (size_t i = 0; i < recs.size(); ++i) {
    const std::string bin = tmp / ("rec" + std::to_string(i));
    write_bytes(bin, recs[i]);
    text.push_back(run_capture("protoc --proto_path=" GRPO_TEST_DATA " --decode=grpo_test.tb.Event " GRPO_TEST_DATA
                               "/tensorboard_event.proto < " +
                                   bin + " 2>&1",
                               &code));
    ASSERT_EQ(code, 0) << text.back();
  }
  EXPECT_THAT(text[0], HasSubstr("file_version: \"brain.Event:2\""));
  EXPECT_THAT(text[0], HasSubstr("wall_time: "));
  EXPECT_THAT(text[1], HasSubstr("step: 7"));
  EXPECT_THAT(text[1], HasSubstr("value {\n    tag: \"accuracy\"\n    simple_value: 0.75\n  }"));
  EXPECT_THAT(text[1], HasSubstr("value {\n    tag: \"reward/mean\"\n    simple_value: 0.5\n  }"));
  EXPECT_THAT(text[2], HasSubstr("step: -3"));
  EXPECT_THAT(text[2], HasSubstr("simple_value: -2"));
}

TEST(MetricsWriter, ResumeAppendsAndLastLinePerStepWins) {
  TempDir tmp;
  const std::string run = tmp / "run";
  {
    MetricsWriter w(run);
    for (int s = 0; s < 3; ++s) w.log(s, {{"reward/mean", s * 1.0}});
  }
  {
    // A crash tore the last line; the next writer closes it and the reader skips it.
    std::FILE* f = std::fopen((run + "/metrics.jsonl").c_str(), "ab");
    std::fputs("{\"step\": 3, \"rew", f);
    std::fclose(f);
    MetricsWriter w(run);  // resumed from the checkpoint at step 1
    for (int s = 2; s < 5; ++s) w.log(s, {{"reward/mean", s * 10.0}});
    EXPECT_EQ(event_files(run).size(), 2u);  // one file per writer, distinct names
  }
  const MetricsHistory h = grpo::read_metrics(run + "/metrics.jsonl");
  EXPECT_EQ(h.steps, (std::vector<int64_t>{0, 1, 2, 3, 4}));
  const auto& r = h.series.at("reward/mean");
  ASSERT_EQ(r.size(), 5u);
  EXPECT_EQ(r[1].second, 1.0);
  EXPECT_EQ(r[2].second, 20.0);
  EXPECT_EQ(r[4].second, 40.0);
  ASSERT_EQ(h.bad_lines.size(), 1u);
  EXPECT_EQ(h.bad_lines[0], "line 4: not valid JSON");
}

// A step's training line and its evaluation line are one point of the report; a resumed run drops
// the lines after its checkpoint before logging the replayed steps again.
TEST(MetricsWriter, LinesOfAStepMergeAndARewindDropsLaterSteps) {
  TempDir tmp;
  const std::string run = tmp / "run";
  {
    MetricsWriter w(run);
    for (int s = 1; s <= 4; ++s) {
      w.log(s, {{"reward/mean", s * 1.0}, {"loss", -s * 1.0}});
      if (s % 2 == 0) w.log(s, {{"eval/accuracy", s / 10.0}, {"loss", 7}});
    }
  }
  MetricsHistory h = grpo::read_metrics(run + "/metrics.jsonl");
  EXPECT_EQ(h.steps, (std::vector<int64_t>{1, 2, 3, 4}));
  EXPECT_EQ(h.series.at("reward/mean").size(), 4u);  // the last step keeps its training metrics
  EXPECT_EQ(h.series.at("eval/accuracy"), (std::vector<std::pair<int64_t, double>>{{2, 0.2}, {4, 0.4}}));
  EXPECT_EQ(h.series.at("loss")[1].second, 7);  // the later line's value of the same key

  std::FILE* f = std::fopen((run + "/metrics.jsonl").c_str(), "ab");
  std::fputs("{\"step\": 5, \"rew", f);  // torn by a kill
  std::fclose(f);
  EXPECT_EQ(grpo::drop_metrics_after(run + "/metrics.jsonl", 2), 4);  // steps 3, 4 (x2) and the torn line
  EXPECT_EQ(lines_of(run + "/metrics.jsonl").size(), 3u);
  {
    MetricsWriter w(run);
    w.log(3, {{"reward/mean", 30}});
  }
  h = grpo::read_metrics(run + "/metrics.jsonl");
  EXPECT_EQ(h.steps, (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(h.series.at("reward/mean").back(), (std::pair<int64_t, double>{3, 30}));
  EXPECT_TRUE(h.bad_lines.empty());
  EXPECT_EQ(grpo::drop_metrics_after(run + "/metrics.jsonl", 3), 0);
  EXPECT_EQ(grpo::drop_metrics_after(tmp / "missing.jsonl", 0), 0);
  EXPECT_FALSE(fs::exists(tmp / "missing.jsonl"));
}

TEST(MetricsWriter, BadKeysAndFiles) {
  TempDir tmp;
  MetricsWriter w(tmp / "run");
  expect_input_error([&] { w.log(1, {{"step", 1}}); }, {"key 'step' is reserved"});
  expect_input_error([&] { w.log(1, {{"", 1}}); }, {"is empty"});
  expect_input_error([&] { grpo::read_metrics(tmp / "nope.jsonl"); }, {"nope.jsonl"});
  write_bytes(tmp / "bad.jsonl", "not json\n[1,2]\n{\"step\": \"x\"}\n");
  expect_input_error([&] { grpo::read_metrics(tmp / "bad.jsonl"); },
                     {"bad.jsonl", "no valid line", "line 1: not valid JSON"});
  write_bytes(tmp / "mixed.jsonl", "{\"step\": 1, \"a\": 2, \"phase\": \"warmup\"}\n\n[1]\n");
  const MetricsHistory h = grpo::read_metrics(tmp / "mixed.jsonl");
  EXPECT_EQ(h.series.size(), 1u);  // the string member is not a metric
  EXPECT_THAT(h.bad_lines, ::testing::ElementsAre("line 3: not a JSON object"));
  write_bytes(tmp / "empty.jsonl", "");
  EXPECT_TRUE(grpo::read_metrics(tmp / "empty.jsonl").steps.empty());
}
