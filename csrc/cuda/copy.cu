// Copies, fills and ranges. Math: dst[i] = (D) src[i] over dst's shape, each side strided
// (element offsets from Iter), src broadcast by zero strides; fill/arange write one value or
// start + i * step. Conversion to bool is `v != 0`, from bool 0/1, float -> int truncates.
#include "cuda/iter.cuh"
#include "cuda/kernels.h"

namespace gradflow::cuda {
namespace {

template <typename D, typename S>
__global__ void copy_kernel(int64_t n, Iter<2> it, D* dst, const S* src) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[2];
    it.offsets(i, off);
    dst[off[0]] = convert<D>(src[off[1]]);
  }
}

template <typename T>
__global__ void fill_kernel(int64_t n, Iter<1> it, T* dst, T value) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[1];
    it.offsets(i, off);
    dst[off[0]] = value;
  }
}

template <typename T, typename S>
__global__ void arange_kernel(int64_t n, T* out, S start, S step) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    out[i] = static_cast<T>(start + static_cast<S>(i) * step);
}

}  // namespace

void copy_cast(const DeviceArray& dst, const DeviceArray& src) {
  const int64_t n = dst.numel();
  if (n == 0) return;
  const std::vector<int64_t>* s[2] = {&dst.strides, &src.strides};
  Iter<2> it = make_iter<2>(dst.shape, s);
  const int grid = grid_for(n);
  GF_DISPATCH(dst.dtype, D, GF_DISPATCH(src.dtype, S,
      copy_kernel<D, S><<<grid, 256, 0, cuda_stream()>>>(
          n, it, reinterpret_cast<D*>(dst.data()), reinterpret_cast<const S*>(src.data()))));
  check_launch("copy");
}

void fill(const DeviceArray& dst, double value, int64_t ivalue) {
  const int64_t n = dst.numel();
  if (n == 0) return;
  const std::vector<int64_t>* s[1] = {&dst.strides};
  Iter<1> it = make_iter<1>(dst.shape, s);
  const int grid = grid_for(n);
  GF_DISPATCH(dst.dtype, T, {
    const T v = std::is_same_v<T, int64_t> ? static_cast<T>(ivalue)
                : std::is_same_v<T, bool>  ? static_cast<T>(value != 0.0)
                                           : static_cast<T>(value);
    fill_kernel<T><<<grid, 256, 0, cuda_stream()>>>(n, it, reinterpret_cast<T*>(dst.data()), v);
  });
  check_launch("fill");
}

void arange(const DeviceArray& out, double start, double step, int64_t istart, int64_t istep) {
  const int64_t n = out.numel();
  if (n == 0) return;
  const int grid = grid_for(n);
  switch (out.dtype) {
    case DType::f32:
      arange_kernel<float, double><<<grid, 256, 0, cuda_stream()>>>(
          n, reinterpret_cast<float*>(out.data()), start, step);
      break;
    case DType::f64:
      arange_kernel<double, double><<<grid, 256, 0, cuda_stream()>>>(
          n, reinterpret_cast<double*>(out.data()), start, step);
      break;
    default:
      arange_kernel<int64_t, int64_t><<<grid, 256, 0, cuda_stream()>>>(
          n, reinterpret_cast<int64_t*>(out.data()), istart, istep);
  }
  check_launch("arange");
}

}  // namespace gradflow::cuda
