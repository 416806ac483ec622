// The per-thread bodies of the batch-norm kernels (batchnorm.cu). Plain C++ with GRADFLOW_HD,
// so tests/native/batchnorm_test.cpp runs them on the host against csrc/cpu/batchnorm.cpp.
//
// x is (N, C, L), C-contiguous; channel c's M = N*L values are x[(n*C + c)*L + i] for element
// m = n*L + i of the channel. The per-channel reductions are split into `parts` partitions of
// consecutive elements; block b of the launch reduces partition b % parts of channel
// b / parts, each of its threads the elements begin + t, begin + t + threads, ... < end.
// Forward statistics: each thread keeps a Welford state (count, mean, M2 = sum (x - mean)^2)
// in the accumulation type A (float for float32, so the float path is checked against
// float64); states merge by Chan et al.'s rule, and the partitions' states merge in double:
//   var = M2 / M (biased), invstd = 1 / sqrt(var + eps).
// Backward sums: sum dy and sum dy * (x - mean) per channel, then the CPU kernel's
// per-channel coefficients (a, k, d) with dx = a * dy + k * x + d.
#pragma once
#include <cmath>
#include <cstdint>

#include "cuda/host_device.h"

namespace gradflow::cuda::bn {

GRADFLOW_HD int64_t element_offset(int64_t m, int64_t c, int64_t C, int64_t L) {
  const int64_t n = m / L;
  return (n * C + c) * L + (m - n * L);
}

// Channel of element e of the whole (N, C, L) array.
GRADFLOW_HD int64_t channel_of(int64_t e, int64_t C, int64_t L) { return (e / L) % C; }

struct Span {
  int64_t begin, end;
};

// Partition `part` of [0, M) split into `parts` runs of ceil(M / parts) elements.
GRADFLOW_HD Span part_span(int64_t part, int64_t parts, int64_t M) {
  const int64_t chunk = (M + parts - 1) / parts;
  const int64_t begin = part * chunk < M ? part * chunk : M;
  return {begin, M - begin < chunk ? M : begin + chunk};
}

template <typename A>
struct Welford {
  int64_t count;
  A mean, m2;
};

template <typename A>
GRADFLOW_HD Welford<A> welford_add(Welford<A> s, A x) {
  s.count += 1;
  const A d = x - s.mean;
  s.mean += d / static_cast<A>(s.count);
  s.m2 += d * (x - s.mean);
  return s;
}

template <typename A>
GRADFLOW_HD Welford<A> welford_merge(Welford<A> a, Welford<A> b) {
  if (b.count == 0) return a;
  if (a.count == 0) return b;
  const int64_t n = a.count + b.count;
  const A fb = static_cast<A>(b.count) / static_cast<A>(n), d = b.mean - a.mean;
  return {n, a.mean + d * fb, a.m2 + b.m2 + d * d * static_cast<A>(a.count) * fb};
}

// One thread's share of partition `span` of channel c.
template <typename T, typename A>
GRADFLOW_HD Welford<A> thread_stats(const T* x, int64_t c, int64_t C, int64_t L, Span span,
                                    int64_t t, int64_t threads) {
  Welford<A> s{0, A(0), A(0)};
  for (int64_t m = span.begin + t; m < span.end; m += threads)
    s = welford_add(s, static_cast<A>(x[element_offset(m, c, C, L)]));
  return s;
}

struct Stats {
  double mean, var, invstd;
};

GRADFLOW_HD Stats finish_stats(Welford<double> s, double eps) {
  const double var = s.count ? s.m2 / static_cast<double>(s.count) : 0.0;
  return {s.mean, var, 1.0 / sqrt(var + eps)};
}

// Backward: (sum dy, sum dy * (x - mean)) over one thread's share.
template <typename A>
struct GradSums {
  A dy, dyx;
};

template <typename A>
GRADFLOW_HD GradSums<A> add_sums(GradSums<A> a, GradSums<A> b) {
  return {a.dy + b.dy, a.dyx + b.dyx};
}

template <typename T, typename A>
GRADFLOW_HD GradSums<A> thread_grad_sums(const T* x, const T* dy, T mean, int64_t c, int64_t C,
                                         int64_t L, Span span, int64_t t, int64_t threads) {
  GradSums<A> s{A(0), A(0)};
  for (int64_t m = span.begin + t; m < span.end; m += threads) {
    const int64_t o = element_offset(m, c, C, L);
    const T g = dy[o];
    s.dy += static_cast<A>(g);
    s.dyx += static_cast<A>(g * (x[o] - mean));
  }
  return s;
}

// dx = a * dy + k * x + d for one channel (the CPU kernel's constants); M = N * L.
struct GradCoef {
  double a, k, d;
};

GRADFLOW_HD GradCoef grad_coef(double sum_dy, double sum_dyx, double mean, double invstd,
                               double weight, bool training, double M) {
  const double scale = weight * invstd;
  if (!training) return {scale, 0.0, 0.0};
  const double k = -scale * invstd * invstd * sum_dyx / M;
  return {scale, k, -scale * sum_dy / M - k * mean};
}

}  // namespace gradflow::cuda::bn
