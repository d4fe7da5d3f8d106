// The rows of a Parquet file (the format of Hugging Face datasets and verl's data files) as JSON
// objects, so the prompt dataset's format adapters read them like JSONL lines. Columns map to keys;
// strings, binary (as bytes), integers, floats, booleans, lists, structs and maps (a list of
// {key, value}) convert to their JSON counterparts, nulls to null, anything else to its text.
#pragma once
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

namespace grpo {

// Calls fn(row number from 1, row) for every row in file order. Throws InputError naming `path`
// when it cannot be opened or is not a Parquet file, or reading a row group fails; what fn throws
// passes through. Reads one record batch at a time.
void for_each_parquet_row(const std::string& path, const std::function<void(int64_t, const nlohmann::json&)>& fn);

}  // namespace grpo
