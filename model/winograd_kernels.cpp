// Winograd F(4x4, 3x3) (Lavin & Gray, 2016): each 4x4 output tile of a stride-1, padding-1 3x3
// convolution is A^T [(G g G^T) . (B^T d B)] A over a 6x6 input tile d, so the channel mixing is
// 36 small matrix products with 2.25 multiplies per output instead of 9. The transforms are
// vectorised across 16 channels (NHWC makes those contiguous); the products are a register-
// blocked kernel over blocks of tiles sized so that a block's transformed inputs and products
// stay in L2.
//
// Only the functions marked DT_AVX512 use AVX-512, and they have internal linkage; the rest of
// this file is plain C++, so nothing compiled here can leak AVX-512 into inline functions shared
// with other files. Off x86-64 the kernels compile out and cpu_supported() is false.
#include "model/winograd_kernels.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <stdexcept>

#if defined(__x86_64__)
#include <immintrin.h>
#define DT_WINOGRAD_X86 1
#else
#define DT_WINOGRAD_X86 0
#endif

namespace dt::model::winograd {
namespace {

// G (6x3) for F(4x4, 3x3).
constexpr double kG[6][3] = {{1.0 / 4, 0, 0},
                             {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                             {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                             {1.0 / 24, 1.0 / 12, 1.0 / 6},
                             {1.0 / 24, -1.0 / 12, 1.0 / 6},
                             {0, 0, 1}};

#if DT_WINOGRAD_X86
#define DT_AVX512 __attribute__((target("avx512f")))
#define DT_AVX512_INLINE __attribute__((target("avx512f"), always_inline)) inline

// c[r][0, 16 kVecs) (+)= sum_k a[r * a_row + k * a_k] * b[k * b_k + 0, 16 kVecs) for kRows rows:
// the register-blocked product under both the convolution (rows: tiles, k: input channels) and
// the filter gradient (rows: input channels, k: tiles). kRows * kVecs accumulators plus kVecs
// filter vectors must fit the 32 zmm registers.
template <int kRows, int kVecs, bool kAccumulate>
DT_AVX512_INLINE void product_rows(const float* a, int64_t a_row, int64_t a_k, const float* b,
                                   int64_t b_k, int64_t k_count, float* c, int64_t c_row) {
  __m512 acc[kRows][kVecs];
#pragma GCC unroll 16
  for (int r = 0; r < kRows; ++r)
#pragma GCC unroll 4
    for (int j = 0; j < kVecs; ++j)
      acc[r][j] = kAccumulate ? _mm512_loadu_ps(c + r * c_row + j * kLanes) : _mm512_setzero_ps();
  for (int64_t k = 0; k < k_count; ++k) {
    __m512 w[kVecs];
#pragma GCC unroll 4
    for (int j = 0; j < kVecs; ++j) w[j] = _mm512_loadu_ps(b + k * b_k + j * kLanes);
#pragma GCC unroll 16
    for (int r = 0; r < kRows; ++r) {
      const __m512 x = _mm512_set1_ps(a[r * a_row + k * a_k]);
#pragma GCC unroll 4
      for (int j = 0; j < kVecs; ++j) acc[r][j] = _mm512_fmadd_ps(x, w[j], acc[r][j]);
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < kRows; ++r)
#pragma GCC unroll 4
    for (int j = 0; j < kVecs; ++j) _mm512_storeu_ps(c + r * c_row + j * kLanes, acc[r][j]);
}

// Output channels handled per pass of the product kernels: 64, 32 or 16.
inline int64_t vecs_for(int64_t channels_left) {
  return channels_left >= 4 * kLanes ? 4 : channels_left >= 2 * kLanes ? 2 : 1;
}

// m[tiles][cout] = v[tiles][cin] x u[cin][cout] for one transform point; tiles % 12 == 0.
DT_AVX512 void multiply_point(const float* v, int64_t tiles, int64_t cin, const float* u,
                              int64_t cout, float* m) {
  for (int64_t c = 0; c < cout; c += vecs_for(cout - c) * kLanes) {
    const int64_t vecs = vecs_for(cout - c);
    for (int64_t r = 0; r < tiles; r += 12) {
      const float* vr = v + r * cin;
      float* mr = m + r * cout + c;
      if (vecs == 4) {
        product_rows<6, 4, false>(vr, cin, 1, u + c, cout, cin, mr, cout);
        product_rows<6, 4, false>(vr + 6 * cin, cin, 1, u + c, cout, cin, mr + 6 * cout, cout);
      } else if (vecs == 2) {
        product_rows<12, 2, false>(vr, cin, 1, u + c, cout, cin, mr, cout);
      } else {
        product_rows<12, 1, false>(vr, cin, 1, u + c, cout, cin, mr, cout);
      }
    }
  }
}

// du[cin][cout] += v[tiles][cin]^T x g[tiles][cout] for one transform point; cin % 16 == 0.
DT_AVX512 void accumulate_point(const float* v, const float* g, int64_t tiles, int64_t cin,
                                int64_t cout, float* du) {
  for (int64_t c = 0; c < cout; c += vecs_for(cout - c) * kLanes) {
    const int64_t vecs = vecs_for(cout - c);
    for (int64_t r = 0; r < cin; r += 8) {
      if (vecs == 4) {
        product_rows<4, 4, true>(v + r, 1, cin, g + c, cout, tiles, du + r * cout + c, cout);
        product_rows<4, 4, true>(v + r + 4, 1, cin, g + c, cout, tiles, du + (r + 4) * cout + c,
                                 cout);
      } else if (vecs == 2) {
        product_rows<8, 2, true>(v + r, 1, cin, g + c, cout, tiles, du + r * cout + c, cout);
      } else {
        product_rows<8, 1, true>(v + r, 1, cin, g + c, cout, tiles, du + r * cout + c, cout);
      }
    }
  }
}

// One dimension of B^T d B (applied to columns, then rows) for six 16-channel vectors.
DT_AVX512_INLINE void input_transform_1d(const __m512 d[6], __m512 out[6]) {
  const __m512 four = _mm512_set1_ps(4.f), five = _mm512_set1_ps(5.f), two = _mm512_set1_ps(2.f);
  const __m512 d4_minus_d2 = _mm512_sub_ps(d[4], d[2]);
  const __m512 d3_minus_d1 = _mm512_sub_ps(d[3], d[1]);
  const __m512 a = _mm512_fnmadd_ps(four, d[2], d[4]);  // d4 - 4 d2
  const __m512 b = _mm512_fnmadd_ps(four, d[1], d[3]);  // d3 - 4 d1
  out[0] = _mm512_fmadd_ps(four, d[0], _mm512_fnmadd_ps(five, d[2], d[4]));
  out[1] = _mm512_add_ps(a, b);
  out[2] = _mm512_sub_ps(a, b);
  out[3] = _mm512_fmadd_ps(two, d3_minus_d1, d4_minus_d2);
  out[4] = _mm512_fnmadd_ps(two, d3_minus_d1, d4_minus_d2);
  out[5] = _mm512_fmadd_ps(four, d[1], _mm512_fnmadd_ps(five, d[3], d[5]));
}

// One dimension of A^T m A.
DT_AVX512_INLINE void output_transform_1d(const __m512 m[6], __m512 out[4]) {
  const __m512 two = _mm512_set1_ps(2.f), four = _mm512_set1_ps(4.f), eight = _mm512_set1_ps(8.f);
  const __m512 s12 = _mm512_add_ps(m[1], m[2]), d12 = _mm512_sub_ps(m[1], m[2]);
  const __m512 s34 = _mm512_add_ps(m[3], m[4]), d34 = _mm512_sub_ps(m[3], m[4]);
  out[0] = _mm512_add_ps(_mm512_add_ps(m[0], s12), s34);
  out[1] = _mm512_fmadd_ps(two, d34, d12);
  out[2] = _mm512_fmadd_ps(four, s34, s12);
  out[3] = _mm512_add_ps(_mm512_fmadd_ps(eight, d34, d12), m[5]);
}

// One dimension of A y A^T (4 -> 6): the adjoint of output_transform_1d, which carries an
// output gradient back into the transform domain.
DT_AVX512_INLINE void grad_transform_1d(const __m512 y[4], __m512 out[6]) {
  const __m512 two = _mm512_set1_ps(2.f), four = _mm512_set1_ps(4.f), eight = _mm512_set1_ps(8.f);
  const __m512 s02 = _mm512_add_ps(y[0], y[2]), s13 = _mm512_add_ps(y[1], y[3]);
  const __m512 a = _mm512_fmadd_ps(four, y[2], y[0]);
  const __m512 b = _mm512_fmadd_ps(eight, y[3], _mm512_mul_ps(two, y[1]));
  out[0] = y[0];
  out[1] = _mm512_add_ps(s02, s13);
  out[2] = _mm512_sub_ps(s02, s13);
  out[3] = _mm512_add_ps(a, b);
  out[4] = _mm512_sub_ps(a, b);
  out[5] = y[3];
}

// v[p][t][cin] for the tiles [t0, t0 + count) of the block; rows past count stay zero.
DT_AVX512 void transform_inputs(const Shape& s, const float* in, int64_t t0,
                                int64_t count, int64_t block, float* v) {
  const __m512 zero = _mm512_setzero_ps();
  for (int64_t i = 0; i < count; ++i) {
    const int64_t t = t0 + i;
    const int64_t image = t / (s.tiles_h() * s.tiles_w());
    const int64_t ty = (t / s.tiles_w()) % s.tiles_h(), tx = t % s.tiles_w();
    const int64_t y0 = ty * kTile - 1, x0 = tx * kTile - 1;
    const float* base = in + image * s.h * s.w * s.cin;
    for (int64_t c = 0; c < s.cin; c += kLanes) {
      __m512 rows[6][6];  // B^T d: each column transformed as it is loaded (zero outside)
      for (int x = 0; x < 6; ++x) {
        const int64_t xx = x0 + x;
        __m512 col[6], out[6];
        for (int y = 0; y < 6; ++y) {
          const int64_t yy = y0 + y;
          col[y] = (yy >= 0 && yy < s.h && xx >= 0 && xx < s.w)
                       ? _mm512_loadu_ps(base + (yy * s.w + xx) * s.cin + c)
                       : zero;
        }
        input_transform_1d(col, out);
        for (int y = 0; y < 6; ++y) rows[y][x] = out[y];
      }
      for (int y = 0; y < 6; ++y) {  // (B^T d) B: transform each row
        __m512 out[6];
        input_transform_1d(rows[y], out);
        for (int x = 0; x < 6; ++x)
          _mm512_storeu_ps(v + ((y * 6 + x) * block + i) * s.cin + c, out[x]);
      }
    }
  }
  for (int64_t p = 0; p < kPoints; ++p)
    std::memset(v + (p * block + count) * s.cin, 0, sizeof(float) * (block - count) * s.cin);
}

DT_AVX512 void transform_outputs(const Shape& s, const float* m, int64_t t0,
                                 int64_t count, int64_t block, float* out) {
  for (int64_t i = 0; i < count; ++i) {
    const int64_t t = t0 + i;
    const int64_t image = t / (s.tiles_h() * s.tiles_w());
    const int64_t ty = (t / s.tiles_w()) % s.tiles_h(), tx = t % s.tiles_w();
    float* base = out + image * s.h * s.w * s.cout;
    for (int64_t c = 0; c < s.cout; c += kLanes) {
      __m512 cols[4][6];  // A^T m: transform each column
      for (int x = 0; x < 6; ++x) {
        __m512 col[6], o[4];
        for (int y = 0; y < 6; ++y)
          col[y] = _mm512_loadu_ps(m + ((y * 6 + x) * block + i) * s.cout + c);
        output_transform_1d(col, o);
        for (int y = 0; y < 4; ++y) cols[y][x] = o[y];
      }
      for (int y = 0; y < 4; ++y) {
        const int64_t yy = ty * kTile + y;
        if (yy >= s.h) break;
        __m512 o[4];
        output_transform_1d(cols[y], o);
        for (int x = 0; x < 4; ++x) {
          const int64_t xx = tx * kTile + x;
          if (xx >= s.w) break;
          _mm512_storeu_ps(base + (yy * s.w + xx) * s.cout + c, o[x]);
        }
      }
    }
  }
}

// g[p][t][cout] = A dy A^T for the 4x4 output-gradient tiles [t0, t0 + count) (zero outside the
// image); rows past count stay zero.
DT_AVX512 void transform_grads(const Shape& s, const float* grad_out, int64_t t0, int64_t count,
                               int64_t block, float* g) {
  const __m512 zero = _mm512_setzero_ps();
  for (int64_t i = 0; i < count; ++i) {
    const int64_t t = t0 + i;
    const int64_t image = t / (s.tiles_h() * s.tiles_w());
    const int64_t ty = (t / s.tiles_w()) % s.tiles_h(), tx = t % s.tiles_w();
    const float* base = grad_out + image * s.h * s.w * s.cout;
    for (int64_t c = 0; c < s.cout; c += kLanes) {
      __m512 rows[4][6];  // each row of dy carried 4 -> 6
      for (int y = 0; y < 4; ++y) {
        const int64_t yy = ty * kTile + y;
        __m512 in[4];
        for (int x = 0; x < 4; ++x) {
          const int64_t xx = tx * kTile + x;
          in[x] = (yy < s.h && xx < s.w) ? _mm512_loadu_ps(base + (yy * s.w + xx) * s.cout + c)
                                         : zero;
        }
        grad_transform_1d(in, rows[y]);
      }
      for (int x = 0; x < 6; ++x) {  // then each column
        __m512 col[4], out[6];
        for (int y = 0; y < 4; ++y) col[y] = rows[y][x];
        grad_transform_1d(col, out);
        for (int y = 0; y < 6; ++y)
          _mm512_storeu_ps(g + ((y * 6 + x) * block + i) * s.cout + c, out[y]);
      }
    }
  }
  for (int64_t p = 0; p < kPoints; ++p)
    std::memset(g + (p * block + count) * s.cout, 0, sizeof(float) * (block - count) * s.cout);
}

#endif  // DT_WINOGRAD_X86

}  // namespace

bool cpu_supported() {
#if DT_WINOGRAD_X86
  return __builtin_cpu_supports("avx512f");
#else
  return false;
#endif
}

std::array<float, 9 * kPoints> filter_transform() {
  std::array<float, 9 * kPoints> k{};
  for (int ky = 0; ky < 3; ++ky)
    for (int kx = 0; kx < 3; ++kx)
      for (int a = 0; a < kAlpha; ++a)
        for (int b = 0; b < kAlpha; ++b)
          k[(ky * 3 + kx) * kPoints + a * kAlpha + b] = static_cast<float>(kG[a][ky] * kG[b][kx]);
  return k;
}

int64_t block_tiles(const Shape& s) {
  // About 512 KB of transformed inputs and products per block: half of a Zen 4 / recent Xeon L2.
  const int64_t fit = (128 * 1024) / (kPoints * (s.cin + s.cout));
  return std::clamp<int64_t>(fit / 12 * 12, 12, 240);
}

int64_t scratch_floats(const Shape& s) { return kPoints * block_tiles(s) * (s.cin + s.cout); }

namespace {

// Runs body(t0, count, block, inputs, others) over the blocks of tiles [tile_begin, tile_end): the
// scratch holds one block's transformed inputs ([36][block][cin]) and then its products or
// transformed gradients ([36][block][cout]).
template <class Body>
void for_each_block(const Shape& s, int64_t tile_begin, int64_t tile_end, float* scratch,
                    Body body) {
#if !DT_WINOGRAD_X86
  throw std::logic_error("Winograd kernels: this build is not for x86-64");
#endif
  const int64_t block = block_tiles(s);
  for (int64_t t0 = tile_begin; t0 < tile_end; t0 += block) {
    body(t0, std::min(block, tile_end - t0), block, scratch, scratch + kPoints * block * s.cin);
  }
}

}  // namespace

void convolve(const Shape& s, const float* in, const float* u, float* out, int64_t tile_begin,
              int64_t tile_end, float* scratch) {
  for_each_block(s, tile_begin, tile_end, scratch,
                 [&](int64_t t0, int64_t count, int64_t block, float* v, float* m) {
#if DT_WINOGRAD_X86
                   transform_inputs(s, in, t0, count, block, v);
                   const int64_t rows = (count + 11) / 12 * 12;  // multiply_point's row blocks
                   for (int64_t p = 0; p < kPoints; ++p)
                     multiply_point(v + p * block * s.cin, rows, s.cin, u + p * s.cin * s.cout,
                                    s.cout, m + p * block * s.cout);
                   transform_outputs(s, m, t0, count, block, out);
#endif
                 });
}

void filter_gradient(const Shape& s, const float* in, const float* grad_out, float* du,
                     int64_t tile_begin, int64_t tile_end, float* scratch) {
  for_each_block(s, tile_begin, tile_end, scratch,
                 [&](int64_t t0, int64_t count, int64_t block, float* v, float* g) {
#if DT_WINOGRAD_X86
                   transform_inputs(s, in, t0, count, block, v);
                   transform_grads(s, grad_out, t0, count, block, g);
                   for (int64_t p = 0; p < kPoints; ++p)
                     accumulate_point(v + p * block * s.cin, g + p * block * s.cout, count, s.cin,
                                      s.cout, du + p * s.cin * s.cout);
#endif
                 });
}

}  // namespace dt::model::winograd
