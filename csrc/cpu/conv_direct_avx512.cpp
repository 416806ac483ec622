// The direct convolution kernels (conv_direct_kernel.h) on 512-bit AVX-512F vectors.
#include <immintrin.h>

#include "cpu/conv_direct_kernel.h"

namespace gradflow::cpu::avx512 {
namespace {

struct Zmm {
  using V = __m512;
  static constexpr int64_t W = 16;
  static constexpr int kTile = 6;  // planes: 24 accumulators, 6 x vectors, 1 weight
  static constexpr int kTaps = 6;  // weight gradient: 24 accumulators, 6 x vectors, 1 dy
  static V zero() { return _mm512_setzero_ps(); }
  static V loadu(const float* p) { return _mm512_loadu_ps(p); }
  static void storeu(float* p, V v) { _mm512_storeu_ps(p, v); }
  static V bcast(const float* p) { return _mm512_set1_ps(*p); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static float sum(V v) { return _mm512_reduce_add_ps(v); }
};

}  // namespace

// GEMM limits measured on Zen 5: flat grids and weight gradients of 64 channels of 3x3 run as
// fast as im2col + GEMM or faster here (8x8 to 56x56 planes: 0.62-1.04x its time); 128 and
// 256 channels do not.
extern const DirectKernels kDirectKernels{Zmm::W, Zmm::kTaps, 576, 576,
                                          &direct_planes<Zmm>, &direct_weight<Zmm>};

}  // namespace gradflow::cpu::avx512
