// The direct convolution kernels (conv_direct_kernel.h) on 256-bit AVX2+FMA vectors.
#include <immintrin.h>

#include "cpu/conv_direct_kernel.h"

namespace gradflow::cpu::avx2 {
namespace {

struct Ymm {
  using V = __m256;
  static constexpr int64_t W = 8;
  static constexpr int kTile = 3;  // planes: 12 accumulators, 3 x vectors, 1 weight
  static constexpr int kTaps = 3;  // weight gradient: 12 accumulators, 3 x vectors, 1 dy
  static V zero() { return _mm256_setzero_ps(); }
  static V loadu(const float* p) { return _mm256_loadu_ps(p); }
  static void storeu(float* p, V v) { _mm256_storeu_ps(p, v); }
  static V bcast(const float* p) { return _mm256_broadcast_ss(p); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static float sum(V v) {
    const __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    const __m128 q = _mm_add_ps(h, _mm_movehl_ps(h, h));
    return _mm_cvtss_f32(_mm_add_ss(q, _mm_movehdup_ps(q)));
  }
};

}  // namespace

// GEMM limits measured on Zen 2/3: flat grids of 64 channels of 14x14 and 28x28, 128 of 14x14,
// and weight gradients of 64 channels (8x8, 16x16 planes) ran faster as im2col + GEMM.
extern const DirectKernels kDirectKernels{Ymm::W, Ymm::kTaps, 288, 288,
                                          &direct_planes<Ymm>, &direct_weight<Ymm>};

}  // namespace gradflow::cpu::avx2
