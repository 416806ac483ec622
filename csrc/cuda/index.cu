// Gather/scatter. Advanced indexing (index_op) iterates over the values' shape (B..., R...):
// the B coordinates pick one entry of each index array idx_k (broadcast by strides), giving
// target coordinates (idx_0[b], ..., idx_{n-1}[b], r...). Along-axis ops (axis_op) iterate over
// the index's shape: position p reads or adds x[p with coordinate `axis` := index[p]].
// Negative indices count from the end; out-of-range ones are skipped and raise a flag that
// the host turns into IndexError. Accumulation uses atomicAdd, so repeats add up.
#include "cuda/iter.cuh"
#include "cuda/kernels.h"

namespace gradflow::cuda {
namespace {

struct IndexParams {
  int nd = 0, nb = 0, n_idx = 0;
  int64_t shape[kMaxDims];             // values' shape
  int64_t vstride[kMaxDims];           // values' strides
  int64_t tstride[kMaxDims];           // target strides of the R dims (at d >= nb)
  int64_t istride[kMaxDims][kMaxDims];  // index k's strides over the B dims
  int64_t asize[kMaxDims], astride[kMaxDims];  // the indexed target dims
  const int64_t* idx[kMaxDims];
};

__device__ __forceinline__ void atomic_add(float* p, float v) { atomicAdd(p, v); }
__device__ __forceinline__ void atomic_add(double* p, double v) { atomicAdd(p, v); }
__device__ __forceinline__ void atomic_add(int64_t* p, int64_t v) {
  atomicAdd(reinterpret_cast<unsigned long long*>(p), static_cast<unsigned long long>(v));
}
__device__ __forceinline__ void atomic_add(bool* p, bool v) {
  if (v) *p = true;  // bool "sum" is logical or; every writer stores the same value
}

template <typename T>
__global__ void index_kernel(int64_t n, IndexParams p, IndexMode mode, T* target, T* values,
                             int* flag) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    int64_t rest = i, voff = 0, toff = 0;
    int64_t ioff[kMaxDims] = {0};
    for (int d = p.nd - 1; d >= 0; --d) {
      const int64_t c = rest % p.shape[d];
      rest /= p.shape[d];
      voff += c * p.vstride[d];
      if (d >= p.nb) {
        toff += c * p.tstride[d];
      } else {
        for (int k = 0; k < p.n_idx; ++k) ioff[k] += c * p.istride[k][d];
      }
    }
    bool ok = true;
    for (int k = 0; k < p.n_idx; ++k) {
      int64_t v = p.idx[k][ioff[k]];
      if (v < 0) v += p.asize[k];
      if (v < 0 || v >= p.asize[k]) {
        ok = false;
        break;
      }
      toff += v * p.astride[k];
    }
    if (!ok) {
      *flag = 1;
      continue;
    }
    if (mode == IndexMode::gather) {
      values[voff] = target[toff];
    } else if (mode == IndexMode::put) {
      target[toff] = values[voff];
    } else {
      atomic_add(target + toff, values[voff]);
    }
  }
}

template <typename T>
__global__ void axis_kernel(int64_t n, Iter<3> it, IndexMode mode, int64_t axis_stride,
                            int64_t axis_size, T* x, const int64_t* index, T* values, int* flag) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[3];
    it.offsets(i, off);
    int64_t v = index[off[1]];
    if (v < 0) v += axis_size;
    if (v < 0 || v >= axis_size) {
      *flag = 1;
      continue;
    }
    T* px = x + off[0] + v * axis_stride;
    if (mode == IndexMode::gather) {
      values[off[2]] = *px;
    } else {
      atomic_add(px, values[off[2]]);
    }
  }
}

}  // namespace

bool index_op(IndexMode mode, const DeviceArray& target, int n_idx, const DeviceArray* idx,
              int nb, const DeviceArray& values) {
  const int64_t n = values.numel();
  if (n == 0) return true;
  IndexParams p;
  p.nd = values.ndim();
  p.nb = nb;
  p.n_idx = n_idx;
  for (int d = 0; d < p.nd; ++d) {
    p.shape[d] = values.shape[d];
    p.vstride[d] = values.strides[d];
    p.tstride[d] = d >= nb ? target.strides[n_idx + d - nb] : 0;
  }
  for (int k = 0; k < n_idx; ++k) {
    p.asize[k] = target.shape[k];
    p.astride[k] = target.strides[k];
    p.idx[k] = reinterpret_cast<const int64_t*>(idx[k].data());
    for (int d = 0; d < nb; ++d) p.istride[k][d] = idx[k].strides[d];
  }
  const int grid = grid_for(n);
  GF_DISPATCH(target.dtype, T,
      index_kernel<T><<<grid, 256, 0, cuda_stream()>>>(
          n, p, mode, reinterpret_cast<T*>(target.data()), reinterpret_cast<T*>(values.data()),
          error_flag()));
  check_launch("index");
  return !take_error_flag();
}

bool axis_op(IndexMode mode, const DeviceArray& x, int64_t axis_stride, int64_t axis_size,
             const DeviceArray& index, const DeviceArray& values) {
  const int64_t n = index.numel();
  if (n == 0) return true;
  const std::vector<int64_t>* s[3] = {&x.strides, &index.strides, &values.strides};
  Iter<3> it = make_iter<3>(index.shape, s);
  const int grid = grid_for(n);
  GF_DISPATCH(x.dtype, T,
      axis_kernel<T><<<grid, 256, 0, cuda_stream()>>>(
          n, it, mode, axis_stride, axis_size, reinterpret_cast<T*>(x.data()),
          reinterpret_cast<const int64_t*>(index.data()), reinterpret_cast<T*>(values.data()),
          error_flag()));
  check_launch("axis index");
  return !take_error_flag();
}

}  // namespace gradflow::cuda
