// The `grpo` command line: subcommands register themselves; each declares its options, so
// `grpo CMD --help` and error messages come from one place.
//
//   static int run_tokenize(const grpo::Args& a) { ... }
//   GRPO_COMMAND(tokenize, "JSONL text <-> token ids on stdin/stdout",
//                {{"tokenizer", "PATH", "tokenizer.json or its directory", true},
//                 {"decode", "", "ids -> text instead", false}},
//                run_tokenize);
#pragma once
#include <climits>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/config.h"

namespace grpo {

struct Option {
  std::string name;     // without the leading --
  std::string metavar;  // empty: a flag without value
  std::string help;
  bool required = false;
  std::string fallback;  // default shown in --help (and returned by get() when absent)
};

// Thread-safety: const methods may be called concurrently; a parsed value that owns its strings.
class Args {
 public:
  bool has(const std::string& name) const { return values_.count(name) > 0; }
  std::string get(const std::string& name) const;  // value or the option's default
  // The value as an integer in [min, max]; InputError "--NAME: expected an integer in [MIN, MAX],
  // got "V"" for anything else (text, trailing characters, a value outside the range).
  int64_t get_int64(const std::string& name, int64_t min = INT64_MIN, int64_t max = INT64_MAX) const;
  int get_int(const std::string& name, int min = INT_MIN, int max = INT_MAX) const {
    return static_cast<int>(get_int64(name, min, max));
  }
  double get_double(const std::string& name) const;
  bool flag(const std::string& name) const { return has(name); }
  // field = the option's value when it was given; field is left as it is otherwise.
  void update(const std::string& name, std::string& field) const {
    if (has(name)) field = get(name);
  }
  const std::vector<std::string>& positional() const { return positional_; }
  // `key.path=value` arguments and repeated --set values, in order.
  const std::vector<std::string>& overrides() const { return overrides_; }
  // The command these were parsed for ("train").
  const std::string& command() const { return command_; }

 private:
  friend struct Command;
  std::string command_;
  std::map<std::string, std::string> values_;
  std::map<std::string, std::string> defaults_;
  std::vector<std::string> positional_, overrides_;
};

struct Command {
  std::string name, summary;
  std::vector<Option> options;
  std::function<int(const Args&)> run;
  std::string usage_extra;    // e.g. "CONFIG [key.path=value ...]"
  size_t max_positional = 0;  // positional arguments it takes (train: CONFIG); more are an error

  std::string help() const;
  // Throws InputError naming the option for unknown/missing/valueless options (an unknown one
  // with "did you mean --X?" when one is close), and naming the argument for more than
  // max_positional positional ones (e.g. an override without '='). A command with a --config
  // option also takes its config as the first positional argument (then Args::get("config")
  // returns it); both given and different is an InputError.
  Args parse(const std::vector<std::string>& argv) const;
};

std::map<std::string, Command>& command_registry();
// Not thread-safe: adds to command_registry() (a plain map) at static initialisation; the map owns the Command.
struct CommandRegistrar {
  explicit CommandRegistrar(Command c);
};

// Entry point used by apps/main.cpp.
int run_cli(int argc, char** argv);

// How a command reads its config (config_from_args).
struct ConfigArgs {
  bool required = false;    // a config file must be given (else the built-in defaults are used)
  std::string threads_key;  // where --threads N goes ("run.threads"); "" when the command has none
};

// The config a command runs on: CONFIG or --config FILE with the key=value overrides, then
// `threads_key`=N when --threads N was given (an integer in [0, 4096], else an InputError naming
// --threads). Without a file: InputError "grpo CMD: give the config (CONFIG or --config FILE)"
// when `how.required`, else the built-in defaults (an empty config named "<defaults>") with the
// overrides.
Config config_from_args(const Args& a, const ConfigArgs& how = {});

// --dry-run and its alias --print-config (the training commands): print the resolved config and
// what a step costs, then exit 0 without training.
// The two options, for a command's option list (functions: commands register at static init).
Option dry_run_option();
Option print_config_option();
bool dry_run(const Args& a);

// "grpo VERSION": the project version CMake was configured with.
std::string version_line();

}  // namespace grpo

#define GRPO_CONCAT_(a, b) a##b
#define GRPO_CONCAT(a, b) GRPO_CONCAT_(a, b)
// `options` is a braced list ({...}): it must not be parenthesised. An optional last argument is
// the number of positional arguments the command takes (Command::max_positional, default 0).
// NOLINTBEGIN(bugprone-macro-parentheses)
#define GRPO_COMMAND(name, summary, usage_extra, options, fn, ...)  \
  static ::grpo::CommandRegistrar GRPO_CONCAT(grpo_cmd_, __LINE__)( \
      ::grpo::Command{name, summary, std::vector<::grpo::Option> options, fn, usage_extra, __VA_ARGS__})
// NOLINTEND(bugprone-macro-parentheses)
