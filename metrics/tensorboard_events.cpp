#include "metrics/tensorboard_events.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include "common/crc32c.h"
#include "common/error.h"
#include "common/fs.h"

namespace grpo {
namespace {

// Protobuf wire format: key = field << 3 | wire type (0 varint, 1 fixed64, 2 length-delimited,
// 5 fixed32); varints are little-endian base-128.
enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}
void put_key(std::string& out, uint32_t field, WireType type) { put_varint(out, uint64_t(field) << 3 | type); }
void put_fixed(std::string& out, uint64_t bits, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>(bits >> (8 * i)));
}
void put_double(std::string& out, uint32_t field, double v) {
  uint64_t b;
  std::memcpy(&b, &v, 8);
  put_key(out, field, kFixed64);
  put_fixed(out, b, 8);
}
void put_float(std::string& out, uint32_t field, float v) {
  uint32_t b;
  std::memcpy(&b, &v, 4);
  put_key(out, field, kFixed32);
  put_fixed(out, b, 4);
}
void put_bytes(std::string& out, uint32_t field, std::string_view s) {
  put_key(out, field, kLengthDelimited);
  put_varint(out, s.size());
  out.append(s);
}

// Event fields 1 and 2.
std::string event_header(double wall_time, int64_t step) {
  std::string e;
  put_double(e, 1, wall_time);
  if (step != 0) {  // proto3 leaves zero scalars out
    put_key(e, 2, kVarint);
    put_varint(e, static_cast<uint64_t>(step));  // negative int64: ten-byte two's complement
  }
  return e;
}

}  // namespace

uint32_t tfrecord_masked_crc(std::string_view data) {
  const uint32_t c = crc32c(data);
  return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

std::string tfrecord_frame(std::string_view data) {
  std::string out;
  out.reserve(data.size() + 16);
  put_fixed(out, data.size(), 8);
  put_fixed(out, tfrecord_masked_crc(out), 4);
  out.append(data);
  put_fixed(out, tfrecord_masked_crc(data), 4);
  return out;
}

std::string encode_file_version_event(double wall_time, std::string_view version) {
  std::string e = event_header(wall_time, 0);
  put_bytes(e, 3, version);
  return e;
}

std::string encode_scalars_event(double wall_time, int64_t step, const std::map<std::string, double>& scalars) {
  std::string summary;
  for (const auto& [tag, v] : scalars) {
    std::string value;
    put_bytes(value, 1, tag);
    put_float(value, 2, static_cast<float>(v));
    put_bytes(summary, 1, value);
  }
  std::string e = event_header(wall_time, step);
  put_bytes(e, 5, summary);
  return e;
}

EventFileWriter::EventFileWriter(const std::string& dir) {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') std::strcpy(host, "localhost");
  const double now = static_cast<double>(::time(nullptr));
  const std::string base = dir + "/events.out.tfevents." + std::to_string(static_cast<int64_t>(now)) + "." + host;
  for (int n = 0; fd_ < 0; ++n) {
    path_ = n == 0 ? base : base + "." + std::to_string(n);
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
    if (fd_ < 0 && (errno != EEXIST || n >= 1000))
      throw InputError("cannot create TensorBoard event file '" + path_ + "': " + std::strerror(errno));
  }
  write_record(encode_file_version_event(now, "brain.Event:2"));
}

EventFileWriter::~EventFileWriter() {
  if (fd_ >= 0) ::close(fd_);
}

void EventFileWriter::write_scalars(double wall_time, int64_t step, const std::map<std::string, double>& scalars) {
  write_record(encode_scalars_event(wall_time, step, scalars));
}

void EventFileWriter::write_record(std::string_view event) {
  const std::string framed = tfrecord_frame(event);
  write_all(fd_, framed.data(), framed.size(), path_);
}

}  // namespace grpo
