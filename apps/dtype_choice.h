// `auto` dtypes in the commands: the name a flag or config key resolves to on this CPU
// (model/model_options.h), and the line that says so on stderr, so that a user always sees what
// `auto` chose and why.
#pragma once
#include <initializer_list>
#include <iostream>
#include <string>

#include "common/cli.h"
#include "common/config.h"
#include "model/model_options.h"

namespace grpo {

// `given` with "auto" resolved; for "auto", says the choice on stderr as "WHAT auto = NAME (REASON)".
inline std::string say_dtype(const std::string& given, const std::string& what) {
  if (given != "auto") return given;
  const AutoDtype a = auto_dtype();
  std::cerr << what << " auto = " << a.name << " (" << a.reason << ")" << std::endl;
  return a.name;
}

// The value of `--dtype`, with "auto" resolved and said ("COMMAND: --dtype auto = ...").
inline std::string dtype_flag(const Args& args, const std::string& command) {
  return say_dtype(args.get("dtype"), command + ": --dtype");
}

// Says, for each of `keys` set to "auto" in `config`, what it resolves to (the config readers
// resolve it themselves).
inline void say_auto_dtypes(const Config& config, std::initializer_list<const char*> keys, const std::string& command) {
  for (const char* key : keys)
    if (config.has(key)) say_dtype(config.get<std::string>(key), command + ": " + key);
}

}  // namespace grpo
