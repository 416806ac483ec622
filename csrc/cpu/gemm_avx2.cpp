// AVX2+FMA register-tiled GEMM micro-kernels (compiled with -mavx2 -mfma, see CMakeLists.txt).
//
//   C[6, NR] = alpha * sum_p A[:, p] (x) B[p, :] + beta * C,   NR = two 256-bit vectors.
//
// Per k step the kernel loads one row of the packed B panel (2 vectors), broadcasts the
// 6 values of the packed A column one at a time, and issues 12 FMAs into 12 accumulators
// that live in registers for the whole kc loop. Zen 3 retires two 256-bit FMAs per cycle
// with 4 cycles latency, so 12 independent chains keep both pipes busy.
#include "cpu/gemm_avx2.h"

#include <immintrin.h>

namespace gradflow::cpu::avx2 {
namespace {

struct F32 {
  using T = float;
  using V = __m256;
  static V zero() { return _mm256_setzero_ps(); }
  static V load(const T* p) { return _mm256_load_ps(p); }
  static V loadu(const T* p) { return _mm256_loadu_ps(p); }
  static void storeu(T* p, V v) { _mm256_storeu_ps(p, v); }
  static V bcast(const T* p) { return _mm256_broadcast_ss(p); }
  static V set1(T x) { return _mm256_set1_ps(x); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  // Lanes j < n of a vector are active.
  static __m256i mask(int64_t n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static V maskload(const T* p, __m256i m) { return _mm256_maskload_ps(p, m); }
  static void maskstore(T* p, __m256i m, V v) { _mm256_maskstore_ps(p, m, v); }
};

struct F64 {
  using T = double;
  using V = __m256d;
  static V zero() { return _mm256_setzero_pd(); }
  static V load(const T* p) { return _mm256_load_pd(p); }
  static V loadu(const T* p) { return _mm256_loadu_pd(p); }
  static void storeu(T* p, V v) { _mm256_storeu_pd(p, v); }
  static V bcast(const T* p) { return _mm256_broadcast_sd(p); }
  static V set1(T x) { return _mm256_set1_pd(x); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
  static V mul(V a, V b) { return _mm256_mul_pd(a, b); }
  static __m256i mask(int64_t n) {
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), _mm256_setr_epi64x(0, 1, 2, 3));
  }
  static V maskload(const T* p, __m256i m) { return _mm256_maskload_pd(p, m); }
  static void maskstore(T* p, __m256i m, V v) { _mm256_maskstore_pd(p, m, v); }
};

// c[i, j] = alpha * acc[i, j] + beta * c[i, j] for rows i < mr and columns j < nr of an
// MR x 2W register tile (beta == 0: c is not read, so NaN/garbage there does not propagate).
template <typename S>
__attribute__((always_inline)) inline void store_tile(const typename S::V (&acc)[kGemmMR][2],
                                                      typename S::T* c, int64_t ldc,
                                                      typename S::T alpha, typename S::T beta,
                                                      int64_t mr, int64_t nr) {
  using T = typename S::T;
  using V = typename S::V;
  constexpr int MR = kGemmMR;
  constexpr int W = sizeof(V) / sizeof(T);
  const V va = S::set1(alpha), vb = S::set1(beta);
  if (mr == MR && nr == 2 * W) {
    for (int i = 0; i < MR; ++i) {
      T* ci = c + i * ldc;
      if (beta == T(0)) {
        S::storeu(ci, S::mul(va, acc[i][0]));
        S::storeu(ci + W, S::mul(va, acc[i][1]));
      } else {
        S::storeu(ci, S::fma(vb, S::loadu(ci), S::mul(va, acc[i][0])));
        S::storeu(ci + W, S::fma(vb, S::loadu(ci + W), S::mul(va, acc[i][1])));
      }
    }
    return;
  }
  // Edge tile: rows i < mr, columns j < nr; masked lanes are neither read nor written.
  const __m256i m0 = S::mask(nr), m1 = S::mask(nr - W);
  for (int64_t i = 0; i < mr; ++i) {
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

template <typename S>
inline void kernel_6x2v(int64_t kc, const typename S::T* a, const typename S::T* b,
                        typename S::T* c, int64_t ldc, typename S::T alpha,
                        typename S::T beta, int64_t mr, int64_t nr) {
  using T = typename S::T;
  using V = typename S::V;
  constexpr int MR = kGemmMR;
  constexpr int W = sizeof(V) / sizeof(T);
  // The C tile is only touched after the kc loop: fetch both cache lines of each row now.
  for (int64_t i = 0; i < mr; ++i) {
    __builtin_prefetch(c + i * ldc, 1, 3);
    __builtin_prefetch(c + i * ldc + 2 * W - 1, 1, 3);
  }
  V c00 = S::zero(), c01 = S::zero(), c10 = S::zero(), c11 = S::zero();
  V c20 = S::zero(), c21 = S::zero(), c30 = S::zero(), c31 = S::zero();
  V c40 = S::zero(), c41 = S::zero(), c50 = S::zero(), c51 = S::zero();
  for (int64_t p = 0; p < kc; ++p) {
    const V b0 = S::load(b), b1 = S::load(b + W);
    V ai = S::bcast(a + 0);
    c00 = S::fma(ai, b0, c00);
    c01 = S::fma(ai, b1, c01);
    ai = S::bcast(a + 1);
    c10 = S::fma(ai, b0, c10);
    c11 = S::fma(ai, b1, c11);
    ai = S::bcast(a + 2);
    c20 = S::fma(ai, b0, c20);
    c21 = S::fma(ai, b1, c21);
    ai = S::bcast(a + 3);
    c30 = S::fma(ai, b0, c30);
    c31 = S::fma(ai, b1, c31);
    ai = S::bcast(a + 4);
    c40 = S::fma(ai, b0, c40);
    c41 = S::fma(ai, b1, c41);
    ai = S::bcast(a + 5);
    c50 = S::fma(ai, b0, c50);
    c51 = S::fma(ai, b1, c51);
    a += MR;
    b += 2 * W;
  }
  const V acc[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21},
                        {c30, c31}, {c40, c41}, {c50, c51}};
  store_tile<S>(acc, c, ldc, alpha, beta, mr, nr);
}

// In-register transposes: r[i][j] <- r[j][i] for an 8x8 float / 4x4 double block.
inline void transpose8(__m256 r[8]) {
  __m256 t[8], u[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
    u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
    u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  for (int i = 0; i < 4; ++i) {
    r[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
    r[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
  }
}

inline void transpose4(__m256d r[4]) {
  const __m256d t0 = _mm256_unpacklo_pd(r[0], r[1]), t1 = _mm256_unpackhi_pd(r[0], r[1]);
  const __m256d t2 = _mm256_unpacklo_pd(r[2], r[3]), t3 = _mm256_unpackhi_pd(r[2], r[3]);
  r[0] = _mm256_permute2f128_pd(t0, t2, 0x20);
  r[1] = _mm256_permute2f128_pd(t1, t3, 0x20);
  r[2] = _mm256_permute2f128_pd(t0, t2, 0x31);
  r[3] = _mm256_permute2f128_pd(t1, t3, 0x31);
}

// The first n (4, 6 or 8) lanes of v to d.
inline void store_lanes(float* d, __m256 v, int n) {
  if (n == 8) {
    _mm256_storeu_ps(d, v);
    return;
  }
  _mm_storeu_ps(d, _mm256_castps256_ps128(v));
  if (n == 6) _mm_storel_pi(reinterpret_cast<__m64*>(d + 4), _mm256_extractf128_ps(v, 1));
}

// dst[p*R + s] = x[s*ld + p] for s < R, p < kc, eight steps of p per transpose of eight rows.
template <int R>
void pack_strided_f32(const float* x, int64_t ld, int64_t kc, float* dst) {
  static_assert(R % 8 == 0 || R % 8 == 4 || R % 8 == 6, "rows come in groups of 8, 6 or 4");
  int64_t p = 0;
  for (; p + 8 <= kc; p += 8) {
    for (int g = 0; g < R; g += 8) {
      __m256 r[8];
      for (int i = 0; i < 8; ++i)
        r[i] = g + i < R ? _mm256_loadu_ps(x + (g + i) * ld + p) : _mm256_setzero_ps();
      transpose8(r);
      for (int i = 0; i < 8; ++i) store_lanes(dst + (p + i) * R + g, r[i], R - g < 8 ? R - g : 8);
    }
  }
  for (; p < kc; ++p)
    for (int s = 0; s < R; ++s) dst[p * R + s] = x[s * ld + p];
}

template <int R>
void pack_strided_f64(const double* x, int64_t ld, int64_t kc, double* dst) {
  static_assert(R % 2 == 0, "rows come in groups of 4 or 2");
  int64_t p = 0;
  for (; p + 4 <= kc; p += 4) {
    for (int g = 0; g < R; g += 4) {
      __m256d r[4];
      for (int i = 0; i < 4; ++i)
        r[i] = g + i < R ? _mm256_loadu_pd(x + (g + i) * ld + p) : _mm256_setzero_pd();
      transpose4(r);
      double* d = dst + p * R + g;
      for (int i = 0; i < 4; ++i) {
        if (R - g >= 4)
          _mm256_storeu_pd(d + i * R, r[i]);
        else
          _mm_storeu_pd(d + i * R, _mm256_castpd256_pd128(r[i]));
      }
    }
  }
  for (; p < kc; ++p)
    for (int s = 0; s < R; ++s) dst[p * R + s] = x[s * ld + p];
}

}  // namespace

void gemm_kernel(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, float alpha,
                 float beta, int64_t mr, int64_t nr) {
  kernel_6x2v<F32>(kc, a, b, c, ldc, alpha, beta, mr, nr);
}

void gemm_kernel(int64_t kc, const double* a, const double* b, double* c, int64_t ldc,
                 double alpha, double beta, int64_t mr, int64_t nr) {
  kernel_6x2v<F64>(kc, a, b, c, ldc, alpha, beta, mr, nr);
}

void pack_strided_panel(const float* x, int64_t ld, int64_t kc, int r, float* dst) {
  switch (r) {
    case 6: return pack_strided_f32<6>(x, ld, kc, dst);
    case 12: return pack_strided_f32<12>(x, ld, kc, dst);
    case 16: return pack_strided_f32<16>(x, ld, kc, dst);
    default: return pack_strided_f32<32>(x, ld, kc, dst);  // 32, the header's last width
  }
}

void pack_strided_panel(const double* x, int64_t ld, int64_t kc, int r, double* dst) {
  switch (r) {
    case 6: return pack_strided_f64<6>(x, ld, kc, dst);
    case 8: return pack_strided_f64<8>(x, ld, kc, dst);
    case 12: return pack_strided_f64<12>(x, ld, kc, dst);
    default: return pack_strided_f64<16>(x, ld, kc, dst);  // 16, the header's last width
  }
}

}  // namespace gradflow::cpu::avx2
