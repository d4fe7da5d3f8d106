#include "common/host_port.h"

#include <string_view>

#include "common/error.h"

namespace grpo {

void check_port(const std::string& address, const std::string& what, int min_port) {
  if (address.rfind("unix:", 0) == 0) return;
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos) return;
  const std::string_view port = std::string_view(address).substr(colon + 1);
  if (port.empty() || port.find_first_not_of("0123456789") != std::string_view::npos) return;
  const int value = port.size() > 5 ? 65536 : std::stoi(std::string(port));
  if (value < min_port || value > 65535)
    throw InputError(what + ": port " + std::string(port) + " of '" + address + "' is outside [" +
                     std::to_string(min_port) + ", 65535]");
}

}  // namespace grpo
