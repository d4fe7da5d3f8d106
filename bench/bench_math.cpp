// Math verifier throughput and latency on the Math-Verify test cases, beside a baseline in the
// same run: the baseline extracts the last \boxed{} (else the last $...$, else the whole text)
// and compares strings after a verl/Qwen-style strip (spaces, \left/\right, \!, \dfrac, "$",
// trailing "."), i.e. the cheapest grader people use. Prints a table and writes
// bench/results/math.json.
//
//   ./build/bench/bench_math [--seconds S] [--threads N] [--data FILE] [--out FILE]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "reward/math/math_verifier.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Case {
  std::string gold, pred;
  bool expected;
};

std::vector<Case> load(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::vector<Case> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    auto r = nlohmann::json::parse(line);
    if (r["kind"] != "verify") continue;
    out.push_back({r["gold"].get<std::string>(), r["pred"].get<std::string>(), r["expected"].get<bool>()});
  }
  return out;
}

// --- baseline: last box + string normalisation ---------------------------------------------

std::string last_boxed_or_math(const std::string& s) {
  size_t b = s.rfind("\\boxed");
  if (b != std::string::npos) {
    size_t open = s.find('{', b);
    if (open != std::string::npos) {
      int depth = 0;
      for (size_t i = open; i < s.size(); ++i) {
        if (s[i] == '{') ++depth;
        if (s[i] == '}' && --depth == 0) return s.substr(open + 1, i - open - 1);
      }
    }
  }
  size_t close = s.rfind('$');
  if (close != std::string::npos && close > 0) {
    size_t open = s.rfind('$', close - 1);
    if (open != std::string::npos) return s.substr(open + 1, close - open - 1);
  }
  return s;
}

std::string strip(std::string s) {
  auto erase_all = [&](const std::string& from, const std::string& to) {
    for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size()))
      s.replace(p, from.size(), to);
  };
  erase_all("\\left", "");
  erase_all("\\right", "");
  erase_all("\\!", "");
  erase_all("\\dfrac", "\\frac");
  erase_all("\\tfrac", "\\frac");
  erase_all("$", "");
  std::string out;
  for (char c : s)
    if (!std::isspace(static_cast<unsigned char>(c))) out.push_back(c);
  while (!out.empty() && out.back() == '.') out.pop_back();
  return out;
}

bool baseline_verify(const Case& c) { return strip(last_boxed_or_math(c.pred)) == strip(last_boxed_or_math(c.gold)); }

// --- measurement ---------------------------------------------------------------------------

struct Result {
  std::string name;
  int threads = 1;
  double per_second = 0, p50_us = 0, p99_us = 0;
  int agree = 0, total = 0;
};

template <typename F>
Result measure(const std::string& name, const std::vector<Case>& cases, int threads, double seconds, F verify) {
  Result r;
  r.name = name;
  r.threads = threads;
  r.total = static_cast<int>(cases.size());
  for (const auto& c : cases) r.agree += verify(c) == c.expected;
  std::vector<std::vector<double>> lat(static_cast<size_t>(threads));
  std::atomic<bool> stop{false};
  std::atomic<long> done{0};
  auto worker = [&](int t) {
    size_t i = static_cast<size_t>(t) * 37 % cases.size();
    auto& mine = lat[static_cast<size_t>(t)];
    while (!stop.load(std::memory_order_relaxed)) {
      auto t0 = Clock::now();
      volatile bool v = verify(cases[i]);
      (void)v;
      mine.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
      i = (i + 1) % cases.size();
      done.fetch_add(1, std::memory_order_relaxed);
    }
  };
  auto start = Clock::now();
  std::vector<std::thread> pool;
  pool.reserve(threads);
  for (int t = 0; t < threads; ++t) pool.emplace_back(worker, t);
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& th : pool) th.join();
  double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  std::vector<double> all;
  for (auto& v : lat) all.insert(all.end(), v.begin(), v.end());
  std::sort(all.begin(), all.end());
  r.per_second = static_cast<double>(done.load()) / elapsed;
  r.p50_us = all.empty() ? 0 : all[all.size() / 2];
  r.p99_us = all.empty() ? 0 : all[std::min(all.size() - 1, all.size() * 99 / 100)];
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  std::string data = std::string(GRPO_SOURCE_DIR) + "/tests/data/math/mathverify_cases.jsonl";
  std::string out = std::string(GRPO_SOURCE_DIR) + "/bench/results/math.json";
  double seconds = 2.0;
  int threads = static_cast<int>(std::max(2u, std::thread::hardware_concurrency()));
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--seconds")
      seconds = std::stod(argv[i + 1]);
    else if (a == "--threads")
      threads = std::stoi(argv[i + 1]);
    else if (a == "--data")
      data = argv[i + 1];
    else if (a == "--out")
      out = argv[i + 1];
    else {
      std::cerr << "unknown flag " << a << "\n";
      return 2;
    }
  }
  std::vector<Case> cases = load(data);
  auto verifier = grpo::reward::make_math_verifier(nullptr);
  auto ours = [&](const Case& c) {
    grpo::reward::VerifyRequest req;
    req.completion = c.pred;
    req.reference = c.gold;
    return verifier->verify(req).correct;
  };

  std::vector<Result> results;
  for (int t : {1, threads}) {
    results.push_back(measure("baseline: last box + string strip", cases, t, seconds, baseline_verify));
    results.push_back(measure("grpo math verifier", cases, t, seconds, ours));
  }

  std::printf("math verifier on %zu Math-Verify cases (%.1f s per row, hardware threads: %u)\n", cases.size(), seconds,
              std::thread::hardware_concurrency());
  std::printf("%-36s %7s %14s %10s %10s %14s\n", "verifier", "threads", "verif/s", "p50 us", "p99 us", "agrees w/ MV");
  for (const auto& r : results)
    std::printf("%-36s %7d %14.0f %10.1f %10.1f %9d/%d\n", r.name.c_str(), r.threads, r.per_second, r.p50_us, r.p99_us,
                r.agree, r.total);

  nlohmann::json j;
  j["benchmark"] = "math_verifier";
  j["cases"] = cases.size();
  j["data"] = "tests/data/math/mathverify_cases.jsonl (Math-Verify @5d148cf test suite)";
  j["seconds_per_row"] = seconds;
  j["hardware_threads"] = std::thread::hardware_concurrency();
  for (const auto& r : results)
    j["rows"].push_back({{"verifier", r.name},
                         {"threads", r.threads},
                         {"verifications_per_s", r.per_second},
                         {"p50_us", r.p50_us},
                         {"p99_us", r.p99_us},
                         {"agree_with_math_verify", r.agree},
                         {"total", r.total}});
  std::filesystem::create_directories(std::filesystem::path(out).parent_path());
  std::string tmp = out + ".tmp";
  {
    std::ofstream f(tmp);
    f << j.dump(2) << "\n";
    f.flush();
    if (!f) {
      std::cerr << "cannot write " << tmp << "\n";
      return 1;
    }
  }
  std::filesystem::rename(tmp, out);
  std::printf("wrote %s\n", out.c_str());
  return 0;
}
