// Network addresses from configs and flags. gRPC reads a port modulo 65536 (":70000" would
// listen on 4464), so every address is checked here first.
#pragma once
#include <string>

namespace grpo {

// Checks the port of a gRPC address "HOST:PORT" (also "[::1]:PORT", "dns:///HOST:PORT"): when the
// text after the last ':' is a number it must lie in [min_port, 65535] (0: listen on a free
// port; clients need >= 1). Other forms ("unix:PATH", a port name) are left to gRPC. Throws
// InputError "WHAT: port P of 'ADDRESS' is outside [MIN, 65535]". Pure function.
void check_port(const std::string& address, const std::string& what, int min_port);

}  // namespace grpo
