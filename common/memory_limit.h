// Sizes from configs checked against the machine before anything is allocated: a vocab_size of
// 2^40 or an engine of 10^12 pages is an error naming the key, the size and the limit, not a
// std::bad_alloc or an allocator's backtrace.
#pragma once
#include <cstdint>
#include <string>

namespace grpo {

// This machine's physical memory in bytes (sysconf); 0 when it cannot be read. Thread-safe.
int64_t physical_memory_bytes();

// "" when `bytes` fit in physical_memory_bytes() (or it is unknown), else "needs 256.0 TiB, more
// than the 125.7 GiB of memory of this machine" for the caller to put after the key it names.
// Thread-safe.
std::string memory_shortfall(double bytes);

}  // namespace grpo
