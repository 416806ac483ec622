// Launch helpers of the nn kernel files (pool.cu, batchnorm.cu, softmax.cu): a grid-stride
// loop that calls a functor once per index of [0, n), int64 indices throughout, so any size
// below 2^63 works with a grid capped by grid_for; and the float/double dispatch.
#pragma once
#include "cuda/iter.cuh"

namespace gradflow::cuda {

constexpr int kEachThreads = 256;

template <typename F>
__global__ void __launch_bounds__(kEachThreads) each_kernel(int64_t n, F f) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    f(i);
}

// f(i) for every i in [0, n) on the module's stream; nothing for n == 0.
template <typename F>
void launch_each(const char* name, int64_t n, const F& f) {
  if (n <= 0) return;
  each_kernel<<<grid_for(n, kEachThreads), kEachThreads, 0, cuda_stream()>>>(n, f);
  check_launch(name);
}

// f(T()) with T = double for a float64 array, float otherwise (the bindings allow only these).
template <typename F>
void dispatch_float(DType t, F&& f) {
  if (t == DType::f64)
    f(double());
  else
    f(float());
}

// The device's multiprocessors (80 if it cannot say): sizes the reduction grids.
inline int sm_count() {
  static int sms = [] {
    int dev = 0, n = 0;
    cudaGetDevice(&dev);
    cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev);
    return n > 0 ? n : 80;
  }();
  return sms;
}

template <typename T>
T* ptr(const DeviceArray& a) {
  return reinterpret_cast<T*>(a.data());
}

template <typename T>
const T* cptr(const DeviceArray* a) {
  return a ? reinterpret_cast<const T*>(a->data()) : nullptr;
}

}  // namespace gradflow::cuda
