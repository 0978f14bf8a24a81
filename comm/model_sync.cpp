#include "comm/model_sync.h"

#include <sstream>
#include "comm/errors.h"
#include "common/fnv1a.h"

namespace dt::comm {

namespace {

void broadcast_from_rank0(const torch::Tensor& tensor, Communicator& comm) {
  torch::NoGradGuard no_grad;
  auto v = tensor;
  if (v.is_contiguous()) {
    comm.broadcast(v, 0);
  } else {  // channels_last weights: broadcast a contiguous copy, then write it back
    auto c = v.contiguous();
    comm.broadcast(c, 0);
    v.copy_(c);
  }
}

}  // namespace

void broadcast_model(torch::nn::Module& module, Communicator& comm) {
  // Structure fingerprint: names, shapes and dtypes of every parameter and buffer, in order.
  uint64_t hash = common::kFnv1aBasis;
  int64_t count = 0;
  auto mix = [&](const std::string& s) { hash = common::fnv1a(s, hash); };
  auto tensors = module.named_parameters();
  for (const auto& b : module.named_buffers()) tensors.insert(b.key(), b.value());
  for (const auto& t : tensors) {
    std::ostringstream o;
    o << t.key() << t.value().sizes() << c10::toString(t.value().scalar_type()) << ";";
    mix(o.str());
    ++count;
  }
  auto mine = torch::tensor({count, int64_t(hash)}, torch::kInt64);
  auto all = comm.all_gather(mine);
  for (int r = 1; r < comm.world_size(); ++r) {
    if (!torch::equal(all[r], all[0])) {
      std::ostringstream o;
      o << "model structure differs between ranks: rank " << r << " has "
        << all[r][0].item<int64_t>() << " tensors (structure hash " << std::hex
        << uint64_t(all[r][1].item<int64_t>()) << std::dec << "), rank 0 has "
        << all[0][0].item<int64_t>() << " tensors (structure hash " << std::hex
        << uint64_t(all[0][1].item<int64_t>()) << ")";
      throw RankMismatch(o.str());
    }
  }
  for (const auto& t : tensors) broadcast_from_rank0(t.value(), comm);
}

void broadcast_buffers(torch::nn::Module& module, Communicator& comm) {
  for (const auto& b : module.buffers()) broadcast_from_rank0(b, comm);
}

}  // namespace dt::comm
