// The softmax family and the NLL loss on the GPU (math in softmax_index.h).
//
// softmax / log_softmax over axis D of x viewed as (outer, D, inner), C-contiguous:
//   inner == 1 (the last axis): a warp per row (D <= 1024) or a block per row (longer rows);
//     its threads stride over the row keeping online (max, sum) states, combine them with
//     warp_allreduce / block_reduce (one pass over x for the statistics), then write the row;
//   inner > 1: one thread per (o, i) column walks its D values (coalesced across i).
// Backward from the saved output y and the gradient g, with the same row split:
//   softmax: dx = y * (g - sum g*y);  log_softmax: dx = g - exp(y) * sum g.
// Float32 accumulates in float, float64 in double.
//
// NLL: one thread per position for the forward terms (loss, weight, smoothing), one thread per
// element of (N, C, S) for the gradient; no atomics, no one-hot matrix. A class index out of
// range sets the deferred error flag (raised at the next synchronisation, runtime.h).
#include "cuda/block_reduce.cuh"
#include "cuda/kernels.h"
#include "cuda/launch.cuh"
#include "cuda/softmax_index.h"

namespace gradflow::cuda {
namespace {

constexpr int kRowThreads = 256;

template <typename A>
struct Add {
  __device__ A operator()(A a, A b) const { return a + b; }
};

// Group threads per row: 32 (a warp) or kRowThreads (the block); every lane gets the total.
template <int Group, typename V, typename Op>
__device__ __forceinline__ V row_reduce(V v, Op op, V identity) {
  if constexpr (Group == 32)
    return warp_allreduce(v, op);
  else
    return block_reduce(v, op, identity);
}

template <typename T, typename A, int Group>
__global__ void __launch_bounds__(kRowThreads) softmax_rows(const T* x, T* y, int64_t rows,
                                                            int64_t D, bool log) {
  constexpr int kRowsPerBlock = kRowThreads / Group;
  const int lane = threadIdx.x % Group;
  for (int64_t first = blockIdx.x * int64_t(kRowsPerBlock); first < rows;
       first += int64_t(gridDim.x) * kRowsPerBlock) {
    const int64_t r = first + threadIdx.x / Group;
    const T* xr = x + r * D;
    softmax::Online<A> s = softmax::online_empty<A>();
    if (r < rows)
      for (int64_t j = lane; j < D; j += Group) s = softmax::online_add(s, A(xr[j]));
    s = row_reduce<Group>(s, CombineWith<softmax::Online<A>, softmax::online_merge<A>>(),
                          softmax::online_empty<A>());
    if (r < rows)
      for (int64_t j = lane; j < D; j += Group)
        y[r * D + j] = softmax::softmax_value(xr[j], s, log);
  }
}

template <typename T, typename A, int Group>
__global__ void __launch_bounds__(kRowThreads) softmax_grad_rows(const T* y, const T* g, T* dx,
                                                                 int64_t rows, int64_t D,
                                                                 bool log) {
  constexpr int kRowsPerBlock = kRowThreads / Group;
  const int lane = threadIdx.x % Group;
  for (int64_t first = blockIdx.x * int64_t(kRowsPerBlock); first < rows;
       first += int64_t(gridDim.x) * kRowsPerBlock) {
    const int64_t r = first + threadIdx.x / Group;
    A sum = A(0);
    if (r < rows)
      for (int64_t j = lane; j < D; j += Group)
        sum += A(softmax::grad_row_term(g[r * D + j], y[r * D + j], log));
    sum = row_reduce<Group>(sum, Add<A>(), A(0));
    if (r < rows)
      for (int64_t j = lane; j < D; j += Group)
        dx[r * D + j] = softmax::softmax_grad(g[r * D + j], y[r * D + j], sum, log);
  }
}

template <typename T, typename A>
struct SoftmaxColumn {
  const T* x;
  T* y;
  int64_t D, inner;
  bool log;
  __device__ void operator()(int64_t col) const {
    const int64_t o = col / inner, i = col - o * inner;
    softmax::Online<A> s = softmax::online_empty<A>();
    for (int64_t j = 0; j < D; ++j)
      s = softmax::online_add(s, A(x[softmax::row_offset(o, j, D, inner, i)]));
    for (int64_t j = 0; j < D; ++j) {
      const int64_t at = softmax::row_offset(o, j, D, inner, i);
      y[at] = softmax::softmax_value(x[at], s, log);
    }
  }
};

template <typename T, typename A>
struct SoftmaxGradColumn {
  const T *y, *g;
  T* dx;
  int64_t D, inner;
  bool log;
  __device__ void operator()(int64_t col) const {
    const int64_t o = col / inner, i = col - o * inner;
    A sum = A(0);
    for (int64_t j = 0; j < D; ++j) {
      const int64_t at = softmax::row_offset(o, j, D, inner, i);
      sum += A(softmax::grad_row_term(g[at], y[at], log));
    }
    for (int64_t j = 0; j < D; ++j) {
      const int64_t at = softmax::row_offset(o, j, D, inner, i);
      dx[at] = softmax::softmax_grad(g[at], y[at], sum, log);
    }
  }
};

int row_grid(int64_t rows, int rows_per_block) {
  const int64_t need = (rows + rows_per_block - 1) / rows_per_block, cap = 16 * int64_t(sm_count());
  return static_cast<int>(need < cap ? need : cap);
}

// Runs the row kernel for `rows` rows of D (warp or block per row).
template <typename Warp, typename Block>
void launch_rows(const char* name, int64_t rows, int64_t D, Warp warp, Block block) {
  if (D <= 1024)
    warp(row_grid(rows, kRowThreads / 32));
  else
    block(row_grid(rows, 1));
  check_launch(name);
}

template <typename T>
struct NllForward {
  const T *logp, *w;
  const int64_t* target;
  int64_t ignore_index, C, S;
  T *loss, *weight, *smooth;
  int* bad;
  __device__ void operator()(int64_t q) const {
    const softmax::NllTerm<T> r =
        softmax::nll_term(logp, target, w, ignore_index, C, S, smooth != nullptr, q);
    loss[q] = r.loss;
    weight[q] = r.weight;
    if (smooth) smooth[q] = r.smooth;
    if (r.bad) *reinterpret_cast<volatile int*>(bad) = kDeferredTargetOutOfRange;
  }
};

template <typename T>
struct NllBackward {
  const T *g_loss, *g_smooth, *w;
  const int64_t* target;
  int64_t ignore_index, C, S;
  T* dlogp;
  __device__ void operator()(int64_t e) const {
    dlogp[e] = softmax::nll_grad(g_loss, g_smooth, target, w, ignore_index, C, S, e);
  }
};

}  // namespace

void softmax_forward(const DeviceArray& x, const DeviceArray& y, int64_t outer, int64_t D,
                     int64_t inner, bool log) {
  if (outer * D * inner == 0) return;
  dispatch_float(x.dtype, [&](auto t) {
    using T = decltype(t);
    const T* px = ptr<T>(x);
    T* py = ptr<T>(y);
    if (inner > 1) {
      launch_each("softmax", outer * inner, SoftmaxColumn<T, T>{px, py, D, inner, log});
      return;
    }
    launch_rows("softmax", outer, D,
        [&](int grid) { softmax_rows<T, T, 32><<<grid, kRowThreads, 0, cuda_stream()>>>(
                            px, py, outer, D, log); },
        [&](int grid) { softmax_rows<T, T, kRowThreads><<<grid, kRowThreads, 0, cuda_stream()>>>(
                            px, py, outer, D, log); });
  });
}

void softmax_backward(const DeviceArray& y, const DeviceArray& g, const DeviceArray& dx,
                      int64_t outer, int64_t D, int64_t inner, bool log) {
  if (outer * D * inner == 0) return;
  dispatch_float(y.dtype, [&](auto t) {
    using T = decltype(t);
    const T *py = ptr<T>(y), *pg = ptr<T>(g);
    T* pdx = ptr<T>(dx);
    if (inner > 1) {
      launch_each("softmax_backward", outer * inner,
                  SoftmaxGradColumn<T, T>{py, pg, pdx, D, inner, log});
      return;
    }
    launch_rows("softmax_backward", outer, D,
        [&](int grid) { softmax_grad_rows<T, T, 32><<<grid, kRowThreads, 0, cuda_stream()>>>(
                            py, pg, pdx, outer, D, log); },
        [&](int grid) {
          softmax_grad_rows<T, T, kRowThreads><<<grid, kRowThreads, 0, cuda_stream()>>>(
              py, pg, pdx, outer, D, log);
        });
  });
}

void nll_forward(const DeviceArray& logp, const DeviceArray& target, const DeviceArray* weight,
                 int64_t ignore_index, const DeviceArray& loss, const DeviceArray& w_out,
                 const DeviceArray* smooth) {
  const int64_t N = logp.shape[0], C = logp.shape[1], S = logp.shape[2];
  dispatch_float(logp.dtype, [&](auto t) {
    using T = decltype(t);
    launch_each("nll_loss", N * S,
                NllForward<T>{ptr<T>(logp), cptr<T>(weight), ptr<int64_t>(target), ignore_index,
                              C, S, ptr<T>(loss), ptr<T>(w_out),
                              smooth ? ptr<T>(*smooth) : nullptr, deferred_error_flag()});
  });
}

void nll_backward(const DeviceArray& g_loss, const DeviceArray* g_smooth,
                  const DeviceArray& target, const DeviceArray* weight, int64_t ignore_index,
                  const DeviceArray& dlogp) {
  const int64_t N = dlogp.shape[0], C = dlogp.shape[1], S = dlogp.shape[2];
  dispatch_float(dlogp.dtype, [&](auto t) {
    using T = decltype(t);
    launch_each("nll_loss_backward", N * C * S,
                NllBackward<T>{ptr<T>(g_loss), cptr<T>(g_smooth), cptr<T>(weight),
                               ptr<int64_t>(target), ignore_index, C, S, ptr<T>(dlogp)});
  });
}

}  // namespace gradflow::cuda
