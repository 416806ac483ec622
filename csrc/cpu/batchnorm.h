// Batch normalisation over x (N, C, L), C-contiguous (L = H*W for images, 1 for (N, C)).
// Statistics are per channel c over the M = N*L values x[:, c, :]:
//   mean[c] = sum x / M,   var[c] = sum (x - mean)^2 / M   (biased; two passes, stable)
//   invstd[c] = 1 / sqrt(var[c] + eps)
//   y = (x - mean) * invstd * w[c] + b[c]          (w = 1, b = 0 when null)
// Backward, with xhat = (x - mean) * invstd, for dy (N, C, L):
//   db[c] = sum dy,  dw[c] = sum dy * xhat
//   training (batch statistics): dx = w * invstd * (dy - db/M - xhat * dw/M)
//   eval (fixed statistics):     dx = w * invstd * dy
// Threads split the channels (or, for L == 1, the rows with per-thread partial sums).
#pragma once
#include <cstdint>

namespace gradflow::cpu {

// Training forward: writes y and the per-channel mean, biased var and invstd.
template <typename T>
void batch_norm_forward_train(int64_t N, int64_t C, int64_t L, const T* x, const T* w,
                              const T* b, T eps, T* y, T* mean, T* var, T* invstd);

// Normalise with given statistics (eval mode): y = (x - mean) * invstd * w + b.
template <typename T>
void batch_norm_apply(int64_t N, int64_t C, int64_t L, const T* x, const T* mean,
                      const T* invstd, const T* w, const T* b, T* y);

// dx, dw, db may each be null (not wanted).
template <typename T>
void batch_norm_backward(int64_t N, int64_t C, int64_t L, const T* x, const T* dy,
                         const T* mean, const T* invstd, const T* w, bool training, T* dx, T* dw,
                         T* db);

}  // namespace gradflow::cpu
