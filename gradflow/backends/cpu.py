"""The CPU backend: NumPy arrays. NumPy does views, elementwise math and small reductions;
the FLOP-heavy kernels (GEMM, convolution, pooling, normalisation) and the hot elementwise ops
of training on large arrays (see _native_binary) come from gradflow._C."""

from __future__ import annotations

import functools
import math

import numpy as np

from gradflow import _C, op_table
from gradflow.backends.base import Backend
from gradflow.types import BFLOAT16_BITS, HALF_FLOATS, cast, widen


def _rsqrt(x):
    return 1.0 / np.sqrt(x)


def _sigmoid(x):
    # exp of a non-positive number only, so no overflow: sigmoid(x) = e^min(x,0) / (1 + e^-|x|)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0, e) / (1.0 + e)


def _relu(x):
    if x.size >= NATIVE_MIN and x.dtype in _FLOATS and x.flags.c_contiguous:
        return _C.relu(x)
    return np.maximum(x, 0).astype(x.dtype, copy=False)


def _erf(x):
    return _C.erf(np.ascontiguousarray(x)).reshape(x.shape)  # ascontiguousarray makes 0-d 1-d


# Sizes from which the native elementwise kernels (csrc/cpu/elementwise.cpp) run instead of
# NumPy, measured on one and two threads (float32): relu, relu's backward, axpy_ and broadcast
# binaries (a bias row, a per-channel scale) beat NumPy from about a thousand elements (NumPy
# makes two or three passes, or walks the broadcast); NumPy's own loops are as fast on one
# thread for two operands of one shape or a scalar, so those go native only when a second
# thread can share the work, from the kernels' parallel grain on.
NATIVE_MIN = 4096
NATIVE_SAME_SHAPE_MIN = 65536
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_NATIVE_BINARY = frozenset(_C.binary_ops)


def _broadcast_block(full, small):
    """inner such that small, broadcast to full, reads small.flat[(i // inner) % small.size]
    at full's flat index i; None when its non-1 dims are not one block equal to full's.
    An all-ones small is one value per row of all the elements (inner = full's size)."""
    lead = len(full) - len(small)
    dims = [k for k, s in enumerate(small) if s != 1]
    if not dims:
        return math.prod(full)
    first, last = dims[0], dims[-1]
    if small[first:last + 1] != full[lead + first:lead + last + 1]:
        return None
    return math.prod(full[lead + last + 1:])


def _native_binary(op, a, b, out=None):
    """The native kernel's a op b (written into out when given), or None where NumPy runs:
    an op or dtype without a kernel, a small or non-contiguous array, operands of different
    dtypes, or a broadcast the kernel's pattern does not cover (both operands broadcast, or
    runs shorter than 16 elements)."""
    a_is, b_is = type(a) is np.ndarray, type(b) is np.ndarray
    full, small, swap = (b, a, True) if b_is and (not a_is or b.size > a.size) else (a, b, False)
    n = full.size
    if (n < NATIVE_MIN or op not in _NATIVE_BINARY or full.dtype not in _FLOATS
            or not full.flags.c_contiguous or (swap and out is not None)):
        return None
    if type(small) is not np.ndarray:
        if type(small) not in (float, int) or n < NATIVE_SAME_SHAPE_MIN or _one_thread():
            return None
        return _C.binary(full, op, np.full(1, small, full.dtype), out, n, swap)
    if small.dtype != full.dtype or not small.flags.c_contiguous or (
            out is not None and np.may_share_memory(out, small)):
        return None
    if small.shape == full.shape:
        if n < NATIVE_SAME_SHAPE_MIN or _one_thread():
            return None
        return _C.binary(full, op, small, out, 1, swap)
    inner = _broadcast_block(full.shape, small.shape) if small.ndim <= full.ndim else None
    if inner is None or (small.size if inner == 1 else inner) < 16:
        return None
    return _C.binary(full, op, small, out, inner, swap)


def _large(x):
    """Whether x is an array of at least NATIVE_MIN elements (the first test, kept cheap)."""
    return type(x) is np.ndarray and x.size >= NATIVE_MIN


def _one_thread():
    return _C.get_num_threads() == 1


# NumPy runs an op unless this module has its own kernel for it (those above).
_KERNELS = {"rsqrt": _rsqrt, "sigmoid": _sigmoid, "relu": _relu, "erf": _erf}
_UNARY = {r.name: _KERNELS[r.name] if r.numpy is None else getattr(np, r.numpy)
          for r in op_table.UNARY}
_BINARY = {r.name: getattr(np, r.numpy) for r in op_table.BINARY}


def _mean(x, axis, keepdims):
    """np.mean without its Python layer (15 µs a call): the sum over the count, the sum
    accumulated as np.mean's (in a float x's dtype, else float64)."""
    total = np.asarray(np.add.reduce(x, axis=axis, keepdims=keepdims,
                                     dtype=None if x.dtype.kind == "f" else np.float64))
    return np.true_divide(total, math.prod([x.shape[a] for a in axis]), out=total)


# The ufuncs' own reductions where there is one: np.sum and kin add a Python layer per call.
_FAST_REDUCE = {"sum": np.add.reduce, "prod": np.multiply.reduce, "max": np.maximum.reduce,
                "min": np.minimum.reduce, "mean": _mean}
_REDUCE = {r.name: _FAST_REDUCE.get(r.name) or getattr(np, r.numpy) for r in op_table.REDUCE}


# float16 and bfloat16 are storage types: a method that computes on their values runs on
# float32 copies (`widen`) and rounds its floating results back (`cast`), as PyTorch's CPU
# kernels accumulate half types in float32. The in-place methods do the same by hand.
def _half_of(arrays) -> "np.dtype | None":
    """The dtype of the first float16 or bfloat16 array among `arrays`, else None."""
    for a in arrays:  # (itemsize first: comparing dtypes is slow)
        if type(a) is np.ndarray and a.itemsize == 2 and a.dtype in HALF_FLOATS:
            return a.dtype
    return None


def _narrowed(out, half: np.dtype):
    """A method's floating results (an array or a tuple of them) rounded to `half`."""
    if isinstance(out, tuple):
        return tuple(_narrowed(o, half) for o in out)
    if isinstance(out, np.ndarray) and out.dtype.kind == "f":
        return cast(out, half)
    return out


def _in_float32(method):
    """A computing method: with a half type among its arrays, it runs on float32 copies and
    its floating results are rounded back to that type."""
    @functools.wraps(method)
    def run(self, *args):
        half = _half_of(args)
        if half is None:
            return method(self, *args)
        widened = (widen(a) if type(a) is np.ndarray else a for a in args)
        return _narrowed(method(self, *widened), half)

    return run


def _written_in_float32(method):
    """An in-place method whose first array argument is written: with a half type among its
    arrays, it runs on float32 copies and the result is written back rounded."""
    @functools.wraps(method)
    def run(self, *args):
        if _half_of(args) is None:
            return method(self, *args)
        out = next(a for a in args if type(a) is np.ndarray)
        work = widen(out) if out.dtype in HALF_FLOATS else out  # (widen copies)
        method(self, *(work if a is out else widen(a) if type(a) is np.ndarray else a
                       for a in args))
        if work is not out:
            out[...] = cast(work, out.dtype)

    return run


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
        if dtype == BFLOAT16_BITS:
            return np.full(shape, cast(np.asarray(value, np.float32), dtype))
        out = np.empty(shape, dtype)
        if out.dtype.kind == "f":  # (fill is np.full's work without its Python layer)
            out.fill(value)
        else:  # NaN into an integer array: np.full's unsafe cast, not fill's ValueError
            np.copyto(out, value, casting="unsafe")
        return out

    def arange(self, start, stop, step, dtype):
        if dtype == BFLOAT16_BITS:
            return cast(np.arange(start, stop, step, dtype=np.float32), dtype)
        return np.arange(start, stop, step, dtype=dtype)

    def astype(self, x, dtype):
        return cast(x, dtype)

    def copy(self, x):
        return np.array(x, order="C", copy=True)

    def copy_(self, dst, src):
        if dst.dtype == BFLOAT16_BITS or getattr(src, "dtype", None) == BFLOAT16_BITS:
            src = cast(np.asarray(src), dst.dtype)
        np.copyto(dst, src, casting="unsafe")

    # ---------------------------------------------------------------- random numbers
    @property
    def generator(self) -> np.random.Generator:
        """The CPU's seeded NumPy generator (data loading and transforms draw from it too)."""
        return self._rng

    def manual_seed(self, seed):
        self._rng = np.random.Generator(np.random.PCG64(seed))

    def rand(self, shape, dtype):
        return cast(self._rng.random(shape, dtype=np.float64), dtype)

    def randn(self, shape, dtype):
        return cast(self._rng.standard_normal(shape, dtype=np.float64), dtype)

    def randint(self, low, high, shape):
        return self._rng.integers(low, high, shape, dtype=np.int64)

    def randperm(self, n):
        return self._rng.permutation(n).astype(np.int64)

    # ---------------------------------------------------------------- elementwise
    # NumPy returns a scalar, not an array, for 0-d operands: asarray keeps the contract's
    # arrays (writable in place, as the optimizers' updates need). These hot methods test for
    # half floats inline (itemsize first: it is cheap), so float32 calls pay no wrapper.
    def unary(self, op, x):
        if x.itemsize == 2 and x.dtype in HALF_FLOATS:
            return _narrowed(self.unary(op, widen(x)), x.dtype)
        return np.asarray(_UNARY[op](x))

    def binary(self, op, a, b):
        a_is, b_is = type(a) is np.ndarray, type(b) is np.ndarray  # else a Python number
        if (a_is and a.itemsize == 2) or (b_is and b.itemsize == 2):
            return self._binary_half(op, a, b)
        if (a_is and a.size >= NATIVE_MIN) or (b_is and b.size >= NATIVE_MIN):
            out = _native_binary(op, a, b)
            if out is not None:
                return out
        return np.asarray(_BINARY[op](a, b))

    @_in_float32
    def _binary_half(self, op, a, b):
        return np.asarray(_BINARY[op](a, b))

    def binary_(self, op, a, b):
        if a.itemsize == 2 or getattr(b, "itemsize", 0) == 2:
            return self._binary_half_(op, a, b)
        if not _large(a) or _native_binary(op, a, b, a) is None:
            _BINARY[op](a, b, out=a, casting="unsafe")

    @_written_in_float32
    def _binary_half_(self, op, a, b):
        _BINARY[op](a, b, out=a, casting="unsafe")

    # ---------------------------------------------------------------- fused kernels
    @_in_float32
    def relu_backward(self, grad, y):
        if (grad.size >= NATIVE_MIN and grad.dtype in _FLOATS and grad.dtype == y.dtype
                and grad.shape == y.shape and grad.flags.c_contiguous and y.flags.c_contiguous):
            return _C.relu_backward(grad, y)
        return np.where(y > 0, grad, np.zeros((), grad.dtype))

    @_written_in_float32
    def axpy_(self, y, alpha, x):
        if (y.size >= NATIVE_MIN and y.dtype in _FLOATS and x.dtype == y.dtype
                and x.shape == y.shape and y.flags.c_contiguous and x.flags.c_contiguous
                and not np.may_share_memory(x, y)):
            _C.axpy_(y, alpha, x)
        else:
            np.add(y, np.multiply(x, alpha), out=y, casting="unsafe")

    # nll_loss on logp (N, C, S): one gather where the composed path records a dozen ops
    @_in_float32
    def nll_loss(self, logp, target, weight, ignore_index, smooth):
        n, c, s = logp.shape
        keep, safe, w = _nll_targets(target, weight, ignore_index, c, logp.dtype)
        picked = logp[np.arange(n)[:, None], safe, np.arange(s)]  # logp[i, safe[i, j], j]
        smoothing = None
        if smooth:
            per_class = logp if weight is None else logp * weight[None, :, None]
            smoothing = -per_class.sum(1) * keep
        return -w * picked, w, smoothing

    @_in_float32
    def nll_loss_backward(self, grad_loss, grad_smooth, target, weight, ignore_index, classes):
        keep, safe, w = _nll_targets(target, weight, ignore_index, classes, grad_loss.dtype)
        n, s = target.shape
        dlogp = np.zeros((n, classes, s), grad_loss.dtype)
        if grad_smooth is not None:  # -w_c * g_smooth at every class of a kept position
            g = (grad_smooth * keep)[:, None, :]
            dlogp -= g if weight is None else weight[None, :, None] * g
        at_target = (np.arange(n)[:, None], safe, np.arange(s))
        dlogp[at_target] -= w * grad_loss
        return dlogp

    @_in_float32
    def where(self, cond, a, b):
        return np.where(cond, a, b)

    @_in_float32
    def clip(self, x, lo, hi):
        out = x
        if lo is not None:
            out = np.maximum(out, lo)
        if hi is not None:
            out = np.minimum(out, hi)
        return out.astype(x.dtype, copy=False) if out is not x else x.copy()

    # ---------------------------------------------------------------- reductions
    def reduce(self, op, x, axes, keepdims):
        if x.itemsize == 2 and x.dtype in HALF_FLOATS:
            return _narrowed(self.reduce(op, widen(x), axes, keepdims), x.dtype)
        return np.asarray(_REDUCE[op](x, axis=axes, keepdims=keepdims))

    @_in_float32
    def argreduce(self, op, x, axis, keepdims):
        f = np.argmax if op == "argmax" else np.argmin
        return np.asarray(f(x, axis=axis, keepdims=keepdims), dtype=np.int64)

    # ---------------------------------------------------------------- views and layout
    def reshape(self, x, shape):
        return x.reshape(shape)

    def permute(self, x, axes):
        return x.transpose(axes)

    def broadcast_to(self, x, shape):
        if x.ndim == 0:  # a scalar (a loss's gradient): the read-only stride-0 view made
            out = np.ndarray(shape, x.dtype, x, 0, (0,) * len(shape))  # directly, without
            out.flags.writeable = False  # np.broadcast_to's Python layer
            return out
        return np.broadcast_to(x, shape)

    def flip(self, x, axes):
        return np.flip(x, axes)

    def getitem(self, x, key):
        return np.asarray(x[key])

    def setitem(self, x, key, value):
        if x.dtype == BFLOAT16_BITS and getattr(value, "dtype", None) != BFLOAT16_BITS:
            value = cast(np.asarray(value, np.float32), x.dtype)
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

    def owns_memory(self, x):
        return type(x) is np.ndarray and x.base is None

    # ---------------------------------------------------------------- joining, gather/scatter
    def concatenate(self, xs, axis):
        return np.concatenate(xs, axis=axis)

    @_in_float32
    def pad(self, x, pad_width, value):
        return np.pad(x, pad_width, mode="constant", constant_values=value)

    def take_along_axis(self, x, index, axis):
        return np.take_along_axis(x, index, axis)

    @_written_in_float32
    def scatter_add_(self, out, axis, index, src):
        # Build the full index tuple: index along `axis`, the position itself elsewhere.
        grids = list(np.indices(index.shape, sparse=True))
        grids[axis] = index
        src = src[tuple(slice(0, s) for s in index.shape)]
        np.add.at(out, tuple(grids), src)

    @_written_in_float32
    def index_add_(self, out, key, values):
        np.add.at(out, key, values)

    # ---------------------------------------------------------------- linear algebra
    def matmul(self, a, b):
        """a @ b by the native GEMM. Broadcast batch dimensions become stride-0 views and
        transposed matrices (e.g. x.T) stay views; only a matrix with no unit stride, or batch
        dimensions that cannot be flattened into one stride, is copied. a and b have one dtype
        (ops/linalg.py promotes them)."""
        if a.itemsize == 2 and a.dtype in HALF_FLOATS:  # (inline: the per-op path)
            return _narrowed(self.matmul(widen(a), widen(b)), a.dtype)
        if a.dtype.kind in "iu":  # exact integer products (wrapping as PyTorch's)
            return np.matmul(a, b)
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
    @_in_float32
    def conv2d(self, x, weight, bias, stride, padding, dilation, groups):
        b = None if bias is None else _c(bias)
        return _C.conv2d_forward(_c(x), _c(weight), b, stride, padding, dilation, groups)

    @_in_float32
    def conv2d_backward_input(self, grad, weight, input_size, stride, padding, dilation, groups):
        return _C.conv2d_backward_input(_c(grad), _c(weight), input_size, stride, padding,
                                        dilation, groups)

    @_in_float32
    def conv2d_backward_weight(self, x, grad, kernel_size, stride, padding, dilation, groups):
        return _C.conv2d_backward_weight(_c(x), _c(grad), kernel_size, stride, padding, dilation,
                                         groups)

    @_in_float32
    def channel_sum(self, x):
        return _C.channel_sum(_c(x))

    # fused kernels (base.FUSED_KERNELS): F.unfold / F.fold as im2col / col2im per image
    @_in_float32
    def unfold(self, x, kernel_size, stride, padding, dilation):
        return _C.unfold(_c(x), kernel_size, stride, padding, dilation)

    @_in_float32
    def fold(self, cols, output_size, kernel_size, stride, padding, dilation):
        return _C.fold(_c(cols), output_size, kernel_size, stride, padding, dilation)

    @_in_float32
    def max_pool2d(self, x, kernel_size, stride, padding, dilation, ceil_mode):
        return _C.max_pool2d(_c(x), kernel_size, stride, padding, dilation, ceil_mode)

    @_in_float32
    def adaptive_max_pool2d(self, x, output_size):
        return _C.adaptive_max_pool2d(_c(x), output_size)

    @_in_float32
    def max_pool2d_backward(self, grad, indices, input_size):
        return _C.max_pool2d_backward(_c(grad), _c(indices), input_size)

    @_in_float32
    def max_unpool2d(self, x, indices, output_size):
        return _C.max_unpool2d(_c(x), _c(indices), output_size)

    @_in_float32
    def avg_pool2d(self, x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                   divisor_override):
        return _C.avg_pool2d(_c(x), kernel_size, stride, padding, ceil_mode, count_include_pad,
                             divisor_override)

    @_in_float32
    def avg_pool2d_backward(self, grad, input_size, kernel_size, stride, padding, ceil_mode,
                            count_include_pad, divisor_override):
        return _C.avg_pool2d_backward(_c(grad), input_size, kernel_size, stride, padding,
                                      ceil_mode, count_include_pad, divisor_override)

    @_in_float32
    def adaptive_avg_pool2d(self, x, output_size):
        return _C.adaptive_avg_pool2d(_c(x), output_size)

    @_in_float32
    def adaptive_avg_pool2d_backward(self, grad, input_size):
        return _C.adaptive_avg_pool2d_backward(_c(grad), input_size)

    @_in_float32
    def batch_norm_train(self, x, weight, bias, eps):
        return _C.batch_norm_forward_train(_c(x), _opt(weight), _opt(bias), eps)

    @_in_float32
    def batch_norm_apply(self, x, mean, invstd, weight, bias):
        return _C.batch_norm_apply(_c(x), _c(mean), _c(invstd), _opt(weight), _opt(bias))

    @_in_float32
    def batch_norm_backward(self, x, grad, mean, invstd, weight, training, needs):
        return _C.batch_norm_backward(_c(x), _c(grad), _c(mean), _c(invstd), _opt(weight),
                                      training, tuple(needs))


def _unit_stride(x):
    """x, or a C-contiguous copy of it when neither of its last two axes has unit stride (the
    GEMM reads a matrix in place when one of them has)."""
    if x.flags.c_contiguous:  # the common case, tested first: flags are cheap to read
        return x
    (r, c), (s0, s1), e = x.shape[-2:], x.strides[-2:], x.itemsize
    if (s1 == e and s0 >= e * c) or (s0 == e and s1 >= e * r):
        return x
    return np.ascontiguousarray(x)


def _c(x):
    return np.ascontiguousarray(x)


def _opt(x):
    return None if x is None else np.ascontiguousarray(x)


def _nll_targets(target, weight, ignore_index, classes, dtype):
    """For nll_loss: (keep, safe, w), each (N, S): the positions whose target is not
    ignore_index, the targets with ignored ones as class 0, and the weight w[t] of each kept
    target (0 where ignored). A kept target outside [0, classes) raises IndexError."""
    keep = target != ignore_index
    safe = np.where(keep, target, 0)
    if safe.size and (safe.min() < 0 or safe.max() >= classes):
        bad = safe[(safe < 0) | (safe >= classes)][0]
        raise IndexError(f"Target {bad} is out of bounds (classes 0..{classes - 1}).")
    w = keep.astype(dtype) if weight is None else np.where(keep, weight[safe], 0).astype(dtype)
    return keep, safe, w
