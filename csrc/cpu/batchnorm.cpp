// Fused batch-norm kernels; see batchnorm.h for the math. Row sums use eight independent
// accumulators so the compiler can keep them in SIMD registers without reassociating a
// single running sum.
#include "cpu/batchnorm.h"

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "cpu/runtime.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace gradflow::cpu {

namespace {

template <typename T, typename F>
inline double row_sum(int64_t n, F&& f) {
  T acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) acc[k] += f(i + k);
  double s = 0;
  for (; i < n; ++i) s += f(i);
  for (int k = 0; k < 8; ++k) s += acc[k];
  return s;
}

// Waking the other threads costs tens of microseconds (far more on a loaded machine): only
// split work that takes longer than that.
inline bool parallel_worth(int64_t elems) { return elems > (int64_t(1) << 16); }

// Per-channel sums over rows for L == 1, two at once: f(n, c) returns a pair (u, v) of T and
// out1[c] = sum_n u, out2[c] = sum_n v. Blocks of kRowBlock rows are summed in T (full SIMD
// width for float), each block total then added into double; threads split the blocks.
constexpr int64_t kRowBlock = 32;

template <typename T, typename F>
void column_sums(int64_t N, int64_t C, F&& f, std::vector<double>& out1,
                 std::vector<double>& out2) {
  out1.assign(C, 0.0);
  out2.assign(C, 0.0);
  const int threads = parallel_worth(N * C) ? get_num_threads() : 1;
  // Every thread's accumulators (double) and block sums (T), allocated before the region.
  std::vector<double> part = workspace<double>(2 * threads * C);
  std::vector<T> blocks = workspace<T>(2 * threads * C);
#pragma omp parallel num_threads(threads)
  {
    int tid = 0;
#ifdef _OPENMP
    tid = omp_get_thread_num();
#endif
    double* acc1 = part.data() + 2 * tid * C;
    double* acc2 = acc1 + C;
    T* block1 = blocks.data() + 2 * tid * C;
    T* block2 = block1 + C;
#pragma omp for schedule(static)
    for (int64_t n0 = 0; n0 < N; n0 += kRowBlock) {
      std::fill(block1, block1 + C, T(0));
      std::fill(block2, block2 + C, T(0));
      for (int64_t n = n0; n < std::min(N, n0 + kRowBlock); ++n)
        for (int64_t c = 0; c < C; ++c) {
          const auto [u, v] = f(n, c);
          block1[c] += u;
          block2[c] += v;
        }
      for (int64_t c = 0; c < C; ++c) {
        acc1[c] += block1[c];
        acc2[c] += block2[c];
      }
    }
  }
  for (int t = 0; t < threads; ++t)
    for (int64_t c = 0; c < C; ++c) {
      out1[c] += part[2 * t * C + c];
      out2[c] += part[(2 * t + 1) * C + c];
    }
}

}  // namespace

template <typename T>
void batch_norm_forward_train(int64_t N, int64_t C, int64_t L, const T* x, const T* w,
                              const T* b, T eps, T* y, T* mean, T* var, T* invstd) {
  const double M = static_cast<double>(N * L);
  if (L == 1) {
    // One pass of shifted sums: with d = x - k (k = the first row, a sample of each channel),
    // mean = k + sum(d) / M and var = sum(d^2) / M - (sum(d) / M)^2 without cancellation.
    const T* k = x;
    std::vector<double> sd, sdd;
    column_sums<T>(
        N, C,
        [&](int64_t n, int64_t c) {
          const T d = x[n * C + c] - k[c];
          return std::pair<T, T>(d, d * d);
        },
        sd, sdd);
    for (int64_t c = 0; c < C; ++c) {
      const double shift = sd[c] / M, v = std::max(sdd[c] / M - shift * shift, 0.0);
      mean[c] = static_cast<T>(k[c] + shift);
      var[c] = static_cast<T>(v);
      invstd[c] = static_cast<T>(1.0 / std::sqrt(v + eps));
    }
    batch_norm_apply(N, C, L, x, mean, invstd, w, b, y);
    return;
  }
#pragma omp parallel for schedule(static) if (parallel_worth(N * C * L))
  for (int64_t c = 0; c < C; ++c) {
    double s = 0;
    for (int64_t n = 0; n < N; ++n) {
      const T* row = x + (n * C + c) * L;
      s += row_sum<T>(L, [row](int64_t i) { return row[i]; });
    }
    const T m = static_cast<T>(s / M);
    double ss = 0;
    for (int64_t n = 0; n < N; ++n) {
      const T* row = x + (n * C + c) * L;
      ss += row_sum<T>(L, [row, m](int64_t i) { return (row[i] - m) * (row[i] - m); });
    }
    const double v = ss / M;
    const T is = static_cast<T>(1.0 / std::sqrt(v + eps));
    mean[c] = m;
    var[c] = static_cast<T>(v);
    invstd[c] = is;
    const T scale = (w ? w[c] : T(1)) * is, shift = (b ? b[c] : T(0)) - m * scale;
    for (int64_t n = 0; n < N; ++n) {
      const T* row = x + (n * C + c) * L;
      T* out = y + (n * C + c) * L;
      for (int64_t i = 0; i < L; ++i) out[i] = row[i] * scale + shift;
    }
  }
}

template <typename T>
void batch_norm_apply(int64_t N, int64_t C, int64_t L, const T* x, const T* mean,
                      const T* invstd, const T* w, const T* b, T* y) {
  std::vector<T> scale(C), shift(C);
  for (int64_t c = 0; c < C; ++c) {
    scale[c] = (w ? w[c] : T(1)) * invstd[c];
    shift[c] = (b ? b[c] : T(0)) - mean[c] * scale[c];
  }
  const int64_t rows = L == 1 ? N : N * C;  // (N, C): one row of C values per n
#pragma omp parallel for schedule(static) if (parallel_worth(N * C * L))
  for (int64_t r = 0; r < rows; ++r) {
    if (L == 1) {
      const T* xr = x + r * C;
      T* yr = y + r * C;
      for (int64_t c = 0; c < C; ++c) yr[c] = xr[c] * scale[c] + shift[c];
      continue;
    }
    const T* row = x + r * L;
    T* out = y + r * L;
    const T sc = scale[r % C], sh = shift[r % C];
    for (int64_t i = 0; i < L; ++i) out[i] = row[i] * sc + sh;
  }
}

// Per channel c: sdy[c] = sum of dy, sdyx[c] = sum of dy * (x - mean[c]), over (N, L).
template <typename T>
void gradient_sums(int64_t N, int64_t C, int64_t L, const T* x, const T* dy, const T* mean,
                   std::vector<double>& sdy, std::vector<double>& sdyx) {
  if (L == 1) {
    column_sums<T>(
        N, C,
        [&](int64_t n, int64_t c) {
          const T g = dy[n * C + c];
          return std::pair<T, T>(g, g * (x[n * C + c] - mean[c]));
        },
        sdy, sdyx);
    return;
  }
#pragma omp parallel for schedule(static) if (parallel_worth(N * C * L))
  for (int64_t c = 0; c < C; ++c) {
    const T m = mean[c];
    double s = 0, sx = 0;
    for (int64_t n = 0; n < N; ++n) {
      const T* g = dy + (n * C + c) * L;
      const T* row = x + (n * C + c) * L;
      s += row_sum<T>(L, [g](int64_t i) { return g[i]; });
      sx += row_sum<T>(L, [g, row, m](int64_t i) { return g[i] * (row[i] - m); });
    }
    sdy[c] = s;
    sdyx[c] = sx;
  }
}

template <typename T>
void batch_norm_backward(int64_t N, int64_t C, int64_t L, const T* x, const T* dy,
                         const T* mean, const T* invstd, const T* w, bool training, T* dx, T* dw,
                         T* db) {
  const double M = static_cast<double>(N * L);
  std::vector<double> sdy(C), sdyx(C);
  gradient_sums(N, C, L, x, dy, mean, sdy, sdyx);
  for (int64_t c = 0; c < C; ++c) {
    if (db) db[c] = static_cast<T>(sdy[c]);
    if (dw) dw[c] = static_cast<T>(sdyx[c] * invstd[c]);
  }
  if (!dx) return;
  // dx = a[c] * dy + k[c] * x + d[c] with the per-channel constants below.
  std::vector<T> a(C), k(C), d(C);
  for (int64_t c = 0; c < C; ++c) {
    const double is = invstd[c], scale = (w ? double(w[c]) : 1.0) * is;
    a[c] = static_cast<T>(scale);
    if (training) {
      const double kk = -scale * is * is * sdyx[c] / M;  // -scale * xhat-coefficient
      k[c] = static_cast<T>(kk);
      d[c] = static_cast<T>(-scale * sdy[c] / M - kk * mean[c]);
    } else {
      k[c] = 0;
      d[c] = 0;
    }
  }
#pragma omp parallel for schedule(static) if (parallel_worth(N * C * L))
  for (int64_t r = 0; r < (L == 1 ? N : N * C); ++r) {
    if (L == 1) {
      const T* g = dy + r * C;
      const T* row = x + r * C;
      T* out = dx + r * C;
      for (int64_t c = 0; c < C; ++c) out[c] = a[c] * g[c] + k[c] * row[c] + d[c];
      continue;
    }
    const int64_t c = r % C;
    const T* g = dy + r * L;
    const T* row = x + r * L;
    T* out = dx + r * L;
    const T ac = a[c], kc = k[c], dc = d[c];
    for (int64_t i = 0; i < L; ++i) out[i] = ac * g[i] + kc * row[i] + dc;
  }
}

#define GRADFLOW_INSTANTIATE(T)                                                                 \
  template void batch_norm_forward_train<T>(int64_t, int64_t, int64_t, const T*, const T*,      \
                                            const T*, T, T*, T*, T*, T*);                       \
  template void batch_norm_apply<T>(int64_t, int64_t, int64_t, const T*, const T*, const T*,    \
                                    const T*, const T*, T*);                                    \
  template void batch_norm_backward<T>(int64_t, int64_t, int64_t, const T*, const T*, const T*, \
                                       const T*, const T*, bool, T*, T*, T*);
GRADFLOW_INSTANTIATE(float)
GRADFLOW_INSTANTIATE(double)
#undef GRADFLOW_INSTANTIATE

}  // namespace gradflow::cpu
