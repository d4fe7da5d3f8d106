#include "train/checkpoints.h"

#include <algorithm>
#include <iomanip>
#include <sstream>

namespace fs = std::filesystem;

namespace grpo {

std::string checkpoint_name(int64_t step) {
  std::ostringstream s;
  s << "step-" << std::setw(6) << std::setfill('0') << step;
  return s.str();
}

std::vector<std::pair<int64_t, fs::path>> list_checkpoints(const fs::path& dir) {
  std::vector<std::pair<int64_t, fs::path>> out;
  if (!fs::is_directory(dir)) return out;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (!e.is_directory() || name.rfind("step-", 0) != 0 || name.find('.') != std::string::npos) continue;
    try {
      out.emplace_back(std::stoll(name.substr(5)), e.path());
    } catch (...) {}
  }
  std::sort(out.rbegin(), out.rend());
  return out;
}

void prune_checkpoints(const fs::path& dir, int keep) {
  const auto all = list_checkpoints(dir);
  for (size_t i = static_cast<size_t>(std::max(1, keep)); i < all.size(); ++i) fs::remove_all(all[i].second);
}

}  // namespace grpo
