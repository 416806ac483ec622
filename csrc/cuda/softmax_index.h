// The per-thread bodies of the softmax-family and NLL kernels (softmax.cu). Plain C++ with
// GRADFLOW_HD, so tests/native/softmax_test.cpp runs them on the host.
//
// Softmax over axis D of x viewed as (outer, D, inner), C-contiguous: element (o, j, i) is at
// (o*D + j)*inner + i. A row's statistics come from one pass in an online (max, sum) state:
// adding x keeps s = sum exp(x_j - m) for the running max m (rescaling s when m grows), and two
// states merge by rescaling both to the larger max. -inf adds nothing (exp(-inf - m) = 0), so
// a row of only -inf ends with s = 0 and gives NaN, as exp(x - max) / sum does; NaN anywhere
// makes s NaN, so the row is NaN. Then softmax = exp(x - m) / s, log_softmax = x - m - log(s).
//
// NLL over log-probabilities logp (N, C, S) (S = the spatial positions, 1 without), targets
// (N, S) int64 and class weights w (C,) (1 without): at position q = n*S + s with target t,
//   kept (t != ignore_index): loss = -w[t] * logp[n, t, s], weight = w[t],
//                             smooth = -sum_c w[c] * logp[n, c, s]   (label smoothing term)
//   ignored: all three 0;  t outside [0, C) (not ignored): all three 0 and `bad` set.
// Its adjoint, the gradient: dlogp[n, c, s] = -(c == t) * w[t] * g_loss[q] - w[c] * g_smooth[q]
// at kept positions, 0 at the others.
#pragma once
#include <cmath>
#include <cstdint>

#include "cuda/host_device.h"

namespace gradflow::cuda::softmax {

GRADFLOW_HD int64_t row_offset(int64_t o, int64_t j, int64_t D, int64_t inner, int64_t i) {
  return (o * D + j) * inner + i;
}

// exp and log in the accumulation type, the same functions on host and device.
GRADFLOW_HD float exp_of(float v) { return expf(v); }
GRADFLOW_HD double exp_of(double v) { return exp(v); }
GRADFLOW_HD float log_of(float v) { return logf(v); }
GRADFLOW_HD double log_of(double v) { return log(v); }

template <typename A>
struct Online {
  A max, sum;
};

template <typename A>
GRADFLOW_HD Online<A> online_empty() {
  return {-static_cast<A>(INFINITY), A(0)};
}

template <typename A>
GRADFLOW_HD Online<A> online_add(Online<A> s, A x) {
  if (x == -static_cast<A>(INFINITY)) return s;
  if (x > s.max) return {x, s.sum * exp_of(s.max - x) + A(1)};
  return {s.max, s.sum + exp_of(x - s.max)};
}

template <typename A>
GRADFLOW_HD Online<A> online_merge(Online<A> a, Online<A> b) {
  if (b.sum == A(0) && b.max == -static_cast<A>(INFINITY)) return a;
  if (a.sum == A(0) && a.max == -static_cast<A>(INFINITY)) return b;
  const A m = a.max > b.max ? a.max : b.max;
  return {m, a.sum * exp_of(a.max - m) + b.sum * exp_of(b.max - m)};
}

template <typename T, typename A>
GRADFLOW_HD T softmax_value(T x, Online<A> s, bool log) {
  const A d = static_cast<A>(x) - s.max;
  return static_cast<T>(log ? d - log_of(s.sum) : exp_of(d) / s.sum);
}

// The backward's per-row sum: sum g * y (softmax) or sum g (log_softmax).
template <typename T>
GRADFLOW_HD T grad_row_term(T g, T y, bool log) {
  return log ? g : g * y;
}

// dx from the row sum: y * (g - sum) (softmax) or g - exp(y) * sum (log_softmax).
template <typename T, typename A>
GRADFLOW_HD T softmax_grad(T g, T y, A sum, bool log) {
  return log ? static_cast<T>(static_cast<A>(g) - exp_of(static_cast<A>(y)) * sum)
             : static_cast<T>(static_cast<A>(y) * (static_cast<A>(g) - sum));
}

template <typename T>
struct NllTerm {
  T loss, weight, smooth;
  bool bad;
};

template <typename T>
GRADFLOW_HD NllTerm<T> nll_term(const T* logp, const int64_t* target, const T* w,
                                int64_t ignore_index, int64_t C, int64_t S, bool smooth,
                                int64_t q) {
  const int64_t t = target[q], n = q / S, s = q - n * S;
  if (t == ignore_index) return {T(0), T(0), T(0), false};
  if (t < 0 || t >= C) return {T(0), T(0), T(0), true};
  const T* at = logp + n * C * S + s;
  const T wt = w ? w[t] : T(1);
  T sm = T(0);
  if (smooth)
    for (int64_t c = 0; c < C; ++c) sm -= (w ? w[c] : T(1)) * at[c * S];
  return {-wt * at[t * S], wt, sm, false};
}

// dlogp at element e of (N, C, S); g_smooth may be null (no smoothing term).
template <typename T>
GRADFLOW_HD T nll_grad(const T* g_loss, const T* g_smooth, const int64_t* target, const T* w,
                       int64_t ignore_index, int64_t C, int64_t S, int64_t e) {
  const int64_t n = e / (C * S), r = e - n * C * S, c = r / S, q = n * S + (r - c * S);
  const int64_t t = target[q];
  if (t == ignore_index || t < 0 || t >= C) return T(0);
  T g = c == t ? -(w ? w[t] : T(1)) * g_loss[q] : T(0);
  if (g_smooth) g -= (w ? w[c] : T(1)) * g_smooth[q];
  return g;
}

}  // namespace gradflow::cuda::softmax
