// HF checkpoint load/save: the HF-written fixture, raw bit-exact round trips, sharding, FP8 saving,
// and bad checkpoints reported with file and tensor named.
#include "model/checkpoint.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <limits>
#include <set>

#include "common/error.h"
#include "model/fp8.h"
#include "model_ckpt_testutil.h"

namespace grpo {
namespace {

namespace fs = std::filesystem;
using ckpt_test::TempDir;

const std::string kTiny = std::string(GRPO_TEST_DATA) + "/dsv3-tiny";

nlohmann::json tiny_config() {
  std::ifstream in(kTiny + "/config.json");
  return nlohmann::json::parse(in);
}

TEST(Checkpoint, LoadsTheHfFixture) {
  auto w = load_weights(kTiny);
  ASSERT_TRUE(w.count("model.embed_tokens.weight"));
  EXPECT_EQ(w.at("model.embed_tokens.weight").sizes(), (std::vector<int64_t>{512, 64}));
  EXPECT_EQ(w.at("model.embed_tokens.weight").scalar_type(), at::kFloat);
  EXPECT_TRUE(w.count("lm_head.weight"));
  auto bf = load_weights(kTiny, at::kBFloat16);
  EXPECT_EQ(bf.at("lm_head.weight").scalar_type(), at::kBFloat16);
  EXPECT_TRUE(at::equal(bf.at("lm_head.weight"), w.at("lm_head.weight").to(at::kBFloat16)));
}

TEST(Checkpoint, SaveWeightsThenLoadWeightsF32IsExact) {
  TempDir tmp;
  auto w = load_weights(kTiny);
  const std::string out = tmp / "ckpt";
  save_weights(out, w, tiny_config());
  EXPECT_TRUE(fs::exists(out + "/model.safetensors"));
  EXPECT_TRUE(fs::exists(out + "/config.json"));
  EXPECT_FALSE(fs::exists(out + ".tmp"));
  auto back = load_weights(out);
  ASSERT_EQ(back.size(), w.size());
  for (const auto& [name, t] : w) EXPECT_TRUE(at::equal(back.at(name), t)) << name;
}

TEST(Checkpoint, SaveWeightsBf16StoresBf16) {
  TempDir tmp;
  auto w = load_weights(kTiny);
  save_weights(tmp / "ckpt", w, tiny_config(), SaveOptions{5LL << 30, DType::BF16});
  auto raw = load_checkpoint_raw(tmp / "ckpt");
  EXPECT_EQ(raw.at("lm_head.weight").dtype, DType::BF16);
  auto back = load_weights(tmp / "ckpt", at::kBFloat16);
  EXPECT_TRUE(at::equal(back.at("lm_head.weight"), w.at("lm_head.weight").to(at::kBFloat16)));
  std::ifstream in(tmp / "ckpt/config.json");
  EXPECT_EQ(nlohmann::json::parse(in)["dtype"], "bfloat16");
}

std::string bytes_of(const at::Tensor& t) {
  at::Tensor c = t.contiguous();
  return std::string(static_cast<const char*>(c.data_ptr()), c.numel() * c.element_size());
}

void expect_same_raw(const std::map<std::string, StoredTensor>& a, const std::map<std::string, StoredTensor>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, t] : a) {
    ASSERT_TRUE(b.count(name)) << name;
    EXPECT_EQ(b.at(name).dtype, t.dtype) << name;
    EXPECT_EQ(b.at(name).data.sizes(), t.data.sizes()) << name;
    EXPECT_EQ(bytes_of(b.at(name).data), bytes_of(t.data)) << name;
  }
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

TEST(Checkpoint, RawRoundTripOfTheHfFixtureIsByteIdentical) {
  TempDir tmp;
  auto raw = load_checkpoint_raw(kTiny);
  save_checkpoint_raw(tmp / "out", raw, tiny_config());
  expect_same_raw(raw, load_checkpoint_raw(tmp / "out"));
  // Same layout rules as HF's writer: the whole file comes out identical.
  EXPECT_EQ(ckpt_test::read_bytes(tmp / "out/model.safetensors"), ckpt_test::read_bytes(kTiny + "/model.safetensors"));
  EXPECT_EQ(read_json(tmp / "out/config.json"), tiny_config());
}

TEST(Checkpoint, ShardedSaveWritesHfIndexAndLoadsBack) {
  TempDir tmp;
  auto raw = load_checkpoint_raw(kTiny);
  const int64_t max_shard = 200000;
  save_checkpoint_raw(tmp / "out", raw, tiny_config(), max_shard);
  EXPECT_FALSE(fs::exists(tmp / "out/model.safetensors"));
  const auto index = read_json(tmp / "out/model.safetensors.index.json");
  int64_t total = 0;
  for (const auto& [name, t] : raw) total += t.data.numel() * (int64_t)dtype_size(t.dtype);
  EXPECT_EQ(index["metadata"]["total_size"].get<int64_t>(), total);
  ASSERT_EQ(index["weight_map"].size(), raw.size());
  std::set<std::string> shards;
  for (const auto& [name, shard] : index["weight_map"].items()) shards.insert(shard.get<std::string>());
  ASSERT_GE(shards.size(), 4u);
  const std::string n = std::to_string(shards.size());
  EXPECT_TRUE(shards.count("model-00001-of-0000" + n + ".safetensors"));
  EXPECT_TRUE(shards.count("model-0000" + n + "-of-0000" + n + ".safetensors"));
  for (const auto& shard : shards) {
    SafetensorsReader r(tmp / ("out/" + shard));
    EXPECT_EQ(r.metadata().at("format"), "pt");
    int64_t bytes = 0;
    for (const auto& name : r.names()) bytes += r.get(name).data.numel() * (int64_t)dtype_size(r.dtype(name));
    EXPECT_TRUE(bytes <= max_shard || r.names().size() == 1) << shard;
  }
  expect_same_raw(raw, load_checkpoint_raw(tmp / "out"));
  auto w = load_weights(tmp / "out");
  for (const auto& [name, t] : load_weights(kTiny)) EXPECT_TRUE(at::equal(w.at(name), t)) << name;
}

TEST(Checkpoint, SaveReplacesOldWeightsButKeepsOtherFiles) {
  TempDir tmp;
  const std::string out = tmp / "out";
  save_checkpoint_raw(out, load_checkpoint_raw(kTiny), tiny_config(), 200000);  // sharded
  ckpt_test::write_bytes(out + "/tokenizer.json", "{\"tok\": 1}");
  std::map<std::string, StoredTensor> small{{"x", {at::ones({3}), DType::F32}}};
  save_checkpoint_raw(out, small, nlohmann::json{{"a", 1}});
  std::set<std::string> files;
  for (const auto& e : fs::directory_iterator(out)) files.insert(e.path().filename().string());
  EXPECT_EQ(files, (std::set<std::string>{"config.json", "model.safetensors", "tokenizer.json"}));
  EXPECT_EQ(ckpt_test::read_bytes(out + "/tokenizer.json"), "{\"tok\": 1}");
  expect_same_raw(small, load_checkpoint_raw(out));
  EXPECT_FALSE(fs::exists(out + ".tmp"));
}

TEST(Checkpoint, FailedSaveLeavesTheOldCheckpointUntouched) {
  TempDir tmp;
  const std::string out = tmp / "out";
  save_checkpoint_raw(out, load_checkpoint_raw(kTiny), tiny_config());
  const std::string before = ckpt_test::read_bytes(out + "/model.safetensors");
  fs::create_directories(out + ".tmp/junk");  // leftover of an interrupted save
  std::map<std::string, StoredTensor> bad{{"a", {at::ones({3}), DType::F32}}, {"b", {at::ones({3}), DType::BF16}}};
  ckpt_test::expect_input_error([&] { save_checkpoint_raw(out, bad, tiny_config()); }, {"tensor 'b'", "BF16"});
  EXPECT_EQ(ckpt_test::read_bytes(out + "/model.safetensors"), before);
  EXPECT_FALSE(fs::exists(out + ".tmp"));
  save_checkpoint_raw(out, {{"a", {at::ones({3}), DType::F32}}}, tiny_config());  // the leftover does not block a save
  EXPECT_TRUE(load_checkpoint_raw(out).count("a"));
}

// Weights named like a DeepSeek-V3 layer, shapes not multiples of 128.
std::map<std::string, at::Tensor> v3_like_weights() {
  at::manual_seed(11);
  std::map<std::string, at::Tensor> w;
  w["model.embed_tokens.weight"] = at::randn({50, 200});
  w["lm_head.weight"] = at::randn({50, 200});
  w["model.norm.weight"] = at::rand({200}) + 0.5;
  w["model.layers.0.self_attn.q_b_proj.weight"] = at::randn({300, 200}) * 0.02;
  w["model.layers.0.self_attn.kv_a_layernorm.weight"] = at::rand({64});
  w["model.layers.0.mlp.gate.weight"] = at::randn({8, 200});
  w["model.layers.0.mlp.gate.e_score_correction_bias"] = at::randn({8}) * 1e-3 + 1.0;
  w["model.layers.0.mlp.experts.0.gate_proj.weight"] = at::randn({130, 200}) * 3;
  w["model.layers.0.mlp.experts.0.down_proj.weight"] = at::randn({200, 130}) * 1e-4;
  w["model.layers.0.mlp.experts.0.down_proj.weight"].slice(0, 0, 128).slice(1, 0, 128).zero_();
  w["step"] = at::tensor({7}, at::kLong);
  return w;
}

TEST(Checkpoint, Fp8SaveQuantisesLikeDeepSeekV3AndLoadDequantisesWithinBound) {
  TempDir tmp;
  const auto w = v3_like_weights();
  save_weights(tmp / "fp8", w, nlohmann::json{{"model_type", "deepseek_v3"}, {"torch_dtype", "float32"}},
               SaveOptions{5LL << 30, DType::F8_E4M3});
  const auto cfg = read_json(tmp / "fp8/config.json");
  EXPECT_EQ(cfg["quantization_config"], (nlohmann::json{{"quant_method", "fp8"},
                                                        {"fmt", "e4m3"},
                                                        {"activation_scheme", "dynamic"},
                                                        {"weight_block_size", {128, 128}}}));
  EXPECT_EQ(cfg["torch_dtype"], "bfloat16");
  EXPECT_EQ(cfg["model_type"], "deepseek_v3");

  const auto raw = load_checkpoint_raw(tmp / "fp8");
  const std::set<std::string> quantised = {"model.layers.0.self_attn.q_b_proj.weight",
                                           "model.layers.0.mlp.experts.0.gate_proj.weight",
                                           "model.layers.0.mlp.experts.0.down_proj.weight"};
  for (const auto& [name, t] : w) {
    if (quantised.count(name)) {
      EXPECT_EQ(raw.at(name).dtype, DType::F8_E4M3) << name;
      const auto& s = raw.at(name + "_scale_inv");
      EXPECT_EQ(s.dtype, DType::F32);
      EXPECT_EQ(s.data.sizes(), (std::vector<int64_t>{(t.size(0) + 127) / 128, (t.size(1) + 127) / 128})) << name;
    } else {
      EXPECT_FALSE(raw.count(name + "_scale_inv")) << name;
    }
  }
  EXPECT_EQ(raw.at("model.embed_tokens.weight").dtype, DType::BF16);
  EXPECT_EQ(raw.at("lm_head.weight").dtype, DType::BF16);
  EXPECT_EQ(raw.at("model.norm.weight").dtype, DType::BF16);
  EXPECT_EQ(raw.at("model.layers.0.mlp.gate.weight").dtype, DType::BF16);
  EXPECT_EQ(raw.at("model.layers.0.mlp.gate.e_score_correction_bias").dtype, DType::F32);
  EXPECT_EQ(raw.at("step").dtype, DType::I64);

  const auto back = load_weights(tmp / "fp8");
  EXPECT_EQ(back.size(), w.size());  // scale entries consumed
  for (const auto& name : quantised) {
    const at::Tensor &x = w.at(name), &xhat = back.at(name);
    const at::Tensor s = raw.at(name + "_scale_inv").data;
    ASSERT_EQ(xhat.sizes(), x.sizes());
    auto xa = x.accessor<float, 2>();
    auto ha = xhat.accessor<float, 2>();
    auto sa = s.accessor<float, 2>();
    double worst = 0;
    for (int64_t r = 0; r < x.size(0); ++r)
      for (int64_t c = 0; c < x.size(1); ++c) {
        const double bound = ckpt_test::fp8_element_bound(xa[r][c], sa[r / 128][c / 128]);
        const double err = std::fabs((double)ha[r][c] - xa[r][c]);
        ASSERT_LE(err, bound) << name << " at " << r << "," << c;
        worst = std::max(worst, err / bound);
      }
    EXPECT_GT(worst, 0.25) << name;
  }
  EXPECT_TRUE(at::equal(back.at("model.embed_tokens.weight"),
                        w.at("model.embed_tokens.weight").to(at::kBFloat16).to(at::kFloat)));
  EXPECT_TRUE(at::equal(back.at("model.layers.0.mlp.gate.e_score_correction_bias"),
                        w.at("model.layers.0.mlp.gate.e_score_correction_bias")));
  EXPECT_TRUE(at::equal(back.at("step"), w.at("step")));

  // Saving unquantised again drops quantization_config.
  save_weights(tmp / "bf16", back, cfg, SaveOptions{5LL << 30, DType::BF16});
  EXPECT_FALSE(read_json(tmp / "bf16/config.json").contains("quantization_config"));
}

TEST(Checkpoint, Bf16AndFp8RawRoundTripIsBitExact) {
  TempDir tmp;
  save_weights(tmp / "a", v3_like_weights(), nlohmann::json::object(), SaveOptions{5LL << 30, DType::F8_E4M3});
  const auto raw = load_checkpoint_raw(tmp / "a");
  save_checkpoint_raw(tmp / "b", raw, read_json(tmp / "a/config.json"));
  expect_same_raw(raw, load_checkpoint_raw(tmp / "b"));
  EXPECT_EQ(ckpt_test::read_bytes(tmp / "b/model.safetensors"), ckpt_test::read_bytes(tmp / "a/model.safetensors"));
  save_checkpoint_raw(tmp / "c", raw, nullptr, 30000);  // sharded, no config
  expect_same_raw(raw, load_checkpoint_raw(tmp / "c"));
  EXPECT_FALSE(fs::exists(tmp / "c/config.json"));
}

TEST(Checkpoint, BlockSizeComesFromConfig) {
  TempDir tmp;
  at::manual_seed(12);
  const at::Tensor x = at::randn({100, 70});
  const Fp8Blocks b = quantize_fp8_blocks(x, 64);
  std::map<std::string, StoredTensor> raw{{"l.weight", {b.q, DType::F8_E4M3}},
                                          {"l.weight_scale_inv", {b.scale, DType::F32}}};
  save_checkpoint_raw(tmp / "c", raw, nlohmann::json{{"quantization_config", {{"weight_block_size", {64, 64}}}}});
  const auto w = load_weights(tmp / "c");
  EXPECT_TRUE(at::equal(w.at("l.weight"), dequantize_fp8_blocks(b.q, b.scale, 64)));
  EXPECT_FALSE(w.count("l.weight_scale_inv"));
}

TEST(Checkpoint, Fp8WithoutScaleIsDecoded) {
  TempDir tmp;
  at::Tensor codes = at::tensor({0x38, 0x39, 0xB8}, at::kInt).to(at::kByte);
  const at::Tensor e4m3 = codes.view(at::kFloat8_e4m3fn), e5m2 = codes.view(at::kFloat8_e5m2);
  write_safetensors(tmp / "f.safetensors", {{"a", {e4m3, DType::F8_E4M3}}, {"b", {e5m2, DType::F8_E5M2}}});
  const auto w = load_weights(tmp / "f.safetensors");
  EXPECT_TRUE(at::equal(w.at("a"), at::tensor({1.0f, 1.125f, -1.0f})));
  EXPECT_TRUE(at::equal(w.at("b"), fp8_decode(e5m2)));
}

// ---- bad checkpoints

// A 3-shard copy of the fixture in tmp/"c"; returns its index path.
std::string sharded_fixture(const TempDir& tmp) {
  save_checkpoint_raw(tmp / "c", load_checkpoint_raw(kTiny), tiny_config(), 350000);
  return tmp / "c/model.safetensors.index.json";
}

TEST(CheckpointBadInput, MissingShardFile) {
  TempDir tmp;
  const std::string index = sharded_fixture(tmp);
  const auto j = read_json(index);
  const std::string shard = j["weight_map"]["model.norm.weight"];
  fs::remove(tmp / ("c/" + shard));
  ckpt_test::expect_input_error([&] { load_weights(tmp / "c"); }, {index, "shard '" + shard + "'", "missing"});
}

TEST(CheckpointBadInput, TensorListedInIndexButAbsentFromShard) {
  TempDir tmp;
  const std::string index = sharded_fixture(tmp);
  auto j = read_json(index);
  j["weight_map"]["model.ghost.weight"] = j["weight_map"]["model.norm.weight"];
  ckpt_test::write_bytes(index, j.dump());
  ckpt_test::expect_input_error([&] { load_checkpoint_raw(tmp / "c"); },
                                {index, "tensor 'model.ghost.weight'",
                                 j["weight_map"]["model.norm.weight"].get<std::string>(), "does not contain it"});
}

TEST(CheckpointBadInput, BrokenIndex) {
  TempDir tmp;
  const std::string index = sharded_fixture(tmp);
  ckpt_test::write_bytes(index, "{\"weight_map\": {");
  ckpt_test::expect_input_error([&] { load_checkpoint_raw(tmp / "c"); }, {index, "not valid JSON"});
  ckpt_test::write_bytes(index, "{\"metadata\": {}}");
  ckpt_test::expect_input_error([&] { load_checkpoint_raw(tmp / "c"); }, {index, "weight_map"});
  ckpt_test::write_bytes(index, "{\"weight_map\": {\"a\": \"../x.safetensors\"}}");
  ckpt_test::expect_input_error([&] { load_checkpoint_raw(tmp / "c"); }, {index, "tensor 'a'", "../x.safetensors"});
}

TEST(CheckpointBadInput, CorruptShardNamesTheShard) {
  TempDir tmp;
  const std::string index = sharded_fixture(tmp);
  const std::string shard = tmp / "c/model-00002-of-00003.safetensors";
  ckpt_test::write_bytes(shard, ckpt_test::read_bytes(shard).substr(0, 1000));
  ckpt_test::expect_input_error([&] { load_weights(tmp / "c"); }, {shard});
}

TEST(CheckpointBadInput, NoWeightsInDirectory) {
  TempDir tmp;
  fs::create_directories(tmp / "empty");
  ckpt_test::expect_input_error([&] { load_weights(tmp / "empty"); },
                                {tmp / "empty", "model.safetensors", "model.safetensors.index.json"});
  ckpt_test::expect_input_error([&] { load_weights(tmp / "nothing_here"); }, {tmp / "nothing_here"});
}

TEST(CheckpointBadInput, ScaleWithWrongShape) {
  TempDir tmp;
  const Fp8Blocks b = quantize_fp8_blocks(at::randn({300, 200}));
  const std::string path = tmp / "w.safetensors";
  write_safetensors(path,
                    {{"l.weight", {b.q, DType::F8_E4M3}}, {"l.weight_scale_inv", {at::ones({2, 2}), DType::F32}}});
  ckpt_test::expect_input_error([&] { load_weights(path); },
                                {path, "tensor 'l.weight_scale_inv'", "'l.weight'", "[2, 2]", "need [3, 2]"});
  write_safetensors(path,
                    {{"l.weight", {b.q, DType::F8_E4M3}}, {"l.weight_scale_inv", {b.q.view(at::kByte), DType::U8}}});
  ckpt_test::expect_input_error([&] { load_weights(path); }, {path, "tensor 'l.weight_scale_inv'", "U8"});
}

TEST(CheckpointBadInput, BadWeightBlockSize) {
  TempDir tmp;
  const Fp8Blocks b = quantize_fp8_blocks(at::randn({10, 10}));
  save_checkpoint_raw(tmp / "c", {{"l.weight", {b.q, DType::F8_E4M3}}, {"l.weight_scale_inv", {b.scale, DType::F32}}},
                      nlohmann::json{{"quantization_config", {{"weight_block_size", {128, 0}}}}});
  ckpt_test::expect_input_error([&] { load_weights(tmp / "c"); },
                                {tmp / "c/config.json", "weight_block_size", "[128,0]"});
}

TEST(CheckpointBadInput, NonFiniteWeightCannotBeFp8Saved) {
  TempDir tmp;
  at::Tensor w = at::ones({4, 4});
  w[0][0] = std::numeric_limits<float>::infinity();
  ckpt_test::expect_input_error(
      [&] {
        save_weights(tmp / "c", {{"l.weight", w}}, nlohmann::json::object(), SaveOptions{5LL << 30, DType::F8_E4M3});
      },
      {"tensor 'l.weight'", "inf or NaN"});
  EXPECT_FALSE(fs::exists(tmp / "c"));
}

}  // namespace
}  // namespace grpo
