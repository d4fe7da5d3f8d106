#include "reward/code/runner.h"

#include <dirent.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "reward/code/python_pool.h"

namespace grpo::reward {

Language parse_language(const std::string& name, const std::string& field) {
  if (name == "python" || name == "python3" || name == "py") return Language::python;
  if (name == "cpp" || name == "c++" || name == "cxx") return Language::cpp;
  throw InputError(field + ": unknown language '" + name + "' (expected \"python\" or \"cpp\")");
}

const char* language_name(Language language) { return language == Language::python ? "python" : "cpp"; }

namespace {

// A host directory for the compiler's output; removed with everything in it.
class ScratchDir {
 public:
  ScratchDir() {
    char tmpl[] = "/tmp/grpo-build-XXXXXX";
    if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp /tmp/grpo-build-XXXXXX failed");
    path_ = tmpl;
  }
  ~ScratchDir() {
    if (DIR* d = ::opendir(path_.c_str())) {
      while (dirent* e = ::readdir(d))
        if (std::string(e->d_name) != "." && std::string(e->d_name) != "..")
          ::unlink((path_ + "/" + e->d_name).c_str());
      ::closedir(d);
    }
    ::rmdir(path_.c_str());
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// The first diagnostic line g++ marks as an error, e.g. "main.cpp:3:5: error: 'x' was not declared".
std::string first_error_line(const std::string& log) {
  std::istringstream in(log);
  std::string line;
  while (std::getline(in, line))
    if (line.find("error") != std::string::npos) return line.substr(0, 300);
  return log.substr(0, 300);
}

}  // namespace

CodeRunner::CodeRunner(RunnerOptions options) : options_(std::move(options)) {
  if (options_.python_pool > 0) {
    PythonPool::Options p;
    p.size = options_.python_pool;
    p.python = options_.python;
    p.modules = options_.python_modules;
    pool_ = std::make_unique<PythonPool>(p);
  }
}

CodeRunner::~CodeRunner() = default;

BuildResult CodeRunner::build(Language language, const std::string& source) const {
  BuildResult b;
  b.program.language = language;
  if (language == Language::python) {
    b.program.source = source;
    b.ok = true;
    return b;
  }
  ScratchDir out;
  SandboxSpec spec;
  spec.argv = {options_.cxx};
  spec.argv.insert(spec.argv.end(), options_.cxx_flags.begin(), options_.cxx_flags.end());
  spec.argv.insert(spec.argv.end(), {"-o", "/out/main", "main.cpp"});
  spec.files = {{"main.cpp", source}};
  spec.env = {{"LC_ALL", "C"}};  // plain ASCII quotes in diagnostics
  spec.export_dir = out.path();
  spec.limits = options_.compile_limits;
  b.compile = run_sandboxed(spec);
  if (b.compile.verdict != Verdict::ok) {
    b.error = b.compile.verdict == Verdict::runtime_error
                  ? "compile error: " + first_error_line(b.compile.stderr_data)
                  : std::string("compile ") + verdict_name(b.compile.verdict) + ": " + b.compile.detail;
    return b;
  }
  std::ifstream bin(out.path() + "/main", std::ios::binary);
  if (!bin) {
    b.error = "compile error: the compiler wrote no binary";
    return b;
  }
  b.program.binary.assign(std::istreambuf_iterator<char>(bin), std::istreambuf_iterator<char>());
  b.ok = true;
  return b;
}

SandboxResult CodeRunner::run(const Program& program, const std::string& stdin_data, const SandboxLimits& limits,
                              const std::vector<SandboxFile>& files) const {
  SandboxSpec spec;
  spec.stdin_data = stdin_data;
  spec.limits = limits;
  if (program.language == Language::python) {
    spec.argv = {options_.python, "main.py"};
    spec.files = {{"main.py", program.source}};
    spec.files.insert(spec.files.end(), options_.python_modules.begin(), options_.python_modules.end());
  } else {
    spec.argv = {"/work/main"};
    spec.files = {{"main", program.binary, true}};
  }
  spec.files.insert(spec.files.end(), files.begin(), files.end());
  if (program.language == Language::python && pool_) return pool_->run(spec);
  return run_sandboxed(spec);
}

}  // namespace grpo::reward
