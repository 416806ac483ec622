"""The backend contract: what a device must provide so that everything above it runs.

It comes in two parts: ``CoreBackend``, which every device must implement in full, and
``NNKernels``, the convolution, pooling and normalization kernels, which a device may lack for
now (each stub raises an error naming the op and the device). ``Backend`` is both;
``Backend.lacks()`` lists what a device still inherits as a stub, from ``CORE_METHODS`` and
``NN_KERNELS``.

A backend works on its own array type. Arrays expose ``shape`` (tuple of ints), ``ndim``,
``size`` and ``dtype`` (a NumPy dtype: float32, float64, an integer or bool_); everything else
goes through the methods below. ``dtype`` arguments are NumPy dtypes. Methods never see a
``Tensor`` and never build a graph: the autograd layer above composes them.

Argument conventions:
- ``axes`` is a tuple of non-negative ints, already normalised by the caller;
- a binary operand may be an array of this backend or a Python scalar;
- index ``key``s are tuples of ints, slices, None, Ellipsis and index arrays (int64 or bool)
  of this backend, normalised by the caller, with NumPy's indexing semantics.
"""

from __future__ import annotations

from typing import Any, Callable, List, Optional, Sequence, Tuple

import numpy as np

from gradflow import op_table
from gradflow.types import device as Device

Array = Any
Shape = Tuple[int, ...]
Pair = Tuple[int, int]

# The op names a backend's unary/binary/reduce take, read from the op tables.
UNARY_OPS = op_table.names(op_table.UNARY)
BINARY_OPS = op_table.names(op_table.BINARY)
REDUCE_OPS = op_table.names(op_table.REDUCE)


class CoreBackend:
    """The core every device must have: creation and copies, random numbers, elementwise
    math, reductions, views and layout, indexing, matmul. Tensors, autograd and every op
    but the nn kernels' run on these alone."""

    device: Device  # set by gradflow.backends when it makes the backend

    # ---------------------------------------------------------------- creation / copies
    def from_numpy(self, a: np.ndarray) -> Array:
        """An array of this backend holding `a`'s values (may share memory on the CPU)."""
        raise NotImplementedError

    def to_numpy(self, x: Array) -> np.ndarray:
        """The values as a NumPy array (a copy off the CPU)."""
        raise NotImplementedError

    def empty(self, shape: Shape, dtype: np.dtype) -> Array:
        raise NotImplementedError

    def full(self, shape: Shape, value: float, dtype: np.dtype) -> Array:
        raise NotImplementedError

    def arange(self, start: float, stop: float, step: float, dtype: np.dtype) -> Array:
        raise NotImplementedError

    def astype(self, x: Array, dtype: np.dtype) -> Array:
        """A converted copy (always a new array)."""
        raise NotImplementedError

    def copy(self, x: Array) -> Array:
        """A new C-contiguous array with x's values."""
        raise NotImplementedError

    def copy_(self, dst: Array, src: Array) -> None:
        """dst[...] = src, broadcasting src, converting its dtype."""
        raise NotImplementedError

    # ---------------------------------------------------------------- random numbers
    def manual_seed(self, seed: int) -> None:
        raise NotImplementedError

    def rand(self, shape: Shape, dtype: np.dtype) -> Array:
        """Uniform on [0, 1)."""
        raise NotImplementedError

    def randn(self, shape: Shape, dtype: np.dtype) -> Array:
        raise NotImplementedError

    def randint(self, low: int, high: int, shape: Shape) -> Array:
        """int64 uniform on [low, high)."""
        raise NotImplementedError

    def randperm(self, n: int) -> Array:
        raise NotImplementedError

    # ---------------------------------------------------------------- elementwise
    def unary(self, op: str, x: Array) -> Array:
        """One of UNARY_OPS applied elementwise."""
        raise NotImplementedError

    def binary(self, op: str, a: Array, b: Array) -> Array:
        """One of BINARY_OPS with NumPy broadcasting; comparisons return bool arrays."""
        raise NotImplementedError

    def binary_(self, op: str, a: Array, b: Array) -> None:
        """In place: a = a op b, b broadcast to a's shape, result cast to a's dtype."""
        raise NotImplementedError

    def where(self, cond: Array, a: Array, b: Array) -> Array:
        raise NotImplementedError

    def clip(self, x: Array, lo: Optional[float], hi: Optional[float]) -> Array:
        raise NotImplementedError

    # ---------------------------------------------------------------- reductions
    def reduce(self, op: str, x: Array, axes: Tuple[int, ...], keepdims: bool) -> Array:
        """One of REDUCE_OPS over `axes` (empty tuple: no reduction)."""
        raise NotImplementedError

    def argreduce(self, op: str, x: Array, axis: int, keepdims: bool) -> Array:
        """'argmax' or 'argmin' along one axis, int64 result."""
        raise NotImplementedError

    # ---------------------------------------------------------------- views and layout
    def reshape(self, x: Array, shape: Shape) -> Array:
        """A view when the layout allows, else a copy."""
        raise NotImplementedError

    def permute(self, x: Array, axes: Tuple[int, ...]) -> Array:
        raise NotImplementedError

    def broadcast_to(self, x: Array, shape: Shape) -> Array:
        raise NotImplementedError

    def flip(self, x: Array, axes: Tuple[int, ...]) -> Array:
        raise NotImplementedError

    def getitem(self, x: Array, key: tuple) -> Array:
        """Basic indexing returns a view; advanced (index arrays) returns a copy."""
        raise NotImplementedError

    def setitem(self, x: Array, key: tuple, value: Any) -> None:
        raise NotImplementedError

    def is_contiguous(self, x: Array) -> bool:
        raise NotImplementedError

    def contiguous(self, x: Array) -> Array:
        """x itself when C-contiguous, else a C-contiguous copy."""
        raise NotImplementedError

    def data_ptr(self, x: Array) -> int:
        """The address of x's first element (its storage address plus its offset)."""
        raise NotImplementedError

    def shares_memory(self, a: Array, b: Array) -> bool:
        raise NotImplementedError

    def owns_memory(self, x: Array) -> bool:
        """Whether x holds its own memory, not a view of another array's (False where the
        backend cannot tell): autograd may then keep x as a leaf's gradient uncopied."""
        return False

    # ---------------------------------------------------------------- joining, gather/scatter
    def concatenate(self, xs: Sequence[Array], axis: int) -> Array:
        raise NotImplementedError

    def pad(self, x: Array, pad_width: Sequence[Tuple[int, int]], value: float) -> Array:
        """Constant padding; pad_width has one (before, after) pair per axis, all >= 0."""
        raise NotImplementedError

    def take_along_axis(self, x: Array, index: Array, axis: int) -> Array:
        raise NotImplementedError

    def scatter_add_(self, out: Array, axis: int, index: Array, src: Array) -> None:
        """out[..., index[i], ...] += src[i] along `axis` (torch.scatter_add_)."""
        raise NotImplementedError

    def index_add_(self, out: Array, key: tuple, values: Array) -> None:
        """out[key] += values, accumulating repeated indices (np.add.at)."""
        raise NotImplementedError

    # ---------------------------------------------------------------- linear algebra
    def matmul(self, a: Array, b: Array) -> Array:
        """a @ b for ndim >= 2 with broadcast batch dimensions; float dtypes."""
        raise NotImplementedError


class NNKernels:
    """The nn kernels: convolution, pooling, batch normalization. A device may lack some; each
    stub raises an error that names the op and the device and says to move to the CPU. (The
    softmax family and the NLL loss have no kernel of their own in the contract: ops compose
    them from the core, or use a backend's optional fused kernels, see FUSED_KERNELS.)"""

    def _no_kernel(self, op: str) -> NotImplementedError:
        """The error for an nn kernel this device does not have yet."""
        return NotImplementedError(
            f"{op}: no kernel for device {self.name} yet; move the tensors (or the model) to "
            "the CPU with .cpu() / .to('cpu') for this op")

    # ---------------------------------------------------------------- nn kernels
    # Images are NCHW float arrays (float32 or float64); `Pair` arguments are (h, w) tuples of
    # ints. The caller (gradflow.ops.conv / pool / norm) has validated every shape and size;
    # implementations check again and raise ValueError rather than touch memory out of range.
    # Inputs may be non-contiguous; outputs are new C-contiguous arrays.

    def conv2d(self, x: Array, weight: Array, bias: Optional[Array], stride: Pair,
               padding: Pair, dilation: Pair, groups: int) -> Array:
        """Cross-correlation y[n, o] = bias[o] + sum_{c in group(o), i, j} weight[o, c, i, j] *
        x[n, c, oh*s - p + i*d, ow*s - p + j*d] (zero padding); x (N, Cin, H, W), weight
        (Cout, Cin/groups, kh, kw), bias (Cout,) or None; y (N, Cout, OH, OW) with
        OH = (H + 2p - d(kh-1) - 1) // s + 1."""
        raise self._no_kernel("conv2d")

    def conv2d_backward_input(self, grad: Array, weight: Array, input_size: Pair, stride: Pair,
                              padding: Pair, dilation: Pair, groups: int) -> Array:
        """d(conv2d)/d(x) applied to grad (N, Cout, OH, OW): (N, Cin, *input_size). This is
        also conv_transpose2d's forward (input_size picks among the sizes a stride allows)."""
        raise self._no_kernel("conv2d_backward_input")

    def conv2d_backward_weight(self, x: Array, grad: Array, kernel_size: Pair, stride: Pair,
                               padding: Pair, dilation: Pair, groups: int) -> Array:
        """d(conv2d)/d(weight) for input x and output gradient grad: (Cout, Cin/groups, kh, kw)."""
        raise self._no_kernel("conv2d_backward_weight")

    def channel_sum(self, x: Array) -> Array:
        """Sum over every axis but 1 of an (N, C, ...) array: shape (C,) (a bias gradient)."""
        raise self._no_kernel("channel_sum")

    def max_pool2d(self, x: Array, kernel_size: Pair, stride: Pair, padding: Pair,
                   dilation: Pair, ceil_mode: bool) -> Tuple[Array, Array]:
        """(values, indices) of a max pool of x (N, C, H, W); indices are int64 flat h*W + w
        positions within each plane; NaN wins (propagates). Output size as in PyTorch."""
        raise self._no_kernel("max_pool2d")

    def adaptive_max_pool2d(self, x: Array, output_size: Pair) -> Tuple[Array, Array]:
        """(values, indices) over windows [floor(i*H/OH), ceil((i+1)*H/OH)) per axis."""
        raise self._no_kernel("adaptive_max_pool2d")

    def max_pool2d_backward(self, grad: Array, indices: Array, input_size: Pair) -> Array:
        """dx (N, C, *input_size) with dx[n, c].flat[indices[n, c]] += grad[n, c] (accumulating
        repeated indices): the backward of both max pools."""
        raise self._no_kernel("max_pool2d_backward")

    def max_unpool2d(self, x: Array, indices: Array, output_size: Pair) -> Array:
        """y (N, C, *output_size), zero except y[n, c].flat[indices[n, c]] = x[n, c]; raises
        ValueError for an index outside the output plane."""
        raise self._no_kernel("max_unpool2d")

    def avg_pool2d(self, x: Array, kernel_size: Pair, stride: Pair, padding: Pair,
                   ceil_mode: bool, count_include_pad: bool, divisor_override: int) -> Array:
        """Window sums divided by divisor_override (when > 0) or by the window size clipped to
        the padded input (count_include_pad) or to the input, as PyTorch."""
        raise self._no_kernel("avg_pool2d")

    def avg_pool2d_backward(self, grad: Array, input_size: Pair, kernel_size: Pair,
                            stride: Pair, padding: Pair, ceil_mode: bool,
                            count_include_pad: bool, divisor_override: int) -> Array:
        """The adjoint of avg_pool2d: each grad value spread evenly over its window."""
        raise self._no_kernel("avg_pool2d_backward")

    def adaptive_avg_pool2d(self, x: Array, output_size: Pair) -> Array:
        raise self._no_kernel("adaptive_avg_pool2d")

    def adaptive_avg_pool2d_backward(self, grad: Array, input_size: Pair) -> Array:
        raise self._no_kernel("adaptive_avg_pool2d_backward")

    def batch_norm_train(self, x: Array, weight: Optional[Array], bias: Optional[Array],
                         eps: float) -> Tuple[Array, Array, Array, Array]:
        """Batch statistics of x (N, C, L) per channel over (N, L): returns (y, mean, biased
        var, invstd) with invstd = 1/sqrt(var + eps), y = (x - mean) * invstd * weight + bias
        (weight/bias (C,) or None)."""
        raise self._no_kernel("batch_norm_train")

    def batch_norm_apply(self, x: Array, mean: Array, invstd: Array, weight: Optional[Array],
                         bias: Optional[Array]) -> Array:
        """y = (x - mean) * invstd * weight + bias per channel of x (N, C, L) (eval mode)."""
        raise self._no_kernel("batch_norm_apply")

    def batch_norm_backward(self, x: Array, grad: Array, mean: Array, invstd: Array,
                            weight: Optional[Array], training: bool,
                            needs: Tuple[bool, bool, bool]) -> Tuple[Optional[Array], ...]:
        """(dx, dweight, dbias), None where `needs` is False. training: the statistics were the
        batch's own (dx includes their dependence on x); else they were fixed."""
        raise self._no_kernel("batch_norm_backward")


def _methods(contract: type) -> Tuple[str, ...]:
    return tuple(n for n, v in vars(contract).items() if callable(v) and not n.startswith("_"))


CORE_METHODS = _methods(CoreBackend)
NN_KERNELS = _methods(NNKernels)

# Optional fused kernels a backend may have beside the contract, where one kernel replaces
# several core ops or an index check that would wait for the device (CUDA has the softmax, NLL
# and interpolation kernels, the CPU the NLL ones, relu_backward and axpy_; without one, the op
# composes the same math from the core). An op uses one when ``fused(backend, name)`` finds it;
# Backend.lacks() does not list them. Arrays are C-contiguous float arrays unless said:
#   relu_backward(grad, y)                      grad where relu's output y > 0, else 0
#   axpy_(y, alpha, x)                          y += alpha * x in place (x broadcast to y)
#   softmax(x, axis, log)                       softmax (log: log_softmax) along axis
#   softmax_backward(y, grad, axis, log)        dx from the output y and grad
#   nll_loss(logp, target, weight, ignore_index, smooth)
#       logp (N, C, S), target int64 (N, S), weight (C,) or None -> (loss, w, smoothing or
#       None), each (N, S): -w[t] * logp[n, t, s], w[t], -sum_c w[c] * logp[n, c, s] at kept
#       positions (target != ignore_index), zeros elsewhere. A target outside [0, C) may be
#       reported late (CUDA: IndexError at the next synchronisation).
#   nll_loss_backward(grad_loss, grad_smoothing, target, weight, ignore_index, classes)
#       dlogp (N, classes, S), the adjoint of nll_loss (grad_smoothing may be None)
#   interpolate(x, size, scales, bilinear, align_corners)
#       x (N, C, H, W) resized to (N, C, *size) as ops/pool.py's _interp_matrix says (scales:
#       the (h, w) scale factors given, 0.0 for none)
#   interpolate_backward(grad, input_size, scales, bilinear, align_corners)
#       its adjoint: (N, C, *input_size) from grad (N, C, OH, OW)
#   unfold(x, kernel_size, stride, padding, dilation)
#       im2col per image: x (N, C, H, W) -> (N, C*kh*kw, OH*OW) (the CPU has it; elsewhere
#       ops/conv.py runs conv2d with a one-hot kernel instead)
#   fold(cols, output_size, kernel_size, stride, padding, dilation)
#       its adjoint, col2im per image: (N, C*kh*kw, OH*OW) -> (N, C, *output_size)
FUSED_KERNELS = ("softmax", "softmax_backward", "nll_loss", "nll_loss_backward", "interpolate",
                 "interpolate_backward", "unfold", "fold", "relu_backward", "axpy_")


def fused(backend: Any, name: str) -> Optional[Callable[..., Any]]:
    """The backend's fused kernel `name` (one of FUSED_KERNELS), or None when it has none."""
    return getattr(backend, name, None)


class Backend(CoreBackend, NNKernels):
    """A device's backend: `backends/cpu.py` implements the whole contract; `backends/cuda.py`
    the core, and of the nn kernels those that `CUDABackend.lacks()` does not list."""

    #: the device string this backend serves, e.g. "cpu" or "cuda:0"
    name: str

    @classmethod
    def lacks(cls, *ops: str) -> List[str]:
        """Those of `ops` (method names of this contract; default: all of CORE_METHODS and
        NN_KERNELS) that this backend does not implement yet: it still inherits the contract's
        stub. Lets a program pick a device that can run a model before it starts."""
        return [op for op in ops or CORE_METHODS + NN_KERNELS
                if getattr(cls, op) is getattr(Backend, op)]
