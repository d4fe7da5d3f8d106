#include "dataset/parquet/parquet_rows.h"

#include <arrow/api.h>
#include <arrow/io/file.h>
#include <parquet/arrow/reader.h>

#include "common/error.h"

namespace grpo {
namespace {

using nlohmann::json;

template <class T>
json number(const arrow::Scalar& s) {
  return static_cast<const T&>(s).value;
}

json scalar_json(const arrow::Scalar& s);

json list_json(const arrow::Array& values) {
  json out = json::array();
  for (int64_t i = 0; i < values.length(); ++i) out.push_back(scalar_json(*values.GetScalar(i).ValueOrDie()));
  return out;
}

json scalar_json(const arrow::Scalar& s) {
  if (!s.is_valid) return nullptr;
  switch (s.type->id()) {
    case arrow::Type::NA: return nullptr;
    case arrow::Type::BOOL: return number<arrow::BooleanScalar>(s);
    case arrow::Type::INT8: return number<arrow::Int8Scalar>(s);
    case arrow::Type::INT16: return number<arrow::Int16Scalar>(s);
    case arrow::Type::INT32: return number<arrow::Int32Scalar>(s);
    case arrow::Type::INT64: return number<arrow::Int64Scalar>(s);
    case arrow::Type::UINT8: return number<arrow::UInt8Scalar>(s);
    case arrow::Type::UINT16: return number<arrow::UInt16Scalar>(s);
    case arrow::Type::UINT32: return number<arrow::UInt32Scalar>(s);
    case arrow::Type::UINT64: return number<arrow::UInt64Scalar>(s);
    case arrow::Type::FLOAT: return number<arrow::FloatScalar>(s);
    case arrow::Type::DOUBLE: return number<arrow::DoubleScalar>(s);
    case arrow::Type::STRING:
    case arrow::Type::LARGE_STRING:
    case arrow::Type::STRING_VIEW:
    case arrow::Type::BINARY:
    case arrow::Type::LARGE_BINARY:
    case arrow::Type::BINARY_VIEW: return static_cast<const arrow::BaseBinaryScalar&>(s).value->ToString();
    case arrow::Type::LIST:
    case arrow::Type::LARGE_LIST:
    case arrow::Type::FIXED_SIZE_LIST:
    case arrow::Type::LIST_VIEW:
    case arrow::Type::LARGE_LIST_VIEW:
    case arrow::Type::MAP: return list_json(*static_cast<const arrow::BaseListScalar&>(s).value);
    case arrow::Type::STRUCT: {
      const auto& st = static_cast<const arrow::StructScalar&>(s);
      json out = json::object();
      for (int i = 0; i < st.type->num_fields(); ++i) out[st.type->field(i)->name()] = scalar_json(*st.value[i]);
      return out;
    }
    case arrow::Type::DICTIONARY: {
      auto decoded = static_cast<const arrow::DictionaryScalar&>(s).GetEncodedValue();
      return decoded.ok() ? scalar_json(**decoded) : json(s.ToString());
    }
    default: return s.ToString();
  }
}

template <class T>
T ok_or_throw(arrow::Result<T> r, const std::string& path, const char* what) {
  if (!r.ok()) throw InputError(path + ": " + what + ": " + r.status().ToString());
  return std::move(r).ValueOrDie();
}

}  // namespace

void for_each_parquet_row(const std::string& path, const std::function<void(int64_t, const json&)>& fn) {
  auto file = ok_or_throw(arrow::io::ReadableFile::Open(path), path, "cannot open the dataset file");
  auto reader =
      ok_or_throw(parquet::arrow::OpenFile(file, arrow::default_memory_pool()), path, "not a readable Parquet file");
  auto batches = ok_or_throw(reader->GetRecordBatchReader(), path, "cannot read the Parquet file");
  int64_t row = 0;
  for (;;) {
    std::shared_ptr<arrow::RecordBatch> batch;
    const arrow::Status st = batches->ReadNext(&batch);
    if (!st.ok()) throw InputError(path + ": cannot read the Parquet file: " + st.ToString());
    if (!batch) break;
    const auto& schema = *batch->schema();
    for (int64_t i = 0; i < batch->num_rows(); ++i) {
      json obj = json::object();
      for (int c = 0; c < batch->num_columns(); ++c)
        obj[schema.field(c)->name()] = scalar_json(*ok_or_throw(batch->column(c)->GetScalar(i), path, "bad value"));
      fn(++row, obj);
    }
  }
}

}  // namespace grpo
