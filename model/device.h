// Where a command computes: `--device` on every command that computes, `run.device` in configs.
//   cpu      the CPU
//   cuda     CUDA device 0; cuda:N device N
//   auto     cuda:0 when this build has the CUDA parts and a device is visible, else cpu
// The model's parameters, its caches and the activations live on that device; what crosses the
// process boundary (token ids, log-probs, checkpoints) is on the CPU. Pure functions; thread-safe.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <string>

namespace grpo {

struct DeviceChoice {
  at::Device device = at::kCPU;
  std::string reason;  // for `auto`: why this device (e.g. "no CUDA device visible: built without CUDA")
};

// `name` as above. InputError naming `what` (e.g. "--device", "run.device") for any other name,
// for cuda when no CUDA device is visible (and why: built without CUDA, no device, a driver
// error), and for cuda:N beyond the devices visible (how many there are).
DeviceChoice resolve_device(const std::string& name, const std::string& what = "--device");

// "cpu", "cuda:0".
std::string device_name(at::Device device);

// Free and total bytes of a CUDA device (cuda without an index: device 0); InputError naming `what`
// and the device when the driver cannot say.
struct DeviceMemory {
  int64_t free_bytes = 0, total_bytes = 0;
};
DeviceMemory cuda_memory_of(at::Device device, const std::string& what);

// The device of an expert-parallel job, which runs on Gloo (the CPU) for now: the CPU when
// `device` came from `auto` (said on stderr as "WHAT auto = cpu ..."); InputError naming `what`
// for an explicit GPU.
at::Device expert_parallel_device(at::Device device, bool from_auto, const std::string& what);

// Stops before `bytes` are put on `device` when they would not fit: InputError naming `what` (the
// checkpoint), the device, the memory needed and the memory free (GiB). The CPU is not checked
// here (the operating system's limits apply, common/memory_limit.h).
void check_device_memory(at::Device device, int64_t bytes, const std::string& what);

}  // namespace grpo
