// Elementwise kernels: out[i] = f(x[i]), out[i] = a[i] op b[i], out[i] = cond[i] ? a[i] : b[i].
// Every operand is strided over out's shape (broadcasts have stride 0) or a scalar; the op is
// a run-time switch (uniform across a warp). Float semantics follow NumPy: maximum/minimum
// propagate NaN, remainder takes the divisor's sign, round is half-to-even.
#include <cmath>

#include "cuda/iter.cuh"
#include "cuda/kernels.h"

namespace gradflow::cuda {
namespace {

// Each unary kernel: its name (a row of gradflow/op_table.py's UNARY) and dtypes; its math is
// a case of unary_op below (or unary_pred for the bool-valued ones).
#define GRADFLOW_UNARY_OPS(X)                                                                  \
  X(neg, int_ok) X(abs, int_ok) X(exp, float_only) X(expm1, float_only) X(log, float_only)     \
  X(log1p, float_only) X(sqrt, float_only) X(rsqrt, float_only) X(sin, float_only)             \
  X(cos, float_only) X(tanh, float_only) X(sigmoid, float_only) X(relu, int_ok)                \
  X(sign, int_ok) X(floor, int_ok) X(ceil, int_ok) X(round, int_ok) X(trunc, int_ok)           \
  X(erf, float_only) X(reciprocal, float_only) X(logical_not, bool_result)                     \
  X(isnan, bool_result) X(isinf, bool_result)
#define GRADFLOW_UNARY_ENUM_VALUE(name, dtypes) name,
#define GRADFLOW_UNARY_KERNEL(name, dtypes) {#name, UnaryDtypes::dtypes},

enum class Unary : int { GRADFLOW_UNARY_OPS(GRADFLOW_UNARY_ENUM_VALUE) };

template <typename T>
__device__ __forceinline__ T unary_op(Unary op, T x) {
  if constexpr (std::is_floating_point_v<T>) {
    switch (op) {
      case Unary::neg: return -x;
      case Unary::abs: return fabs(x);
      case Unary::exp: return exp(x);
      case Unary::expm1: return expm1(x);
      case Unary::log: return log(x);
      case Unary::log1p: return log1p(x);
      case Unary::sqrt: return sqrt(x);
      case Unary::rsqrt: return T(1) / sqrt(x);
      case Unary::sin: return sin(x);
      case Unary::cos: return cos(x);
      case Unary::tanh: return tanh(x);
      case Unary::sigmoid: {
        // e^min(x,0) / (1 + e^-|x|): exp of a non-positive number only, so no overflow
        const T e = exp(-fabs(x));
        return (x >= T(0) ? T(1) : e) / (T(1) + e);
      }
      case Unary::relu: return (x > T(0) || x != x) ? x : T(0);
      case Unary::sign: return x > T(0) ? T(1) : x < T(0) ? T(-1) : x == T(0) ? T(0) : x;
      case Unary::floor: return floor(x);
      case Unary::ceil: return ceil(x);
      case Unary::round: return rint(x);
      case Unary::trunc: return trunc(x);
      case Unary::erf: return erf(x);
      case Unary::reciprocal: return T(1) / x;
      default: return x;
    }
  } else {
    switch (op) {
      case Unary::neg: return -x;
      case Unary::abs: return x < T(0) ? -x : x;
      case Unary::sign: return x > T(0) ? T(1) : x < T(0) ? T(-1) : T(0);
      case Unary::relu: return x > T(0) ? x : T(0);
      default: return x;  // floor, ceil, round, trunc of an integer
    }
  }
}

template <typename T>
__device__ __forceinline__ bool unary_pred(Unary op, T x) {
  switch (op) {
    case Unary::isnan: return is_nan(x);
    case Unary::isinf:
      if constexpr (std::is_floating_point_v<T>) {
        return isinf(x);
      } else {
        return false;
      }
    default: return !(x != T(0));  // logical_not
  }
}

template <typename T, typename O>
__global__ void unary_kernel(int64_t n, Iter<2> it, Unary op, O* out, const T* x) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[2];
    it.offsets(i, off);
    if constexpr (std::is_same_v<O, bool>) {
      out[off[0]] = unary_pred(op, x[off[1]]);
    } else {
      out[off[0]] = unary_op(op, x[off[1]]);
    }
  }
}

template <typename T>
__device__ __forceinline__ T int_pow(T base, T exp) {
  if (exp < T(0)) return base == T(1) ? T(1) : base == T(-1) ? ((exp & 1) ? T(-1) : T(1)) : T(0);
  T result = 1;
  while (exp > 0) {
    if (exp & 1) result *= base;
    base *= base;
    exp >>= 1;
  }
  return result;
}

// Arithmetic in C, the compute type (bool arithmetic runs in int64 and converts back).
template <typename C>
__device__ __forceinline__ C arith(Binary op, C a, C b) {
  switch (op) {
    case Binary::add: return a + b;
    case Binary::sub: return a - b;
    case Binary::mul: return a * b;
    case Binary::div:
      if constexpr (std::is_floating_point_v<C>) {
        return a / b;
      } else {
        return b == C(0) ? C(0) : a / b;
      }
    case Binary::pow:
      if constexpr (std::is_floating_point_v<C>) {
        return pow(a, b);
      } else {
        return int_pow(a, b);
      }
    case Binary::maximum: return (a > b || is_nan(a)) ? a : b;
    case Binary::minimum: return (a < b || is_nan(a)) ? a : b;
    case Binary::remainder: {
      if constexpr (std::is_floating_point_v<C>) {
        C r = fmod(a, b);
        if (r != C(0) && ((r < C(0)) != (b < C(0)))) r += b;
        return r;
      } else {
        if (b == C(0)) return C(0);
        C r = a % b;
        if (r != C(0) && ((r < C(0)) != (b < C(0)))) r += b;
        return r;
      }
    }
    default: return C(0);
  }
}

template <typename T>
__device__ __forceinline__ bool compare(Binary op, T a, T b) {
  switch (op) {
    case Binary::eq: return a == b;
    case Binary::ne: return a != b;
    case Binary::lt: return a < b;
    case Binary::le: return a <= b;
    case Binary::gt: return a > b;
    case Binary::ge: return a >= b;
    case Binary::logical_and: return (a != T(0)) && (b != T(0));
    case Binary::logical_or: return (a != T(0)) || (b != T(0));
    default: return (a != T(0)) != (b != T(0));  // logical_xor
  }
}

template <typename T, typename O>
__global__ void binary_kernel(int64_t n, Iter<3> it, Binary op, O* out, const T* a, T sa,
                              const T* b, T sb) {
  using C = std::conditional_t<std::is_same_v<T, bool>, int64_t, T>;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[3];
    it.offsets(i, off);
    const T va = a ? a[off[1]] : sa;
    const T vb = b ? b[off[2]] : sb;
    if constexpr (std::is_same_v<O, bool> && !std::is_same_v<T, bool>) {
      out[off[0]] = compare(op, va, vb);
    } else if constexpr (std::is_same_v<T, bool>) {
      // bool out: a comparison, or bool arithmetic (add = or, mul = and, ...)
      const bool is_cmp = op >= Binary::eq;
      out[off[0]] = is_cmp ? compare(op, va, vb) : arith<C>(op, C(va), C(vb)) != 0;
    } else {
      out[off[0]] = arith<C>(op, va, vb);
    }
  }
}

template <typename T>
__global__ void where_kernel(int64_t n, Iter<4> it, T* out, const bool* cond, const T* a, T sa,
                             const T* b, T sb) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[4];
    it.offsets(i, off);
    out[off[0]] = cond[off[1]] ? (a ? a[off[2]] : sa) : (b ? b[off[3]] : sb);
  }
}

const std::vector<int64_t>& strides_of(const Operand& o, const std::vector<int64_t>& zeros) {
  return o.array ? o.array->strides : zeros;
}

template <typename T>
const T* ptr_of(const Operand& o) {
  return o.array ? reinterpret_cast<const T*>(o.array->data()) : nullptr;
}

template <typename T>
T scalar_of(const Operand& o) {
  if constexpr (std::is_same_v<T, bool>) {
    return o.value != 0.0;
  } else {
    return static_cast<T>(o.value);
  }
}

}  // namespace

const std::vector<UnaryKernel>& unary_kernels() {
  static const std::vector<UnaryKernel> kernels = {GRADFLOW_UNARY_OPS(GRADFLOW_UNARY_KERNEL)};
  return kernels;
}

void unary(int code, const DeviceArray& out, const DeviceArray& x) {
  const Unary op = static_cast<Unary>(code);
  const int64_t n = out.numel();
  if (n == 0) return;
  const std::vector<int64_t>* s[2] = {&out.strides, &x.strides};
  Iter<2> it = make_iter<2>(out.shape, s);
  const int grid = grid_for(n);
  if (out.dtype == DType::b8) {
    GF_DISPATCH(x.dtype, T,
        unary_kernel<T, bool><<<grid, 256, 0, cuda_stream()>>>(
            n, it, op, reinterpret_cast<bool*>(out.data()),
            reinterpret_cast<const T*>(x.data())));
  } else {
    GF_DISPATCH(x.dtype, T,
        unary_kernel<T, T><<<grid, 256, 0, cuda_stream()>>>(
            n, it, op, reinterpret_cast<T*>(out.data()), reinterpret_cast<const T*>(x.data())));
  }
  check_launch("unary");
}

void binary(Binary op, const DeviceArray& out, DType compute, Operand a, Operand b) {
  const int64_t n = out.numel();
  if (n == 0) return;
  const std::vector<int64_t> zeros(out.shape.size(), 0);
  const std::vector<int64_t>* s[3] = {&out.strides, &strides_of(a, zeros), &strides_of(b, zeros)};
  Iter<3> it = make_iter<3>(out.shape, s);
  const int grid = grid_for(n);
  if (out.dtype == DType::b8) {
    GF_DISPATCH(compute, T,
        binary_kernel<T, bool><<<grid, 256, 0, cuda_stream()>>>(
            n, it, op, reinterpret_cast<bool*>(out.data()), ptr_of<T>(a), scalar_of<T>(a),
            ptr_of<T>(b), scalar_of<T>(b)));
  } else {
    GF_DISPATCH(compute, T,
        binary_kernel<T, T><<<grid, 256, 0, cuda_stream()>>>(
            n, it, op, reinterpret_cast<T*>(out.data()), ptr_of<T>(a), scalar_of<T>(a),
            ptr_of<T>(b), scalar_of<T>(b)));
  }
  check_launch("binary");
}

void where(const DeviceArray& out, const DeviceArray& cond, Operand a, Operand b) {
  const int64_t n = out.numel();
  if (n == 0) return;
  const std::vector<int64_t> zeros(out.shape.size(), 0);
  const std::vector<int64_t>* s[4] = {&out.strides, &cond.strides, &strides_of(a, zeros),
                                      &strides_of(b, zeros)};
  Iter<4> it = make_iter<4>(out.shape, s);
  const int grid = grid_for(n);
  GF_DISPATCH(out.dtype, T,
      where_kernel<T><<<grid, 256, 0, cuda_stream()>>>(
          n, it, reinterpret_cast<T*>(out.data()), reinterpret_cast<const bool*>(cond.data()),
          ptr_of<T>(a), scalar_of<T>(a), ptr_of<T>(b), scalar_of<T>(b)));
  check_launch("where");
}

}  // namespace gradflow::cuda
