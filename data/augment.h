// Batch augmentation on the training device: gather samples by index from the device-resident
// uint8 set, then crop, flip and normalise them in one pass (CUDA kernel on GPU, a CPU loop
// otherwise; both share augment_kernel.h). A sample's draw depends only on (seed, epoch, index).
//
// Modes: `standard` pads the 32x32 image by `pad` (zero or reflect) and crops 32 at random, then
// flips; `seed` is the seed script's Resize(40) + flip + RandomCrop(32): the images are resized
// once to 40x40 (prepare_source) and cropped without padding; `none` only normalises.
// Cutout (DeVries & Taylor; the fully-inside variant of Page's fast CIFAR ResNet) sets a random
// square of the cropped image to 0 after normalisation, i.e. to the dataset mean (with
// `normalize` false, --normalize none: to black).
#pragma once
#include <torch/torch.h>
#include <string>
#include "data/augment_kernel.h"
#include "data/augment_mode.h"

namespace dt::data {

struct AugmentSpec {
  AugmentMode mode = AugmentMode::Standard;
  int64_t pad = 4;  // standard mode only
  PadMode pad_mode = PadMode::Zero;
  int64_t cutout = 0;  // side of the square, any mode (0: none); training only
  bool normalize = true;  // CIFAR-10 mean and std; false: pixel / 255 (data/normalization.h)
};

// Parsers throw DataError naming the accepted values.
AugmentMode parse_augment_mode(const std::string& name);
PadMode parse_pad_mode(const std::string& name);
std::string to_string(AugmentMode mode);
std::string to_string(PadMode mode);
// Throws DataError for a padding outside [0, 16] or a cutout outside [0, 32].
void validate(const AugmentSpec& spec);

// The source images the augmentation crops from: the images themselves, or for `seed` mode the
// images bilinearly resized to 40x40 (uint8), computed once.
torch::Tensor prepare_source(const torch::Tensor& images, AugmentMode mode);
// The geometry that source size and spec imply; `train` false gives the evaluation transform
// (centre crop, no flip).
AugmentGeometry geometry_for(const AugmentSpec& spec, int64_t source_size, bool train);

// Output: [B, 3, 32, 32] of `dtype` on the source's device, channels_last when asked.
// `indices` (int64, any device) select rows of `source` (uint8 [N, 3, S, S], contiguous).
torch::Tensor augment_batch(const torch::Tensor& source, const torch::Tensor& indices,
                            const AugmentGeometry& geometry, bool normalize, uint64_t seed,
                            int64_t epoch, torch::ScalarType dtype, bool channels_last);

// The draws augment_batch uses for these samples, as int64 [B, 5]
// (offset_y, offset_x, flip, cutout_y, cutout_x).
torch::Tensor sample_draws(const torch::Tensor& indices, const AugmentGeometry& geometry,
                           uint64_t seed, int64_t epoch);

#if DT_HAVE_CUDA
// CUDA implementation (augment_cuda.cu); `out` is float32 or bfloat16, any memory format.
void augment_batch_cuda(const torch::Tensor& source, const torch::Tensor& indices,
                        const AugmentGeometry& geometry, bool normalize, uint64_t seed,
                        int64_t epoch, torch::Tensor& out);
#endif

}  // namespace dt::data
