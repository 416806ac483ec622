// The CUDA convolution's index math on the host: csrc/cuda/conv_index.h's per-thread bodies and
// the launch sequence of csrc/cuda/conv_chunks.h, run by an executor that visits every
// (block, thread) index of each grid-stride launch (checking that each element is visited
// exactly once) with a reference GEMM, against the CPU kernels over many shapes: size 1, odd
// sizes, padding, stride, dilation, groups (depthwise too), 1x1, kernel = input, empty batch,
// outputs below the natural size, and workspace caps that split the batch and the images.
// Workspaces start as NaN, so a read of an element no launch wrote shows up in the result.
// link: csrc/cpu/conv.cpp
// link: csrc/cpu/im2col.cpp
// link: csrc/cpu/gemm.cpp
// link: csrc/cpu/runtime.cpp
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "cpu/conv.h"
#include "cpu/im2col.h"
#include "cuda/conv_chunks.h"

namespace cv = gradflow::cuda::conv;
using gradflow::ConvGeom;
using gradflow::cuda::MatrixBatch;

namespace {

int failures = 0;

// The launches of conv.cu: `threads` per block, blocks = ceil(n / threads) capped at
// max_blocks (conv.cu caps them at 16 per multiprocessor), each thread striding by the grid.
template <typename T>
struct HostExec {
  int threads = 256;
  int64_t max_blocks = 2112;
  int64_t busy = 264;
  std::vector<std::unique_ptr<T[]>> held;

  T* workspace(int64_t n) {
    if (n == 0) return nullptr;
    held.push_back(std::make_unique<T[]>(n));
    std::fill(held.back().get(), held.back().get() + n, std::numeric_limits<T>::quiet_NaN());
    return held.back().get();
  }

  template <typename F>
  void run(int64_t n, const F& body) {
    if (n == 0) return;
    const int64_t blocks = std::min<int64_t>((n + threads - 1) / threads, max_blocks);
    std::vector<unsigned char> seen(n, 0);
    for (int64_t b = 0; b < blocks; ++b)
      for (int64_t t = 0; t < threads; ++t)
        for (int64_t e = b * threads + t; e < n; e += blocks * threads) {
          ++seen[e];
          body(e);
        }
    for (int64_t e = 0; e < n; ++e)
      if (seen[e] != 1) {
        std::printf("launch of %lld elements visits element %lld %d times\n", (long long)n,
                    (long long)e, seen[e]);
        ++failures;
        return;
      }
  }

  void gemm(int64_t batch, int64_t inner, int64_t m, int64_t n, int64_t k,
            MatrixBatch<const T> a, MatrixBatch<const T> b, MatrixBatch<T> c) {
    auto at = [inner](auto& op, int64_t p) {
      return op.ptr + p / inner * op.outer_stride + p % inner * op.inner_stride;
    };
    for (int64_t p = 0; p < batch; ++p) {
      const T *pa = at(a, p), *pb = at(b, p);
      T* pc = at(c, p);
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) {
          T s = 0;
          for (int64_t q = 0; q < k; ++q) s += pa[i * a.ld + q] * pb[q * b.ld + j];
          pc[i * c.ld + j] = s;
        }
    }
  }

  void zero(T* p, int64_t n) { std::fill(p, p + n, T(0)); }
  int64_t gemm_tiles(int64_t m, int64_t n) const { return ((m + 127) / 128) * ((n + 127) / 128); }
  int64_t busy_blocks() const { return busy; }
};

struct Case {
  int64_t N, groups, Cout;
  ConvGeom g;  // per group; OH/OW possibly below the natural size
};

std::string describe(const Case& c, int64_t cap, int64_t blocks) {
  const ConvGeom& g = c.g;
  char buf[400];
  std::snprintf(buf, sizeof buf,
                "N=%lld groups=%lld Cout=%lld C/g=%lld HxW=%lldx%lld k=%lldx%lld s=%lld,%lld "
                "p=%lld,%lld d=%lld,%lld out=%lldx%lld cap=%lld B max_blocks=%lld",
                (long long)c.N, (long long)c.groups, (long long)c.Cout, (long long)g.C,
                (long long)g.H, (long long)g.W, (long long)g.kh, (long long)g.kw,
                (long long)g.sh, (long long)g.sw, (long long)g.ph, (long long)g.pw,
                (long long)g.dh, (long long)g.dw, (long long)g.OH, (long long)g.OW,
                (long long)cap, (long long)blocks);
  return buf;
}

template <typename T>
bool close(const std::vector<T>& got, const std::vector<T>& want, const char* what,
           const std::string& shape) {
  const double tol = sizeof(T) == 8 ? 1e-11 : 2e-4;
  for (size_t i = 0; i < want.size(); ++i) {
    const double d = std::fabs(double(got[i]) - double(want[i]));
    if (!(d <= tol * (1 + std::fabs(double(want[i]))))) {
      std::printf("%s %s differs at %zu: got %g, want %g\n  %s\n", what,
                  sizeof(T) == 8 ? "double" : "float", i, double(got[i]), double(want[i]),
                  shape.c_str());
      ++failures;
      return false;
    }
  }
  return true;
}

template <typename T>
std::vector<T> random_vector(std::mt19937_64& rng, int64_t n) {
  std::uniform_real_distribution<double> u(-1, 1);
  std::vector<T> v(n);
  for (auto& e : v) e = T(u(rng));
  return v;
}

// The three maps through conv_chunks.h against cpu/conv.h on the same inputs.
template <typename T>
void check_pipeline(const Case& c, int64_t cap, int64_t max_blocks, std::mt19937_64& rng) {
  const ConvGeom& g = c.g;
  const cv::Conv conv{c.N, c.groups, c.Cout, g, cap};
  const int64_t Cin = conv.Cin(), K = conv.K(), L = conv.L();
  const auto x = random_vector<T>(rng, c.N * Cin * g.H * g.W);
  const auto w = random_vector<T>(rng, c.Cout * K);
  const auto b = random_vector<T>(rng, c.Cout);
  const auto dy = random_vector<T>(rng, c.N * c.Cout * L);
  const std::string shape = describe(c, cap, max_blocks);
  HostExec<T> ex;
  ex.max_blocks = max_blocks;
  ex.busy = max_blocks;  // small grids also ask for few split-K slices, large ones for many
  {
    std::vector<T> y(dy.size()), ref(dy.size());
    cv::forward<T>(ex, conv, x.data(), w.data(), b.data(), y.data());
    gradflow::cpu::conv2d_forward<T>(c.N, c.groups, c.Cout, g, x.data(), w.data(), b.data(),
                                     ref.data());
    close(y, ref, "forward", shape);
  }
  std::vector<T> dx(x.size()), dx_ref(x.size());
  cv::backward_input<T>(ex, conv, dy.data(), w.data(), dx.data());
  gradflow::cpu::conv2d_backward_input<T>(c.N, c.groups, c.Cout, g, dy.data(), w.data(),
                                          dx_ref.data());
  close(dx, dx_ref, "backward_input", shape);
  std::vector<T> dw(w.size(), T(7)), dw_ref(w.size());
  cv::backward_weight<T>(ex, conv, x.data(), dy.data(), dw.data());
  gradflow::cpu::conv2d_backward_weight<T>(c.N, c.groups, c.Cout, g, x.data(), dy.data(),
                                           dw_ref.data());
  close(dw, dw_ref, "backward_weight", shape);
}

// Im2col of every chunk against cpu::im2col of each of its images, column block by block.
void check_im2col(const Case& c, int64_t cap, int64_t max_blocks, std::mt19937_64& rng) {
  const cv::Conv conv{c.N, c.groups, c.Cout, c.g, cap};
  const int64_t Cin = conv.Cin(), HWC = Cin * conv.HW(), L = conv.L();
  ConvGeom all = c.g;  // one group of every input channel: the same rows, in the same order
  all.C = Cin;
  const auto x = random_vector<double>(rng, c.N * HWC);
  const cv::Plan p = conv.plan(sizeof(double));
  HostExec<double> ex;
  ex.max_blocks = max_blocks;
  for (int64_t ci = 0; ci < p.chunks; ++ci) {
    const cv::Chunk k = cv::chunk_at(p, c.N, L, ci);
    const int64_t ld = k.nb * k.lc;
    std::vector<double> col(conv.rows() * ld), ref(col.size());
    ex.run(Cin * ld, cv::Im2col<double>{c.g, Cin, k, x.data() + k.n0 * HWC, col.data()});
    for (int64_t i = 0; i < k.nb; ++i)
      gradflow::cpu::im2col(all, x.data() + (k.n0 + i) * HWC, k.l0, k.lc, ref.data() + i * k.lc,
                            ld);
    if (!close(col, ref, "im2col", describe(c, cap, max_blocks))) return;
  }
}

// Every chunk of the plan is inside the batch and the image, the chunks tile [0, N) x [0, L)
// exactly once, and a chunk's workspace fits the cap (when one column does).
void check_plan(int64_t N, int64_t L, int64_t cap_columns) {
  const cv::Plan p = cv::make_plan(N, L, cap_columns);
  std::vector<int> hits(N * L, 0);
  for (int64_t ci = 0; ci < p.chunks; ++ci) {
    const cv::Chunk k = cv::chunk_at(p, N, L, ci);
    const bool ok = k.nb >= 1 && k.lc >= 1 && k.n0 + k.nb <= N && k.l0 + k.lc <= L &&
                    k.nb * k.lc <= std::max<int64_t>(cap_columns, 1);
    if (!ok) {
      std::printf("plan N=%lld L=%lld cap=%lld: bad chunk %lld\n", (long long)N, (long long)L,
                  (long long)cap_columns, (long long)ci);
      ++failures;
      return;
    }
    for (int64_t n = k.n0; n < k.n0 + k.nb; ++n)
      for (int64_t l = k.l0; l < k.l0 + k.lc; ++l) ++hits[n * L + l];
  }
  for (int64_t i = 0; i < N * L; ++i)
    if (hits[i] != 1) {
      std::printf("plan N=%lld L=%lld cap=%lld: (n, l) = (%lld, %lld) covered %d times\n",
                  (long long)N, (long long)L, (long long)cap_columns, (long long)(i / L),
                  (long long)(i % L), hits[i]);
      ++failures;
      return;
    }
}

int64_t natural(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d) {
  return (in + 2 * p - d * (k - 1) - 1) / s + 1;
}

// A random valid case: the kernel fits the padded input; sometimes depthwise, 1x1, kernel equal
// to the input, or an output cut below the natural size (conv_transpose2d's output_padding).
Case random_case(std::mt19937_64& rng) {
  auto pick = [&rng](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  Case c;
  ConvGeom& g = c.g;
  const int64_t kind = pick(0, 5);
  c.groups = pick(1, 3);
  g.C = pick(1, 3);
  c.Cout = c.groups * pick(1, 3);
  if (kind == 1) {  // depthwise
    c.groups = pick(2, 5);
    g.C = 1;
    c.Cout = c.groups * pick(1, 2);
  }
  c.N = pick(0, 9) == 0 ? 0 : pick(1, 4);
  g.kh = pick(1, 4), g.kw = pick(1, 4);
  g.sh = pick(1, 3), g.sw = pick(1, 3), g.ph = pick(0, 2), g.pw = pick(0, 2);
  g.dh = pick(1, 2), g.dw = pick(1, 2);
  if (kind == 2 || (kind == 4 && pick(0, 1))) g.kh = g.kw = 1, g.sh = g.sw = 1, g.ph = g.pw = 0;
  g.H = std::max<int64_t>(1, g.dh * (g.kh - 1) + 1 - 2 * g.ph) + pick(0, 7);
  g.W = std::max<int64_t>(1, g.dw * (g.kw - 1) + 1 - 2 * g.pw) + pick(0, 7);
  if (kind == 3) g.ph = g.pw = 0, g.dh = g.dw = 1, g.H = g.kh, g.W = g.kw;  // kernel = input
  g.OH = natural(g.H, g.kh, g.sh, g.ph, g.dh);
  g.OW = natural(g.W, g.kw, g.sw, g.pw, g.dw);
  if (kind == 4) {  // grad_output below the natural size, sometimes of a 1x1 conv
    g.OH = std::max<int64_t>(1, g.OH - pick(0, 2));
    g.OW = std::max<int64_t>(1, g.OW - pick(0, 2));
  }
  return c;
}

}  // namespace

int main() {
  std::mt19937_64 rng(12345);
  for (int64_t N : {0, 1, 2, 5})
    for (int64_t L : {1, 2, 7, 30})
      for (int64_t cap : {0, 1, 3, 7, 29, 30, 31, 61, 200}) check_plan(N, L, cap);
  // Caps in bytes: far below one image (split images), a few images, everything at once.
  const int64_t caps[] = {64, 1000, 6000, int64_t(1) << 28};
  const int64_t grids[] = {1, 3, 2112};
  int cases = 0;
  for (int i = 0; i < 400 && failures < 5; ++i) {
    const Case c = random_case(rng);
    const int64_t cap = caps[i % 4], blocks = grids[i / 4 % 3];
    check_pipeline<double>(c, cap, blocks, rng);
    check_pipeline<float>(c, cap, blocks, rng);
    check_im2col(c, cap, blocks, rng);
    ++cases;
  }
  // Images wide enough for the weight gradient's split-K (slices of >= 256 columns, a last
  // slice shorter than the others) and, with the small cap, for runs of columns mid-row.
  Case wide[] = {
      {4, 2, 4, {2, 23, 21, 3, 3, 1, 1, 1, 1, 1, 1, 0, 0}},
      {3, 1, 5, {3, 30, 17, 2, 3, 1, 2, 0, 1, 2, 1, 0, 0}},
      {2, 3, 3, {1, 40, 40, 1, 1, 1, 1, 0, 0, 1, 1, 0, 0}},
  };
  for (Case& c : wide) {
    ConvGeom& g = c.g;
    g.OH = natural(g.H, g.kh, g.sh, g.ph, g.dh);
    g.OW = natural(g.W, g.kw, g.sw, g.pw, g.dw);
    for (int64_t cap : {int64_t(20000), int64_t(1) << 28}) {
      check_pipeline<double>(c, cap, 2112, rng);
      check_pipeline<float>(c, cap, 7, rng);
      ++cases;
    }
  }
  std::printf("conv_test: %d cases, %d failures\n", cases, failures);
  return failures == 0 ? 0 : 1;
}
