// YAML configs with `a.b=c` overrides and typed, validated access.
//
//   auto cfg = Config::load("configs/tiny-zero.yaml", {"train.steps=10"});
//   int steps = cfg.get<int>("train.steps");          // required
//   double lr = cfg.get<double>("optim.lr", 1e-6);      // with default
//
// Every error is an InputError naming the file, the dotted key and the expected type, e.g.
//   configs/x.yaml: key 'train.steps': expected an integer, got "ten"
#pragma once
#include <yaml-cpp/yaml.h>

#include <nlohmann/json.hpp>

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common/error.h"

namespace grpo {

// Thread-safety: not thread-safe, const methods included (yaml-cpp); copies and sub() share one YAML tree.
class Config {
 public:
  Config() = default;
  static Config load(const std::string& path, const std::vector<std::string>& overrides = {});
  static Config parse(const std::string& yaml_text, const std::string& source);

  // "a.b.c=value": the value is read as YAML (so 3 is an int, [1,2] a list, "x" a string);
  // missing intermediate maps are created.
  void apply_override(const std::string& assignment);

  bool has(const std::string& key) const;
  template <class T>
  T get(const std::string& key) const;
  // The value at key, or `fallback` when it is absent (written into the tree when recording).
  template <class T>
  T get(const std::string& key, const T& fallback) const;
  // A path key's value, or `fallback` when absent; "" stays "". A relative path written in the
  // config file resolves against the file's directory, one given by an override (key=value on
  // the command line) or in a config made by parse() against the working directory.
  std::string get_path(const std::string& key, const std::string& fallback = "") const;
  // get_path of each element of a list of paths (an empty list when absent).
  std::vector<std::string> get_paths(const std::string& key) const;
  // The sub-tree at key (an empty map when absent, added to the tree when recording), keeping the
  // source name and key prefix.
  Config sub(const std::string& key) const;
  // From now on (until record_defaults(false)) this config, its copies and sub() views write the
  // fallback of every get(key, fallback) of an absent key into the shared tree, so that after the
  // options parsers have read it, dump() is the resolved config with every default (`--dry-run`,
  // the run directory's config.yaml). has() then sees the recorded keys.
  void record_defaults(bool on = true) { *recording_ = on; }
  // Keys directly under this node.
  std::vector<std::string> keys() const;
  // Fails naming the first key not in `allowed` (catches typos such as `trian.steps`), with
  // "did you mean 'train.steps'?" when an allowed key is close.
  void require_known(const std::set<std::string>& allowed) const;

  const std::string& source() const { return source_; }
  // "file: key 'prefix.key'": how errors name a key of this config.
  std::string where(const std::string& key) const;
  const YAML::Node& node() const { return root_; }
  std::string dump() const;

 private:
  // YAML::Node is a shared handle: taking it by value copies a reference count, not the tree.
  Config(YAML::Node root, std::string source, std::string prefix)  // NOLINT(performance-unnecessary-value-param)
      : root_(root), source_(std::move(source)), prefix_(std::move(prefix)) {}
  Config sub_view(YAML::Node node, std::string prefix) const;  // shares dir_, overridden_, recording_
  // get_path's rule for one value of key.
  std::string resolve_path(const std::string& key, const std::string& value) const;
  YAML::Node find(const std::string& key) const;  // null node when absent
  // Writes `value` at key, creating the maps on the way (recording defaults).
  void set_node(const std::string& key, const YAML::Node& value) const;
  [[noreturn]] void type_error(const std::string& key, const char* expected, const YAML::Node& n) const;

  YAML::Node root_ = YAML::Node(YAML::NodeType::Map);
  std::string source_ = "<config>";
  std::string prefix_;
  std::string dir_;  // the config file's directory ("" for parse(): the working directory)
  std::shared_ptr<std::set<std::string>> overridden_ = std::make_shared<std::set<std::string>>();  // full keys
  std::shared_ptr<bool> recording_ = std::make_shared<bool>(false);  // record_defaults(), shared with sub()s
};

// A YAML tree as JSON: quoted scalars stay strings; plain scalars become null/bool/int/float when
// they read as one.
nlohmann::json yaml_to_json(const YAML::Node& node);

// Explicit instantiations live in config.cpp for: bool, int, int64_t, double, std::string,
// std::vector<int>, std::vector<int64_t>, std::vector<double>, std::vector<std::string>.

}  // namespace grpo
