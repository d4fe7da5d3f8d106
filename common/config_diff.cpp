#include "common/config_diff.h"

#include <map>

namespace grpo {
namespace {

std::string flow_text(const YAML::Node& n) {
  YAML::Emitter out;
  out << YAML::Flow << n;
  return out.c_str();
}

// dotted key -> the value's text, for every leaf (scalars, lists; empty maps).
void flatten(const YAML::Node& n, const std::string& path, std::map<std::string, std::string>& out) {
  if (n.IsMap() && n.size() > 0) {
    for (const auto& kv : n) flatten(kv.second, path.empty() ? kv.first.Scalar() : path + "." + kv.first.Scalar(), out);
  } else if (!path.empty()) {
    out[path] = flow_text(n);
  }
}

}  // namespace

std::vector<std::string> config_differences(const Config& before, const Config& now,
                                            const std::set<std::string>& ignored) {
  std::map<std::string, std::string> a, b;
  flatten(before.node(), "", a);
  flatten(now.node(), "", b);
  std::map<std::string, std::pair<std::string, std::string>> changed;
  for (const auto& [k, v] : a) changed[k] = {v, b.count(k) ? b.at(k) : "(unset)"};
  for (const auto& [k, v] : b)
    if (!a.count(k)) changed[k] = {"(unset)", v};
  std::vector<std::string> lines;
  for (const auto& [k, v] : changed)
    if (v.first != v.second && !ignored.count(k)) lines.push_back(k + ": " + v.first + " -> " + v.second);
  return lines;
}

}  // namespace grpo
