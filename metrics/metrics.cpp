#include "metrics/metrics.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/fs.h"

namespace grpo {
namespace fs = std::filesystem;

namespace {

void make_dirs(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw InputError("cannot create directory '" + dir + "': " + ec.message());
}

// True when the file is non-empty and its last byte is not '\n'.
bool ends_torn(int fd, const std::string& path) {
  const off_t size = ::lseek(fd, 0, SEEK_END);
  if (size <= 0) return false;
  char last = 0;
  if (::pread(fd, &last, 1, size - 1) != 1) throw InputError("cannot read '" + path + "': " + std::strerror(errno));
  return last != '\n';
}

}  // namespace

MetricsWriter::MetricsWriter(const std::string& run_dir) : jsonl_path_(run_dir + "/metrics.jsonl") {
  make_dirs(run_dir + "/tb");
  jsonl_fd_ = ::open(jsonl_path_.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (jsonl_fd_ < 0) throw InputError("cannot open '" + jsonl_path_ + "': " + std::strerror(errno));
  try {
    if (ends_torn(jsonl_fd_, jsonl_path_)) write_all(jsonl_fd_, "\n", 1, jsonl_path_);
    events_ = std::make_unique<EventFileWriter>(run_dir + "/tb");
  } catch (...) {
    ::close(jsonl_fd_);
    throw;
  }
}

MetricsWriter::~MetricsWriter() { ::close(jsonl_fd_); }

void MetricsWriter::log(int64_t step, const std::map<std::string, double>& values) {
  const double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  nlohmann::ordered_json line;
  line["step"] = step;
  line["time"] = now;
  for (const auto& [key, v] : values) {
    if (key.empty() || key == "step" || key == "time")
      throw InputError("metrics: key '" + key + "' is " + (key.empty() ? "empty" : "reserved") + " (step " +
                       std::to_string(step) + ")");
    line[key] = std::isfinite(v) ? nlohmann::ordered_json(v) : nlohmann::ordered_json(nullptr);
  }
  // Both records are built before anything is written, then each goes out in one write(2).
  const std::string text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  write_all(jsonl_fd_, text.data(), text.size(), jsonl_path_);
  events_->write_scalars(now, step, values);
}

namespace {

// Calls on_line(text, step) for each line of a metrics.jsonl that is a JSON object with an integer
// "step", on_bad(why) for each other non-empty line. Returns the number of non-empty lines.
int64_t for_each_metrics_line(const std::string& jsonl_path,
                              const std::function<void(const std::string&, nlohmann::json&&)>& on_line,
                              const std::function<void(const std::string&)>& on_bad) {
  std::ifstream in(jsonl_path, std::ios::binary);
  if (!in) throw InputError("cannot read metrics file '" + jsonl_path + "': " + std::strerror(errno));
  std::string text;
  int64_t line_no = 0, non_empty = 0;
  while (std::getline(in, text)) {
    ++line_no;
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    ++non_empty;
    nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    std::string why;
    if (j.is_discarded())
      why = "not valid JSON";
    else if (!j.is_object())
      why = "not a JSON object";
    else if (!j.contains("step") || !j["step"].is_number_integer())
      why = "no integer \"step\"";
    if (why.empty())
      on_line(text, std::move(j));
    else
      on_bad("line " + std::to_string(line_no) + ": " + why);
  }
  if (in.bad()) throw InputError("cannot read metrics file '" + jsonl_path + "': " + std::strerror(errno));
  return non_empty;
}

}  // namespace

int64_t drop_metrics_after(const std::string& jsonl_path, int64_t step) {
  if (!fs::exists(jsonl_path)) return 0;
  std::string kept;
  int64_t dropped = 0;
  for_each_metrics_line(
      jsonl_path,
      [&](const std::string& text, nlohmann::json&& j) {
        if (j["step"].get<int64_t>() <= step)
          kept += text + "\n";
        else
          ++dropped;
      },
      [&](const std::string&) { ++dropped; });
  if (dropped > 0) write_text_atomic(jsonl_path, kept);
  return dropped;
}

MetricsHistory read_metrics(const std::string& jsonl_path) {
  std::map<int64_t, nlohmann::json> by_step;  // a step's lines merged; a later line's value of a key wins
  MetricsHistory h;
  const int64_t non_empty = for_each_metrics_line(
      jsonl_path,
      [&](const std::string&, nlohmann::json&& j) {
        nlohmann::json& merged = by_step[j["step"].get<int64_t>()];
        if (merged.is_null()) merged = nlohmann::json::object();
        merged.update(j);
      },
      [&](const std::string& why) { h.bad_lines.push_back(why); });
  if (by_step.empty() && non_empty > 0)
    throw InputError("metrics file '" + jsonl_path + "' has no valid line (" + h.bad_lines.front() + ")");
  for (const auto& [step, j] : by_step) {
    h.steps.push_back(step);
    for (const auto& [key, v] : j.items()) {
      if (key == "step") continue;
      if (key == "time") {
        if (v.is_number()) h.wall_time[step] = v.get<double>();
      } else if (v.is_number()) {
        h.series[key].emplace_back(step, v.get<double>());
      } else if (v.is_null()) {
        h.series[key].emplace_back(step, std::nan(""));
      }
    }
  }
  return h;
}

}  // namespace grpo
