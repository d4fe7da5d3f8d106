#include "http/monitor.h"

#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "metrics/report.h"
#include "metrics/svg_plot.h"

namespace grpo {
namespace fs = std::filesystem;

namespace {
const char* const kHtml = "text/html; charset=utf-8";
}  // namespace

Monitor::Monitor(const MonitorOptions& options) : options_(options) {
  std::map<std::string, HttpHandler> routes;
  routes["/metrics"] = [this](const HttpRequest&) {
    return HttpResponse{200, "text/plain; version=0.0.4; charset=utf-8", metrics_.text()};
  };
  routes["/healthz"] = [](const HttpRequest&) { return HttpResponse{200, "text/plain; charset=utf-8", "ok\n"}; };
  routes["/readyz"] = [this](const HttpRequest&) {
    return ready_ ? HttpResponse{200, "text/plain; charset=utf-8", "ready\n"}
                  : HttpResponse{503, "text/plain; charset=utf-8", "not ready\n"};
  };
  routes["/samples"] = [this](const HttpRequest& r) {
    if (r.param("format") == "json") return HttpResponse{200, "application/json", samples_.json()};
    return HttpResponse{200, kHtml, samples_.html(options_.name)};
  };
  routes["/"] = [this](const HttpRequest&) { return page(); };
  HttpServerOptions so;
  so.address = options.address;
  server_ = std::make_unique<HttpServer>(so, std::move(routes));
  std::cerr << options_.name << ": live view at http://" << server_->address()
            << "/ (/metrics, /healthz, /readyz, /samples)" << std::endl;
}

void Monitor::log_step(int64_t step, const std::map<std::string, double>& values) {
  metrics_.set("step", double(step), "the last step logged to metrics.jsonl");
  for (const auto& [key, value] : values) metrics_.set(key, value, "metrics.jsonl's " + key);
}

HttpResponse Monitor::page() const {
  const std::string reload = "<meta http-equiv=\"refresh\" content=\"" + std::to_string(options_.refresh_s) + "\">";
  const fs::path jsonl = fs::path(options_.run_dir) / "metrics.jsonl";
  std::string body;
  if (!options_.run_dir.empty() && fs::exists(jsonl) && fs::file_size(jsonl) > 0) {
    std::ostringstream config;
    config << std::ifstream(fs::path(options_.run_dir) / "config.yaml").rdbuf();
    body = render_report(read_metrics(jsonl.string()), options_.name + " (live)", config.str());
    const auto head = body.find("<head>");
    body.insert(head == std::string::npos ? 0 : head + 6, reload);
  } else {
    body = "<!DOCTYPE html><html><head><meta charset=\"utf-8\">" + reload + "<title>" + html_escape(options_.name) +
           "</title></head><body><h1>" + html_escape(options_.name) + "</h1><p>" +
           (options_.run_dir.empty() ? "" : "No step logged yet. ") +
           "<a href=\"/metrics\">metrics</a> · <a href=\"/samples\">samples</a> · <a href=\"/readyz\">readiness</a>"
           "</p></body></html>\n";
  }
  return {200, kHtml, body};
}

}  // namespace grpo
