// A small HTTP/1.1 server (Boost.Beast) for GET requests, on its own thread, that can never stall or
// crash the process that runs it:
//   * every connection is asynchronous on that one thread: a slow or silent client holds only its
//     own connection, which is closed when a request is not read (or a response not written)
//     within `timeout`;
//   * request headers are bounded (max_header_bytes) and a request with a body is refused: 400;
//     anything that does not parse as HTTP/1.x: 400; a method other than GET: 405; a path
//     without a route: 404; a handler that throws: 500 (the connection and the server go on);
//   * at most max_connections connections at once; more are closed at once;
//   * the destructor stops it: open connections are closed, the thread joined (no hang).
#pragma once
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>

namespace grpo {

struct HttpRequest {
  std::string path;   // "/metrics" (the target without its query)
  std::string query;  // "format=json" (after '?'; may be empty)
  // The value of `name` in the query ("" when absent; no percent-decoding).
  std::string param(const std::string& name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

// Runs on the server's thread; should return quickly (it holds up the other connections).
using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

struct HttpServerOptions {
  std::string address = "127.0.0.1:0";  // "IP:PORT" or "[IPv6]:PORT" (http/address.h); port 0: a free one
  size_t max_header_bytes = 16 * 1024;
  std::chrono::milliseconds timeout{10'000};  // to read one request, and to write one response
  int max_connections = 64;
};

// Thread-safety: address() from any thread; routes are fixed at construction.
class HttpServer {
 public:
  // Binds and starts serving `routes` (exact paths). InputError naming the address when it cannot
  // be bound.
  HttpServer(const HttpServerOptions& options, std::map<std::string, HttpHandler> routes);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // The bound address, e.g. "127.0.0.1:41234".
  const std::string& address() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace grpo
