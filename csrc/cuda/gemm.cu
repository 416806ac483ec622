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

// V values of one row from src + offset into out: zeros where the row is outside the matrix
// (!row_ok) or past its end (valid = values left in the row). The vector form reads 16 bytes
// at once; launch() picks it only when every row start is 16-byte aligned and rows hold a
// whole number of vectors, so valid > 0 means a whole vector is there.
template <typename T, bool kVec>
__device__ __forceinline__ void load_row(const T* src, int64_t offset, bool row_ok, int valid,
                                         T (&out)[Vec<T>::n]) {
  constexpr int V = Vec<T>::n;
  if constexpr (kVec) {
    typename Vec<T>::type x{};
    if (row_ok && valid > 0) x = *reinterpret_cast<const typename Vec<T>::type*>(src + offset);
    const T* xs = reinterpret_cast<const T*>(&x);
#pragma unroll
    for (int j = 0; j < V; ++j) out[j] = xs[j];
  } else {
#pragma unroll
    for (int j = 0; j < V; ++j) out[j] = (row_ok && j < valid) ? src[offset + j] : T(0);
  }
}

// What one thread block multiplies: its BM x BN tile of C at (row0, col0), and the matrices.
template <typename T>
struct BlockProduct {
  const T* __restrict__ a;
  const T* __restrict__ b;
  T* __restrict__ c;
  int64_t lda, ldb, ldc;
  int m, n, k, row0, col0;
};

// One thread's share of the A and B tiles at k0 (A: BM x BK, B: BK x BN), V values a load.
template <typename T, int BK>
struct Fetched {
  T a[Tile<T, BK>::A_LOADS][Vec<T>::n];
  T b[Tile<T, BK>::B_LOADS][Vec<T>::n];
};

template <typename T, int BK, bool kVec>
__device__ __forceinline__ void fetch_tiles(const BlockProduct<T>& bp, int k0, int tid,
                                            Fetched<T, BK>& f) {
  using L = Tile<T, BK>;
  constexpr int V = L::V;
#pragma unroll
  for (int l = 0; l < L::A_LOADS; ++l) {
    const int v = tid + l * kThreads, r = v / (BK / V), kc = (v % (BK / V)) * V;
    const int gr = bp.row0 + r, gk = k0 + kc;
    load_row<T, kVec>(bp.a, int64_t(gr) * bp.lda + gk, gr < bp.m, bp.k - gk, f.a[l]);
  }
#pragma unroll
  for (int l = 0; l < L::B_LOADS; ++l) {
    const int v = tid + l * kThreads, kr = v / (L::BN / V), cc = (v % (L::BN / V)) * V;
    const int gk = k0 + kr, gc = bp.col0 + cc;
    load_row<T, kVec>(bp.b, int64_t(gk) * bp.ldb + gc, gk < bp.k, bp.n - gc, f.b[l]);
  }
}

// Registers -> shared memory: A transposed (As[k][m]), B as it is (Bs[k][n]).
template <typename T, int BK>
__device__ __forceinline__ void stage_tiles(const Fetched<T, BK>& f, int tid,
                                            T (&As)[BK][Tile<T, BK>::BM + Vec<T>::n],
                                            T (&Bs)[BK][Tile<T, BK>::BN]) {
  using L = Tile<T, BK>;
  using VT = typename Vec<T>::type;
  constexpr int V = L::V;
#pragma unroll
  for (int l = 0; l < L::A_LOADS; ++l) {
    const int v = tid + l * kThreads, r = v / (BK / V), kc = (v % (BK / V)) * V;
#pragma unroll
    for (int j = 0; j < V; ++j) As[kc + j][r] = f.a[l][j];
  }
#pragma unroll
  for (int l = 0; l < L::B_LOADS; ++l) {
    const int v = tid + l * kThreads, kr = v / (L::BN / V), cc = (v % (L::BN / V)) * V;
    *reinterpret_cast<VT*>(&Bs[kr][cc]) = *reinterpret_cast<const VT*>(f.b[l]);
  }
}

// acc += the thread's TM x TN patch of As^T @ Bs: per k, TM values of A's column and TN of B's
// row (two 16-byte loads each, BM/2 and BN/2 apart) and TM * TN FMAs.
template <typename T, int BK>
__device__ __forceinline__ void multiply_tiles(const T (&As)[BK][Tile<T, BK>::BM + Vec<T>::n],
                                               const T (&Bs)[BK][Tile<T, BK>::BN], int tx, int ty,
                                               T (&acc)[Tile<T, BK>::TM][Tile<T, BK>::TN]) {
  using L = Tile<T, BK>;
  using VT = typename Vec<T>::type;
  constexpr int V = L::V;
#pragma unroll
  for (int kk = 0; kk < BK; ++kk) {
    T fa[L::TM], fb[L::TN];
    *reinterpret_cast<VT*>(fa) = *reinterpret_cast<const VT*>(&As[kk][ty * V]);
    *reinterpret_cast<VT*>(fa + V) = *reinterpret_cast<const VT*>(&As[kk][L::BM / 2 + ty * V]);
    *reinterpret_cast<VT*>(fb) = *reinterpret_cast<const VT*>(&Bs[kk][tx * V]);
    *reinterpret_cast<VT*>(fb + V) = *reinterpret_cast<const VT*>(&Bs[kk][L::BN / 2 + tx * V]);
#pragma unroll
    for (int i = 0; i < L::TM; ++i)
#pragma unroll
      for (int j = 0; j < L::TN; ++j) acc[i][j] = fma(fa[i], fb[j], acc[i][j]);
  }
}

// The thread's patch into C: row i of the patch is row (i / V) * BM/2 + ty * V + i % V of the
// tile, its two halves columns tx * V and BN/2 + tx * V; cut at the matrix's edges.
template <typename T, int BK, bool kVec>
__device__ __forceinline__ void write_patch(const BlockProduct<T>& bp, int tx, int ty,
                                            const T (&acc)[Tile<T, BK>::TM][Tile<T, BK>::TN]) {
  using L = Tile<T, BK>;
  using VT = typename Vec<T>::type;
  constexpr int V = L::V;
#pragma unroll
  for (int i = 0; i < L::TM; ++i) {
    const int r = bp.row0 + (i / V) * (L::BM / 2) + ty * V + i % V;
    if (r >= bp.m) continue;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int cc = bp.col0 + h * (L::BN / 2) + tx * V;
      T* dst = bp.c + int64_t(r) * bp.ldc + cc;
      if (kVec && cc + V <= bp.n) {
        *reinterpret_cast<VT*>(dst) = *reinterpret_cast<const VT*>(&acc[i][h * V]);
      } else {
#pragma unroll
        for (int j = 0; j < V; ++j)
          if (cc + j < bp.n) dst[j] = acc[i][h * V + j];
      }
    }
  }
}

// Block (x, y, z) computes tile (row_base + y * BM, x * BN) of product p0 + z of the batch,
// fetching the next k-tile into registers while the current one is multiplied from shared
// memory (two buffers, one barrier per k-tile).
template <typename T, int BK, bool kVec>
__global__ void __launch_bounds__(kThreads, 2)
    gemm_kernel(int m, int n, int k, MatrixBatch<const T> ma, MatrixBatch<const T> mb,
                MatrixBatch<T> mc, int64_t p0, int64_t inner, int row_base) {
  using L = Tile<T, BK>;
  __shared__ __align__(16) T As[2][BK][L::BM + L::V];
  __shared__ __align__(16) T Bs[2][BK][L::BN];

  const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
  const int64_t p = p0 + blockIdx.z;
  const BlockProduct<T> bp{batch_matrix(ma, p, inner), batch_matrix(mb, p, inner),
                           batch_matrix(mc, p, inner), ma.ld, mb.ld, mc.ld, m, n, k,
                           row_base + static_cast<int>(blockIdx.y) * L::BM,
                           static_cast<int>(blockIdx.x) * L::BN};
  Fetched<T, BK> next;
  T acc[L::TM][L::TN];
#pragma unroll
  for (int i = 0; i < L::TM; ++i)
#pragma unroll
    for (int j = 0; j < L::TN; ++j) acc[i][j] = T(0);

  const int tiles = (k + BK - 1) / BK;
  fetch_tiles<T, BK, kVec>(bp, 0, tid, next);
  stage_tiles<T, BK>(next, tid, As[0], Bs[0]);
  __syncthreads();
  for (int t = 0; t < tiles; ++t) {
    const int buf = t & 1;
    if (t + 1 < tiles) fetch_tiles<T, BK, kVec>(bp, (t + 1) * BK, tid, next);
    multiply_tiles<T, BK>(As[buf], Bs[buf], tx, ty, acc);
    if (t + 1 < tiles) stage_tiles<T, BK>(next, tid, As[buf ^ 1], Bs[buf ^ 1]);
    __syncthreads();
  }
  write_patch<T, BK, kVec>(bp, tx, ty, acc);
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
