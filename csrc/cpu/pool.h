// 2-D pooling over P = N*C independent planes of a C-contiguous (P, H, W) array.
//
// Output (P, OH, OW). Window of output (oh, ow) for the strided pools:
//   rows oh*sh - ph + i*dh, i in [0, kh)   (columns likewise); positions outside the input are
//   skipped (max) or count as zeros (avg with count_include_pad).
// Adaptive pools: rows [floor(oh*H/OH), ceil((oh+1)*H/OH)) (columns likewise).
// Max pools also write the argmax of each window as the flat index h*W + w within its plane
// (int64, as PyTorch); NaN wins over any number, so NaN propagates.
#pragma once
#include <cstdint>

namespace gradflow::cpu {

struct PoolGeom {
  int64_t P, H, W, OH, OW;
  int64_t kh, kw, sh, sw, ph, pw, dh, dw;  // unused by the adaptive pools
};

template <typename T>
void max_pool2d_forward(const PoolGeom& g, const T* x, T* y, int64_t* idx);

template <typename T>
void adaptive_max_pool2d_forward(const PoolGeom& g, const T* x, T* y, int64_t* idx);

// dx[p, idx[p, l]] += dy[p, l] for the (P, OH*OW) arrays dy and idx; dx (P, H*W) is zeroed
// first. This is the max pools' backward (windows may overlap, so it accumulates). An index
// outside [0, H*W) -- a window that covered only padding -- contributes nothing.
template <typename T>
void index_scatter_add(const PoolGeom& g, const T* dy, const int64_t* idx, T* dx);

// y[p, idx[p, l]] = x[p, l], every other entry of y (P, H*W) zero: max_unpool2d. Here
// (OH, OW) is the size of x and idx, (H, W) the size of y.
template <typename T>
void index_scatter(const PoolGeom& g, const T* x, const int64_t* idx, T* y);

// Average pool: y = sum(window) / divisor, divisor = divisor_override when > 0, else the window
// size clipped to the padded input (count_include_pad) or to the input itself (as PyTorch).
template <typename T>
void avg_pool2d_forward(const PoolGeom& g, bool count_include_pad, int64_t divisor_override,
                        const T* x, T* y);

// Its adjoint: each dy is spread evenly (dy / divisor) over its window; dx is overwritten.
template <typename T>
void avg_pool2d_backward(const PoolGeom& g, bool count_include_pad, int64_t divisor_override,
                         const T* dy, T* dx);

template <typename T>
void adaptive_avg_pool2d_forward(const PoolGeom& g, const T* x, T* y);

template <typename T>
void adaptive_avg_pool2d_backward(const PoolGeom& g, const T* dy, T* dx);

}  // namespace gradflow::cpu
