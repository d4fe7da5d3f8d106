// `--http` on the real binary: a `grpo train` run on the tiny-zero model (random weights) serves
// /metrics that match its metrics.jsonl, the probes, the live report (loaded in headless Chromium:
// the charts render) and the recent samples, while hostile clients get their errors and the run
// goes on and exits on its own; `grpo reward-server` counts the verdicts it returns; `grpo
// rollout-server` is not ready until its model is loaded, then shows its pages and version.
#include <gtest/gtest.h>
#include <zlib.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "grpo_cli.h"
#include "http_client.h"
#include "subprocess.h"

using grpo::testing::Exposition;
using grpo::testing::http_get;
using grpo::testing::http_raw;
using grpo::testing::parse_exposition;
using grpo::testing::Subprocess;
using nlohmann::json;

namespace {

const std::string kSource = GRPO_SOURCE_DIR;

// Reads the child's lines until one has "live view at http://ADDR/"; returns ADDR.
std::string live_view_address(Subprocess& p, std::string* seen = nullptr) {
  for (;;) {
    const std::string line = p.read_line(120'000);
    if (seen) *seen += line + "\n";
    const auto at = line.find("live view at http://");
    if (at != std::string::npos) {
      const auto from = at + 20;
      return line.substr(from, line.find('/', from) - from);
    }
  }
}

// Polls `target` until `done(reply)` or timeout; returns the last reply.
template <typename Done>
grpo::testing::HttpReply poll(const std::string& address, const std::string& target, Done done,
                              int timeout_ms = 300'000) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    auto r = http_get(address, target);
    if (done(r) || std::chrono::steady_clock::now() > deadline) return r;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

std::string chromium() {
  for (const char* name : {"chromium-headless-shell", "chromium", "chromium-browser"}) {
    const std::string cmd = std::string("command -v ") + name + " >/dev/null 2>&1";
    if (std::system(cmd.c_str()) == 0) return name;
  }
  return "";
}

// stdout of a shell command.
std::string shell(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  ::pclose(p);
  return out;
}

std::string slurp(const std::string& path) {
  std::ostringstream s;
  s << std::ifstream(path, std::ios::binary).rdbuf();
  return s.str();
}

// How many different byte values the PNG's decompressed image data has: a blank page's rows are
// one colour (one or two values), a page with charts has many.
size_t png_distinct_bytes(const std::string& png) {
  std::string idat;
  for (size_t at = 8; at + 8 <= png.size();) {
    const uint32_t len =
        (uint8_t(png[at]) << 24) | (uint8_t(png[at + 1]) << 16) | (uint8_t(png[at + 2]) << 8) | uint8_t(png[at + 3]);
    if (png.compare(at + 4, 4, "IDAT") == 0) idat += png.substr(at + 8, len);
    at += 12 + len;
  }
  std::vector<unsigned char> raw(64 << 20);
  uLongf n = raw.size();
  if (idat.empty() ||
      uncompress(raw.data(), &n, reinterpret_cast<const Bytef*>(idat.data()), static_cast<uLong>(idat.size())) != Z_OK)
    return 0;
  std::set<unsigned char> seen(raw.begin(), raw.begin() + static_cast<long>(n));
  return seen.size();
}

class HttpCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    scratch_ = std::make_unique<grpo_test::ScratchDir>("grpo_http");
    made_ = grpo_test::run_grpo("init-model --config " + kSource + "/configs/tiny-zero/model.json --out " +
                                    path("model") + " --dtype fp32 --seed 1",
                                scratch_->path());
  }
  static void TearDownTestSuite() { scratch_.reset(); }
  void SetUp() override { ASSERT_EQ(made_.code, 0) << made_.err; }
  static std::string path(const std::string& name) { return scratch_->path() + "/" + name; }
  // `grpo train` on the tiny-zero config and the random model, with --http 0 and stderr merged.
  static std::unique_ptr<Subprocess> train(const std::string& out, int steps) {
    return std::make_unique<Subprocess>(
        std::vector<std::string>{"/bin/sh", "-c",
                                 "cd " + kSource + " && exec " + GRPO_BINARY +
                                     " train configs/tiny-zero.yaml --quiet --http 0 model.path=" + path("model") +
                                     " model.tokenizer=configs/tiny-zero/tokenizer.json run.out_dir=" + out +
                                     " train.steps=" + std::to_string(steps) +
                                     " train.prompts_per_step=2 rollout.group_size=4 train.eval_every=0"
                                     " train.checkpoint_every=1000 rollout.sampling.max_new_tokens=12"},
        "/dev/null", true);
  }

  static std::unique_ptr<grpo_test::ScratchDir> scratch_;
  static grpo_test::CliResult made_;
};
std::unique_ptr<grpo_test::ScratchDir> HttpCli::scratch_;
grpo_test::CliResult HttpCli::made_;

TEST_F(HttpCli, TrainServesMetricsMatchingItsLogProbesSamplesAndTheLiveReport) {
  if (!grpo_test::services_built()) GTEST_SKIP() << "built without services (GRPO_SERVICES=OFF)";
  const std::string out = path("run");
  auto train = HttpCli::train(out, 40);
  std::string log;
  const std::string a = live_view_address(*train, &log);
  EXPECT_EQ(a.rfind("127.0.0.1:", 0), 0u) << a;  // loopback when only a port is given
  EXPECT_EQ(http_get(a, "/healthz").status, 200);

  // /metrics at a step >= 2: a valid exposition whose values are metrics.jsonl's at that step.
  Exposition e;
  const auto m = poll(a, "/metrics", [&](const auto& r) {
    e = parse_exposition(r.body);
    return e.value("grpo_step") >= 2;
  });
  ASSERT_EQ(m.status, 200) << log;
  EXPECT_EQ(m.headers.at("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_TRUE(e.errors.empty()) << e.errors.front();
  const int64_t step = static_cast<int64_t>(e.value("grpo_step"));
  EXPECT_EQ(e.types.at("grpo_step"), "gauge");
  json line;
  std::ifstream jsonl(out + "/metrics.jsonl");
  for (std::string l; std::getline(jsonl, l);)
    if (json j = json::parse(l); j["step"] == step) line = j;
  ASSERT_FALSE(line.is_null()) << "no line of step " << step;
  int compared = 0;
  for (const auto& [key, value] : line.items()) {
    if (key == "step" || key == "time" || !value.is_number()) continue;
    std::string name = "grpo_" + key;
    for (char& c : name)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') c = '_';
    const double served = e.value(name);
    EXPECT_NEAR(served, value.get<double>(), 1e-9 * std::max(1.0, std::abs(value.get<double>()))) << key;
    ++compared;
  }
  for (const char* key : {"reward/mean", "accuracy", "response_length/mean", "time/sync", "time/generate"})
    EXPECT_TRUE(line.contains(key)) << key;
  EXPECT_GT(compared, 15);
  EXPECT_EQ(http_get(a, "/readyz").status, 200);

  // Hostile clients get their errors; the job goes on.
  EXPECT_EQ(http_raw(a, "garbage\r\n\r\n").status, 400);
  EXPECT_EQ(http_raw(a, "GET / HTTP/1.1\r\nX: " + std::string(1 << 20, 'x') + "\r\n\r\n").status, 400);
  EXPECT_EQ(http_get(a, "/nope").status, 404);
  grpo::testing::Connection slow(a);
  slow.send_all("GET /metrics HTTP/1.1\r\n");

  // /samples: the recent groups with their completions, rewards and reasons.
  const auto s = http_get(a, "/samples?format=json");
  ASSERT_EQ(s.status, 200);
  const json samples = json::parse(s.body);
  ASSERT_FALSE(samples["groups"].empty());
  const json& g = samples["groups"][0];
  EXPECT_FALSE(g["prompt"].get<std::string>().empty());
  ASSERT_EQ(g["completions"].size(), 4u);
  EXPECT_FALSE(g["completions"][0]["reason"].get<std::string>().empty());
  EXPECT_TRUE(g["completions"][0]["reward"].is_number());
  const auto html = http_get(a, "/samples");
  EXPECT_NE(html.body.find("class=\"completion\""), std::string::npos);

  // / : the report of the run so far, reloading itself.
  const auto page = http_get(a, "/");
  EXPECT_EQ(page.status, 200);
  EXPECT_NE(page.body.find("<meta http-equiv=\"refresh\""), std::string::npos);
  EXPECT_NE(page.body.find("<svg class=\"plot\""), std::string::npos);

  // The run ends on its own with the server (no hang), and says so.
  const int code = train->wait(300'000);
  const std::string rest = train->read_all();
  EXPECT_EQ(code, 0) << rest;
  EXPECT_NE(rest.find("train: 40 steps done"), std::string::npos) << rest;
}

TEST_F(HttpCli, LiveReportChartsRenderInHeadlessChromium) {
  if (!grpo_test::services_built()) GTEST_SKIP() << "built without services (GRPO_SERVICES=OFF)";
  const std::string browser = chromium();
  if (browser.empty()) GTEST_SKIP() << "no chromium-headless-shell or chromium in PATH (make deps installs it)";
  auto train = HttpCli::train(path("chromium-run"), 300);
  const std::string a = live_view_address(*train);
  poll(a, "/metrics", [&](const auto& r) { return parse_exposition(r.body).value("grpo_step") >= 3; });
  // The virtual-time budget stays below the page's 5 s reload; `timeout` bounds a browser that hangs.
  const std::string run = "timeout -k 5 120 " + browser +
                          " --headless --no-sandbox --disable-gpu --hide-scrollbars --virtual-time-budget=2000 ";
  const std::string dom = shell(run + "--dump-dom http://" + a + "/ 2>/dev/null");
  EXPECT_NE(dom.find("<svg class=\"plot\""), std::string::npos) << dom.substr(0, 2000);
  size_t points = 0;  // the points of the series, one circle each
  for (size_t at = dom.find("<circle cx="); at != std::string::npos; at = dom.find("<circle cx=", at + 1)) ++points;
  EXPECT_GE(points, 3u);
  EXPECT_NE(dom.find("<polyline class=\"ema\""), std::string::npos);  // a smoothed line through them
  const std::string png = path("page.png");
  shell(run + "--window-size=1200,1600 --screenshot=" + png + " http://" + a + "/ >/dev/null 2>&1");
  const std::string image = slurp(png);
  ASSERT_EQ(image.compare(0, 8, "\x89PNG\r\n\x1a\n"), 0) << png << " is not a PNG";
  EXPECT_GT(png_distinct_bytes(image), 16u);  // not a blank page
  train->signal(SIGTERM);
  EXPECT_NE(train->wait(60'000), -1) << "train did not exit on SIGTERM with the live view on";
}

}  // namespace

namespace {

// The gRPC address of a server whose output has "listening on ADDRESS" (after the live view's line).
std::string grpc_address(Subprocess& p) {
  for (;;) {
    const std::string line = p.read_line(120'000);
    const auto at = line.find("listening on ");
    if (at != std::string::npos) return line.substr(at + 13, line.find(' ', at + 13) - at - 13);
  }
}

TEST_F(HttpCli, RewardServerCountsVerdictsPerVerifierAndOutcome) {
  if (!grpo_test::services_built()) GTEST_SKIP() << "built without services (GRPO_SERVICES=OFF)";
  Subprocess server({GRPO_BINARY, "reward-server", "--config", kSource + "/configs/reward.yaml", "--http", "0",
                     "server.address=127.0.0.1:0"},
                    "/dev/null", true);
  const std::string a = live_view_address(server);
  const std::string grpc = grpc_address(server);
  EXPECT_EQ(http_get(a, "/readyz").status, 200);
  const std::string in = path("verify.jsonl");
  std::ofstream(in) << "{\"id\": \"a\", \"completion\": \"so \\\\boxed{4}\", \"reference\": \"4\"}\n"
                    << "{\"id\": \"b\", \"completion\": \"so \\\\boxed{5}\", \"reference\": \"4\"}\n"
                    << "{\"id\": \"c\", \"completion\": \"so \\\\boxed{4}\", \"reference\": \"4\"}\n";
  const auto v = grpo_test::run_grpo("verify --verifier math --server " + grpc, scratch_->path(), slurp(in));
  ASSERT_EQ(v.code, 0) << v.err;
  const Exposition e = parse_exposition(http_get(a, "/metrics").body);
  EXPECT_TRUE(e.errors.empty()) << e.errors.front();
  EXPECT_EQ(e.types.at("grpo_reward_server_verdicts_total"), "counter");
  EXPECT_EQ(
      e.value("grpo_reward_server_verdicts_total", {{"verifier", "math"}, {"pool", "default"}, {"outcome", "correct"}}),
      2);
  EXPECT_EQ(
      e.value("grpo_reward_server_verdicts_total", {{"verifier", "math"}, {"pool", "default"}, {"outcome", "wrong"}}),
      1);
  EXPECT_EQ(e.types.at("grpo_reward_server_verify_seconds"), "histogram");
  EXPECT_EQ(e.value("grpo_reward_server_verify_seconds_count", {{"verifier", "math"}}), 3);
  EXPECT_EQ(e.value("grpo_reward_server_served"), 3);
  EXPECT_EQ(e.value("grpo_reward_server_queued"), 0);
  EXPECT_EQ(e.value("grpo_reward_server_running"), 0);
  EXPECT_EQ(http_raw(a, std::string(20'000, '\0')).status, 400);  // binary garbage
  server.signal(SIGTERM);
  EXPECT_EQ(server.wait(30'000), 0) << server.read_all();
}

TEST_F(HttpCli, RolloutServerShowsItsPagesAndVersionOnceReady) {
  if (!grpo_test::services_built()) GTEST_SKIP() << "built without services (GRPO_SERVICES=OFF)";
  Subprocess server({GRPO_BINARY, "rollout-server", "--model", path("model"), "--tokenizer",
                     kSource + "/configs/tiny-zero/tokenizer.json", "--version", "7", "--address", "127.0.0.1:0",
                     "--threads", "1", "--http", "127.0.0.1:0"},
                    "/dev/null", true);
  const std::string a = live_view_address(server);
  const int early = http_get(a, "/readyz").status;  // the model may still be loading
  EXPECT_TRUE(early == 503 || early == 200) << early;
  grpc_address(server);
  EXPECT_EQ(http_get(a, "/readyz").status, 200);
  EXPECT_EQ(http_get(a, "/healthz").status, 200);
  const Exposition e = parse_exposition(http_get(a, "/metrics").body);
  EXPECT_TRUE(e.errors.empty()) << e.errors.front();
  EXPECT_EQ(e.value("grpo_rollout_server_weight_version"), 7);
  EXPECT_GT(e.value("grpo_rollout_server_pages_total"), 0);
  EXPECT_EQ(e.value("grpo_rollout_server_pages_used"), 0);
  EXPECT_EQ(e.value("grpo_rollout_server_sequences_running"), 0);
  EXPECT_EQ(e.value("grpo_rollout_server_tokens_per_s"), 0);
  const auto index = http_get(a, "/");
  EXPECT_NE(index.body.find("href=\"/metrics\""), std::string::npos);
  server.signal(SIGTERM);
  EXPECT_EQ(server.wait(30'000), 0) << server.read_all();
}

TEST_F(HttpCli, BadAddressesAreNamedBeforeAnythingStarts) {
  if (!grpo_test::services_built()) GTEST_SKIP() << "built without services (GRPO_SERVICES=OFF)";
  auto r = grpo_test::run_grpo("reward-server --http 70000", scratch_->path());
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("--http: expected PORT, IP:PORT or [IPv6]:PORT with PORT in [0, 65535], got '70000'"),
            std::string::npos)
      << r.err;
  r = grpo_test::run_grpo("train " + kSource + "/configs/tiny-zero.yaml http.address=somehost:80", scratch_->path());
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("http.address"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("'somehost' is not an IP address"), std::string::npos) << r.err;
}

}  // namespace

namespace {

// `grpo ARGS` on the tiny-zero config's pretraining, from the source directory, stderr merged.
std::unique_ptr<Subprocess> pretraining(const std::string& command, const std::string& dir) {
  return std::make_unique<Subprocess>(
      std::vector<std::string>{"/bin/sh", "-c",
                               "cd " + kSource + " && exec " + GRPO_BINARY + " " + command +
                                   " --config configs/tiny-zero.yaml --quiet --http 0 pretrain.steps=300"
                                   " pretrain.log_every=1 pretrain.seq_len=32 pretrain.batch_size=2 pretrain.out_dir=" +
                                   dir + "/model pretrain.log_dir=" + dir + "/logs"},
      "/dev/null", true);
}

// The live view of a pretraining run (`grpo pretrain`, or rank 0 of `grpo learner --nproc 2`):
// /metrics at a logged step equal metrics.jsonl's line of that step; the run ends on its own.
void check_pretraining_view(Subprocess& run, const std::string& dir) {
  const std::string a = live_view_address(run);
  EXPECT_EQ(poll(
                a, "/readyz", [](const auto& r) { return r.status == 200; }, 60'000)
                .status,
            200);
  Exposition e;
  poll(a, "/metrics", [&](const auto& r) {
    e = parse_exposition(r.body);
    return e.value("grpo_step") >= 2;
  });
  ASSERT_TRUE(e.errors.empty()) << e.errors.front();
  const double step = e.value("grpo_step");
  ASSERT_GE(step, 2);
  json line;
  std::ifstream jsonl(dir + "/logs/metrics.jsonl");
  for (std::string l; std::getline(jsonl, l);)
    if (json j = json::parse(l); j["step"] == step) line = j;
  ASSERT_FALSE(line.is_null());
  for (const char* key : {"loss", "lr", "grad_norm"})
    EXPECT_DOUBLE_EQ(e.value(std::string("grpo_") + key), line[key].get<double>()) << key;
  EXPECT_NE(http_get(a, "/").body.find("<svg class=\"plot\""), std::string::npos);
  const int code = run.wait(300'000);
  EXPECT_EQ(code, 0) << run.read_all();
}

TEST_F(HttpCli, PretrainServesItsLossAndEndsOnItsOwn) {
  auto run = pretraining("pretrain", path("pretrain"));
  check_pretraining_view(*run, path("pretrain"));
}

TEST_F(HttpCli, LearnerRankZeroServesTheLiveView) {
  auto run = pretraining("learner --nproc 2 --job pretrain", path("learner"));
  check_pretraining_view(*run, path("learner"));
}

}  // namespace
