// Batched GEMM: C[p] = A[p] @ B[p], row-major, A (m x k), B (k x n), C (m x n), each with
// its own row stride (ld) and a two-level batch (gemm_batch.h: e.g. (image, group)), no tensor
// cores (exact fp32/fp64 FMA arithmetic, like cuBLAS with TF32 off).
//
// One thread block computes a BM x BN tile of C, walking k in steps of BK:
//   - global -> registers: each thread fetches 16-byte vectors (float4 / double2) of the next
//     A and B tiles while the current tile is being multiplied (software pipelining);
//   - registers -> shared memory, two buffers: A is stored transposed (As[k][m], each row
//     padded by one vector against bank conflicts on the transposed stores), B as is;
//   - shared -> registers: per k, each thread reads TM values of A's column and TN of B's row
//     (16-byte loads) and does TM * TN FMAs into its accumulator tile (register blocking).
// A thread owns a TM x TN = 2V x 2V patch split into four V x V quarters placed BM/2 and BN/2
// apart, so a warp's shared-memory reads are broadcasts or consecutive vectors.
#include <algorithm>

#include "cuda/iter.cuh"
#include "cuda/kernels.h"

namespace gradflow::cuda {
namespace {

template <typename T>
struct Vec;
template <>
struct Vec<float> {
  using type = float4;
  static constexpr int n = 4;
};
template <>
struct Vec<double> {
  using type = double2;
  static constexpr int n = 2;
};

constexpr int kThreads = 256;

template <typename T, int BK>
struct Tile {
  static constexpr int V = Vec<T>::n;
  static constexpr int TM = 2 * V, TN = 2 * V;  // per-thread patch
  static constexpr int BM = 16 * TM, BN = 16 * TN;  // 16 x 16 threads
  static constexpr int A_LOADS = BM * BK / (kThreads * V), B_LOADS = BK * BN / (kThreads * V);
  static_assert(A_LOADS >= 1 && B_LOADS >= 1, "tile too small for one vector per thread");
};

// Matrix p of a MatrixBatch (gemm_batch.h).
template <typename T>
__device__ __forceinline__ T* batch_matrix(const MatrixBatch<T>& m, int64_t p, int64_t inner) {
  return m.ptr + p / inner * m.outer_stride + p % inner * m.inner_stride;
}

// Block (x, y, z) computes tile (row_base + y * BM, x * BN) of product p0 + z of the batch.
template <typename T, int BK, bool kVec>
__global__ void __launch_bounds__(kThreads, 2)
    gemm_kernel(int m, int n, int k, MatrixBatch<const T> ma, MatrixBatch<const T> mb,
                MatrixBatch<T> mc, int64_t p0, int64_t inner, int row_base) {
  using L = Tile<T, BK>;
  using VT = typename Vec<T>::type;
  constexpr int V = L::V, BM = L::BM, BN = L::BN, TM = L::TM, TN = L::TN;
  __shared__ __align__(16) T As[2][BK][BM + V];
  __shared__ __align__(16) T Bs[2][BK][BN];

  const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
  const int row0 = row_base + blockIdx.y * BM, col0 = blockIdx.x * BN;
  const int64_t p = p0 + blockIdx.z, lda = ma.ld, ldb = mb.ld, ldc = mc.ld;
  const T* __restrict__ a = batch_matrix(ma, p, inner);
  const T* __restrict__ b = batch_matrix(mb, p, inner);
  T* __restrict__ c = batch_matrix(mc, p, inner);

  T ra[L::A_LOADS][V], rb[L::B_LOADS][V];  // the next tile, in flight

  auto load_tiles = [&](int k0) {
#pragma unroll
    for (int l = 0; l < L::A_LOADS; ++l) {
      const int v = tid + l * kThreads, r = v / (BK / V), kc = (v % (BK / V)) * V;
      const int gr = row0 + r, gk = k0 + kc;
      if constexpr (kVec) {
        VT x{};
        if (gr < m && gk < k) x = *reinterpret_cast<const VT*>(a + int64_t(gr) * lda + gk);
        const T* xs = reinterpret_cast<const T*>(&x);
#pragma unroll
        for (int j = 0; j < V; ++j) ra[l][j] = xs[j];
      } else {
#pragma unroll
        for (int j = 0; j < V; ++j)
          ra[l][j] = (gr < m && gk + j < k) ? a[int64_t(gr) * lda + gk + j] : T(0);
      }
    }
#pragma unroll
    for (int l = 0; l < L::B_LOADS; ++l) {
      const int v = tid + l * kThreads, kr = v / (BN / V), cc = (v % (BN / V)) * V;
      const int gk = k0 + kr, gc = col0 + cc;
      if constexpr (kVec) {
        VT x{};
        if (gk < k && gc < n) x = *reinterpret_cast<const VT*>(b + int64_t(gk) * ldb + gc);
        const T* xs = reinterpret_cast<const T*>(&x);
#pragma unroll
        for (int j = 0; j < V; ++j) rb[l][j] = xs[j];
      } else {
#pragma unroll
        for (int j = 0; j < V; ++j)
          rb[l][j] = (gk < k && gc + j < n) ? b[int64_t(gk) * ldb + gc + j] : T(0);
      }
    }
  };

  auto store_tiles = [&](int buf) {
#pragma unroll
    for (int l = 0; l < L::A_LOADS; ++l) {
      const int v = tid + l * kThreads, r = v / (BK / V), kc = (v % (BK / V)) * V;
#pragma unroll
      for (int j = 0; j < V; ++j) As[buf][kc + j][r] = ra[l][j];
    }
#pragma unroll
    for (int l = 0; l < L::B_LOADS; ++l) {
      const int v = tid + l * kThreads, kr = v / (BN / V), cc = (v % (BN / V)) * V;
      *reinterpret_cast<VT*>(&Bs[buf][kr][cc]) = *reinterpret_cast<const VT*>(rb[l]);
    }
  };

  T acc[TM][TN];
#pragma unroll
  for (int i = 0; i < TM; ++i)
#pragma unroll
    for (int j = 0; j < TN; ++j) acc[i][j] = T(0);

  const int tiles = (k + BK - 1) / BK;
  load_tiles(0);
  store_tiles(0);
  __syncthreads();
  for (int t = 0; t < tiles; ++t) {
    const int buf = t & 1;
    if (t + 1 < tiles) load_tiles((t + 1) * BK);
#pragma unroll
    for (int kk = 0; kk < BK; ++kk) {
      T fa[TM], fb[TN];
      *reinterpret_cast<VT*>(fa) = *reinterpret_cast<const VT*>(&As[buf][kk][ty * V]);
      *reinterpret_cast<VT*>(fa + V) = *reinterpret_cast<const VT*>(&As[buf][kk][BM / 2 + ty * V]);
      *reinterpret_cast<VT*>(fb) = *reinterpret_cast<const VT*>(&Bs[buf][kk][tx * V]);
      *reinterpret_cast<VT*>(fb + V) = *reinterpret_cast<const VT*>(&Bs[buf][kk][BN / 2 + tx * V]);
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] = fma(fa[i], fb[j], acc[i][j]);
    }
    if (t + 1 < tiles) store_tiles(buf ^ 1);
    __syncthreads();
  }

#pragma unroll
  for (int i = 0; i < TM; ++i) {
    const int r = row0 + (i / V) * (BM / 2) + ty * V + i % V;
    if (r >= m) continue;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int cc = col0 + h * (BN / 2) + tx * V;
      T* dst = c + int64_t(r) * ldc + cc;
      if (kVec && cc + V <= n) {
        *reinterpret_cast<VT*>(dst) = *reinterpret_cast<const VT*>(&acc[i][h * V]);
      } else {
#pragma unroll
        for (int j = 0; j < V; ++j)
          if (cc + j < n) dst[j] = acc[i][h * V + j];
      }
    }
  }
}

// 16-byte vector loads and stores need every row and matrix start on a 16-byte boundary.
template <typename T, int V>
bool vector_aligned(int64_t k, int64_t n, const MatrixBatch<T>& m) {
  return k % V == 0 && n % V == 0 && m.ld % V == 0 && m.outer_stride % V == 0 &&
         m.inner_stride % V == 0 && reinterpret_cast<uintptr_t>(m.ptr) % 16 == 0;
}

// Grid: x over column tiles, y over row tiles (at most 65535: taller products are launched in
// bands of rows), z over the batch (at most 65535 per launch).
template <typename T, int BK>
void launch(int64_t batch, int64_t inner, int64_t m, int64_t n, int64_t k, MatrixBatch<const T> a,
            MatrixBatch<const T> b, MatrixBatch<T> c) {
  using L = Tile<T, BK>;
  constexpr int V = L::V;
  constexpr int64_t kMaxGrid = 65535;
  const bool vec = vector_aligned<const T, V>(k, n, a) && vector_aligned<const T, V>(k, n, b) &&
                   vector_aligned<T, V>(k, n, c);
  const dim3 threads(kThreads);
  for (int64_t p0 = 0; p0 < batch; p0 += kMaxGrid) {
    for (int64_t r0 = 0; r0 < m; r0 += kMaxGrid * L::BM) {
      const dim3 grid(static_cast<unsigned>((n + L::BN - 1) / L::BN),
                      static_cast<unsigned>(std::min(kMaxGrid, (m - r0 + L::BM - 1) / L::BM)),
                      static_cast<unsigned>(std::min(batch - p0, kMaxGrid)));
      const int row_base = static_cast<int>(r0);
      if (vec) {
        gemm_kernel<T, BK, true><<<grid, threads, 0, cuda_stream()>>>(m, n, k, a, b, c, p0, inner,
                                                                      row_base);
      } else {
        gemm_kernel<T, BK, false><<<grid, threads, 0, cuda_stream()>>>(m, n, k, a, b, c, p0,
                                                                       inner, row_base);
      }
      check_launch("gemm");
    }
  }
}

}  // namespace

template <typename T>
void gemm_strided(int64_t batch, int64_t inner, int64_t m, int64_t n, int64_t k,
                  MatrixBatch<const T> a, MatrixBatch<const T> b, MatrixBatch<T> c) {
  if (batch == 0 || m == 0 || n == 0) return;
  if (k == 0 && c.ld == n && (batch == 1 || (inner == 1 && c.outer_stride == m * n))) {
    check(cudaMemsetAsync(c.ptr, 0, sizeof(T) * batch * m * n, cuda_stream()), "gemm (k = 0)");
    return;
  }
  if (k == 0) {  // c = 0, matrix by matrix and row by row (c's rows may be ld apart)
    for (int64_t p = 0; p < batch; ++p)
      check(cudaMemset2DAsync(c.ptr + p / inner * c.outer_stride + p % inner * c.inner_stride,
                              sizeof(T) * c.ld, 0, sizeof(T) * n, m, cuda_stream()),
            "gemm (k = 0)");
    return;
  }
  if constexpr (std::is_same_v<T, float>) {
    launch<float, 16>(batch, inner, m, n, k, a, b, c);
  } else {
    launch<double, 8>(batch, inner, m, n, k, a, b, c);
  }
}

template <typename T>
int64_t gemm_tiles(int64_t m, int64_t n) {
  using L = Tile<T, std::is_same_v<T, float> ? 16 : 8>;
  return (m + L::BM - 1) / L::BM * ((n + L::BN - 1) / L::BN);
}

template <typename T>
void gemm_batched(int64_t batch, int64_t m, int64_t n, int64_t k, const T* a, int64_t stride_a,
                  const T* b, int64_t stride_b, T* c, int64_t stride_c) {
  gemm_strided<T>(batch, 1, m, n, k, MatrixBatch<const T>{a, k, stride_a, 0},
                  MatrixBatch<const T>{b, n, stride_b, 0}, MatrixBatch<T>{c, n, stride_c, 0});
}

template void gemm_batched<float>(int64_t, int64_t, int64_t, int64_t, const float*, int64_t,
                                  const float*, int64_t, float*, int64_t);
template void gemm_batched<double>(int64_t, int64_t, int64_t, int64_t, const double*, int64_t,
                                   const double*, int64_t, double*, int64_t);
template void gemm_strided<float>(int64_t, int64_t, int64_t, int64_t, int64_t,
                                  MatrixBatch<const float>, MatrixBatch<const float>,
                                  MatrixBatch<float>);
template void gemm_strided<double>(int64_t, int64_t, int64_t, int64_t, int64_t,
                                   MatrixBatch<const double>, MatrixBatch<const double>,
                                   MatrixBatch<double>);
template int64_t gemm_tiles<float>(int64_t, int64_t);
template int64_t gemm_tiles<double>(int64_t, int64_t);

}  // namespace gradflow::cuda
