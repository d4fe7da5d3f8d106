// Run metrics throughput: MetricsWriter::log (JSON line + TensorBoard event, each one write(2))
// beside writing the same bytes pre-encoded (the I/O floor), CRC-32C (our table code beside the
// SSE4.2 crc32 instruction where the CPU has it), and rendering the HTML report for a long run.
// Prints a table and writes bench/results/bench_metrics.json. Usage: bench_metrics [steps keys]
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "common/clock.h"
#include "common/crc32c.h"
#include "metrics/metrics.h"
#include "metrics/report.h"

namespace fs = std::filesystem;

using grpo::Clock;
using grpo::seconds_since;

namespace {

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) uint32_t crc32c_hw(const unsigned char* p, size_t n) {
  uint64_t c = 0xFFFFFFFFu;
  for (; n >= 8; n -= 8, p += 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    c = __builtin_ia32_crc32di(c, w);
  }
  for (; n > 0; --n, ++p) c = __builtin_ia32_crc32qi(static_cast<uint32_t>(c), *p);
  return ~static_cast<uint32_t>(c);
}
bool have_hw_crc() { return __builtin_cpu_supports("sse4.2"); }
#else
uint32_t crc32c_hw(const unsigned char*, size_t) { return 0; }
bool have_hw_crc() { return false; }
#endif

}  // namespace

int main(int argc, char** argv) {
  const int steps = argc > 1 ? std::atoi(argv[1]) : 5000;
  const int keys = argc > 2 ? std::atoi(argv[2]) : 25;
  const fs::path root = fs::temp_directory_path() / ("bench_metrics_" + std::to_string(::getpid()));
  fs::create_directories(root);
  std::mt19937 rng(1);
  std::vector<std::map<std::string, double>> rows(steps);
  for (int s = 0; s < steps; ++s)
    for (int k = 0; k < keys; ++k)
      rows[s]["group" + std::to_string(k % 8) + "/metric_" + std::to_string(k)] = rng() / 1e9;
  nlohmann::json out = {{"bench", "metrics"}, {"steps", steps}, {"keys_per_step", keys}};

  // log(): encode + two writes per step.
  auto t0 = Clock::now();
  {
    grpo::MetricsWriter w((root / "run").string());
    for (int s = 0; s < steps; ++s) w.log(s, rows[s]);
  }
  const double ours = seconds_since(t0);
  // Floor: the same bytes, encoded beforehand, one write each.
  std::vector<std::string> jl, ev;
  const std::string jsonl = (root / "run/metrics.jsonl").string();
  {
    std::ifstream in(jsonl);
    for (std::string l; std::getline(in, l);) jl.push_back(l + "\n");
  }
  for (int s = 0; s < steps; ++s) ev.push_back(grpo::tfrecord_frame(grpo::encode_scalars_event(1.7e9, s, rows[s])));
  t0 = Clock::now();
  {
    const int a = ::open((root / "floor.jsonl").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    const int b = ::open((root / "floor.events").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    for (int s = 0; s < steps; ++s) {
      if (::write(a, jl[s].data(), jl[s].size()) < 0 || ::write(b, ev[s].data(), ev[s].size()) < 0) return 1;
    }
    ::close(a);
    ::close(b);
  }
  const double floor = seconds_since(t0);
  std::printf("metrics: %d steps x %d scalars\n", steps, keys);
  std::printf("%-34s %14s %14s\n", "", "steps/s", "scalars/s");
  std::printf("%-34s %14.0f %14.0f\n", "MetricsWriter::log (ours)", steps / ours, steps * keys / ours);
  std::printf("%-34s %14.0f %14.0f\n", "pre-encoded writes (I/O floor)", steps / floor, steps * keys / floor);
  out["log_steps_per_s"] = {{"ours", steps / ours}, {"io_floor", steps / floor}};

  // CRC-32C.
  std::vector<unsigned char> buf(64 << 20);
  for (auto& b : buf) b = static_cast<unsigned char>(rng());
  t0 = Clock::now();
  const uint32_t c_ours = grpo::crc32c(buf.data(), buf.size());
  const double crc_ours = buf.size() / 1e6 / seconds_since(t0);
  std::printf("%-34s %14s\n", "CRC-32C", "MB/s");
  std::printf("%-34s %14.0f\n", "ours (table, slicing-by-8)", crc_ours);
  out["crc32c_mb_per_s"] = {{"ours", crc_ours}};
  if (have_hw_crc()) {
    t0 = Clock::now();
    const uint32_t c_hw = crc32c_hw(buf.data(), buf.size());
    const double crc_hw = buf.size() / 1e6 / seconds_since(t0);
    std::printf("%-34s %14.0f   (same CRC: %s)\n", "SSE4.2 crc32 instruction", crc_hw, c_hw == c_ours ? "yes" : "NO");
    out["crc32c_mb_per_s"]["sse42"] = crc_hw;
  }

  // Report for the whole run.
  t0 = Clock::now();
  const std::string path = grpo::write_report((root / "run").string());
  const double rep = seconds_since(t0);
  std::printf("report: %d steps x %d keys -> %.1f MB HTML in %.2f s\n", steps, keys, fs::file_size(path) / 1e6, rep);
  out["report_seconds"] = rep;
  out["report_mb"] = fs::file_size(path) / 1e6;

  fs::remove_all(root);
  const fs::path dir = fs::path(GRPO_SOURCE_DIR) / "bench" / "results";
  fs::create_directories(dir);
  std::ofstream(dir / "bench_metrics.json") << out.dump(2) << "\n";
  return 0;
}
