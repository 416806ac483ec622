// link: csrc/cpu/batchnorm.cpp
// link: csrc/cpu/runtime.cpp
// The CUDA batch-norm kernels' per-thread bodies (csrc/cuda/batchnorm_index.h), launched on
// the host as batchnorm.cu launches them (blocks of C * parts partitions, a grid-stride loop
// over blocks, block_reduce's combine order), against the CPU kernels and against float64:
//   - every element is visited exactly once, by the block of its channel;
//   - double inputs agree with the CPU kernel to ~1e-12, float inputs (float accumulation)
//     with float64 statistics of the same data to ~1e-5, even for data far from zero
//     (mean 1e4, std 1), where summing squares in float would lose every digit.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "cpu/batchnorm.h"
#include "cuda/batchnorm_index.h"
#include "launch_sim.h"

namespace bn = gradflow::cuda::bn;
namespace cpu = gradflow::cpu;

namespace {

std::mt19937_64 rng(99);

int64_t uniform(int64_t lo, int64_t hi) {
  return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
}

// block_reduce's order: shuffle-down trees in each warp of 32, then warp 0 over the warp
// totals padded with the identity.
template <typename V, typename Op>
V warp_tree(std::vector<V> v, Op op) {
  for (int delta = 16; delta > 0; delta /= 2)
    for (int lane = 0; lane + delta < 32; ++lane) v[lane] = op(v[lane], v[lane + delta]);
  return v[0];
}

template <typename V, typename Op>
V block_combine(const std::vector<V>& values, Op op, V identity) {
  const size_t warps = values.size() / 32;
  std::vector<V> totals(32, identity);
  for (size_t w = 0; w < warps; ++w)
    totals[w] = warp_tree(std::vector<V>(values.begin() + 32 * w, values.begin() + 32 * w + 32),
                          op);
  return warp_tree(totals, op);
}

struct Shape {
  int64_t N, C, L, parts, threads, grid;
  std::string str() const {
    return "N=" + std::to_string(N) + " C=" + std::to_string(C) + " L=" + std::to_string(L) +
           " parts=" + std::to_string(parts) + " threads=" + std::to_string(threads);
  }
};

// For every block b of the launch: f(b, c, span) (grid-stride over the C * parts blocks).
template <typename F>
void each_block(const Shape& s, F&& f) {
  const int64_t M = s.N * s.L;
  for (int64_t g = 0; g < s.grid; ++g)
    for (int64_t b = g; b < s.C * s.parts; b += s.grid)
      f(b, b / s.parts, bn::part_span(b % s.parts, s.parts, M));
}

template <typename T>
void check_forward(const Shape& s, const std::vector<T>& x, double eps, double tol) {
  const int64_t C = s.C, L = s.L, M = s.N * L;
  std::vector<double> partial(3 * C * s.parts);
  std::vector<int> visits(x.size(), 0);
  each_block(s, [&](int64_t b, int64_t c, bn::Span span) {
    std::vector<bn::Welford<T>> states;
    for (int64_t t = 0; t < s.threads; ++t) {
      for (int64_t m = span.begin + t; m < span.end; m += s.threads)
        ++visits[bn::element_offset(m, c, C, L)];
      states.push_back(bn::thread_stats<T, T>(x.data(), c, C, L, span, t, s.threads));
    }
    const bn::Welford<T> w = block_combine(states, bn::welford_merge<T>, bn::Welford<T>{0, 0, 0});
    partial[3 * b] = static_cast<double>(w.count);
    partial[3 * b + 1] = w.mean;
    partial[3 * b + 2] = w.m2;
  });
  for (int v : visits)
    if (v != 1) return fail_case("batch_norm element visits", s.str().c_str());
  // float64 reference: two passes in long double.
  for (int64_t c = 0; c < C; ++c) {
    bn::Welford<double> w{0, 0.0, 0.0};
    for (int64_t k = 0; k < s.parts; ++k) {
      const double* p = &partial[3 * (c * s.parts + k)];
      w = bn::welford_merge(w, bn::Welford<double>{static_cast<int64_t>(p[0]), p[1], p[2]});
    }
    const bn::Stats st = bn::finish_stats(w, eps);
    long double sum = 0, ss = 0;
    for (int64_t m = 0; m < M; ++m) sum += x[bn::element_offset(m, c, C, L)];
    const long double mean = sum / M;
    for (int64_t m = 0; m < M; ++m) {
      const long double d = x[bn::element_offset(m, c, C, L)] - mean;
      ss += d * d;
    }
    const double var = static_cast<double>(ss / M);
    if (w.count != M || std::fabs(st.mean - static_cast<double>(mean)) >
                            tol * (std::fabs(static_cast<double>(mean)) + std::sqrt(var) + 1e-30) ||
        std::fabs(st.var - var) > tol * (var + 1e-30))
      return fail_case("batch_norm statistics", s.str().c_str());
  }
}

// Backward: the sums by partitions, the CPU's coefficients, dx, against the CPU kernel.
template <typename T>
void check_backward(const Shape& s, const std::vector<T>& x, double tol) {
  const int64_t N = s.N, C = s.C, L = s.L, M = N * L;
  std::normal_distribution<double> normal;
  std::vector<T> dy(x.size()), w(C), y(x.size()), mean(C), var(C), invstd(C);
  for (T& v : dy) v = static_cast<T>(normal(rng));
  for (T& v : w) v = static_cast<T>(normal(rng));
  cpu::batch_norm_forward_train<T>(N, C, L, x.data(), w.data(), nullptr, T(1e-5), y.data(),
                                   mean.data(), var.data(), invstd.data());
  std::vector<double> partial(2 * C * s.parts);
  each_block(s, [&](int64_t b, int64_t c, bn::Span span) {
    std::vector<bn::GradSums<T>> sums;
    for (int64_t t = 0; t < s.threads; ++t)
      sums.push_back(bn::thread_grad_sums<T, T>(x.data(), dy.data(), mean[c], c, C, L, span, t,
                                                s.threads));
    const bn::GradSums<T> g = block_combine(sums, bn::add_sums<T>, bn::GradSums<T>{0, 0});
    partial[2 * b] = g.dy;
    partial[2 * b + 1] = g.dyx;
  });
  for (const bool training : {true, false}) {
    std::vector<T> dx(x.size()), dw(C), db(C), dx_ref(x.size()), dw_ref(C), db_ref(C);
    cpu::batch_norm_backward<T>(N, C, L, x.data(), dy.data(), mean.data(), invstd.data(),
                                w.data(), training, dx_ref.data(), dw_ref.data(), db_ref.data());
    std::vector<T> coef(3 * C);
    for (int64_t c = 0; c < C; ++c) {
      double sdy = 0, sdyx = 0;
      for (int64_t k = 0; k < s.parts; ++k) {
        sdy += partial[2 * (c * s.parts + k)];
        sdyx += partial[2 * (c * s.parts + k) + 1];
      }
      db[c] = static_cast<T>(sdy);
      dw[c] = static_cast<T>(sdyx * invstd[c]);
      const bn::GradCoef g = bn::grad_coef(sdy, sdyx, mean[c], invstd[c], w[c], training, M);
      coef[3 * c] = static_cast<T>(g.a);
      coef[3 * c + 1] = static_cast<T>(g.k);
      coef[3 * c + 2] = static_cast<T>(g.d);
    }
    const int64_t n = static_cast<int64_t>(x.size());
    simulate_each(n, 1 + n % 5, 32, [&](int64_t e) {
      const int64_t c = bn::channel_of(e, C, L);
      dx[e] = coef[3 * c] * dy[e] + coef[3 * c + 1] * x[e] + coef[3 * c + 2];
    });
    // dx may cancel to rounding noise (M = 2 makes it exactly 0): compare on the scale of
    // w * invstd * dy.
    double dx_floor = 0;
    for (size_t e = 0; e < dy.size(); ++e) {
      const int64_t c = bn::channel_of(static_cast<int64_t>(e), C, L);
      dx_floor = std::fmax(dx_floor, std::fabs(double(dy[e]) * w[c] * invstd[c]));
    }
    auto close = [&](const std::vector<T>& a, const std::vector<T>& b, double floor) {
      double scale = floor + 1e-30;
      for (T v : b) scale = std::fmax(scale, std::fabs(static_cast<double>(v)));
      for (size_t i = 0; i < a.size(); ++i)
        if (std::fabs(static_cast<double>(a[i]) - b[i]) > tol * scale) return false;
      return true;
    };
    if (!close(dx, dx_ref, dx_floor) || !close(dw, dw_ref, 0) || !close(db, db_ref, 0))
      return fail_case(training ? "batch_norm_backward (training)" : "batch_norm_backward (eval)",
                       s.str().c_str());
  }
}

template <typename T>
std::vector<T> data(int64_t n, double mean, double stddev) {
  std::normal_distribution<double> normal(mean, stddev);
  std::vector<T> x(static_cast<size_t>(n));
  for (T& v : x) v = static_cast<T>(normal(rng));
  return x;
}

}  // namespace

int main() {
  for (int i = 0; i < 150; ++i) {
    Shape s{uniform(1, 9), uniform(1, 5), uniform(0, 3) == 0 ? 1 : uniform(1, 70),
            uniform(1, 6), 32 * uniform(1, 4), uniform(1, 7)};
    const int64_t n = s.N * s.C * s.L;
    check_forward<double>(s, data<double>(n, 0.5, 2.0), 1e-5, 1e-12);
    check_forward<float>(s, data<float>(n, 0.5, 2.0), 1e-5, 2e-5);
    check_backward<double>(s, data<double>(n, 0.5, 2.0), 1e-10);
    check_backward<float>(s, data<float>(n, 0.5, 2.0), 2e-4);
  }
  // Float accumulation far from zero, and one large channel split over many partitions.
  const Shape big{64, 2, 1500, 40, 256, 13};
  check_forward<float>(big, data<float>(big.N * big.C * big.L, 1e4, 1.0), 1e-5, 1e-4);
  check_forward<float>(big, data<float>(big.N * big.C * big.L, -3.0, 1e-3), 1e-5, 1e-4);
  if (g_failures) {
    std::printf("%d failures\n", g_failures);
    return 1;
  }
  std::printf("batchnorm: every launch agrees with the CPU kernels and float64\n");
  return 0;
}
