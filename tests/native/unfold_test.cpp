// The CPU batch unfold / fold (csrc/cpu/im2col.h, F.unfold and F.fold) under ASan/UBSan, against
// a direct index loop over many geometries: size 1, odd sizes, padding, stride, dilation,
// kernel = padded input, an empty batch. fold is checked as unfold's adjoint:
// <unfold(x), c> == <x, fold(c)>. Outputs start as NaN, so an entry the kernel does not write
// shows up; fold's output must be fully overwritten (it zeroes before it sums).
// link: csrc/cpu/im2col.cpp
#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <vector>

#include "cpu/im2col.h"

using gradflow::ConvGeom;

namespace {

int64_t out_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d) {
  return (in + 2 * p - d * (k - 1) - 1) / s + 1;
}

// cols[n, (c*kh + i)*kw + j, oh*OW + ow] = x[n, c, oh*sh - ph + i*dh, ow*sw - pw + j*dw] or 0.
std::vector<double> reference(int64_t N, const ConvGeom& g, const std::vector<double>& x) {
  const int64_t L = g.OH * g.OW, rows = g.C * g.kh * g.kw;
  std::vector<double> cols(N * rows * L, 0.0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < g.C; ++c)
      for (int64_t i = 0; i < g.kh; ++i)
        for (int64_t j = 0; j < g.kw; ++j)
          for (int64_t oh = 0; oh < g.OH; ++oh)
            for (int64_t ow = 0; ow < g.OW; ++ow) {
              const int64_t h = oh * g.sh - g.ph + i * g.dh, w = ow * g.sw - g.pw + j * g.dw;
              if (h < 0 || h >= g.H || w < 0 || w >= g.W) continue;
              cols[(n * rows + (c * g.kh + i) * g.kw + j) * L + oh * g.OW + ow] =
                  x[((n * g.C + c) * g.H + h) * g.W + w];
            }
  return cols;
}

bool check(int64_t N, int64_t C, int64_t H, int64_t W, int64_t kh, int64_t kw, int64_t s,
           int64_t p, int64_t d, std::mt19937& rng) {
  ConvGeom g{C, H, W, kh, kw, s, s + 1, p, p, d, d, 0, 0};
  g.OH = out_size(H, kh, g.sh, g.ph, g.dh);
  g.OW = out_size(W, kw, g.sw, g.pw, g.dw);
  if (g.OH < 1 || g.OW < 1) return true;  // the binding refuses it before any kernel runs
  std::uniform_real_distribution<double> uni(-1.0, 1.0);
  const int64_t L = g.OH * g.OW, rows = C * kh * kw;
  std::vector<double> x(N * C * H * W), c(N * rows * L);
  for (double& v : x) v = uni(rng);
  for (double& v : c) v = uni(rng);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::vector<double> cols(c.size(), nan), image(x.size(), nan);
  gradflow::cpu::unfold<double>(N, g, x.data(), cols.data());
  gradflow::cpu::fold<double>(N, g, c.data(), image.data());
  const std::vector<double> want = reference(N, g, x);
  double lhs = 0.0, rhs = 0.0;
  for (size_t e = 0; e < cols.size(); ++e) {
    if (cols[e] != want[e]) {
      std::printf("unfold mismatch at %zu: N=%ld C=%ld H=%ld W=%ld k=%ldx%ld s=%ld p=%ld d=%ld\n",
                  e, (long)N, (long)C, (long)H, (long)W, (long)kh, (long)kw, (long)s, (long)p,
                  (long)d);
      return false;
    }
    lhs += cols[e] * c[e];
  }
  for (size_t e = 0; e < image.size(); ++e) rhs += x[e] * image[e];  // NaN if fold skipped one
  if (!(std::fabs(lhs - rhs) <= 1e-9 * (1.0 + std::fabs(lhs)))) {
    std::printf("fold is not unfold's adjoint (%g vs %g): N=%ld C=%ld H=%ld W=%ld k=%ldx%ld "
                "s=%ld p=%ld d=%ld\n", lhs, rhs, (long)N, (long)C, (long)H, (long)W, (long)kh,
                (long)kw, (long)s, (long)p, (long)d);
    return false;
  }
  return true;
}

}  // namespace

int main() {
  std::mt19937 rng(16);
  int cases = 0;
  for (int64_t N : {0, 1, 3})
    for (int64_t C : {1, 2})
      for (int64_t H : {1, 4, 7})
        for (int64_t W : {1, 5})
          for (int64_t kh : {1, 2, 3})
            for (int64_t kw : {1, 3})
              for (int64_t s : {1, 2})
                for (int64_t p : {0, 1})
                  for (int64_t d : {1, 2}) {
                    if (!check(N, C, H, W, kh, kw, s, p, d, rng)) return 1;
                    ++cases;
                  }
  std::printf("unfold/fold: %d geometries ok\n", cases);
  return 0;
}
