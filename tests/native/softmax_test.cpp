// The CUDA softmax-family and NLL kernels' per-thread bodies (csrc/cuda/softmax_index.h),
// launched on the host as softmax.cu launches them, against direct float64 formulas:
//   - rows split over a warp (32 lanes, butterfly combine) or a block (block_reduce's order)
//     and columns walked by one thread give softmax / log_softmax and their backward to
//     float rounding, with -inf entries, rows of only -inf (NaN, as exp(x - max) / sum) and
//     NaN (the row turns NaN);
//   - the NLL terms (weights, ignore_index, out-of-range targets, smoothing) and their
//     gradient, which must be the adjoint of the forward terms.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "cuda/softmax_index.h"
#include "launch_sim.h"

namespace sm = gradflow::cuda::softmax;

namespace {

std::mt19937_64 rng(7);

int64_t uniform(int64_t lo, int64_t hi) {
  return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
}

double normal() { return std::normal_distribution<double>(0.0, 3.0)(rng); }

template <typename V, typename Op>
V butterfly(std::vector<V> v, Op op) {  // warp_allreduce: lane 0's view
  for (int mask = 16; mask > 0; mask /= 2) {
    std::vector<V> next(v);
    for (int lane = 0; lane < 32; ++lane) next[lane] = op(v[lane], v[lane ^ mask]);
    v = next;
  }
  return v[0];
}

// The statistics of row values x[j], j < D, as `group` threads striding over them combine.
template <typename T>
sm::Online<T> row_state(const std::vector<T>& x, int64_t group) {
  std::vector<sm::Online<T>> lanes(static_cast<size_t>(group < 32 ? 32 : group),
                                   sm::online_empty<T>());
  for (int64_t t = 0; t < group; ++t)
    for (size_t j = t; j < x.size(); j += group) lanes[t] = sm::online_add(lanes[t], x[j]);
  if (group == 1) return lanes[0];
  std::vector<sm::Online<T>> warp_totals;
  for (size_t w = 0; w < lanes.size() / 32; ++w)
    warp_totals.push_back(butterfly(
        std::vector<sm::Online<T>>(lanes.begin() + 32 * w, lanes.begin() + 32 * w + 32),
        sm::online_merge<T>));
  warp_totals.resize(32, sm::online_empty<T>());
  return butterfly(warp_totals, sm::online_merge<T>);
}

template <typename T>
bool close(double got, double want, double tol) {
  if (std::isnan(want)) return std::isnan(got);
  if (std::isinf(want)) return got == want;
  return std::fabs(got - want) <= tol * (1.0 + std::fabs(want));
}

template <typename T>
void check_row(int64_t D, int64_t group, int special) {
  std::vector<T> x(D), g(D);
  for (int64_t j = 0; j < D; ++j) {
    x[j] = static_cast<T>(normal());
    g[j] = static_cast<T>(normal());
  }
  if (special == 1) x[uniform(0, D - 1)] = -std::numeric_limits<T>::infinity();
  if (special == 2)
    for (T& v : x) v = -std::numeric_limits<T>::infinity();
  if (special == 3) x[uniform(0, D - 1)] = std::numeric_limits<T>::quiet_NaN();
  double mx = -INFINITY;
  for (T v : x) mx = std::fmax(mx, double(v));
  double sum = 0;
  for (T v : x) sum += std::exp(double(v) - mx);
  if (special == 3) sum = NAN;
  const sm::Online<T> s = row_state(x, group);
  const double tol = sizeof(T) == 4 ? 2e-5 : 1e-12;
  const std::string what = "D=" + std::to_string(D) + " group=" + std::to_string(group) +
                           " special=" + std::to_string(special);
  std::vector<T> y(D), ly(D);
  double gy = 0, gsum = 0;
  for (int64_t j = 0; j < D; ++j) {
    const double want = std::exp(double(x[j]) - mx) / sum;
    const double lwant = double(x[j]) - mx - std::log(sum);
    y[j] = sm::softmax_value(x[j], s, false);
    ly[j] = sm::softmax_value(x[j], s, true);
    if (!close<T>(y[j], want, tol) || !close<T>(ly[j], lwant, tol))
      return fail_case("softmax forward", what.c_str());
    gy += double(g[j]) * y[j];
    gsum += g[j];
  }
  if (special) return;
  // Backward through the same split: the row sums, then each element.
  std::vector<T> terms(D), lterms(D);
  for (int64_t j = 0; j < D; ++j) {
    terms[j] = sm::grad_row_term(g[j], y[j], false);
    lterms[j] = sm::grad_row_term(g[j], ly[j], true);
  }
  double t = 0, lt = 0;
  for (int64_t j = 0; j < D; ++j) {
    t += terms[j];
    lt += lterms[j];
  }
  for (int64_t j = 0; j < D; ++j) {
    const double want = double(y[j]) * (double(g[j]) - gy);
    const double lwant = double(g[j]) - std::exp(double(ly[j])) * gsum;
    if (!close<T>(sm::softmax_grad(g[j], y[j], T(t), false), want, 10 * tol) ||
        !close<T>(sm::softmax_grad(g[j], ly[j], T(lt), true), lwant, 10 * tol))
      return fail_case("softmax backward", what.c_str());
  }
}

// Columns: (outer, D, inner) with one thread per (o, i).
void check_columns() {
  const int64_t outer = uniform(1, 4), D = uniform(1, 9), inner = uniform(2, 7);
  std::vector<double> x(outer * D * inner);
  for (double& v : x) v = normal();
  simulate_each(outer * inner, 2, 3, [&](int64_t col) {
    const int64_t o = col / inner, i = col - o * inner;
    sm::Online<double> s = sm::online_empty<double>();
    std::vector<double> row;
    for (int64_t j = 0; j < D; ++j) {
      row.push_back(x[sm::row_offset(o, j, D, inner, i)]);
      s = sm::online_add(s, row.back());
    }
    const sm::Online<double> ref = row_state(row, 1);
    if (s.max != ref.max || s.sum != ref.sum) fail_case("softmax columns", "");
  });
}

// NLL terms and their adjoint on random (N, C, S).
void check_nll() {
  const int64_t N = uniform(1, 5), C = uniform(1, 6), S = uniform(1, 4), ignore = -100;
  const bool weighted = uniform(0, 1);
  std::vector<double> logp(N * C * S), w(C), g_loss(N * S), g_smooth(N * S);
  std::vector<int64_t> target(N * S);
  for (double& v : logp) v = normal();
  for (double& v : w) v = std::fabs(normal());
  for (double& v : g_loss) v = normal();
  for (double& v : g_smooth) v = normal();
  for (int64_t& t : target) t = uniform(0, 5) == 0 ? ignore : uniform(-1, C);
  const double* pw = weighted ? w.data() : nullptr;
  double lhs = 0, rhs = 0;  // <dlogp, logp> and <g_loss, loss> + <g_smooth, smooth>
  simulate_each(N * S, 2, 5, [&](int64_t q) {
    const sm::NllTerm<double> r =
        sm::nll_term(logp.data(), target.data(), pw, ignore, C, S, true, q);
    const int64_t t = target[q], n = q / S, s = q % S;
    const bool kept = t != ignore && t >= 0 && t < C;
    double smooth = 0;
    for (int64_t c = 0; c < C && kept; ++c) smooth -= (pw ? w[c] : 1.0) * logp[(n * C + c) * S + s];
    const double wt = kept ? (pw ? w[t] : 1.0) : 0.0;
    const double loss = kept ? -wt * logp[(n * C + t) * S + s] : 0.0;
    if (r.bad != (t != ignore && !kept) || r.weight != wt || r.loss != loss ||
        std::fabs(r.smooth - smooth) > 1e-12 * (1 + std::fabs(smooth)))
      fail_case("nll_term", ("N=" + std::to_string(N) + " C=" + std::to_string(C)).c_str());
    rhs += g_loss[q] * r.loss + g_smooth[q] * r.smooth;
  });
  simulate_each(N * C * S, 3, 4, [&](int64_t e) {
    lhs += logp[e] * sm::nll_grad(g_loss.data(), g_smooth.data(), target.data(), pw, ignore, C,
                                  S, e);
  });
  if (std::fabs(lhs - rhs) > 1e-9 * (1 + std::fabs(rhs))) fail_case("nll_grad adjoint", "");
}

}  // namespace

int main() {
  for (int64_t D : {1, 2, 5, 31, 32, 33, 100, 257, 1500})
    for (int64_t group : {1, 32, 256})
      for (int special = 0; special < 4; ++special) {
        check_row<float>(D, group, special);
        check_row<double>(D, group, special);
      }
  for (int i = 0; i < 50; ++i) {
    check_columns();
    check_nll();
  }
  if (g_failures) {
    std::printf("%d failures\n", g_failures);
    return 1;
  }
  std::printf("softmax: rows, columns and NLL agree with the float64 formulas\n");
  return 0;
}
