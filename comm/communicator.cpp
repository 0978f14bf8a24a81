#include "comm/communicator.h"

#include <sstream>
#include "comm/errors.h"
#include "comm/mpi_backend.h"
#include "comm/nccl_backend.h"

namespace dt::comm {

Communicator::Communicator(const World& world, std::chrono::milliseconds timeout, int cuda_device)
    : world_(world) {
  if (!world.mpi) return;  // a world of one without a launcher communicates with nobody
  mpi_ = std::make_unique<MpiBackend>(world.rank, timeout);
#if DT_HAVE_CUDA
  if (cuda_device >= 0) {
    nccl_ = std::make_unique<NcclBackend>(world.rank, world.size, cuda_device, timeout);
  }
#else
  if (cuda_device >= 0) throw CommError("this build has no CUDA/NCCL support");
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

void Communicator::abort() {
  if (nccl_) nccl_->abort();
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
