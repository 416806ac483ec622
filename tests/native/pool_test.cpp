// link: csrc/cpu/pool.cpp
// The CUDA pooling kernels' per-thread bodies (csrc/cuda/pool_index.h), launched on the host
// as pool.cu launches them, against the CPU kernels on random shapes: values and indices bit
// for bit (NaN and -inf included), every kernel, float and double.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "cpu/pool.h"
#include "cuda/pool_index.h"
#include "launch_sim.h"

namespace pool = gradflow::cuda::pool;
namespace cpu = gradflow::cpu;

namespace {

std::mt19937_64 rng(1234);

int64_t uniform(int64_t lo, int64_t hi) {
  return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
}

// The output size rule of bind_geometry.h (the geometry both modules compute on the host).
int64_t pool_out(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil_mode) {
  const int64_t span = in + 2 * p - d * (k - 1) - 1;
  int64_t out = (span + (ceil_mode ? s - 1 : 0)) / s + 1;
  if (span < 0) out = span / s + (span % s != 0 && !ceil_mode ? 0 : 1);
  if (ceil_mode && (out - 1) * s >= in + p) --out;
  return out;
}

template <typename T>
std::vector<T> random_values(int64_t n, bool specials) {
  std::normal_distribution<double> normal;
  std::vector<T> v(static_cast<size_t>(n));
  for (T& x : v) {
    x = static_cast<T>(normal(rng));
    if (specials && uniform(0, 40) == 0) x = std::numeric_limits<T>::quiet_NaN();
    if (specials && uniform(0, 40) == 0) x = -std::numeric_limits<T>::infinity();
    if (uniform(0, 8) == 0) x = T(1);  // ties
  }
  return v;
}

struct Case {
  pool::Geom g;
  bool ceil_mode, cip;
  int64_t divisor;
  std::string name;
};

Case random_case() {
  Case c{};
  pool::Geom& g = c.g;
  g.P = uniform(1, 3);
  g.kh = uniform(1, 4);
  g.kw = uniform(1, 4);
  g.sh = uniform(1, 3);
  g.sw = uniform(1, 3);
  g.ph = uniform(0, g.kh / 2);
  g.pw = uniform(0, g.kw / 2);
  g.dh = uniform(1, 3);
  g.dw = uniform(1, 3);
  g.H = uniform(1, 11);
  g.W = uniform(1, 11);
  c.ceil_mode = uniform(0, 1);
  c.cip = uniform(0, 1);
  c.divisor = uniform(0, 2) == 0 ? uniform(1, 7) : 0;
  c.name = "P=" + std::to_string(g.P) + " H=" + std::to_string(g.H) + " W=" +
           std::to_string(g.W) + " k=" + std::to_string(g.kh) + "x" + std::to_string(g.kw) +
           " s=" + std::to_string(g.sh) + "x" + std::to_string(g.sw) + " p=" +
           std::to_string(g.ph) + "x" + std::to_string(g.pw) + " d=" + std::to_string(g.dh) +
           "x" + std::to_string(g.dw) + " ceil=" + std::to_string(c.ceil_mode) + " cip=" +
           std::to_string(c.cip) + " div=" + std::to_string(c.divisor);
  return c;
}

cpu::PoolGeom to_cpu(const pool::Geom& g) {
  return {g.P, g.H, g.W, g.OH, g.OW, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw};
}

// Small grids, so that the grid-stride loops wrap around.
int64_t grid_for(int64_t n) { return 1 + n % 3; }
constexpr int64_t kBlock = 32;

template <typename T>
void check_max(pool::Geom g, bool adaptive, const std::string& name) {
  const std::vector<T> x = random_values<T>(g.P * g.H * g.W, true);
  const int64_t n = g.P * g.OH * g.OW;
  std::vector<T> y(n), y_ref(n);
  std::vector<int64_t> idx(n), idx_ref(n);
  simulate_each(n, grid_for(n), kBlock, [&](int64_t o) {
    const pool::MaxResult<T> r = adaptive ? pool::adaptive_max_output(g, x.data(), o)
                                          : pool::max_pool_output(g, x.data(), o);
    y[o] = r.value;
    idx[o] = r.index;
  });
  if (adaptive)
    cpu::adaptive_max_pool2d_forward<T>(to_cpu(g), x.data(), y_ref.data(), idx_ref.data());
  else
    cpu::max_pool2d_forward<T>(to_cpu(g), x.data(), y_ref.data(), idx_ref.data());
  for (int64_t o = 0; o < n; ++o)
    if (!same(y[o], y_ref[o]) || idx[o] != idx_ref[o]) {
      fail_case(adaptive ? "adaptive_max_pool2d" : "max_pool2d", name.c_str());
      return;
    }
  // The backward scatter, with the forward's indices plus some out of range.
  std::vector<T> dy = random_values<T>(n, false), dx(g.P * g.H * g.W, T(0)), dx_ref(dx.size());
  if (n) idx[uniform(0, n - 1)] = -1;
  if (n) idx[uniform(0, n - 1)] = g.H * g.W;
  simulate_each(n, 1, 1, [&](int64_t i) {  // atomics: any order; this one is the CPU's
    const int64_t t = pool::scatter_target(g, idx.data(), i);
    if (t >= 0) dx[t] += dy[i];
  });
  cpu::index_scatter_add<T>(to_cpu(g), dy.data(), idx.data(), dx_ref.data());
  for (size_t e = 0; e < dx.size(); ++e)
    if (!same(dx[e], dx_ref[e])) {
      fail_case("max_pool2d_backward", name.c_str());
      return;
    }
}

template <typename T>
void check_avg(const Case& c) {
  const pool::Geom& g = c.g;
  const std::vector<T> x = random_values<T>(g.P * g.H * g.W, false);
  const int64_t n = g.P * g.OH * g.OW, m = g.P * g.H * g.W;
  std::vector<T> y(n), y_ref(n), dx(m), dx_ref(m);
  simulate_each(n, grid_for(n), kBlock, [&](int64_t o) {
    y[o] = pool::avg_pool_output(g, x.data(), o, c.cip, c.divisor);
  });
  cpu::avg_pool2d_forward<T>(to_cpu(g), c.cip, c.divisor, x.data(), y_ref.data());
  const std::vector<T> dy = random_values<T>(n, false);
  simulate_each(m, grid_for(m), kBlock, [&](int64_t e) {
    dx[e] = pool::avg_pool_grad_input(g, dy.data(), e, c.cip, c.divisor);
  });
  cpu::avg_pool2d_backward<T>(to_cpu(g), c.cip, c.divisor, dy.data(), dx_ref.data());
  for (int64_t o = 0; o < n; ++o)
    if (!same(y[o], y_ref[o])) return fail_case("avg_pool2d", c.name.c_str());
  for (int64_t e = 0; e < m; ++e)
    if (!same(dx[e], dx_ref[e])) return fail_case("avg_pool2d_backward", c.name.c_str());
}

template <typename T>
void check_adaptive_avg(const pool::Geom& g, const std::string& name) {
  const std::vector<T> x = random_values<T>(g.P * g.H * g.W, false);
  const int64_t n = g.P * g.OH * g.OW, m = g.P * g.H * g.W;
  std::vector<T> y(n), y_ref(n), dx(m), dx_ref(m);
  simulate_each(n, grid_for(n), kBlock,
                [&](int64_t o) { y[o] = pool::adaptive_avg_output(g, x.data(), o); });
  cpu::adaptive_avg_pool2d_forward<T>(to_cpu(g), x.data(), y_ref.data());
  const std::vector<T> dy = random_values<T>(n, false);
  simulate_each(m, grid_for(m), kBlock,
                [&](int64_t e) { dx[e] = pool::adaptive_avg_grad_input(g, dy.data(), e); });
  cpu::adaptive_avg_pool2d_backward<T>(to_cpu(g), dy.data(), dx_ref.data());
  for (int64_t o = 0; o < n; ++o)
    if (!same(y[o], y_ref[o])) return fail_case("adaptive_avg_pool2d", name.c_str());
  for (int64_t e = 0; e < m; ++e)
    if (!same(dx[e], dx_ref[e])) return fail_case("adaptive_avg_pool2d_backward", name.c_str());
}

// max_unpool2d with distinct indices (repeated ones race on the GPU, as in PyTorch).
template <typename T>
void check_unpool(pool::Geom g, const std::string& name) {
  const int64_t L = g.OH * g.OW, HW = g.H * g.W;
  if (L > HW) return;
  std::vector<int64_t> idx(g.P * L);
  for (int64_t p = 0; p < g.P; ++p) {
    std::vector<int64_t> perm(HW);
    for (int64_t i = 0; i < HW; ++i) perm[i] = i;
    std::shuffle(perm.begin(), perm.end(), rng);
    for (int64_t l = 0; l < L; ++l) idx[p * L + l] = perm[l];
  }
  const std::vector<T> x = random_values<T>(g.P * L, false);
  std::vector<T> y(g.P * HW, T(0)), y_ref(y.size());
  simulate_each(g.P * L, grid_for(g.P * L), kBlock, [&](int64_t i) {
    const int64_t t = pool::scatter_target(g, idx.data(), i);
    if (t >= 0) y[t] = x[i];
  });
  cpu::index_scatter<T>(to_cpu(g), x.data(), idx.data(), y_ref.data());
  for (size_t e = 0; e < y.size(); ++e)
    if (!same(y[e], y_ref[e])) return fail_case("max_unpool2d", name.c_str());
}

// gradflow/ops/pool.py's _interp_matrix, step for step: the (n_out, n_in) matrix of one axis.
std::vector<double> interp_matrix(int64_t n_in, int64_t n_out, double scale, bool bilinear,
                                  bool align_corners) {
  std::vector<double> a(n_out * n_in, 0.0);
  const double ratio = scale > 0 ? 1.0 / scale : double(n_in) / double(n_out);
  for (int64_t dst = 0; dst < n_out; ++dst) {
    if (!bilinear) {
      a[dst * n_in + std::min<int64_t>(int64_t(std::floor(dst * ratio)), n_in - 1)] = 1.0;
      continue;
    }
    const double src = align_corners ? (n_out > 1 ? dst * (double(n_in - 1) / (n_out - 1)) : 0.0)
                                     : std::max((dst + 0.5) * ratio - 0.5, 0.0);
    const int64_t i0 = std::min<int64_t>(int64_t(std::floor(src)), n_in - 1);
    const int64_t i1 = std::min<int64_t>(i0 + 1, n_in - 1);
    a[dst * n_in + i0] += 1.0 - (src - i0);
    a[dst * n_in + i1] += src - i0;
  }
  return a;
}

// interpolate: the per-thread blend against A_h @ x @ A_w^T, and the scatter as its adjoint.
void check_resize() {
  pool::Geom g{};
  g.P = uniform(1, 3);
  g.H = uniform(1, 9);
  g.W = uniform(1, 9);
  const bool bilinear = uniform(0, 1), ac = bilinear && uniform(0, 1), by_scale = uniform(0, 1);
  pool::Resize r{0.0, 0.0, bilinear, ac};
  if (by_scale) {
    r.sh = 0.3 + 0.25 * double(uniform(0, 12));
    r.sw = 0.3 + 0.25 * double(uniform(0, 12));
    g.OH = std::max<int64_t>(1, int64_t(std::floor(g.H * r.sh)));
    g.OW = std::max<int64_t>(1, int64_t(std::floor(g.W * r.sw)));
  } else {
    g.OH = uniform(1, 12);
    g.OW = uniform(1, 12);
  }
  const std::string name = "resize P=" + std::to_string(g.P) + " " + std::to_string(g.H) + "x" +
                           std::to_string(g.W) + " -> " + std::to_string(g.OH) + "x" +
                           std::to_string(g.OW) + " bilinear=" + std::to_string(bilinear) +
                           " ac=" + std::to_string(ac) + " scale=" + std::to_string(r.sh);
  const std::vector<double> ah = interp_matrix(g.H, g.OH, r.sh, bilinear, ac);
  const std::vector<double> aw = interp_matrix(g.W, g.OW, r.sw, bilinear, ac);
  const std::vector<double> x = random_values<double>(g.P * g.H * g.W, false);
  const int64_t n = g.P * g.OH * g.OW;
  std::vector<double> y(n), dy = random_values<double>(n, false), dx(x.size(), 0.0);
  simulate_each(n, grid_for(n), kBlock,
                [&](int64_t o) { y[o] = pool::resize_output(g, r, x.data(), o); });
  simulate_each(n, grid_for(n), kBlock, [&](int64_t o) {
    pool::resize_scatter(g, r, dy.data(), o, [&](int64_t at, double v) { dx[at] += v; });
  });
  double lhs = 0, rhs = 0;  // <y, dy> = <x, dx> (adjoint)
  for (int64_t o = 0; o < n; ++o) {
    const pool::Pos q = pool::split(o, g.OH, g.OW);
    double ref = 0;
    for (int64_t h = 0; h < g.H; ++h)
      for (int64_t w = 0; w < g.W; ++w)
        ref += ah[q.h * g.H + h] * aw[q.w * g.W + w] * x[(q.p * g.H + h) * g.W + w];
    if (std::fabs(y[o] - ref) > 1e-12 * (1 + std::fabs(ref)))
      return fail_case("interpolate", name.c_str());
    lhs += y[o] * dy[o];
  }
  for (size_t e = 0; e < x.size(); ++e) rhs += x[e] * dx[e];
  if (std::fabs(lhs - rhs) > 1e-10 * (1 + std::fabs(lhs)))
    fail_case("interpolate_backward (adjoint)", name.c_str());
}

template <typename T>
void run_case(Case c) {
  pool::Geom& g = c.g;
  g.OH = pool_out(g.H, g.kh, g.sh, g.ph, g.dh, c.ceil_mode);
  g.OW = pool_out(g.W, g.kw, g.sw, g.pw, g.dw, c.ceil_mode);
  if (g.OH >= 1 && g.OW >= 1) check_max<T>(g, false, c.name);
  pool::Geom a = g;  // the avg pools have no dilation
  a.dh = a.dw = 1;
  a.OH = pool_out(a.H, a.kh, a.sh, a.ph, 1, c.ceil_mode);
  a.OW = pool_out(a.W, a.kw, a.sw, a.pw, 1, c.ceil_mode);
  if (a.OH >= 1 && a.OW >= 1) check_avg<T>(Case{a, c.ceil_mode, c.cip, c.divisor, c.name});
  pool::Geom ad = g;
  ad.OH = uniform(1, 2 * g.H);
  ad.OW = uniform(1, 2 * g.W);
  const std::string an = c.name + " adaptive out=" + std::to_string(ad.OH) + "x" +
                         std::to_string(ad.OW);
  check_max<T>(ad, true, an);
  check_adaptive_avg<T>(ad, an);
  check_unpool<T>(ad, an);
}

}  // namespace

int main() {
  for (int i = 0; i < 400; ++i) {
    const Case c = random_case();
    run_case<float>(c);
    run_case<double>(c);
    check_resize();
  }
  // Zero planes: nothing to do, nothing touched.
  simulate_each(0, 1, kBlock, [](int64_t) { std::exit(1); });
  if (g_failures) {
    std::printf("%d failures\n", g_failures);
    return 1;
  }
  std::printf("pool: all cases agree with the CPU kernels\n");
  return 0;
}
