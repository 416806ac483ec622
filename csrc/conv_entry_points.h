// The convolution entry points that both devices implement with one contract (cpu/conv.h states
// the math, the layouts and the CPU's threading; cuda/conv.cu how the GPU runs them):
//   x (N, groups*g.C, g.H, g.W), w (Cout, g.C, kh, kw), y/dy (N, Cout, g.OH, g.OW), C-contiguous,
//   float or double, `g` the validated per-group geometry (conv_geom.h).
// Included inside a device's namespace (gradflow::cpu by cpu/conv.h, gradflow::cuda by
// cuda/kernels.h), after <atomic>, <cstdint> and conv_geom.h, so each device declares its own
// functions under the same names; no include guard, as each namespace needs its own copy.

// The cap on one call's im2col workspace, one per device (default 256 MiB; the CPU's counts
// all threads together). Smaller caps split images into more, narrower chunks; the results do
// not change.
constexpr int64_t kDefaultConvWorkspaceBytes = int64_t(256) << 20;
inline std::atomic<int64_t> g_conv_workspace_bytes{kDefaultConvWorkspaceBytes};
inline void set_conv_workspace_bytes(int64_t bytes) { g_conv_workspace_bytes = bytes; }
inline int64_t conv_workspace_bytes() { return g_conv_workspace_bytes; }

template <typename T>
void conv2d_forward(int64_t N, int64_t groups, int64_t Cout, const ConvGeom& g, const T* x,
                    const T* w, const T* bias, T* y);  // bias may be null

template <typename T>
void conv2d_backward_input(int64_t N, int64_t groups, int64_t Cout, const ConvGeom& g,
                           const T* dy, const T* w, T* dx);  // dx is overwritten

template <typename T>
void conv2d_backward_weight(int64_t N, int64_t groups, int64_t Cout, const ConvGeom& g,
                            const T* x, const T* dy, T* dw);  // dw is overwritten

// db[c] = sum over n and the L positions of dy (N, C, L).
template <typename T>
void channel_sum(int64_t N, int64_t C, int64_t L, const T* dy, T* db);

// The explicit instantiations of the entry points for one element type, in the device's
// conv.cpp / conv.cu.
#define GRADFLOW_INSTANTIATE_CONV(T)                                                            \
  template void conv2d_forward<T>(int64_t, int64_t, int64_t, const ConvGeom&, const T*,         \
                                  const T*, const T*, T*);                                      \
  template void conv2d_backward_input<T>(int64_t, int64_t, int64_t, const ConvGeom&, const T*,  \
                                         const T*, T*);                                         \
  template void conv2d_backward_weight<T>(int64_t, int64_t, int64_t, const ConvGeom&, const T*, \
                                          const T*, T*);                                        \
  template void channel_sum<T>(int64_t, int64_t, int64_t, const T*, T*);
