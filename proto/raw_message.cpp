#include "proto/raw_message.h"

#include <google/protobuf/unknown_field_set.h>

#include <map>
#include <vector>

#include "common/utf8.h"

namespace grpo {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::UnknownField;
using google::protobuf::UnknownFieldSet;

// The path of the first string field (depth first) holding invalid UTF-8 in the wire bytes of a
// message of type `type`; empty when there is none.
std::string invalid_utf8_field(const std::string& bytes, const Descriptor* type, const std::string& prefix) {
  UnknownFieldSet fields;
  if (!fields.ParseFromString(bytes)) return "";
  std::map<int, int> seen;
  for (int i = 0; i < fields.field_count(); ++i) {
    const UnknownField& f = fields.field(i);
    if (f.type() != UnknownField::TYPE_LENGTH_DELIMITED) continue;
    const FieldDescriptor* fd = type->FindFieldByNumber(f.number());
    if (!fd) continue;
    int index = seen[f.number()]++;
    std::string path = prefix + fd->name();
    if (fd->is_repeated() && !fd->is_map()) path += "[" + std::to_string(index) + "]";
    if (fd->type() == FieldDescriptor::TYPE_STRING && !utf8::is_valid(f.length_delimited())) return path;
    if (fd->type() == FieldDescriptor::TYPE_MESSAGE) {
      std::string inner = invalid_utf8_field(f.length_delimited(), fd->message_type(), path + ".");
      if (!inner.empty()) return inner;
    }
  }
  return "";
}

std::string bytes_of(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string out;
  if (!buffer.Dump(&slices).ok()) return out;
  out.reserve(buffer.Length());
  for (const auto& s : slices) out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out;
}

}  // namespace

bool parse_message(const grpc::ByteBuffer& buffer, google::protobuf::Message* message, std::string* error) {
  const std::string bytes = bytes_of(buffer);
  if (message->ParseFromString(bytes)) return true;
  std::string field = invalid_utf8_field(bytes, message->GetDescriptor(), "");
  *error = field.empty() ? "malformed " + message->GetDescriptor()->name() + " (not valid protobuf wire format)"
                         : "field '" + field + "' is not valid UTF-8 (proto string fields must be UTF-8)";
  return false;
}

grpc::ByteBuffer to_byte_buffer(const google::protobuf::Message& message) {
  const std::string bytes = message.SerializeAsString();
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

}  // namespace grpo
