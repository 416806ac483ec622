// AVX-512F register-tiled GEMM micro-kernels (compiled with -mavx512f, see CMakeLists.txt).
//
//   C[12, NR] = alpha * sum_p A[:, p] (x) B[p, :] + beta * C,   NR = two 512-bit vectors.
//
// The AVX2 kernel's scheme (gemm_avx2.cpp) on twice the registers and twice the width: per k
// step one row of the packed B panel (2 vectors) and 12 broadcast A values feed 24 FMAs into
// 24 accumulators. Two 512-bit FMA pipes with 4 cycles latency need 8 independent chains;
// 24 also amortise the B loads over twice the rows. Edge tiles use AVX-512's lane masks.
#include "cpu/gemm_avx512.h"

#include <immintrin.h>

namespace gradflow::cpu::avx512 {
namespace {

struct F32 {
  using T = float;
  using V = __m512;
  using Mask = __mmask16;
  static V zero() { return _mm512_setzero_ps(); }
  static V loadu(const T* p) { return _mm512_loadu_ps(p); }
  static V bcast(const T* p) { return _mm512_set1_ps(*p); }
  static V set1(T x) { return _mm512_set1_ps(x); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static V maskload(const T* p, Mask m) { return _mm512_maskz_loadu_ps(m, p); }
  static void maskstore(T* p, Mask m, V v) { _mm512_mask_storeu_ps(p, m, v); }
};

struct F64 {
  using T = double;
  using V = __m512d;
  using Mask = __mmask8;
  static V zero() { return _mm512_setzero_pd(); }
  static V loadu(const T* p) { return _mm512_loadu_pd(p); }
  static V bcast(const T* p) { return _mm512_set1_pd(*p); }
  static V set1(T x) { return _mm512_set1_pd(x); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
  static V mul(V a, V b) { return _mm512_mul_pd(a, b); }
  static V maskload(const T* p, Mask m) { return _mm512_maskz_loadu_pd(m, p); }
  static void maskstore(T* p, Mask m, V v) { _mm512_mask_storeu_pd(p, m, v); }
};

// Lanes j < n of a W-lane vector are active (none for n <= 0, all for n >= W).
template <typename S>
typename S::Mask lanes(int64_t n) {
  constexpr int W = sizeof(typename S::V) / sizeof(typename S::T);
  if (n <= 0) return 0;
  return n >= W ? static_cast<typename S::Mask>(~0u)
                : static_cast<typename S::Mask>((1u << n) - 1);
}

template <typename S>
void kernel_12x2v(int64_t kc, const typename S::T* a, const typename S::T* b, typename S::T* c,
                  int64_t ldc, typename S::T alpha, typename S::T beta, int64_t mr,
                  int64_t nr) {
  using T = typename S::T;
  using V = typename S::V;
  constexpr int MR = kGemmMR;
  constexpr int W = sizeof(V) / sizeof(T);
  // The C tile is only touched after the kc loop: fetch both cache lines of each row now.
  for (int64_t i = 0; i < mr; ++i) {
    __builtin_prefetch(c + i * ldc, 1, 3);
    __builtin_prefetch(c + i * ldc + 2 * W - 1, 1, 3);
  }
  V acc[MR][2];
#pragma GCC unroll 12
  for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = S::zero();
  for (int64_t p = 0; p < kc; ++p, a += MR, b += 2 * W) {
    const V b0 = S::loadu(b), b1 = S::loadu(b + W);
#pragma GCC unroll 12
    for (int i = 0; i < MR; ++i) {
      const V ai = S::bcast(a + i);
      acc[i][0] = S::fma(ai, b0, acc[i][0]);
      acc[i][1] = S::fma(ai, b1, acc[i][1]);
    }
  }
  // c[i, j] = alpha * acc[i, j] + beta * c[i, j] on rows i < mr, columns j < nr (masked
  // lanes are neither read nor written; beta == 0 does not read c, so NaNs there vanish).
  const V va = S::set1(alpha), vb = S::set1(beta);
  const typename S::Mask m0 = lanes<S>(nr), m1 = lanes<S>(nr - W);
#pragma GCC unroll 12
  for (int i = 0; i < MR; ++i) {
    if (i >= mr) break;
    T* ci = c + i * ldc;
    V r0 = S::mul(va, acc[i][0]), r1 = S::mul(va, acc[i][1]);
    if (beta != T(0)) {
      r0 = S::fma(vb, S::maskload(ci, m0), r0);
      r1 = S::fma(vb, S::maskload(ci + W, m1), r1);
    }
    S::maskstore(ci, m0, r0);
    S::maskstore(ci + W, m1, r1);
  }
}

}  // namespace

void gemm_kernel(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, float alpha,
                 float beta, int64_t mr, int64_t nr) {
  kernel_12x2v<F32>(kc, a, b, c, ldc, alpha, beta, mr, nr);
}

void gemm_kernel(int64_t kc, const double* a, const double* b, double* c, int64_t ldc,
                 double alpha, double beta, int64_t mr, int64_t nr) {
  kernel_12x2v<F64>(kc, a, b, c, ldc, alpha, beta, mr, nr);
}

}  // namespace gradflow::cpu::avx512
