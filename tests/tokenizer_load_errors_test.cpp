// Every kind of bad tokenizer.json / tokenizer_config.json gives an InputError naming the file
// and the JSON key.
#include <gtest/gtest.h>

#include "tokenizer/tokenizer.h"
#include "tokenizer_test_util.h"

using grpo::Tokenizer;
using grpo::testing::error_of;
using grpo::testing::fixture_json;
using grpo::testing::TempDir;
using nlohmann::json;

namespace {

// Loads the fixture after `mutate` edits its JSON; returns the error message.
std::string load_error(const std::function<void(json&)>& mutate) {
  TempDir dir;
  json j = fixture_json();
  mutate(j);
  const std::string path = dir.write("tokenizer.json", j.dump());
  std::string err = error_of([&] { Tokenizer::load(path); });
  if (!err.empty()) EXPECT_NE(err.find(path), std::string::npos) << "error does not name the file: " << err;
  return err;
}

#define EXPECT_HAS(haystack, needle) EXPECT_NE((haystack).find(needle), std::string::npos) << (haystack)

}  // namespace

TEST(TokenizerLoadErrors, MissingFileAndDirectoryWithoutTokenizerJson) {
  EXPECT_HAS(error_of([] { Tokenizer::load("/nonexistent/tokenizer.json"); }),
             "/nonexistent/tokenizer.json: cannot open file");
  TempDir dir;
  EXPECT_HAS(error_of([&] { Tokenizer::load(dir.path()); }), dir.path() + "/tokenizer.json: cannot open file");
}

TEST(TokenizerLoadErrors, MalformedJsonAndWrongTopLevel) {
  TempDir dir;
  const std::string bad = dir.write("tokenizer.json", "{\"model\": {\"vocab\": ");
  EXPECT_HAS(error_of([&] { Tokenizer::load(bad); }), bad + ": invalid JSON");
  const std::string arr = dir.write("tokenizer.json", "[1, 2]");
  EXPECT_HAS(error_of([&] { Tokenizer::load(arr); }), "expected a JSON object at the top level");
}

TEST(TokenizerLoadErrors, ModelMissingOrNotBpe) {
  EXPECT_HAS(load_error([](json& j) { j.erase("model"); }), "key 'model': required key is missing");
  EXPECT_HAS(load_error([](json& j) { j["model"]["type"] = "WordPiece"; }),
             "key 'model.type': unsupported model type \"WordPiece\"");
}

TEST(TokenizerLoadErrors, VocabMissingOrBad) {
  EXPECT_HAS(load_error([](json& j) { j["model"].erase("vocab"); }), "key 'model.vocab': required key is missing");
  EXPECT_HAS(load_error([](json& j) { j["model"]["vocab"] = json::array(); }),
             "key 'model.vocab': expected an object, got an array");
  EXPECT_HAS(load_error([](json& j) { j["model"]["vocab"]["!"] = "four"; }),
             "key 'model.vocab.!': expected a non-negative 32-bit integer id, got a string");
  EXPECT_HAS(load_error([](json& j) { j["model"]["vocab"]["!"] = 5; }), "is also used by");
  EXPECT_HAS(load_error([](json& j) { j["model"]["vocab"]["zzzz"] = 1 << 25; }), "over the limit");
}

TEST(TokenizerLoadErrors, BadMerges) {
  EXPECT_HAS(load_error([](json& j) {
               j["model"]["merges"][0] = json::array({"Ġ", "not-a-token"});
             }),
             "key 'model.merges[0]': merge names \"not-a-token\", which is not in model.vocab");
  EXPECT_HAS(load_error([](json& j) { j["model"]["merges"][3] = "a b c"; }),
             "key 'model.merges[3]': expected \"left right\"");
  EXPECT_HAS(load_error([](json& j) { j["model"]["merges"][4] = 17; }),
             "key 'model.merges[4]': expected \"left right\" or [left, right], got an integer");
  EXPECT_HAS(load_error([](json& j) {
               j["model"]["merges"][5] = json::array({"<think>", "</think>"});
             }),
             "merge names \"<think></think>\", which is not in model.vocab");
  EXPECT_HAS(load_error([](json& j) { j["model"]["merges"] = "x"; }), "key 'model.merges': expected an array");
}

TEST(TokenizerLoadErrors, UnsupportedBpeOptions) {
  EXPECT_HAS(load_error([](json& j) { j["model"]["dropout"] = 0.1; }), "key 'model.dropout'");
  EXPECT_HAS(load_error([](json& j) { j["model"]["byte_fallback"] = true; }), "key 'model.byte_fallback'");
  EXPECT_HAS(load_error([](json& j) { j["model"]["continuing_subword_prefix"] = "##"; }),
             "key 'model.continuing_subword_prefix'");
  EXPECT_HAS(load_error([](json& j) { j["model"]["unk_token"] = "<unk>"; }),
             "key 'model.unk_token': \"<unk>\" is not in model.vocab");
  EXPECT_HAS(load_error([](json& j) { j["model"]["ignore_merges"] = "yes"; }),
             "key 'model.ignore_merges': expected a boolean, got a string");
}

TEST(TokenizerLoadErrors, UnsupportedOrBadPreTokenizer) {
  EXPECT_HAS(load_error([](json& j) {
               j["pre_tokenizer"]["pretokenizers"][2] = {{"type", "Whitespace"}};
             }),
             "key 'pre_tokenizer.pretokenizers[2].type': unsupported pre-tokenizer type \"Whitespace\"");
  EXPECT_HAS(load_error([](json& j) { j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "(\\p{N}"; }),
             "key 'pre_tokenizer.pretokenizers[0].pattern.Regex': the regex does not compile");
  EXPECT_HAS(load_error([](json& j) { j["pre_tokenizer"]["pretokenizers"][1]["pattern"]["Regex"] = "[a&&b]"; }),
             "key 'pre_tokenizer.pretokenizers[1].pattern.Regex': unsupported regex");
  EXPECT_HAS(load_error([](json& j) {
               j["pre_tokenizer"]["pretokenizers"][0]["pattern"] = {{"Glob", "*"}};
             }),
             "key 'pre_tokenizer.pretokenizers[0].pattern': expected {\"Regex\": pattern} or {\"String\": text}");
  EXPECT_HAS(load_error([](json& j) { j["pre_tokenizer"]["pretokenizers"][0]["behavior"] = "Sideways"; }),
             "key 'pre_tokenizer.pretokenizers[0].behavior': expected one of Removed, Isolated");
  EXPECT_HAS(load_error([](json& j) { j["pre_tokenizer"]["pretokenizers"][0]["invert"] = 1; }),
             "key 'pre_tokenizer.pretokenizers[0].invert': expected a boolean");
}

TEST(TokenizerLoadErrors, ByteLevelPreTokenizerMissingOrMisplaced) {
  EXPECT_HAS(load_error([](json& j) { j["pre_tokenizer"] = nullptr; }),
             "key 'pre_tokenizer': a ByteLevel pre-tokenizer is required");
  EXPECT_HAS(load_error([](json& j) { j["pre_tokenizer"]["pretokenizers"].erase(3); }),
             "key 'pre_tokenizer': a ByteLevel pre-tokenizer is required");
  EXPECT_HAS(load_error([](json& j) {
               auto& list = j["pre_tokenizer"]["pretokenizers"];
               std::swap(list[0], list[3]);
             }),
             "ByteLevel must be the last pre-tokenizer step (found at step 1 of 4)");
}

TEST(TokenizerLoadErrors, UnsupportedNormalizerAndDecoder) {
  EXPECT_HAS(load_error([](json& j) {
               j["normalizer"] = {{"type", "Sequence"}, {"normalizers", {{{"type", "NFC"}}, {{"type", "Lowercase"}}}}};
             }),
             "key 'normalizer.normalizers[1].type': unsupported normalizer type \"Lowercase\"");
  EXPECT_HAS(load_error([](json& j) {
               j["decoder"] = {{"type", "Metaspace"}};
             }),
             "key 'decoder.type': unsupported decoder type \"Metaspace\"");
  EXPECT_HAS(load_error([](json& j) { j["decoder"] = nullptr; }), "key 'decoder': a ByteLevel decoder is required");
}

TEST(TokenizerLoadErrors, BadAddedTokens) {
  EXPECT_HAS(load_error([](json& j) { j["added_tokens"][1].erase("content"); }),
             "key 'added_tokens[1].content': expected a non-empty string");
  EXPECT_HAS(load_error([](json& j) { j["added_tokens"][0]["id"] = -3; }), "key 'added_tokens[0].id'");
  EXPECT_HAS(load_error([](json& j) { j["added_tokens"][2]["lstrip"] = "no"; }),
             "key 'added_tokens[2].lstrip': expected a boolean, got a string");
  EXPECT_HAS(load_error([](json& j) { j["added_tokens"] = {{"id", 1}}; }), "key 'added_tokens': expected an array");
}

TEST(TokenizerLoadErrors, BadTokenizerConfig) {
  TempDir dir;
  dir.write("tokenizer.json", fixture_json().dump());
  const std::string cfg = dir.write("tokenizer_config.json", "{\"bos_token\": ");
  EXPECT_HAS(error_of([&] { Tokenizer::load(dir.path()); }), cfg + ": invalid JSON");
  dir.write("tokenizer_config.json", R"({"bos_token": "<s>"})");
  EXPECT_HAS(error_of([&] { Tokenizer::load(dir.path()); }),
             cfg + ": key 'bos_token': token \"<s>\" is not in the vocabulary");
  dir.write("tokenizer_config.json", R"({"eos_token": 7})");
  EXPECT_HAS(error_of([&] { Tokenizer::load(dir.path()); }), cfg + ": key 'eos_token': expected a string or an object");
}
