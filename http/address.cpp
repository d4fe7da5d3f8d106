#include "http/address.h"

#include <boost/asio/ip/address.hpp>

#include "common/error.h"

namespace grpo {

Option http_option() {
  return {"http", "[IP:]PORT",
          "serve /metrics (Prometheus), /healthz, /readyz, / (live report) and /samples over HTTP; PORT alone "
          "binds 127.0.0.1, 0 picks a free port; overrides http.address",
          false};
}

std::string parse_http_address(const std::string& text, const std::string& what) {
  const std::string forms =
      what + ": expected PORT, IP:PORT or [IPv6]:PORT with PORT in [0, 65535], got '" + text + "'";
  std::string host = "127.0.0.1", port = text;
  const auto colon = text.rfind(':');
  if (colon != std::string::npos) {
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    boost::system::error_code ec;
    boost::asio::ip::make_address(host, ec);
    if (ec || host.empty()) throw InputError(forms + " ('" + host + "' is not an IP address)");
  }
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(port) > 65535)
    throw InputError(forms);
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(std::stoi(port));
}

void apply_http_flag(const Args& args, Config& config) {
  if (!args.has("http")) return;
  const std::string address = parse_http_address(args.get("http"), "--http");
  config.apply_override("http.address='" + address + "'");
}

std::string http_address_from(const Config& config) {
  if (!config.has("http")) return "";
  const Config http = config.sub("http");
  http.require_known({"address"});
  const std::string text = http.get<std::string>("address", "");
  return text.empty() ? "" : parse_http_address(text, config.where("http.address"));
}

}  // namespace grpo
