// Pooling on the GPU: max, average and adaptive pools, their backwards, and max_unpool2d.
//
// Layout: P = N*C planes, input x (P, H, W) and output y (P, OH, OW), C-contiguous; indices
// are int64 flat positions h*W + w within a plane. The math is the CPU kernels' (csrc/cpu/
// pool.h), computed by the per-thread bodies of pool_index.h:
//   forward:  one thread per output, y[p, oh, ow] = max / mean over its window;
//   avg backward (both kinds): one thread per input pixel, dx[p, h, w] = sum over the windows
//     covering it of dy / divisor (a gather: no atomics, deterministic, the CPU's order);
//   max backward: dx = 0, then one thread per output adds dy into dx[p].flat[idx] with
//     atomicAdd (windows overlap, and the contract gives only the indices, not the windows);
//   unpool: y = 0, then y[p].flat[idx] = x; an index outside the plane is skipped and flagged
//     (with repeated indices one of the writers wins, as in PyTorch's CUDA kernel);
//   interpolate (nearest, bilinear): one thread per output blends its (up to) four source
//     pixels; the backward (its adjoint) zeroes dx, then each output adds its four weighted
//     gradients with atomicAdd.
#include "cuda/kernels.h"
#include "cuda/launch.cuh"

namespace gradflow::cuda {
namespace {

template <typename T>
struct MaxPoolBody {
  pool::Geom g;
  bool adaptive;
  const T* x;
  T* y;
  int64_t* idx;
  __device__ void operator()(int64_t o) const {
    const pool::MaxResult<T> r =
        adaptive ? pool::adaptive_max_output(g, x, o) : pool::max_pool_output(g, x, o);
    y[o] = r.value;
    idx[o] = r.index;
  }
};

template <typename T>
struct ScatterAddBody {
  pool::Geom g;
  const T* dy;
  const int64_t* idx;
  T* dx;
  __device__ void operator()(int64_t i) const {
    const int64_t t = pool::scatter_target(g, idx, i);
    if (t >= 0) atomicAdd(dx + t, dy[i]);
  }
};

template <typename T>
struct UnpoolBody {
  pool::Geom g;
  const T* x;
  const int64_t* idx;
  T* y;
  int* bad;
  __device__ void operator()(int64_t i) const {
    const int64_t t = pool::scatter_target(g, idx, i);
    if (t >= 0)
      y[t] = x[i];
    else
      atomicExch(bad, 1);
  }
};

template <typename T>
struct AvgPoolBody {
  pool::Geom g;
  bool count_include_pad;
  int64_t divisor_override;
  const T* x;
  T* y;
  __device__ void operator()(int64_t o) const {
    y[o] = pool::avg_pool_output(g, x, o, count_include_pad, divisor_override);
  }
};

template <typename T>
struct AvgPoolGradBody {
  pool::Geom g;
  bool count_include_pad;
  int64_t divisor_override;
  const T* dy;
  T* dx;
  __device__ void operator()(int64_t e) const {
    dx[e] = pool::avg_pool_grad_input(g, dy, e, count_include_pad, divisor_override);
  }
};

template <typename T>
struct AdaptiveAvgBody {
  pool::Geom g;
  const T* x;
  T* y;
  __device__ void operator()(int64_t o) const { y[o] = pool::adaptive_avg_output(g, x, o); }
};

template <typename T>
struct AdaptiveAvgGradBody {
  pool::Geom g;
  const T* dy;
  T* dx;
  __device__ void operator()(int64_t e) const { dx[e] = pool::adaptive_avg_grad_input(g, dy, e); }
};

template <typename T>
struct ResizeBody {
  pool::Geom g;
  pool::Resize r;
  const T* x;
  T* y;
  __device__ void operator()(int64_t o) const { y[o] = pool::resize_output(g, r, x, o); }
};

template <typename T>
struct AtomicAdd {
  T* dx;
  __device__ void operator()(int64_t at, T v) const { atomicAdd(dx + at, v); }
};

template <typename T>
struct ResizeGradBody {
  pool::Geom g;
  pool::Resize r;
  const T* dy;
  T* dx;
  __device__ void operator()(int64_t o) const {
    pool::resize_scatter(g, r, dy, o, AtomicAdd<T>{dx});
  }
};

void zero(const DeviceArray& a) {
  const size_t nbytes = static_cast<size_t>(a.numel()) * itemsize(a.dtype);
  if (nbytes) check(cudaMemsetAsync(a.data(), 0, nbytes, cuda_stream()), "memset");
}

int64_t outputs(const pool::Geom& g) { return g.P * g.OH * g.OW; }
int64_t inputs(const pool::Geom& g) { return g.P * g.H * g.W; }

}  // namespace

void max_pool2d(const pool::Geom& g, bool adaptive, const DeviceArray& x, const DeviceArray& y,
                const DeviceArray& idx) {
  dispatch_float(x.dtype, [&](auto t) {
    using T = decltype(t);
    launch_each("max_pool2d", outputs(g),
                MaxPoolBody<T>{g, adaptive, ptr<T>(x), ptr<T>(y), ptr<int64_t>(idx)});
  });
}

void max_pool2d_backward(const pool::Geom& g, const DeviceArray& dy, const DeviceArray& idx,
                         const DeviceArray& dx) {
  zero(dx);
  dispatch_float(dy.dtype, [&](auto t) {
    using T = decltype(t);
    launch_each("max_pool2d_backward", outputs(g),
                ScatterAddBody<T>{g, ptr<T>(dy), ptr<int64_t>(idx), ptr<T>(dx)});
  });
}

bool max_unpool2d(const pool::Geom& g, const DeviceArray& x, const DeviceArray& idx,
                  const DeviceArray& y) {
  zero(y);
  if (outputs(g) == 0) return true;
  dispatch_float(x.dtype, [&](auto t) {
    using T = decltype(t);
    launch_each("max_unpool2d", outputs(g),
                UnpoolBody<T>{g, ptr<T>(x), ptr<int64_t>(idx), ptr<T>(y), error_flag()});
  });
  return !take_error_flag();
}

void avg_pool2d(const pool::Geom& g, bool count_include_pad, int64_t divisor_override,
                const DeviceArray& x, const DeviceArray& y) {
  dispatch_float(x.dtype, [&](auto t) {
    using T = decltype(t);
    launch_each("avg_pool2d", outputs(g),
                AvgPoolBody<T>{g, count_include_pad, divisor_override, ptr<T>(x), ptr<T>(y)});
  });
}

void avg_pool2d_backward(const pool::Geom& g, bool count_include_pad, int64_t divisor_override,
                         const DeviceArray& dy, const DeviceArray& dx) {
  dispatch_float(dy.dtype, [&](auto t) {
    using T = decltype(t);
    launch_each("avg_pool2d_backward", inputs(g),
                AvgPoolGradBody<T>{g, count_include_pad, divisor_override, ptr<T>(dy),
                                   ptr<T>(dx)});
  });
}

void adaptive_avg_pool2d(const pool::Geom& g, const DeviceArray& x, const DeviceArray& y) {
  dispatch_float(x.dtype, [&](auto t) {
    using T = decltype(t);
    launch_each("adaptive_avg_pool2d", outputs(g), AdaptiveAvgBody<T>{g, ptr<T>(x), ptr<T>(y)});
  });
}

void adaptive_avg_pool2d_backward(const pool::Geom& g, const DeviceArray& dy,
                                  const DeviceArray& dx) {
  dispatch_float(dy.dtype, [&](auto t) {
    using T = decltype(t);
    launch_each("adaptive_avg_pool2d_backward", inputs(g),
                AdaptiveAvgGradBody<T>{g, ptr<T>(dy), ptr<T>(dx)});
  });
}

void interpolate(const pool::Geom& g, const pool::Resize& r, const DeviceArray& x,
                 const DeviceArray& y) {
  dispatch_float(x.dtype, [&](auto t) {
    using T = decltype(t);
    launch_each("interpolate", outputs(g), ResizeBody<T>{g, r, ptr<T>(x), ptr<T>(y)});
  });
}

void interpolate_backward(const pool::Geom& g, const pool::Resize& r, const DeviceArray& dy,
                          const DeviceArray& dx) {
  zero(dx);
  dispatch_float(dy.dtype, [&](auto t) {
    using T = decltype(t);
    launch_each("interpolate_backward", outputs(g),
                ResizeGradBody<T>{g, r, ptr<T>(dy), ptr<T>(dx)});
  });
}

}  // namespace gradflow::cuda
