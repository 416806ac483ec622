// Elementwise kernels (math and layout in elementwise.h). Each kernel splits its n elements
// into blocks of kBlock, shared out statically among the OpenMP threads when n reaches
// kElementwiseParallelGrain; each block's loop is a plain `omp simd` loop the compiler
// vectorises (the work is memory-bound: the loads and stores, not the arithmetic, set the pace).
#include "cpu/elementwise.h"

#include <algorithm>
#include <cmath>

namespace gradflow::cpu {

namespace {

constexpr int64_t kBlock = 8192;

// body(lo, hi) over consecutive blocks of [0, n), on every thread when n is large.
template <typename F>
void for_blocks(int64_t n, F&& body) {
  const int64_t blocks = (n + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (n >= kElementwiseParallelGrain)
  for (int64_t k = 0; k < blocks; ++k) body(k * kBlock, std::min(n, (k + 1) * kBlock));
}

// out[i] = f(a[i], b[(i / inner) % mid]) for lo <= i < hi, one run at a time: a run of up to
// `mid` elements against consecutive b values (inner == 1), or a row of `inner` elements
// against one b value.
template <typename T, typename F>
void binary_range(F f, const T* a, const T* b, T* out, int64_t lo, int64_t hi, int64_t mid,
                  int64_t inner) {
  for (int64_t i = lo; i < hi;) {
    const T* ai = a + i;
    T* oi = out + i;
    if (inner == 1) {
      const int64_t j = i % mid, len = std::min(hi - i, mid - j);
      const T* bj = b + j;
#pragma omp simd
      for (int64_t k = 0; k < len; ++k) oi[k] = f(ai[k], bj[k]);
      i += len;
    } else {
      const int64_t row = i / inner, len = std::min(hi, (row + 1) * inner) - i;
      const T v = b[row % mid];
#pragma omp simd
      for (int64_t k = 0; k < len; ++k) oi[k] = f(ai[k], v);
      i += len;
    }
  }
}

template <typename T, typename F>
void binary_with(F f, const T* a, const T* b, T* out, int64_t n, int64_t mid, int64_t inner) {
  for_blocks(n, [&](int64_t lo, int64_t hi) { binary_range(f, a, b, out, lo, hi, mid, inner); });
}

}  // namespace

template <typename T>
void erf(const T* x, T* out, int64_t n) {
  for_blocks(n, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) out[i] = std::erf(x[i]);
  });
}

template <typename T>
void unary(UnaryOp op, const T* x, T* y, int64_t n) {
  switch (op) {
    case UnaryOp::erf:
      return erf(x, y, n);
    case UnaryOp::relu:
      return relu(x, y, n);
  }
}

template <typename T>
void binary(BinaryOp op, bool swap, const T* a, const T* b, T* out, int64_t n, int64_t mid,
            int64_t inner) {
  switch (op) {
    case BinaryOp::add:
      return binary_with([](T x, T y) { return x + y; }, a, b, out, n, mid, inner);
    case BinaryOp::mul:
      return binary_with([](T x, T y) { return x * y; }, a, b, out, n, mid, inner);
    case BinaryOp::sub:
      if (swap) return binary_with([](T x, T y) { return y - x; }, a, b, out, n, mid, inner);
      return binary_with([](T x, T y) { return x - y; }, a, b, out, n, mid, inner);
    case BinaryOp::div:
      if (swap) return binary_with([](T x, T y) { return y / x; }, a, b, out, n, mid, inner);
      return binary_with([](T x, T y) { return x / y; }, a, b, out, n, mid, inner);
  }
}

template <typename T>
void relu(const T* x, T* y, int64_t n) {
  for_blocks(n, [&](int64_t lo, int64_t hi) {
#pragma omp simd
    for (int64_t i = lo; i < hi; ++i) y[i] = x[i] < T(0) ? T(0) : x[i];  // NaN < 0 is false
  });
}

template <typename T>
void relu_backward(const T* g, const T* y, T* dx, int64_t n) {
  for_blocks(n, [&](int64_t lo, int64_t hi) {
#pragma omp simd
    for (int64_t i = lo; i < hi; ++i) {
      const T gi = g[i];  // read unconditionally, so the loop vectorises to a blend
      dx[i] = y[i] > T(0) ? gi : T(0);
    }
  });
}

template <typename T>
void axpy(T alpha, const T* x, T* y, int64_t n) {
  for_blocks(n, [&](int64_t lo, int64_t hi) {
#pragma omp simd
    for (int64_t i = lo; i < hi; ++i) y[i] += alpha * x[i];
  });
}

#define GRADFLOW_ELEMENTWISE(T)                                                           \
  template void erf<T>(const T*, T*, int64_t);                                            \
  template void unary<T>(UnaryOp, const T*, T*, int64_t);                                 \
  template void binary<T>(BinaryOp, bool, const T*, const T*, T*, int64_t, int64_t,       \
                          int64_t);                                                       \
  template void relu<T>(const T*, T*, int64_t);                                           \
  template void relu_backward<T>(const T*, const T*, T*, int64_t);                        \
  template void axpy<T>(T, const T*, T*, int64_t);
GRADFLOW_ELEMENTWISE(float)
GRADFLOW_ELEMENTWISE(double)
#undef GRADFLOW_ELEMENTWISE

}  // namespace gradflow::cpu
