// General matrix multiply, BLIS style (see gemm.h for the contract):
//
//   C[m, n] = alpha * op(A)[m, k] @ op(B)[k, n] + beta * C,   all matrices row-major with
//   row strides lda, ldb, ldc; op(X)[i, j] = X[i*ld + j] or, transposed, X[j*ld + i].
//
// Five loops around a register-tiled micro-kernel:
//
//   for jc in n step NC:                  B panel  op(B)[pc:pc+KC, jc:jc+NC] -> packed, in L3
//     for pc in k step KC:
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
// Threads, as OpenBLAS splits them: the macro-loop is divided over the dimension with more
// blocks (by the cost model in plan_gemm), and the other operand's packed block is shared.
//   split m: every thread packs a share of the micro-panels of one B panel, a barrier, then
//            each thread runs its own rows (its own A blocks) against the whole shared panel;
//   split n: the mirror image for few rows (a convolution's output channels): one shared A
//            block per (pc, ic), and each thread streams its own columns through narrow B
//            panels that stay in its L2.
// A second barrier keeps the shared block until every thread is done with it. One thread
// runs the same loops; inside an enclosing OpenMP region the GEMM runs on the calling thread
// alone. The packing buffer belongs to the calling thread, only grows, and is sized by the
// plan that fixes the blocking (plan_gemm): nothing allocates inside the parallel region.
//
// Tiny products and small matrix-vector products (use_small) skip all of this: gemm_small
// reads the operands in place, with no packing and no threads.
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
#ifdef GRADFLOW_HAVE_AVX512_KERNELS
#include "cpu/gemm_avx512.h"
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
//   NC: the KC x NC B panel (4 MiB), shared by the threads, fits comfortably in L3.
// The AVX-512 tiles (12 x 32 floats, 12 x 16 doubles) were measured on Zen 5 (48 KiB L1d,
// 1 MiB L2): KC = 1024, a 128 KiB B micro-panel streaming from L2 rather than staying in L1,
// which halves the passes over C (one thread, n = 2048: 237 GFLOP/s against 215 at KC = 384
// and 162 at 192; n = 256 to 1024 and the convolutions' GEMMs within 1 %), a 480 KiB A block
// (MC = 120 floats, 60 doubles) in L2, and an 8 MiB B panel (NC = 2048 floats, 1024 doubles:
// doubles at NC = 4096 ran 12 % slower).
struct Blocking {
  int64_t mc, kc, nc;
};

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

// Width of the B panels when n is split (each thread's own panels): 128 KiB, a quarter of L2.
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

// One call's arguments (see gemm.h): op(A)[i, p] is at a_at(i, p), op(B)[p, j] at b_at(p, j).
template <typename T>
struct Operands {
  bool trans_a, trans_b;
  int64_t m, n, k;
  T alpha;
  const T* a;
  int64_t lda;
  const T* b;
  int64_t ldb;
  T beta;
  T* c;
  int64_t ldc;

  const T* a_at(int64_t i, int64_t p) const { return trans_a ? a + p * lda + i : a + i * lda + p; }
  const T* b_at(int64_t p, int64_t j) const { return trans_b ? b + j * ldb + p : b + p * ldb + j; }
};

// op(A)[i0:i0+rows, pc:pc+kc] as MR-row micro-panels at dst.
template <typename T, int MR>
void pack_a(const Kernels<T>& kit, const Operands<T>& op, int64_t i0, int64_t rows, int64_t pc,
            int64_t kc, T* dst) {
  pack<T, MR>(kit, op.trans_a, op.a_at(i0, pc), op.lda, rows, kc, dst);
}

// op(B)[pc:pc+kc, j0:j0+cols] as NR-column micro-panels at dst.
template <typename T, int NR>
void pack_b(const Kernels<T>& kit, const Operands<T>& op, int64_t pc, int64_t kc, int64_t j0,
            int64_t cols, T* dst) {
  pack<T, NR>(kit, !op.trans_b, op.b_at(pc, j0), op.ldb, cols, kc, dst);
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

// How one call is split between threads and blocked. The packing buffer is sized from these
// same numbers (buffer_elems), so packing never runs past it, whatever team OpenMP grants.
struct Plan {
  int threads;            // threads asked for; the team may be smaller, never larger
  bool split_n;           // split n and share A blocks; else split m and share B panels
  int64_t mc, kc, nc;     // steps: A block rows, depth, B panel columns
  int64_t shared_elems;   // the shared packed block: a B panel, or an A block when split_n
  int64_t own_elems;      // each thread's packed block: an A block, or a B panel when split_n
  int64_t buffer_elems() const { return shared_elems + threads * own_elems; }
};

// Near-equal steps of at most `most` (a multiple of `unit`) covering `len`, rounded to `unit`.
int64_t block_step(int64_t len, int64_t most, int64_t unit) {
  return round_up(ceil_div(len, ceil_div(len, most)), unit);
}

template <typename T, int MR, int NR>
Plan plan_gemm(Blocking blk, int64_t m, int64_t n, int64_t k, int threads) {
  Plan p;
  p.threads = threads;
  p.kc = ceil_div(k, ceil_div(k, blk.kc));
  const int64_t m_pad = round_up(m, MR), n_pad = round_up(n, NR);
  const int64_t rows = ceil_div(m_pad / MR, threads) * MR;  // one thread's rows (split m)
  const int64_t cols = ceil_div(n_pad / NR, threads) * NR;  // one thread's columns (split n)
  // One thread's cost per k step in multiply-adds: its micro-tiles plus its packing, where a
  // packed element costs about 8 multiply-adds and split n repacks B for every A block.
  const double cost_m = double(rows) * n_pad + 8.0 * (rows + double(n_pad) / threads);
  const double cost_n = double(m_pad) * cols +
                        8.0 * (double(m_pad) / threads + double(cols) * ceil_div(m, blk.mc));
  p.split_n = cost_n <= cost_m;
  p.mc = block_step(p.split_n ? m : rows, blk.mc, MR);
  // Split n: B panels that stay in L2 next to the A block (a wide panel would make the trip
  // to L3 and back for only mc rows of work). Split m: one wide panel shared in L3.
  p.nc = p.split_n ? std::min(cols, std::max<int64_t>(NR, kNarrowPanelBytes / (p.kc * sizeof(T))
                                                              / NR * NR))
                   : std::min(block_step(n, blk.nc, NR), n_pad);
  const int64_t line = 64 / sizeof(T);  // blocks start on cache lines: no false sharing
  const int64_t a_elems = round_up(p.mc * p.kc, line), b_elems = round_up(p.kc * p.nc, line);
  p.shared_elems = p.split_n ? a_elems : b_elems;
  p.own_elems = p.split_n ? b_elems : a_elems;
  return p;
}

// Thread `tid`'s share [lo, hi) of `count` items split over `team` threads.
struct Range {
  int64_t lo, hi;
};

Range share(int64_t count, int tid, int team) {
  return {count * tid / team, count * (tid + 1) / team};
}

// Thread `tid`'s share of `len` in whole tiles of `unit` (the last tile may be ragged).
Range tile_share(int64_t len, int64_t unit, int tid, int team) {
  const Range t = share(ceil_div(len, unit), tid, team);
  return {std::min(len, t.lo * unit), std::min(len, t.hi * unit)};
}

int team_size() {
#ifdef _OPENMP
  return omp_get_num_threads();
#else
  return 1;
#endif
}

// Waits for the team of a split GEMM. A team of one has nothing to wait for, and must not
// wait: its thread may belong to an enclosing parallel region.
void team_barrier(int team) {
#ifdef _OPENMP
  if (team > 1) {
#pragma omp barrier
  }
#else
  (void)team;
#endif
}

// The team packs a shared block together: thread `tid` packs its share of the block's R-wide
// micro-panels, covering `len` rows or columns, with pack(first, count, dst); then everyone
// waits until the block is complete.
template <typename T, int R, typename Pack>
void pack_shared(int64_t len, int64_t kc, T* shared, int tid, int team, Pack&& pack) {
  const Range panels = share(ceil_div(len, R), tid, team);
  if (panels.lo < panels.hi)
    pack(panels.lo * R, std::min(len, panels.hi * R) - panels.lo * R, shared + panels.lo * R * kc);
  team_barrier(team);
}

// Split m: each shared B panel is packed by the whole team, then every thread multiplies its
// own rows (its own A blocks, packed into `own`) against it.
template <typename T, int MR, int NR>
void run_split_m(const Kernels<T>& kit, const Plan& plan, const Operands<T>& op, T* shared,
                 T* own, int tid, int team) {
  const Range rows = tile_share(op.m, MR, tid, team);
  for (int64_t jc = 0; jc < op.n; jc += plan.nc) {
    const int64_t nc = std::min(plan.nc, op.n - jc);
    for (int64_t pc = 0; pc < op.k; pc += plan.kc) {
      const int64_t kc = std::min(plan.kc, op.k - pc);
      pack_shared<T, NR>(nc, kc, shared, tid, team, [&](int64_t j, int64_t cols, T* dst) {
        pack_b<T, NR>(kit, op, pc, kc, jc + j, cols, dst);
      });
      const T beta = pc == 0 ? op.beta : T(1);
      for (int64_t ic = rows.lo; ic < rows.hi; ic += plan.mc) {
        const int64_t mc = std::min(plan.mc, rows.hi - ic);
        pack_a<T, MR>(kit, op, ic, mc, pc, kc, own);
        macro_kernel<T, MR, NR>(kit, mc, nc, kc, op.alpha, own, shared, beta,
                                op.c + ic * op.ldc + jc, op.ldc);
      }
      team_barrier(team);  // nobody reads the panel any more
    }
  }
}

// Split n: each shared A block is packed by the whole team, then every thread streams its own
// columns through B panels of its own (packed into `own`).
template <typename T, int MR, int NR>
void run_split_n(const Kernels<T>& kit, const Plan& plan, const Operands<T>& op, T* shared,
                 T* own, int tid, int team) {
  const Range cols = tile_share(op.n, NR, tid, team);
  for (int64_t pc = 0; pc < op.k; pc += plan.kc) {
    const int64_t kc = std::min(plan.kc, op.k - pc);
    const T beta = pc == 0 ? op.beta : T(1);
    for (int64_t ic = 0; ic < op.m; ic += plan.mc) {
      const int64_t mc = std::min(plan.mc, op.m - ic);
      pack_shared<T, MR>(mc, kc, shared, tid, team, [&](int64_t i, int64_t rows, T* dst) {
        pack_a<T, MR>(kit, op, ic + i, rows, pc, kc, dst);
      });
      for (int64_t jc = cols.lo; jc < cols.hi; jc += plan.nc) {
        const int64_t nc = std::min(plan.nc, cols.hi - jc);
        pack_b<T, NR>(kit, op, pc, kc, jc, nc, own);
        macro_kernel<T, MR, NR>(kit, mc, nc, kc, op.alpha, shared, own, beta,
                                op.c + ic * op.ldc + jc, op.ldc);
      }
      team_barrier(team);  // nobody reads the block any more
    }
  }
}

template <typename T, int MR, int NR>
void gemm_blocked(const Kernels<T>& kit, Blocking blk, const Operands<T>& op) {
  const int nt = threads_for(2.0 * op.m * op.n * op.k);
  const Plan plan = plan_gemm<T, MR, NR>(blk, op.m, op.n, op.k, nt);
  T* shared = static_cast<T*>(t_pack.get(plan.buffer_elems() * sizeof(T)));
  parallel_threads(nt, [&](int tid) {
    const int team = nt > 1 ? team_size() : 1;
    T* own = shared + plan.shared_elems + tid * plan.own_elems;
    if (plan.split_n)
      run_split_n<T, MR, NR>(kit, plan, op, shared, own, tid, team);
    else
      run_split_m<T, MR, NR>(kit, plan, op, shared, own, tid, team);
  });
}

// Where the direct kernel beats packing (measured one product at a time against the packed
// path, AVX2 and portable): products of at most kSmallVolume multiply-adds (5 x 5 x 5 still
// gains, 6 x 6 x 6 loses), and matrix-vector products up to kSmallVectorVolume, which the
// packed path pads to a whole MR x NR tile (1 x 1 x 1024: 0.17 instead of 9.5 us). A single
// column of op(A)^T is excluded: its dot products would walk A across rows.
constexpr int64_t kSmallVolume = 128;
constexpr int64_t kSmallVectorVolume = int64_t(1) << 16;
constexpr int64_t kLanes = 8;  // independent partial sums of small_dots' dot products

// C[i, :] = alpha * sum_p op(A)[i, p] * B[p, :] + beta * C[i, :] for row-major B: scaled
// rows of B accumulate into the row of C (vectorised along n).
template <typename T>
void small_rows(const Operands<T> op) {
  const int64_t n = op.n, ldb = op.ldb;
  for (int64_t i = 0; i < op.m; ++i) {
    T* __restrict ci = op.c + i * op.ldc;
    for (int64_t j = 0; j < n; ++j) ci[j] = op.beta == T(0) ? T(0) : op.beta * ci[j];
    for (int64_t p = 0; p < op.k; ++p) {
      const T aip = op.alpha * *op.a_at(i, p);
      const T* __restrict bp = op.b + p * ldb;
      for (int64_t j = 0; j < n; ++j) ci[j] += aip * bp[j];
    }
  }
}

// C[i, j] = alpha * dot(op(A)[i, :], op(B)[:, j]) + beta * C[i, j], each dot product summed in
// kLanes independent lanes (vectorised along k when both operands are contiguous along k).
template <typename T>
void small_dots(const Operands<T> op) {
  const int64_t k = op.k;
  const int64_t sa = op.trans_a ? op.lda : 1, sb = op.trans_b ? 1 : op.ldb;  // steps along k
  for (int64_t i = 0; i < op.m; ++i) {
    const T* __restrict ai = op.a_at(i, 0);
    for (int64_t j = 0; j < op.n; ++j) {
      const T* __restrict bj = op.b_at(0, j);
      T s = T(0);
      int64_t p = 0;
      if (k >= 2 * kLanes) {
        T lanes[kLanes] = {};
        for (; p + kLanes <= k; p += kLanes)
          for (int64_t l = 0; l < kLanes; ++l) lanes[l] += ai[(p + l) * sa] * bj[(p + l) * sb];
        for (int64_t l = 0; l < kLanes; ++l) s += lanes[l];
      }
      for (; p < k; ++p) s += ai[p * sa] * bj[p * sb];
      T& cij = op.c[i * op.ldc + j];
      cij = op.beta == T(0) ? op.alpha * s : op.alpha * s + op.beta * cij;
    }
  }
}

bool use_small(int64_t m, int64_t n, int64_t k, bool trans_a) {
  const double volume = double(m) * n * k;
  const bool vector = m == 1 || (n == 1 && !trans_a);
  return volume <= kSmallVolume || (vector && volume <= kSmallVectorVolume);
}

// The direct product of tiny operands, read in place: no packing, no threads. Row-major B
// with rows of at least kLanes goes row by row, anything else dot product by dot product.
template <typename T>
void gemm_small(const Operands<T>& op) {
  if (!op.trans_b && op.n >= kLanes)
    small_rows(op);
  else
    small_dots(op);
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
  const Operands<T> op{trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc};
  if (use_small(m, n, k, trans_a)) {
    gemm_small(op);
    return;
  }
#ifdef GRADFLOW_HAVE_AVX512_KERNELS
  if (use_avx512()) {
    constexpr int MR = avx512::kGemmMR;
    constexpr int NR = sizeof(T) == 4 ? avx512::kGemmNRFloat : avx512::kGemmNRDouble;
    const Blocking blk = sizeof(T) == 4 ? Blocking{120, 1024, 2048} : Blocking{60, 1024, 1024};
    const Kernels<T> kit{&avx512::gemm_kernel, &avx2::pack_strided_panel};
    gemm_blocked<T, MR, NR>(kit, blk, op);
    return;
  }
#endif
#ifdef GRADFLOW_HAVE_AVX2_KERNELS
  if (use_avx2()) {
    constexpr int MR = avx2::kGemmMR;
    constexpr int NR = sizeof(T) == 4 ? avx2::kGemmNRFloat : avx2::kGemmNRDouble;
    const Blocking blk = sizeof(T) == 4 ? Blocking{144, 256, 4080} : Blocking{72, 256, 4080};
    gemm_blocked<T, MR, NR>(Kernels<T>{&avx2::gemm_kernel, &avx2::pack_strided_panel}, blk, op);
    return;
  }
#endif
  // Portable tiles: 4 x 8 floats or 4 x 4 doubles = 8 SSE2 accumulators.
  constexpr int MR = 4;
  constexpr int NR = sizeof(T) == 4 ? 8 : 4;
  const Kernels<T> kit{&portable_kernel<T, MR, NR>, &portable_pack_panel<T>};
  gemm_blocked<T, MR, NR>(kit, Blocking{128, 256, 4096}, op);
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
