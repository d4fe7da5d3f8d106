// Helpers for the tokenizer tests: the fixture's JSON, temp dirs, and error capture.
#pragma once
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include "common/error.h"
#include "file_testutil.h"

namespace grpo::testing {

inline const std::string& fixture_dir() {
  static const std::string dir = std::string(GRPO_TEST_DATA) + "/bpe-tokenizer";
  return dir;
}

inline nlohmann::json fixture_json() {
  std::ifstream in(fixture_dir() + "/tokenizer.json");
  return nlohmann::json::parse(in);
}

// A fresh directory under the system temp dir, removed with its contents on destruction.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "grpo_tok_XXXXXX").string();
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string write(const std::string& name, const std::string& text) const {
    std::string p = path_ + "/" + name;
    std::ofstream(p, std::ios::binary) << text;
    return p;
  }

 private:
  std::string path_;
};

// The InputError message f throws, or "" when it throws none.
using ::grpo::ckpt_test::error_of;

}  // namespace grpo::testing
