// 2-D convolution (cross-correlation, as in PyTorch) on the GPU, NCHW, C-contiguous, float or
// double: im2col + the tiled GEMM of gemm.cu, the same three maps as the CPU (cpu/conv.h)
//
//   y[n, o, oh, ow] = b[o] + sum_{c in group(o), i, j}
//                     w[o, c', i, j] * x[n, c, oh*sh - ph + i*dh, ow*sw - pw + j*dw]
//
// x (N, Cin, H, W), w (Cout, Cin/groups, kh, kw), y (N, Cout, OH, OW); Cout = groups * Cog,
// K = (Cin/groups)*kh*kw, L = OH*OW. The batch is processed in chunks of nb images (or, when one
// image's columns exceed the cap, of lc < L output positions of one image) so that the column
// workspace stays under conv_workspace_bytes() (256 MiB by default) whatever the batch; per chunk
// (ld = nb*lc columns, all groups at once through the GEMM's batch, conv_chunks.h):
//   forward          col = im2col(x chunk) (groups, K, ld);  Y[grp] = w[grp] @ col[grp];
//                    y chunk = Y + bias (scattered back to NCHW)
//   backward-input   DY = dy chunk gathered (groups, Cog, ld);  col[grp] = w[grp]^T @ DY[grp];
//                    dx chunk = col2im(col), a gather per input pixel (no atomics); a split
//                    image's later runs add to it
//   backward-weight  col = im2col(x chunk), DYT = dy chunk gathered transposed (groups, ld, Cog);
//                    dw[grp]^T += col[grp] @ DYT[grp], the depth ld split into slices whose
//                    partial products are summed (and transposed) into dw by one more launch
// A 1x1, stride-1, unpadded conv skips im2col: y[n, grp] = w[grp] @ x[n, grp] is one batched
// GEMM over (image, group), and so is its input gradient.
//
// Launches: every elementwise step is a grid-stride loop over int64 indices (grids capped at 16
// blocks per multiprocessor, so any element count works); its per-thread body is a functor of
// conv_index.h, which tests/native/conv_test.cpp also runs on the host. Everything is queued on
// the module's stream; workspaces come from the caching allocator and go back to it when the
// call returns (stream order makes the reuse safe). Every launch is checked.
#include <algorithm>
#include <memory>
#include <vector>

#include "cuda/conv_chunks.h"
#include "cuda/iter.cuh"
#include "cuda/kernels.h"

namespace gradflow::cuda {
namespace {

constexpr int kThreads = 256;

template <typename F>
__global__ void __launch_bounds__(kThreads) grid_stride(int64_t n, F body) {
  const int64_t step = int64_t(gridDim.x) * blockDim.x;
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < n; e += step) body(e);
}

int multiprocessors() {
  static const int sms = [] {
    int dev = 0, n = 0;
    check(cudaGetDevice(&dev), "cudaGetDevice");
    check(cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev), "multiprocessors");
    return std::max(n, 1);
  }();
  return sms;
}

// conv_chunks.h's executor on the GPU.
template <typename T>
struct DeviceExec {
  const char* op;
  std::vector<std::unique_ptr<Storage>> held;  // workspaces of this call

  T* workspace(int64_t n) {
    if (n == 0) return nullptr;
    held.push_back(std::make_unique<Storage>(static_cast<size_t>(n) * sizeof(T)));
    return static_cast<T*>(held.back()->ptr);
  }

  template <typename F>
  void run(int64_t n, const F& body) {
    if (n == 0) return;
    grid_stride<<<grid_for(n, kThreads), kThreads, 0, cuda_stream()>>>(n, body);
    check_launch(op);
  }

  void gemm(int64_t batch, int64_t inner, int64_t m, int64_t n, int64_t k, MatrixBatch<const T> a,
            MatrixBatch<const T> b, MatrixBatch<T> c) {
    gemm_strided<T>(batch, inner, m, n, k, a, b, c);
  }

  void zero(T* p, int64_t n) {
    check(cudaMemsetAsync(p, 0, sizeof(T) * n, cuda_stream()), op);
  }

  int64_t gemm_tiles(int64_t m, int64_t n) const { return cuda::gemm_tiles<T>(m, n); }
  int64_t busy_blocks() const { return int64_t(2) * multiprocessors(); }
};

conv::Conv describe(int64_t N, int64_t groups, int64_t Cout, const ConvGeom& g) {
  return conv::Conv{N, groups, Cout, g, conv_workspace_bytes()};
}

// db[c] = sum over n and l of dy (N, C, L): one block per channel, a fixed-order tree
// reduction (deterministic), blocks striding over the channels.
template <typename T>
__global__ void __launch_bounds__(kThreads)
    channel_sum_kernel(int64_t N, int64_t C, int64_t L, const T* __restrict__ dy, T* db) {
  __shared__ T partial[kThreads];
  for (int64_t c = blockIdx.x; c < C; c += gridDim.x) {
    T s = T(0);
    for (int64_t j = threadIdx.x; j < N * L; j += kThreads) s += dy[conv::channel_item(C, L, c, j)];
    partial[threadIdx.x] = s;
    __syncthreads();
    for (int half = kThreads / 2; half > 0; half /= 2) {
      if (threadIdx.x < half) partial[threadIdx.x] += partial[threadIdx.x + half];
      __syncthreads();
    }
    if (threadIdx.x == 0) db[c] = partial[0];
    __syncthreads();  // partial is reused by the block's next channel
  }
}

}  // namespace

template <typename T>
void conv2d_forward(int64_t N, int64_t groups, int64_t Cout, const ConvGeom& g, const T* x,
                    const T* w, const T* bias, T* y) {
  DeviceExec<T> ex{"conv2d"};
  conv::forward<T>(ex, describe(N, groups, Cout, g), x, w, bias, y);
}

template <typename T>
void conv2d_backward_input(int64_t N, int64_t groups, int64_t Cout, const ConvGeom& g,
                           const T* dy, const T* w, T* dx) {
  DeviceExec<T> ex{"conv2d_backward_input"};
  conv::backward_input<T>(ex, describe(N, groups, Cout, g), dy, w, dx);
}

template <typename T>
void conv2d_backward_weight(int64_t N, int64_t groups, int64_t Cout, const ConvGeom& g,
                            const T* x, const T* dy, T* dw) {
  DeviceExec<T> ex{"conv2d_backward_weight"};
  conv::backward_weight<T>(ex, describe(N, groups, Cout, g), x, dy, dw);
}

template <typename T>
void channel_sum(int64_t N, int64_t C, int64_t L, const T* dy, T* db) {
  if (C == 0) return;
  const unsigned blocks = static_cast<unsigned>(std::min<int64_t>(C, int64_t(1) << 30));
  channel_sum_kernel<T><<<blocks, kThreads, 0, cuda_stream()>>>(N, C, L, dy, db);
  check_launch("channel_sum");
}

GRADFLOW_INSTANTIATE_CONV(float)
GRADFLOW_INSTANTIATE_CONV(double)

}  // namespace gradflow::cuda
