#include "http/server.h"

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <optional>
#include <thread>

#include "common/error.h"

namespace grpo {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

std::string HttpRequest::param(const std::string& name) const {
  size_t at = 0;
  while (at <= query.size()) {
    size_t end = query.find('&', at);
    if (end == std::string::npos) end = query.size();
    const std::string pair = query.substr(at, end - at);
    const auto eq = pair.find('=');
    if (pair.substr(0, eq) == name) return eq == std::string::npos ? "" : pair.substr(eq + 1);
    at = end + 1;
  }
  return "";
}

namespace {

struct Shared {
  HttpServerOptions options;
  std::map<std::string, HttpHandler> routes;
  std::atomic<int> connections{0};
};

HttpResponse route(const Shared& shared, const bhttp::request<bhttp::empty_body>& req) {
  if (req.method() != bhttp::verb::get) return {405, "text/plain; charset=utf-8", "only GET is served\n"};
  const std::string target(req.target());
  HttpRequest r;
  const auto q = target.find('?');
  r.path = target.substr(0, q);
  if (q != std::string::npos) r.query = target.substr(q + 1);
  auto it = shared.routes.find(r.path);
  if (it == shared.routes.end()) return {404, "text/plain; charset=utf-8", "not found\n"};
  try {
    return it->second(r);
  } catch (const std::exception& e) {
    return {500, "text/plain; charset=utf-8", std::string("internal error: ") + e.what() + "\n"};
  }
}

// One connection: read a request, write its response, again while the client keeps it alive.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, std::shared_ptr<Shared> shared) : stream_(std::move(socket)), shared_(std::move(shared)) {
    ++shared_->connections;
  }
  ~Session() { --shared_->connections; }

  void read() {
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(shared_->options.max_header_bytes));
    parser_->body_limit(0);
    stream_.expires_after(shared_->options.timeout);
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = shared_from_this()](beast::error_code ec, size_t) { self->on_read(ec); });
  }

 private:
  void on_read(beast::error_code ec) {
    if (ec == bhttp::error::end_of_stream || ec == beast::error::timeout || ec == asio::error::operation_aborted ||
        ec == asio::error::connection_reset || ec == asio::error::eof)
      return close();
    bool keep_alive = false;
    HttpResponse r;
    if (ec) {
      r = {400, "text/plain; charset=utf-8", "bad request: " + ec.message() + "\n"};
    } else {
      const auto& req = parser_->get();
      keep_alive = req.keep_alive();
      r = route(*shared_, req);
    }
    res_ = {};
    res_.result(static_cast<unsigned>(r.status));
    res_.version(11);
    res_.set(bhttp::field::server, "grpo");
    res_.set(bhttp::field::content_type, r.content_type);
    res_.set(bhttp::field::cache_control, "no-store");
    res_.body() = std::move(r.body);
    res_.keep_alive(keep_alive);
    res_.prepare_payload();
    stream_.expires_after(shared_->options.timeout);
    bhttp::async_write(stream_, res_, [self = shared_from_this(), keep_alive](beast::error_code wec, size_t) {
      if (wec || !keep_alive) return self->close();
      self->read();
    });
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.socket().close(ignored);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::empty_body>> parser_;
  bhttp::response<bhttp::string_body> res_;
  std::shared_ptr<Shared> shared_;
};

tcp::endpoint endpoint_of(const std::string& address) {
  const auto colon = address.rfind(':');
  std::string host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  boost::system::error_code ec;
  const auto ip = asio::ip::make_address(host, ec);
  if (ec || colon == std::string::npos) throw InputError("http: '" + address + "' is not an IP:PORT address");
  return {ip, static_cast<unsigned short>(std::stoi(address.substr(colon + 1)))};
}

}  // namespace

class HttpServer::Impl {
 public:
  Impl(const HttpServerOptions& options, std::map<std::string, HttpHandler> routes)
      : shared_(std::make_shared<Shared>()), acceptor_(ioc_) {
    shared_->options = options;
    shared_->routes = std::move(routes);
    const tcp::endpoint ep = endpoint_of(options.address);
    beast::error_code ec;
    acceptor_.open(ep.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(ep, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) throw InputError("http: cannot listen on " + options.address + ": " + ec.message());
    const tcp::endpoint bound = acceptor_.local_endpoint();
    const std::string host = bound.address().to_string();
    address_ = (bound.address().is_v6() ? "[" + host + "]" : host) + ":" + std::to_string(bound.port());
    accept();
    thread_ = std::thread([this] { ioc_.run(); });
  }

  ~Impl() {
    ioc_.stop();
    thread_.join();
  }

  const std::string& address() const { return address_; }

 private:
  void accept() {
    acceptor_.async_accept([this](beast::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted) return;
      if (!ec) {
        if (shared_->connections.load() >= shared_->options.max_connections) {
          beast::error_code ignored;
          socket.close(ignored);
        } else {
          std::make_shared<Session>(std::move(socket), shared_)->read();
        }
      }
      accept();
    });
  }

  std::shared_ptr<Shared> shared_;
  asio::io_context ioc_{1};
  tcp::acceptor acceptor_;
  std::string address_;
  std::thread thread_;
};

HttpServer::HttpServer(const HttpServerOptions& options, std::map<std::string, HttpHandler> routes)
    : impl_(std::make_unique<Impl>(options, std::move(routes))) {}
HttpServer::~HttpServer() = default;
const std::string& HttpServer::address() const { return impl_->address(); }

}  // namespace grpo
