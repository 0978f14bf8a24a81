#include "comm/check.h"

#include <mpi.h>
#include <unistd.h>
#include <atomic>
#include "comm/errors.h"
#if DT_HAVE_CUDA
#include <cuda_runtime_api.h>
#include <nccl.h>
#endif

namespace dt::comm {
namespace {
std::atomic<int> g_rank{-1};
}

void set_error_identity(int rank) { g_rank = rank; }

std::string error_prefix(const char* file, int line) {
  char host[256] = "?";
  gethostname(host, sizeof(host) - 1);
  const int rank = g_rank.load();
  return std::string(host) + " rank " + (rank < 0 ? std::string("?") : std::to_string(rank)) +
         " " + file + ":" + std::to_string(line) + ": ";
}

void throw_mpi_error(int code, const char* call, const char* file, int line) {
  char text[MPI_MAX_ERROR_STRING] = "unknown MPI error";
  int len = 0;
  MPI_Error_string(code, text, &len);
  throw CommError(error_prefix(file, line) + call + " failed: " + text);
}

#if DT_HAVE_CUDA
void throw_cuda_error(int code, const char* call, const char* file, int line) {
  throw CommError(error_prefix(file, line) + call +
                  " failed: " + cudaGetErrorString(static_cast<cudaError_t>(code)));
}

void throw_nccl_error(int code, const char* call, const char* file, int line) {
  throw CommError(error_prefix(file, line) + call +
                  " failed: " + ncclGetErrorString(static_cast<ncclResult_t>(code)));
}
#endif

}  // namespace dt::comm
