#include "model/fp8.h"

#include <ATen/Parallel.h>

#include <array>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "common/error.h"

namespace grpo {
namespace {

uint32_t float_bits(float x) {
  uint32_t b;
  std::memcpy(&b, &x, 4);
  return b;
}
float bits_float(uint32_t b) {
  float x;
  std::memcpy(&x, &b, 4);
  return x;
}

// 256-entry decode tables, built once.
const std::array<float, 256>& decode_table(DType fmt) {
  static const auto make = [](float (*decode)(uint8_t)) {
    std::array<float, 256> t{};
    for (int c = 0; c < 256; ++c) t[c] = decode(static_cast<uint8_t>(c));
    return t;
  };
  static const std::array<float, 256> e4m3 = make(fp8_e4m3_decode);
  static const std::array<float, 256> e5m2 = make(fp8_e5m2_decode);
  if (fmt == DType::F8_E4M3) return e4m3;
  if (fmt == DType::F8_E5M2) return e5m2;
  throw std::invalid_argument(std::string("fp8_decode: ") + dtype_name(fmt) + " is not an FP8 format");
}

std::string shape_str(at::IntArrayRef s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Shared by weight blocks (br = bc = 128) and activation tiles (br = 1).
Fp8Blocks quantize_blocks(const at::Tensor& x, int64_t br, int64_t bc, const char* what) {
  if (br <= 0 || bc <= 0) throw std::invalid_argument(std::string(what) + ": block sizes must be positive");
  if (x.dim() != 2 || !at::isFloatingType(x.scalar_type()))
    throw std::invalid_argument(std::string(what) + ": expects a 2-D floating tensor, got " +
                                c10::toString(x.scalar_type()) + " " + shape_str(x.sizes()));
  const at::Tensor w = x.to(at::kFloat).contiguous();  // [R, C]
  const int64_t R = w.size(0), C = w.size(1), nr = ceil_div(R, br), nc = ceil_div(C, bc);
  at::Tensor q = at::empty({R, C}, at::kByte);
  at::Tensor s = at::empty({nr, nc}, at::kFloat);
  const float* wp = w.data_ptr<float>();
  uint8_t* qp = q.data_ptr<uint8_t>();
  float* sp = s.data_ptr<float>();
  std::atomic<bool> non_finite{false};
  at::parallel_for(0, nr, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t rb = b0; rb < b1; ++rb) {
      const int64_t r0 = rb * br, r1 = std::min(R, r0 + br);
      float* srow = sp + rb * nc;
      std::fill(srow, srow + nc, 0.0f);
      bool bad = false;
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t c = 0; c < C; ++c) {
          const float a = std::fabs(wp[r * C + c]);
          if (!(a <= std::numeric_limits<float>::max())) bad = true;  // inf or NaN
          float& m = srow[c / bc];
          m = a > m ? a : m;
        }
      if (bad) {
        non_finite = true;
        return;
      }
      for (int64_t cb = 0; cb < nc; ++cb) {
        const float amax = srow[cb];
        float scale = amax / kFp8E4M3Max;
        if (amax == 0.0f) scale = 1.0f;
        else if (scale == 0.0f) scale = std::numeric_limits<float>::denorm_min();
        srow[cb] = scale;
      }
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t c = 0; c < C; ++c) qp[r * C + c] = fp8_e4m3_encode(wp[r * C + c] / srow[c / bc]);
    }
  });
  if (non_finite) throw InputError(std::string(what) + ": input holds inf or NaN, which FP8 blocks cannot scale");
  return {q, s};
}

at::Tensor dequantize_blocks(const at::Tensor& q, const at::Tensor& scale, int64_t br, int64_t bc, DType fmt,
                             const char* what) {
  if (br <= 0 || bc <= 0) throw std::invalid_argument(std::string(what) + ": block sizes must be positive");
  if (q.dim() != 2 || q.scalar_type() != at::kByte)
    throw std::invalid_argument(std::string(what) + ": codes must be a 2-D kByte tensor, got " +
                                c10::toString(q.scalar_type()) + " " + shape_str(q.sizes()));
  const int64_t R = q.size(0), C = q.size(1), nr = ceil_div(R, br), nc = ceil_div(C, bc);
  if (scale.dim() != 2 || scale.size(0) != nr || scale.size(1) != nc)
    throw InputError(std::string(what) + ": scale has shape " + shape_str(scale.sizes()) + " but codes " +
                     shape_str(q.sizes()) + " in " + std::to_string(br) + "x" + std::to_string(bc) +
                     " blocks need [" + std::to_string(nr) + ", " + std::to_string(nc) + "]");
  const auto& lut = decode_table(fmt);
  const at::Tensor qc = q.contiguous();
  const at::Tensor sc = scale.to(at::kFloat).contiguous();
  at::Tensor out = at::empty({R, C}, at::kFloat);
  const uint8_t* qp = qc.data_ptr<uint8_t>();
  const float* sp = sc.data_ptr<float>();
  float* op = out.data_ptr<float>();
  at::parallel_for(0, R, 16, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* srow = sp + (r / br) * nc;
      for (int64_t c = 0; c < C; ++c) op[r * C + c] = lut[qp[r * C + c]] * srow[c / bc];
    }
  });
  return out;
}

}  // namespace

uint8_t fp8_e4m3_encode(float x) {
  const uint32_t b = float_bits(x);
  const uint8_t sign = static_cast<uint8_t>((b >> 24) & 0x80);
  const uint32_t a = b & 0x7fffffffu;
  if (a > 0x7f800000u) return 0x7F;                              // NaN
  if (a >= float_bits(kFp8E4M3Max)) return sign | 0x7E;            // saturate (inf included)
  if (a < 0x3c800000u) {                                           // |x| < 2^-6: subnormal step 2^-9
    const float m = std::nearbyint(bits_float(a) * 512.0f);        // exact scaling; ties to even
    return sign | static_cast<uint8_t>(m);                         // m == 8 is the smallest normal, 0x08
  }
  // Normal: rebias the exponent (127 -> 7) and round the 23-bit mantissa to 3 bits, ties to even.
  // A mantissa carry rolls into the exponent, which is the correctly rounded result.
  uint32_t q = (((a >> 23) - 120) << 3) | ((a >> 20) & 7);
  const uint32_t rest = a & 0xfffffu, half = 0x80000u;
  if (rest > half || (rest == half && (q & 1))) ++q;
  return sign | static_cast<uint8_t>(q > 0x7E ? 0x7E : q);
}

float fp8_e4m3_decode(uint8_t code) {
  const float sign = (code & 0x80) ? -1.0f : 1.0f;
  const int e = (code >> 3) & 0xF, m = code & 7;
  if (e == 15 && m == 7) return std::numeric_limits<float>::quiet_NaN();
  if (e == 0) return sign * std::ldexp(static_cast<float>(m), -9);
  return sign * std::ldexp(static_cast<float>(8 + m), e - 10);
}

float fp8_e5m2_decode(uint8_t code) {
  const float sign = (code & 0x80) ? -1.0f : 1.0f;
  const int e = (code >> 2) & 0x1F, m = code & 3;
  if (e == 31) return m == 0 ? sign * std::numeric_limits<float>::infinity() : std::numeric_limits<float>::quiet_NaN();
  if (e == 0) return sign * std::ldexp(static_cast<float>(m), -16);
  return sign * std::ldexp(static_cast<float>(4 + m), e - 17);
}

at::Tensor fp8_e4m3_encode(const at::Tensor& x) {
  const at::Tensor xf = x.to(at::kFloat).contiguous();
  at::Tensor q = at::empty(xf.sizes(), at::kByte);
  const float* xp = xf.data_ptr<float>();
  uint8_t* qp = q.data_ptr<uint8_t>();
  at::parallel_for(0, xf.numel(), 1 << 16, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) qp[i] = fp8_e4m3_encode(xp[i]);
  });
  return q;
}

at::Tensor fp8_decode(const at::Tensor& codes, DType fmt) {
  if (codes.scalar_type() != at::kByte)
    throw std::invalid_argument(std::string("fp8_decode: codes must be kByte, got ") + c10::toString(codes.scalar_type()));
  const auto& lut = decode_table(fmt);
  const at::Tensor qc = codes.contiguous();
  at::Tensor out = at::empty(qc.sizes(), at::kFloat);
  const uint8_t* qp = qc.data_ptr<uint8_t>();
  float* op = out.data_ptr<float>();
  at::parallel_for(0, qc.numel(), 1 << 16, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) op[i] = lut[qp[i]];
  });
  return out;
}

Fp8Blocks quantize_fp8_blocks(const at::Tensor& w, int64_t block) {
  return quantize_blocks(w, block, block, "quantize_fp8_blocks");
}

at::Tensor dequantize_fp8_blocks(const at::Tensor& q, const at::Tensor& scale_inv, int64_t block, DType fmt) {
  return dequantize_blocks(q, scale_inv, block, block, fmt, "dequantize_fp8_blocks");
}

namespace {

template <typename T>
void dequantize_into(const uint8_t* qp, const float* sp, T* op, int64_t R, int64_t C, int64_t block) {
  const auto& lut = decode_table(DType::F8_E4M3);
  const int64_t nr = ceil_div(R, block), nc = ceil_div(C, block);
  at::parallel_for(0, nr * nc, 1, [&](int64_t b0, int64_t b1) {
    std::array<T, 256> table;
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t rb = b / nc, cb = b % nc;
      const float s = sp[rb * nc + cb];
      for (int c = 0; c < 256; ++c) table[c] = static_cast<T>(lut[c] * s);
      const int64_t r1 = std::min(R, (rb + 1) * block), c0 = cb * block, c1 = std::min(C, c0 + block);
      for (int64_t r = rb * block; r < r1; ++r) {
        const uint8_t* qrow = qp + r * C;
        T* orow = op + r * C;
        for (int64_t c = c0; c < c1; ++c) orow[c] = table[qrow[c]];
      }
    }
  });
}

}  // namespace

void dequantize_fp8_blocks_into(const at::Tensor& q, const at::Tensor& scale_inv, at::Tensor& out, int64_t block) {
  if (block <= 0) throw std::invalid_argument("dequantize_fp8_blocks_into: block size must be positive");
  if (q.dim() != 2 || q.scalar_type() != at::kByte || !q.is_contiguous())
    throw std::invalid_argument("dequantize_fp8_blocks_into: codes must be a contiguous 2-D kByte tensor, got " +
                                std::string(c10::toString(q.scalar_type())) + " " + shape_str(q.sizes()));
  const int64_t R = q.size(0), C = q.size(1);
  if (scale_inv.dim() != 2 || scale_inv.size(0) != ceil_div(R, block) || scale_inv.size(1) != ceil_div(C, block) ||
      scale_inv.scalar_type() != at::kFloat || !scale_inv.is_contiguous())
    throw InputError("dequantize_fp8_blocks_into: scale has shape " + shape_str(scale_inv.sizes()) + " but codes " +
                     shape_str(q.sizes()) + " need a contiguous float32 [" + std::to_string(ceil_div(R, block)) +
                     ", " + std::to_string(ceil_div(C, block)) + "]");
  if (out.sizes() != q.sizes() || !out.is_contiguous())
    throw std::invalid_argument("dequantize_fp8_blocks_into: out must be contiguous " + shape_str(q.sizes()) +
                                ", got " + shape_str(out.sizes()));
  const uint8_t* qp = q.data_ptr<uint8_t>();
  const float* sp = scale_inv.data_ptr<float>();
  switch (out.scalar_type()) {
    case at::kFloat: return dequantize_into(qp, sp, out.data_ptr<float>(), R, C, block);
    case at::kBFloat16: return dequantize_into(qp, sp, out.data_ptr<at::BFloat16>(), R, C, block);
    case at::kDouble: return dequantize_into(qp, sp, out.data_ptr<double>(), R, C, block);
    default:
      throw std::invalid_argument(std::string("dequantize_fp8_blocks_into: out dtype ") +
                                  c10::toString(out.scalar_type()) + " is not float32, bfloat16 or float64");
  }
}

Fp8Blocks quantize_fp8_act_tiles(const at::Tensor& x, int64_t tile) {
  return quantize_blocks(x, 1, tile, "quantize_fp8_act_tiles");
}

at::Tensor dequantize_fp8_act_tiles(const at::Tensor& q, const at::Tensor& scale, int64_t tile) {
  return dequantize_blocks(q, scale, 1, tile, DType::F8_E4M3, "dequantize_fp8_act_tiles");
}

}  // namespace grpo
