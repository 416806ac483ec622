"""The CPU backend: NumPy arrays. NumPy does views, elementwise math and small reductions;
the FLOP-heavy kernels (GEMM, convolution, pooling, normalisation) come from gradflow._C."""

from __future__ import annotations

import math

import numpy as np

from gradflow import _C, op_table
from gradflow.backends.base import Backend


def _rsqrt(x):
    return 1.0 / np.sqrt(x)


def _sigmoid(x):
    # exp of a non-positive number only, so no overflow: sigmoid(x) = e^min(x,0) / (1 + e^-|x|)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0, e) / (1.0 + e)


def _relu(x):
    return np.maximum(x, 0).astype(x.dtype, copy=False)


def _erf(x):
    return _C.erf(np.ascontiguousarray(x)).reshape(x.shape)  # ascontiguousarray makes 0-d 1-d


# NumPy runs an op unless this module has its own kernel for it (those above).
_KERNELS = {"rsqrt": _rsqrt, "sigmoid": _sigmoid, "relu": _relu, "erf": _erf}
_UNARY = {r.name: _KERNELS[r.name] if r.numpy is None else getattr(np, r.numpy)
          for r in op_table.UNARY}
_BINARY = {r.name: getattr(np, r.numpy) for r in op_table.BINARY}
_REDUCE = {r.name: getattr(np, r.numpy) for r in op_table.REDUCE}


class CPUBackend(Backend):
    name = "cpu"

    def __init__(self) -> None:
        self._rng = np.random.Generator(np.random.PCG64(0))

    # ---------------------------------------------------------------- creation / copies
    def from_numpy(self, a):
        return a

    def to_numpy(self, x):
        return x

    def empty(self, shape, dtype):
        return np.empty(shape, dtype)

    def full(self, shape, value, dtype):
        return np.full(shape, value, dtype)

    def arange(self, start, stop, step, dtype):
        return np.arange(start, stop, step, dtype=dtype)

    def astype(self, x, dtype):
        return x.astype(dtype)

    def copy(self, x):
        return np.array(x, order="C", copy=True)

    def copy_(self, dst, src):
        np.copyto(dst, src, casting="unsafe")

    # ---------------------------------------------------------------- random numbers
    @property
    def generator(self) -> np.random.Generator:
        """The CPU's seeded NumPy generator (data loading and transforms draw from it too)."""
        return self._rng

    def manual_seed(self, seed):
        self._rng = np.random.Generator(np.random.PCG64(seed))

    def rand(self, shape, dtype):
        return self._rng.random(shape, dtype=np.float64).astype(dtype, copy=False)

    def randn(self, shape, dtype):
        return self._rng.standard_normal(shape, dtype=np.float64).astype(dtype, copy=False)

    def randint(self, low, high, shape):
        return self._rng.integers(low, high, shape, dtype=np.int64)

    def randperm(self, n):
        return self._rng.permutation(n).astype(np.int64)

    # ---------------------------------------------------------------- elementwise
    # NumPy returns a scalar, not an array, for 0-d operands: asarray keeps the contract's
    # arrays (writable in place, as the optimizers' updates need).
    def unary(self, op, x):
        return np.asarray(_UNARY[op](x))

    def binary(self, op, a, b):
        return np.asarray(_BINARY[op](a, b))

    def binary_(self, op, a, b):
        _BINARY[op](a, b, out=a, casting="unsafe")

    def where(self, cond, a, b):
        return np.where(cond, a, b)

    def clip(self, x, lo, hi):
        out = x
        if lo is not None:
            out = np.maximum(out, lo)
        if hi is not None:
            out = np.minimum(out, hi)
        return out.astype(x.dtype, copy=False) if out is not x else x.copy()

    # ---------------------------------------------------------------- reductions
    def reduce(self, op, x, axes, keepdims):
        return np.asarray(_REDUCE[op](x, axis=axes, keepdims=keepdims))

    def argreduce(self, op, x, axis, keepdims):
        f = np.argmax if op == "argmax" else np.argmin
        return np.asarray(f(x, axis=axis, keepdims=keepdims), dtype=np.int64)

    # ---------------------------------------------------------------- views and layout
    def reshape(self, x, shape):
        return x.reshape(shape)

    def permute(self, x, axes):
        return x.transpose(axes)

    def broadcast_to(self, x, shape):
        return np.broadcast_to(x, shape)

    def flip(self, x, axes):
        return np.flip(x, axes)

    def getitem(self, x, key):
        return np.asarray(x[key])

    def setitem(self, x, key, value):
        x[key] = value

    def is_contiguous(self, x):
        return x.flags.c_contiguous

    def contiguous(self, x):
        # a 0-d array is always contiguous (and np.ascontiguousarray would make it 1-d)
        return x if x.flags.c_contiguous else np.ascontiguousarray(x)

    def data_ptr(self, x):
        return x.__array_interface__["data"][0]

    def shares_memory(self, a, b):
        return np.may_share_memory(a, b)  # bounds overlap: cheap, and exact for views

    # ---------------------------------------------------------------- joining, gather/scatter
    def concatenate(self, xs, axis):
        return np.concatenate(xs, axis=axis)

    def pad(self, x, pad_width, value):
        return np.pad(x, pad_width, mode="constant", constant_values=value)

    def take_along_axis(self, x, index, axis):
        return np.take_along_axis(x, index, axis)

    def scatter_add_(self, out, axis, index, src):
        # Build the full index tuple: index along `axis`, the position itself elsewhere.
        grids = list(np.indices(index.shape, sparse=True))
        grids[axis] = index
        src = src[tuple(slice(0, s) for s in index.shape)]
        np.add.at(out, tuple(grids), src)

    def index_add_(self, out, key, values):
        np.add.at(out, key, values)

    # ---------------------------------------------------------------- linear algebra
    def matmul(self, a, b):
        """a @ b by the native GEMM. Broadcast batch dimensions become stride-0 views and
        transposed matrices (e.g. x.T) stay views; only a matrix with no unit stride, or batch
        dimensions that cannot be flattened into one stride, is copied."""
        m, k, n = a.shape[-2], a.shape[-1], b.shape[-1]
        if a.ndim == 2 and b.ndim == 2:  # one product, no batch to arrange
            if m * n * k == 0:  # an empty product, or sums over nothing
                return np.zeros((m, n), np.result_type(a, b))
            return _C.gemm(_unit_stride(a), _unit_stride(b))
        batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        nb = math.prod(batch)  # not reshape(-1, …): that is ambiguous for empty arrays
        if nb * m * n * k == 0:
            return np.zeros(batch + (m, n), np.result_type(a, b))
        ops = []
        for x, shape in ((a, (m, k)), (b, (k, n))):
            x = _unit_stride(x)
            if x.shape[:-2] != batch:
                x = np.broadcast_to(x, batch + shape)
            ops.append(x.reshape((nb,) + shape))
        return _C.matmul(*ops).reshape(batch + (m, n))

    # ---------------------------------------------------------------- nn kernels (gradflow._C)
    def conv2d(self, x, weight, bias, stride, padding, dilation, groups):
        b = None if bias is None else _c(bias)
        return _C.conv2d_forward(_c(x), _c(weight), b, stride, padding, dilation, groups)

    def conv2d_backward_input(self, grad, weight, input_size, stride, padding, dilation, groups):
        return _C.conv2d_backward_input(_c(grad), _c(weight), input_size, stride, padding,
                                        dilation, groups)

    def conv2d_backward_weight(self, x, grad, kernel_size, stride, padding, dilation, groups):
        return _C.conv2d_backward_weight(_c(x), _c(grad), kernel_size, stride, padding, dilation,
                                         groups)

    def channel_sum(self, x):
        return _C.channel_sum(_c(x))

    def max_pool2d(self, x, kernel_size, stride, padding, dilation, ceil_mode):
        return _C.max_pool2d(_c(x), kernel_size, stride, padding, dilation, ceil_mode)

    def adaptive_max_pool2d(self, x, output_size):
        return _C.adaptive_max_pool2d(_c(x), output_size)

    def max_pool2d_backward(self, grad, indices, input_size):
        return _C.max_pool2d_backward(_c(grad), _c(indices), input_size)

    def max_unpool2d(self, x, indices, output_size):
        return _C.max_unpool2d(_c(x), _c(indices), output_size)

    def avg_pool2d(self, x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                   divisor_override):
        return _C.avg_pool2d(_c(x), kernel_size, stride, padding, ceil_mode, count_include_pad,
                             divisor_override)

    def avg_pool2d_backward(self, grad, input_size, kernel_size, stride, padding, ceil_mode,
                            count_include_pad, divisor_override):
        return _C.avg_pool2d_backward(_c(grad), input_size, kernel_size, stride, padding,
                                      ceil_mode, count_include_pad, divisor_override)

    def adaptive_avg_pool2d(self, x, output_size):
        return _C.adaptive_avg_pool2d(_c(x), output_size)

    def adaptive_avg_pool2d_backward(self, grad, input_size):
        return _C.adaptive_avg_pool2d_backward(_c(grad), input_size)

    def batch_norm_train(self, x, weight, bias, eps):
        return _C.batch_norm_forward_train(_c(x), _opt(weight), _opt(bias), eps)

    def batch_norm_apply(self, x, mean, invstd, weight, bias):
        return _C.batch_norm_apply(_c(x), _c(mean), _c(invstd), _opt(weight), _opt(bias))

    def batch_norm_backward(self, x, grad, mean, invstd, weight, training, needs):
        return _C.batch_norm_backward(_c(x), _c(grad), _c(mean), _c(invstd), _opt(weight),
                                      training, tuple(needs))


def _unit_stride(x):
    """x, or a C-contiguous copy of it when neither of its last two axes has unit stride (the
    GEMM reads a matrix in place when one of them has)."""
    (r, c), (s0, s1), e = x.shape[-2:], x.strides[-2:], x.itemsize
    if (s1 == e and s0 >= e * c) or (s0 == e and s1 >= e * r):
        return x
    return np.ascontiguousarray(x)


def _c(x):
    return np.ascontiguousarray(x)


def _opt(x):
    return None if x is None else np.ascontiguousarray(x)
