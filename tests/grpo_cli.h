// Runs the `grpo` binary as a user does, for the tests that drive it end to end.
#pragma once

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include <nlohmann/json.hpp>

namespace grpo_test {

struct CliResult {
  int code;         // exit status
  std::string out;  // stdout
  std::string err;  // stderr
};

// A fresh directory under the temp dir, removed with everything in it when this goes.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& prefix) {
    std::string tmpl = (std::filesystem::temp_directory_path() / (prefix + "_XXXXXX")).string();
    if (::mkdtemp(tmpl.data())) path_ = tmpl;
  }
  ~ScratchDir() {
    if (!path_.empty()) std::filesystem::remove_all(path_);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// `grpo ARGS` with `input` on stdin, run in `cwd` (empty: the test's working directory). stdin and
// stderr pass through files in `scratch_dir`, so stdout and stderr stay apart.
inline CliResult run_grpo(const std::string& args, const std::string& scratch_dir, const std::string& input = "",
                          const std::string& cwd = "") {
  const std::string in = scratch_dir + "/stdin", err = scratch_dir + "/stderr";
  std::ofstream(in) << input;
  std::string cmd = std::string(GRPO_BINARY) + " " + args + " < " + in + " 2> " + err;
  if (!cwd.empty()) cmd = "cd " + cwd + " && " + cmd;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return {-1, "", "popen failed: " + cmd};
  std::string out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  const int status = ::pclose(p);
  std::stringstream e;
  e << std::ifstream(err).rdbuf();
  return {WEXITSTATUS(status), out, e.str()};
}

// Whether this grpo has the services (train, reward-server, rollout-server, ...): a build with
// GRPO_SERVICES=OFF leaves them out, and the tests that need them skip there.
inline bool services_built() {
  static const bool built = [] {
    ScratchDir d("grpo_services_built");
    return run_grpo("--help", d.path()).out.find("rollout-server") != std::string::npos;
  }();
  return built;
}

// `grpo ARGS` from the source root, where the configs' relative paths point.
inline CliResult run_grpo_in_source(const std::string& args, const std::string& scratch_dir,
                                    const std::string& input = "") {
  return run_grpo(args, scratch_dir, input, GRPO_SOURCE_DIR);
}

// One JSON value per line of `out`.
inline std::vector<nlohmann::json> json_lines(const std::string& out) {
  std::vector<nlohmann::json> v;
  std::stringstream ss(out);
  for (std::string l; std::getline(ss, l);)
    if (!l.empty()) v.push_back(nlohmann::json::parse(l));
  return v;
}

}  // namespace grpo_test
