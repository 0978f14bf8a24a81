// Winograd F(4x4, 3x3) convolution for the CPU (AVX-512), on raw NHWC float buffers.
//
// Free of LibTorch on purpose: model/conv3x3.cpp owns tensors, threads and autograd; this file
// only computes. Its AVX-512 code is confined to functions with a target attribute and runs only
// where cpu_supported() says so.
#pragma once
#include <array>
#include <cstdint>

namespace dt::model::winograd {

constexpr int kTile = 4;                  // output tile edge
constexpr int kAlpha = kTile + 3 - 1;     // input tile edge
constexpr int kPoints = kAlpha * kAlpha;  // transform-domain points per tile
constexpr int kLanes = 16;                // channels per AVX-512 vector

// True when this CPU can run convolve() (AVX-512F).
bool cpu_supported();

// K[9][36] with U = w K for w a 3x3 filter flattened row-major: the filter transform G g G^T as
// one matrix, so filters transform as one matrix product.
std::array<float, 9 * kPoints> filter_transform();

struct Shape {
  int64_t n, h, w, cin, cout;  // stride 1, padding 1: the output is n x h x w x cout
  int64_t tiles_h() const { return (h + kTile - 1) / kTile; }
  int64_t tiles_w() const { return (w + kTile - 1) / kTile; }
  int64_t tiles() const { return n * tiles_h() * tiles_w(); }
};

// Tiles per block (the unit of work and of scratch) and the scratch floats one block needs.
int64_t block_tiles(const Shape& s);
int64_t scratch_floats(const Shape& s);

// out (NHWC, n x h x w x cout) = the 3x3 correlation of in (NHWC, n x h x w x cin) with the
// transformed filters u ([36][cin][cout]), for output tiles [tile_begin, tile_end) only; tile
// index = (image * tiles_h + tile_row) * tiles_w + tile_col. cin and cout are multiples of kLanes.
// scratch: scratch_floats(s) floats, one buffer per concurrent caller.
void convolve(const Shape& s, const float* in, const float* u, float* out, int64_t tile_begin,
              int64_t tile_end, float* scratch);

// du ([36][cin][cout]) += the gradient of the transformed filters, given the convolution's input
// `in` (NHWC, cin channels) and the gradient of its output `grad_out` (NHWC, cout channels), over
// output tiles [tile_begin, tile_end). The filters' own gradient is du K^T (K: filter_transform()).
// scratch: scratch_floats(s) floats, one buffer per concurrent caller.
void filter_gradient(const Shape& s, const float* in, const float* grad_out, float* du,
                     int64_t tile_begin, int64_t tile_end, float* scratch);

}  // namespace dt::model::winograd
