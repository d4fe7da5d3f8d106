#include "model/device.h"

#include <cstdio>
#include <iostream>
#include <vector>

#include "common/error.h"
#include "kernels/cuda_info.h"

namespace grpo {
namespace {

std::string gib(int64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f GiB", static_cast<double>(bytes) / (1024.0 * 1024 * 1024));
  return buf;
}

}  // namespace

DeviceChoice resolve_device(const std::string& name, const std::string& what) {
  std::string why;
  const std::vector<kernels::CudaDevice> visible =
      name == "cpu" ? std::vector<kernels::CudaDevice>{} : kernels::cuda_devices(&why);
  if (name == "cpu") return {at::kCPU, ""};
  if (name == "auto") {
    if (visible.empty()) return {at::kCPU, "no CUDA device visible: " + why};
    return {at::Device(at::kCUDA, 0), "CUDA device 0 is " + visible[0].name};
  }
  int64_t index = -1;
  if (name == "cuda") {
    index = 0;
  } else if (name.rfind("cuda:", 0) == 0 && name.size() > 5 && name.size() <= 8 &&
             name.find_first_not_of("0123456789", 5) == std::string::npos) {
    index = std::stoll(name.substr(5));
  } else {
    throw InputError(what + ": expected cpu, cuda, cuda:N or auto, got \"" + name + "\"");
  }
  if (visible.empty()) throw InputError(what + ": " + name + ", but no CUDA device is visible (" + why + ")");
  if (index >= static_cast<int64_t>(visible.size()))
    throw InputError(what + ": " + name + ", but only " + std::to_string(visible.size()) + " CUDA device" +
                     (visible.size() == 1 ? " is" : "s are") +
                     " visible (cuda:0 .. cuda:" + std::to_string(visible.size() - 1) + ")");
  return {at::Device(at::kCUDA, static_cast<at::DeviceIndex>(index)), ""};
}

std::string device_name(at::Device device) {
  return device.is_cpu() ? "cpu" : device.type() == at::kCUDA ? "cuda:" + std::to_string(device.index()) : device.str();
}

DeviceMemory cuda_memory_of(at::Device device, const std::string& what) {
  DeviceMemory m;
  std::string why;
  if (!kernels::cuda_memory(device.has_index() ? device.index() : 0, &m.free_bytes, &m.total_bytes, &why))
    throw InputError(what + ": cannot read the free memory of " + device_name(device) + ": " + why);
  return m;
}

at::Device expert_parallel_device(at::Device device, bool from_auto, const std::string& what) {
  if (device.is_cpu()) return device;
  if (!from_auto)
    throw InputError(what + ": " + device_name(device) +
                     ", but expert parallelism runs on the CPU (Gloo) only for now: the NCCL process group is not "
                     "built yet");
  std::cerr << what << " auto = cpu (expert parallelism runs on Gloo, the CPU, for now)" << std::endl;
  return at::kCPU;
}

void check_device_memory(at::Device device, int64_t bytes, const std::string& what) {
  if (!device.is_cuda()) return;
  const DeviceMemory m = cuda_memory_of(device, what);
  if (bytes > m.free_bytes)
    throw InputError(what + ": needs " + gib(bytes) + " on " + device_name(device) + ", which has " +
                     gib(m.free_bytes) + " free of " + gib(m.total_bytes));
}

}  // namespace grpo
