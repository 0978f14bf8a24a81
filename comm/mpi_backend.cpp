#include "comm/mpi_backend.h"

#include <cstdio>
#include <thread>
#include "comm/check.h"
#include "comm/errors.h"

namespace dt::comm {
namespace {

MPI_Op mpi_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum: return MPI_SUM;
    case ReduceOp::Max: return MPI_MAX;
    case ReduceOp::Min: return MPI_MIN;
  }
  return MPI_SUM;
}

class MpiWork : public Work {
 public:
  MpiWork(std::string what, std::vector<torch::Tensor> keep_alive,
          std::chrono::milliseconds timeout)
      : what_(std::move(what)), keep_alive_(std::move(keep_alive)),
        deadline_(Clock::now() + timeout), timeout_(timeout) {}
  ~MpiWork() override {
    // A request still pending here means the job is failing (a timeout unwound the stack): MPI
    // may still write into the tensors until MPI_Abort, so they are never freed.
    if (!done_ && request_ != MPI_REQUEST_NULL) {
      int flag = 0;
      MPI_Test(&request_, &flag, MPI_STATUS_IGNORE);
      if (!flag) new std::vector<torch::Tensor>(std::move(keep_alive_));  // deliberately leaked
    }
  }
  MPI_Request* request() { return &request_; }

  bool test() override {
    if (done_) return true;
    int flag = 0;
    DT_MPI_CHECK(MPI_Test(&request_, &flag, MPI_STATUS_IGNORE));
    done_ = flag != 0;
    return done_;
  }

  void wait() override {
    int polls = 0;
    while (!test()) {
      if (Clock::now() > deadline_) {
        throw CommTimeout(error_prefix(__FILE__, __LINE__) + what_ + " did not complete within " +
                          std::to_string(timeout_.count() / 1000.0) +
                          " s (--comm-timeout): a peer rank is stalled or dead");
      }
      // Yield first (latency), then sleep briefly so a waiting rank leaves the core to others.
      if (++polls < 64) {
        std::this_thread::yield();
      } else {
        std::this_thread::sleep_for(std::chrono::microseconds(50));
      }
    }
  }

  std::string describe() const override { return what_; }

 private:
  std::string what_;
  std::vector<torch::Tensor> keep_alive_;
  Clock::time_point deadline_;
  std::chrono::milliseconds timeout_;
  MPI_Request request_ = MPI_REQUEST_NULL;
  bool done_ = false;
};

void require_cpu_contiguous(const torch::Tensor& t, const char* op) {
  if (!t.is_cpu() || !t.is_contiguous()) {
    throw CommError(std::string("MpiBackend::") + op + " needs a contiguous CPU tensor");
  }
}

std::string describe(const char* op, int64_t seq, const torch::Tensor& t) {
  return std::string(op) + " #" + std::to_string(seq) + " (" + std::to_string(t.numel()) + " x " +
         std::string(c10::toString(t.scalar_type())) + ")";
}

}  // namespace

MPI_Datatype mpi_datatype(const torch::Tensor& t) {
  switch (t.scalar_type()) {
    case torch::kFloat32: return MPI_FLOAT;
    case torch::kFloat64: return MPI_DOUBLE;
    case torch::kInt64: return MPI_INT64_T;
    case torch::kInt32: return MPI_INT32_T;
    case torch::kUInt8: return MPI_UINT8_T;
    default:
      throw CommError(std::string("MPI collectives do not support dtype ") +
                      c10::toString(t.scalar_type()));
  }
}

MpiBackend::MpiBackend(int rank, std::chrono::milliseconds timeout, int group)
    : rank_(rank), timeout_(timeout) {
  if (group < 0) {
    DT_MPI_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &comm_));
  } else {
    DT_MPI_CHECK(MPI_Comm_split(MPI_COMM_WORLD, group, rank, &comm_));
  }
  DT_MPI_CHECK(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN));
  watchdog_ = std::thread([this] { watchdog(); });
}

MpiBackend::~MpiBackend() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  if (watchdog_.joinable()) watchdog_.join();
  int finalized = 0;
  MPI_Finalized(&finalized);  // a communicator that outlives MPI (a static) just goes away
  if (comm_ != MPI_COMM_NULL && !finalized) MPI_Comm_free(&comm_);
}

std::shared_ptr<Work> MpiBackend::all_reduce(const torch::Tensor& t, ReduceOp op) {
  require_cpu_contiguous(t, "all_reduce");
  auto w = std::make_shared<MpiWork>(describe("all_reduce", sequence_++, t),
                                     std::vector<torch::Tensor>{t}, timeout_);
  DT_MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, t.data_ptr(), int(t.numel()), mpi_datatype(t),
                              mpi_op(op), comm_, w->request()));
  return w;
}

std::shared_ptr<Work> MpiBackend::broadcast(const torch::Tensor& t, int root) {
  require_cpu_contiguous(t, "broadcast");
  auto w = std::make_shared<MpiWork>(describe("broadcast", sequence_++, t),
                                     std::vector<torch::Tensor>{t}, timeout_);
  DT_MPI_CHECK(MPI_Ibcast(t.data_ptr(), int(t.numel()), mpi_datatype(t), root, comm_,
                          w->request()));
  return w;
}

std::shared_ptr<Work> MpiBackend::all_gather(const torch::Tensor& output,
                                             const torch::Tensor& input) {
  require_cpu_contiguous(output, "all_gather");
  require_cpu_contiguous(input, "all_gather");
  auto w = std::make_shared<MpiWork>(describe("all_gather", sequence_++, input),
                                     std::vector<torch::Tensor>{output, input}, timeout_);
  DT_MPI_CHECK(MPI_Iallgather(input.data_ptr(), int(input.numel()), mpi_datatype(input),
                              output.data_ptr(), int(input.numel()), mpi_datatype(output), comm_,
                              w->request()));
  return w;
}

MpiBackend::Deadline::Deadline(MpiBackend& b, std::string what) : b_(b) {
  std::lock_guard<std::mutex> lock(b_.mutex_);
  b_.blocking_what_ = std::move(what);
  b_.blocking_deadline_ = Clock::now() + b_.timeout_;
  b_.blocking_ = true;
}

MpiBackend::Deadline::~Deadline() {
  std::lock_guard<std::mutex> lock(b_.mutex_);
  b_.blocking_ = false;
}

void MpiBackend::watchdog() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stop_) {
    wake_.wait_for(lock, std::chrono::milliseconds(100));
    if (blocking_ && Clock::now() > blocking_deadline_) {
      std::fprintf(stderr, "dist_train: %s%s did not complete within %.3f s (--comm-timeout): a "
                   "peer rank is stalled or dead; aborting the job\n",
                   error_prefix(__FILE__, __LINE__).c_str(), blocking_what_.c_str(),
                   timeout_.count() / 1000.0);
      std::fflush(stderr);
      MPI_Abort(MPI_COMM_WORLD, 1);
    }
  }
}

void MpiBackend::all_reduce_blocking(const torch::Tensor& t, ReduceOp op) {
  require_cpu_contiguous(t, "all_reduce");
  Deadline d(*this, describe("all_reduce", sequence_++, t));
  DT_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, t.data_ptr(), int(t.numel()), mpi_datatype(t),
                             mpi_op(op), comm_));
}

void MpiBackend::broadcast_blocking(const torch::Tensor& t, int root) {
  require_cpu_contiguous(t, "broadcast");
  Deadline d(*this, describe("broadcast", sequence_++, t));
  DT_MPI_CHECK(MPI_Bcast(t.data_ptr(), int(t.numel()), mpi_datatype(t), root, comm_));
}

void MpiBackend::all_gather_blocking(const torch::Tensor& output, const torch::Tensor& input) {
  require_cpu_contiguous(output, "all_gather");
  require_cpu_contiguous(input, "all_gather");
  Deadline d(*this, describe("all_gather", sequence_++, input));
  DT_MPI_CHECK(MPI_Allgather(input.data_ptr(), int(input.numel()), mpi_datatype(input),
                             output.data_ptr(), int(input.numel()), mpi_datatype(output), comm_));
}

}  // namespace dt::comm
