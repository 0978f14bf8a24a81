// Fused gather + crop + flip + cutout + normalise on the GPU: one thread per output element.
//
// Stream contract: the kernel runs on the caller's current CUDA stream of the source's device
// (the loader's side stream when prefetching: data/side_stream.h hands its output to the
// training stream through an event). No host synchronisation.
#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include "data/augment_kernel.h"

namespace dt::data {
namespace {

template <typename scalar_t>
__global__ void augment_kernel(const uint8_t* __restrict__ source, int64_t source_count,
                               const int64_t* __restrict__ indices, int64_t batch,
                               AugmentGeometry g, uint64_t seed, int64_t epoch, float3 scale,
                               float3 shift, scalar_t* __restrict__ out, int64_t s0, int64_t s1,
                               int64_t s2, int64_t s3) {
  const int64_t plane = int64_t(g.out_size) * g.out_size;
  const int64_t total = batch * 3 * plane;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t b = i / (3 * plane);
    const int32_t c = int32_t((i / plane) % 3);
    const int32_t y = int32_t((i / g.out_size) % g.out_size);
    const int32_t x = int32_t(i % g.out_size);
    const int64_t index = indices[b];
    CUDA_KERNEL_ASSERT(index >= 0 && index < source_count);
    const SampleDraw d =
        draw_sample(seed, epoch, index, g);
    const uint8_t* image = source + index * 3 * int64_t(g.src_size) * g.src_size;
    const float sc = c == 0 ? scale.x : (c == 1 ? scale.y : scale.z);
    const float sh = c == 0 ? shift.x : (c == 1 ? shift.y : shift.z);
    out[b * s0 + c * s1 + y * s2 + x * s3] =
        static_cast<scalar_t>(augment_pixel(image, g, d, c, y, x, sc, sh));
  }
}

}  // namespace

void augment_batch_cuda(const at::Tensor& source, const at::Tensor& indices,
                        const AugmentGeometry& g, bool normalize, uint64_t seed, int64_t epoch,
                        at::Tensor& out) {
  c10::cuda::CUDAGuard guard(source.device());  // the source's GPU, whatever is current
  auto idx = indices.to(source.device(), at::kLong).contiguous();
  float s[3], h[3];
  for (int c = 0; c < 3; ++c) {
    s[c] = normalize ? 1.f / (255.f * kCifarStd[c]) : 1.f / 255.f;
    h[c] = normalize ? -kCifarMean[c] / kCifarStd[c] : 0.f;
  }
  const int64_t total = out.numel();
  if (total == 0) return;
  const int threads = 256;
  const int blocks = static_cast<int>(std::min<int64_t>((total + threads - 1) / threads, 65535));
  auto stream = at::cuda::getCurrentCUDAStream(source.get_device());
  auto launch = [&](auto* out_ptr) {
    augment_kernel<<<blocks, threads, 0, stream>>>(
        source.data_ptr<uint8_t>(), source.size(0), idx.data_ptr<int64_t>(), idx.size(0), g, seed,
        epoch, make_float3(s[0], s[1], s[2]), make_float3(h[0], h[1], h[2]), out_ptr,
        out.stride(0), out.stride(1), out.stride(2), out.stride(3));
  };
  switch (out.scalar_type()) {  // the model's input dtypes: fp32, or bf16 under autocast
    case at::kFloat: launch(out.data_ptr<float>()); break;
    case at::kBFloat16: launch(out.data_ptr<at::BFloat16>()); break;
    case at::kDouble: launch(out.data_ptr<double>()); break;  // --precision fp64
    default: TORCH_CHECK(false, "augment_batch_cuda: output must be float32, bfloat16 or float64");
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

}  // namespace dt::data
