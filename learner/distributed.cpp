#include "learner/distributed.h"

#include <cstdlib>
#include <cstring>
#include <map>

#include "common/error.h"

// The Gloo process group is compiled into libtorch_cpu; its header is guarded by USE_C10D_GLOO.
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

namespace grpo {
namespace {

// An integer environment variable; InputError naming it when unset (without fallback) or malformed.
int64_t env_int(const char* name, const int64_t* fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) {
    if (fallback) return *fallback;
    throw InputError(std::string("environment: ") + name + " is not set (expected an integer)");
  }
  char* end = nullptr;
  const long long x = std::strtoll(v, &end, 10);
  if (*end != '\0') throw InputError(std::string("environment: ") + name + "=\"" + v + "\" is not an integer");
  return x;
}

// An exception's message without the backtrace c10 appends.
std::string first_line(const std::exception& e) {
  std::string what = e.what();
  if (const size_t nl = what.find('\n'); nl != std::string::npos) what.resize(nl);
  return what;
}

std::string secs(std::chrono::milliseconds t) { return std::to_string(t.count() / 1000.0).substr(0, 5) + "s"; }

}  // namespace

bool DistEnv::present() { return std::getenv("RANK") != nullptr; }

DistEnv DistEnv::from_env() {
  DistEnv e;
  e.rank = static_cast<int>(env_int("RANK", nullptr));
  e.world_size = static_cast<int>(env_int("WORLD_SIZE", nullptr));
  const int64_t local = e.rank;
  e.local_rank = static_cast<int>(env_int("LOCAL_RANK", &local));
  const int64_t port = e.master_port;
  e.master_port = static_cast<int>(env_int("MASTER_PORT", &port));
  if (const char* addr = std::getenv("MASTER_ADDR"); addr && *addr) e.master_addr = addr;
  if (e.world_size < 1)
    throw InputError("environment: WORLD_SIZE=" + std::to_string(e.world_size) + " (expected >= 1)");
  if (e.rank < 0 || e.rank >= e.world_size)
    throw InputError("environment: RANK=" + std::to_string(e.rank) +
                     " outside [0, WORLD_SIZE=" + std::to_string(e.world_size) + ")");
  if (e.local_rank < 0)
    throw InputError("environment: LOCAL_RANK=" + std::to_string(e.local_rank) + " (expected >= 0)");
  if (e.master_port < 1 || e.master_port > 65535)
    throw InputError("environment: MASTER_PORT=" + std::to_string(e.master_port) + " (expected 1..65535)");
  return e;
}

struct Distributed::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group;
};

Distributed::Distributed(const DistEnv& env, std::chrono::milliseconds timeout)
    : env_(env), timeout_(timeout), impl_(std::make_unique<Impl>()) {
  const std::string where = env_.master_addr + ":" + std::to_string(env_.master_port);
  try {
    c10d::TCPStoreOptions so;
    so.port = static_cast<uint16_t>(env_.master_port);
    so.isServer = env_.rank == 0;
    so.numWorkers = env_.world_size;
    so.waitWorkers = true;
    so.timeout = timeout;
    impl_->store = c10::make_intrusive<c10d::TCPStore>(env_.master_addr, so);
    auto options = c10d::ProcessGroupGloo::Options::create(timeout);
    // Gloo connects the ranks over the interface that reaches the master: loopback on one machine.
    const bool local = env_.master_addr == "127.0.0.1" || env_.master_addr == "localhost";
    options->devices.push_back(local ? c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1")
                                     : c10d::ProcessGroupGloo::createDefaultDevice());
    options->threads = 2;
    impl_->group = c10::make_intrusive<c10d::ProcessGroupGloo>(impl_->store, env_.rank, env_.world_size, options);
  } catch (const std::exception& e) {
    throw DistributedError("rank " + std::to_string(env_.rank) + " of " + std::to_string(env_.world_size) +
                           ": rendezvous at MASTER_ADDR:MASTER_PORT=" + where + " failed within " + secs(timeout) +
                           ": " + e.what());
  }
}

Distributed::~Distributed() = default;

void Distributed::fail(const std::string& op, const std::exception& e) const {
  throw DistributedError("rank " + std::to_string(env_.rank) + " of " + std::to_string(env_.world_size) + ": " + op +
                         " failed (a peer rank exited or did not answer within " + secs(timeout_) +
                         "): " + first_line(e));
}

namespace {
const std::string kMessagePrefix = "grpo/message/";
}

void Distributed::post(const std::string& key, const std::string& bytes) {
  try {
    impl_->store->set(kMessagePrefix + key, std::vector<uint8_t>(bytes.begin(), bytes.end()));
  } catch (const std::exception& e) {
    fail("post '" + key + "'", e);
  }
}

std::string Distributed::fetch(const std::string& key, std::chrono::milliseconds timeout) {
  try {
    impl_->store->wait({kMessagePrefix + key}, timeout);
    const std::vector<uint8_t> v = impl_->store->get(kMessagePrefix + key);
    return std::string(v.begin(), v.end());
  } catch (const std::exception& e) {
    throw DistributedError("rank " + std::to_string(env_.rank) + " of " + std::to_string(env_.world_size) +
                           ": waiting for '" + key + "' from rank 0 failed (rank 0 exited or sent nothing within " +
                           secs(timeout) + "): " + first_line(e));
  }
}

void Distributed::erase(const std::string& key) {
  try {
    impl_->store->deleteKey(kMessagePrefix + key);
  } catch (const std::exception& e) {
    fail("erase '" + key + "'", e);
  }
}

void Distributed::all_reduce_sum(at::Tensor& t) {
  if (size() == 1) return;
  try {
    std::vector<at::Tensor> ts{t};
    impl_->group->allreduce(ts)->wait(timeout_);
  } catch (const std::exception& e) {
    fail("all_reduce", e);
  }
}

void Distributed::all_reduce_sum(const std::vector<at::Tensor>& tensors, int64_t bucket_bytes) {
  if (size() == 1) return;
  at::NoGradGuard no_grad;
  std::map<at::ScalarType, std::vector<at::Tensor>> by_dtype;
  for (const auto& t : tensors) by_dtype[t.scalar_type()].push_back(t);
  for (auto& [dtype, ts] : by_dtype) {
    size_t begin = 0;
    while (begin < ts.size()) {
      size_t end = begin;
      int64_t bytes = 0;
      while (end < ts.size() && (end == begin || bytes + ts[end].nbytes() <= static_cast<size_t>(bucket_bytes)))
        bytes += ts[end++].nbytes();
      std::vector<at::Tensor> flat;
      for (size_t i = begin; i < end; ++i) flat.push_back(ts[i].reshape({-1}));
      at::Tensor bucket = at::cat(flat);  // [sum of numel]
      all_reduce_sum(bucket);
      int64_t offset = 0;
      for (size_t i = begin; i < end; ++i) {
        ts[i].copy_(bucket.narrow(0, offset, ts[i].numel()).view_as(ts[i]));
        offset += ts[i].numel();
      }
      begin = end;
    }
  }
}

at::Tensor Distributed::all_gather(const at::Tensor& input) {
  at::Tensor in = input.reshape({-1}).contiguous();
  at::Tensor out = at::empty({size(), in.numel()}, in.options());  // [W, numel]
  if (size() == 1) return out.copy_(in.unsqueeze(0));
  try {
    std::vector<at::Tensor> inputs{in};
    std::vector<std::vector<at::Tensor>> outputs(1);
    for (int r = 0; r < size(); ++r) outputs[0].push_back(out[r]);
    impl_->group->allgather(outputs, inputs)->wait(timeout_);
  } catch (const std::exception& e) {
    fail("all_gather", e);
  }
  return out;
}

at::Tensor Distributed::all_to_all(const at::Tensor& input, const std::vector<int64_t>& send_counts,
                                   const std::vector<int64_t>& recv_counts) {
  int64_t rows_out = 0;
  for (int64_t c : recv_counts) rows_out += c;
  std::vector<int64_t> out_shape = input.sizes().vec();
  out_shape[0] = rows_out;
  if (size() == 1) return input.clone();
  at::Tensor in = input.contiguous();
  at::Tensor out = at::empty(out_shape, in.options());
  const int64_t row_bytes = in.dim() > 0 && in.size(0) > 0 ? in.nbytes() / in.size(0) : 0;
  for (int r = 0; r < size(); ++r)
    if (r != rank()) all_to_all_bytes_ += send_counts[r] * row_bytes;
  try {
    std::vector<int64_t> out_splits = recv_counts, in_splits = send_counts;
    impl_->group->alltoall_base(out, in, out_splits, in_splits)->wait(timeout_);
  } catch (const std::exception& e) {
    fail("all_to_all", e);
  }
  return out;
}

at::Tensor Distributed::all_to_all_counts(const at::Tensor& counts) {
  const std::vector<int64_t> even(size(), counts.numel() / size());
  return all_to_all(counts.to(at::kLong).contiguous(), even, even);
}

void Distributed::broadcast(std::string& bytes) {
  if (size() == 1) return;
  try {
    std::vector<at::Tensor> size{at::tensor({static_cast<int64_t>(bytes.size())}, at::kLong)};
    impl_->group->broadcast(size)->wait(timeout_);
    const int64_t n = size[0].item<int64_t>();
    std::vector<at::Tensor> data{at::empty({n}, at::kByte)};
    if (rank() == 0) std::memcpy(data[0].data_ptr(), bytes.data(), n);
    if (n > 0) impl_->group->broadcast(data)->wait(timeout_);
    if (rank() != 0) bytes.assign(static_cast<const char*>(data[0].data_ptr()), n);
  } catch (const std::exception& e) {
    fail("broadcast", e);
  }
}

void Distributed::barrier() {
  if (size() == 1) return;
  try {
    impl_->group->barrier()->wait(timeout_);
  } catch (const std::exception& e) {
    fail("barrier", e);
  }
}

}  // namespace grpo
