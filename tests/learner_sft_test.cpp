// Supervised fine-tuning (learner/sft.h, sft_data.h, distill_loss.h): which tokens the loss
// counts (by hand), the top-k KL against a float64 hand computation and finite differences, bad
// records named by file:line:field, and a tiny dense student that memorises its answers and
// reproduces them greedily from the saved checkpoint.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "learner/distill_loss.h"
#include "learner/sft.h"
#include "metrics/metrics.h"
#include "model/pretrained.h"
#include "rollout/offline.h"

namespace grpo {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const std::string kTokenizer = std::string(GRPO_SOURCE_DIR) + "/configs/tiny-zero/tokenizer.json";
const std::string kTemplate = std::string(GRPO_SOURCE_DIR) + "/configs/chat_templates/tiny-zero.yaml";

std::vector<int64_t> encode(const Tokenizer& tok, const std::string& text) {
  std::vector<int64_t> ids;
  for (int32_t id : tok.encode(text)) ids.push_back(id);
  return ids;
}

json chat(const std::string& user, const std::string& answer) {
  return {{"messages", {{{"role", "user"}, {"content", user}}, {{"role", "assistant"}, {"content", answer}}}}};
}

class SftTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "grpo_sft_XXXXXX").string();
    dir_ = ::mkdtemp(tmpl.data());
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write_jsonl(const std::string& name, const std::vector<std::string>& lines) const {
    const std::string path = dir_ + "/" + name;
    std::ofstream out(path);
    for (const auto& l : lines) out << l << "\n";
    return path;
  }
  // The first InputError message of loading `lines` (skip_bad off), or "" when none.
  std::string load_error(const std::vector<std::string>& lines, int64_t seq_len = 128) const {
    SftDataOptions o;
    o.files = {write_jsonl("bad.jsonl", lines)};
    o.seq_len = seq_len;
    SftDataReport report;
    try {
      load_sft_data(o, tok_, tmpl_, &report);
    } catch (const InputError& e) {
      return e.what();
    }
    return "";
  }
  std::string sft_yaml(const std::string& data, const std::string& extra = "") const {
    return "sft:\n"
           "  model: {model_type: llama, vocab_size: 262, hidden_size: 64, intermediate_size: 128,\n"
           "          num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2,\n"
           "          max_position_embeddings: 128, bos_token_id: 0, eos_token_id: 1}\n"
           "  tokenizer: " +
           kTokenizer +
           "\n"
           "  template: " +
           kTemplate +
           "\n"
           "  data: {files: [" +
           data +
           "]}\n"
           "  seq_len: 64\n  batch_size: 4\n  steps: 80\n  threads: 2\n  seed: 1\n  log_every: 20\n"
           "  optim: {lr: 1.0e-2, warmup_steps: 5, min_lr_ratio: 0.1}\n"
           "  out_dir: " +
           dir_ + "/student\n" + extra;
  }
  SftOptions options(const std::string& yaml) const {
    return SftOptions::from_config(Config::parse(yaml, "test.yaml").sub("sft"));
  }

  std::string dir_;
  const Tokenizer tok_ = Tokenizer::load(kTokenizer);
  const ChatTemplate tmpl_ = ChatTemplate::load(kTemplate);
};

TEST_F(SftTest, LossCountsOnlyTheAnswerAndEos) {
  // By hand: BOS, the rendered prompt "User: 1+2\nAssistant: <think>", then the answer and EOS.
  SftDataOptions o;
  o.files = {write_jsonl("a.jsonl", {chat("1+2", "1+2=3</think><answer>3</answer>").dump(),
                                     json{{"prompt", "Q7"}, {"completion", "A"}}.dump()})};
  SftDataReport report;
  const std::vector<SftExample> ex = load_sft_data(o, tok_, tmpl_, &report);
  ASSERT_EQ(ex.size(), 2u);
  std::vector<int64_t> prompt{0};
  for (int64_t id : encode(tok_, "User: 1+2\nAssistant: <think>")) prompt.push_back(id);
  std::vector<int64_t> answer = encode(tok_, "1+2=3</think><answer>3</answer>");
  answer.push_back(1);
  std::vector<int64_t> want = prompt;
  want.insert(want.end(), answer.begin(), answer.end());
  EXPECT_EQ(ex[0].ids, want);
  EXPECT_EQ(ex[0].prompt_len, static_cast<int64_t>(prompt.size()));
  // prompt/completion: the prompt as is, no template.
  std::vector<int64_t> want1{0};
  for (int64_t id : encode(tok_, "Q7")) want1.push_back(id);
  const int64_t prompt1 = want1.size();
  for (int64_t id : encode(tok_, "A")) want1.push_back(id);
  want1.push_back(1);
  EXPECT_EQ(ex[1].ids, want1);
  EXPECT_EQ(ex[1].prompt_len, prompt1);

  const SftBatch b = make_sft_batch({&ex[0], &ex[1]});
  const int64_t l = want.size();
  ASSERT_EQ(b.ids.sizes(), at::IntArrayRef({2, l}));
  ASSERT_EQ(b.mask.sizes(), at::IntArrayRef({2, l - 1}));
  for (int64_t j = 0; j < l - 1; ++j) {  // target j is ids[j + 1]
    const bool in_answer0 = j + 1 >= static_cast<int64_t>(prompt.size());
    const bool in_answer1 = j + 1 >= prompt1 && j + 1 < static_cast<int64_t>(want1.size());  // then padding
    EXPECT_EQ(b.mask[0][j].item<float>(), in_answer0 ? 1.f : 0.f) << j;
    EXPECT_EQ(b.mask[1][j].item<float>(), in_answer1 ? 1.f : 0.f) << j;
  }
  // The cross-entropy is the mean over exactly those targets.
  const at::Tensor logits = at::randn({2, l - 1, 262}, at::kDouble);
  double sum = 0;
  int64_t count = 0;
  for (int64_t r = 0; r < 2; ++r)
    for (int64_t j = 0; j < l - 1; ++j)
      if (b.mask[r][j].item<float>() > 0) {
        sum -= logits[r][j].log_softmax(0)[b.ids[r][j + 1].item<int64_t>()].item<double>();
        ++count;
      }
  EXPECT_EQ(count, static_cast<int64_t>(answer.size() + want1.size()) - prompt1);
  const SftLoss loss = sft_loss(logits, b, 1.0);
  EXPECT_NEAR(loss.ce.item<double>(), sum / count, 1e-12);
  EXPECT_FALSE(loss.kd.defined());
}

// KL(p || q) of the teacher's renormalised top-k against the student restricted to the same ids.
double hand_kl(const at::Tensor& z, const std::vector<int64_t>& ids, const std::vector<double>& a) {
  double za = 0, zz = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    za += std::exp(a[i]);
    zz += std::exp(z[ids[i]].item<double>());
  }
  double kl = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    const double p = std::exp(a[i]) / za, q = std::exp(z[ids[i]].item<double>()) / zz;
    kl += p * std::log(p / q);
  }
  return kl;
}

TEST(TopkKl, MatchesHandComputationAndFiniteDifferences) {
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(4);
  const at::Tensor logits = at::randn({3, 10}, gen, at::kDouble) * 2;
  const std::vector<std::vector<int64_t>> ids{{3, 1, 7, 0}, {9, 2, 5, 4}, {6, 8, 0, 0}};  // row 2: k = 2
  const std::vector<std::vector<double>> lps{{-0.3, -1.9, -2.5, -4.0}, {-1.2, -1.3, -1.4, -3.0}, {-0.01, -5.0, 0, 0}};
  at::Tensor t_ids = at::zeros({3, 4}, at::kLong), t_lp = at::zeros({3, 4}, at::kDouble),
             valid = at::zeros({3, 4}, at::kBool);
  for (int64_t r = 0; r < 3; ++r)
    for (int64_t j = 0; j < (r == 2 ? 2 : 4); ++j) {
      t_ids[r][j] = ids[r][j];
      t_lp[r][j] = lps[r][j];
      valid[r][j] = true;
    }
  at::Tensor x = logits.clone().requires_grad_(true);
  const at::Tensor kl = topk_kl(x, t_ids, t_lp, valid);  // [3]
  for (int64_t r = 0; r < 3; ++r) {
    const size_t k = r == 2 ? 2 : 4;
    EXPECT_NEAR(kl[r].item<double>(),
                hand_kl(logits[r], std::vector<int64_t>(ids[r].begin(), ids[r].begin() + k),
                        std::vector<double>(lps[r].begin(), lps[r].begin() + k)),
                1e-12);
  }
  const at::Tensor w = at::tensor({0.7, -1.3, 2.0}, at::kDouble);
  (kl * w).sum().backward();
  const at::Tensor grad = x.grad();
  EXPECT_FALSE(grad.isnan().any().item<bool>());
  for (int64_t r = 0; r < 3; ++r)
    for (int64_t v = 0; v < 10; ++v) {
      const double eps = 1e-6;
      at::Tensor up = logits.clone(), down = logits.clone();
      up[r][v] += eps;
      down[r][v] -= eps;
      const double numeric =
          ((topk_kl(up, t_ids, t_lp, valid) - topk_kl(down, t_ids, t_lp, valid)) * w).sum().item<double>() / (2 * eps);
      EXPECT_NEAR(grad[r][v].item<double>(), numeric, 1e-7) << r << "," << v;
    }
  // Zero exactly when the student's restricted distribution is the teacher's.
  at::Tensor same = at::zeros({1, 10}, at::kDouble);
  for (int64_t j = 0; j < 4; ++j) same[0][ids[0][j]] = lps[0][j] + 3.0;
  EXPECT_NEAR(topk_kl(same, t_ids.narrow(0, 0, 1), t_lp.narrow(0, 0, 1), valid.narrow(0, 0, 1)).item<double>(), 0.0,
              1e-12);
}

TEST_F(SftTest, TeacherTopkBecomesDistillationRows) {
  std::vector<int64_t> answer = encode(tok_, "7</think>");
  answer.push_back(1);  // with the EOS: one top-k row per answer token
  json rec = chat("3+4", "7</think>");
  json topk_ids = json::array(), topk_lps = json::array();
  for (size_t t = 0; t < answer.size(); ++t) {
    topk_ids.push_back({answer[t], 50 + t});
    topk_lps.push_back({-0.1, -2.5});
  }
  rec["teacher"] = {{"token_ids", answer}, {"topk_ids", topk_ids}, {"topk_logprobs", topk_lps}};
  SftDataOptions o;
  o.files = {write_jsonl("t.jsonl", {rec.dump()})};
  SftDataReport report;
  const auto ex = load_sft_data(o, tok_, tmpl_, &report);
  EXPECT_EQ(report.with_teacher, 1);
  ASSERT_EQ(ex[0].topk_ids.size(), answer.size());
  const SftBatch b = make_sft_batch({&ex[0]});
  ASSERT_EQ(b.kd_rows.size(0), static_cast<int64_t>(answer.size()));
  for (size_t t = 0; t < answer.size(); ++t) {
    const int64_t row = b.kd_rows[t].item<int64_t>();  // the target predicting answer[t]
    EXPECT_EQ(b.ids[0][row + 1].item<int64_t>(), answer[t]);
    EXPECT_EQ(b.mask[0][row].item<float>(), 1.f);
  }
  const at::Tensor logits = at::randn({1, b.mask.size(1), 262}, at::kDouble);
  const SftLoss l = sft_loss(logits, b, 0.5);
  ASSERT_TRUE(l.kd.defined());
  EXPECT_NEAR(l.total.item<double>(), l.ce.item<double>() + 0.5 * l.kd.item<double>(), 1e-12);
  // token_ids without the EOS are accepted too (the distillation rows stop before it).
  answer.pop_back();
  rec["teacher"]["token_ids"] = answer;
  topk_ids.erase(topk_ids.size() - 1);
  topk_lps.erase(topk_lps.size() - 1);
  rec["teacher"]["topk_ids"] = topk_ids;
  rec["teacher"]["topk_logprobs"] = topk_lps;
  o.files = {write_jsonl("t2.jsonl", {rec.dump()})};
  EXPECT_EQ(load_sft_data(o, tok_, tmpl_, &report)[0].topk_ids.size(), answer.size());
}

TEST_F(SftTest, BadRecordsNameFileLineAndField) {
  const std::string good = chat("1+1", "2").dump();
  auto has = [](const std::string& msg, const std::vector<std::string>& parts) {
    for (const auto& p : parts) EXPECT_THAT(msg, ::testing::HasSubstr(p));
  };
  const std::string f = dir_ + "/bad.jsonl";
  has(load_error({good, R"({"text": "hello"})"}), {f + ":2", "record", "messages"});
  has(load_error({good, "", R"({"messages": [{"role": "user", "content": "x"}, {"role": "bot", "content": "y"}]})"}),
      {f + ":3", "messages[1].role", "bot"});
  has(load_error({R"({"messages": [{"role": "user", "content": "only a prompt"}]})"}),
      {f + ":1", "messages[0].role", "without an answer"});
  has(load_error({R"({"messages": [{"role": "user"}, {"role": "assistant", "content": "y"}]})"}),
      {f + ":1", "messages[0].content", "missing"});
  has(load_error({R"({"prompt": "x", "completion": ""})"}), {f + ":1", "completion", "empty answer"});
  has(load_error({"{not json"}), {f + ":1", "invalid JSON"});
  has(load_error({}), {"no usable examples"});
  json rec = chat("1+1", "2");
  rec["teacher"] = {{"token_ids", encode(tok_, "2")}, {"topk_ids", {{5}, {6}}}, {"topk_logprobs", {{-0.1}}}};
  has(load_error({rec.dump()}), {f + ":1", "teacher.topk_ids", "expected 1 entries"});
  rec["teacher"]["token_ids"] = encode(tok_, "3");
  has(load_error({rec.dump()}), {f + ":1", "teacher.token_ids", "tokenizer"});
  rec["teacher"] = {{"token_ids", encode(tok_, "2")}, {"topk_ids", {{5, 6}}}, {"topk_logprobs", {{-0.1}}}};
  has(load_error({rec.dump()}), {f + ":1", "teacher.topk_logprobs[0]"});

  // skip_bad: the bad records are skipped and counted; overlong ones cut or skipped, and counted.
  SftDataOptions o;
  o.files = {
      write_jsonl("mixed.jsonl", {good, "{not json", R"({"prompt": 1})", chat("1+1", std::string(200, '9')).dump()})};
  o.skip_bad = true;
  o.seq_len = 32;
  SftDataReport report;
  auto ex = load_sft_data(o, tok_, tmpl_, &report);
  EXPECT_EQ(report.lines, 4);
  EXPECT_EQ(report.bad, 2);
  EXPECT_EQ(report.truncated, 1);
  ASSERT_EQ(ex.size(), 2u);
  EXPECT_EQ(ex[1].ids.size(), 32u);
  o.truncate = false;
  report = {};
  ex = load_sft_data(o, tok_, tmpl_, &report);
  EXPECT_EQ(ex.size(), 1u);
  EXPECT_EQ(report.overlong, 1);
}

TEST_F(SftTest, ConfigErrorsNameTheKey) {
  const std::string data = write_jsonl("d.jsonl", {chat("1+1", "2").dump()});
  auto expect = [&](const std::string& yaml, const std::string& needle) {
    try {
      options(yaml);
      ADD_FAILURE() << "no error for " << needle;
    } catch (const InputError& e) {
      EXPECT_THAT(e.what(), ::testing::HasSubstr(needle));
    }
  };
  expect(sft_yaml(data, "  epochs: 2\n"), "sft.steps");
  expect(sft_yaml(data, "  kd_wieght: 2\n"), "kd_wieght");
  expect(sft_yaml(data) + "  model_typo: 1\n", "model_typo");
  expect("sft: {model: {model_type: deepseek_v3}, tokenizer: x, data: {files: [a]}, out_dir: o}\n", "model_type");
  expect(
      "sft: {model: {model_type: llama, vocab_size: 262, hidden_size: 8, intermediate_size: 8, num_hidden_layers: 1,"
      " num_attention_heads: 2}, tokenizer: " +
          kTokenizer + ", data: {files: [a], overlong: drop}, out_dir: o}\n",
      "sft.data.overlong");
}

TEST_F(SftTest, StudentMemorisesAnswersAndTheCheckpointReproducesThem) {
  const std::vector<std::pair<std::string, std::string>> qa{{"2+3+4", "2+3=5+4=9</think><answer>9</answer>"},
                                                            {"5+1+1", "5+1=6+1=7</think><answer>7</answer>"},
                                                            {"8+8", "8+8=16</think><answer>16</answer>"},
                                                            {"9+2+6", "9+2=11+6=17</think><answer>17</answer>"}};
  std::vector<std::string> lines;
  for (const auto& [q, a] : qa) lines.push_back(chat(q, a).dump());
  const SftResult r = sft(options(sft_yaml(write_jsonl("train.jsonl", lines))), false);
  EXPECT_EQ(r.steps, 80);
  EXPECT_EQ(r.data.examples, 4);
  EXPECT_GT(r.first_loss, 4.0);  // ~ln(262) = 5.6 at random init
  EXPECT_LT(r.final_loss, 0.05);

  // The checkpoint: written whole (no staging directory left), with its tokenizer, loadable.
  const std::string out = dir_ + "/student";
  EXPECT_TRUE(fs::exists(out + "/model.safetensors"));
  EXPECT_TRUE(fs::exists(out + "/tokenizer.json"));
  EXPECT_FALSE(fs::exists(out + ".tmp"));
  EXPECT_TRUE(fs::exists(out + "/logs/metrics.jsonl"));
  std::vector<rollout::Request> requests;
  for (const auto& [q, a] : qa) {
    rollout::Request req;
    req.prompt = {0};
    for (int64_t id : encode(tok_, tmpl_.render({{"user", q}}, true))) req.prompt.push_back(id);
    req.params.max_new_tokens = 40;
    req.params.sampling.temperature = 0;
    requests.push_back(req);
  }
  const auto done = rollout::generate_offline(out, {}, requests, &tok_, {});  // the paged engine
  for (size_t i = 0; i < qa.size(); ++i) {
    EXPECT_EQ(done[i].text, qa[i].second) << qa[i].first;
    EXPECT_EQ(done[i].finish_reason, rollout::FinishReason::kEos);
  }
}

// Records with teacher top-k: the distillation term is reported, and training moves the student's
// restricted distribution toward the teacher's (the KL falls) while the answers are learnt.
TEST_F(SftTest, DistillationTermFallsDuringTraining) {
  std::vector<std::string> lines;
  for (const auto& [q, a] : std::vector<std::pair<std::string, std::string>>{{"2+3+4", "</think><answer>9</answer>"},
                                                                             {"8+8", "</think><answer>16</answer>"}}) {
    std::vector<int64_t> answer = encode(tok_, a);
    answer.push_back(1);
    json rec = chat(q, a), ids = json::array(), lps = json::array();
    for (int64_t id : answer) {
      ids.push_back({id, (id + 7) % 262, (id + 19) % 262});  // the teacher's top-3: the answer first
      lps.push_back({-0.2, -2.0, -3.0});
    }
    rec["teacher"] = {{"token_ids", answer}, {"topk_ids", ids}, {"topk_logprobs", lps}};
    lines.push_back(rec.dump());
  }
  Config config = Config::parse(sft_yaml(write_jsonl("kd.jsonl", lines), "  kd_weight: 2.0\n"), "test.yaml");
  config.apply_override("sft.log_every=1");
  const SftResult r = sft(SftOptions::from_config(config.sub("sft")), false);
  EXPECT_EQ(r.data.with_teacher, 2);
  const MetricsHistory h = read_metrics(dir_ + "/student/logs/metrics.jsonl");
  const auto& kd = h.series.at("loss/kd");
  ASSERT_EQ(kd.size(), 80u);  // the first: the random student, ~KL(teacher || uniform over 3) = 0.51
  EXPECT_GT(kd.front().second, 0.2);
  EXPECT_LT(kd.back().second, 0.2 * kd.front().second) << kd.front().second << " -> " << kd.back().second;
  EXPECT_NEAR(r.final_kd, kd.back().second, 1e-9);
  EXPECT_LT(r.final_ce, 0.5);
}

}  // namespace
}  // namespace grpo
