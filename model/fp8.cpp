#include "model/fp8.h"

#include <ATen/Parallel.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "common/error.h"
#include "model/shape_text.h"

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

// Branch-free so that loops over it vectorise; exactness is pinned by tests against a float64
// nearest-code search.
inline uint8_t encode_e4m3(float x) {
  const uint32_t b = float_bits(x);
  const uint32_t sign = (b >> 24) & 0x80;
  const uint32_t a = b & 0x7fffffffu;
  // Normal (|x| >= 2^-6): rebias the exponent (127 -> 7) and round the 23-bit mantissa to 3 bits,
  // ties to even, by adding 0x7FFFF plus the kept lsb; a carry rolls into the exponent, which is
  // the correctly rounded result. Anything from 448 up (inf included) saturates to 0x7E.
  uint32_t normal = ((a + 0x7FFFFu + ((a >> 20) & 1)) >> 20) - (120u << 3);
  normal = normal > 0x7Eu ? 0x7Eu : normal;
  // Subnormal (|x| < 2^-6, step 2^-9): |x| * 512 < 8 is exact, and adding 2^23 rounds it to an
  // integer (ties to even) in the float unit. 8 comes out as 0x08, the smallest normal.
  const uint32_t sub = float_bits(bits_float(a) * 512.0f + 8388608.0f) - 0x4B000000u;
  // Selections by mask, not ?: — GCC will not if-convert float math under -ftrapping-math.
  const uint32_t subnormal = 0u - static_cast<uint32_t>(a < 0x3c800000u);
  const uint32_t nan = 0u - static_cast<uint32_t>(a > 0x7f800000u);
  const uint32_t code = sign | (sub & subnormal) | (normal & ~subnormal);
  return static_cast<uint8_t>((code & ~nan) | (0x7Fu & nan));
}

// A 1-sign, E-exponent (bias 2^(E-1) - 1), M-mantissa minifloat to float, exactly and branch-free
// (loops over it vectorise): significand * 2^(exponent - bias - M), where subnormals have no
// implicit 1 and exponent 1. e4m3fn (kIeeeSpecials false) has only S.1111.111 = NaN; e5m2 has
// IEEE inf / NaN at exponent all ones.
template <int E, int M, bool kIeeeSpecials>
inline float decode_minifloat(uint32_t code) {
  constexpr uint32_t kBias = (1u << (E - 1)) - 1, kExpMax = (1u << E) - 1;
  const uint32_t mag = code & 0x7Fu, e = mag >> M, m = mag & ((1u << M) - 1);
  const uint32_t normal = 0u - static_cast<uint32_t>(e != 0);
  const uint32_t significand = m | ((1u << M) & normal);
  const uint32_t exponent = e | (1u & ~normal);
  const float pow2 = bits_float((exponent + 127 - kBias - M) << 23);
  uint32_t bits = float_bits(static_cast<float>(static_cast<int32_t>(significand)) * pow2);
  const uint32_t special = 0u - static_cast<uint32_t>(kIeeeSpecials ? e == kExpMax : mag == 0x7Fu);
  const uint32_t quiet = kIeeeSpecials ? (0u - static_cast<uint32_t>(m != 0)) & 0x400000u : 0x400000u;
  bits = (bits & ~special) | ((0x7f800000u | quiet) & special);
  return bits_float(bits | ((code & 0x80u) << 24));
}
constexpr auto decode_e4m3 = decode_minifloat<4, 3, false>;
constexpr auto decode_e5m2 = decode_minifloat<5, 2, true>;

// Calls f(decode) with the decoder for the codes' float8 type, so loops get it inlined.
template <typename F>
void with_decoder(at::ScalarType codes, const char* what, F f) {
  if (codes == at::kFloat8_e4m3fn) return f([](uint32_t c) { return decode_e4m3(c); });
  if (codes == at::kFloat8_e5m2) return f([](uint32_t c) { return decode_e5m2(c); });
  throw std::invalid_argument(std::string(what) + ": codes must be float8 (e4m3fn or e5m2), got " +
                              c10::toString(codes));
}

// The raw code bytes of a float8 tensor.
const uint8_t* code_bytes(const at::Tensor& q) { return static_cast<const uint8_t*>(q.data_ptr()); }

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Shared by weight blocks (br = bc = 128) and activation tiles (br = 1).
Fp8Blocks quantize_blocks(const at::Tensor& x, int64_t br, int64_t bc, const char* what) {
  if (br <= 0 || bc <= 0) throw std::invalid_argument(std::string(what) + ": block sizes must be positive");
  if (x.dim() != 2 || !at::isFloatingType(x.scalar_type()))
    throw std::invalid_argument(std::string(what) + ": expects a 2-D floating tensor, got " +
                                c10::toString(x.scalar_type()) + " " + shape_str(x.sizes()));
  const at::Tensor w = x.to(at::kFloat).contiguous();  // [R, C]
  const int64_t R = w.size(0), C = w.size(1), nr = ceil_div(R, br), nc = ceil_div(C, bc);
  at::Tensor q = at::empty({R, C}, at::kFloat8_e4m3fn);
  at::Tensor s = at::empty({nr, nc}, at::kFloat);
  const float* wp = w.data_ptr<float>();
  uint8_t* qp = static_cast<uint8_t*>(q.data_ptr());
  float* sp = s.data_ptr<float>();
  std::atomic<bool> non_finite{false};
  at::parallel_for(0, nr, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t rb = b0; rb < b1; ++rb) {
      const int64_t r0 = rb * br, r1 = std::min(R, r0 + br);
      float* srow = sp + rb * nc;
      // |w| maxima as bit patterns: for non-negative floats integer order is float order, NaN and
      // inf sort above every finite value, and the integer max vectorises.
      std::vector<uint32_t> amax_bits(nc, 0);
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t cb = 0; cb < nc; ++cb) {
          uint32_t m = amax_bits[cb];
          for (int64_t c = cb * bc, c1 = std::min(C, c + bc); c < c1; ++c) {
            const uint32_t a = float_bits(wp[r * C + c]) & 0x7fffffffu;
            m = a > m ? a : m;
          }
          amax_bits[cb] = m;
        }
      for (int64_t cb = 0; cb < nc; ++cb) {
        if (amax_bits[cb] >= 0x7f800000u) {  // inf or NaN
          non_finite = true;
          return;
        }
        const float amax = bits_float(amax_bits[cb]);
        float scale = amax / kFp8E4M3Max;
        if (amax == 0.0f)
          scale = 1.0f;
        else if (scale == 0.0f)
          scale = std::numeric_limits<float>::denorm_min();
        srow[cb] = scale;
      }
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t cb = 0; cb < nc; ++cb) {
          const float scale = srow[cb];
          for (int64_t c = cb * bc, c1 = std::min(C, c + bc); c < c1; ++c)
            qp[r * C + c] = encode_e4m3(wp[r * C + c] / scale);
        }
    }
  });
  if (non_finite) throw InputError(std::string(what) + ": input holds inf or NaN, which FP8 blocks cannot scale");
  return {q, s};
}

at::Tensor dequantize_blocks(const at::Tensor& q, const at::Tensor& scale, int64_t br, int64_t bc, const char* what) {
  if (br <= 0 || bc <= 0) throw std::invalid_argument(std::string(what) + ": block sizes must be positive");
  if (q.dim() != 2)
    throw std::invalid_argument(std::string(what) + ": codes must be a 2-D float8 tensor, got " +
                                c10::toString(q.scalar_type()) + " " + shape_str(q.sizes()));
  const int64_t R = q.size(0), C = q.size(1), nr = ceil_div(R, br), nc = ceil_div(C, bc);
  if (scale.dim() != 2 || scale.size(0) != nr || scale.size(1) != nc)
    throw InputError(std::string(what) + ": scale has shape " + shape_str(scale.sizes()) + " but codes " +
                     shape_str(q.sizes()) + " in " + std::to_string(br) + "x" + std::to_string(bc) + " blocks need [" +
                     std::to_string(nr) + ", " + std::to_string(nc) + "]");
  const at::Tensor qc = q.contiguous();
  const at::Tensor sc = scale.to(at::kFloat).contiguous();
  at::Tensor out = at::empty({R, C}, at::kFloat);
  const uint8_t* qp = code_bytes(qc);
  const float* sp = sc.data_ptr<float>();
  float* op = out.data_ptr<float>();
  with_decoder(q.scalar_type(), what, [&](auto decode) {
    at::parallel_for(0, R, 16, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const float* srow = sp + (r / br) * nc;
        for (int64_t cb = 0; cb < nc; ++cb) {
          const float scale = srow[cb];
          for (int64_t c = cb * bc, c1 = std::min(C, c + bc); c < c1; ++c)
            op[r * C + c] = decode(qp[r * C + c]) * scale;
        }
      }
    });
  });
  return out;
}

}  // namespace

uint8_t fp8_e4m3_encode(float x) { return encode_e4m3(x); }

float fp8_e4m3_decode(uint8_t code) { return decode_e4m3(code); }

float fp8_e5m2_decode(uint8_t code) { return decode_e5m2(code); }

at::Tensor fp8_e4m3_encode(const at::Tensor& x) {
  const at::Tensor xf = x.to(at::kFloat).contiguous();
  at::Tensor q = at::empty(xf.sizes(), at::kFloat8_e4m3fn);
  const float* xp = xf.data_ptr<float>();
  uint8_t* qp = static_cast<uint8_t*>(q.data_ptr());
  at::parallel_for(0, xf.numel(), 1 << 16, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) qp[i] = encode_e4m3(xp[i]);
  });
  return q;
}

at::Tensor fp8_decode(const at::Tensor& codes) {
  const at::Tensor qc = codes.contiguous();
  at::Tensor out = at::empty(qc.sizes(), at::kFloat);
  const uint8_t* qp = code_bytes(qc);
  float* op = out.data_ptr<float>();
  with_decoder(codes.scalar_type(), "fp8_decode", [&](auto decode) {
    at::parallel_for(0, qc.numel(), 1 << 16, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) op[i] = decode(qp[i]);
    });
  });
  return out;
}

Fp8Blocks quantize_fp8_blocks(const at::Tensor& w, int64_t block) {
  return quantize_blocks(w, block, block, "quantize_fp8_blocks");
}

at::Tensor dequantize_fp8_blocks(const at::Tensor& q, const at::Tensor& scale_inv, int64_t block) {
  return dequantize_blocks(q, scale_inv, block, block, "dequantize_fp8_blocks");
}

namespace {

template <typename T>
void dequantize_into(const uint8_t* qp, const float* sp, T* op, int64_t R, int64_t C, int64_t block) {
  const int64_t nr = ceil_div(R, block), nc = ceil_div(C, block);
  at::parallel_for(0, nr * nc, 1, [&](int64_t b0, int64_t b1) {
    std::array<T, 256> table;
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t rb = b / nc, cb = b % nc;
      const float s = sp[rb * nc + cb];
      for (uint32_t c = 0; c < 256; ++c) table[c] = static_cast<T>(decode_e4m3(c) * s);
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
  if (q.dim() != 2 || q.scalar_type() != at::kFloat8_e4m3fn || !q.is_contiguous())
    throw std::invalid_argument(
        "dequantize_fp8_blocks_into: codes must be a contiguous 2-D float8_e4m3fn tensor, got " +
        std::string(c10::toString(q.scalar_type())) + " " + shape_str(q.sizes()));
  const int64_t R = q.size(0), C = q.size(1);
  if (scale_inv.dim() != 2 || scale_inv.size(0) != ceil_div(R, block) || scale_inv.size(1) != ceil_div(C, block) ||
      scale_inv.scalar_type() != at::kFloat || !scale_inv.is_contiguous())
    throw InputError("dequantize_fp8_blocks_into: scale has shape " + shape_str(scale_inv.sizes()) + " but codes " +
                     shape_str(q.sizes()) + " need a contiguous float32 [" + std::to_string(ceil_div(R, block)) + ", " +
                     std::to_string(ceil_div(C, block)) + "]");
  if (out.sizes() != q.sizes() || !out.is_contiguous())
    throw std::invalid_argument("dequantize_fp8_blocks_into: out must be contiguous " + shape_str(q.sizes()) +
                                ", got " + shape_str(out.sizes()));
  const uint8_t* qp = code_bytes(q);
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
  return dequantize_blocks(q, scale, 1, tile, "dequantize_fp8_act_tiles");
}

}  // namespace grpo
