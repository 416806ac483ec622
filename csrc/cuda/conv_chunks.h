// The CUDA convolution as a sequence of launches: im2col, GEMM and block moves per chunk of the
// batch (see conv.cu for the math and conv_index.h for the layouts and per-thread bodies).
// Written once over an executor, so the same sequence runs on the GPU (conv.cu: kernels on the
// module's stream) and on the host (tests/native/conv_test.cpp: loops over every (block,
// thread) of each launch and a reference GEMM), where it is checked against the CPU kernels.
//
// An executor `ex` for element type T provides
//   T* ex.workspace(n)          n elements, alive until ex is destroyed (null for n = 0)
//   ex.run(n, body)             body(e) for every e in [0, n), launches ordered
//   ex.gemm(batch, inner, m, n, k, a, b, c)   c[p] = a[p] @ b[p] (MatrixBatch operands)
//   ex.zero(p, n)               p[0, n) = 0
//   ex.gemm_tiles(m, n)         thread blocks of one m x n product
//   ex.busy_blocks()            thread blocks that keep the whole device busy
#pragma once
#include <cstdint>

#include "cuda/conv_index.h"
#include "cuda/gemm_batch.h"

namespace gradflow::cuda::conv {

// Weight-gradient split-K slices are at least this many chunk columns deep.
constexpr int64_t kMinSliceColumns = 256;
// Chunk columns never exceed this (the GEMM's n is an int).
constexpr int64_t kMaxChunkColumns = int64_t(1) << 30;

// One call's sizes: the batch, groups, output channels, the per-group geometry and the cap on
// the column workspace in bytes.
struct Conv {
  int64_t N, groups, Cout;
  ConvGeom g;
  int64_t workspace_bytes;

  int64_t Cin() const { return groups * g.C; }
  int64_t Cog() const { return Cout / groups; }
  int64_t K() const { return g.C * g.kh * g.kw; }      // GEMM depth per group
  int64_t rows() const { return Cin() * g.kh * g.kw; }  // col rows, all groups
  int64_t L() const { return g.OH * g.OW; }
  int64_t HW() const { return g.H * g.W; }
  // 1x1, stride 1, no padding, output the size of the input: x[n, grp] is its own col matrix.
  bool pointwise() const {
    return g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.ph == 0 && g.pw == 0 &&
           g.OH == g.H && g.OW == g.W;
  }
  // Columns of col (rows()) plus Y/DY (Cout) per chunk column, under the cap.
  Plan plan(int64_t elem) const {
    const int64_t cap = workspace_bytes / ((rows() + Cout) * elem);
    return make_plan(N, L(), min64(cap, kMaxChunkColumns));
  }
};

// y = conv(x, w) + bias (bias may be null).
template <typename T, class Exec>
void forward(Exec& ex, const Conv& cv, const T* x, const T* w, const T* bias, T* y) {
  const int64_t K = cv.K(), Cog = cv.Cog(), L = cv.L(), Cin = cv.Cin(), Cout = cv.Cout;
  if (cv.pointwise()) {  // y[n, grp] (Cog, L) = w[grp] (Cog, K) @ x[n, grp] (K, L)
    ex.gemm(cv.N * cv.groups, cv.groups, Cog, L, K, MatrixBatch<const T>{w, K, 0, Cog * K},
            MatrixBatch<const T>{x, L, Cin * L, K * L}, MatrixBatch<T>{y, L, Cout * L, Cog * L});
    if (bias != nullptr) ex.run(cv.N * Cout * L, AddBias<T>{Cout, L, bias, y});
    return;
  }
  const Plan p = cv.plan(sizeof(T));
  T* col = ex.workspace(p.chunks ? cv.rows() * p.nb * p.lc : 0);
  T* Y = ex.workspace(p.chunks ? Cout * p.nb * p.lc : 0);
  for (int64_t c = 0; c < p.chunks; ++c) {
    const Chunk k = chunk_at(p, cv.N, L, c);
    const int64_t ld = k.nb * k.lc;
    ex.run(Cin * ld, Im2col<T>{cv.g, Cin, k, x + k.n0 * Cin * cv.HW(), col});
    // Y[grp] (Cog, ld) = w[grp] (Cog, K) @ col[grp] (K, ld)
    ex.gemm(cv.groups, 1, Cog, ld, K, MatrixBatch<const T>{w, K, Cog * K, 0},
            MatrixBatch<const T>{col, ld, K * ld, 0}, MatrixBatch<T>{Y, ld, Cog * ld, 0});
    ex.run(Cout * ld, ScatterBlocks<T>{Cout, L, k, Y, bias, y});
  }
}

// dx = conv's input gradient for output gradient dy (also conv_transpose2d's forward).
template <typename T, class Exec>
void backward_input(Exec& ex, const Conv& cv, const T* dy, const T* w, T* dx) {
  const int64_t K = cv.K(), Cog = cv.Cog(), L = cv.L(), Cin = cv.Cin(), Cout = cv.Cout;
  if (cv.N == 0) return;
  T* wT = ex.workspace(Cout * K);
  ex.run(Cout * K, TransposeWeight<T>{K, Cog, w, wT});
  if (cv.pointwise()) {  // dx[n, grp] (K, L) = wT[grp] (K, Cog) @ dy[n, grp] (Cog, L)
    ex.gemm(cv.N * cv.groups, cv.groups, K, L, Cog, MatrixBatch<const T>{wT, Cog, 0, K * Cog},
            MatrixBatch<const T>{dy, L, Cout * L, Cog * L}, MatrixBatch<T>{dx, L, Cin * L, K * L});
    return;
  }
  const Plan p = cv.plan(sizeof(T));
  T* col = ex.workspace(cv.rows() * p.nb * p.lc);
  T* DY = ex.workspace(Cout * p.nb * p.lc);
  for (int64_t c = 0; c < p.chunks; ++c) {
    const Chunk k = chunk_at(p, cv.N, L, c);
    const int64_t ld = k.nb * k.lc;
    ex.run(Cout * ld, GatherBlocks<T>{Cout, L, k, dy, DY});
    // col[grp] (K, ld) = wT[grp] (K, Cog) @ DY[grp] (Cog, ld)
    ex.gemm(cv.groups, 1, K, ld, Cog, MatrixBatch<const T>{wT, Cog, K * Cog, 0},
            MatrixBatch<const T>{DY, ld, Cog * ld, 0}, MatrixBatch<T>{col, ld, K * ld, 0});
    ex.run(k.nb * Cin * cv.HW(), Col2im<T>{cv.g, Cin, k, col, dx + k.n0 * Cin * cv.HW()});
  }
}

// Split-K slices of the weight gradient's products (K x Cog, depth = chunk columns): enough
// thread blocks to keep the device busy, each slice kMinSliceColumns deep or more, and the
// partial products (slices x Cout x K) under the workspace cap.
template <class Exec>
int64_t weight_grad_slices(const Exec& ex, const Conv& cv, int64_t columns, int64_t elem) {
  const int64_t blocks = max64(1, ex.gemm_tiles(cv.K(), cv.Cog()) * cv.groups);
  const int64_t want = ceil_div(ex.busy_blocks(), blocks);
  const int64_t deep = max64(1, columns / kMinSliceColumns);
  const int64_t room = max64(1, cv.workspace_bytes / (cv.Cout * cv.K() * elem));
  return max64(1, min64(want, min64(deep, room)));
}

// dw = conv's weight gradient for input x and output gradient dy.
template <typename T, class Exec>
void backward_weight(Exec& ex, const Conv& cv, const T* x, const T* dy, T* dw) {
  const int64_t K = cv.K(), Cog = cv.Cog(), L = cv.L(), Cin = cv.Cin(), Cout = cv.Cout;
  const Plan p = cv.plan(sizeof(T));
  if (p.chunks == 0) {
    ex.zero(dw, Cout * K);
    return;
  }
  const int64_t slices = weight_grad_slices(ex, cv, p.nb * p.lc, sizeof(T));
  T* col = ex.workspace(cv.rows() * p.nb * p.lc);
  T* DYT = ex.workspace(Cout * p.nb * p.lc);
  T* part = ex.workspace(slices * Cout * K);  // (groups, slices, K, Cog)
  const MatrixBatch<T> out{part, Cog, slices * K * Cog, K * Cog};
  for (int64_t c = 0; c < p.chunks; ++c) {
    const Chunk k = chunk_at(p, cv.N, L, c);
    const int64_t ld = k.nb * k.lc;
    ex.run(Cin * ld, Im2col<T>{cv.g, Cin, k, x + k.n0 * Cin * cv.HW(), col});
    ex.run(Cout * ld, GatherBlocksT<T>{Cout, L, Cog, k, dy, DYT});
    // part[grp, s] (K, Cog) = col[grp][:, s*ks : (s+1)*ks] @ DYT[grp][s*ks : (s+1)*ks, :]
    // for the `full` slices of depth ks, then one for the remaining `rest` columns. A depth
    // that is a multiple of 4 keeps the slices 16-byte aligned (the GEMM's vector loads).
    const int64_t ks = min64(ld, ceil_div(ceil_div(ld, slices), 4) * 4);
    const int64_t full = ld / ks, rest = ld - full * ks;
    ex.gemm(cv.groups * full, full, K, Cog, ks, MatrixBatch<const T>{col, ld, K * ld, ks},
            MatrixBatch<const T>{DYT, Cog, ld * Cog, ks * Cog}, out);
    if (rest > 0)
      ex.gemm(cv.groups, 1, K, Cog, rest, MatrixBatch<const T>{col + full * ks, ld, K * ld, 0},
              MatrixBatch<const T>{DYT + full * ks * Cog, Cog, ld * Cog, 0},
              MatrixBatch<T>{part + full * K * Cog, Cog, slices * K * Cog, 0});
    ex.run(Cout * K, ReduceWeightGrad<T>{K, Cog, full + (rest > 0), slices, c > 0, part, dw});
  }
}

}  // namespace gradflow::cuda::conv
