// Test helper: a plain-socket HTTP/1.1 client (one request per connection) and a parser of the
// Prometheus text format, for the live view's tests. POSIX only; header-only.
#pragma once
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstring>
#include <limits>
#include <map>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace grpo::testing {

// A connected TCP socket to "IP:PORT" (IPv4); closed when this goes.
class Connection {
 public:
  explicit Connection(const std::string& address) {
    const auto colon = address.rfind(':');
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(std::stoi(address.substr(colon + 1))));
    if (inet_pton(AF_INET, address.substr(0, colon).c_str(), &sa.sin_addr) != 1)
      throw std::runtime_error("not an IPv4 address: " + address);
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    if (fd_ < 0 || connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
      throw std::runtime_error("cannot connect to " + address);
  }
  ~Connection() { close(fd_); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Sends all of `bytes`; false when the peer closed the connection.
  bool send_all(const std::string& bytes) {
    for (size_t at = 0; at < bytes.size();) {
      const ssize_t n = ::send(fd_, bytes.data() + at, bytes.size() - at, MSG_NOSIGNAL);
      if (n <= 0) return false;
      at += static_cast<size_t>(n);
    }
    return true;
  }
  // Everything until the peer closes, or what came within timeout_ms (then timed_out is set).
  std::string read_all(int timeout_ms, bool* timed_out = nullptr) {
    std::string out;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
      pollfd p{fd_, POLLIN, 0};
      if (left <= 0 || poll(&p, 1, static_cast<int>(left)) <= 0) {
        if (timed_out) *timed_out = true;
        return out;
      }
      char buf[65536];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return out;
      out.append(buf, static_cast<size_t>(n));
    }
  }

 private:
  int fd_ = -1;
};

struct HttpReply {
  int status = 0;                              // 0: no reply (the connection closed without one)
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
};

inline HttpReply parse_reply(const std::string& raw) {
  HttpReply r;
  const auto end = raw.find("\r\n\r\n");
  if (raw.compare(0, 9, "HTTP/1.1 ") != 0 || end == std::string::npos) return r;
  r.status = std::stoi(raw.substr(9, 3));
  size_t at = raw.find("\r\n") + 2;
  while (at < end) {
    const auto eol = raw.find("\r\n", at);
    const std::string line = raw.substr(at, eol - at);
    const auto colon = line.find(':');
    std::string name = line.substr(0, colon);
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    r.headers[name] = line.substr(line.find_first_not_of(' ', colon + 1));
    at = eol + 2;
  }
  r.body = raw.substr(end + 4);
  return r;
}

// `raw` sent as is on a new connection; the reply read until the server closes.
inline HttpReply http_raw(const std::string& address, const std::string& raw, int timeout_ms = 10'000) {
  Connection c(address);
  c.send_all(raw);
  return parse_reply(c.read_all(timeout_ms));
}

// GET `target` ("/metrics?x=1") with Connection: close.
inline HttpReply http_get(const std::string& address, const std::string& target, int timeout_ms = 10'000) {
  return http_raw(address, "GET " + target + " HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n", timeout_ms);
}

// One sample line of the Prometheus text format.
struct PromSample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

struct Exposition {
  std::map<std::string, std::string> types;  // family name -> counter, gauge, histogram, ...
  std::vector<PromSample> samples;
  std::vector<std::string> errors;  // lines that break the format
  // The value of the sample `name` with exactly `labels`; NaN when absent.
  double value(const std::string& name, const std::map<std::string, std::string>& labels = {}) const {
    for (const auto& s : samples)
      if (s.name == name && s.labels == labels) return s.value;
    return std::numeric_limits<double>::quiet_NaN();
  }
};

inline bool valid_metric_name(const std::string& n) {
  if (n.empty() || std::isdigit(static_cast<unsigned char>(n[0]))) return false;
  for (char c : n)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == ':')) return false;
  return true;
}

// Parses the text format strictly enough for the tests: every sample belongs to a family declared
// by a TYPE line before it (histograms: NAME_bucket/_sum/_count), names are valid, label values
// quoted, values numbers (NaN, +Inf, -Inf included).
inline Exposition parse_exposition(const std::string& text) {
  Exposition e;
  size_t at = 0;
  while (at < text.size()) {
    size_t eol = text.find('\n', at);
    if (eol == std::string::npos) eol = text.size();
    const std::string line = text.substr(at, eol - at);
    at = eol + 1;
    if (line.empty()) continue;
    if (line.rfind("# TYPE ", 0) == 0) {
      const auto sp = line.find(' ', 7);
      e.types[line.substr(7, sp - 7)] = line.substr(sp + 1);
      continue;
    }
    if (line[0] == '#') continue;
    PromSample s;
    size_t name_end = line.find_first_of("{ ");
    s.name = line.substr(0, name_end);
    size_t rest = name_end;
    if (name_end != std::string::npos && line[name_end] == '{') {
      const auto close = line.find('}', name_end);
      if (close == std::string::npos) {
        e.errors.push_back("unclosed labels: " + line);
        continue;
      }
      std::string labels = line.substr(name_end + 1, close - name_end - 1);
      while (!labels.empty()) {
        const auto eq = labels.find("=\"");
        const auto q = labels.find('"', eq + 2);
        if (eq == std::string::npos || q == std::string::npos) {
          e.errors.push_back("bad labels: " + line);
          break;
        }
        s.labels[labels.substr(0, eq)] = labels.substr(eq + 2, q - eq - 2);
        labels = labels.substr(std::min(labels.size(), q + 2));
      }
      rest = close + 1;
    }
    std::string family = s.name;
    for (const char* suffix : {"_bucket", "_sum", "_count"})
      if (!e.types.count(family) && family.size() > strlen(suffix) &&
          family.compare(family.size() - strlen(suffix), strlen(suffix), suffix) == 0)
        family = family.substr(0, family.size() - strlen(suffix));
    if (!valid_metric_name(s.name)) e.errors.push_back("bad name: " + line);
    if (!e.types.count(family)) e.errors.push_back("no TYPE line before: " + line);
    try {
      std::string v = line.substr(line.find_first_not_of(' ', rest));
      v = v.substr(0, v.find(' '));  // a timestamp may follow
      s.value = v == "Nan" || v == "NaN" ? std::numeric_limits<double>::quiet_NaN() : std::stod(v);
    } catch (const std::exception&) {
      e.errors.push_back("bad value: " + line);
    }
    e.samples.push_back(std::move(s));
  }
  return e;
}

}  // namespace grpo::testing
