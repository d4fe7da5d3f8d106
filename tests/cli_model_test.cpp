// `grpo logprobs`, `grpo generate`, `grpo init-model` run as a user runs them, against the
// dsv3-tiny fixture and the in-process model.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "grpo_cli.h"
#include "kernels/cpu_features.h"
#include "kernels/cuda_info.h"
#include "model/deepseek.h"
#include "model/init.h"
#include "model/model_options.h"
#include "model/pretrained.h"
#include "model/safetensors.h"
#include "tokenizer/tokenizer.h"

using nlohmann::json;

using Result = grpo_test::CliResult;

namespace {

const std::string kFixture = std::string(GRPO_TEST_DATA) + "/dsv3-tiny";

class CliModel : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "grpo_cli_model_XXXXXX").string();
    dir_ = ::mkdtemp(tmpl.data());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }

  // Runs `grpo ARGS` with `input` on stdin; stdout and stderr kept apart.
  Result run(const std::string& args, const std::string& input = "") const {
    return grpo_test::run_grpo(args, dir_, input);
  }
  static std::vector<json> lines(const std::string& out) { return grpo_test::json_lines(out); }

  static at::Tensor reference(const std::string& name) {
    return grpo::SafetensorsReader(kFixture + "/reference.safetensors").get(name).data.clone();
  }
  // A completion's text: its tokens decoded with added tokens kept, less the EOS that ended it.
  static std::string text_of(const grpo::Tokenizer& t, const json& completion) {
    std::vector<int32_t> ids = completion["output_ids"].get<std::vector<int32_t>>();
    if (completion["finish_reason"] == "eos") ids.pop_back();
    return t.decode(ids, false);
  }
  static std::vector<int64_t> row(const at::Tensor& t) {
    at::Tensor r = t.contiguous();
    return std::vector<int64_t>(r.data_ptr<int64_t>(), r.data_ptr<int64_t>() + r.numel());
  }

  std::string dir_;
};

TEST_F(CliModel, LogprobsEqualInProcessAndHf) {
  at::NoGradGuard no_grad;
  at::Tensor ids = reference("input_ids");  // [2, 24]
  std::string input = json({{"ids", row(ids[0])}}).dump() + "\n{\"ids\": [1, 2\n" +
                      json({{"ids", row(ids[1])}}).dump() + "\n{\"ids\": [1, 512]}\n";
  Result r = run("logprobs --model " + kFixture + " --threads 1", input);
  EXPECT_EQ(r.code, 1) << r.err;  // two bad lines
  std::vector<json> out = lines(r.out);
  ASSERT_EQ(out.size(), 4u) << r.out;
  EXPECT_EQ(out[1]["error"].get<std::string>().rfind("line 2: invalid JSON", 0), 0u) << out[1];
  EXPECT_EQ(out[3]["error"], "line 4: \"ids\"[1] = 512 is outside [0, 512)");

  grpo::DeepseekModel m = grpo::load_pretrained(kFixture);
  at::Tensor in_process = at::cat({m.logprobs(ids.narrow(0, 0, 1)), m.logprobs(ids.narrow(0, 1, 1))});  // [2, 23]
  at::Tensor hf =
      reference("logits").narrow(1, 0, 23).log_softmax(-1).gather(-1, ids.narrow(1, 1, 23).unsqueeze(-1)).squeeze(-1);
  for (int b = 0; b < 2; ++b) {
    std::vector<float> got = out[b * 2]["logprobs"].get<std::vector<float>>();
    ASSERT_EQ(got.size(), 23u);
    for (int t = 0; t < 23; ++t) {
      EXPECT_NEAR(got[t], in_process[b][t].item<float>(), 1e-6) << b << "," << t;
      EXPECT_NEAR(got[t], hf[b][t].item<float>(), 1e-4) << b << "," << t;
    }
  }
}

TEST_F(CliModel, GenerateEqualsHfGreedyContinuation) {
  std::vector<int64_t> prompt = row(reference("greedy_prompt")[0]), want = row(reference("greedy_output")[0]);
  std::string ids;
  for (int64_t id : prompt) ids += (ids.empty() ? "" : ",") + std::to_string(id);
  Result r = run("generate --model " + kFixture + " --prompt-ids " + ids + " --max-new-tokens 16 --temperature 0");
  ASSERT_EQ(r.code, 0) << r.err;
  std::vector<json> out = lines(r.out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0]["output_ids"].get<std::vector<int64_t>>(), std::vector<int64_t>(want.begin() + 8, want.end()));

  // Sampling is reproducible for a seed.
  std::string args = "generate --model " + kFixture + " --prompt-ids " + ids +
                     " --max-new-tokens 12 --temperature 1 --top-p 0.9 --top-k 50 --seed 5";
  EXPECT_EQ(run(args).out, run(args).out);
}

// `--n` samples per prompt through the rollout engine; at T = 1 without truncation the reported
// log-probs are what `grpo logprobs` says about the same tokens.
TEST_F(CliModel, GenerateGroupsLogprobsEqualLogprobsCommand) {
  std::ofstream(path("prompts.jsonl")) << "{\"prompt_ids\": [3, 17, 40, 2]}\n\n{\"prompt_ids\": [9]}\n";
  Result r = run("generate --model " + kFixture + " --prompts " + path("prompts.jsonl") +
                 " --n 3 --max-new-tokens 7 --temperature 1 --seed 4 --max-seqs 4");
  ASSERT_EQ(r.code, 0) << r.err;
  std::vector<json> out = lines(r.out);
  ASSERT_EQ(out.size(), 6u) << r.out;
  std::string lp_input;
  for (size_t i = 0; i < out.size(); ++i) {
    EXPECT_EQ(out[i]["prompt_index"], i / 3);
    EXPECT_EQ(out[i]["sample"], i % 3);
    EXPECT_EQ(out[i]["weight_version"], 0);
    std::vector<int64_t> ids = i < 3 ? std::vector<int64_t>{3, 17, 40, 2} : std::vector<int64_t>{9};
    std::vector<int64_t> gen = out[i]["output_ids"].get<std::vector<int64_t>>();
    EXPECT_EQ(out[i]["logprobs"].size(), gen.size());
    EXPECT_EQ(out[i]["finish_reason"], gen.size() == 7 ? "length" : "eos");
    ids.insert(ids.end(), gen.begin(), gen.end());
    lp_input += json({{"ids", ids}}).dump() + "\n";
  }
  Result lp = run("logprobs --model " + kFixture, lp_input);
  ASSERT_EQ(lp.code, 0) << lp.err;
  std::vector<json> want = lines(lp.out);
  for (size_t i = 0; i < out.size(); ++i) {
    std::vector<float> got = out[i]["logprobs"].get<std::vector<float>>();
    std::vector<float> all = want[i]["logprobs"].get<std::vector<float>>();
    for (size_t t = 0; t < got.size(); ++t)
      EXPECT_NEAR(got[t], all[all.size() - got.size() + t], 1e-4) << i << "," << t;
  }
  // Seeded: the same command gives the same lines.
  EXPECT_EQ(run("generate --model " + kFixture + " --prompts " + path("prompts.jsonl") +
                " --n 3 --max-new-tokens 7 --temperature 1 --seed 4 --max-seqs 4")
                .out,
            r.out);
  // Bad input names the prompt and the field; nothing is printed.
  Result bad = run("generate --model " + kFixture + " --prompt-ids 1,2,512 --max-new-tokens 3");
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.err.find("prompt 0: prompt[2]: token id 512 is outside the vocabulary [0, 512)"), std::string::npos)
      << bad.err;
  EXPECT_EQ(bad.out, "");
}

TEST_F(CliModel, InitModelThenLogprobsAndPromptGeneration) {
  json config = json::parse(std::ifstream(kFixture + "/config.json"));
  config["vocab_size"] = 3000;  // the bpe-tokenizer fixture's vocabulary
  std::filesystem::create_directories(path("cfg"));
  std::ofstream(path("cfg/config.json")) << config.dump(2);

  for (std::string dtype : {"fp32", "bf16", "fp8"}) {
    std::string out = path("ckpt-" + dtype);
    Result init =
        run("init-model --config " + path("cfg/config.json") + " --out " + out + " --seed 3 --dtype " + dtype);
    ASSERT_EQ(init.code, 0) << init.err;
    Result lp = run("logprobs --model " + out, "{\"ids\": [5, 17, 2999, 4]}\n");
    ASSERT_EQ(lp.code, 0) << lp.err;
    std::vector<float> got = lines(lp.out)[0]["logprobs"].get<std::vector<float>>();
    ASSERT_EQ(got.size(), 3u);
    for (float v : got) EXPECT_TRUE(std::isfinite(v) && v < 0) << dtype;
    if (dtype == "fp32") {  // the same weights as init_weights(seed 3) in process
      at::NoGradGuard no_grad;
      grpo::ModelOptions o;
      o.mtp = true;
      grpo::DeepseekModel m(grpo::ModelConfig::load(path("cfg")), o);
      grpo::init_weights(m, 3);
      at::Tensor want = m.logprobs(at::tensor(std::vector<int64_t>{5, 17, 2999, 4}, at::kLong).unsqueeze(0))[0];
      for (int t = 0; t < 3; ++t) EXPECT_NEAR(got[t], want[t].item<float>(), 1e-6);
      EXPECT_TRUE(std::filesystem::exists(out + "/config.json"));
    }
  }

  std::string tok = std::string(GRPO_TEST_DATA) + "/bpe-tokenizer/tokenizer.json";
  Result g = run("generate --model " + path("ckpt-fp32") + " --tokenizer " + tok +
                 " --prompt 'Solve 2+2. <think>' --max-new-tokens 6");
  ASSERT_EQ(g.code, 0) << g.err;
  json j = lines(g.out)[0];
  std::vector<int64_t> got = j["output_ids"].get<std::vector<int64_t>>();
  EXPECT_GE(got.size(), 1u);
  grpo::Tokenizer t = grpo::Tokenizer::load(tok);
  EXPECT_EQ(j["text"], text_of(t, j));

  // Text prompts from a file (chat-template's {"text"} lines too), groups, FP8 weights kept FP8.
  std::ofstream(path("texts.jsonl")) << "{\"text\": \"Solve 2+2. <think>\"}\n{\"prompt\": \"1+1=\"}\n";
  Result many = run("generate --model " + path("ckpt-fp8") + " --dtype fp8 --tokenizer " + tok + " --prompts " +
                    path("texts.jsonl") + " --n 2 --max-new-tokens 4 --temperature 1 --seed 2");
  ASSERT_EQ(many.code, 0) << many.err;
  std::vector<json> ls = lines(many.out);
  ASSERT_EQ(ls.size(), 4u) << many.out;
  for (size_t i = 0; i < ls.size(); ++i) {
    EXPECT_EQ(ls[i]["prompt_index"], i / 2);
    EXPECT_EQ(ls[i]["text"], text_of(t, ls[i]));
  }
}

// --dtype auto picks a dtype by the CPU (model/model_options.h), says which, and computes exactly as
// that dtype named outright does.
TEST_F(CliModel, DtypeAutoSaysItsChoiceAndRunsAsThatDtype) {
  const grpo::AutoDtype chosen = grpo::auto_dtype();
  ASSERT_TRUE(chosen.name == "bf16" || chosen.name == "fp32") << chosen.name;
  EXPECT_EQ(chosen.name == "bf16", !grpo::kernels::cpu_native_bf16().empty());
  const std::string input = "{\"ids\": [5, 17, 9, 4, 11]}\n";
  const Result automatic = run("logprobs --model " + kFixture + " --dtype auto", input);
  ASSERT_EQ(automatic.code, 0) << automatic.err;
  EXPECT_NE(automatic.err.find("logprobs: --dtype auto = " + chosen.name + " (" + chosen.reason + ")"),
            std::string::npos)
      << automatic.err;
  const Result named = run("logprobs --model " + kFixture + " --dtype " + chosen.name, input);
  ASSERT_EQ(named.code, 0) << named.err;
  EXPECT_EQ(named.err.find("auto"), std::string::npos) << named.err;
  EXPECT_EQ(automatic.out, named.out);

  const Result info = run("info");
  ASSERT_EQ(info.code, 0) << info.err;
  EXPECT_NE(info.out.find("dtype auto    " + chosen.name + " (" + chosen.reason + ")"), std::string::npos) << info.out;

  const Result bad = run("logprobs --model " + kFixture + " --dtype fp16", input);
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.err.find("--dtype: expected fp32, bf16, fp8 or auto, got \"fp16\""), std::string::npos) << bad.err;
}

// --device on the commands that compute: cpu and auto run (auto is the CPU without a GPU, silently);
// a GPU that is not there, or a name that is no device, stops before anything loads, saying why.
TEST_F(CliModel, DeviceFlagChoosesOrStopsWithTheReason) {
  const std::string input = "{\"ids\": [5, 17, 9, 4, 11]}\n";
  const Result cpu = run("logprobs --model " + kFixture + " --device cpu", input);
  ASSERT_EQ(cpu.code, 0) << cpu.err;
  std::string why;
  const bool gpu = !grpo::kernels::cuda_devices(&why).empty();
  const Result automatic = run("logprobs --model " + kFixture, input);
  ASSERT_EQ(automatic.code, 0) << automatic.err;
  if (!gpu) {
    EXPECT_EQ(automatic.out, cpu.out);
    EXPECT_EQ(automatic.err.find("--device"), std::string::npos) << automatic.err;
    for (const char* cmd : {"logprobs --model ", "generate --max-new-tokens 2 --prompt-ids 1,2 --model "}) {
      const Result r = run(std::string(cmd) + kFixture + " --device cuda:1", input);
      EXPECT_EQ(r.code, 2) << cmd;
      EXPECT_NE(r.err.find("--device: cuda:1, but no CUDA device is visible (" + why + ")"), std::string::npos)
          << r.err;
      EXPECT_TRUE(r.out.empty()) << r.out;
    }
  } else {
    EXPECT_NE(automatic.err.find("logprobs: --device auto = cuda:0"), std::string::npos) << automatic.err;
  }
  const Result bad = run("generate --model " + kFixture + " --prompt-ids 1,2 --max-new-tokens 2 --device gpu0");
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.err.find("--device: expected cpu, cuda, cuda:N or auto, got \"gpu0\""), std::string::npos) << bad.err;
  const Result info = run("info");
  EXPECT_NE(info.out.find(std::string("device auto   ") + (gpu ? "cuda:0" : "cpu (no CUDA device visible: " + why)),
            std::string::npos)
      << info.out;
  const Result timed = run("generate --model " + kFixture + " --prompt-ids 1,2,3 --max-new-tokens 4 --n 2 --timing");
  ASSERT_EQ(timed.code, 0) << timed.err;
  EXPECT_NE(timed.err.find("generate: 2 completions, 8 tokens generated in "), std::string::npos) << timed.err;
  EXPECT_NE(timed.err.find(" tokens/s (prompts 6 tokens; model load "), std::string::npos) << timed.err;
  const Result help = run("generate --help");
  EXPECT_NE(help.out.find("--device DEV"), std::string::npos) << help.out;
}

TEST_F(CliModel, BadConfigNamesFileAndKey) {
  json good = json::parse(std::ifstream(kFixture + "/config.json"));
  std::string text = good.dump();
  struct Bad {
    std::string name, content, expect;
  };
  json missing = good;
  missing.erase("kv_lora_rank");
  json arch = good;
  arch["architectures"] = {"LlamaForCausalLM"};
  std::vector<Bad> bad = {
      {"truncated", text.substr(0, text.size() / 2), "invalid JSON"},
      {"missing", missing.dump(), "key 'kv_lora_rank': missing (required)"},
      {"arch", arch.dump(), "key 'architectures': unknown architecture 'LlamaForCausalLM'"},
  };
  for (const Bad& b : bad) {
    std::string d = path(b.name);
    std::filesystem::create_directories(d);
    std::ofstream(d + "/config.json") << b.content;
    Result init = run("init-model --config " + d + "/config.json --out " + path(b.name + "-out"));
    EXPECT_NE(init.code, 0) << b.name;
    EXPECT_NE(init.err.find(d + "/config.json"), std::string::npos) << init.err;
    EXPECT_NE(init.err.find(b.expect), std::string::npos) << init.err;
    EXPECT_FALSE(std::filesystem::exists(path(b.name + "-out")));
    // A checkpoint directory with that config.json.
    std::filesystem::copy_file(kFixture + "/model.safetensors", d + "/model.safetensors");
    Result lp = run("logprobs --model " + d, "{\"ids\": [1, 2]}\n");
    EXPECT_NE(lp.code, 0) << b.name;
    EXPECT_NE(lp.err.find(b.expect), std::string::npos) << lp.err;
    EXPECT_EQ(lp.out, "");
  }
}

}  // namespace
