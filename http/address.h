// Where a process serves its live view (http/monitor.h): off unless asked for, loopback unless an
// address is given. One flag on every long-running command and one config key:
//
//   --http 8080             -> 127.0.0.1:8080      (port 0: a free port)
//   --http 0.0.0.0:8080     -> every interface (only when asked for explicitly)
//   --http [::1]:8080       -> IPv6
//   http: {address: 8080}   -> the config key http.address, same forms; the flag overrides it
#pragma once
#include <string>

#include "common/cli.h"
#include "common/config.h"

namespace grpo {

// The --http option, for the option lists of the commands that serve the live view.
Option http_option();

// "PORT", "IP:PORT" or "[IPv6]:PORT" as the "HOST:PORT" to bind ("PORT" alone: 127.0.0.1). HOST
// must be a literal IP address and PORT lie in [0, 65535]. InputError naming `what` (a flag or
// config key) and the accepted forms otherwise. Pure function.
std::string parse_http_address(const std::string& text, const std::string& what);

// Sets the config key http.address from --http when it was given (the flag overrides the file).
void apply_http_flag(const Args& args, Config& config);

// The config's http.address as parse_http_address returns it; "" when it is absent or empty (the
// live view is off). InputError naming the key for a bad value or an unknown key under http.
std::string http_address_from(const Config& config);

}  // namespace grpo
