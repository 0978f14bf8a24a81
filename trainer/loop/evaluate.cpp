#include "trainer/loop/evaluate.h"

namespace dt::trainer {

EvalResult EvalSums::result() const {
  EvalResult r;
  r.samples = samples;
  r.loss = samples ? loss_sum / samples : 0.0;
  r.accuracy = samples ? double(correct) / samples : 0.0;
  return r;
}

EvalSums evaluate_sums(torch::nn::Module& model,
                       const std::function<torch::Tensor(const torch::Tensor&)>& forward,
                       const data::EvalSet& set, int64_t begin, int64_t end, int64_t batch,
                       bool flip) {
  const bool was_training = model.is_training();
  model.eval();
  torch::NoGradGuard no_grad;
  torch::Tensor loss_sum, correct;
  for (int64_t i = begin; i < end; i += batch) {
    auto b = set.slice(i, std::min(end, i + batch));
    auto logits = forward(b.images);
    if (flip) logits = (logits + forward(b.images.flip({3}))) / 2;
    auto l = torch::nn::functional::cross_entropy(
        logits, b.labels,
        torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
    auto c = logits.argmax(1).eq(b.labels).sum();
    loss_sum = loss_sum.defined() ? loss_sum + l.to(torch::kFloat64) : l.to(torch::kFloat64);
    correct = correct.defined() ? correct + c : c;
  }
  model.train(was_training);
  EvalSums s;
  s.samples = std::max<int64_t>(0, end - begin);
  if (loss_sum.defined()) {  // one host copy at the end, not one per batch
    s.loss_sum = loss_sum.item<double>();
    s.correct = correct.item<int64_t>();
  }
  return s;
}

}  // namespace dt::trainer
