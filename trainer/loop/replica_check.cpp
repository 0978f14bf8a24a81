#include "trainer/loop/replica_check.h"

#include <sstream>
#include "trainer/checkpoint/atomic_file.h"
#include "trainer/checkpoint/checkpoint_format.h"

namespace dt::trainer {

ReplicaCheck::Named watched_tensors(torch::nn::Module& model, torch::optim::Optimizer& optimizer,
                                    bool include_buffers) {
  ReplicaCheck::Named out;
  for (const auto& p : model.named_parameters()) out.emplace_back(p.key(), p.value());
  if (include_buffers) {
    for (const auto& b : model.named_buffers()) out.emplace_back(b.key(), b.value());
  }
  const auto params = model.named_parameters();
  for (const auto& p : params) {
    auto it = optimizer.state().find(p.value().unsafeGetTensorImpl());
    if (it == optimizer.state().end()) continue;
    if (auto* adam = dynamic_cast<torch::optim::AdamParamState*>(it->second.get())) {
      out.emplace_back("optimizer." + p.key() + ".exp_avg", adam->exp_avg());
      out.emplace_back("optimizer." + p.key() + ".exp_avg_sq", adam->exp_avg_sq());
    } else if (auto* sgd = dynamic_cast<torch::optim::SGDParamState*>(it->second.get())) {
      if (sgd->momentum_buffer().defined()) {
        out.emplace_back("optimizer." + p.key() + ".momentum_buffer", sgd->momentum_buffer());
      }
    }
  }
  return out;
}

torch::Tensor ReplicaCheck::checksums(const Named& tensors) {
  std::vector<torch::Tensor> sums;
  sums.reserve(tensors.size());
  for (const auto& [name, t] : tensors) {
    // The bit patterns as integers (int32 words of any dtype), weighted by position modulo a
    // prime so that swapped elements change the sum too. Integer sums are exact and
    // order-independent, so equal tensors give equal checksums on any device.
    auto flat = t.detach().contiguous().view({-1});
    torch::Tensor words;
    if (flat.element_size() == 8) {
      words = flat.view(torch::kInt32);
    } else if (flat.element_size() == 4) {
      words = flat.view(torch::kInt32);
    } else {
      words = flat.view(torch::kUInt8);
    }
    auto key = std::make_pair(words.numel(), words.device().type());
    auto it = weights_.find(key);
    if (it == weights_.end()) {
      auto w = torch::arange(words.numel(), torch::TensorOptions().dtype(torch::kInt64).device(words.device()))
                   .remainder(1021) + 1;
      it = weights_.emplace(key, w).first;
    }
    sums.push_back((words.to(torch::kInt64) * it->second).sum());
  }
  return torch::stack(sums);
}

int64_t ReplicaCheck::verify(const Named& tensors, comm::Communicator& comm, int64_t step,
                             const std::string& dump_dir) {
  auto mine = checksums(tensors).cpu();  // T integers, not the tensors
  auto all = comm.all_gather(mine);      // [world, T]
  std::vector<int> diverging;
  std::vector<size_t> differing;
  for (int r = 1; r < comm.world_size(); ++r) {
    auto diff = all[r].ne(all[0]);
    if (!diff.any().item<bool>()) continue;
    diverging.push_back(r);
    auto idx = diff.nonzero().view(-1);
    for (int64_t i = 0; i < idx.size(0) && differing.size() < 5; ++i) {
      const size_t k = size_t(idx[i].item<int64_t>());
      if (std::find(differing.begin(), differing.end(), k) == differing.end()) differing.push_back(k);
    }
  }
  if (diverging.empty()) return int64_t(tensors.size());

  const int me = comm.rank();
  const bool dump = me == 0 || std::find(diverging.begin(), diverging.end(), me) != diverging.end();
  std::ostringstream files;
  const std::string stem = dump_dir + "/divergence_step" + std::to_string(step) + "_rank";
  if (dump) {
    c10::impl::GenericDict values(c10::StringType::get(), c10::AnyType::get());
    for (size_t k : differing) values.insert(tensors[k].first, tensors[k].second.detach().cpu().contiguous());
    write_file_atomically(stem + std::to_string(me) + ".pt", torch_save_bytes(values));
  }
  comm.barrier();  // every post-mortem file is written before anyone fails the job
  std::ostringstream o;
  o << "replicas diverged at step " << step << ": rank";
  for (int r : diverging) o << " " << r;
  o << " differ" << (diverging.size() == 1 ? "s" : "") << " from rank 0 in";
  for (size_t k = 0; k < differing.size(); ++k) o << (k ? ", " : " ") << tensors[differing[k]].first;
  o << "; values in " << stem << "{0";
  for (int r : diverging) o << "," << r;
  o << "}.pt";
  throw ReplicaDivergence(o.str());
}

}  // namespace dt::trainer
