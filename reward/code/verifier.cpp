#include "reward/code/verifier.h"
#include "common/utf8.h"

#include <algorithm>
#include <set>

#include "reward/code/extract.h"
#include "reward/code/harness.h"
#include "reward/code/runner.h"
#include "reward/code/sandbox_process.h"

namespace grpo::reward {

namespace {

// The knobs a request may override.
struct Settings {
  bool fraction = false;
  bool require_fence = false;
  Language language = Language::python;
};

const nlohmann::json& typed(const nlohmann::json& options, const std::string& key, nlohmann::json::value_t type,
                            const char* expected, const std::string& where) {
  const auto& v = options.at(key);
  bool ok = v.type() == type || (type == nlohmann::json::value_t::number_integer && v.is_number_unsigned());
  if (!ok) throw InputError(where + "." + key + ": expected " + expected + ", got " + v.dump());
  return v;
}

void apply_settings(const nlohmann::json& options, const std::string& where, Settings& s) {
  using T = nlohmann::json::value_t;
  if (options.contains("reward")) {
    std::string mode = typed(options, "reward", T::string, "a string", where).get<std::string>();
    if (mode != "all_or_nothing" && mode != "fraction")
      throw InputError(where + ".reward: expected \"all_or_nothing\" or \"fraction\", got \"" + mode + "\"");
    s.fraction = mode == "fraction";
  }
  if (options.contains("require_fence"))
    s.require_fence = typed(options, "require_fence", T::boolean, "true or false", where).get<bool>();
  if (options.contains("language"))
    s.language = parse_language(typed(options, "language", T::string, "a string", where).get<std::string>(),
                                where + ".language");
}

void require_known(const nlohmann::json& options, const std::set<std::string>& known, const std::string& where) {
  if (options.is_null()) return;
  if (!options.is_object()) throw InputError(where + ": expected an object, got " + options.dump());
  for (const auto& [key, value] : options.items())
    if (!known.count(key)) throw InputError(where + ": unknown option '" + key + "'");
}

// The last non-blank line of a program's stderr (at most 200 characters).
std::string last_line(const std::string& text) {
  size_t end = text.find_last_not_of("\n\r\t ");
  if (end == std::string::npos) return "";
  size_t start = text.rfind('\n', end);
  start = start == std::string::npos ? 0 : start + 1;
  return text.substr(start, std::min<size_t>(end + 1 - start, 200));
}

// Reward 0: no program to run (or `fraction_key` set: the program did not build).
VerifyResult zero(const std::string& reason, const char* fraction_key = nullptr) {
  VerifyResult r;
  r.reason = reason;
  r.components["accuracy"] = 0.0;
  if (fraction_key) r.components[fraction_key] = 0.0;
  return r;
}

class CodeVerifier : public Verifier {
 public:
  explicit CodeVerifier(const nlohmann::json& options) {
    using T = nlohmann::json::value_t;
    const std::string where = "code verifier options";
    require_known(options,
                  {"reward", "require_fence", "language", "python_pool", "python", "cxx", "cxx_flags",
                   "compile_timeout_ms", "compile_memory_mb", "disk_mb", "processes", "output_bytes"},
                  where);
    RunnerOptions r;
    r.python_pool = 2;
    r.python_modules = {python_harness_module()};
    if (options.is_null()) {
      init_runner(std::move(r));
      return;
    }
    apply_settings(options, where, defaults_);
    auto positive = [&](const char* key) {
      int64_t v = typed(options, key, T::number_integer, "an integer", where).get<int64_t>();
      if (v <= 0) throw InputError(where + "." + key + ": must be positive, got " + std::to_string(v));
      return v;
    };
    if (options.contains("python_pool")) {
      int64_t n = typed(options, "python_pool", T::number_integer, "an integer", where).get<int64_t>();
      if (n < 0 || n > 256) throw InputError(where + ".python_pool: expected 0..256, got " + std::to_string(n));
      r.python_pool = static_cast<int>(n);
    }
    if (options.contains("python")) r.python = typed(options, "python", T::string, "a path", where).get<std::string>();
    if (options.contains("cxx")) r.cxx = typed(options, "cxx", T::string, "a path", where).get<std::string>();
    if (options.contains("cxx_flags")) {
      const auto& flags = typed(options, "cxx_flags", T::array, "an array of strings", where);
      r.cxx_flags.clear();
      for (const auto& f : flags) {
        if (!f.is_string()) throw InputError(where + ".cxx_flags: expected an array of strings");
        r.cxx_flags.push_back(f.get<std::string>());
      }
    }
    if (options.contains("compile_timeout_ms"))
      r.compile_limits.wall_ms = r.compile_limits.cpu_ms = positive("compile_timeout_ms");
    if (options.contains("compile_memory_mb")) r.compile_limits.memory_mb = positive("compile_memory_mb");
    if (options.contains("disk_mb")) run_limits_.disk_mb = positive("disk_mb");
    if (options.contains("processes")) run_limits_.processes = positive("processes");
    if (options.contains("output_bytes")) run_limits_.output_bytes = positive("output_bytes");
    init_runner(std::move(r));
  }

  std::string name() const override { return "code"; }
  std::string pool() const override { return kSandboxPool; }
  std::string description() const override {
    return "Runs the answer's Python or C++ program against assert tests, a HumanEval check() or "
           "stdin/stdout cases in a sandbox; reward 1 when every test ran and passed";
  }

  VerifyResult verify(const VerifyRequest& request) const override {
    Settings s = defaults_;
    require_known(request.options, {"reward", "require_fence", "language"}, "options");
    if (request.options.is_object()) apply_settings(request.options, "options", s);
    TestSuite suite = parse_test_suite(request.reference, s.language);
    const Limits& lim = request.limits;
    for (auto [name, value] : {std::pair<const char*, int64_t>{"timeout_ms", lim.timeout_ms},
                               {"cpu_ms", lim.cpu_ms},
                               {"memory_mb", lim.memory_mb},
                               {"max_completion_bytes", lim.max_completion_bytes}})
      if (value <= 0 || value > (int64_t{1} << 40))
        throw InputError(std::string("limits.") + name + ": must be in 1..2^40, got " + std::to_string(value));

    const std::string& completion = request.completion;
    if (static_cast<int64_t>(completion.size()) > request.limits.max_completion_bytes)
      return zero("too long: " + std::to_string(completion.size()) + " bytes > limit " +
                  std::to_string(request.limits.max_completion_bytes));
    if (completion.empty()) return zero("empty completion");
    if (!utf8::is_valid(completion)) return zero("completion is not valid UTF-8");
    ExtractedCode code = extract_code(completion, suite.language, s.require_fence);
    if (!code.found) return zero(code.reason);

    SandboxLimits limits = run_limits_;
    limits.wall_ms = request.limits.timeout_ms;
    limits.cpu_ms = request.limits.cpu_ms;
    limits.memory_mb = request.limits.memory_mb;
    const int64_t deadline = monotonic_ms() + request.limits.timeout_ms;
    VerifyResult r = suite.form == TestSuite::Form::cases ? run_cases(suite, code.code, limits, deadline, s)
                                                          : run_tests(suite, code.code, limits, s);
    r.extracted = std::move(code.code);
    return r;
  }

 private:
  void init_runner(RunnerOptions options) {
    try {
      runner_ = std::make_unique<CodeRunner>(std::move(options));
    } catch (const std::runtime_error& e) {
      throw InputError(std::string("code verifier: cannot start the Python pool: ") + e.what());
    }
  }

  VerifyResult run_tests(const TestSuite& suite, const std::string& code, const SandboxLimits& limits,
                         const Settings& s) const {
    const std::string token = new_run_token();
    HarnessProgram program = build_harness(suite, code, token);
    BuildResult built = runner_->build(suite.language, program.source);
    if (!built.ok) return zero(built.error, "tests_passed_fraction");
    SandboxResult run = runner_->run(built.program, "", limits, program.files);
    TestReport report = read_report(suite, program, run, token);
    VerifyResult r;
    double fraction = report.total ? static_cast<double>(report.passed) / report.total : 0.0;
    r.correct = report.finished;
    r.components["accuracy"] = r.correct ? 1.0 : 0.0;
    r.components["tests_passed_fraction"] = fraction;
    r.reward = s.fraction ? fraction : r.components["accuracy"];
    r.reason = r.correct ? "passed " + std::to_string(report.total) + " of " + std::to_string(report.total) + " tests"
                         : report.failure;
    return r;
  }

  // Every case runs (while the wall-time budget lasts), so the fraction is always known.
  VerifyResult run_cases(const TestSuite& suite, const std::string& code, SandboxLimits limits, int64_t deadline,
                         const Settings& s) const {
    BuildResult built = runner_->build(suite.language, code);
    if (!built.ok) return zero(built.error, "cases_passed_fraction");
    int passed = 0;
    std::string failure;
    for (size_t i = 0; i < suite.cases.size(); ++i) {
      const auto& c = suite.cases[i];
      const std::string which = "case " + std::to_string(i + 1);
      int64_t left = deadline - monotonic_ms();
      if (left <= 0) {
        if (failure.empty()) failure = "timeout: the verification's wall time ran out before " + which;
        break;
      }
      limits.wall_ms = left;
      SandboxResult run = runner_->run(built.program, c.stdin_data, limits);
      std::string why;
      if (run.verdict != Verdict::ok) {
        why = std::string(verdict_name(run.verdict)) + " on " + which + ": " + run.detail;
        std::string said = last_line(run.stderr_data);
        if (run.verdict == Verdict::runtime_error && !said.empty()) why += " (" + said + ")";
      } else if (!outputs_match(c.stdout_data, run.stdout_data)) {
        why = "wrong answer on " + which + ": " + first_difference(c.stdout_data, run.stdout_data);
      } else {
        ++passed;
        continue;
      }
      if (failure.empty()) failure = why;
    }
    VerifyResult r;
    const int total = static_cast<int>(suite.cases.size());
    double fraction = static_cast<double>(passed) / total;
    r.correct = passed == total;
    r.components["accuracy"] = r.correct ? 1.0 : 0.0;
    r.components["cases_passed_fraction"] = fraction;
    r.reward = s.fraction ? fraction : r.components["accuracy"];
    r.reason = r.correct ? "passed " + std::to_string(total) + " of " + std::to_string(total) + " cases" : failure;
    return r;
  }

  Settings defaults_;
  SandboxLimits run_limits_;
  std::unique_ptr<CodeRunner> runner_;
};

}  // namespace

std::unique_ptr<Verifier> make_code_verifier(const nlohmann::json& options) {
  return std::make_unique<CodeVerifier>(options);
}

}  // namespace grpo::reward
