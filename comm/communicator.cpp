#include "comm/communicator.h"

#include <cstring>
#include <sstream>
#include <vector>
#include "comm/errors.h"
#include "common/fnv1a.h"
#include "comm/mpi_backend.h"
#include "comm/nccl_backend.h"

namespace dt::comm {

Communicator::Communicator(const World& world, std::chrono::milliseconds timeout)
    : world_(world) {
  if (!world.mpi) return;  // a world of one without a launcher communicates with nobody
  mpi_ = std::make_unique<MpiBackend>(world.rank, timeout);
  timeout_ = timeout;
}

Communicator::Communicator(const World& world, std::chrono::milliseconds timeout, int group_size)
    : world_(world) {
  if (group_size < 1 || world.size % group_size != 0) {
    throw CommError("a group of " + std::to_string(group_size) + " ranks does not divide a world of " +
                    std::to_string(world.size));
  }
  world_.rank = world.rank % group_size;
  world_.size = group_size;
  if (!world.mpi) return;
  mpi_ = std::make_unique<MpiBackend>(world.rank, timeout, /*group=*/world.rank / group_size);
  timeout_ = timeout;
}

void Communicator::start_nccl(int cuda_device) {
  if (!world_.mpi || nccl_) return;
#if DT_HAVE_CUDA
  nccl_ = std::make_unique<NcclBackend>(static_cast<MpiBackend&>(*mpi_), world_.rank, world_.size,
                                        cuda_device, timeout_);
#else
  (void)cuda_device;
  throw CommError("this build has no CUDA/NCCL support");
#endif
}

Communicator::~Communicator() = default;

Backend& Communicator::backend_for(const torch::Tensor& t) {
  if (t.is_cuda()) {
    if (!nccl_) throw CommError("a CUDA tensor reached a communicator without NCCL");
    return *nccl_;
  }
  return *mpi_;
}

std::shared_ptr<Work> Communicator::all_reduce_async(const torch::Tensor& t, ReduceOp op) {
  ++issued_;
  if (!world_.mpi) return std::make_shared<CompletedWork>("all_reduce (world of one)");
  return backend_for(t).all_reduce(t, op);
}

std::shared_ptr<Work> Communicator::broadcast_async(const torch::Tensor& t, int root) {
  ++issued_;
  if (!world_.mpi) return std::make_shared<CompletedWork>("broadcast (world of one)");
  return backend_for(t).broadcast(t, root);
}

std::shared_ptr<Work> Communicator::all_gather_async(const torch::Tensor& output,
                                                     const torch::Tensor& input) {
  // The backends write world_size x input.numel() elements into `output`: too small a buffer
  // would be overwritten past its end, not rejected by MPI or NCCL.
  if (output.numel() != int64_t(world_.size) * input.numel() || output.scalar_type() != input.scalar_type()) {
    throw CommError("all_gather: output must hold " + std::to_string(world_.size) + " x " +
                    std::to_string(input.numel()) + " elements of the input's type, has " +
                    std::to_string(output.numel()));
  }
  ++issued_;
  if (!world_.mpi) {
    output.select(0, 0).copy_(input);
    return std::make_shared<CompletedWork>("all_gather (world of one)");
  }
  return backend_for(input).all_gather(output, input);
}

void Communicator::all_reduce(const torch::Tensor& tensor, ReduceOp op) {
  const auto start = Clock::now();
  ++issued_;
  if (world_.mpi) backend_for(tensor).all_reduce_blocking(tensor, op);
  if (observer_) observer_(0, start, Clock::now());
}

void Communicator::broadcast(const torch::Tensor& tensor, int root) {
  const auto start = Clock::now();
  ++issued_;
  if (world_.mpi) backend_for(tensor).broadcast_blocking(tensor, root);
  if (observer_) observer_(1, start, Clock::now());
}

torch::Tensor Communicator::all_gather(const torch::Tensor& input) {
  const auto start = Clock::now();
  auto sizes = input.sizes().vec();
  sizes.insert(sizes.begin(), world_.size);
  auto output = torch::empty(sizes, input.options());
  ++issued_;
  if (world_.mpi) {
    backend_for(input).all_gather_blocking(output, input.contiguous());
  } else {
    output.select(0, 0).copy_(input);
  }
  if (observer_) observer_(2, start, Clock::now());
  return output;
}

void Communicator::barrier() { all_reduce(torch::ones({1}, torch::kInt32)); }

int Communicator::first_failing_rank(bool failed) {
  return comm::first_failing_rank(world_, failed, timeout_);
}

void Communicator::abort() {
  if (nccl_) nccl_->abort();
}

namespace {

// Root's text on every rank (two broadcasts: length, then bytes).
std::string text_of_rank(Communicator& comm, const std::string& mine, int root) {
  auto length = torch::tensor({int64_t(mine.size())}, torch::kInt64);
  comm.broadcast(length, root);
  auto bytes = torch::empty({length.item<int64_t>()}, torch::kUInt8);
  if (comm.rank() == root && !mine.empty()) std::memcpy(bytes.data_ptr(), mine.data(), mine.size());
  comm.broadcast(bytes, root);
  return std::string(reinterpret_cast<const char*>(bytes.data_ptr()), size_t(bytes.numel()));
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

}  // namespace

void require_same_text_on_all_ranks(Communicator& comm, const std::string& text,
                                    const std::string& what) {
  auto all = comm.all_gather(torch::tensor({int64_t(common::fnv1a(text))}, torch::kInt64)).view(-1);
  const auto* v = all.data_ptr<int64_t>();
  int differs = -1;
  for (int r = 1; r < comm.world_size() && differs < 0; ++r) {
    if (v[r] != v[0]) differs = r;
  }
  if (differs < 0) return;
  // Every rank saw the same hashes, so every rank takes part in fetching the two texts.
  const auto zero = lines_of(text_of_rank(comm, text, 0));
  const auto other = lines_of(text_of_rank(comm, text, differs));
  size_t i = 0;
  while (i < zero.size() && i < other.size() && zero[i] == other[i]) ++i;
  auto line = [&](const std::vector<std::string>& l) {
    return i < l.size() ? "'" + l[i] + "'" : std::string("nothing more");
  };
  throw RankMismatch(what + " differs between ranks: rank " + std::to_string(differs) + " has " +
                     line(other) + ", rank 0 has " + line(zero));
}

void require_same_on_all_ranks(Communicator& comm, uint64_t value, const std::string& what) {
  auto mine = torch::tensor({int64_t(value)}, torch::kInt64);
  auto all = comm.all_gather(mine).view(-1);
  const auto* v = all.data_ptr<int64_t>();
  for (int r = 1; r < comm.world_size(); ++r) {
    if (v[r] != v[0]) {
      std::ostringstream o;
      o << what << " differs between ranks: rank " << r << " has " << std::hex << uint64_t(v[r])
        << ", rank 0 has " << uint64_t(v[0]);
      throw RankMismatch(o.str());
    }
  }
}

}  // namespace dt::comm
