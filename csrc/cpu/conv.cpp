// im2col + GEMM convolution; see conv.h for the math, layouts and threading.
#include "cpu/conv.h"

#include <algorithm>
#include <vector>

#include "cpu/gemm.h"
#include "cpu/runtime.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace gradflow::cpu {

namespace {

constexpr int64_t kChunkColumns = 1024;  // target GEMM width nb*L per chunk

bool is_pointwise(const ConvGeom& g) {
  return g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.ph == 0 && g.pw == 0;
}

struct Plan {
  int64_t nb;      // images per chunk
  int64_t chunks;  // ceil(N / nb)
  int threads;     // > 1: chunks run in parallel, one thread each
};

Plan make_plan(int64_t N, int64_t L) {
  const int threads = get_num_threads();
  const int64_t per_thread = (N + threads - 1) / threads;
  const int64_t nb = std::max<int64_t>(1, std::min(kChunkColumns / std::max<int64_t>(L, 1),
                                                    per_thread));
  const int64_t chunks = (N + nb - 1) / nb;
  return {nb, chunks, threads > 1 && chunks >= threads ? threads : 1};
}

// Runs fn(n0, nb, workspace, thread) over the chunks of the plan; each thread owns a workspace
// of ws elements. With one thread fn's GEMMs may use all threads themselves.
template <typename T, typename F>
void for_each_chunk(int64_t N, const Plan& p, int64_t ws, F&& fn) {
  if (p.threads > 1) {
#pragma omp parallel num_threads(p.threads)
    {
      std::vector<T> buf(static_cast<size_t>(ws));
      int tid = 0;
#ifdef _OPENMP
      tid = omp_get_thread_num();
#endif
#pragma omp for schedule(static)
      for (int64_t c = 0; c < p.chunks; ++c)
        fn(c * p.nb, std::min(p.nb, N - c * p.nb), buf.data(), tid);
    }
  } else {
    std::vector<T> buf(static_cast<size_t>(ws));
    for (int64_t c = 0; c < p.chunks; ++c)
      fn(c * p.nb, std::min(p.nb, N - c * p.nb), buf.data(), 0);
  }
}

}  // namespace

template <typename T>
void conv2d_forward(int64_t N, int64_t groups, int64_t Cout, const ConvGeom& g, const T* x,
                    const T* w, const T* bias, T* y) {
  const int64_t K = g.C * g.kh * g.kw, L = g.OH * g.OW, Cog = Cout / groups;
  const int64_t HWC = g.C * g.H * g.W;
  const Plan p = make_plan(N, L);
  const bool direct = p.nb == 1 && is_pointwise(g);
  const int64_t ws = direct ? 0 : (K + Cog) * p.nb * L;
  for_each_chunk<T>(N, p, ws, [&](int64_t n0, int64_t nb, T* buf, int) {
    const int64_t ld = nb * L;
    T* col = buf;
    T* out = buf + K * ld;
    for (int64_t grp = 0; grp < groups; ++grp) {
      const T* wg = w + grp * Cog * K;
      if (direct) {
        gemm<T>(false, false, Cog, L, K, T(1), wg, K, x + (n0 * groups + grp) * HWC, L, T(0),
                y + (n0 * Cout + grp * Cog) * L, L);
        continue;
      }
      for (int64_t i = 0; i < nb; ++i)
        im2col(g, x + ((n0 + i) * groups + grp) * HWC, col + i * L, ld);
      if (nb == 1) {  // the output block is already the (Cog, L) matrix
        gemm<T>(false, false, Cog, L, K, T(1), wg, K, col, ld, T(0),
                y + (n0 * Cout + grp * Cog) * L, L);
        continue;
      }
      gemm<T>(false, false, Cog, ld, K, T(1), wg, K, col, ld, T(0), out, ld);
      for (int64_t i = 0; i < nb; ++i)
        for (int64_t o = 0; o < Cog; ++o)
          std::copy(out + o * ld + i * L, out + o * ld + (i + 1) * L,
                    y + ((n0 + i) * Cout + grp * Cog + o) * L);
    }
    if (bias != nullptr) add_channel_bias<T>(nb, Cout, L, bias, y + n0 * Cout * L);
  });
}

template <typename T>
void conv2d_backward_input(int64_t N, int64_t groups, int64_t Cout, const ConvGeom& g,
                           const T* dy, const T* w, T* dx) {
  const int64_t K = g.C * g.kh * g.kw, L = g.OH * g.OW, Cog = Cout / groups;
  const int64_t HWC = g.C * g.H * g.W;
  const Plan p = make_plan(N, L);
  const bool direct = p.nb == 1 && is_pointwise(g);
  const int64_t ws = direct ? 0 : (K + Cog) * p.nb * L;
  for_each_chunk<T>(N, p, ws, [&](int64_t n0, int64_t nb, T* buf, int) {
    const int64_t ld = nb * L;
    T* col = buf;
    T* dyc = buf + K * ld;
    for (int64_t grp = 0; grp < groups; ++grp) {
      const T* wg = w + grp * Cog * K;
      const T* dyg = dy + (n0 * Cout + grp * Cog) * L;
      if (direct) {
        gemm<T>(true, false, K, L, Cog, T(1), wg, K, dyg, L, T(0),
                dx + (n0 * groups + grp) * HWC, L);
        continue;
      }
      const T* b = dyg;
      if (nb > 1) {  // gather the chunk's dy blocks side by side
        for (int64_t i = 0; i < nb; ++i)
          for (int64_t o = 0; o < Cog; ++o) {
            const T* src = dy + ((n0 + i) * Cout + grp * Cog + o) * L;
            std::copy(src, src + L, dyc + o * ld + i * L);
          }
        b = dyc;
      }
      gemm<T>(true, false, K, ld, Cog, T(1), wg, K, b, ld, T(0), col, ld);
      for (int64_t i = 0; i < nb; ++i) {
        T* dxi = dx + ((n0 + i) * groups + grp) * HWC;
        std::fill(dxi, dxi + HWC, T(0));
        col2im(g, col + i * L, ld, dxi);
      }
    }
  });
}

template <typename T>
void conv2d_backward_weight(int64_t N, int64_t groups, int64_t Cout, const ConvGeom& g,
                            const T* x, const T* dy, T* dw) {
  const int64_t K = g.C * g.kh * g.kw, L = g.OH * g.OW, Cog = Cout / groups;
  const int64_t HWC = g.C * g.H * g.W;
  const Plan p = make_plan(N, L);
  const bool direct = p.nb == 1 && is_pointwise(g);
  const int64_t ws = direct ? 0 : (K + Cog) * p.nb * L;
  // Each thread accumulates dw[grp]^T = col @ DY^T (K x Cog per group) into its own slice:
  // with the long nb*L dimension as the GEMM's k and the wide K as its m, this runs far
  // faster than DY @ col^T when Cog is small. The slices are summed and transposed at the end.
  std::vector<T> acc_t(static_cast<size_t>(p.threads * Cout * K));
  std::vector<char> touched(p.threads, 0);
  for_each_chunk<T>(N, p, ws, [&](int64_t n0, int64_t nb, T* buf, int tid) {
    const int64_t ld = nb * L;
    T* col = buf;
    T* dyc = buf + K * ld;
    T* acc = acc_t.data() + tid * Cout * K;
    const T beta = touched[tid] ? T(1) : T(0);
    touched[tid] = 1;
    for (int64_t grp = 0; grp < groups; ++grp) {
      const T* xg = x + (n0 * groups + grp) * HWC;
      const T* dyg = dy + (n0 * Cout + grp * Cog) * L;
      if (direct) {
        gemm<T>(false, true, K, Cog, L, T(1), xg, L, dyg, L, beta, acc + grp * K * Cog, Cog);
        continue;
      }
      for (int64_t i = 0; i < nb; ++i) im2col(g, xg + i * groups * HWC, col + i * L, ld);
      const T* a = dyg;
      if (nb > 1) {
        for (int64_t i = 0; i < nb; ++i)
          for (int64_t o = 0; o < Cog; ++o) {
            const T* src = dy + ((n0 + i) * Cout + grp * Cog + o) * L;
            std::copy(src, src + L, dyc + o * ld + i * L);
          }
        a = dyc;
      }
      gemm<T>(false, true, K, Cog, ld, T(1), col, ld, a, ld, beta, acc + grp * K * Cog, Cog);
    }
  });
  // dw[grp, o, kk] = sum over threads of acc[grp, kk, o], in tiles so that both the reads and
  // the writes stay within a few cache lines.
  constexpr int64_t kTile = 32;
  std::fill(dw, dw + Cout * K, T(0));
  for (int t = 0; t < p.threads; ++t) {
    if (!touched[t]) continue;
    for (int64_t grp = 0; grp < groups; ++grp) {
      const T* acc = acc_t.data() + t * Cout * K + grp * K * Cog;
      T* dwg = dw + grp * Cog * K;
      for (int64_t k0 = 0; k0 < K; k0 += kTile)
        for (int64_t o0 = 0; o0 < Cog; o0 += kTile)
          for (int64_t o = o0; o < std::min(Cog, o0 + kTile); ++o)
            for (int64_t kk = k0; kk < std::min(K, k0 + kTile); ++kk)
              dwg[o * K + kk] += acc[kk * Cog + o];
    }
  }
}

template <typename T>
void channel_sum(int64_t N, int64_t C, int64_t L, const T* dy, T* db) {
#pragma omp parallel for schedule(static) if (C * N * L > 32768)
  for (int64_t c = 0; c < C; ++c) {
    T s = 0;
    for (int64_t n = 0; n < N; ++n) {
      const T* row = dy + (n * C + c) * L;
      for (int64_t l = 0; l < L; ++l) s += row[l];
    }
    db[c] = s;
  }
}

template <typename T>
void add_channel_bias(int64_t N, int64_t C, int64_t L, const T* b, T* y) {
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c) {
      T* row = y + (n * C + c) * L;
      const T v = b[c];
      for (int64_t l = 0; l < L; ++l) row[l] += v;
    }
}

#define GRADFLOW_INSTANTIATE(T)                                                                 \
  template void conv2d_forward<T>(int64_t, int64_t, int64_t, const ConvGeom&, const T*,         \
                                  const T*, const T*, T*);                                      \
  template void conv2d_backward_input<T>(int64_t, int64_t, int64_t, const ConvGeom&, const T*,  \
                                         const T*, T*);                                         \
  template void conv2d_backward_weight<T>(int64_t, int64_t, int64_t, const ConvGeom&, const T*, \
                                          const T*, T*);                                        \
  template void channel_sum<T>(int64_t, int64_t, int64_t, const T*, T*);                        \
  template void add_channel_bias<T>(int64_t, int64_t, int64_t, const T*, T*);
GRADFLOW_INSTANTIATE(float)
GRADFLOW_INSTANTIATE(double)
#undef GRADFLOW_INSTANTIATE

}  // namespace gradflow::cpu
