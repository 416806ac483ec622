// Batch normalisation on the GPU, for x (N, C, L) C-contiguous (L = H*W, or 1 for (N, C)).
//
//   mean[c] = sum x / M,  var[c] = sum (x - mean)^2 / M (biased),  M = N*L
//   invstd[c] = 1 / sqrt(var[c] + eps),  y = (x - mean) * invstd * w[c] + b[c]
// Backward with xhat = (x - mean) * invstd: db = sum dy, dw = sum dy * xhat,
//   training: dx = w * invstd * (dy - db/M - xhat * dw/M);  eval: dx = w * invstd * dy.
//
// A per-channel reduction is a grid of C * parts blocks (batchnorm_index.h says which
// elements each thread of each block visits): threads accumulate Welford states (forward) or
// the sums (sum dy, sum dy * (x - mean)) (backward) in float for float32 and double for
// float64, the block combines them with block_reduce and writes one partial per block in
// double; one thread per channel then merges its `parts` partials in double and writes the
// statistics (or the gradient coefficients). The elementwise passes (y, dx) are one thread per
// element with per-channel constants computed as on the CPU, in the input's type.
#include "cuda/batchnorm_index.h"
#include "cuda/block_reduce.cuh"
#include "cuda/kernels.h"
#include "cuda/launch.cuh"

namespace gradflow::cuda {
namespace {

constexpr int kReduceThreads = 256;

// partial[3b + (0, 1, 2)] = (count, mean, M2) of block b's partition.
template <typename T, typename A>
__global__ void __launch_bounds__(kReduceThreads) stats_kernel(const T* x, int64_t C, int64_t L,
                                                               int64_t M, int64_t parts,
                                                               double* partial) {
  for (int64_t b = blockIdx.x; b < C * parts; b += gridDim.x) {
    const int64_t c = b / parts;
    const bn::Span span = bn::part_span(b % parts, parts, M);
    bn::Welford<A> s = bn::thread_stats<T, A>(x, c, C, L, span, threadIdx.x, blockDim.x);
    s = block_reduce(s, CombineWith<bn::Welford<A>, bn::welford_merge<A>>(),
                     bn::Welford<A>{0, A(0), A(0)});
    if (threadIdx.x == 0) {
      partial[3 * b] = static_cast<double>(s.count);
      partial[3 * b + 1] = static_cast<double>(s.mean);
      partial[3 * b + 2] = static_cast<double>(s.m2);
    }
  }
}

// partial[2b + (0, 1)] = (sum dy, sum dy * (x - mean)) of block b's partition.
template <typename T, typename A>
__global__ void __launch_bounds__(kReduceThreads) grad_sums_kernel(const T* x, const T* dy,
                                                                   const T* mean, int64_t C,
                                                                   int64_t L, int64_t M,
                                                                   int64_t parts,
                                                                   double* partial) {
  for (int64_t b = blockIdx.x; b < C * parts; b += gridDim.x) {
    const int64_t c = b / parts;
    const bn::Span span = bn::part_span(b % parts, parts, M);
    bn::GradSums<A> s = bn::thread_grad_sums<T, A>(x, dy, mean[c], c, C, L, span, threadIdx.x,
                                                   blockDim.x);
    s = block_reduce(s, CombineWith<bn::GradSums<A>, bn::add_sums<A>>(),
                     bn::GradSums<A>{A(0), A(0)});
    if (threadIdx.x == 0) {
      partial[2 * b] = static_cast<double>(s.dy);
      partial[2 * b + 1] = static_cast<double>(s.dyx);
    }
  }
}

template <typename T>
struct FinishStats {
  const double* partial;
  int64_t parts;
  double eps;
  T *mean, *var, *invstd;
  __device__ void operator()(int64_t c) const {
    bn::Welford<double> s{0, 0.0, 0.0};
    for (int64_t k = 0; k < parts; ++k) {
      const double* p = partial + 3 * (c * parts + k);
      s = bn::welford_merge(s, bn::Welford<double>{static_cast<int64_t>(p[0]), p[1], p[2]});
    }
    const bn::Stats st = bn::finish_stats(s, eps);
    mean[c] = static_cast<T>(st.mean);
    var[c] = static_cast<T>(st.var);
    invstd[c] = static_cast<T>(st.invstd);
  }
};

// coef[3c + (0, 1, 2)] = (a, k, d) of dx = a * dy + k * x + d; db, dw when wanted.
template <typename T>
struct FinishGrad {
  const double* partial;
  int64_t parts;
  const T *mean, *invstd, *w;
  bool training;
  double M;
  T *coef, *dw, *db;
  __device__ void operator()(int64_t c) const {
    double sdy = 0, sdyx = 0;
    for (int64_t k = 0; k < parts; ++k) {
      sdy += partial[2 * (c * parts + k)];
      sdyx += partial[2 * (c * parts + k) + 1];
    }
    if (db) db[c] = static_cast<T>(sdy);
    if (dw) dw[c] = static_cast<T>(sdyx * static_cast<double>(invstd[c]));
    const bn::GradCoef g = bn::grad_coef(sdy, sdyx, mean[c], invstd[c], w ? double(w[c]) : 1.0,
                                         training, M);
    coef[3 * c] = static_cast<T>(g.a);
    coef[3 * c + 1] = static_cast<T>(g.k);
    coef[3 * c + 2] = static_cast<T>(g.d);
  }
};

template <typename T>
struct Apply {
  int64_t C, L;
  const T *x, *mean, *invstd, *w, *b;
  T* y;
  __device__ void operator()(int64_t e) const {
    const int64_t c = bn::channel_of(e, C, L);
    const T scale = (w ? w[c] : T(1)) * invstd[c], shift = (b ? b[c] : T(0)) - mean[c] * scale;
    y[e] = x[e] * scale + shift;
  }
};

template <typename T>
struct ApplyGrad {
  int64_t C, L;
  const T *x, *dy, *coef;
  T* dx;
  __device__ void operator()(int64_t e) const {
    const int64_t c = bn::channel_of(e, C, L);
    dx[e] = coef[3 * c] * dy[e] + coef[3 * c + 1] * x[e] + coef[3 * c + 2];
  }
};

// Partitions per channel: enough blocks to fill the device (about 4 per multiprocessor), but
// at least 2048 elements (8 per thread) per partition.
int64_t partitions(int64_t C, int64_t M) {
  const int64_t want = (4 * int64_t(sm_count()) + C - 1) / C;
  const int64_t most = M / 2048 > 1 ? M / 2048 : 1;
  return want < most ? want : most;
}

int reduce_grid(int64_t blocks) {
  const int64_t cap = 16 * int64_t(sm_count());
  return static_cast<int>(blocks < cap ? blocks : cap);
}

}  // namespace

void batch_norm_train(const DeviceArray& x, const DeviceArray* w, const DeviceArray* b,
                      double eps, const DeviceArray& y, const DeviceArray& mean,
                      const DeviceArray& var, const DeviceArray& invstd) {
  const int64_t N = x.shape[0], C = x.shape[1], L = x.shape[2], M = N * L;
  if (C == 0 || M == 0) return;
  const int64_t parts = partitions(C, M);
  DeviceArray partial = empty({3 * C * parts}, DType::f64);
  dispatch_float(x.dtype, [&](auto t) {
    using T = decltype(t);
    stats_kernel<T, T><<<reduce_grid(C * parts), kReduceThreads, 0, cuda_stream()>>>(
        ptr<T>(x), C, L, M, parts, ptr<double>(partial));
    check_launch("batch_norm statistics");
    launch_each("batch_norm statistics", C,
                FinishStats<T>{ptr<double>(partial), parts, eps, ptr<T>(mean), ptr<T>(var),
                               ptr<T>(invstd)});
  });
  batch_norm_apply(x, mean, invstd, w, b, y);
}

void batch_norm_apply(const DeviceArray& x, const DeviceArray& mean, const DeviceArray& invstd,
                      const DeviceArray* w, const DeviceArray* b, const DeviceArray& y) {
  const int64_t C = x.shape[1], L = x.shape[2];
  dispatch_float(x.dtype, [&](auto t) {
    using T = decltype(t);
    launch_each("batch_norm", x.numel(),
                Apply<T>{C, L, ptr<T>(x), ptr<T>(mean), ptr<T>(invstd), cptr<T>(w), cptr<T>(b),
                         ptr<T>(y)});
  });
}

void batch_norm_backward(const DeviceArray& x, const DeviceArray& dy, const DeviceArray& mean,
                         const DeviceArray& invstd, const DeviceArray* w, bool training,
                         const DeviceArray* dx, const DeviceArray* dw, const DeviceArray* db) {
  const int64_t N = x.shape[0], C = x.shape[1], L = x.shape[2], M = N * L;
  if (C == 0) return;
  const int64_t parts = partitions(C, M > 0 ? M : 1);
  DeviceArray partial = empty({2 * C * parts}, DType::f64);
  DeviceArray coef = empty({3 * C}, x.dtype);
  dispatch_float(x.dtype, [&](auto t) {
    using T = decltype(t);
    grad_sums_kernel<T, T><<<reduce_grid(C * parts), kReduceThreads, 0, cuda_stream()>>>(
        ptr<T>(x), ptr<T>(dy), ptr<T>(mean), C, L, M, parts, ptr<double>(partial));
    check_launch("batch_norm_backward sums");
    launch_each("batch_norm_backward", C,
                FinishGrad<T>{ptr<double>(partial), parts, ptr<T>(mean), ptr<T>(invstd),
                              cptr<T>(w), training, static_cast<double>(M), ptr<T>(coef),
                              dw ? ptr<T>(*dw) : nullptr, db ? ptr<T>(*db) : nullptr});
    if (dx)
      launch_each("batch_norm_backward", x.numel(),
                  ApplyGrad<T>{C, L, ptr<T>(x), ptr<T>(dy), ptr<T>(coef), ptr<T>(*dx)});
  });
}

}  // namespace gradflow::cuda
