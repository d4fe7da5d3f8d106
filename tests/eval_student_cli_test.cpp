// `grpo sft` and the dense-student paths of `grpo eval` / `generate` / `logprobs` / `init-model`
// as a user runs them: configs/sft-tiny.yaml (shortened and pointed at a 4-chat JSONL by
// overrides) trains a small Llama-style student until it has memorised its answers; eval of the
// checkpoint prints the summary with pass@1 = 1 on those prompts; bad data is named by file:line.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "grpo_cli.h"
#include "subprocess.h"

using nlohmann::json;

namespace {

namespace fs = std::filesystem;

using Result = grpo_test::CliResult;

const std::vector<std::pair<std::string, std::string>> kQa{
    {"2+3+4", "9"}, {"5+1+1", "7"}, {"8+8", "16"}, {"9+2+6", "17"}};

class CliSft : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string tmpl = (fs::temp_directory_path() / "grpo_cli_sft_XXXXXX").string();
    dir_ = ::mkdtemp(tmpl.data());
    json config = json::parse(std::ifstream(std::string(GRPO_SOURCE_DIR) + "/configs/tiny-zero/student.json"));
    config["hidden_size"] = 64;
    config["head_dim"] = 16;
    config["intermediate_size"] = 128;
    config["num_hidden_layers"] = 2;
    std::ofstream(dir_ + "/student.json") << config.dump(2);
    std::ofstream train(dir_ + "/train.jsonl"), eval(dir_ + "/eval.jsonl");
    for (const auto& [q, a] : kQa) {
      train << json{{"messages",
                     {{{"role", "user"}, {"content", q}},
                      {{"role", "assistant"}, {"content", "</think><answer>" + a + "</answer>"}}}}}
                   .dump()
            << "\n";
      eval << json{{"prompt", q}, {"answer", a}}.dump() << "\n";
    }
    train.close();
    sft_ = new Result(run("sft --config configs/sft-tiny.yaml --quiet sft.model=" + dir_ + "/student.json" +
                          " sft.data.files=[" + dir_ + "/train.jsonl] sft.epochs=60 sft.batch_size=4" +
                          " sft.seq_len=64 sft.optim.lr=1.0e-2 sft.threads=2 sft.out_dir=" + dir_ + "/student" +
                          " sft.log_dir=" + dir_ + "/logs"));
  }
  static void TearDownTestSuite() {
    delete sft_;
    fs::remove_all(dir_);
  }

  // Runs `grpo ARGS` from the source root (the config's paths are relative to it).
  static Result run(const std::string& args, const std::string& stdin_text = "") {
    return grpo_test::run_grpo_in_source(args, dir_, stdin_text);
  }

  static std::string dir_;
  static Result* sft_;
};
std::string CliSft::dir_;
Result* CliSft::sft_ = nullptr;

TEST_F(CliSft, TrainsAndSavesTheStudent) {
  ASSERT_EQ(sft_->code, 0) << sft_->err;
  const json s = json::parse(sft_->out);
  EXPECT_EQ(s["steps"], 60);
  EXPECT_EQ(s["examples"], 4);
  EXPECT_EQ(s["bad_records"], 0);
  EXPECT_GT(s["first_loss"].get<double>(), 4.0);
  EXPECT_LT(s["final_loss"].get<double>(), 0.05);
  for (const char* f :
       {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "generation_config.json"})
    EXPECT_TRUE(fs::exists(dir_ + "/student/" + f)) << f;
  const json generation = json::parse(std::ifstream(dir_ + "/student/generation_config.json"));
  EXPECT_EQ(generation["bos_token_id"], 0) << generation;  // the tiny-zero tokenizer's
  EXPECT_EQ(generation["eos_token_id"], 1) << generation;
  EXPECT_TRUE(fs::exists(dir_ + "/logs/metrics.jsonl"));
}

TEST_F(CliSft, EvalOfTheDenseCheckpointPrintsTheSummary) {
  ASSERT_EQ(sft_->code, 0) << sft_->err;
  Result r = run("eval --model " + dir_ + "/student --data " + dir_ + "/eval.jsonl" +
                 " --template configs/chat_templates/tiny-zero.yaml --verifier math --format-verifier ''" +
                 " --temperature 0 --max-new-tokens 16 --samples 2 --threads 1 --quiet");
  ASSERT_EQ(r.code, 0) << r.err;
  const json s = json::parse(r.out);
  EXPECT_EQ(s["prompts"], 4);
  EXPECT_EQ(s["samples"], 8);
  EXPECT_EQ(s["metrics"]["pass@1"], 1.0) << r.out;  // the memorised answers, greedy
  EXPECT_EQ(s["metrics"]["pass@k"]["2"], 1.0);
  EXPECT_EQ(s["metrics"]["truncated_rate"], 0.0);
}

// With --config, eval scores as training does: reward.verifier (the r1 composite) with
// reward.options ({format: {prompt_opens_think: true}}: the tiny-zero template opens <think>), so
// each sample's reward is `grpo verify`'s with the same verifier and options, and the format rate
// counts the student's "</think><answer>N</answer>" as well-formed.
TEST_F(CliSft, EvalWithTheRunConfigScoresAsTraining) {
  ASSERT_EQ(sft_->code, 0) << sft_->err;
  Result r = run("eval --config configs/tiny-zero.yaml --model " + dir_ + "/student --data " + dir_ +
                 "/eval.jsonl --temperature 0 --max-new-tokens 16 --threads 1 --quiet --samples-out " + dir_ +
                 "/samples.jsonl");
  ASSERT_EQ(r.code, 0) << r.err;
  const json s = json::parse(r.out);
  EXPECT_EQ(s["verifier"], "r1");
  EXPECT_EQ(s["metrics"]["format_rate"], 1.0) << r.out;
  std::ifstream in(dir_ + "/samples.jsonl");
  std::string verify_input;
  std::vector<double> rewards;
  for (std::string line; std::getline(in, line);) {
    const json sample = json::parse(line);
    verify_input += json{{"completion", sample["completion"]}, {"reference", sample["reference"]}}.dump() + "\n";
    rewards.push_back(sample["reward"]);
  }
  ASSERT_EQ(rewards.size(), 4u);
  Result v =
      run("verify --config configs/reward.yaml --verifier r1 --options '{\"format\": {\"prompt_opens_think\": true}}'",
          verify_input);
  ASSERT_EQ(v.code, 0) << v.err;
  const std::vector<json> verdicts = grpo_test::json_lines(v.out);
  ASSERT_EQ(verdicts.size(), rewards.size()) << v.out;
  for (size_t i = 0; i < rewards.size(); ++i) {
    EXPECT_DOUBLE_EQ(rewards[i], verdicts[i]["reward"].get<double>()) << verdicts[i];
    EXPECT_DOUBLE_EQ(rewards[i], 1.1) << verdicts[i];  // accuracy 1 + format 0.1 + no overlong penalty
  }
}

// The eval command of configs/sft-tiny.yaml's header, as written there (the student's directory
// aside), on the student it trains.
TEST_F(CliSft, TheEvalCommandOfTheSftTinyHeaderRuns) {
  ASSERT_EQ(sft_->code, 0) << sft_->err;
  std::ifstream config(std::string(GRPO_SOURCE_DIR) + "/configs/sft-tiny.yaml");
  std::string command;
  for (std::string line; std::getline(config, line) && command.empty();)
    if (line.rfind("#   grpo eval ", 0) == 0) command = line.substr(std::string("#   grpo ").size());
  ASSERT_NE(command, "");
  const std::string student = "runs/sft-tiny/student";
  ASSERT_NE(command.find(student), std::string::npos) << command;
  command.replace(command.find(student), student.size(), dir_ + "/student");
  Result r = run(command + " --max-new-tokens 16 --threads 1 --quiet");
  ASSERT_EQ(r.code, 0) << command << "\n" << r.err;
  EXPECT_EQ(json::parse(r.out)["prompts"], 50) << r.out;
}

TEST_F(CliSft, GenerateAndLogprobsTakeDenseCheckpoints) {
  ASSERT_EQ(sft_->code, 0) << sft_->err;
  const std::string model = dir_ + "/student";
  Result g = run("generate --model " + model + " --tokenizer " + model + " --prompt 'User: 8+8\nAssistant: <think>'" +
                 " --max-new-tokens 16 --threads 1");
  ASSERT_EQ(g.code, 0) << g.err;
  const json line = json::parse(g.out);
  EXPECT_EQ(line["text"], "</think><answer>16</answer>");
  EXPECT_EQ(line["finish_reason"], "eos");
  // logprobs of the generated sequence match the sampler's greedy log-probs.
  std::vector<int64_t> ids = {0};
  Result tok = run("tokenize --tokenizer " + model, json{{"text", "User: 8+8\nAssistant: <think>"}}.dump() + "\n");
  ASSERT_EQ(tok.code, 0) << tok.err;
  const json prompt_ids = json::parse(tok.out)["ids"];
  ASSERT_GT(prompt_ids.size(), 5u) << tok.out;
  for (const auto& id : prompt_ids) ids.push_back(id.get<int64_t>());
  const size_t prompt = ids.size();
  for (const auto& id : line["output_ids"]) ids.push_back(id.get<int64_t>());
  Result lp = run("logprobs --model " + model + " --threads 1", json{{"ids", ids}}.dump() + "\n");
  ASSERT_EQ(lp.code, 0) << lp.err;
  const json lps = json::parse(lp.out)["logprobs"];
  ASSERT_EQ(lps.size(), ids.size() - 1);
  for (size_t t = 0; t < line["logprobs"].size(); ++t)
    EXPECT_NEAR(lps[prompt - 1 + t].get<double>(), line["logprobs"][t].get<double>(), 1e-4) << t;

  // init-model writes a random dense checkpoint (HF names) that logprobs reads.
  Result init = run("init-model --config configs/tiny-zero/student.json --out " + dir_ + "/random --dtype fp32");
  ASSERT_EQ(init.code, 0) << init.err;
  Result lp2 = run("logprobs --model " + dir_ + "/random --threads 1", "{\"ids\": [0, 5, 9]}\n");
  ASSERT_EQ(lp2.code, 0) << lp2.err;
  EXPECT_EQ(json::parse(lp2.out)["logprobs"].size(), 2u);
}

TEST_F(CliSft, BadDataIsNamedByFileAndLine) {
  std::ofstream(dir_ + "/bad.jsonl")
      << R"({"messages": [{"role": "user", "content": "1+1"}, {"role": "assistant", "content": "2"}]})"
      << "\n"
      << R"({"messages": [{"role": "user", "content": "no answer"}]})"
      << "\n";
  const std::string common = "sft --config configs/sft-tiny.yaml --quiet sft.model=" + dir_ +
                             "/student.json sft.data.files=[" + dir_ + "/bad.jsonl] sft.epochs=1 sft.out_dir=" + dir_ +
                             "/bad_out";
  Result r = run(common);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find(dir_ + "/bad.jsonl:2: messages[0].role"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir_ + "/bad_out"));
  // skip_bad: trains on the good record, counts the bad one.
  Result skipped = run(common + " sft.data.skip_bad=true");
  ASSERT_EQ(skipped.code, 0) << skipped.err;
  EXPECT_EQ(json::parse(skipped.out)["bad_records"], 1);
  EXPECT_EQ(json::parse(skipped.out)["examples"], 1);
}

// SIGTERM during `grpo sft` (stderr in a pipe): the start banner, plain progress lines, then
// training ends after the current step and the student of that step is saved, as the message says.
TEST_F(CliSft, SigtermEndsTrainingAndSavesTheStudent) {
  const std::string out_dir = dir_ + "/stopped";
  grpo::testing::Subprocess p({"/bin/sh", "-c",
                               "cd " + std::string(GRPO_SOURCE_DIR) + " && exec " + GRPO_BINARY +
                                   " sft --config configs/sft-tiny.yaml sft.model=" + dir_ +
                                   "/student.json sft.data.files=[" + dir_ +
                                   "/train.jsonl] sft.epochs=100000 sft.batch_size=4 sft.out_dir=" + out_dir +
                                   " sft.log_dir=" + dir_ + "/stopped_logs 2>&1"});
  std::string seen;
  try {
    for (std::string l; l.rfind("sft 1/100000 [", 0) != 0;) seen += (l = p.read_line(120'000)) + "\n";
  } catch (const std::exception& e) {
    FAIL() << e.what() << "\n" << seen;
  }
  p.signal(SIGTERM);
  const std::string out = seen + p.read_all();
  ASSERT_EQ(p.wait(60'000), 128 + SIGTERM) << out;
  EXPECT_EQ(out.rfind("sft: configs/sft-tiny.yaml: model " + dir_ +
                          "/student.json (random init), 100000 epochs of 4 "
                          "examples, ",
                      0),
            0u)
      << out;
  EXPECT_EQ(out.find('\r'), std::string::npos) << out;
  const auto at = out.find("sft: stopped at step ");
  ASSERT_NE(at, std::string::npos) << out;
  const int steps = std::stoi(out.substr(at + 21));
  EXPECT_GE(steps, 1);
  EXPECT_LT(steps, 100000);
  EXPECT_NE(out.find("; the model after " + std::to_string(steps) + " steps is saved in " + out_dir +
                     " (sft does not resume: the same command starts over)"),
            std::string::npos)
      << out;
  EXPECT_TRUE(fs::exists(out_dir + "/model.safetensors"));
}

}  // namespace
