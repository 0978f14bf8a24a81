#include "comm/sync_batch_norm.h"

#include <ATen/ATen.h>

namespace dt::comm {
namespace {

using torch::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Statistics are kept in fp32 (fp64 for fp64 inputs), whatever the activation dtype (bf16).
torch::ScalarType stats_dtype(const Tensor& x) {
  return x.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
}

Tensor per_channel(const Tensor& t, int64_t channels) { return t.view({1, channels, 1, 1}); }

struct SyncBatchNormFunction : public torch::autograd::Function<SyncBatchNormFunction> {
  static Tensor forward(AutogradContext* ctx, const Tensor& x, const Tensor& weight,
                        const Tensor& bias, Tensor running_mean, Tensor running_var,
                        double momentum, double eps, Communicator* comm) {
    const int64_t channels = x.size(1);
    const int64_t count = x.numel() / std::max<int64_t>(channels, 1);  // known on the host
    const auto sd = stats_dtype(x);
    const auto xs = x.to(sd);

    // This rank's (mean, M2, count), packed for one collective.
    auto local = torch::zeros({2 * channels + 1}, xs.options());
    if (count > 0) {
      // One Welford pass (double accumulation on CPU), as accurate as BatchNorm's own.
      auto [var, mean] = torch::var_mean(xs, {0, 2, 3}, /*correction=*/0);
      local.narrow(0, 0, channels).copy_(mean);
      local.narrow(0, channels, channels).copy_(var * double(count));
      local[2 * channels].fill_(double(count));
    }
    auto all = comm->all_gather(local);  // [world, 2C+1]
    auto counts = all.select(1, 2 * channels).unsqueeze(1);  // [world, 1]
    auto total = counts.sum();
    // A global batch of one value per channel has no variance: refuse it (device-side on CUDA).
    at::_assert_async(total > 1, "SyncBatchNorm: the global batch holds one value per channel; "
                                 "batch statistics need at least two");
    auto means = all.narrow(1, 0, channels);
    auto mean = (counts * means).sum(0) / total;
    auto m2 = (all.narrow(1, channels, channels) + counts * (means - mean).square()).sum(0);
    auto var = m2 / total;
    auto invstd = (var + eps).rsqrt();

    {
      torch::NoGradGuard no_grad;
      running_mean.mul_(1 - momentum).add_(mean.to(running_mean.scalar_type()), momentum);
      running_var.mul_(1 - momentum)
          .add_((m2 / (total - 1)).to(running_var.scalar_type()), momentum);
    }

    auto xhat = (xs - per_channel(mean, channels)) * per_channel(invstd, channels);
    auto y = xhat * per_channel(weight.to(sd), channels) + per_channel(bias.to(sd), channels);
    ctx->save_for_backward({x, weight, mean, invstd, total});
    ctx->saved_data["comm"] = reinterpret_cast<int64_t>(comm);
    return y.to(x.scalar_type());
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    auto saved = ctx->get_saved_variables();
    const auto& x = saved[0];
    const auto& weight = saved[1];
    const auto& mean = saved[2];
    const auto& invstd = saved[3];
    const auto& total = saved[4];
    auto* comm = reinterpret_cast<Communicator*>(ctx->saved_data["comm"].toInt());
    const int64_t channels = x.size(1);
    const auto sd = mean.scalar_type();
    auto dy = grad_outputs[0].to(sd);
    auto xmu = x.to(sd) - per_channel(mean, channels);

    auto local_sum_dy = dy.sum({0, 2, 3});
    auto local_sum_dy_xmu = (dy * xmu).sum({0, 2, 3});
    auto sums = torch::cat({local_sum_dy, local_sum_dy_xmu});  // one collective for both
    comm->all_reduce(sums);
    auto mean_dy = sums.narrow(0, 0, channels) / total;
    auto mean_dy_xmu = sums.narrow(0, channels, channels) / total;

    auto w = weight.to(sd);
    auto dx = (dy - per_channel(mean_dy, channels) -
               xmu * per_channel(invstd.square() * mean_dy_xmu, channels)) *
              per_channel(invstd * w, channels);
    // This rank's share of the parameter gradients; the Reducer sums the shares.
    auto grad_weight = (local_sum_dy_xmu * invstd).to(weight.scalar_type());
    auto grad_bias = local_sum_dy.to(weight.scalar_type());
    return {dx.to(x.scalar_type()), grad_weight, grad_bias, Tensor(), Tensor(), Tensor(),
            Tensor(), Tensor()};
  }
};

}  // namespace

torch::Tensor SyncBatchNorm::forward(const torch::Tensor& x, const torch::Tensor& weight,
                                     const torch::Tensor& bias, torch::Tensor& running_mean,
                                     torch::Tensor& running_var, double momentum, double eps) {
  TORCH_CHECK(x.dim() == 4, "SyncBatchNorm expects [N, C, H, W] input, got ", x.sizes());
  return SyncBatchNormFunction::apply(x, weight, bias, running_mean, running_var, momentum, eps,
                                      &comm_);
}

}  // namespace dt::comm
