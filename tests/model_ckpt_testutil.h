// Helpers shared by the safetensors / FP8 / checkpoint tests (and, through tests/file_testutil.h, a
// scratch directory and raw file I/O).
#pragma once
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "tests/file_testutil.h"

namespace grpo::ckpt_test {

// A safetensors file from a header text, written verbatim with its 8-byte length, then `data`.
inline void write_raw_safetensors(const std::string& path, const std::string& header, const std::string& data) {
  uint64_t n = header.size();
  write_bytes(path, std::string(reinterpret_cast<const char*>(&n), 8) + header + data);
}

// Largest |x - x_hat| e4m3 block scaling allows for an element x of a block with scale s:
// y = x / s lies in [-448, 448]; a normal e4m3 (|y| >= 2^-6) has 3 mantissa bits, so rounding moves
// it by at most half an ulp, |y| * 2^-4; below 2^-6 the subnormal step is 2^-9, so at most 2^-10.
// Scaling back multiplies by s; float32 rounding of x / s and q * s adds a few 2^-24 relative.
inline double fp8_element_bound(double x, double s) {
  const double y = std::fabs(x) / s;
  return s * std::max(y * std::ldexp(1.0, -4), std::ldexp(1.0, -10)) * (1 + 1e-6) + std::fabs(x) * std::ldexp(1.0, -21);
}

// at::equal for tensors of any dtype: LibTorch has no equality kernel for float8, so float8
// tensors compare bit patterns (which also tells NaN codes and -0 apart).
inline bool same_tensor(const at::Tensor& a, const at::Tensor& b) {
  auto bits = [](const at::Tensor& t) {
    return c10::isFloat8Type(t.scalar_type()) ? t.contiguous().view(at::kByte) : t;
  };
  return a.scalar_type() == b.scalar_type() && at::equal(bits(a), bits(b));
}

}  // namespace grpo::ckpt_test
