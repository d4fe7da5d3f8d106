#include "common/cli.h"

#include <filesystem>
#include <iostream>
#include <sstream>

#include "common/did_you_mean.h"
#include "common/error.h"

namespace grpo {

std::map<std::string, Command>& command_registry() {
  static std::map<std::string, Command> registry;
  return registry;
}

CommandRegistrar::CommandRegistrar(Command c) { command_registry()[c.name] = std::move(c); }

std::string Args::get(const std::string& name) const {
  auto it = values_.find(name);
  if (it != values_.end()) return it->second;
  auto d = defaults_.find(name);
  return d == defaults_.end() ? std::string() : d->second;
}

int64_t Args::get_int64(const std::string& name, int64_t min, int64_t max) const {
  const std::string v = get(name);
  const std::string expected = "--" + name + ": expected an integer in [" + std::to_string(min) + ", " +
                               std::to_string(max) + "], got \"" + v + "\"";
  long long x = 0;
  try {
    size_t pos = 0;
    x = std::stoll(v, &pos);
    if (pos != v.size()) throw std::invalid_argument(v);
  } catch (const std::exception&) {  // not a number, or beyond 64 bits
    throw InputError(expected);
  }
  if (x < min || x > max) throw InputError(expected);
  return x;
}

double Args::get_double(const std::string& name) const {
  std::string v = get(name);
  try {
    size_t pos = 0;
    double x = std::stod(v, &pos);
    if (pos != v.size()) throw std::invalid_argument(v);
    return x;
  } catch (const std::exception&) {
    throw InputError("--" + name + ": expected a number, got \"" + v + "\"");
  }
}

std::string Command::help() const {
  std::ostringstream o;
  o << "usage: grpo " << name << " [options]" << (usage_extra.empty() ? "" : " " + usage_extra) << "\n\n"
    << summary << "\n\noptions:\n";
  for (const auto& opt : options) {
    std::string lhs = "--" + opt.name + (opt.metavar.empty() ? "" : " " + opt.metavar);
    o << "  " << lhs;
    for (size_t i = lhs.size(); i < 28; ++i) o << ' ';
    o << ' ' << opt.help;
    if (opt.required) o << " (required)";
    if (!opt.fallback.empty()) o << " [default: " << opt.fallback << "]";
    o << "\n";
  }
  o << "  --help                       show this help\n";
  return o.str();
}

Args Command::parse(const std::vector<std::string>& argv) const {
  Args a;
  a.command_ = name;
  for (const auto& opt : options)
    if (!opt.fallback.empty()) a.defaults_[opt.name] = opt.fallback;
  auto find = [&](const std::string& n) -> const Option* {
    for (const auto& opt : options)
      if (opt.name == n) return &opt;
    return nullptr;
  };
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& s = argv[i];
    if (s.rfind("--", 0) == 0 && s.size() > 2) {
      std::string n = s.substr(2), v;
      bool inline_value = false;
      if (auto eq = n.find('='); eq != std::string::npos) {
        v = n.substr(eq + 1);
        n = n.substr(0, eq);
        inline_value = true;
      }
      if (n == "set") {  // --set key.path=value
        if (!inline_value) {
          if (i + 1 >= argv.size()) throw InputError("--set: expected key.path=value");
          v = argv[++i];
        }
        a.overrides_.push_back(v);
        continue;
      }
      const Option* opt = find(n);
      if (!opt) {
        std::vector<std::string> names{"help"};
        for (const auto& o : options) names.push_back(o.name);
        const std::string near = closest_name(n, names);
        throw InputError("grpo " + name + ": unknown option --" + n +
                         (near.empty() ? "" : " (did you mean --" + near + "?)") + " (see grpo " + name + " --help)");
      }
      if (opt->metavar.empty()) {
        if (inline_value) throw InputError("--" + n + " takes no value");
        a.values_[n] = "true";
      } else {
        if (!inline_value) {
          if (i + 1 >= argv.size()) throw InputError("--" + n + ": expected " + opt->metavar);
          v = argv[++i];
        }
        a.values_[n] = v;
      }
    } else if (s.find('=') != std::string::npos && s.find('=') > 0 && s[0] != '/' && s[0] != '.') {
      a.overrides_.push_back(s);
    } else {
      a.positional_.push_back(s);
    }
  }
  if (find("config") && !a.positional_.empty()) {  // CONFIG, the same as --config CONFIG
    const std::string file = a.positional_.front();
    std::error_code ec;
    if (a.has("config") && a.values_["config"] != file && std::filesystem::exists(file, ec))
      throw InputError("grpo " + name + ": the config is given twice, as '" + file + "' and --config '" +
                       a.values_["config"] + "' (give one)");
    if (!a.has("config") || a.values_["config"] == file) {
      a.values_["config"] = file;
      a.positional_.erase(a.positional_.begin());
    }
  }
  if (a.positional_.size() > max_positional)
    throw InputError("grpo " + name + ": unexpected argument '" + a.positional_[max_positional] +
                     "' (an override is key.path=value; see grpo " + name + " --help)");
  for (const auto& opt : options)
    if (opt.required && !a.has(opt.name))
      throw InputError("grpo " + name + ": missing required option --" + opt.name + " " + opt.metavar);
  return a;
}

static void print_overview(std::ostream& o) {
  o << "grpo — reinforcement learning for reasoning models (GRPO, R1-Zero style)\n\n"
       "usage: grpo COMMAND [options]   (grpo COMMAND --help for its options; grpo --version)\n\ncommands:\n";
  for (const auto& [n, c] : command_registry()) {
    o << "  " << n;
    for (size_t i = n.size(); i < 16; ++i) o << ' ';
    o << ' ' << c.summary << "\n";
  }
}

std::string version_line() { return std::string("grpo ") + GRPO_VERSION; }

int run_cli(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    print_overview(std::cout);
    return args.empty() ? 2 : 0;
  }
  if (args[0] == "--version") {
    std::cout << version_line() << "\n";
    return 0;
  }
  auto it = command_registry().find(args[0]);
  if (it == command_registry().end()) {
    std::vector<std::string> names{"--help", "--version"};
    for (const auto& [n, c] : command_registry()) names.push_back(n);
    const std::string near = closest_name(args[0], names);
    std::cerr << "grpo: unknown command '" << args[0] << "'" << (near.empty() ? "" : " (did you mean " + near + "?)")
              << "\n\n";
    print_overview(std::cerr);
    return 2;
  }
  const Command& cmd = it->second;
  std::vector<std::string> rest(args.begin() + 1, args.end());
  for (const auto& s : rest)
    if (s == "--help" || s == "-h") {
      std::cout << cmd.help();
      return 0;
    }
  try {
    return cmd.run(cmd.parse(rest));
  } catch (const InputError& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}

Config config_from_args(const Args& a, const ConfigArgs& how) {
  if (how.required && !a.has("config"))
    throw InputError("grpo " + a.command() + ": give the config (CONFIG or --config FILE)");
  Config c = a.has("config") ? Config::load(a.get("config")) : Config::parse("", "<defaults>");
  for (const auto& o : a.overrides()) c.apply_override(o);
  if (!how.threads_key.empty() && a.has("threads"))
    c.apply_override(how.threads_key + "=" + std::to_string(a.get_int("threads", 0, 4096)));
  return c;
}

Option dry_run_option() { return {"dry-run", "", "print the resolved config, model size and step cost; do not train"}; }
Option print_config_option() { return {"print-config", "", "the same as --dry-run"}; }

bool dry_run(const Args& a) { return a.flag("dry-run") || a.flag("print-config"); }

}  // namespace grpo
