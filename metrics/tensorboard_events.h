// TensorBoard event files, written without TensorFlow or protobuf (so grpo_learner builds without
// the services): TFRecord framing around hand-encoded `Event` messages.
//
// TFRecord, one record:  u64 length (little-endian) | u32 masked CRC-32C of those 8 bytes |
//                        data | u32 masked CRC-32C of data,
// with mask(c) = ((c >> 15) | (c << 17)) + 0xa282ead8 (mod 2^32).
//
// The protobuf messages, with TensorFlow's field numbers (tensorflow/core/util/event.proto and
// tensorflow/core/framework/summary.proto; only the fields we write):
//   Event   { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
//   Summary { repeated Value value = 1; }
//   Value   { string tag = 1; float simple_value = 2; }
// A file starts with an Event carrying file_version "brain.Event:2", then one Event per logged step
// with one Value per scalar.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace grpo {

uint32_t tfrecord_masked_crc(std::string_view data);  // mask(crc32c(data))
std::string tfrecord_frame(std::string_view data);    // one framed record

std::string encode_file_version_event(double wall_time, std::string_view version);
// Scalars are stored as float (simple_value), as TensorBoard's scalar dashboard reads them.
std::string encode_scalars_event(double wall_time, int64_t step, const std::map<std::string, double>& scalars);

// An open event file in `dir`: events.out.tfevents.<unix seconds>.<hostname>, with ".1", ".2", ...
// appended when that name is taken (a restart within the same second). Every write is one write(2)
// of whole records, so the file is always a sequence of complete records plus at most one torn
// record at the end after a crash (readers stop there). I/O errors are InputErrors naming the file.
// Not thread-safe: one owner thread writes. Owns its file descriptor (closed when destroyed).
class EventFileWriter {
 public:
  explicit EventFileWriter(const std::string& dir);
  ~EventFileWriter();
  EventFileWriter(const EventFileWriter&) = delete;
  EventFileWriter& operator=(const EventFileWriter&) = delete;

  void write_scalars(double wall_time, int64_t step, const std::map<std::string, double>& scalars);
  const std::string& path() const { return path_; }

 private:
  void write_record(std::string_view event);
  std::string path_;
  int fd_ = -1;
};

}  // namespace grpo
