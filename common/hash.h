// Small, stable, platform-independent hashes: the seeds and orders derived from them must be the
// same on every machine and in every release, since checkpoints and datasets depend on them.
// Pure functions; thread-safe.
#pragma once
#include <cstdint>
#include <string_view>

namespace grpo {

// SplitMix64 (Steele, Lea & Flood 2014): the finaliser of x + golden gamma. Mixes a seed or a
// combination of seeds into a well-spread 64-bit value.
constexpr uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// The next value of a SplitMix64 stream whose state is `state` (advances it).
inline uint64_t splitmix64_next(uint64_t& state) {
  const uint64_t out = splitmix64(state);
  state += 0x9E3779B97F4A7C15ull;
  return out;
}

constexpr uint64_t kFnv1aOffsetBasis = 0xCBF29CE484222325ull;

// FNV-1a, 64-bit. `basis` other than the standard one only where a stored or tested value was
// made with it.
constexpr uint64_t fnv1a(std::string_view s, uint64_t basis = kFnv1aOffsetBasis) {
  uint64_t h = basis;
  for (char c : s) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001B3ull;
  return h;
}

}  // namespace grpo
