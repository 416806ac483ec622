"""Reductions over dims (int or tuple, negative allowed, keepdim) and the softmax family.

As in PyTorch 2.x, dim=None and an empty dim list (dim=[] or dim=()) both reduce over every dim
for sum, mean, var, std, prod, norm, logsumexp and amax/amin; all and any with dim=[] reduce
nothing (the result is the input tested elementwise), as PyTorch's do."""

from __future__ import annotations

import builtins
import math
from typing import Any, Callable, NamedTuple, Optional, Tuple, Type, Union, overload

import numpy as np

from gradflow import op_table
from gradflow.autograd.function import Context, Function, Gradients
from gradflow.autograd.grad_mode import _GradMode, is_grad_enabled
from gradflow.backends.base import fused
from gradflow.ops import elementwise, index, shape
from gradflow.ops.common import (
    as_bool,
    as_float,
    check_tensor,
    normalize_dims,
    numpy_names,
    reduction_dims,
    wrap_dim,
)
from gradflow.tensor import Tensor
from gradflow.types import Dims, DTypeLike, Number, get_default_dtype, int64

Axes = Tuple[int, ...]  # normalised dims: non-negative, no duplicates


class values_indices(NamedTuple):
    """What max(x, dim), min(x, dim), sort and topk return: the values and their indices."""

    values: Tensor
    indices: Tensor


def _check(x: Tensor, op: str, keepdim: bool = False) -> None:
    """The input is a Tensor and keepdim a bool: TypeErrors naming the op, as PyTorch's."""
    check_tensor(x, op)
    as_bool(keepdim, op, "keepdim")


def _keep_dims(t: Tensor, axes: Axes, keepdim: bool) -> Tensor:
    """A reduced t with its reduced axes back as size-1 dims (it broadcasts against the
    input); t itself when keepdim kept them or nothing was kept (a scalar broadcasts)."""
    if keepdim or not axes or not t.ndim:
        return t
    kept = list(t.shape)
    for a in sorted(axes):
        kept.insert(a, 1)
    return shape.reshape(t, tuple(kept))


def _expand_back(g: Tensor, input_shape: Tuple[int, ...]) -> Tensor:
    """Broadcast a gradient kept at the input's rank back to the input's shape. Unless that is
    recorded (create_graph), the backend does it directly: the shapes are known to broadcast."""
    if g._data.shape == input_shape:
        return g
    if _GradMode.enabled:
        return shape.expand(g, input_shape)
    return Tensor._make(g._backend.broadcast_to(g._data, input_shape), g._backend)


class Reduce(Function[Tensor]):
    """y = a row of op_table.REDUCE over `axes`; the backward applies the row's derivative to
    the gradient and the output kept at the input's rank, then broadcasts the result back to
    the input's shape (mean's g / n divides the reduced gradient, not the expanded one)."""

    @staticmethod
    def forward(ctx: Context, x: Tensor, row: op_table.ReduceOp, axes: Axes, keepdim: bool
                ) -> Tensor:
        be = x._backend
        out = Tensor._make(be.reduce(row.name, x._data, axes, keepdim), be)
        ctx.row, ctx.shape, ctx.axes, ctx.keepdim = row, x._data.shape, axes, keepdim
        ctx._name = _BACKWARD_NAMES[row.name]
        if row.reads_values:
            ctx.save_for_backward(x, out)
        return out

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Gradients:
        x, y = ctx.saved_tensors or (None, None)
        if y is not None:
            y = _keep_dims(y, ctx.axes, ctx.keepdim)
        g = _keep_dims(g, ctx.axes, ctx.keepdim)
        dx = ctx.row.grad(g, x, y, ctx.axes, _count(ctx.shape, ctx.axes))
        return _expand_back(dx, ctx.shape), None, None, None


# "SumBackward", "AmaxBackward", ...: each row's node name, made once.
_BACKWARD_NAMES = {r.name: {"max": "Amax", "min": "Amin"}.get(r.name, r.name.capitalize())
                   + "Backward" for r in op_table.REDUCE}


def reduce(name: str, x: Tensor, axes: Axes, keepdim: bool) -> Tensor:
    """The row `name` of op_table.REDUCE over `axes` (normalised) of a checked x."""
    return Reduce.apply(x, op_table.REDUCE_BY_NAME[name], axes, keepdim)


def _accumulated(x: Tensor, op: str, keepdim: bool, dtype: Optional[DTypeLike]) -> Tensor:
    """x checked for sum/prod and cast to `dtype` if given; bools and integers accumulate as
    int64 (as PyTorch's)."""
    _check(x, op, keepdim)
    if dtype is not None:
        return shape.to_dtype(x, dtype)
    return x if x.is_floating_point() else shape.to_dtype(x, int64)


def _count(shape: Tuple[int, ...], axes: Axes) -> int:
    """How many elements each reduction of `shape` over `axes` combines."""
    n = 1
    for a in axes:
        n *= shape[a]
    return n


@numpy_names
def sum(x: Tensor, dim: Dims = None, keepdim: bool = False, *,
        dtype: Optional[DTypeLike] = None) -> Tensor:
    """The sum over dim (every dim by default); bools and integers sum as int64.

    >>> import gradflow as gf
    >>> x = gf.tensor([[1.0, 2.0], [3.0, 4.0]])
    >>> gf.sum(x), x.sum(0), x.sum(dim=1, keepdim=True)
    (tensor(10.), tensor([4., 6.]), tensor([[3.],
            [7.]]))
    """
    x = _accumulated(x, "sum", keepdim, dtype)
    return reduce("sum", x, reduction_dims(dim, x.ndim, "sum"), keepdim)


def sum_to_shape(g: Tensor, input_shape: Tuple[int, ...]) -> Tensor:
    """Undo broadcasting: sum `g` over the axes along which `input_shape` was broadcast.
    Unless that is recorded (create_graph), the backend sums the array directly."""
    if g._data.shape == input_shape:
        return g
    lead = g.ndim - len(input_shape)
    if not _GradMode.enabled:
        be, data = g._backend, g._data
        ones = tuple(lead + i for i, s in enumerate(input_shape)
                     if s == 1 and data.shape[lead + i] != 1)
        if not ones:  # (a bias's gradient: a new array, not a reshaped view)
            return Tensor._make(be.reduce("sum", data, tuple(range(lead)), False), be)
        summed = be.reduce("sum", data, tuple(range(lead)) + ones, True)
        return Tensor._make(be.reshape(summed, tuple(input_shape)), be)
    if lead:
        g = sum(g, tuple(range(lead)))
    ones = tuple(i for i, s in enumerate(input_shape) if s == 1 and g.shape[i] != 1)
    return sum(g, ones, keepdim=True) if ones else g


@numpy_names
def mean(x: Tensor, dim: Dims = None, keepdim: bool = False, *,
         dtype: Optional[DTypeLike] = None) -> Tensor:
    """The mean over dim (every dim by default), of a float tensor.

    >>> import gradflow as gf
    >>> x = gf.tensor([[1.0, 2.0], [3.0, 4.0]])
    >>> x.mean(), x.mean(dim=0)
    (tensor(2.5000), tensor([2., 3.]))
    """
    _check(x, "mean", keepdim)
    if dtype is not None:
        x = shape.to_dtype(x, dtype)
    if not x.is_floating_point():
        raise RuntimeError(
            f"mean(): could not infer output dtype. Input dtype must be either a floating point "
            f"or complex dtype. Got: {x.dtype.name.capitalize()}"
        )
    axes = reduction_dims(dim, x.ndim, "mean")
    if not _count(x.shape, axes):  # NaN, as PyTorch's (NumPy's mean would warn)
        return reduce("sum", x, axes, keepdim) / math.nan
    return reduce("mean", x, axes, keepdim)


@numpy_names
def var(x: Tensor, dim: Dims = None, unbiased: Optional[bool] = None, keepdim: bool = False,
        *, correction: Optional[Number] = None) -> Tensor:
    """sum((x - mean)^2) / (N - correction); correction defaults to 1 (unbiased).

    >>> import gradflow as gf
    >>> gf.tensor([1.0, 2.0, 3.0, 4.0]).var(), gf.tensor([1.0, 3.0]).var(correction=0)
    (tensor(1.6667), tensor(1.))
    """
    return _var(x, dim, unbiased, keepdim, correction, "var")


def _var(x: Tensor, dim: Dims, unbiased: Optional[bool], keepdim: bool,
         correction: Optional[Number], op: str) -> Tensor:
    _check(x, op, keepdim)
    if not x.is_floating_point():
        raise RuntimeError(f"{op}: only supports floating point dtypes, got {x.dtype}")
    if unbiased is not None and correction is not None:
        raise ValueError(f"{op}: give either unbiased or correction, not both")
    if unbiased is not None:
        as_bool(unbiased, op, "unbiased")
    if correction is None:
        correction = 0 if unbiased is False else 1
    correction = as_float(correction, op, "correction")
    axes = reduction_dims(dim, x.ndim, op)
    n = _count(x.shape, axes)
    centred = x - mean(x, axes, keepdim=True)
    squares = sum(centred * centred, axes, keepdim)
    denom = n - correction
    return squares / denom if denom > 0 else squares * math.nan


@numpy_names
def std(x: Tensor, dim: Dims = None, unbiased: Optional[bool] = None, keepdim: bool = False,
        *, correction: Optional[Number] = None) -> Tensor:
    """sqrt(var(x, dim, unbiased, keepdim, correction=correction)).

    >>> import gradflow as gf
    >>> gf.tensor([1.0, 3.0]).std(correction=0)
    tensor(1.)
    """
    return elementwise.sqrt(_var(x, dim, unbiased, keepdim, correction, "std"))


def _saved_with_input(ctx: Context, x: Tensor, raw: Any) -> Tensor:
    """The output (raw, a backend array) as a Tensor, saved with x for the backward."""
    out = Tensor._make(raw, x._backend)
    ctx.save_for_backward(x, out)
    return out


def _reduced_shape(x: Tensor, axes: Axes) -> Tuple[int, ...]:
    return tuple(s for i, s in enumerate(x.shape) if i not in axes)


@numpy_names
def prod(x: Tensor, dim: Dims = None, keepdim: bool = False, *,
         dtype: Optional[DTypeLike] = None) -> Tensor:
    """The product over dim (every dim by default; PyTorch takes one dim only).

    >>> import gradflow as gf
    >>> x = gf.tensor([[1.0, 2.0], [3.0, 4.0]])
    >>> x.prod(), x.prod(1)
    (tensor(24.), tensor([ 2., 12.]))
    """
    x = _accumulated(x, "prod", keepdim, dtype)
    return reduce("prod", x, reduction_dims(dim, x.ndim, "prod"), keepdim)


def _check_nonempty(x: Tensor, axes: Axes, op: str) -> None:
    if builtins.any(x.shape[a] == 0 for a in axes if x.ndim) or (not axes and x.numel() == 0):
        raise IndexError(
            f"{op}(): Expected reduction dim to be specified for input.numel() == 0 or the "
            f"reduced dims to be non-empty; got shape {tuple(x.shape)}"
        )


@numpy_names
def amax(x: Tensor, dim: Dims = (), keepdim: bool = False) -> Tensor:
    """The largest value over dim (every dim by default); the gradient is shared evenly
    among the elements equal to it.

    >>> import gradflow as gf
    >>> x = gf.tensor([[1.0, 2.0], [3.0, 4.0]])
    >>> x.amax(), x.amax(dim=0)
    (tensor(4.), tensor([3., 4.]))
    """
    _check(x, "amax", keepdim)
    axes = reduction_dims(dim, x.ndim, "amax")
    _check_nonempty(x, axes, "amax")
    return reduce("max", x, axes, keepdim)


@numpy_names
def amin(x: Tensor, dim: Dims = (), keepdim: bool = False) -> Tensor:
    """The smallest value over dim (every dim by default); the gradient is shared evenly
    among the elements equal to it.

    >>> import gradflow as gf
    >>> x = gf.tensor([[1.0, 2.0], [3.0, 4.0]])
    >>> x.amin(), x.amin(dim=1)
    (tensor(1.), tensor([1., 3.]))
    """
    _check(x, "amin", keepdim)
    axes = reduction_dims(dim, x.ndim, "amin")
    _check_nonempty(x, axes, "amin")
    return reduce("min", x, axes, keepdim)


MaxMin = Union[Tensor, values_indices]


def _max_min(x: Tensor, dim: Union[None, int, Tensor], keepdim: bool, op: str) -> MaxMin:
    """max()/min(): full reduction -> a value; along dim -> (values, indices)."""
    if isinstance(dim, Tensor):
        return (elementwise.maximum if op == "max" else elementwise.minimum)(x, dim)
    _check(x, op, keepdim)
    if dim is None:
        axes = tuple(range(x.ndim))
        _check_nonempty(x, axes, op)
        return reduce(op, x, axes, False)
    d = wrap_dim(dim, x.ndim, op)
    _check_nonempty(x, (d,), op)
    if x.ndim == 0:
        return values_indices(shape.clone(x), _zero_index(x))
    be = x._backend
    idx = Tensor._make(be.argreduce("arg" + op, x._data, d, True), be)
    values = index.gather(x, d, idx) if x.ndim else x
    if not keepdim and x.ndim:
        values, idx = shape.squeeze(values, d), shape.squeeze(idx, d)
    return values_indices(values, idx)


@overload
def max(x: Tensor, dim: Union[None, Tensor] = None, keepdim: bool = False) -> Tensor: ...
@overload
def max(x: Tensor, dim: int, keepdim: bool = False) -> values_indices: ...


@numpy_names
def max(x: Tensor, dim: Union[None, int, Tensor] = None, keepdim: bool = False) -> MaxMin:
    """The largest value; with a dim, (values, indices) along it; with a tensor, maximum.

    >>> import gradflow as gf
    >>> x = gf.tensor([[1.0, 2.0], [3.0, 4.0]])
    >>> x.max()
    tensor(4.)
    >>> x.max(dim=1)
    values_indices(values=tensor([2., 4.]), indices=tensor([1, 1]))
    """
    return _max_min(x, dim, keepdim, "max")


@overload
def min(x: Tensor, dim: Union[None, Tensor] = None, keepdim: bool = False) -> Tensor: ...
@overload
def min(x: Tensor, dim: int, keepdim: bool = False) -> values_indices: ...


@numpy_names
def min(x: Tensor, dim: Union[None, int, Tensor] = None, keepdim: bool = False) -> MaxMin:
    """The smallest value; with a dim, (values, indices) along it; with a tensor, minimum.

    >>> import gradflow as gf
    >>> x = gf.tensor([[1.0, 2.0], [3.0, 4.0]])
    >>> x.min()
    tensor(1.)
    >>> x.min(0).indices
    tensor([0, 0])
    """
    return _max_min(x, dim, keepdim, "min")


def _arg(x: Tensor, dim: Optional[int], keepdim: bool, op: str) -> Tensor:
    _check(x, op, keepdim)
    be = x._backend
    if dim is None:
        _check_nonempty(x, (), op)
        flat = be.reshape(be.contiguous(x._data), (-1,))
        out = be.argreduce(op, flat, 0, False)
        if keepdim:
            out = be.reshape(out, (1,) * x.ndim)
        return Tensor._make(out, be)
    d = wrap_dim(dim, x.ndim, op)
    _check_nonempty(x, (d,), op)
    if x.ndim == 0:
        return _zero_index(x)
    return Tensor._make(be.argreduce(op, x._data, d, keepdim), be)


def _zero_index(x: Tensor) -> Tensor:
    """The index of a 0-d x's only element: a 0-d int64 zero on x's device."""
    return elementwise.full_like_scalar(shape.to_dtype(x, int64), 0)


@numpy_names
def argmax(x: Tensor, dim: Optional[int] = None, keepdim: bool = False) -> Tensor:
    """The index of the largest value along dim (in the flattened tensor without a dim).

    >>> import gradflow as gf
    >>> x = gf.tensor([[1.0, 2.0], [3.0, 4.0]])
    >>> x.argmax(), x.argmax(dim=0)
    (tensor(3), tensor([1, 1]))
    """
    return _arg(x, dim, keepdim, "argmax")


@numpy_names
def argmin(x: Tensor, dim: Optional[int] = None, keepdim: bool = False) -> Tensor:
    """The index of the smallest value along dim (in the flattened tensor without a dim).

    >>> import gradflow as gf
    >>> x = gf.tensor([[1.0, 2.0], [3.0, 4.0]])
    >>> x.argmin(), x.argmin(dim=1)
    (tensor(0), tensor([0, 0]))
    """
    return _arg(x, dim, keepdim, "argmin")


@numpy_names
def logsumexp(x: Tensor, dim: Dims, keepdim: bool = False) -> Tensor:
    """log(sum(exp(x))) = m + log(sum(exp(x - m))), m = max (stable; -inf rows stay -inf).

    >>> import gradflow as gf
    >>> gf.logsumexp(gf.tensor([0.0, 0.0]), dim=0)
    tensor(0.6931)
    """
    _check(x, "logsumexp", keepdim)
    axes = reduction_dims(dim, x.ndim, "logsumexp")
    if not x.is_floating_point():
        x = shape.to_dtype(x, get_default_dtype())
    m = amax(x.detach(), axes, keepdim=True) if x.numel() else elementwise.full_like_scalar(x, 0)
    m = elementwise.where(elementwise.isinf(m), 0.0, m)
    out = elementwise.log(sum(elementwise.exp(x - m), axes, keepdim=True)) + m
    return out if keepdim else shape.reshape(out, _reduced_shape(x, axes))


class _Norm(Function[Tensor]):
    """p-norm over axes (keepdim=True); the gradient at a zero norm is 0, as PyTorch."""

    @staticmethod
    def forward(ctx: Context, x: Tensor, p: float, axes: Axes) -> Tensor:
        be = x._backend
        a = be.unary("abs", x._data)
        if p == math.inf:
            r = be.reduce("max", a, axes, True)
        elif p == -math.inf:
            r = be.reduce("min", a, axes, True)
        elif p == 0:
            r = be.reduce("sum", be.astype(be.binary("ne", a, 0), x._data.dtype), axes, True)
        elif p == 1:
            r = be.reduce("sum", a, axes, True)
        else:
            r = be.binary("pow", be.reduce("sum", be.binary("pow", a, p), axes, True), 1.0 / p)
        out = _saved_with_input(ctx, x, r)
        ctx.p, ctx.axes = p, axes
        return out

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Gradients:
        x, out = ctx.saved_tensors
        p = ctx.p
        if p == 0:
            return g * 0.0 * x, None, None
        if p == 1:
            return g * elementwise.sign(x), None, None
        if math.isinf(p):
            mask = shape.to_dtype(elementwise.abs(x) == out, g.dtype)
            return g * elementwise.sign(x) * mask / sum(mask, ctx.axes, keepdim=True), None, None
        safe = elementwise.where(out == 0, 1.0, out)
        scale = elementwise.where(out == 0, 0.0, g / safe ** (p - 1))
        return scale * x * elementwise.abs(x) ** (p - 2), None, None


@numpy_names
def norm(x: Tensor, p: Union[float, str, None] = "fro", dim: Dims = None,
         keepdim: bool = False) -> Tensor:
    """The p-norm over dim (every dim by default); 'fro' is the 2-norm of the elements
    ('nuc' and ``dtype`` are not taken). The gradient at a zero norm is 0.

    >>> import gradflow as gf
    >>> x = gf.tensor([[3.0, -4.0], [0.0, 0.0]])
    >>> x.norm(), x.norm(p=1, dim=1)
    (tensor(5.), tensor([7., 0.]))
    """
    _check(x, "norm", keepdim)
    if not isinstance(p, (int, float, str)) and p is not None:
        raise ValueError(f"norm: p must be a number or 'fro', got {type(p).__name__}")
    if p in ("fro", None):
        p = 2.0
    if p == "nuc":
        raise ValueError("norm: the nuclear norm is not supported")
    if isinstance(p, str):
        raise ValueError(f"norm: p must be a number or 'fro', got {p!r}")
    axes = reduction_dims(dim, x.ndim, "norm")
    if not x.is_floating_point():
        raise RuntimeError(f"norm(): expected a floating point tensor, got {x.dtype}")
    if math.isinf(p):
        _check_nonempty(x, axes, "norm")
    out = _Norm.apply(x, float(p), axes)
    return out if keepdim else shape.reshape(out, _reduced_shape(x, axes))


@numpy_names
def all(x: Tensor, dim: Dims = None, keepdim: bool = False) -> Tensor:
    """Whether every element over dim is nonzero (every dim by default), a bool tensor.

    >>> import gradflow as gf
    >>> x = gf.tensor([[True, False], [True, True]])
    >>> x.all(), x.all(dim=1)
    (tensor(False), tensor([False,  True]))
    """
    _check(x, "all", keepdim)
    axes = normalize_dims(dim, x.ndim, "all")
    return Tensor._make(x._backend.reduce("all", x._data, axes, keepdim), x._backend)


@numpy_names
def any(x: Tensor, dim: Dims = None, keepdim: bool = False) -> Tensor:
    """Whether some element over dim is nonzero (every dim by default), a bool tensor.

    >>> import gradflow as gf
    >>> x = gf.tensor([[0, 0], [0, 3]])
    >>> x.any(), x.any(dim=1)
    (tensor(True), tensor([False,  True]))
    """
    _check(x, "any", keepdim)
    axes = normalize_dims(dim, x.ndim, "any")
    return Tensor._make(x._backend.reduce("any", x._data, axes, keepdim), x._backend)


# ---------------------------------------------------------------- softmax family
def _minus_max(x: Tensor, axis: int) -> Any:
    """x - max(x) along axis (a backend array): exp of it cannot overflow."""
    be = x._backend
    return be.binary("sub", x._data, be.reduce("max", x._data, (axis,), True))


def _saved_output(ctx: Context, raw: Any, x: Tensor, axis: int) -> Tensor:
    """The output (raw, a backend array) as a Tensor, saved with the axis for the backward."""
    out = Tensor._make(raw, x._backend)
    ctx.save_for_backward(out)
    ctx.axis = axis
    return out


def _fused_kernel(x: Tensor, name: str) -> Optional[Callable[..., Any]]:
    """The backend's fused softmax kernel `name` (backends/base.py FUSED_KERNELS), or None; a
    backward under create_graph=True composes Tensor ops instead (differentiable again)."""
    if name.endswith("_backward") and is_grad_enabled():
        return None
    return fused(x._backend, name)


class Softmax(Function[Tensor]):
    """y = exp(x - max) / sum(exp(x - max)); backward: y * (g - sum(g * y))."""

    @staticmethod
    def forward(ctx: Context, x: Tensor, axis: int) -> Tensor:
        be = x._backend
        kernel = _fused_kernel(x, "softmax")
        if kernel is not None:
            return _saved_output(ctx, kernel(x._data, axis, False), x, axis)
        e = be.unary("exp", _minus_max(x, axis))
        return _saved_output(ctx, be.binary("div", e, be.reduce("sum", e, (axis,), True)), x,
                             axis)

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Gradients:
        (y,) = ctx.saved_tensors
        kernel = _fused_kernel(y, "softmax_backward")
        if kernel is not None:
            return Tensor._make(kernel(y._data, g._data, ctx.axis, False), y._backend), None
        return y * (g - sum(g * y, ctx.axis, keepdim=True)), None


class LogSoftmax(Function[Tensor]):
    """y = x - logsumexp(x); backward: g - exp(y) * sum(g)."""

    @staticmethod
    def forward(ctx: Context, x: Tensor, axis: int) -> Tensor:
        be = x._backend
        kernel = _fused_kernel(x, "softmax")
        if kernel is not None:
            return _saved_output(ctx, kernel(x._data, axis, True), x, axis)
        shifted = _minus_max(x, axis)
        lse = be.unary("log", be.reduce("sum", be.unary("exp", shifted), (axis,), True))
        return _saved_output(ctx, be.binary("sub", shifted, lse), x, axis)

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Gradients:
        (y,) = ctx.saved_tensors
        kernel = _fused_kernel(y, "softmax_backward")
        if kernel is not None:
            return Tensor._make(kernel(y._data, g._data, ctx.axis, True), y._backend), None
        return g - elementwise.exp(y) * sum(g, ctx.axis, keepdim=True), None


def _softmax_input(x: Tensor, dim: Optional[int], dtype: Optional[DTypeLike], op: str
                   ) -> Tuple[Tensor, int]:
    check_tensor(x, op)
    if dim is None:
        raise TypeError(f"{op}: the dim argument is required")
    if dtype is not None:
        x = shape.to_dtype(x, dtype)
    if not x.is_floating_point():
        x = shape.to_dtype(x, get_default_dtype())
    return x, wrap_dim(dim, x.ndim, op)


def _normalised(fn: Type[Function[Tensor]], x: Tensor, dim: Optional[int],
                dtype: Optional[DTypeLike], op: str) -> Tensor:
    x, axis = _softmax_input(x, dim, dtype, op)
    if x.numel() == 0:  # nothing to normalise (and a max over nothing has no value)
        return shape.clone(x)
    if x.ndim == 0:
        return shape.reshape(fn.apply(shape.reshape(x, (1,)), 0), ())
    return fn.apply(x, axis)


@numpy_names
def softmax(x: Tensor, dim: Optional[int] = None, dtype: Optional[DTypeLike] = None) -> Tensor:
    """exp(x) / sum(exp(x)) along dim (required, as PyTorch warns without it), computed stably.

    >>> import gradflow as gf
    >>> gf.softmax(gf.tensor([0.0, 0.0, 0.0, 0.0]), dim=0)
    tensor([0.2500, 0.2500, 0.2500, 0.2500])
    """
    return _normalised(Softmax, x, dim, dtype, "softmax")


@numpy_names
def log_softmax(x: Tensor, dim: Optional[int] = None, dtype: Optional[DTypeLike] = None
                ) -> Tensor:
    """x - logsumexp(x) along dim (required), computed stably.

    >>> import gradflow as gf
    >>> gf.log_softmax(gf.tensor([0.0, 0.0]), dim=0)
    tensor([-0.6931, -0.6931])
    """
    return _normalised(LogSoftmax, x, dim, dtype, "log_softmax")



# ---------------------------------------------------------------- scans
class Scan(Function[Tensor]):
    """y = cumsum or cumprod of x along axis, computed on the host with NumPy (no device
    kernel); the backward is written in Tensor ops, so it is differentiable again."""

    @staticmethod
    def forward(ctx: Context, x: Tensor, name: str, axis: int) -> Any:
        ctx.scan, ctx.axis = name, axis  # not ctx.name: that is the node's name() method
        ctx._name = name.capitalize() + "Backward"
        be = x._backend
        scan = np.cumsum if name == "cumsum" else np.cumprod
        raw = be.from_numpy(scan(be.to_numpy(x._data), axis=axis).astype(x._data.dtype))
        if name == "cumprod":
            return _saved_with_input(ctx, x, raw)
        return raw

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Gradients:
        if ctx.scan == "cumsum":  # dL/dx_k = sum_{i >= k} g_i: a reversed cumsum
            return _reversed_cumsum(g, ctx.axis), None, None
        x, y = ctx.saved_tensors
        return _cumprod_grad(x, y, g, ctx.axis), None, None


def _reversed_cumsum(t: Tensor, axis: int) -> Tensor:
    """out_k = sum_{i >= k} t_i along axis."""
    return shape.flip(cumsum(shape.flip(t, (axis,)), axis), (axis,))


def _cumprod_grad(x: Tensor, y: Tensor, g: Tensor, axis: int) -> Tensor:
    """dL/dx_k = sum_{i >= k} g_i prod_{j <= i, j != k} x_j. While every product y is a
    normal float this is reversed_cumsum(g * y) / x; where one is 0 (x has zeros) or lost
    digits to underflow, each product is formed directly: row k of an (n, n) stack holds x
    with x_k replaced by 1, whose cumprod gives prod_{j <= i, j != k}."""
    tiny = float(np.finfo(x.dtype.np).tiny)  # the smallest normal float
    if bool(all(elementwise.abs(y.detach()) >= tiny)):
        return elementwise.div(_reversed_cumsum(elementwise.mul(g, y), axis), x)
    xt, gt = shape.transpose(x, axis, -1), shape.transpose(g, axis, -1)
    n = xt.shape[-1]
    be = x._backend
    diagonal = Tensor._make(be.from_numpy(np.eye(n, dtype=bool)), be)
    upper = Tensor._make(be.from_numpy(np.triu(np.ones((n, n), dtype=bool))), be)  # i >= k
    without_k = elementwise.where(diagonal, 1, shape.unsqueeze(xt, -2))
    products = cumprod(without_k, -1)
    terms = elementwise.where(upper, elementwise.mul(products, shape.unsqueeze(gt, -2)), 0)
    return shape.transpose(sum(terms, -1), axis, -1)


def _scan(name: str, x: Tensor, dim: int, dtype: Optional[DTypeLike]) -> Tensor:
    x = _accumulated(x, name, False, dtype)
    axis = wrap_dim(dim, x.ndim, name)
    if x.ndim == 0:
        return shape.reshape(Scan.apply(shape.reshape(x, (1,)), name, 0), ())
    return Scan.apply(x, name, axis)


@numpy_names
def cumsum(x: Tensor, dim: int, *, dtype: Optional[DTypeLike] = None) -> Tensor:
    """y_i = x_0 + ... + x_i along dim; bools and integers accumulate as int64 unless dtype
    is given (x is cast to dtype first).

    >>> import gradflow as gf
    >>> gf.cumsum(gf.tensor([1, 2, 3]), dim=0)
    tensor([1, 3, 6])
    """
    return _scan("cumsum", x, dim, dtype)


@numpy_names
def cumprod(x: Tensor, dim: int, *, dtype: Optional[DTypeLike] = None) -> Tensor:
    """y_i = x_0 * ... * x_i along dim; the gradient is exact also where x has zeros.

    >>> import gradflow as gf
    >>> gf.tensor([1.0, 2.0, 3.0]).cumprod(0)
    tensor([1., 2., 6.])
    """
    return _scan("cumprod", x, dim, dtype)
