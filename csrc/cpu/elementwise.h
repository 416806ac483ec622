// Elementwise kernels: math NumPy lacks (erf), and the hot elementwise ops of training run
// OpenMP-parallel and vectorised (the CPU backend calls them for large float arrays; NumPy,
// on one thread, is as fast below a measured size). Arrays are C-contiguous, n elements.
#pragma once
#include <cstdint>

namespace gradflow::cpu {

// out[i] = erf(x[i]) = 2/sqrt(pi) * integral_0^x exp(-t^2) dt
template <typename T>
void erf(const T* x, T* out, int64_t n);

// The unary and binary ops with a native kernel; bind_cpu.cpp exports their names (the rows
// of gradflow/op_table.py's UNARY and BINARY they implement).
enum class UnaryOp { erf, relu };
enum class BinaryOp { add, sub, mul, div };

// y[i] = op(x[i]): erf or relu below.
template <typename T>
void unary(UnaryOp op, const T* x, T* y, int64_t n);

// out[i] = a[i] op b[(i / inner) % mid] for i < n, n a multiple of mid * inner, mid >= 1 and
// inner >= 1 (with `swap`: b[...] op a[i]). One pattern covers training's broadcasts: b of
// a's shape (mid = n), a scalar (mid = 1), a bias row (N, F) + (F,) (mid = F), a per-channel
// scale (N, C, H, W) * (1, C, 1, 1) (mid = C, inner = H * W). out may be a itself (in place),
// but must not otherwise overlap a or b.
template <typename T>
void binary(BinaryOp op, bool swap, const T* a, const T* b, T* out, int64_t n, int64_t mid,
            int64_t inner);

// y[i] = max(x[i], 0), NaN kept (as PyTorch's relu)
template <typename T>
void relu(const T* x, T* y, int64_t n);

// dx[i] = g[i] if y[i] > 0 else 0: relu's backward from its output y
template <typename T>
void relu_backward(const T* g, const T* y, T* dx, int64_t n);

// y[i] += alpha * x[i] (the optimizers' p -= lr * g, a gradient's weight decay)
template <typename T>
void axpy(T alpha, const T* x, T* y, int64_t n);

// Below this many elements a kernel runs on one thread: starting the team costs more.
constexpr int64_t kElementwiseParallelGrain = 32768;

}  // namespace gradflow::cpu
