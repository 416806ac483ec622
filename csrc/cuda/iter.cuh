// Device-side helpers shared by the kernel files: strided iteration over N operands, dtype
// dispatch, launch sizes. Only .cu files include this.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>
#include <vector>

#include "cuda/runtime.h"

namespace gradflow::cuda {

int* error_flag();       // device int set to 1 by a kernel that met an out-of-range index
bool take_error_flag();  // waits, reads and clears it

inline cudaStream_t cuda_stream() { return static_cast<cudaStream_t>(stream()); }

// Element i of an iteration shape (C order) sits at sum_d coord_d * strides[k][d] in operand k.
// Built on the host with adjacent dims merged where every operand allows it, so contiguous
// work iterates as one dim (no divisions).
template <int N>
struct Iter {
  int ndim = 0;
  int64_t shape[kMaxDims];
  int64_t strides[N][kMaxDims];

  __device__ __forceinline__ void offsets(int64_t i, int64_t (&off)[N]) const {
#pragma unroll
    for (int k = 0; k < N; ++k) off[k] = 0;
    for (int d = ndim - 1; d > 0; --d) {
      const int64_t q = i / shape[d], r = i - q * shape[d];
      i = q;
#pragma unroll
      for (int k = 0; k < N; ++k) off[k] += r * strides[k][d];
    }
    if (ndim > 0) {
#pragma unroll
      for (int k = 0; k < N; ++k) off[k] += i * strides[k][0];
    }
  }
};

// Drops size-1 dims and merges dim d into d+1 when every operand is contiguous across them.
template <int N>
Iter<N> make_iter(const std::vector<int64_t>& shape, const std::vector<int64_t>* strides[N]) {
  Iter<N> it;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    bool merge = it.ndim > 0;
    for (int k = 0; k < N && merge; ++k)
      merge = it.strides[k][it.ndim - 1] == (*strides[k])[d] * shape[d];
    if (merge) {
      it.shape[it.ndim - 1] *= shape[d];
      for (int k = 0; k < N; ++k) it.strides[k][it.ndim - 1] = (*strides[k])[d];
    } else {
      it.shape[it.ndim] = shape[d];
      for (int k = 0; k < N; ++k) it.strides[k][it.ndim] = (*strides[k])[d];
      ++it.ndim;
    }
  }
  return it;
}

inline int grid_for(int64_t n, int threads = 256) {
  static int blocks_cap = [] {
    int dev = 0, sms = 0;
    cudaGetDevice(&dev);
    cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
    return (sms > 0 ? sms : 80) * 16;
  }();
  const int64_t need = (n + threads - 1) / threads;
  return static_cast<int>(need < blocks_cap ? (need > 0 ? need : 1) : blocks_cap);
}

template <typename D, typename S>
__device__ __forceinline__ D convert(S v) {
  if constexpr (std::is_same_v<D, bool>) {
    return v != S(0);
  } else {
    return static_cast<D>(v);
  }
}

template <typename T>
__device__ __forceinline__ bool is_nan(T v) {
  if constexpr (std::is_floating_point_v<T>) {
    return v != v;
  } else {
    return false;
  }
}

}  // namespace gradflow::cuda

// Runs the statement with `T` bound to the C++ type of a DType, one case per type.
#define GF_DISPATCH(dtype, T, ...)                 \
  switch (dtype) {                                 \
    GF_DISPATCH_CASE(f32, float, T, __VA_ARGS__)   \
    GF_DISPATCH_CASE(f64, double, T, __VA_ARGS__)  \
    GF_DISPATCH_CASE(i64, int64_t, T, __VA_ARGS__) \
    GF_DISPATCH_CASE(b8, bool, T, __VA_ARGS__)     \
  }
#define GF_DISPATCH_CASE(tag, type, T, ...) \
  case ::gradflow::cuda::DType::tag: {      \
    using T = type;                         \
    __VA_ARGS__;                            \
    break;                                  \
  }
