// The digit-chains task generator (answers, solution texts, determinism, a disjoint held-out split)
// and pretraining: the loss falls on the synthetic task and on a JSONL corpus, the checkpoint
// loads with load_pretrained and scores like the trained model, and config errors name the key.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

#include "learner/digit_chains.h"
#include "learner/pretrain.h"
#include "metrics/metrics.h"
#include "model/pretrained.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace grpo {
namespace {

namespace fs = std::filesystem;
const std::string kTokenizer = std::string(GRPO_SOURCE_DIR) + "/configs/tiny-zero/tokenizer.json";
const std::string kTemplate = std::string(GRPO_SOURCE_DIR) + "/configs/chat_templates/tiny-zero.yaml";

TEST(DigitChains, QuestionAnswerAndBothSolutionStyles) {
  const DigitChain c{{7, 5, 3, 8, 2}};
  EXPECT_EQ(c.question(), "7 5 3 8 2");
  EXPECT_EQ(c.running_values(), (std::vector<int64_t>{7, 2, 1, 7, 5}));
  EXPECT_EQ(c.answer(), 5);  // |||7-5|-3|-8|-2|
  EXPECT_EQ(solution(c, SolutionStyle::kSteps), "7 2 1 7 5</think><answer>5</answer>");
  EXPECT_EQ(solution(c, SolutionStyle::kDirect), "</think><answer>5</answer>");
  EXPECT_EQ(first_step_prefix(c), "7");
  EXPECT_EQ(worked_example(c), "7 5 3 8 2\n7 2 1 7 5");
  EXPECT_EQ(solution(DigitChain{{4}}, SolutionStyle::kSteps), "4</think><answer>4</answer>");
  const DigitChain wide{{12, 40, 99, 5}};  // values padded to the widest term
  EXPECT_EQ(wide.question(), "12 40 99 5");
  EXPECT_EQ(reduction_steps(wide), "12 28 71 66");
  EXPECT_EQ(wide.answer(), 66);
}

TEST(DigitChains, ProblemsAreDistinctInRangeAndDeterministicForASeed) {
  DigitChainsOptions o;
  const auto a = distinct_problems(o, TaskSplit::kTrain, 500, 11);
  const auto b = distinct_problems(o, TaskSplit::kTrain, 500, 11);
  const auto c = distinct_problems(o, TaskSplit::kTrain, 500, 12);
  ASSERT_EQ(a.size(), 500u);
  std::set<std::string> seen;
  int same_as_other_seed = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].terms, b[i].terms);
    same_as_other_seed += a[i].terms == c[i].terms;
    seen.insert(a[i].question());
    EXPECT_GE(a[i].terms.size(), 4u);
    EXPECT_LE(a[i].terms.size(), 6u);
    for (int t : a[i].terms) {
      EXPECT_GE(t, 1);
      EXPECT_LE(t, 9);
    }
  }
  EXPECT_EQ(seen.size(), 500u);
  EXPECT_LT(same_as_other_seed, 5);
}

TEST(DigitChains, HeldOutSplitIsDisjointAndAboutOneInTen) {
  DigitChainsOptions o;
  std::set<std::string> train, heldout;
  for (const auto& c : distinct_problems(o, TaskSplit::kTrain, 3000, 1)) train.insert(c.question());
  for (const auto& c : distinct_problems(o, TaskSplit::kHeldout, 300, 1)) {
    EXPECT_EQ(split_of(c, o), TaskSplit::kHeldout);
    heldout.insert(c.question());
  }
  for (const auto& q : heldout) EXPECT_EQ(train.count(q), 0u) << q;
  // Every 4-term chain: the hash rule holds out close to 1 in heldout_every.
  int held = 0, total = 0;
  for (int a = 1; a <= 9; ++a)
    for (int b = 1; b <= 9; ++b)
      for (int c = 1; c <= 9; ++c)
        for (int d = 1; d <= 9; ++d, ++total) held += split_of({{a, b, c, d}}, o) == TaskSplit::kHeldout;
  EXPECT_NEAR(static_cast<double>(held) / total, 0.1, 0.015);
}

TEST(DigitChains, AskingMoreProblemsThanTheSplitHoldsIsAnError) {
  DigitChainsOptions o;
  o.min_terms = o.max_terms = 2;
  o.min_term = 1;
  o.max_term = 2;  // 4 problems in all
  EXPECT_THROW(distinct_problems(o, TaskSplit::kTrain, 10, 0), InputError);
  try {
    DigitChainsOptions::from_config(Config::parse("{min_terms: 5, max_terms: 3}", "t.yaml"));
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("min_terms"), std::string::npos) << e.what();
  }
}

class Pretrain : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "grpo_pretrain_XXXXXX").string();
    dir_ = ::mkdtemp(tmpl.data());
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A small DeepSeek-V3 (MLA, noaux_tc MoE after one dense layer) over the tiny-zero tokenizer.
  std::string config_yaml(const std::string& corpus, const std::string& extra = "") const {
    return "pretrain:\n"
           "  model: {architectures: [DeepseekV3ForCausalLM], model_type: deepseek_v3, vocab_size: 262,\n"
           "          hidden_size: 32, intermediate_size: 64, moe_intermediate_size: 16, num_hidden_layers: 2,\n"
           "          first_k_dense_replace: 1, num_attention_heads: 2, q_lora_rank: null, kv_lora_rank: 16,\n"
           "          qk_nope_head_dim: 8, qk_rope_head_dim: 8, v_head_dim: 8, n_routed_experts: 4,\n"
           "          n_shared_experts: 1, num_experts_per_tok: 2, n_group: 1, topk_group: 1, bos_token_id: 0,\n"
           "          eos_token_id: 1}\n"
           "  tokenizer: " +
           kTokenizer +
           "\n"
           "  corpus: " +
           corpus +
           "\n"
           "  seq_len: 96\n  batch_size: 16\n  steps: 40\n  threads: 2\n  seed: 3\n  log_every: 5\n"
           "  optim: {lr: 1.0e-2, warmup_steps: 5}\n"
           "  out_dir: " +
           dir_ + "/base\n" + extra;
  }
  PretrainOptions options(const std::string& yaml, const std::vector<std::string>& overrides = {}) const {
    Config c = Config::parse(yaml, "test.yaml");
    for (const auto& o : overrides) c.apply_override(o);
    return PretrainOptions::from_config(c.sub("pretrain"));
  }
  std::string task_corpus() const {
    return "{task: digit_chains, template: " + kTemplate + ", step_fraction: 0.5, worked_fraction: 0.2}";
  }
  // Expects from_config to throw an InputError mentioning `needle`.
  void expect_error(const std::string& yaml, const std::string& needle,
                    const std::vector<std::string>& overrides = {}) const {
    try {
      options(yaml, overrides);
      ADD_FAILURE() << "no error for: " << needle;
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  }

  std::string dir_;
};

TEST_F(Pretrain, LossFallsOnTheTaskAndTheCheckpointScoresLikeTheTrainedModel) {
  const PretrainOptions o = options(config_yaml(task_corpus()));
  const PretrainResult r = pretrain(o, false);
  EXPECT_EQ(r.steps, 40);
  EXPECT_NEAR(r.first_loss, std::log(262.0), 0.5);  // random init: about uniform
  EXPECT_LT(r.final_loss, 0.6 * r.first_loss);
  EXPECT_EQ(r.truncated, 0);

  // The saved checkpoint with its tokenizer; its loss on fresh task text matches training's.
  ASSERT_TRUE(fs::exists(dir_ + "/base/tokenizer.json"));
  ASSERT_TRUE(fs::exists(dir_ + "/base/tokenizer_config.json"));
  const Tokenizer tok = Tokenizer::load(dir_ + "/base");
  EXPECT_EQ(tok.bos_id(), 0);
  EXPECT_EQ(tok.eos_id(), 1);
  const DeepseekModel m = load_pretrained(dir_ + "/base");
  at::NoGradGuard no_grad;
  const ChatTemplate tmpl = ChatTemplate::load(kTemplate);
  double nll = 0;
  int64_t n = 0;
  for (const auto& c : distinct_problems(DigitChainsOptions{}, TaskSplit::kHeldout, 8, 5)) {
    std::vector<int64_t> ids = {tok.bos_id()};
    for (int32_t id : tok.encode(tmpl.render({{"user", c.question()}}, true) + solution(c, SolutionStyle::kSteps)))
      ids.push_back(id);
    ids.push_back(tok.eos_id());
    at::Tensor lp = m.logprobs(at::tensor(ids, at::kLong).unsqueeze(0));  // [1, T-1]
    nll -= lp.sum().item<double>();
    n += lp.numel();
  }
  EXPECT_LT(nll / n, r.final_loss + 0.5);

  // Greedy decoding after the prompt: the trained model opens with a value (the step style starts
  // with the first term) or closes the think block.
  std::vector<int64_t> prompt = {tok.bos_id()};
  for (int32_t id : tok.encode(tmpl.render({{"user", "3 4 1 2"}}, true))) prompt.push_back(id);
  const int64_t next = m.forward(at::tensor(prompt, at::kLong).unsqueeze(0))[0][-1].argmax().item<int64_t>();
  const std::string piece = tok.decode({static_cast<int32_t>(next)});
  EXPECT_TRUE(piece == "</think>" || (piece.size() == 1 && std::isdigit(static_cast<unsigned char>(piece[0]))))
      << piece;

  const MetricsHistory h = read_metrics(o.train.log_dir + "/metrics.jsonl");
  EXPECT_EQ(h.steps, (std::vector<int64_t>{5, 10, 15, 20, 25, 30, 35, 40}));
  EXPECT_EQ(h.series.count("loss"), 1u);
  EXPECT_EQ(h.series.count("throughput/tokens_per_s"), 1u);
}

TEST_F(Pretrain, LossFallsOnJsonlAndTextFiles) {
  {
    std::ofstream f(dir_ + "/corpus.jsonl");
    for (int i = 0; i < 50; ++i) f << "{\"text\": \"abcabcabcabc " << i % 5 << "\", \"other\": 1}\n";
    std::ofstream g(dir_ + "/corpus.txt");
    for (int i = 0; i < 50; ++i) g << "xyzxyzxyz\n\n";
  }
  for (const std::string corpus :
       {"{files: [" + dir_ + "/corpus.jsonl]}", "{files: [" + dir_ + "/corpus.txt], format: text}"}) {
    const PretrainResult r = pretrain(options(config_yaml(corpus, "  log_dir: " + dir_ + "/logs\n")), false);
    EXPECT_LT(r.final_loss, 0.4 * r.first_loss) << corpus;
  }
  // Records longer than seq_len are cut and counted.
  const PretrainResult r =
      pretrain(options(config_yaml("{files: [" + dir_ + "/corpus.jsonl]}", "  log_dir: " + dir_ + "/logs\n"),
                       {"pretrain.seq_len=8"}),
               false);
  EXPECT_EQ(r.truncated, 40 * 16);
}

TEST_F(Pretrain, EveryEpochOfAFileCorpusIsAPermutationOfItsRecords) {
  // 32 records, one of them longer than seq_len: an epoch (2 steps of 16) cuts exactly that one.
  {
    std::ofstream f(dir_ + "/corpus.txt");
    for (int i = 0; i < 32; ++i) f << (i == 5 ? std::string("a long record, cut") : "r" + std::to_string(i)) << "\n";
  }
  for (const std::string steps : {"2", "4"}) {
    const PretrainResult r = pretrain(
        options(config_yaml("{files: [" + dir_ + "/corpus.txt], format: text}", "  log_dir: " + dir_ + "/logs\n"),
                {"pretrain.seq_len=8", "pretrain.steps=" + steps}),
        false);
    EXPECT_EQ(r.truncated, std::stoi(steps) / 2) << steps << " steps";
  }
}

TEST_F(Pretrain, ConfigErrorsNameTheKey) {
  const std::string good = config_yaml(task_corpus());
  expect_error(good, "stepz", {"pretrain.stepz=3"});
  expect_error(good, "pretrain.batch_size", {"pretrain.batch_size=0"});
  expect_error(good, "pretrain.dtype", {"pretrain.dtype=fp16"});
  expect_error(config_yaml("{task: digit_chains, template: " + kTemplate + ", files: [a]}"), "pretrain.corpus");
  expect_error(config_yaml("{task: countdown, template: x}"), "pretrain.corpus.task");
  expect_error(config_yaml("{task: digit_chains}"), "pretrain.corpus.template");
  expect_error(good, "pretrain.corpus.worked_fraction", {"pretrain.corpus.worked_fraction=1.5"});
  expect_error(config_yaml("{files: [a], step_fraction: 0.5}"), "pretrain.corpus.step_fraction");
  expect_error(config_yaml("{task: digit_chains, template: " + kTemplate + ", digit_chains: {max_term: 500}}"),
               "max_term");
  expect_error(good, "pretrain.optim.decay", {"pretrain.optim.decay=exponential"});
  expect_error(good, "learning_rate", {"pretrain.optim.learning_rate=1.0e-3"});
  expect_error(good, "pretrain.zero1", {"pretrain.zero1=maybe"});
  expect_error("pretrain: {tokenizer: x, corpus: {files: [a]}, out_dir: o}\n", "pretrain.model");
  expect_error("pretrain: {model: " + dir_ + "/nope.json, tokenizer: x, corpus: {files: [a]}, out_dir: o}\n",
               "nope.json");

  // Found when the run starts: a vocabulary too small for the tokenizer, a bad corpus line.
  PretrainOptions small = options(good);
  small.model["vocab_size"] = 100;
  try {
    pretrain(small, false);
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("vocab_size"), std::string::npos) << e.what();
  }
  try {  // ZeRO-1 shards over the ranks of `grpo learner`
    pretrain(options(good, {"pretrain.zero1=true"}), false);
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("pretrain.zero1: only for `grpo learner` runs"), std::string::npos)
        << e.what();
  }
  std::ofstream(dir_ + "/bad.jsonl") << "{\"text\": \"ok\"}\n{\"txt\": \"no\"}\n";
  try {
    pretrain(options(config_yaml("{files: [" + dir_ + "/bad.jsonl]}")), false);
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("bad.jsonl, line 2"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(dir_ + "/base/config.json"));  // nothing saved by a failed run
}

}  // namespace
}  // namespace grpo
