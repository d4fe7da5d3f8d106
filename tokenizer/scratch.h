// Per-thread scratch vectors of the encoder are reused across calls. One that grew past
// kMaxKept elements for a huge input is freed afterwards, so a thread does not keep the memory.
#pragma once
#include <cstddef>

namespace grpo {

constexpr size_t kMaxKept = size_t{1} << 20;

template <class Vector>
void trim_scratch(Vector& v) {
  if (v.capacity() > kMaxKept) Vector().swap(v);
}

}  // namespace grpo
