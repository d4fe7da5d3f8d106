// CPU kernels beside LibTorch on the same products: kernels::linear_dot (the no-grad matrix product,
// batch-invariant by construction) against at::mm (MKL/oneDNN) for fp32, bf16 and FP8 weights, from
// one row (decode) to thousands (prefill, scoring), at the shapes of bench/configs/dsv3-small.json
// and DeepSeek-V3. The FP8 baseline is what a LibTorch program does without an FP8 CPU GEMM:
// dequantise the 128×128-block codes to bf16, then at::mm in bf16. Prints GFLOP/s of both sides and
// the ratio. Then the decode stream: one row against weights far larger than the caches (as a
// decode step reads every weight once from memory), in GB/s of weights read, beside the read
// bandwidth of at::sum over a buffer of the same size measured in the same run. Writes
// bench/results/kernels.json.
//
//   ./build/bench/bench_kernels [--threads N] [--repeats R] [--out FILE] [--quick] [--stream]
//
// --stream: the decode stream only.
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <nlohmann/json.hpp>

#include "bench/bench_util.h"
#include "kernels/linear_dot.h"
#include "model/fp8.h"
#include "model/runtime.h"

using namespace grpo;
using namespace grpo::bench;
using nlohmann::json;

int main(int argc, char** argv) {
  Flags flags;
  flags.out = "bench/results/kernels.json";
  bool stream_only = false;
  std::vector<char*> rest = {argv[0]};
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--stream")
      stream_only = true;
    else
      rest.push_back(argv[i]);
  }
  if (!parse_flags(static_cast<int>(rest.size()), rest.data(), true,
                   "bench_kernels [--threads N] [--repeats R] [--out FILE] [--quick] [--stream]", flags))
    return 2;
  const int threads = set_torch_threads(flags.threads);
  at::NoGradGuard no_grad;
  struct Shape {
    const char* what;
    int64_t k, n;
  };
  const std::vector<Shape> shapes = {{"small: expert gate/up", 512, 256},
                                     {"small: expert down", 256, 512},
                                     {"small: lm head", 512, 3000},
                                     {"V3: q_b_proj", 1536, 24576 / 4},
                                     {"V3: expert gate/up", 7168, 2048 / 4}};
  std::vector<int64_t> rows = flags.quick ? std::vector<int64_t>{1, 64} : std::vector<int64_t>{1, 4, 32, 256, 2048};
  if (stream_only) rows.clear();
  std::cout << "bench_kernels: linear_dot vs at::mm, " << threads << " threads, AVX2 kernel "
            << (kernels::linear_dot_uses_avx2() ? "on" : "off (scalar reference)") << ", load average "
            << load_average() << "\n\n";
  std::cout << std::left << std::setw(24) << "shape (K x N)" << std::right << std::setw(6) << "M" << std::setw(8)
            << "weights" << std::setw(14) << "at::mm GF/s" << std::setw(16) << "linear_dot GF/s" << std::setw(8)
            << "ratio\n";
  json out = json::array();
  for (const Shape& s : shapes)
    for (int64_t m : rows)
      for (const char* wt : {"fp32", "bf16", "fp8"}) {
        const bool bf16 = std::string(wt) == "bf16", fp8 = std::string(wt) == "fp8";
        at::manual_seed(1);
        const at::Tensor x = at::randn({m, s.k}), w32 = at::randn({s.n, s.k});
        const at::Tensor w = bf16 ? w32.to(at::kBFloat16).contiguous() : w32;
        // The baseline as LibTorch users run it: bf16 weights with bf16 activations in at::mm.
        const at::Tensor xb = bf16 ? x.to(at::kBFloat16) : x;
        at::Tensor y = at::empty({m, s.n});
        const double flops = 2.0 * m * s.k * s.n;
        const int reps = std::max(1, static_cast<int>(std::min<double>(flags.repeats * 20, 2e9 / flops)));
        const Fp8Blocks q = quantize_fp8_blocks(w32);
        at::Tensor scratch = at::empty({s.n, s.k}, at::kBFloat16);
        const at::Tensor xq = x.to(at::kBFloat16);
        const double t_mm = fp8 ? seconds(
                                      [&] {
                                        dequantize_fp8_blocks_into(q.q, q.scale, scratch);
                                        (void)at::mm(xq, scratch.t());
                                      },
                                      reps)
                                : seconds([&] { (void)at::mm(xb, w.t()); }, reps);
        const double t_dot = seconds(
            [&] {
              if (fp8)
                kernels::linear_dot_fp8(x.data_ptr<float>(), m, s.k, static_cast<const uint8_t*>(q.q.data_ptr()),
                                        q.scale.data_ptr<float>(), s.n, y.data_ptr<float>());
              else
                kernels::linear_dot(x.data_ptr<float>(), m, s.k, w.data_ptr(),
                                    bf16 ? kernels::WeightType::kBF16 : kernels::WeightType::kF32, s.n,
                                    y.data_ptr<float>());
            },
            reps);
        std::cout << std::left << std::setw(24) << (std::string(s.what)) << std::right << std::setw(6) << m
                  << std::setw(8) << wt << std::fixed << std::setprecision(1) << std::setw(14) << flops / t_mm / 1e9
                  << std::setw(16) << flops / t_dot / 1e9 << std::setprecision(2) << std::setw(7) << t_mm / t_dot
                  << "x\n";
        out.push_back({{"shape", s.what},
                       {"k", s.k},
                       {"n", s.n},
                       {"m", m},
                       {"weights", wt},
                       {"at_mm_s", t_mm},
                       {"linear_dot_s", t_dot},
                       {"linear_dot_over_mm_speed", t_mm / t_dot}});
      }
  // The decode stream: M = 1 through 48 matrices of 512 inputs × 1536 outputs (dsv3-small's
  // widths; 151 MB in fp32, 75 MB bf16, 38 MB FP8: beyond the caches), one after another.
  std::cout << "\ndecode stream (M = 1, 48 weights of 1536 x 512 in turn), GB/s of weights read:\n";
  json stream = json::array();
  {
    const int64_t count = 48, k = 512, n = 1536;
    at::manual_seed(2);
    const at::Tensor x = at::randn({1, k});
    at::Tensor y = at::empty({1, n});
    for (const char* wt : {"fp32", "bf16", "fp8"}) {
      const bool bf16 = std::string(wt) == "bf16", fp8 = std::string(wt) == "fp8";
      std::vector<at::Tensor> ws, scales;
      for (int64_t i = 0; i < count; ++i) {
        const at::Tensor w32 = at::randn({n, k});
        if (fp8) {
          const Fp8Blocks q = quantize_fp8_blocks(w32);
          ws.push_back(q.q);
          scales.push_back(q.scale);
        } else {
          ws.push_back(bf16 ? w32.to(at::kBFloat16).contiguous() : w32);
        }
      }
      const double bytes = static_cast<double>(count) * n * k * ws[0].element_size();
      const at::Tensor buffer = at::ones({static_cast<int64_t>(bytes / 4)});  // the same bytes, read by at::sum
      const int reps = std::max(3, flags.repeats);
      const double t_sum = seconds([&] { (void)buffer.sum(); }, reps);
      const double t_dot = seconds(
          [&] {
            for (int64_t i = 0; i < count; ++i) {
              if (fp8)
                kernels::linear_dot_fp8(x.data_ptr<float>(), 1, k, static_cast<const uint8_t*>(ws[i].data_ptr()),
                                        scales[i].data_ptr<float>(), n, y.data_ptr<float>());
              else
                kernels::linear_dot(x.data_ptr<float>(), 1, k, ws[i].data_ptr(),
                                    bf16 ? kernels::WeightType::kBF16 : kernels::WeightType::kF32, n,
                                    y.data_ptr<float>());
            }
          },
          reps);
      std::cout << "  " << std::left << std::setw(6) << wt << std::right << std::fixed << std::setprecision(1)
                << "linear_dot " << bytes / t_dot / 1e9 << " GB/s, at::sum over the same bytes " << bytes / t_sum / 1e9
                << " GB/s (" << std::setprecision(2) << t_sum / t_dot << " of it)\n";
      stream.push_back({{"weights", wt}, {"bytes", bytes}, {"linear_dot_s", t_dot}, {"sum_s", t_sum}});
    }
  }
  json results = {
      {"threads", threads}, {"avx2", kernels::linear_dot_uses_avx2()}, {"rows", out}, {"decode_stream", stream}};
  std::filesystem::create_directories(std::filesystem::path(flags.out).parent_path());
  std::ofstream(flags.out) << results.dump(2) << "\n";
  std::cout << "\nwrote " << flags.out << "\n";
  return 0;
}
