#include "comm/sync_batch_norm.h"

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <cmath>
#include <vector>

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

constexpr const char* kOneValue =
    "SyncBatchNorm: the global batch holds one value per channel; batch statistics need at least two";

// The global batch's statistics, in the statistics' dtype: mean, biased variance (normalisation),
// invstd, unbiased variance (running statistics) and the count.
struct GlobalMoments {
  Tensor mean, var, invstd, unbiased_var, total;
};

// Chan's parallel formula over every rank's (mean, M2, count), as tensor ops: stream-ordered on
// CUDA, with the count check on the device (no host synchronisation).
GlobalMoments combine_on_device(const Tensor& all, int64_t channels, double eps) {
  auto counts = all.select(1, 2 * channels).unsqueeze(1);  // [world, 1]
  auto total = counts.sum();
  at::_assert_async(total > 1, kOneValue);
  auto means = all.narrow(1, 0, channels);
  auto mean = (counts * means).sum(0) / total;
  auto m2 = (all.narrow(1, channels, channels) + counts * (means - mean).square()).sum(0);
  auto var = m2 / total;
  return {mean, var, (var + eps).rsqrt(), m2 / (total - 1), total};
}

// The same on the host for CPU tensors, in double: a few hundred numbers, for which two dozen
// tensor ops cost more than the arithmetic.
GlobalMoments combine_on_host(const Tensor& all, int64_t channels, double eps) {
  const auto gathered = all.to(torch::kFloat64).contiguous();
  const double* p = gathered.data_ptr<double>();
  const int64_t world = gathered.size(0), row = 2 * channels + 1;
  double total = 0;
  for (int64_t r = 0; r < world; ++r) total += p[r * row + 2 * channels];
  TORCH_CHECK(total > 1, kOneValue);
  auto out = torch::empty({4, channels}, torch::kFloat64);
  double* mean = out.data_ptr<double>();
  double *var = mean + channels, *invstd = var + channels, *unbiased = invstd + channels;
  for (int64_t c = 0; c < channels; ++c) {
    double m = 0;
    for (int64_t r = 0; r < world; ++r) m += p[r * row + 2 * channels] * p[r * row + c];
    m /= total;
    double m2 = 0;
    for (int64_t r = 0; r < world; ++r) {
      const double d = p[r * row + c] - m;
      m2 += p[r * row + channels + c] + p[r * row + 2 * channels] * d * d;
    }
    mean[c] = m;
    var[c] = m2 / total;
    invstd[c] = 1 / std::sqrt(var[c] + eps);
    unbiased[c] = m2 / (total - 1);
  }
  out = out.to(all.scalar_type());
  return {out[0], out[1], out[2], out[3], torch::tensor(total, all.options())};
}

// dx = a*dy + b*x + k per channel, in one pass over dy and x (both contiguous in `channels_last`
// or NCHW order), threads splitting the rows.
template <typename T>
void affine_dx(const T* dy, const T* x, T* dx, const std::vector<T>& a, const std::vector<T>& b,
               const std::vector<T>& k, int64_t n, int64_t channels, int64_t hw, bool channels_last) {
  if (channels_last) {
    at::parallel_for(0, n * hw, 64, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const int64_t o = i * channels;
        for (int64_t c = 0; c < channels; ++c) dx[o + c] = a[c] * dy[o + c] + b[c] * x[o + c] + k[c];
      }
    });
  } else {
    at::parallel_for(0, n * channels, 1, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const int64_t c = i % channels, o = i * hw;
        for (int64_t j = 0; j < hw; ++j) dx[o + j] = a[c] * dy[o + j] + b[c] * x[o + j] + k[c];
      }
    });
  }
}

// SyncBatchNorm's dx on the host for CPU fp32/fp64 activations laid out like dy: the per-channel
// coefficients in double, then one pass (the tensor-op form takes two, and a dozen small ops).
// Undefined when it does not apply.
Tensor dx_on_host(const Tensor& dy, const Tensor& x, const Tensor& sums, const Tensor& weight,
                  const Tensor& mean, const Tensor& invstd, const Tensor& total) {
  const auto fmt = x.suggest_memory_format();
  const auto type = x.scalar_type();
  if (!x.is_cpu() || (type != torch::kFloat32 && type != torch::kFloat64) ||
      dy.scalar_type() != type || !x.is_contiguous(fmt) || !dy.is_contiguous(fmt)) {
    return {};
  }
  const int64_t channels = x.size(1);
  const auto s = sums.to(torch::kFloat64).contiguous();
  const auto w = weight.to(torch::kFloat64).contiguous();
  const auto mu = mean.to(torch::kFloat64).contiguous();
  const auto is = invstd.to(torch::kFloat64).contiguous();
  const double n = total.item<double>();
  const double *ps = s.data_ptr<double>(), *pw = w.data_ptr<double>(), *pm = mu.data_ptr<double>(),
               *pi = is.data_ptr<double>();
  auto dx = torch::empty_like(x, fmt);
  AT_DISPATCH_FLOATING_TYPES(type, "SyncBatchNorm dx", [&] {
    std::vector<scalar_t> a(channels), b(channels), k(channels);
    for (int64_t c = 0; c < channels; ++c) {
      // dx = w*invstd * (dy - mean(dy) - xhat * mean(dy*xhat)) = a*dy + b*x + k
      const double ac = pw[c] * pi[c], bc = -ac * pi[c] * (ps[channels + c] / n);
      a[c] = scalar_t(ac);
      b[c] = scalar_t(bc);
      k[c] = scalar_t(-ac * (ps[c] / n) - bc * pm[c]);
    }
    affine_dx(dy.data_ptr<scalar_t>(), x.data_ptr<scalar_t>(), dx.data_ptr<scalar_t>(), a, b, k,
              x.size(0), channels, x.size(2) * x.size(3), fmt == at::MemoryFormat::ChannelsLast);
  });
  return dx;
}

struct SyncBatchNormFunction : public torch::autograd::Function<SyncBatchNormFunction> {
  static Tensor forward(AutogradContext* ctx, const Tensor& x, const Tensor& weight,
                        const Tensor& bias, Tensor running_mean, Tensor running_var,
                        double momentum, double eps, Communicator* comm) {
    const int64_t channels = x.size(1);
    const int64_t count = x.numel() / std::max<int64_t>(channels, 1);  // known on the host
    const auto sd = stats_dtype(x);

    // This rank's (mean, M2, count), packed for one collective.
    auto local = torch::zeros({2 * channels + 1}, x.options().dtype(sd));
    if (count > 0) {
      // BatchNorm's own statistics kernels: ~10x faster on CPU than a generic var_mean over a
      // channels_last tensor, and as accurate; one pass over x, no normalised output.
      torch::Tensor mean, var;
      if (x.is_cuda()) {
        torch::Tensor invstd;  // with eps 0, invstd = 1/sqrt(var) exactly
        std::tie(mean, invstd) = at::batch_norm_stats(x, 0.0);
        // A constant channel has var 0, for which this kernel returns invstd 0.
        var = torch::where(invstd > 0, invstd.pow(-2), torch::zeros_like(invstd));
      } else {
        // The biased variance (no running statistics given: only the batch's).
        std::tie(mean, var) = at::batch_norm_update_stats(x.to(sd), {}, {}, 0.0);
      }
      local.narrow(0, 0, channels).copy_(mean);
      local.narrow(0, channels, channels).copy_(var * double(count));  // M2 = n var
      local[2 * channels].fill_(double(count));
    }
    auto all = comm->all_gather(local);  // [world, 2C+1]
    const auto g = x.is_cuda() ? combine_on_device(all, channels, eps)
                               : combine_on_host(all, channels, eps);
    {
      torch::NoGradGuard no_grad;
      running_mean.mul_(1 - momentum).add_(g.mean.to(running_mean.scalar_type()), momentum);
      running_var.mul_(1 - momentum).add_(g.unbiased_var.to(running_var.scalar_type()), momentum);
    }

    // Normalise with the global statistics in one fused pass: BatchNorm's inference kernel
    // with (mean, biased var) in place of the running statistics.
    // (A rank with no samples still took part in the collective; it has nothing to normalise,
    // and ATen's CPU kernels divide by the batch size.)
    auto y = count == 0 ? torch::empty_like(x)
                        : torch::batch_norm(x, weight, bias, g.mean.to(weight.scalar_type()),
                                            g.var.to(weight.scalar_type()), /*training=*/false, 0.0,
                                            eps, /*cudnn_enabled=*/true);
    ctx->save_for_backward({x, weight, g.mean, g.invstd, g.total});
    ctx->saved_data["comm"] = reinterpret_cast<int64_t>(comm);
    return y;
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
    auto dy = grad_outputs[0].contiguous(x.suggest_memory_format());
    auto w = weight.to(sd);

    // Per-channel sum(dy) and sum(dy * xhat) in one fused pass: BatchNorm's own backward kernel,
    // given the global mean and invstd, computes exactly these as grad_bias and grad_weight.
    torch::Tensor local_dw, local_db;
    if (x.numel() == 0) {
      local_dw = torch::zeros({channels}, mean.options());
      local_db = torch::zeros({channels}, mean.options());
    } else {
      std::tie(std::ignore, local_dw, local_db) = torch::native_batch_norm_backward(
          dy, x, weight, {}, {}, mean, invstd, /*train=*/true, /*eps (unused)=*/0.0,
          {false, true, true});
    }
    auto sums = torch::cat({local_db.to(sd), local_dw.to(sd)});  // one collective for both
    comm->all_reduce(sums);
    // This rank's share of the parameter gradients; the Reducer sums the shares.
    auto grad_weight = local_dw.to(weight.scalar_type());
    auto grad_bias = local_db.to(weight.scalar_type());
    if (auto dx = dx_on_host(dy, x, sums, weight, mean, invstd, total); dx.defined()) {
      return {dx, grad_weight, grad_bias, Tensor(), Tensor(), Tensor(), Tensor(), Tensor()};
    }
    auto mean_dy = sums.narrow(0, 0, channels) / total;
    auto mean_dy_xhat = sums.narrow(0, channels, channels) / total;

    // dx = w*invstd * (dy - mean(dy) - xhat * mean(dy*xhat)), written as a per-channel affine
    // map of dy and x: dx = a*dy + b*x + c, two fused passes.
    auto a = w * invstd;
    auto b = -a * invstd * mean_dy_xhat;
    torch::Tensor dx;
    if (x.scalar_type() == torch::kFloat32 || x.scalar_type() == torch::kFloat64) {
      auto c = -a * mean_dy - b * mean;
      dx = torch::addcmul(torch::addcmul(per_channel(c, channels).to(x.scalar_type()), x,
                                         per_channel(b, channels).to(x.scalar_type())),
                          dy, per_channel(a, channels).to(x.scalar_type()));
    } else {
      // bf16/fp16 activations: b*x and c nearly cancel when |mean| >> std, and rounding them
      // to 8 bits first would cost several percent of dx; centre x and sum in the statistics'
      // precision instead, rounding once (as PyTorch's own BatchNorm backward does).
      auto xmu = x.to(sd) - per_channel(mean, channels);
      dx = torch::addcmul(torch::addcmul(per_channel(-a * mean_dy, channels), xmu,
                                         per_channel(b, channels)),
                          dy.to(sd), per_channel(a, channels));
    }
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
