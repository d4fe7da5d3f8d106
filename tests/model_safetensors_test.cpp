// safetensors reader/writer: round trips of every dtype, HF layout rules, and every malformed-header
// case reported with the file and tensor named.
#include "model/safetensors.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "model_ckpt_testutil.h"

namespace grpo {
namespace {

using ckpt_test::expect_input_error;
using ckpt_test::TempDir;

// Random bytes of the given storage, so round trips compare exact bit patterns (incl. NaN codes).
at::Tensor random_bytes_tensor(at::IntArrayRef shape, at::ScalarType storage) {
  at::Tensor t = at::empty(shape, storage);
  at::Tensor bytes =
      at::randint(0, 256, {t.numel() * (int64_t)t.element_size()}, at::TensorOptions().dtype(at::kByte)).contiguous();
  std::memcpy(t.data_ptr(), bytes.data_ptr(), bytes.numel());
  if (storage == at::kBool) t = bytes.slice(0, 0, t.numel()).remainder(2).to(at::kBool).view(shape);
  return t;
}

std::string bytes_of(const at::Tensor& t) {
  at::Tensor c = t.contiguous();
  return std::string(static_cast<const char*>(c.data_ptr()), c.numel() * c.element_size());
}

TEST(Safetensors, RoundTripsEveryDtypeBitExact) {
  at::manual_seed(7);
  TempDir dir;
  const std::vector<DType> all = {DType::F64, DType::F32, DType::F16, DType::BF16, DType::F8_E4M3, DType::F8_E5M2,
                                  DType::I64, DType::I32, DType::I16, DType::I8,   DType::U8,      DType::BOOL};
  std::vector<std::pair<std::string, StoredTensor>> tensors;
  for (size_t i = 0; i < all.size(); ++i)
    tensors.push_back({std::string("t.") + dtype_name(all[i]),
                       {random_bytes_tensor({3, (int64_t)i + 1}, storage_scalar_type(all[i])), all[i]}});
  tensors.push_back({"scalar", {at::full({}, 2.5f), DType::F32}});
  tensors.push_back({"empty", {at::empty({0, 4}, at::kBFloat16), DType::BF16}});
  const std::string path = dir / "all.safetensors";
  write_safetensors(path, tensors, {{"format", "pt"}, {"note", "x"}});

  SafetensorsReader r(path);
  EXPECT_EQ(r.metadata().at("format"), "pt");
  EXPECT_EQ(r.metadata().at("note"), "x");
  EXPECT_EQ(r.names().size(), tensors.size());
  for (const auto& [name, st] : tensors) {
    ASSERT_TRUE(r.has(name)) << name;
    EXPECT_EQ(r.dtype(name), st.dtype) << name;
    EXPECT_EQ(r.shape(name), st.data.sizes().vec()) << name;
    StoredTensor got = r.get(name);
    EXPECT_EQ(got.dtype, st.dtype);
    EXPECT_EQ(got.data.scalar_type(), storage_scalar_type(st.dtype)) << name;
    EXPECT_EQ(got.data.sizes(), st.data.sizes()) << name;
    EXPECT_EQ(bytes_of(got.data), bytes_of(st.data)) << name;
  }
  EXPECT_FALSE(r.has("nope"));
}

TEST(Safetensors, HeaderIsSpacePaddedAndTensorsAlignedWithoutGaps) {
  TempDir dir;
  const std::string path = dir / "a.safetensors";
  // Narrow dtype first in the input: the writer must still keep every tensor aligned.
  write_safetensors(path, {{"b", {at::ones({3}, at::kByte), DType::U8}},
                           {"h", {at::ones({3}, at::kHalf), DType::F16}},
                           {"d", {at::ones({2}, at::kDouble), DType::F64}}});
  const std::string bytes = ckpt_test::read_bytes(path);
  uint64_t n;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ(n % 8, 0u);
  const std::string header = bytes.substr(8, n);
  EXPECT_EQ(header[header.find_last_not_of(' ')], '}');  // JSON, then only spaces
  auto j = nlohmann::json::parse(header);
  EXPECT_FALSE(j.contains("__metadata__"));  // none given, none written
  uint64_t end = 0;
  SafetensorsReader r(path);
  EXPECT_EQ(r.names(), (std::vector<std::string>{"d", "h", "b"}));
  for (const auto& name : r.names()) {
    auto off = j[name]["data_offsets"];
    EXPECT_EQ(off[0].get<uint64_t>(), end) << "gap before " << name;
    EXPECT_EQ(off[0].get<uint64_t>() % dtype_size(r.dtype(name)), 0u) << name;
    end = off[1].get<uint64_t>();
  }
  EXPECT_EQ(bytes.size(), 8 + n + end);
}

TEST(Safetensors, ReadsTheHfWrittenFixture) {
  SafetensorsReader r(std::string(GRPO_TEST_DATA) + "/dsv3-tiny/model.safetensors");
  ASSERT_TRUE(r.has("model.embed_tokens.weight"));
  EXPECT_EQ(r.dtype("model.embed_tokens.weight"), DType::F32);
  EXPECT_EQ(r.shape("model.embed_tokens.weight"), (std::vector<int64_t>{512, 64}));
  at::Tensor t = r.get("model.norm.weight").data;
  EXPECT_EQ(t.sizes(), (std::vector<int64_t>{64}));
  EXPECT_TRUE(t.isfinite().all().item<bool>());
}

TEST(Safetensors, TensorsOutliveTheReaderAndWritesStayPrivate) {
  TempDir dir;
  const std::string path = dir / "a.safetensors";
  write_safetensors(path, {{"x", {at::arange(8, at::kFloat), DType::F32}}});
  at::Tensor x;
  {
    SafetensorsReader r(path);
    x = r.get("x").data;
  }
  EXPECT_FLOAT_EQ(x[7].item<float>(), 7.0f);
  x.fill_(-1.0f);  // copy-on-write mapping: the file keeps its values
  EXPECT_FLOAT_EQ(SafetensorsReader(path).get("x").data[7].item<float>(), 7.0f);
}

// ---- malformed input: every case is an InputError naming the file (and the tensor where one is involved)

// A one-tensor file with the given header entry for tensor "w" and `data_bytes` bytes of data.
std::string file_with_entry(const TempDir& dir, const std::string& entry, size_t data_bytes = 16) {
  std::string path = dir / "bad.safetensors";
  ckpt_test::write_raw_safetensors(path, "{\"w\":" + entry + "}", std::string(data_bytes, '\0'));
  return path;
}

TEST(SafetensorsBadInput, MissingFile) {
  TempDir dir;
  expect_input_error([&] { SafetensorsReader r(dir / "none.safetensors"); }, {dir / "none.safetensors", "cannot open"});
}

TEST(SafetensorsBadInput, FileShorterThanTheLengthPrefix) {
  TempDir dir;
  ckpt_test::write_bytes(dir / "t.safetensors", "abc");
  expect_input_error([&] { SafetensorsReader r(dir / "t.safetensors"); },
                     {dir / "t.safetensors", "truncated", "3 bytes"});
}

TEST(SafetensorsBadInput, HeaderLengthBeyondTheFile) {
  TempDir dir;
  const std::string path = dir / "t.safetensors";
  uint64_t n = 1000;
  ckpt_test::write_bytes(path, std::string(reinterpret_cast<const char*>(&n), 8) + "{}");
  expect_input_error([&] { SafetensorsReader r(path); }, {path, "header length 1000", "exceeds the file"});
}

TEST(SafetensorsBadInput, HeaderLengthBeyondTheLimit) {
  TempDir dir;
  const std::string path = dir / "t.safetensors";
  write_safetensors(path, {{"x", {at::zeros({64}), DType::F32}}});
  expect_input_error([&] { SafetensorsReader r(path, SafetensorsLimits{16}); }, {path, "exceeds the limit of 16"});
}

TEST(SafetensorsBadInput, InvalidJson) {
  TempDir dir;
  const std::string path = dir / "t.safetensors";
  ckpt_test::write_raw_safetensors(path, "{\"w\": {\"dtype\": ", "");
  expect_input_error([&] { SafetensorsReader r(path); }, {path, "not valid JSON"});
  ckpt_test::write_raw_safetensors(path, "[1, 2]", "");
  expect_input_error([&] { SafetensorsReader r(path); }, {path, "not a JSON object"});
}

TEST(SafetensorsBadInput, EntryLacksAKey) {
  TempDir dir;
  for (const auto& [entry, key] :
       std::vector<std::pair<std::string, std::string>>{{R"({"shape":[4],"data_offsets":[0,16]})", "dtype"},
                                                        {R"({"dtype":"F32","data_offsets":[0,16]})", "shape"},
                                                        {R"({"dtype":"F32","shape":[4]})", "data_offsets"}}) {
    const std::string path = file_with_entry(dir, entry);
    expect_input_error([&] { SafetensorsReader r(path); }, {path, "tensor 'w'", "no '" + key + "'"});
  }
  const std::string path = file_with_entry(dir, "7");
  expect_input_error([&] { SafetensorsReader r(path); }, {path, "tensor 'w'", "not a JSON object"});
}

TEST(SafetensorsBadInput, UnknownDtype) {
  TempDir dir;
  const std::string path = file_with_entry(dir, R"({"dtype":"F7","shape":[4],"data_offsets":[0,16]})");
  expect_input_error([&] { SafetensorsReader r(path); }, {path, "tensor 'w'", "unknown dtype 'F7'"});
}

TEST(SafetensorsBadInput, BadShape) {
  TempDir dir;
  for (const std::string shape : {"[-4]", "[2.5]", "\"4\"", "[4294967296, 4294967296]"}) {
    const std::string path = file_with_entry(dir, R"({"dtype":"F32","shape":)" + shape + R"(,"data_offsets":[0,16]})");
    expect_input_error([&] { SafetensorsReader r(path); }, {path, "tensor 'w'", "shape"});
  }
}

TEST(SafetensorsBadInput, BadOffsets) {
  TempDir dir;
  for (const std::string off : {"[16, 0]", "[0]", "[0, -16]", "[0, \"16\"]"}) {
    const std::string path = file_with_entry(dir, R"({"dtype":"F32","shape":[4],"data_offsets":)" + off + "}");
    expect_input_error([&] { SafetensorsReader r(path); }, {path, "tensor 'w'", "data_offsets"});
  }
}

TEST(SafetensorsBadInput, SizeDoesNotMatchDtypeAndShape) {
  TempDir dir;
  const std::string path = file_with_entry(dir, R"({"dtype":"BF16","shape":[2,3],"data_offsets":[0,16]})");
  expect_input_error([&] { SafetensorsReader r(path); },
                     {path, "tensor 'w'", "span 16 bytes", "BF16", "[2,3]", "needs 12"});
}

TEST(SafetensorsBadInput, TruncatedData) {
  TempDir dir;
  const std::string path = dir / "t.safetensors";
  write_safetensors(path, {{"a", {at::zeros({4}), DType::F32}}, {"b", {at::zeros({4}), DType::F32}}});
  std::string bytes = ckpt_test::read_bytes(path);
  ckpt_test::write_bytes(path, bytes.substr(0, bytes.size() - 5));
  expect_input_error([&] { SafetensorsReader r(path); }, {path, "tensor 'b'", "past the data section", "truncated"});
}

TEST(SafetensorsBadInput, OverlappingTensors) {
  TempDir dir;
  const std::string path = dir / "t.safetensors";
  ckpt_test::write_raw_safetensors(path,
                                   R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                                   R"("b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})",
                                   std::string(24, '\0'));
  expect_input_error([&] { SafetensorsReader r(path); }, {path, "tensor 'b'", "overlap", "'a'"});
}

TEST(SafetensorsBadInput, MetadataMustBeStrings) {
  TempDir dir;
  const std::string path = dir / "t.safetensors";
  ckpt_test::write_raw_safetensors(path, R"({"__metadata__":{"format":1}})", "");
  expect_input_error([&] { SafetensorsReader r(path); }, {path, "__metadata__", "format"});
}

TEST(SafetensorsBadInput, AskingForAnAbsentTensor) {
  TempDir dir;
  const std::string path = dir / "t.safetensors";
  write_safetensors(path, {{"a", {at::zeros({4}), DType::F32}}});
  SafetensorsReader r(path);
  expect_input_error([&] { r.get("zz"); }, {path, "tensor 'zz'", "no such tensor"});
  expect_input_error([&] { r.shape("zz"); }, {path, "tensor 'zz'"});
}

TEST(SafetensorsBadInput, WriterRejectsDataThatIsNotItsDtypeAndDuplicates) {
  TempDir dir;
  const std::string path = dir / "t.safetensors";
  expect_input_error(
      [&] {
        write_safetensors(path, {{"q", {at::zeros({4}), DType::F8_E4M3}}});
      },
      {path, "tensor 'q'", "F8_E4M3", "Float8_e4m3fn"});
  expect_input_error(
      [&] {
        write_safetensors(path, {{"a", {at::zeros({4}), DType::F32}}, {"a", {at::zeros({2}), DType::F32}}});
      },
      {path, "tensor 'a'", "duplicate"});
  EXPECT_FALSE(std::filesystem::exists(path));  // nothing half-written
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
}

}  // namespace
}  // namespace grpo
