// General matrix multiply, BLIS style (see gemm.h for the contract):
//
//   C[m, n] = alpha * op(A)[m, k] @ op(B)[k, n] + beta * C,   all matrices row-major with
//   row strides lda, ldb, ldc; op(X)[i, j] = X[i*ld + j] or, transposed, X[j*ld + i].
//
// Five loops around a register-tiled micro-kernel:
//
//   for jc in n step NC:                  B panel  op(B)[pc:pc+KC, jc:jc+NC] -> packed, in L3
//     for pc in k step KC:                  (packed once per (jc, pc), shared by all threads)
//       for ic in m step MC:              A block  op(A)[ic:ic+MC, pc:pc+KC] -> packed, in L2
//         for jr in NC step NR:           B micro-panel KC x NR stays in L1 ...
//           for ir in MC step MR:         ... while MR x KC A micro-panels stream from L2
//             C[ir:ir+MR, jr:jr+NR] += alpha * Apanel @ Bpanel     (micro-kernel)
//
// Packed layouts: an A block is ceil(MC/MR) micro-panels, each kc columns of MR consecutive
// values; a B panel is ceil(NC/NR) micro-panels, each kc rows of NR consecutive values.
// Ragged edges are zero-padded in the packed buffers, so the micro-kernel always runs a full
// MR x NR tile; edge tiles go through a small local tile and only the valid part touches C.
//
// Threads: a tm x tn grid (tm * tn = threads) splits C into independent sub-GEMMs, one per
// thread, each running the five loops with its own packing space: no shared buffers and no
// barriers, so a descheduled thread delays only the end of the call (see gemm_blocked).
// Inside an enclosing OpenMP parallel region the GEMM runs on the calling thread alone.
// Packing buffers belong to the calling thread and only grow.
#include "cpu/gemm.h"

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <new>

#include "cpu/runtime.h"
#ifdef GRADFLOW_HAVE_AVX2_KERNELS
#include "cpu/gemm_avx2.h"
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

namespace gradflow::cpu {
namespace {

// C[0:mr, 0:nr] = alpha * (packed A panel @ packed B panel)[0:mr, 0:nr] + beta * C.
template <typename T>
using MicroKernel = void (*)(int64_t kc, const T* a, const T* b, T* c, int64_t ldc, T alpha,
                             T beta, int64_t mr, int64_t nr);
// One full panel gathered from r rows of x: dst[p*r + s] = x[s*ld + p] (r = MR or NR).
template <typename T>
using PanelPacker = void (*)(const T* x, int64_t ld, int64_t kc, int r, T* dst);

// The instruction-set-specific parts: everything else is shared.
template <typename T>
struct Kernels {
  MicroKernel<T> kernel;
  PanelPacker<T> pack_panel;
};

// Cache blocking for Zen 3 (32 KiB L1d, 512 KiB L2 per core, 32 MiB shared L3):
//   KC: one KC x NR B micro-panel (KC * 64 bytes for both 6x16 float and 6x8 double tiles)
//       takes half of L1, leaving the other half to the A micro-panel and the C tile.
//   MC: the MC x KC A block takes about half of L2 (float 144 KiB, double 144 KiB), so it
//       stays resident while the B micro-panels are cycled through L1.
//   NC: the KC x NC B panel (4 MiB) fits comfortably in L3 next to the other core's data.
struct Blocking {
  int64_t mc, kc, nc;
};

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

// Width of the B panels when all of m fits one A block: 128 KiB, a quarter of L2.
constexpr int64_t kNarrowPanelBytes = 128 * 1024;

// Below this many flops per thread, waking another thread costs more than it saves.
constexpr double kMinFlopsPerThread = 1.5e6;

// One 4 KiB-aligned allocation per calling thread that only ever grows.
class PackBuffer {
 public:
  ~PackBuffer() { std::free(ptr_); }
  void* get(size_t bytes) {
    if (bytes > size_) {
      const size_t want = static_cast<size_t>(round_up(static_cast<int64_t>(bytes), 4096));
      void* p = std::aligned_alloc(4096, want);
      if (p == nullptr) throw gradflow::OutOfMemory(static_cast<int64_t>(want));
      std::free(ptr_);
      ptr_ = p;
      size_ = want;
    }
    return ptr_;
  }

 private:
  void* ptr_ = nullptr;
  size_t size_ = 0;
};

thread_local PackBuffer t_pack;

// Portable micro-kernel: plain loops over an MR x NR accumulator tile that the compiler keeps
// in (SSE2) registers and vectorises along NR.
template <typename T, int MR, int NR>
void portable_kernel(int64_t kc, const T* a, const T* b, T* c, int64_t ldc, T alpha, T beta,
                     int64_t mr, int64_t nr) {
  T acc[MR][NR] = {};
  for (int64_t p = 0; p < kc; ++p, a += MR, b += NR) {
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 16
      for (int j = 0; j < NR; ++j) acc[i][j] += a[i] * b[j];
  }
  for (int64_t i = 0; i < mr; ++i)
    for (int64_t j = 0; j < nr; ++j)
      c[i * ldc + j] =
          beta == T(0) ? alpha * acc[i][j] : alpha * acc[i][j] + beta * c[i * ldc + j];
}

// Packing. A panel of width R (R = MR for A, NR for B) stores, for each step p < kc, the R
// values of one column of op(A) / one row of op(B) next to each other; the ragged last panel
// is zero-padded. Depending on the transpose flag, those R values are either contiguous in
// memory (op(A) = A^T, op(B) = B) or R rows apart (op(A) = A, op(B) = B^T).

// Panels whose R values at step p are x[p*ld + j .. + R] for j = 0, R, 2R, ... < width.
// Eight rows at a time across all panels: the source is read as eight sequential streams
// (a column walk would cross a page per row once ld is large, where hardware prefetchers
// stop), and each panel receives eight consecutive lines (a row-by-row walk would write one
// line per panel, all panels kc*R apart and so fighting over the same L1 set).
template <typename T, int R>
void pack_contiguous(const T* x, int64_t ld, int64_t width, int64_t kc, T* dst) {
  constexpr int64_t kRows = 8;
  const int64_t full = width / R, rest = width - full * R;
  for (int64_t p0 = 0; p0 < kc; p0 += kRows) {
    const int64_t p1 = std::min(kc, p0 + kRows);
    for (int64_t jp = 0; jp < full; ++jp) {
      T* d = dst + jp * R * kc;
      for (int64_t p = p0; p < p1; ++p) std::memcpy(d + p * R, x + p * ld + jp * R, sizeof(T) * R);
    }
    if (rest > 0) {
      T* d = dst + full * R * kc;
      for (int64_t p = p0; p < p1; ++p) {
        std::memcpy(d + p * R, x + p * ld + full * R, sizeof(T) * rest);
        std::fill(d + p * R + rest, d + p * R + R, T(0));
      }
    }
  }
}

template <typename T>
void portable_pack_panel(const T* __restrict x, int64_t ld, int64_t kc, int r,
                         T* __restrict dst) {
  for (int64_t p = 0; p < kc; ++p)
    for (int s = 0; s < r; ++s) dst[p * r + s] = x[s * ld + p];
}

// Panels whose R values at step p are x[(j + s)*ld + p] for s < R, j = 0, R, ... < width.
template <typename T, int R>
void pack_strided(PanelPacker<T> pack_panel, const T* x, int64_t ld, int64_t width, int64_t kc,
                  T* dst) {
  for (int64_t j = 0; j < width; j += R, dst += R * kc) {
    const int64_t r = std::min<int64_t>(R, width - j);
    if (r == R) {
      pack_panel(x + j * ld, ld, kc, R, dst);
      continue;
    }
    for (int64_t p = 0; p < kc; ++p) {
      for (int64_t s = 0; s < r; ++s) dst[p * R + s] = x[(j + s) * ld + p];
      for (int64_t s = r; s < R; ++s) dst[p * R + s] = T(0);
    }
  }
}

// op(X)[0:width, 0:kc] for A (x at its first element), or op(X)[0:kc, 0:width] for B.
template <typename T, int R>
void pack(const Kernels<T>& kit, bool contiguous, const T* x, int64_t ld, int64_t width,
          int64_t kc, T* dst) {
  if (contiguous)
    pack_contiguous<T, R>(x, ld, width, kc, dst);
  else
    pack_strided<T, R>(kit.pack_panel, x, ld, width, kc, dst);
}

// C[0:mc, 0:nc] = alpha * packed A block @ packed B panel + beta * C.
template <typename T, int MR, int NR>
void macro_kernel(const Kernels<T>& kit, int64_t mc, int64_t nc, int64_t kc, T alpha,
                  const T* ap, const T* bp, T beta, T* c, int64_t ldc) {
  for (int64_t j = 0; j < nc; j += NR, bp += NR * kc) {
    const int64_t nr = std::min<int64_t>(NR, nc - j);
    for (int64_t i = 0; i < mc; i += MR)
      kit.kernel(kc, ap + i * kc, bp, c + i * ldc + j, ldc, alpha, beta,
             std::min<int64_t>(MR, mc - i), nr);
  }
}

int threads_for(double flops) {
#ifdef _OPENMP
  if (omp_in_parallel()) return 1;
  const int most = omp_get_max_threads();
  const int useful = static_cast<int>(flops / kMinFlopsPerThread);
  return std::max(1, std::min(most, useful));
#else
  (void)flops;
  return 1;
#endif
}

// The block sizes of one sub-GEMM of at most m x n (depth k). Its packing buffer is sized
// from these same numbers (buffer_elems), so packing can never run past the buffer.
struct Plan {
  int64_t mc, kc, nc;   // steps: near-equal blocks of at most MC, KC and the panel width
  bool one_a_block;     // m <= MC: pack A once per k block, stream B through narrow panels
  int64_t a_elems;      // one packed A block, rounded to cache lines so the B panel is aligned
  int64_t b_elems;      // one packed B panel
  int64_t buffer_elems() const { return a_elems + b_elems; }
};

template <typename T, int MR, int NR>
Plan plan_blocks(Blocking blk, int64_t m, int64_t n, int64_t k) {
  Plan p;
  p.kc = ceil_div(k, ceil_div(k, blk.kc));
  p.mc = round_up(ceil_div(m, ceil_div(m, blk.mc)), MR);
  p.one_a_block = m <= blk.mc;
  // With one A block (e.g. the output channels of a convolution), B panels that stay in L2
  // (a wide panel would make the trip to L3 and back for only m rows of work).
  const int64_t nc =
      p.one_a_block ? std::max<int64_t>(NR, kNarrowPanelBytes / (p.kc * sizeof(T)) / NR * NR)
                    : round_up(ceil_div(n, ceil_div(n, blk.nc)), NR);
  p.nc = std::min(nc, round_up(n, NR));
  p.a_elems = round_up(p.mc * p.kc, 64 / sizeof(T));
  p.b_elems = p.kc * p.nc;
  return p;
}

// The serial five-loop GEMM on one sub-problem of at most the planned size, with packing
// space `buf` of plan.buffer_elems(): one A block followed by one B panel.
template <typename T, int MR, int NR>
void gemm_serial(const Kernels<T>& kit, const Plan& plan, bool trans_a, bool trans_b, int64_t m,
                 int64_t n, int64_t k, T alpha, const T* a, int64_t lda, const T* b, int64_t ldb,
                 T beta, T* c, int64_t ldc, T* buf) {
  T* ap = buf;
  T* bp = buf + plan.a_elems;
  if (plan.one_a_block) {
    for (int64_t pc = 0; pc < k; pc += plan.kc) {
      const int64_t kc = std::min(plan.kc, k - pc);
      const T beta_step = pc == 0 ? beta : T(1);
      pack<T, MR>(kit, trans_a, trans_a ? a + pc * lda : a + pc, lda, m, kc, ap);
      for (int64_t jc = 0; jc < n; jc += plan.nc) {
        const int64_t nc = std::min(plan.nc, n - jc);
        pack<T, NR>(kit, !trans_b, trans_b ? b + jc * ldb + pc : b + pc * ldb + jc, ldb, nc, kc,
                    bp);
        macro_kernel<T, MR, NR>(kit, m, nc, kc, alpha, ap, bp, beta_step, c + jc, ldc);
      }
    }
    return;
  }
  for (int64_t jc = 0; jc < n; jc += plan.nc) {
    const int64_t nc = std::min(plan.nc, n - jc);
    for (int64_t pc = 0; pc < k; pc += plan.kc) {
      const int64_t kc = std::min(plan.kc, k - pc);
      pack<T, NR>(kit, !trans_b, trans_b ? b + jc * ldb + pc : b + pc * ldb + jc, ldb, nc, kc,
                  bp);
      const T beta_step = pc == 0 ? beta : T(1);
      for (int64_t ic = 0; ic < m; ic += plan.mc) {
        const int64_t mc = std::min(plan.mc, m - ic);
        pack<T, MR>(kit, trans_a, trans_a ? a + pc * lda + ic : a + ic * lda + pc, lda, mc, kc,
                    ap);
        macro_kernel<T, MR, NR>(kit, mc, nc, kc, alpha, ap, bp, beta_step, c + ic * ldc + jc,
                                ldc);
      }
    }
  }
}

// Splits C into a tm x tn grid of independent sub-GEMMs, one per thread: no shared buffers and
// no barriers (a descheduled thread delays only the end of the call), at the price of packing
// A tn times and B tm times. The grid minimises per-thread micro-tile work plus packing.
template <typename T, int MR, int NR>
void gemm_blocked(const Kernels<T>& kit, Blocking blk, bool trans_a, bool trans_b, int64_t m,
                  int64_t n, int64_t k, T alpha, const T* a, int64_t lda, const T* b,
                  int64_t ldb, T beta, T* c, int64_t ldc) {
  const int nt = threads_for(2.0 * m * n * k);
  const int64_t mtiles = ceil_div(m, MR), ntiles = ceil_div(n, NR);
  int tm = 1, tn = 1;
  double best = -1.0;
  for (int cand = 1; cand <= nt; ++cand) {
    if (nt % cand != 0) continue;
    const double rows = ceil_div(mtiles, cand) * MR, cols = ceil_div(ntiles, nt / cand) * NR;
    // A packed element costs about as much as 8 multiply-adds in the micro-kernel.
    const double cost = rows * cols + 8.0 * (rows + cols);
    if (best < 0 || cost < best) best = cost, tm = cand, tn = nt / cand;
  }

  // Every thread's sub-problem is at most rows_max x cols_max, so one plan bounds them all.
  const int64_t rows_max = std::min(m, ceil_div(mtiles, tm) * MR);
  const int64_t cols_max = std::min(n, ceil_div(ntiles, tn) * NR);
  const Plan plan = plan_blocks<T, MR, NR>(blk, rows_max, cols_max, k);
  const int64_t per_thread = round_up(plan.buffer_elems(), 4096 / sizeof(T));
  T* base = static_cast<T*>(t_pack.get(nt * per_thread * sizeof(T)));

  auto run = [&](int tid) {
    const int im = tid / tn, in = tid % tn;
    const int64_t r0 = std::min(m, im * mtiles / tm * MR);
    const int64_t r1 = std::min(m, (im + 1) * mtiles / tm * MR);
    const int64_t c0 = std::min(n, in * ntiles / tn * NR);
    const int64_t c1 = std::min(n, (in + 1) * ntiles / tn * NR);
    if (r0 >= r1 || c0 >= c1) return;
    gemm_serial<T, MR, NR>(kit, plan, trans_a, trans_b, r1 - r0, c1 - c0, k, alpha,
                           trans_a ? a + r0 : a + r0 * lda, lda,
                           trans_b ? b + c0 * ldb : b + c0, ldb, beta, c + r0 * ldc + c0, ldc,
                           base + tid * per_thread);
  };
  parallel_threads(nt, run);
}

template <typename T>
void scale_c(int64_t m, int64_t n, T beta, T* c, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = beta == T(0) ? T(0) : beta * c[i * ldc + j];
}

}  // namespace

template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
          int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0 || alpha == T(0)) {
    scale_c(m, n, beta, c, ldc);
    return;
  }
#ifdef GRADFLOW_HAVE_AVX2_KERNELS
  if (use_avx2()) {
    constexpr int MR = avx2::kGemmMR;
    constexpr int NR = sizeof(T) == 4 ? avx2::kGemmNRFloat : avx2::kGemmNRDouble;
    const Blocking blk = sizeof(T) == 4 ? Blocking{144, 256, 4080} : Blocking{72, 256, 4080};
    const Kernels<T> kit{&avx2::gemm_kernel, &avx2::pack_strided_panel};
    gemm_blocked<T, MR, NR>(kit, blk, trans_a, trans_b, m, n, k, alpha, a, lda,
                            b, ldb, beta, c, ldc);
    return;
  }
#endif
  // Portable tiles: 4 x 8 floats or 4 x 4 doubles = 8 SSE2 accumulators.
  constexpr int MR = 4;
  constexpr int NR = sizeof(T) == 4 ? 8 : 4;
  const Kernels<T> kit{&portable_kernel<T, MR, NR>, &portable_pack_panel<T>};
  gemm_blocked<T, MR, NR>(kit, Blocking{128, 256, 4096}, trans_a,
                          trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

template <typename T>
void gemm_batched(int64_t batch, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
                  T alpha, const T* a, int64_t lda, int64_t stride_a, const T* b, int64_t ldb,
                  int64_t stride_b, T beta, T* c, int64_t ldc, int64_t stride_c) {
  auto one = [&](int64_t i) {
    gemm(trans_a, trans_b, m, n, k, alpha, a + i * stride_a, lda, b + i * stride_b, ldb, beta,
         c + i * stride_c, ldc);
  };
  // Many products: one thread each (every gemm then sees omp_in_parallel() and stays serial).
  // Few large products: one after the other, each using all threads.
  const int nt = threads_for(2.0 * batch * m * n * k);
  const bool per_product = nt > 1 && batch >= nt &&
                           (batch % nt == 0 || batch >= 4 * nt ||
                            2.0 * m * n * k < nt * kMinFlopsPerThread);
  if (!per_product) {
    for (int64_t i = 0; i < batch; ++i) one(i);
    return;
  }
  // Contiguous runs of products per thread, as a static schedule would give.
  parallel_threads(nt, [&](int tid) {
    for (int64_t i = batch * tid / nt; i < batch * (tid + 1) / nt; ++i) one(i);
  });
}

template void gemm<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t,
                          const float*, int64_t, float, float*, int64_t);
template void gemm<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t,
                           const double*, int64_t, double, double*, int64_t);
template void gemm_batched<float>(int64_t, bool, bool, int64_t, int64_t, int64_t, float,
                                  const float*, int64_t, int64_t, const float*, int64_t, int64_t,
                                  float, float*, int64_t, int64_t);
template void gemm_batched<double>(int64_t, bool, bool, int64_t, int64_t, int64_t, double,
                                   const double*, int64_t, int64_t, const double*, int64_t,
                                   int64_t, double, double*, int64_t, int64_t);

}  // namespace gradflow::cpu
