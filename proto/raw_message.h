// Messages of gRPC's raw methods (WithRawCallbackMethod_*): the services parse requests themselves,
// so a payload that is not the method's message is answered INVALID_ARGUMENT with the reason
// (gRPC's own parsing would answer UNIMPLEMENTED). Pure functions; thread-safe.
#pragma once
#include <google/protobuf/message.h>
#include <grpcpp/support/byte_buffer.h>

#include <string>

namespace grpo {

// Parses `buffer` into `message`. On failure returns false and says why in *error: "malformed
// <Type> (not valid protobuf wire format)", or, when a string field holds invalid UTF-8 (which
// protobuf rejects), the field, e.g. "field 'requests[2].reference' is not valid UTF-8".
bool parse_message(const grpc::ByteBuffer& buffer, google::protobuf::Message* message, std::string* error);

// The serialized message, as one slice.
grpc::ByteBuffer to_byte_buffer(const google::protobuf::Message& message);

}  // namespace grpo
