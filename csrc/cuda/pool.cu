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

// out[t] = in[i] for t = the plane position that idx[i] names (pool::scatter_target), or with
// Add, out[t] += in[i] (atomic: windows overlap). An index outside the plane is skipped, and
// without Add (max_unpool2d) flagged in *bad.
template <typename T, bool Add>
struct ScatterBody {
  pool::Geom g;
  const T* in;
  const int64_t* idx;
  T* out;
  int* bad;  // unused with Add
  __device__ void operator()(int64_t i) const {
    const int64_t t = pool::scatter_target(g, idx, i);
    if constexpr (Add) {
      if (t >= 0) atomicAdd(out + t, in[i]);
    } else if (t >= 0) {
      out[t] = in[i];
    } else {
      atomicExch(bad, 1);
    }
  }
};

// Forward: y[o] = the mean over output o's window; Backward: dx[e] = the sum of dy / divisor
// over the windows that cover input pixel e. The same parameters serve both directions.
template <typename T, bool Backward>
struct AvgPoolBody {
  pool::Geom g;
  bool count_include_pad;
  int64_t divisor_override;
  const T* in;  // x, or dy
  T* out;       // y, or dx
  __device__ void operator()(int64_t i) const {
    if constexpr (Backward)
      out[i] = pool::avg_pool_grad_input(g, in, i, count_include_pad, divisor_override);
    else
      out[i] = pool::avg_pool_output(g, in, i, count_include_pad, divisor_override);
  }
};

template <typename T, bool Backward>
struct AdaptiveAvgBody {
  pool::Geom g;
  const T* in;  // x, or dy
  T* out;       // y, or dx
  __device__ void operator()(int64_t i) const {
    if constexpr (Backward)
      out[i] = pool::adaptive_avg_grad_input(g, in, i);
    else
      out[i] = pool::adaptive_avg_output(g, in, i);
  }
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

// An average pool's forward (one thread per output) or backward (one per input pixel):
// Body<T, Backward>{g, params..., in, out}.
template <template <typename, bool> class Body, bool Backward, typename... Params>
void launch_avg(const char* name, const pool::Geom& g, const DeviceArray& in,
                const DeviceArray& out, Params... params) {
  dispatch_float(in.dtype, [&](auto t) {
    using T = decltype(t);
    launch_each(name, Backward ? inputs(g) : outputs(g),
                Body<T, Backward>{g, params..., ptr<T>(in), ptr<T>(out)});
  });
}

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
                ScatterBody<T, true>{g, ptr<T>(dy), ptr<int64_t>(idx), ptr<T>(dx), nullptr});
  });
}

bool max_unpool2d(const pool::Geom& g, const DeviceArray& x, const DeviceArray& idx,
                  const DeviceArray& y) {
  zero(y);
  if (outputs(g) == 0) return true;
  dispatch_float(x.dtype, [&](auto t) {
    using T = decltype(t);
    launch_each("max_unpool2d", outputs(g),
                ScatterBody<T, false>{g, ptr<T>(x), ptr<int64_t>(idx), ptr<T>(y), error_flag()});
  });
  return !take_error_flag();
}

void avg_pool2d(const pool::Geom& g, bool count_include_pad, int64_t divisor_override,
                const DeviceArray& x, const DeviceArray& y) {
  launch_avg<AvgPoolBody, false>("avg_pool2d", g, x, y, count_include_pad, divisor_override);
}

void avg_pool2d_backward(const pool::Geom& g, bool count_include_pad, int64_t divisor_override,
                         const DeviceArray& dy, const DeviceArray& dx) {
  launch_avg<AvgPoolBody, true>("avg_pool2d_backward", g, dy, dx, count_include_pad,
                                divisor_override);
}

void adaptive_avg_pool2d(const pool::Geom& g, const DeviceArray& x, const DeviceArray& y) {
  launch_avg<AdaptiveAvgBody, false>("adaptive_avg_pool2d", g, x, y);
}

void adaptive_avg_pool2d_backward(const pool::Geom& g, const DeviceArray& dy,
                                  const DeviceArray& dx) {
  launch_avg<AdaptiveAvgBody, true>("adaptive_avg_pool2d_backward", g, dy, dx);
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
