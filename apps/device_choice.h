// `--device` in the commands that compute: the option (one wording everywhere) and the device it
// resolves to (model/device.h); when `auto` picks a GPU, a line on stderr says so.
#pragma once
#include <iostream>
#include <string>

#include "common/cli.h"
#include "model/device.h"

namespace grpo {

inline Option device_option() {
  return {"device", "DEV", "cpu, cuda, cuda:N, or auto (cuda:0 when a CUDA device is visible, else cpu)", false,
          "auto"};
}

// The value of `--device`, resolved ("COMMAND: --device auto = cuda:0 (...)" when auto picks a GPU).
inline at::Device device_flag(const Args& args, const std::string& command) {
  const std::string given = args.get("device");
  const DeviceChoice d = resolve_device(given, "--device");
  if (given == "auto" && !d.device.is_cpu())
    std::cerr << command << ": --device auto = " << device_name(d.device) << " (" << d.reason << ")" << std::endl;
  return d.device;
}

}  // namespace grpo
