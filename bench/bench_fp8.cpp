// FP8 block (de)quantisation on CPU, the work a checkpoint load/save does per weight matrix.
// Ours (model/fp8.cpp: one pass, table decode) beside a plain ATen formulation of the same math
// (pad + view + amax, gather through the decode table, expanded scales). Prints a table and writes
// bench/results/bench_fp8.json. Usage: bench_fp8 [rows cols reps]
#include <ATen/Parallel.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "model/fp8.h"

namespace {

template <typename F>
double best_seconds(int reps, F f) {
  double best = 1e30;
  for (int i = 0; i < reps; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    f();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

// Scales expanded to the full matrix: [nr, nc] -> [R, C].
at::Tensor expand_scales(const at::Tensor& s, int64_t R, int64_t C) {
  return s.repeat_interleave(128, 0).repeat_interleave(128, 1).slice(0, 0, R).slice(1, 0, C);
}

at::Tensor aten_block_scales(const at::Tensor& w) {
  const int64_t R = w.size(0), C = w.size(1), nr = (R + 127) / 128, nc = (C + 127) / 128;
  at::Tensor p = at::constant_pad_nd(w.abs(), {0, nc * 128 - C, 0, nr * 128 - R});
  at::Tensor amax = p.view({nr, 128, nc, 128}).amax({1, 3});
  return at::where(amax == 0, at::ones_like(amax), amax / 448.0);
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t R = argc > 1 ? std::atoll(argv[1]) : 4096, C = argc > 2 ? std::atoll(argv[2]) : 7168;
  const int reps = argc > 3 ? std::atoi(argv[3]) : 5;
  at::manual_seed(0);
  const at::Tensor w = at::randn({R, C});
  const grpo::Fp8Blocks b = grpo::quantize_fp8_blocks(w);
  at::Tensor lut = grpo::fp8_decode(at::arange(256, at::kInt).to(at::kByte).view(at::kFloat8_e4m3fn));

  const double q_ours = best_seconds(reps, [&] { grpo::quantize_fp8_blocks(w); });
  // Baseline: ATen scales and division; codes by the same scalar encoder (ATen 1.13 has no float8).
  const double q_aten = best_seconds(reps, [&] {
    at::Tensor s = aten_block_scales(w);
    grpo::fp8_e4m3_encode(w / expand_scales(s, R, C));
  });
  const double d_ours = best_seconds(reps, [&] { grpo::dequantize_fp8_blocks(b.q, b.scale); });
  const double d_aten = best_seconds(reps, [&] {
    lut.index_select(0, b.q.flatten().to(at::kLong)).view({R, C}) * expand_scales(b.scale, R, C);
  });
  // Both formulations must agree, or the timing means nothing.
  const at::Tensor ref = lut.index_select(0, b.q.flatten().to(at::kLong)).view({R, C}) * expand_scales(b.scale, R, C);
  const bool same =
      at::equal(ref, grpo::dequantize_fp8_blocks(b.q, b.scale)) && at::equal(aten_block_scales(w), b.scale);

  const double gelem = R * C / 1e9;
  std::printf("fp8 block (de)quantisation, [%ld, %ld] float32, %d threads, best of %d\n", (long)R, (long)C,
              at::get_num_threads(), reps);
  std::printf("%-12s %12s %12s %10s\n", "op", "ATen (ms)", "ours (ms)", "speedup");
  std::printf("%-12s %12.2f %12.2f %9.2fx\n", "quantize", q_aten * 1e3, q_ours * 1e3, q_aten / q_ours);
  std::printf("%-12s %12.2f %12.2f %9.2fx\n", "dequantize", d_aten * 1e3, d_ours * 1e3, d_aten / d_ours);
  std::printf("ours: quantize %.2f Gelem/s, dequantize %.2f Gelem/s; results identical: %s\n", gelem / q_ours,
              gelem / d_ours, same ? "yes" : "NO");

  const nlohmann::json out = {{"bench", "fp8"},
                              {"rows", R},
                              {"cols", C},
                              {"threads", at::get_num_threads()},
                              {"reps", reps},
                              {"quantize_ms", {{"aten", q_aten * 1e3}, {"ours", q_ours * 1e3}}},
                              {"dequantize_ms", {{"aten", d_aten * 1e3}, {"ours", d_ours * 1e3}}},
                              {"identical", same}};
  const std::filesystem::path dir = std::filesystem::path(GRPO_SOURCE_DIR) / "bench" / "results";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "bench_fp8.json") << out.dump(2) << "\n";
  return same ? 0 : 1;
}
