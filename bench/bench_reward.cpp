// End-to-end RewardService throughput and latency for the format, math and code verifiers: Score
// over real gRPC on loopback at 1, 4 and 16 concurrent clients, beside the same verifier called in-process by as many
// threads (the baseline: what the service adds is the difference). Also one client sending ScoreBatch(64) and one
// ScoreStream. Prints a table and writes bench/results/reward.json.
//
//   ./build/bench/bench_reward [--seconds 2] [--workers N] [--out bench/results/reward.json]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "reward/client.h"
#include "reward/registry.h"
#include "reward/scoring.h"
#include "reward/server.h"
#include "reward/wire.h"

using namespace grpo::reward;
using Clock = std::chrono::steady_clock;

namespace {

struct Row {
  std::string verifier, mode;
  int clients;
  double per_second;      // verdicts per second
  double p50_us, p99_us;  // per call (a batch call: the whole batch)
};

double percentile(std::vector<double>& v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(std::llround(q * static_cast<double>(v.size() - 1))))];
}

// Runs `call` on `threads` threads for `seconds`; each call yields `per_call` verdicts.
Row measure(const std::string& verifier, const std::string& mode, int threads, double seconds, int per_call,
            const std::function<std::function<void()>(int thread)>& make_call) {
  std::vector<std::vector<double>> lat(threads);
  std::atomic<bool> go{false};
  std::vector<std::thread> pool;
  const auto warm = std::chrono::milliseconds(200);
  Clock::time_point start, stop;
  pool.reserve(threads);
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      auto call = make_call(t);
      while (!go) std::this_thread::yield();
      const auto end_warm = Clock::now() + warm;
      while (Clock::now() < end_warm) call();
      const auto end = end_warm + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
      for (auto now = Clock::now(); now < end;) {
        call();
        auto after = Clock::now();
        lat[t].push_back(std::chrono::duration<double, std::micro>(after - now).count());
        now = after;
      }
    });
  go = true;
  for (auto& th : pool) th.join();
  std::vector<double> all;
  for (auto& l : lat) all.insert(all.end(), l.begin(), l.end());
  Row r{verifier, mode, threads, 0, 0, 0};
  r.per_second = static_cast<double>(all.size()) * per_call / seconds;
  r.p50_us = percentile(all, 0.50);
  r.p99_us = percentile(all, 0.99);
  return r;
}

std::string reasoning(int words) {
  std::string s;
  const char* vocab[] = {"we", "compute", "the", "sum", "of", "both", "halves", "so", "that", "x", "equals"};
  for (int i = 0; i < words; ++i) s += std::string(vocab[i % 11]) + " ";
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 2.0;
  int workers = static_cast<int>(std::max(2u, std::thread::hardware_concurrency()));
  std::string out_path = "bench/results/reward.json";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--seconds"))
      seconds = std::atof(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--workers"))
      workers = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--out"))
      out_path = argv[i + 1];
    else {
      std::cerr << "usage: bench_reward [--seconds S] [--workers N] [--out PATH]\n";
      return 2;
    }
  }

  auto registry = std::make_shared<VerifierRegistry>();
  register_builtin(*registry);
  ServerOptions options;
  options.address = "127.0.0.1:0";
  options.workers = workers;
  options.max_queue = 4096;
  RewardServer server(registry, options);
  server.start();

  // A typical R1 completion: ~300 words of reasoning, then the answer.
  struct Case {
    std::string verifier, completion;
    nlohmann::json reference;
  };
  const std::vector<Case> cases = {
      {"format", "<think>" + reasoning(300) + "</think> <answer>42</answer>", ""},
      {"math", "<think>" + reasoning(300) + "</think> The answer is \\boxed{\\frac{1}{2}}", "0.5"},
      {"code",
       "<think>" + reasoning(300) + "</think>\n```python\ndef add(a, b):\n    return a + b\n```",
       {{"language", "python"}, {"tests", {"assert add(1, 2) == 3", "assert add(-1, 1) == 0"}}}},
  };

  std::vector<Row> rows;
  auto print = [](const Row& r) {
    std::printf("%-8s %-18s %7d %12.0f %10.1f %10.1f\n", r.verifier.c_str(), r.mode.c_str(), r.clients, r.per_second,
                r.p50_us, r.p99_us);
    std::fflush(stdout);
  };
  std::printf("reward service on %s, %d workers, %u hardware threads, %.1f s per row\n", server.address().c_str(),
              workers, std::thread::hardware_concurrency(), seconds);
  std::printf("%-8s %-18s %7s %12s %10s %10s\n", "verifier", "mode", "clients", "verdicts/s", "p50 us", "p99 us");
  for (const auto& c : cases) {
    VerifyRequest local;
    local.completion = c.completion;
    local.reference = c.reference;
    auto verifier = registry->get(c.verifier);
    v1::ScoreRequest wire = request_to_proto(local, c.verifier);
    wire.clear_limits();
    for (int clients : {1, 4, 16}) {
      rows.push_back(measure(c.verifier, "in-process", clients, seconds, 1,
                             [&](int) { return [&] { score(*verifier, local); }; }));
      print(rows.back());
      rows.push_back(measure(c.verifier, "grpc Score", clients, seconds, 1, [&](int) {
        auto client = std::make_shared<RewardClient>(server.address());
        return [client, &wire] { client->score(wire); };
      }));
      print(rows.back());
    }
    const int batch = 64;
    std::vector<v1::ScoreRequest> many(batch, wire);
    rows.push_back(measure(c.verifier, "grpc ScoreBatch64", 1, seconds, batch, [&](int) {
      auto client = std::make_shared<RewardClient>(server.address());
      return [client, &many] { client->score_batch(many); };
    }));
    print(rows.back());
    rows.push_back(measure(c.verifier, "grpc ScoreStream64", 1, seconds, batch, [&](int) {
      auto client = std::make_shared<RewardClient>(server.address());
      return [client, &many] { client->score_stream(many, [](v1::ScoreResponse&&) {}); };
    }));
    print(rows.back());
  }
  server.shutdown();

  nlohmann::json j;
  j["bench"] = "reward";
  j["server"] = {{"workers", workers}, {"hardware_threads", std::thread::hardware_concurrency()}};
  j["seconds_per_row"] = seconds;
  j["note"] = "verdicts/s over all clients; p50/p99 per call (batch and stream rows: per 64 requests)";
  for (const auto& r : rows)
    j["rows"].push_back({{"verifier", r.verifier},
                         {"mode", r.mode},
                         {"clients", r.clients},
                         {"verdicts_per_s", r.per_second},
                         {"p50_us", r.p50_us},
                         {"p99_us", r.p99_us}});
  std::filesystem::path out(out_path);
  if (out.has_parent_path()) std::filesystem::create_directories(out.parent_path());
  std::filesystem::path tmp = out;
  tmp += ".tmp";
  {
    std::ofstream f(tmp);
    f << j.dump(2) << "\n";
    if (!f) {
      std::cerr << "cannot write " << tmp << "\n";
      return 1;
    }
  }
  std::filesystem::rename(tmp, out);
  std::printf("wrote %s\n", out_path.c_str());
  return 0;
}
