// The live view's parts in-process, against real sockets on loopback: the HTTP server's routes
// and its answers to hostile clients (garbage, huge headers, bodies, slow and idle connections,
// more connections than allowed), the --http address forms, the Prometheus exposition of
// LiveMetrics, the samples page's escaping and the Monitor's probes.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include "common/error.h"
#include "http/address.h"
#include "http/monitor.h"
#include "http/server.h"
#include "http_client.h"

namespace {

using grpo::HttpRequest;
using grpo::HttpResponse;
using grpo::HttpServer;
using grpo::HttpServerOptions;
using grpo::testing::Connection;
using grpo::testing::http_get;
using grpo::testing::http_raw;
using grpo::testing::parse_exposition;
using Ms = std::chrono::milliseconds;

std::unique_ptr<HttpServer> echo_server(HttpServerOptions o = {}) {
  std::map<std::string, grpo::HttpHandler> routes;
  routes["/echo"] = [](const HttpRequest& r) { return HttpResponse{200, "text/plain", "q=" + r.param("q")}; };
  routes["/throw"] = [](const HttpRequest&) -> HttpResponse { throw std::runtime_error("boom"); };
  return std::make_unique<HttpServer>(o, routes);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

TEST(HttpAddress, PortAloneIsLoopbackAndOtherFormsAreChecked) {
  EXPECT_EQ(grpo::parse_http_address("8080", "--http"), "127.0.0.1:8080");
  EXPECT_EQ(grpo::parse_http_address("0", "--http"), "127.0.0.1:0");
  EXPECT_EQ(grpo::parse_http_address("0.0.0.0:9100", "--http"), "0.0.0.0:9100");
  EXPECT_EQ(grpo::parse_http_address("[::1]:9100", "--http"), "[::1]:9100");
  for (const char* bad : {"", "65536", "-1", "80x", "localhost:80", "1.2.3.4:", "1.2.3.4:99999", ":80", "[::1]"}) {
    try {
      grpo::parse_http_address(bad, "--http");
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const grpo::InputError& e) {
      EXPECT_NE(std::string(e.what()).find("--http: expected PORT, IP:PORT or [IPv6]:PORT with PORT in [0, 65535]"),
                std::string::npos)
          << e.what();
    }
  }
  grpo::Config c = grpo::Config::parse("http: {address: 9100}\n", "run.yaml");
  EXPECT_EQ(grpo::http_address_from(c), "127.0.0.1:9100");
  EXPECT_EQ(grpo::http_address_from(grpo::Config::parse("x: 1\n", "run.yaml")), "");
  EXPECT_THROW(grpo::http_address_from(grpo::Config::parse("http: {adress: 1}\n", "run.yaml")), grpo::InputError);
  try {
    grpo::http_address_from(grpo::Config::parse("http: {address: 'a:b'}\n", "run.yaml"));
    ADD_FAILURE();
  } catch (const grpo::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("http.address"), std::string::npos) << e.what();
  }
}

TEST(HttpServer, RoutesAnswerAndBadRequestsGetTheirStatus) {
  auto server = echo_server();
  const std::string a = server->address();
  auto r = http_get(a, "/echo?q=7&z=1");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "q=7");
  EXPECT_EQ(http_get(a, "/nope").status, 404);
  EXPECT_EQ(http_get(a, "/throw").status, 500);
  EXPECT_EQ(http_raw(a, "POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").status, 405);
  EXPECT_EQ(http_raw(a, "GET /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello").status, 400);
  EXPECT_EQ(http_raw(a, "\x16\x03\x01 garbage that is not HTTP\r\n\r\n").status, 400);
  EXPECT_EQ(http_raw(a, "GET /echo HTTP/1.1\r\nX-Big: " + std::string(100'000, 'a') + "\r\n\r\n").status, 400);
  // Keep-alive: two requests on one connection.
  Connection c(a);
  c.send_all("GET /echo?q=1 HTTP/1.1\r\nHost: x\r\n\r\nGET /echo?q=2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  const std::string both = c.read_all(5000);
  EXPECT_NE(both.find("q=1"), std::string::npos) << both;
  EXPECT_NE(both.find("q=2"), std::string::npos) << both;
  EXPECT_EQ(http_get(a, "/echo?q=after").body, "q=after");  // still serving
}

TEST(HttpServer, SlowAndIdleClientsNeitherBlockOthersNorStayForever) {
  HttpServerOptions o;
  o.timeout = Ms(500);
  auto server = echo_server(o);
  const std::string a = server->address();
  Connection slow(a), idle(a);
  slow.send_all("GET /echo HTTP/1.1\r\nHo");  // and nothing more
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(http_get(a, "/echo?q=fast").body, "q=fast");
  EXPECT_LT(seconds_since(t0), 0.4);  // answered while the slow client waits
  bool timed_out = false;
  slow.read_all(5000, &timed_out);  // the server closes it after its timeout
  EXPECT_FALSE(timed_out);
  EXPECT_LT(seconds_since(t0), 3.0);
  idle.read_all(5000, &timed_out);
  EXPECT_FALSE(timed_out);
}

TEST(HttpServer, ConnectionsBeyondTheLimitAreClosedAndServingGoesOn) {
  HttpServerOptions o;
  o.max_connections = 4;
  auto server = echo_server(o);
  const std::string a = server->address();
  std::vector<std::unique_ptr<Connection>> held;
  for (int i = 0; i < 4; ++i) held.push_back(std::make_unique<Connection>(a));
  std::this_thread::sleep_for(Ms(200));                   // accepted
  EXPECT_EQ(http_get(a, "/echo?q=5th", 3000).status, 0);  // closed without an answer
  held.clear();
  std::this_thread::sleep_for(Ms(200));
  EXPECT_EQ(http_get(a, "/echo?q=again").body, "q=again");
}

TEST(HttpServer, StopsPromptlyWithOpenConnectionsAndNamesAnAddressInUse) {
  auto server = echo_server();
  const std::string a = server->address();
  HttpServerOptions taken;
  taken.address = a;
  try {
    echo_server(taken);
    ADD_FAILURE() << "bound " << a << " twice";
  } catch (const grpo::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot listen on " + a), std::string::npos) << e.what();
  }
  Connection idle(a), slow(a);
  slow.send_all("GET /echo HTTP/1.1\r\n");
  std::this_thread::sleep_for(Ms(100));
  const auto t0 = std::chrono::steady_clock::now();
  server.reset();
  EXPECT_LT(seconds_since(t0), 1.0);
}

TEST(LiveMetrics, ExpositionHasTypesNamesAndValuesWhileWrittenConcurrently) {
  grpo::LiveMetrics m;
  EXPECT_EQ(grpo::prometheus_name("reward/accuracy-x.mean"), "grpo_reward_accuracy_x_mean");
  std::atomic<bool> stop{false};
  std::atomic<int> writes{0};
  std::thread writer([&] {
    for (int i = 0; !stop; ++i, ++writes) {
      m.set("reward/mean", 0.25, "mean reward");
      m.add("verdicts", 1, "verdicts", {{"outcome", i % 2 ? "correct" : "wrong"}});
      m.observe("latency", 0.02, {0.01, 0.1, 1}, "seconds");
    }
  });
  while (writes < 10) std::this_thread::yield();
  for (int i = 0; i < 200; ++i) {
    const auto e = parse_exposition(m.text());
    EXPECT_TRUE(e.errors.empty()) << e.errors.front();
  }
  stop = true;
  writer.join();
  const auto e = parse_exposition(m.text());
  EXPECT_EQ(e.types.at("grpo_reward_mean"), "gauge");
  EXPECT_EQ(e.types.at("grpo_verdicts_total"), "counter");
  EXPECT_EQ(e.types.at("grpo_latency"), "histogram");
  EXPECT_EQ(e.value("grpo_reward_mean"), 0.25);
  EXPECT_EQ(e.value("grpo_latency_bucket", {{"le", "0.01"}}), 0);
  EXPECT_EQ(e.value("grpo_latency_bucket", {{"le", "0.1"}}), e.value("grpo_latency_count"));
  EXPECT_GT(e.value("grpo_verdicts_total", {{"outcome", "correct"}}), 0);
}

TEST(Monitor, ProbesSamplesAndIndexPage) {
  grpo::Monitor mon({"127.0.0.1:0", "", "unit"});
  const std::string a = mon.address();
  EXPECT_EQ(http_get(a, "/healthz").status, 200);
  EXPECT_EQ(http_get(a, "/readyz").status, 503);
  mon.set_ready(true);
  EXPECT_EQ(http_get(a, "/readyz").status, 200);
  mon.log_step(3, {{"reward/mean", 0.5}, {"accuracy", 0.75}});
  const auto e = parse_exposition(http_get(a, "/metrics").body);
  EXPECT_TRUE(e.errors.empty());
  EXPECT_EQ(e.value("grpo_step"), 3);
  EXPECT_EQ(e.value("grpo_accuracy"), 0.75);
  for (int i = 0; i < 12; ++i)
    mon.samples().add(
        {i, "p" + std::to_string(i), "<script>alert(1)</script> & 'x'", "4", {{"<b>4</b>", 1, true, "equal"}}});
  const auto page = http_get(a, "/samples");
  EXPECT_EQ(page.status, 200);
  EXPECT_EQ(page.headers.at("content-type"), "text/html; charset=utf-8");
  EXPECT_EQ(page.body.find("<script>"), std::string::npos);
  EXPECT_NE(page.body.find("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &#39;x&#39;"), std::string::npos);
  const auto j = nlohmann::json::parse(http_get(a, "/samples?format=json").body);
  ASSERT_EQ(j["groups"].size(), 8u);  // the newest 8
  EXPECT_EQ(j["groups"][0]["step"], 11);
  EXPECT_EQ(j["groups"][0]["completions"][0]["text"], "<b>4</b>");
  EXPECT_EQ(j["groups"][0]["completions"][0]["reason"], "equal");
  EXPECT_NE(http_get(a, "/").body.find("href=\"/metrics\""), std::string::npos);
}

}  // namespace
