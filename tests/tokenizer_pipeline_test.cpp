// The parts of the encode pipeline on their own, with HF tokenizers' documented behaviour as the
// expectation: Split behaviours, ByteLevel, Digits, added-token flags, normalizers, BPE ranks.
#include <gtest/gtest.h>

#include "tokenizer/added.h"
#include "tokenizer/bytes.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer_test_util.h"

using grpo::PreTokenized;
using grpo::PreTokenizer;
using grpo::Tokenizer;
using grpo::testing::fixture_json;
using grpo::testing::TempDir;
using nlohmann::json;
using Strings = std::vector<std::string>;

namespace {

Strings pre_tokenize(const json& node, const std::string& text) {
  PreTokenizer p = PreTokenizer::from_json(node, {"test.json", "pre_tokenizer"});
  PreTokenized out;
  p.split(text, out);
  return Strings(out.pieces.begin(), out.pieces.end());
}

json byte_level(bool add_prefix_space, bool use_regex) {
  return {{"type", "ByteLevel"}, {"add_prefix_space", add_prefix_space}, {"use_regex", use_regex}};
}

json sequence(json first) { return {{"type", "Sequence"}, {"pretokenizers", {first, byte_level(false, false)}}}; }

json split(json pattern, const std::string& behavior, bool invert) {
  return {{"type", "Split"}, {"pattern", pattern}, {"behavior", behavior}, {"invert", invert}};
}

Tokenizer load_json(const TempDir& dir, const json& j) {
  return Tokenizer::load(dir.write("tokenizer.json", j.dump()));
}

// A tiny byte-level BPE: all 256 byte symbols, then `extra` tokens, with the given merges.
json tiny_tokenizer(const Strings& extra, const std::vector<std::pair<std::string, std::string>>& merges) {
  json vocab = json::object();
  int id = 0;
  for (int b = 0; b < 256; ++b) vocab[grpo::bytelevel::to_symbols(std::string(1, static_cast<char>(b)))] = id++;
  for (const auto& t : extra) vocab[t] = id++;
  json m = json::array();
  for (const auto& [a, b] : merges) m.push_back(a + " " + b);
  return {{"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", m}}},
          {"pre_tokenizer", byte_level(false, false)},
          {"decoder", {{"type", "ByteLevel"}}}};
}

Strings tokens_of(const Tokenizer& tok, const std::string& text) {
  Strings out;
  for (int32_t id : tok.encode(text)) out.push_back(tok.id_to_token(id));
  return out;
}

}  // namespace

// HF's own Split test: pattern \w+|[^\w\s]+ inverted, on "How are you doing?".
TEST(TokenizerPipeline, SplitBehaviours) {
  const json pattern = {{"Regex", "\\w+|[^\\w\\s]+"}};
  const std::string text = "How are you doing?";
  EXPECT_EQ(pre_tokenize(sequence(split(pattern, "Removed", true)), text),
            (Strings{"How", "are", "you", "doing", "?"}));
  EXPECT_EQ(pre_tokenize(sequence(split(pattern, "Isolated", true)), text),
            (Strings{"How", " ", "are", " ", "you", " ", "doing", "?"}));
  EXPECT_EQ(pre_tokenize(sequence(split(pattern, "MergedWithPrevious", true)), text),
            (Strings{"How ", "are ", "you ", "doing", "?"}));
  EXPECT_EQ(pre_tokenize(sequence(split(pattern, "MergedWithNext", true)), text),
            (Strings{"How", " are", " you", " doing", "?"}));
  EXPECT_EQ(pre_tokenize(sequence(split(pattern, "Contiguous", true)), text),
            (Strings{"How", " ", "are", " ", "you", " ", "doing?"}));
}

TEST(TokenizerPipeline, SplitStringPatternsAreLiteral) {
  EXPECT_EQ(pre_tokenize(sequence(split({{"String", " "}}, "Removed", false)), "Hey, man!"), (Strings{"Hey,", "man!"}));
  EXPECT_EQ(pre_tokenize(sequence(split({{"String", "Hello"}}, "Removed", true)), "Hello Hello Hello"),
            (Strings{"Hello", "Hello", "Hello"}));
  EXPECT_EQ(pre_tokenize(sequence(split({{"String", "a.b"}}, "Isolated", false)), "xa.bya_b"),
            (Strings{"x", "a.b", "ya_b"}));
}

TEST(TokenizerPipeline, ByteLevelGpt2RegexAndPrefixSpace) {
  EXPECT_EQ(pre_tokenize(byte_level(false, true), "Hello my friend, how is your day going?"),
            (Strings{"Hello", " my", " friend", ",", " how", " is", " your", " day", " going", "?"}));
  EXPECT_EQ(pre_tokenize(byte_level(true, true), "Hello my friend"), (Strings{" Hello", " my", " friend"}));
  EXPECT_EQ(pre_tokenize(byte_level(true, true), " Hello"), (Strings{" Hello"}));
  EXPECT_EQ(pre_tokenize(byte_level(false, true), "Hello there\nHello there"),
            (Strings{"Hello", " there", "\n", "Hello", " there"}));
  EXPECT_EQ(pre_tokenize(byte_level(false, true), "Hello there       dear"),
            (Strings{"Hello", " there", "      ", " dear"}));
  EXPECT_EQ(pre_tokenize(byte_level(false, true), "it's 2024"), (Strings{"it", "'s", " 2024"}));
  EXPECT_EQ(pre_tokenize(byte_level(false, false), "no split here"), (Strings{"no split here"}));
}

TEST(TokenizerPipeline, Digits) {
  const json contiguous = sequence({{"type", "Digits"}, {"individual_digits", false}});
  const json individual = sequence({{"type", "Digits"}, {"individual_digits", true}});
  EXPECT_EQ(pre_tokenize(contiguous, "Hey 123 friend!"), (Strings{"Hey ", "123", " friend!"}));
  EXPECT_EQ(pre_tokenize(individual, "Hey 123 friend!"), (Strings{"Hey ", "1", "2", "3", " friend!"}));
  EXPECT_EQ(pre_tokenize(individual, "x٣²"), (Strings{"x", "٣", "²"}));  // any \p{N}
}

// HF's AddedVocabulary tests: single_word, lstrip/rstrip with Unicode spaces.
TEST(TokenizerPipeline, AddedTokenFlags) {
  auto segments = [](const grpo::AddedToken& t, const std::string& text) {
    grpo::AddedTokenMatcher m({t}, {t.content});
    std::vector<grpo::AddedTokenMatcher::Segment> segs;
    m.split(text, segs);
    Strings out;
    for (const auto& s : segs) out.push_back((s.id >= 0 ? "#" : "") + text.substr(s.begin, s.end - s.begin));
    return out;
  };
  grpo::AddedToken mask;
  mask.id = 7;
  mask.content = "<mask>";
  mask.single_word = true;
  EXPECT_EQ(segments(mask, "<mask> My name <mask> A<mask> <mask>ony <mask>"),
            (Strings{"#<mask>", " My name ", "#<mask>", " A<mask> <mask>ony ", "#<mask>"}));
  EXPECT_EQ(segments(mask, "<mask>, <mask>- \u25cc\u0330<mask>"),
            (Strings{"#<mask>", ", ", "#<mask>", "- \u25cc\u0330<mask>"}));
  mask.lstrip = mask.rstrip = true;
  EXPECT_EQ(segments(mask, "Hi <mask> there\t<mask>\t<mask>\u2000"),
            (Strings{"Hi", "# <mask> ", "there", "#\t<mask>\t", "#<mask>\u2000"}));
  mask.single_word = false;
  EXPECT_EQ(segments(mask, "a  <mask>  b<mask>"), (Strings{"a", "#  <mask>  ", "b", "#<mask>"}));
}

TEST(TokenizerPipeline, AddedTokensLeftmostLongestAndFlagsThroughEncode) {
  TempDir dir;
  json j = fixture_json();
  j["added_tokens"].push_back({{"id", 3000}, {"content", "<a>"}, {"special", false}, {"normalized", false}});
  j["added_tokens"].push_back({{"id", 3001}, {"content", "<a><b>"}, {"special", false}, {"normalized", false}});
  j["added_tokens"].push_back(
      {{"id", 3002}, {"content", "[m]"}, {"special", true}, {"lstrip", true}, {"rstrip", true}});
  Tokenizer tok = load_json(dir, j);
  Tokenizer plain = Tokenizer::load(grpo::testing::fixture_dir());
  EXPECT_EQ(tok.vocab_size(), 3003);
  auto concat = [](std::vector<std::vector<int32_t>> parts) {
    std::vector<int32_t> out;
    for (auto& p : parts) out.insert(out.end(), p.begin(), p.end());
    return out;
  };
  EXPECT_EQ(tok.encode("x<a><b>y<a>"), concat({plain.encode("x"), {3001}, plain.encode("y"), {3000}}));
  EXPECT_EQ(tok.encode("one  [m]  two"), concat({plain.encode("one"), {3002}, plain.encode("two")}));
  EXPECT_EQ(tok.decode(tok.encode("x<a><b>y")), "x<a><b>y");
  EXPECT_EQ(tok.decode(tok.encode("one  [m]  two")), "one[m]two");  // the stripped spaces are gone
  EXPECT_EQ(tok.decode(tok.encode("one  [m]  two"), /*skip_special=*/true), "onetwo");
}

TEST(TokenizerPipeline, NfcNormalizerAndNormalizedAddedTokens) {
  TempDir dir;
  json j = fixture_json();
  j["normalizer"] = {{"type", "Sequence"}, {"normalizers", {{{"type", "NFC"}}}}};
  // Matched after normalization: written decomposed, found in composed text too.
  j["added_tokens"].push_back({{"id", 3000}, {"content", "cafe\u0301"}, {"special", false}, {"normalized", true}});
  // Matched in the raw text: only the decomposed spelling.
  j["added_tokens"].push_back({{"id", 3001}, {"content", "x\u0301"}, {"special", false}, {"normalized", false}});
  Tokenizer tok = load_json(dir, j);
  EXPECT_EQ(tok.encode("e\u0301t\u00e9"), tok.encode("\u00e9t\u00e9"));
  EXPECT_EQ(tok.decode(tok.encode("e\u0301")), "\u00e9");
  EXPECT_EQ(tok.encode("le caf\u00e9"), tok.encode("le cafe\u0301"));
  EXPECT_EQ(tok.encode("caf\u00e9").back(), 3000);
  EXPECT_EQ(tok.encode("x\u0301"), (std::vector<int32_t>{3001}));
  // Invalid bytes pass through the normalizer untouched.
  EXPECT_EQ(tok.decode(tok.encode("e\u0301\xff\xfe")), "\u00e9\xff\xfe");
}

TEST(TokenizerPipeline, MergesAsStringsGiveTheSameIds) {
  TempDir dir;
  json j = fixture_json();
  for (auto& m : j["model"]["merges"]) m = m[0].get<std::string>() + " " + m[1].get<std::string>();
  Tokenizer tok = load_json(dir, j);
  Tokenizer ref = Tokenizer::load(grpo::testing::fixture_dir());
  for (const std::string text : {"Hello, world!", "def f(x):\n    return x * 2\n", "日本語のテキスト", "🚀🔥"})
    EXPECT_EQ(tok.encode(text), ref.encode(text)) << text;
}

TEST(TokenizerPipeline, MergeRanksDecideTheOrder) {
  TempDir dir;
  // b+c first, then a+bc.
  Tokenizer first_bc = load_json(dir, tiny_tokenizer({"ab", "bc", "abc"}, {{"b", "c"}, {"a", "b"}, {"a", "bc"}}));
  EXPECT_EQ(tokens_of(first_bc, "abc"), (Strings{"abc"}));
  // a+b first: "ab" "c" cannot merge further.
  Tokenizer first_ab = load_json(dir, tiny_tokenizer({"ab", "bc", "abc"}, {{"a", "b"}, {"b", "c"}, {"a", "bc"}}));
  EXPECT_EQ(tokens_of(first_ab, "abc"), (Strings{"ab", "c"}));
  // Equal pairs merge leftmost first.
  Tokenizer aa = load_json(dir, tiny_tokenizer({"aa"}, {{"a", "a"}}));
  EXPECT_EQ(tokens_of(aa, "aaa"), (Strings{"aa", "a"}));
  EXPECT_EQ(tokens_of(aa, "aaaa"), (Strings{"aa", "aa"}));
}

TEST(TokenizerPipeline, IgnoreMergesEmitsWholeVocabularyWords) {
  TempDir dir;
  json j = tiny_tokenizer({"xy", "xyz"}, {{"x", "y"}});
  Tokenizer merged = load_json(dir, j);
  EXPECT_EQ(tokens_of(merged, "xyz"), (Strings{"xy", "z"}));
  j["model"]["ignore_merges"] = true;
  Tokenizer whole = load_json(dir, j);
  EXPECT_EQ(tokens_of(whole, "xyz"), (Strings{"xyz"}));
  EXPECT_EQ(tokens_of(whole, "xyzx"), (Strings{"xy", "z", "x"}));
}

TEST(TokenizerPipeline, UnknownBytesBecomeUnkOrAreDropped) {
  TempDir dir;
  json j = tiny_tokenizer({"<unk>"}, {});
  j["model"]["vocab"].erase(grpo::bytelevel::to_symbols("z"));
  Tokenizer dropped = load_json(dir, j);
  EXPECT_EQ(tokens_of(dropped, "azzb"), (Strings{"a", "b"}));  // HF drops them when there is no unk
  j["model"]["unk_token"] = "<unk>";
  Tokenizer unk = load_json(dir, j);
  EXPECT_EQ(tokens_of(unk, "azzb"), (Strings{"a", "<unk>", "<unk>", "b"}));
  j["model"]["fuse_unk"] = true;
  Tokenizer fused = load_json(dir, j);
  EXPECT_EQ(tokens_of(fused, "azzb"), (Strings{"a", "<unk>", "b"}));
}

TEST(TokenizerPipeline, TokenizerConfigGivesBosAndEos) {
  TempDir dir;
  dir.write("tokenizer.json", fixture_json().dump());
  dir.write("tokenizer_config.json",
            R"({"bos_token": {"__type": "AddedToken", "content": "<｜begin▁of▁sentence｜>"},
                "eos_token": "<｜end▁of▁sentence｜>", "chat_template": "{{ messages }}"})");
  Tokenizer tok = Tokenizer::load(dir.path());
  EXPECT_EQ(tok.bos_id(), 0);
  EXPECT_EQ(tok.eos_id(), 1);
  EXPECT_EQ(tok.path(), dir.path() + "/tokenizer.json");
}
