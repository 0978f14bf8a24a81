// One check macro per library. Each failure names the host, the rank, file:line, the failed call
// and the library's own error string, and throws CommError.
#pragma once
#include <string>

namespace dt::comm {

// The identity failure messages carry; set once the rank is known (launch/ sets it).
void set_error_identity(int rank);
std::string error_prefix(const char* file, int line);

[[noreturn]] void throw_mpi_error(int code, const char* call, const char* file, int line);
#if DT_HAVE_CUDA
[[noreturn]] void throw_cuda_error(int code, const char* call, const char* file, int line);
[[noreturn]] void throw_nccl_error(int code, const char* call, const char* file, int line);
#endif

}  // namespace dt::comm

#define DT_MPI_CHECK(call)                                                     \
  do {                                                                         \
    int dt_mpi_rc_ = (call);                                                   \
    if (dt_mpi_rc_ != 0 /* MPI_SUCCESS */)                                     \
      ::dt::comm::throw_mpi_error(dt_mpi_rc_, #call, __FILE__, __LINE__);      \
  } while (0)

#define DT_CUDA_CHECK(call)                                                    \
  do {                                                                         \
    int dt_cuda_rc_ = static_cast<int>(call);                                  \
    if (dt_cuda_rc_ != 0 /* cudaSuccess */)                                    \
      ::dt::comm::throw_cuda_error(dt_cuda_rc_, #call, __FILE__, __LINE__);    \
  } while (0)

#define DT_NCCL_CHECK(call)                                                    \
  do {                                                                         \
    int dt_nccl_rc_ = static_cast<int>(call);                                  \
    if (dt_nccl_rc_ != 0 /* ncclSuccess */)                                    \
      ::dt::comm::throw_nccl_error(dt_nccl_rc_, #call, __FILE__, __LINE__);    \
  } while (0)
