// Host entry points of the CUDA kernels, one family per .cu file. Every function takes
// DeviceArrays that bind_cuda.cpp has already validated (dtypes, shapes, ranks <= kMaxDims,
// views inside their storage) and launches on the module's stream without waiting.
#pragma once
#include <atomic>
#include <cstdint>
#include <vector>

#include "conv_geom.h"
#include "cuda/gemm_batch.h"
#include "cuda/pool_index.h"
#include "cuda/runtime.h"

namespace gradflow::cuda {

// An elementwise operand: a device array, or a scalar when `array` is null.
struct Operand {
  const DeviceArray* array = nullptr;
  double value = 0.0;
};

// ---- copy.cu
// dst[i] = src[i] converted to dst's dtype; src has dst's shape (broadcasts have stride 0).
void copy_cast(const DeviceArray& dst, const DeviceArray& src);
// Every element of dst set to `value` (`ivalue` for int64, exact beyond 2^53).
void fill(const DeviceArray& dst, double value, int64_t ivalue);
// out[i] = start + i * step (contiguous out); int64 uses istart/istep.
void arange(const DeviceArray& out, double start, double step, int64_t istart, int64_t istep);

// ---- elementwise.cu
// The unary kernels, listed by name with the dtypes each takes in elementwise.cu, and the
// binary and reduction kernels by name here: the names of gradflow/op_table.py's rows
// (tests/test_op_table.py checks both ways). Each list makes its enum, so a kernel is found
// by its name, never by a position kept in step by hand. Binary: the bool-valued ops come
// last, from eq on.
#define GRADFLOW_BINARY_OPS(X)                                                                 \
  X(add) X(sub) X(mul) X(div) X(pow) X(maximum) X(minimum) X(remainder) X(eq) X(ne) X(lt)    \
  X(le) X(gt) X(ge) X(logical_and) X(logical_or) X(logical_xor)
#define GRADFLOW_REDUCE_OPS(X) X(sum) X(prod) X(max) X(min) X(mean) X(all) X(any)
#define GRADFLOW_ENUM_VALUE(name) name,
#define GRADFLOW_NAME_STRING(name) #name,

// A unary kernel's dtypes, op_table.py's classes: float input only (FLOAT), the input's
// dtype kept (INT, no bool input), or a bool result of any input (BOOL).
enum class UnaryDtypes : int { float_only, int_ok, bool_result };
struct UnaryKernel {
  const char* name;
  UnaryDtypes dtypes;
};
// Every unary kernel; `op` below is an index into it.
const std::vector<UnaryKernel>& unary_kernels();
// out = op(x); x has out's shape and dtype (bool_result ops: out is bool).
void unary(int op, const DeviceArray& out, const DeviceArray& x);
enum class Binary : int { GRADFLOW_BINARY_OPS(GRADFLOW_ENUM_VALUE) };
// out = a op b; array operands have out's shape and one common dtype (the compute type,
// `compute`), out has that dtype or bool (comparisons, logical ops).
void binary(Binary op, const DeviceArray& out, DType compute, Operand a, Operand b);
// out = cond ? a : b; cond is bool, operands of out's dtype (or scalars), all of out's shape.
void where(const DeviceArray& out, const DeviceArray& cond, Operand a, Operand b);

// ---- reduce.cu
enum class Reduce : int { GRADFLOW_REDUCE_OPS(GRADFLOW_ENUM_VALUE) };
// out (C-contiguous, shape = x.shape[:x.ndim - n_reduce]) = op over x's last n_reduce dims.
void reduce(Reduce op, const DeviceArray& out, const DeviceArray& x, int n_reduce);
// out (int64, contiguous) = index of the max (min) along x's last dim; first NaN wins.
void argreduce(bool is_max, const DeviceArray& out, const DeviceArray& x);

// ---- index.cu
enum class IndexMode : int { gather, put, add };
// Advanced indexing. target's first n_idx dims are indexed by idx[k] (int64, each with
// values' first nb dims as its shape, broadcast strides); the rest match values' last dims:
//   gather: values[b, r] = target[idx0[b], ..., r]   put: target[...] = values[b, r]
//   add:    target[...] += values[b, r] (atomic, repeated indices accumulate)
// Out-of-range indices are skipped and flagged; returns false if any was.
bool index_op(IndexMode mode, const DeviceArray& target, int n_idx, const DeviceArray* idx,
              int nb, const DeviceArray& values);
// Along one axis: x is viewed with index's shape and a zero stride on the axis;
//   gather: values[i] = x[i + index[i] * axis_stride]   add: x[...] += values[i] (atomic)
// Returns false if an index was outside [-axis_size, axis_size).
bool axis_op(IndexMode mode, const DeviceArray& x, int64_t axis_stride, int64_t axis_size,
             const DeviceArray& index, const DeviceArray& values);

// ---- random.cu
enum class Random : int { uniform, normal, integer, bits };
// Fills contiguous out from the Philox stream: uniform [0,1), standard normal, int64 in
// [low, high), or non-negative int64 bits.
void random(Random kind, const DeviceArray& out, int64_t low, int64_t high);

// ---- gemm.cu
// c[p] = a[p] @ b[p] for p < batch, row-major contiguous (m x k) @ (k x n) -> (m x n);
// a stride of 0 broadcasts one matrix over the batch.
template <typename T>
void gemm_batched(int64_t batch, int64_t m, int64_t n, int64_t k, const T* a, int64_t stride_a,
                  const T* b, int64_t stride_b, T* c, int64_t stride_c);
// c[p] = a[p] @ b[p] for p < batch, (m x k) @ (k x n) -> (m x n), each operand a MatrixBatch
// (rows ld apart, matrix p at (p / inner, p % inner) of a two-level batch; gemm_batch.h).
template <typename T>
void gemm_strided(int64_t batch, int64_t inner, int64_t m, int64_t n, int64_t k,
                  MatrixBatch<const T> a, MatrixBatch<const T> b, MatrixBatch<T> c);
// Thread blocks of one m x n product (split-K decisions).
template <typename T>
int64_t gemm_tiles(int64_t m, int64_t n);

// ---- conv.cu: 2-D convolution, the CPU's contract (cpu/conv.h). Workspaces: columns of at
// most conv_workspace_bytes() per call.
#include "conv_entry_points.h"

// ---- pool.cu (pooling): contiguous float arrays, P = N*C planes, geometry as pool_index.h.
// x (P, H, W) -> y, idx (P, OH, OW); strided or adaptive windows.
void max_pool2d(const pool::Geom& g, bool adaptive, const DeviceArray& x, const DeviceArray& y,
                const DeviceArray& idx);
// dx (P, H, W) = 0, then dx[p].flat[idx] += dy for dy, idx (P, OH, OW); idx outside skipped.
void max_pool2d_backward(const pool::Geom& g, const DeviceArray& dy, const DeviceArray& idx,
                         const DeviceArray& dx);
// y (P, H, W) = 0, then y[p].flat[idx] = x for x, idx (P, OH, OW); false (after a wait) if an
// index was outside [0, H*W).
bool max_unpool2d(const pool::Geom& g, const DeviceArray& x, const DeviceArray& idx,
                  const DeviceArray& y);
void avg_pool2d(const pool::Geom& g, bool count_include_pad, int64_t divisor_override,
                const DeviceArray& x, const DeviceArray& y);
// dx (P, H, W) from dy (P, OH, OW), overwritten.
void avg_pool2d_backward(const pool::Geom& g, bool count_include_pad, int64_t divisor_override,
                         const DeviceArray& dy, const DeviceArray& dx);
void adaptive_avg_pool2d(const pool::Geom& g, const DeviceArray& x, const DeviceArray& y);
void adaptive_avg_pool2d_backward(const pool::Geom& g, const DeviceArray& dy,
                                  const DeviceArray& dx);
// y (P, OH, OW) resized from x (P, H, W) (nearest or bilinear, pool_index.h); its adjoint
// writes dx (P, H, W) from dy (P, OH, OW).
void interpolate(const pool::Geom& g, const pool::Resize& r, const DeviceArray& x,
                 const DeviceArray& y);
void interpolate_backward(const pool::Geom& g, const pool::Resize& r, const DeviceArray& dy,
                          const DeviceArray& dx);

// ---- batchnorm.cu (normalization): x, y, dy, dx (N, C, L) contiguous; the rest (C,); w, b
// and the wanted gradients may be null.
void batch_norm_train(const DeviceArray& x, const DeviceArray* w, const DeviceArray* b,
                      double eps, const DeviceArray& y, const DeviceArray& mean,
                      const DeviceArray& var, const DeviceArray& invstd);
void batch_norm_apply(const DeviceArray& x, const DeviceArray& mean, const DeviceArray& invstd,
                      const DeviceArray* w, const DeviceArray* b, const DeviceArray& y);
void batch_norm_backward(const DeviceArray& x, const DeviceArray& dy, const DeviceArray& mean,
                         const DeviceArray& invstd, const DeviceArray* w, bool training,
                         const DeviceArray* dx, const DeviceArray* dw, const DeviceArray* db);

// ---- softmax.cu (softmax family and losses): contiguous float arrays.
// y = softmax (or log_softmax) of x viewed as (outer, D, inner) along D.
void softmax_forward(const DeviceArray& x, const DeviceArray& y, int64_t outer, int64_t D,
                     int64_t inner, bool log);
// dx from the forward's output y and the gradient g, same view.
void softmax_backward(const DeviceArray& y, const DeviceArray& g, const DeviceArray& dx,
                      int64_t outer, int64_t D, int64_t inner, bool log);
// Per position of logp (N, C, S) with target (N, S): loss, weight and (when smooth is given)
// the smoothing term, each (N, S); a target out of range is a deferred error.
void nll_forward(const DeviceArray& logp, const DeviceArray& target, const DeviceArray* weight,
                 int64_t ignore_index, const DeviceArray& loss, const DeviceArray& w_out,
                 const DeviceArray* smooth);
// dlogp (N, C, S) from the gradients of nll_forward's loss and smoothing outputs.
void nll_backward(const DeviceArray& g_loss, const DeviceArray* g_smooth,
                  const DeviceArray& target, const DeviceArray* weight, int64_t ignore_index,
                  const DeviceArray& dlogp);

}  // namespace gradflow::cuda
