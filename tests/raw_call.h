// Test helper: one gRPC call with raw bytes as the request, to send payloads no generated stub
// would (malformed protobuf). A server-streaming method answers such a call like a unary one.
#pragma once
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <future>
#include <string>

namespace grpo::testing {

// The status of `method` ("/package.Service/Method") at `address` called with `bytes`.
inline grpc::Status raw_call(const std::string& address, const std::string& method, const std::string& bytes) {
  grpc::GenericStub stub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  grpc::Slice slice(bytes);
  const grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer response;
  std::promise<grpc::Status> done;
  stub.UnaryCall(&context, method, grpc::StubOptions(), &request, &response,
                 [&](grpc::Status s) { done.set_value(std::move(s)); });
  return done.get_future().get();
}

// Field 1, length-delimited, announcing far more bytes than follow: no message parses it.
inline std::string malformed_protobuf() { return std::string("\x0a\xff\xff\xff\xff\x0f\x01", 7); }

}  // namespace grpo::testing
