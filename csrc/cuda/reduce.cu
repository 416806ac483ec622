// Reductions. x is viewed as (outer dims..., reduced dims...); out[o] = op over the R
// elements x[o, r], out C-contiguous over the outer dims. A group of G threads (1, 32 or 256,
// chosen from the sizes) owns one output: its threads stride over r, then combine in shared
// memory as a tree. Floats accumulate in double, ints and bools in int64; max/min propagate
// NaN; mean divides the sum by R; argmax/argmin keep the first index of the extreme (or of
// the first NaN).
#include <cfloat>
#include <climits>

#include "cuda/iter.cuh"
#include "cuda/kernels.h"

namespace gradflow::cuda {
namespace {

constexpr int kThreads = 256;

template <typename Acc>
__device__ __forceinline__ Acc identity(Reduce op) {
  Acc lowest, highest;
  if constexpr (std::is_floating_point_v<Acc>) {
    lowest = -INFINITY;
    highest = INFINITY;
  } else {
    lowest = LLONG_MIN;
    highest = LLONG_MAX;
  }
  switch (op) {
    case Reduce::prod: case Reduce::all: return Acc(1);
    case Reduce::max: return lowest;
    case Reduce::min: return highest;
    default: return Acc(0);
  }
}

template <typename Acc>
__device__ __forceinline__ Acc combine(Reduce op, Acc a, Acc b) {
  switch (op) {
    case Reduce::prod: return a * b;
    case Reduce::max: return (a > b || is_nan(a)) ? a : b;
    case Reduce::min: return (a < b || is_nan(a)) ? a : b;
    case Reduce::all: return (a != Acc(0)) && (b != Acc(0)) ? Acc(1) : Acc(0);
    case Reduce::any: return (a != Acc(0)) || (b != Acc(0)) ? Acc(1) : Acc(0);
    default: return a + b;  // sum, mean
  }
}

template <typename T, typename O>
__global__ void __launch_bounds__(kThreads) reduce_kernel(int64_t n_out, int64_t R, Iter<1> outer,
                                                          Iter<1> inner, Reduce op, int group,
                                                          O* out, const T* x) {
  using Acc = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;
  __shared__ Acc partial[kThreads];
  const int lane = threadIdx.x % group;
  const int64_t o = blockIdx.x * int64_t(kThreads / group) + threadIdx.x / group;
  Acc acc = identity<Acc>(op);
  if (o < n_out) {
    int64_t base[1];
    outer.offsets(o, base);
    const bool truth = op == Reduce::all || op == Reduce::any;
    for (int64_t r = lane; r < R; r += group) {
      int64_t off[1];
      inner.offsets(r, off);
      const T v = x[base[0] + off[0]];
      acc = combine(op, acc, truth ? Acc(v != T(0)) : Acc(v));
    }
  }
  if (group > 1) {
    partial[threadIdx.x] = acc;
    for (int s = group / 2; s > 0; s /= 2) {
      __syncthreads();
      if (lane < s)
        partial[threadIdx.x] = combine(op, partial[threadIdx.x], partial[threadIdx.x + s]);
    }
    acc = partial[threadIdx.x];
  }
  if (o < n_out && lane == 0) {
    if (op == Reduce::mean) {
      out[o] = static_cast<O>(static_cast<double>(acc) / static_cast<double>(R));
    } else {
      out[o] = convert<O>(acc);
    }
  }
}

// Does (v, i) beat the current best (bv, bi)? idx < 0 marks "nothing yet".
template <typename T>
__device__ __forceinline__ bool better(bool is_max, T v, int64_t i, T bv, int64_t bi) {
  if (i < 0) return false;
  if (bi < 0) return true;
  const bool vn = is_nan(v), bn = is_nan(bv);
  if (vn || bn) return vn && (!bn || i < bi);
  if (v == bv) return i < bi;
  return is_max ? v > bv : v < bv;
}

template <typename T>
__global__ void __launch_bounds__(kThreads) argreduce_kernel(int64_t n_out, int64_t R,
                                                             Iter<1> outer, int64_t stride,
                                                             bool is_max, int group,
                                                             int64_t* out, const T* x) {
  __shared__ T best_v[kThreads];
  __shared__ int64_t best_i[kThreads];
  const int lane = threadIdx.x % group;
  const int64_t o = blockIdx.x * int64_t(kThreads / group) + threadIdx.x / group;
  T bv = T(0);
  int64_t bi = -1;
  if (o < n_out) {
    int64_t base[1];
    outer.offsets(o, base);
    for (int64_t r = lane; r < R; r += group) {
      const T v = x[base[0] + r * stride];
      if (better(is_max, v, r, bv, bi)) {
        bv = v;
        bi = r;
      }
    }
  }
  if (group > 1) {
    best_v[threadIdx.x] = bv;
    best_i[threadIdx.x] = bi;
    for (int s = group / 2; s > 0; s /= 2) {
      __syncthreads();
      const int t = threadIdx.x;
      if (lane < s && better(is_max, best_v[t + s], best_i[t + s], best_v[t], best_i[t])) {
        best_v[t] = best_v[t + s];
        best_i[t] = best_i[t + s];
      }
    }
    bi = best_i[threadIdx.x];
  }
  if (o < n_out && lane == 0) out[o] = bi < 0 ? 0 : bi;
}

// Threads per output: a whole block for few long rows, a warp for contiguous rows, else one.
int group_size(int64_t n_out, int64_t R, int64_t inner_stride) {
  if (n_out <= 512 && R >= 1024) return kThreads;
  if (R >= 32 && (inner_stride == 1 || n_out < 8192)) return 32;
  return 1;
}

Iter<1> dims_iter(const DeviceArray& x, int first, int last) {
  std::vector<int64_t> shape(x.shape.begin() + first, x.shape.begin() + last);
  std::vector<int64_t> strides(x.strides.begin() + first, x.strides.begin() + last);
  const std::vector<int64_t>* s[1] = {&strides};
  return make_iter<1>(shape, s);
}

}  // namespace

void reduce(Reduce op, const DeviceArray& out, const DeviceArray& x, int n_reduce) {
  const int64_t n_out = out.numel();
  if (n_out == 0) return;
  const int nd = x.ndim(), n_outer = nd - n_reduce;
  int64_t R = 1;
  for (int d = n_outer; d < nd; ++d) R *= x.shape[d];
  Iter<1> outer = dims_iter(x, 0, n_outer), inner = dims_iter(x, n_outer, nd);
  const int64_t inner_stride = inner.ndim ? inner.strides[0][inner.ndim - 1] : 1;
  const int group = group_size(n_out, R, inner_stride);
  const int64_t blocks = (n_out + kThreads / group - 1) / (kThreads / group);
  GF_DISPATCH(x.dtype, T, GF_DISPATCH(out.dtype, O,
      reduce_kernel<T, O><<<blocks, kThreads, 0, cuda_stream()>>>(
          n_out, R, outer, inner, op, group, reinterpret_cast<O*>(out.data()),
          reinterpret_cast<const T*>(x.data()))));
  check_launch("reduce");
}

void argreduce(bool is_max, const DeviceArray& out, const DeviceArray& x) {
  const int64_t n_out = out.numel();
  if (n_out == 0) return;
  const int nd = x.ndim();
  const int64_t R = x.shape[nd - 1], stride = x.strides[nd - 1];
  Iter<1> outer = dims_iter(x, 0, nd - 1);
  const int group = group_size(n_out, R, stride);
  const int64_t blocks = (n_out + kThreads / group - 1) / (kThreads / group);
  GF_DISPATCH(x.dtype, T,
      argreduce_kernel<T><<<blocks, kThreads, 0, cuda_stream()>>>(
          n_out, R, outer, stride, is_max, group, reinterpret_cast<int64_t*>(out.data()),
          reinterpret_cast<const T*>(x.data())));
  check_launch("argreduce");
}

}  // namespace gradflow::cuda
