#include "common/config.h"

#include <yaml-cpp/depthguard.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/did_you_mean.h"
#include "common/json_parse.h"

namespace grpo {
namespace {

std::vector<std::string> split_key(const std::string& key) {
  std::vector<std::string> parts;
  std::string cur;
  for (char c : key) {
    if (c == '.') {
      parts.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  parts.push_back(cur);
  return parts;
}

std::string show(const YAML::Node& n) {
  if (n.IsScalar()) return "\"" + n.Scalar() + "\"";
  if (n.IsSequence()) return "a list";
  if (n.IsMap()) return "a map";
  return "null";
}

template <class T>
bool convert_scalar(const YAML::Node& n, T& out);

template <>
bool convert_scalar<std::string>(const YAML::Node& n, std::string& out) {
  if (!n.IsScalar()) return false;
  out = n.Scalar();
  return true;
}
template <>
bool convert_scalar<bool>(const YAML::Node& n, bool& out) {
  if (!n.IsScalar()) return false;
  const std::string& s = n.Scalar();
  if (s == "true" || s == "True" || s == "yes" || s == "on") {
    out = true;
    return true;
  }
  if (s == "false" || s == "False" || s == "no" || s == "off") {
    out = false;
    return true;
  }
  return false;
}
template <>
bool convert_scalar<int64_t>(const YAML::Node& n, int64_t& out) {
  if (!n.IsScalar()) return false;
  const std::string& s = n.Scalar();
  if (s.empty()) return false;
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(s.c_str(), &end, 10);
  if (errno || *end != '\0') {
    // Accept 1e6 style integers when they are exact.
    double d = std::strtod(s.c_str(), &end);
    if (*end != '\0' || !std::isfinite(d) || d != std::floor(d) || std::fabs(d) > 9e18) return false;
    v = static_cast<long long>(d);
  }
  out = v;
  return true;
}
template <>
bool convert_scalar<int>(const YAML::Node& n, int& out) {
  int64_t v;
  if (!convert_scalar<int64_t>(n, v) || v < INT32_MIN || v > INT32_MAX) return false;
  out = static_cast<int>(v);
  return true;
}
template <>
bool convert_scalar<double>(const YAML::Node& n, double& out) {
  if (!n.IsScalar()) return false;
  const std::string& s = n.Scalar();
  if (s == ".inf" || s == "inf") {
    out = INFINITY;
    return true;
  }
  if (s == "-.inf" || s == "-inf") {
    out = -INFINITY;
    return true;
  }
  char* end = nullptr;
  out = std::strtod(s.c_str(), &end);
  return !s.empty() && *end == '\0';
}

// Whether the null node `n` of the YAML `text` is written out (null, ~) rather than left empty.
bool explicit_null(const YAML::Node& n, const std::string& text) {
  const size_t pos = static_cast<size_t>(std::max(0, n.Mark().pos));
  for (const char* word : {"~", "null", "Null", "NULL"})
    if (text.compare(pos, std::strlen(word), word) == 0) return true;
  return false;
}

// Walks the tree of `text` without recursion: nesting deeper than kMaxInputDepth, a key given
// twice in one map, a key that is not a scalar and a key left empty (a file cut short after
// "optim:"; `null` and `~` are values) are InputErrors naming the key and its line.
void check_tree(const YAML::Node& root, const std::string& text, const std::string& source) {
  struct Item {
    YAML::Node node;
    std::string path;
    int depth;
  };
  std::vector<Item> todo{{root, "", 1}};
  auto at = [&](const std::string& path, const YAML::Node& n) {
    return source + ": key '" + path + "' (line " + std::to_string(n.Mark().line + 1) + ")";
  };
  while (!todo.empty()) {
    Item it = todo.back();
    todo.pop_back();
    if (it.depth > kMaxInputDepth)
      throw InputError(source + ": YAML nested deeper than the limit of " + std::to_string(kMaxInputDepth) +
                       " levels (line " + std::to_string(it.node.Mark().line + 1) + ")");
    if (it.node.IsSequence()) {
      for (size_t i = 0; i < it.node.size(); ++i)
        todo.push_back({it.node[i], it.path + "[" + std::to_string(i) + "]", it.depth + 1});
    } else if (it.node.IsMap()) {
      std::set<std::string> seen;
      for (const auto& kv : it.node) {
        if (!kv.first.IsScalar())
          throw InputError(source + ": a key under '" + it.path + "' (line " +
                           std::to_string(kv.first.Mark().line + 1) + ") is not a scalar");
        const std::string path = it.path.empty() ? kv.first.Scalar() : it.path + "." + kv.first.Scalar();
        if (!seen.insert(kv.first.Scalar()).second) throw InputError(at(path, kv.first) + ": duplicate key");
        if (kv.second.IsNull() && !explicit_null(kv.second, text))
          throw InputError(at(path, kv.first) + ": no value (remove the key, or is the file cut short?)");
        todo.push_back({kv.second, path, it.depth + 1});
      }
    }
  }
}

YAML::Node load_yaml(const std::string& text, const std::string& source) {
  try {
    return YAML::Load(text);
  } catch (const YAML::DeepRecursion& e) {
    throw InputError(source + ": YAML nested deeper than the limit of " + std::to_string(kMaxInputDepth) +
                     " levels (line " + std::to_string(e.mark.line + 1) + ")");
  }
}

template <class T>
const char* type_name();
template <>
const char* type_name<bool>() {
  return "a boolean (true/false)";
}
template <>
const char* type_name<int>() {
  return "an integer";
}
template <>
const char* type_name<int64_t>() {
  return "an integer";
}
template <>
const char* type_name<double>() {
  return "a number";
}
template <>
const char* type_name<std::string>() {
  return "a string";
}

// A recorded default as YAML: doubles in the fewest digits that read back the same (0.2, not
// yaml-cpp's 0.20000000000000001).
template <class T>
YAML::Node as_node(const T& v) {
  if constexpr (std::is_same_v<T, double>) {
    char buf[32];
    for (int digits = 1; digits <= 17; ++digits) {
      std::snprintf(buf, sizeof buf, "%.*g", digits, v);
      if (std::strtod(buf, nullptr) == v) break;
    }
    return YAML::Node(std::string(buf));
  } else {
    return YAML::Node(v);
  }
}

}  // namespace

Config Config::load(const std::string& path, const std::vector<std::string>& overrides) {
  std::ifstream in(path);
  if (!in) throw InputError(path + ": cannot open config file");
  std::stringstream ss;
  ss << in.rdbuf();
  Config c = parse(ss.str(), path);
  c.dir_ = std::filesystem::path(path).parent_path().string();
  for (const auto& o : overrides) c.apply_override(o);
  return c;
}

Config Config::parse(const std::string& yaml_text, const std::string& source) {
  YAML::Node root;
  try {
    root = load_yaml(yaml_text, source);
  } catch (const YAML::Exception& e) {
    throw InputError(source + ": invalid YAML at line " + std::to_string(e.mark.line + 1) + ", column " +
                     std::to_string(e.mark.column + 1) + ": " + e.msg);
  }
  if (root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
  if (!root.IsMap()) throw InputError(source + ": expected a YAML map at the top level");
  check_tree(root, yaml_text, source);
  return Config(root, source, "");
}

void Config::apply_override(const std::string& assignment) {
  auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) throw InputError("override '" + assignment + "': expected key.path=value");
  std::string key = assignment.substr(0, eq);
  std::string text = assignment.substr(eq + 1);
  YAML::Node value;
  const std::string source = "override '" + assignment + "'";
  try {
    value = load_yaml(text, source);
  } catch (const YAML::Exception&) {
    value = YAML::Node(text);
  }
  check_tree(value, text, source);
  auto parts = split_key(key);
  // yaml-cpp nodes are handles whose operator= writes through; reset() rebinds.
  YAML::Node cur;
  cur.reset(root_);
  std::string path;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    if (parts[i].empty()) throw InputError("override '" + assignment + "': empty key segment");
    path += (path.empty() ? "" : ".") + parts[i];
    YAML::Node child = cur[parts[i]];
    if (!child.IsDefined() || child.IsNull()) {
      cur[parts[i]] = YAML::Node(YAML::NodeType::Map);
      child.reset(cur[parts[i]]);
    } else if (!child.IsMap()) {
      throw InputError("override '" + assignment + "': " + where(path) + " is not a map");
    }
    cur.reset(child);
  }
  cur[parts.back()] = value;
  overridden_->insert(prefix_.empty() ? key : prefix_ + "." + key);
}

YAML::Node Config::find(const std::string& key) const {
  // yaml-cpp's operator= writes through the handle; reset() rebinds it.
  YAML::Node cur;
  cur.reset(root_);
  for (const auto& part : split_key(key)) {
    if (!cur.IsMap()) return YAML::Node();
    YAML::Node next = static_cast<const YAML::Node&>(cur)[part];
    if (!next.IsDefined()) return YAML::Node();
    cur.reset(next);
  }
  return cur;
}

bool Config::has(const std::string& key) const {
  YAML::Node n = find(key);
  return n.IsDefined() && !n.IsNull();
}

std::string Config::where(const std::string& key) const {
  return source_ + ": key '" + (prefix_.empty() ? key : prefix_ + "." + key) + "'";
}

void Config::type_error(const std::string& key, const char* expected, const YAML::Node& n) const {
  throw InputError(where(key) + ": expected " + expected + ", got " + show(n));
}

template <class T>
T Config::get(const std::string& key) const {
  YAML::Node n = find(key);
  if (!n.IsDefined() || n.IsNull()) throw InputError(where(key) + ": required key is missing");
  if constexpr (std::is_same_v<T, std::vector<int>> || std::is_same_v<T, std::vector<int64_t>> ||
                std::is_same_v<T, std::vector<double>> || std::is_same_v<T, std::vector<std::string>>) {
    using E = typename T::value_type;
    if (!n.IsSequence()) type_error(key, (std::string("a list of ") + type_name<E>()).c_str(), n);
    T out;
    for (size_t i = 0; i < n.size(); ++i) {
      E e;
      if (!convert_scalar<E>(n[i], e)) type_error(key + "[" + std::to_string(i) + "]", type_name<E>(), n[i]);
      out.push_back(e);
    }
    return out;
  } else {
    T out;
    if (!convert_scalar<T>(n, out)) type_error(key, type_name<T>(), n);
    return out;
  }
}

template <class T>
T Config::get(const std::string& key, const T& fallback) const {
  if (has(key)) return get<T>(key);
  if (*recording_) set_node(key, as_node(fallback));
  return fallback;
}

void Config::set_node(const std::string& key, const YAML::Node& value) const {
  // yaml-cpp nodes are handles whose operator= writes through; reset() rebinds.
  YAML::Node cur;
  cur.reset(root_);
  const auto parts = split_key(key);
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    YAML::Node child = cur[parts[i]];
    if (!child.IsMap()) {
      cur[parts[i]] = YAML::Node(YAML::NodeType::Map);
      child.reset(cur[parts[i]]);
    }
    cur.reset(child);
  }
  cur[parts.back()] = value;
}

Config Config::sub(const std::string& key) const {
  YAML::Node n = find(key);
  std::string prefix = prefix_.empty() ? key : prefix_ + "." + key;
  if (!n.IsDefined() || n.IsNull()) {
    if (!*recording_) return sub_view(YAML::Node(YAML::NodeType::Map), prefix);
    set_node(key, YAML::Node(YAML::NodeType::Map));
    n = find(key);
  }
  if (!n.IsMap()) type_error(key, "a map", n);
  return sub_view(n, prefix);
}

Config Config::sub_view(YAML::Node node, std::string prefix) const {  // NOLINT(performance-unnecessary-value-param)
  Config c(node, source_, std::move(prefix));
  c.dir_ = dir_;
  c.overridden_ = overridden_;
  c.recording_ = recording_;
  return c;
}

std::string Config::get_path(const std::string& key, const std::string& fallback) const {
  if (!has(key)) return get<std::string>(key, fallback);
  return resolve_path(key, get<std::string>(key));
}

std::vector<std::string> Config::get_paths(const std::string& key) const {
  std::vector<std::string> paths = get<std::vector<std::string>>(key, {});
  for (auto& p : paths) p = resolve_path(key, p);
  return paths;
}

std::string Config::resolve_path(const std::string& key, const std::string& value) const {
  if (value.empty() || dir_.empty() || std::filesystem::path(value).is_absolute()) return value;
  // An override of the key or of a map above it came from the command line: the working directory.
  const std::string full = prefix_.empty() ? key : prefix_ + "." + key;
  for (size_t end = full.find('.');; end = full.find('.', end + 1)) {
    if (overridden_->count(full.substr(0, end))) return value;
    if (end == std::string::npos) break;
  }
  return (std::filesystem::path(dir_) / value).lexically_normal().string();
}

std::vector<std::string> Config::keys() const {
  std::vector<std::string> out;
  for (auto it = root_.begin(); it != root_.end(); ++it) out.push_back(it->first.Scalar());
  return out;
}

void Config::require_known(const std::set<std::string>& allowed) const {
  for (const auto& k : keys()) {
    if (allowed.count(k)) continue;
    std::string list;
    for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
    const std::string near = closest_name(k, {allowed.begin(), allowed.end()});
    throw InputError(
        where(k) + ": unknown key" +
        (near.empty() ? "" : " (did you mean '" + (prefix_.empty() ? near : prefix_ + "." + near) + "'?)") +
        " (expected one of: " + list + ")");
  }
}

std::string Config::dump() const {
  YAML::Emitter out;
  out << root_;
  return out.c_str();
}

#define GRPO_CONFIG_INSTANTIATE(T)                     \
  template T Config::get<T>(const std::string&) const; \
  template T Config::get<T>(const std::string&, const T&) const;
GRPO_CONFIG_INSTANTIATE(bool)
GRPO_CONFIG_INSTANTIATE(int)
GRPO_CONFIG_INSTANTIATE(int64_t)
GRPO_CONFIG_INSTANTIATE(double)
GRPO_CONFIG_INSTANTIATE(std::string)
GRPO_CONFIG_INSTANTIATE(std::vector<int>)
GRPO_CONFIG_INSTANTIATE(std::vector<int64_t>)
GRPO_CONFIG_INSTANTIATE(std::vector<double>)
GRPO_CONFIG_INSTANTIATE(std::vector<std::string>)
#undef GRPO_CONFIG_INSTANTIATE

nlohmann::json yaml_to_json(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null: return nullptr;
    case YAML::NodeType::Sequence: {
      nlohmann::json a = nlohmann::json::array();
      for (const auto& item : node) a.push_back(yaml_to_json(item));
      return a;
    }
    case YAML::NodeType::Map: {
      nlohmann::json o = nlohmann::json::object();
      for (const auto& kv : node) o[kv.first.Scalar()] = yaml_to_json(kv.second);
      return o;
    }
    case YAML::NodeType::Scalar: break;
  }
  const std::string& s = node.Scalar();
  if (node.Tag() == "!") return s;  // quoted: always a string
  if (s == "null" || s == "~") return nullptr;
  if (s == "true" || s == "True") return true;
  if (s == "false" || s == "False") return false;
  if (!s.empty()) {
    char* end = nullptr;
    errno = 0;
    long long i = std::strtoll(s.c_str(), &end, 10);
    if (*end == '\0' && errno == 0) return static_cast<int64_t>(i);
    double d = std::strtod(s.c_str(), &end);
    if (*end == '\0' && std::isfinite(d)) return d;
  }
  return s;
}

}  // namespace grpo
