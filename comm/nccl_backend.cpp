#include "comm/nccl_backend.h"
#if DT_HAVE_CUDA
#include <mpi.h>
#include <ATen/cuda/CUDAEvent.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <cstdio>
#include "comm/check.h"
#include "comm/errors.h"

namespace dt::comm {
namespace {

ncclDataType_t nccl_type(const torch::Tensor& t) {
  switch (t.scalar_type()) {
    case torch::kFloat32: return ncclFloat32;
    case torch::kFloat64: return ncclFloat64;
    case torch::kBFloat16: return ncclBfloat16;
    case torch::kFloat16: return ncclFloat16;
    case torch::kInt64: return ncclInt64;
    case torch::kInt32: return ncclInt32;
    case torch::kUInt8: return ncclUint8;
    default:
      throw CommError(std::string("NCCL collectives do not support dtype ") +
                      c10::toString(t.scalar_type()));
  }
}

ncclRedOp_t nccl_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum: return ncclSum;
    case ReduceOp::Max: return ncclMax;
    case ReduceOp::Min: return ncclMin;
  }
  return ncclSum;
}

class NcclWork : public Work {
 public:
  NcclWork(std::string what, std::vector<torch::Tensor> tensors, c10::cuda::CUDAStream stream)
      : what_(std::move(what)), tensors_(std::move(tensors)), device_(stream.device_index()) {
    done_.record(stream);
  }
  bool test() override { return done_.query(); }
  // The caller's current stream on the collective's own device waits for it.
  void wait() override { done_.block(c10::cuda::getCurrentCUDAStream(device_)); }
  std::string describe() const override { return what_; }

 private:
  std::string what_;
  std::vector<torch::Tensor> tensors_;
  c10::DeviceIndex device_;
  at::cuda::CUDAEvent done_;
};

}  // namespace

NcclBackend::NcclBackend(MpiBackend& bootstrap, int rank, int world_size, int device_index,
                         std::chrono::milliseconds timeout)
    : rank_(rank), device_(device_index), timeout_(timeout),
      stream_(c10::cuda::getStreamFromPool(/*isHighPriority=*/true, device_index)) {
  ncclUniqueId id;
  if (rank == 0) DT_NCCL_CHECK(ncclGetUniqueId(&id));
  auto bytes = torch::from_blob(&id, {int64_t(sizeof(id))}, torch::kUInt8);
  bootstrap.broadcast_blocking(bytes, 0);  // in place, with its deadline
  c10::cuda::CUDAGuard guard(device_index);
  {
    MpiBackend::Deadline d(bootstrap, "ncclCommInitRank (NCCL communicator set-up)");
    DT_NCCL_CHECK(ncclCommInitRank(&comm_, world_size, id, rank));
  }
  watchdog_ = std::thread([this] { watchdog(); });
}

NcclBackend::~NcclBackend() {
  stop_ = true;
  wake_.notify_all();
  if (watchdog_.joinable()) watchdog_.join();
  if (comm_ && !aborted_) ncclCommDestroy(comm_);
}

void NcclBackend::abort() {
  // Under the watchdog's lock: ncclCommAbort frees the communicator, which the watchdog may be
  // polling (ncclCommGetAsyncError) at this moment on its own thread.
  std::lock_guard<std::mutex> lock(mutex_);
  abort_locked();
}

void NcclBackend::abort_locked() {
  if (comm_ && !aborted_.exchange(true)) ncclCommAbort(comm_);
}

void NcclBackend::enter(const std::vector<torch::Tensor>& tensors) {
  for (const auto& t : tensors) {
    if (!t.is_cuda() || !t.is_contiguous() || t.get_device() != device_) {
      throw CommError("NcclBackend needs contiguous tensors on cuda:" + std::to_string(device_));
    }
  }
  auto caller = c10::cuda::getCurrentCUDAStream(device_);
  at::cuda::CUDAEvent ready;
  ready.record(caller);
  ready.block(stream_);
  for (const auto& t : tensors) {
    c10::cuda::CUDACachingAllocator::recordStream(t.storage().data_ptr(), stream_);
  }
}

std::shared_ptr<Work> NcclBackend::finish(std::string what, std::vector<torch::Tensor> tensors) {
  auto w = std::make_shared<NcclWork>(std::move(what), std::move(tensors), stream_);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    pending_.push_back({w, Clock::now() + timeout_});
  }
  wake_.notify_all();
  return w;
}

std::shared_ptr<Work> NcclBackend::all_reduce(const torch::Tensor& t, ReduceOp op) {
  enter({t});
  c10::cuda::CUDAGuard guard(device_);
  DT_NCCL_CHECK(ncclAllReduce(t.data_ptr(), t.data_ptr(), t.numel(), nccl_type(t), nccl_op(op),
                              comm_, stream_.stream()));
  return finish("all_reduce #" + std::to_string(sequence_++) + " (" + std::to_string(t.numel()) +
                    " elements)",
                {t});
}

std::shared_ptr<Work> NcclBackend::broadcast(const torch::Tensor& t, int root) {
  enter({t});
  c10::cuda::CUDAGuard guard(device_);
  DT_NCCL_CHECK(ncclBroadcast(t.data_ptr(), t.data_ptr(), t.numel(), nccl_type(t), root, comm_,
                              stream_.stream()));
  return finish("broadcast #" + std::to_string(sequence_++), {t});
}

std::shared_ptr<Work> NcclBackend::all_gather(const torch::Tensor& output,
                                              const torch::Tensor& input) {
  enter({output, input});
  c10::cuda::CUDAGuard guard(device_);
  DT_NCCL_CHECK(ncclAllGather(input.data_ptr(), output.data_ptr(), input.numel(),
                              nccl_type(input), comm_, stream_.stream()));
  return finish("all_gather #" + std::to_string(sequence_++), {output, input});
}

// An exception escaping this thread would std::terminate the process with no word of host or
// rank and without aborting NCCL (CUDAEvent::query throws on a sticky CUDA error).
void NcclBackend::watchdog() {
  try {
    // This thread's CUDA calls (event queries and destruction) must go to this rank's GPU: on
    // device 0 they would open a second CUDA context there, per rank.
    c10::cuda::set_device(static_cast<c10::DeviceIndex>(device_));
    watchdog_loop();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dist_train: %sNCCL watchdog failed: %s; aborting the job\n",
                 error_prefix(__FILE__, __LINE__).c_str(), e.what());
    abort();
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
}

void NcclBackend::watchdog_loop() {
  while (!stop_) {
    std::unique_lock<std::mutex> lock(mutex_);
    wake_.wait_for(lock, std::chrono::milliseconds(100));
    while (!pending_.empty() && pending_.front().work->test()) pending_.pop_front();
    std::string failure;
    ncclResult_t async = ncclSuccess;
    if (aborted_) return;  // main() aborted the communicator: nothing left to watch
    if (comm_ && ncclCommGetAsyncError(comm_, &async) == ncclSuccess && async != ncclSuccess) {
      failure = std::string("asynchronous NCCL error: ") + ncclGetErrorString(async);
    } else if (!pending_.empty() && Clock::now() > pending_.front().deadline) {
      failure = pending_.front().work->describe() + " did not complete within " +
                std::to_string(timeout_.count() / 1000.0) + " s (--comm-timeout)";
    }
    if (!failure.empty()) {
      std::fprintf(stderr, "dist_train: %s%s; aborting the job\n",
                   error_prefix(__FILE__, __LINE__).c_str(), failure.c_str());
      abort_locked();
      MPI_Abort(MPI_COMM_WORLD, 1);
    }
  }
}

}  // namespace dt::comm
#endif
