"""In-place ops, with PyTorch's rules: a leaf that requires grad cannot be modified in place
(outside no_grad); every change bumps the tensor's version so autograd detects stale saves."""

from __future__ import annotations

import builtins
import numbers
from typing import Any, Callable, Optional

import numpy as np

from gradflow import op_table
from gradflow.autograd.grad_mode import _GradMode
from gradflow.ops import elementwise, reduce, shape
from gradflow.ops import index as _index
from gradflow.ops.common import (
    _category,
    as_bool,
    as_float,
    broadcast_shapes,
    check_tensor,
    fit_scalar,
    made_from_row,
    numpy_names,
    result_type,
)
from gradflow.tensor import Tensor
from gradflow.types import Number, TensorLike, bool_


def check_inplace(t: Tensor, op: str, other_requires_grad: bool = False) -> bool:
    """Raise for forbidden in-place writes; return whether the write records a graph node."""
    if not _GradMode.enabled:
        return False
    if t.requires_grad and t._ctx is None:
        raise RuntimeError(
            f"{op}: a leaf Variable that requires grad is being used in an in-place operation."
        )
    recording = t.requires_grad or other_requires_grad
    if recording and t._is_view:
        raise RuntimeError(
            f"{op}: in-place operation on a view of another tensor while recording gradients "
            "is not supported; use the out-of-place op"
        )
    return recording


def _write(t: Tensor, result: Tensor, op: str) -> Tensor:
    if result.shape != t.shape:
        raise RuntimeError(
            f"{op}: output with shape {tuple(t.shape)} doesn't match the broadcast shape "
            f"{tuple(result.shape)}"
        )
    if _category(result.dtype) > _category(t.dtype):
        raise RuntimeError(f"{op}: result type {result.dtype} can't be cast to {t.dtype}")
    t._backend.copy_(t._data, result._data)
    return _written(t, result)


def _written(t: Tensor, result: Tensor) -> Tensor:
    """t, whose storage now holds `result`: its version bumped, and result's history taken."""
    t._version[0] += 1
    if result._ctx is not None:
        t._ctx, t._output_nr, t.requires_grad = result._ctx, result._output_nr, True
    return t


def setitem(t: Tensor, key: Any, value: Any) -> None:
    """t[key] = value. When t or value requires grad, t takes the history of index.put, the
    same write out of place (so the gradient reaches value at key and t's old value elsewhere)."""
    value_grad = isinstance(value, Tensor) and value.requires_grad
    if check_inplace(t, "index assignment", value_grad):
        _write(t, _index.put(t, key, value), "index assignment")
    else:
        _index.setitem(t, key, value)


def apply_(t: Tensor, fn: Callable[[Tensor], Tensor], op: str, *others: Any) -> Tensor:
    """t = fn(t) in t's storage; t takes the result's history. `others` are the other tensors
    fn reads. When recording, fn gets a copy of t: the nodes it records may save their input,
    and t's storage is about to be overwritten."""
    recording = check_inplace(t, op, builtins.any(isinstance(o, Tensor) and o.requires_grad
                                           for o in others))
    return _write(t, fn(shape.clone(t) if recording else t), op)


def _unary_inplace(name: str) -> Callable[[Tensor], Tensor]:
    """The method x.<name>_(): x = <name>(x) in x's storage."""
    out_of_place = getattr(elementwise, name)

    def fn(t: Tensor) -> Tensor:
        return apply_(t, out_of_place, name + "_")

    doc = op_table.UNARY_BY_NAME[name].doc
    return made_from_row(fn, name + "_", __name__, f"self = {name}(self) in place.",
                         f"gf.tensor({doc.example}).{name}_()", doc.result)


# neg_, abs_, exp_, ...: one per name of op_table.UNARY_INPLACE, installed as Tensor methods
for _name in op_table.UNARY_INPLACE:
    globals()[_name] = _unary_inplace(_name[:-1])

def pointwise_(t: Tensor, op: str, t1: Tensor, t2: Tensor, value: Number,
               fn: Callable[[Tensor, Tensor], Tensor]) -> Tensor:
    """t += value * fn(t1, t2) (addcmul_, addcdiv_): t1 and t2 tensors broadcasting to t's
    shape, value a number."""
    check_tensor(t1, op, "tensor1")
    check_tensor(t2, op, "tensor2")
    if not isinstance(value, numbers.Number):
        raise TypeError(f"{op}: argument 'value' must be a number, not {type(value).__name__}")
    value = fit_scalar(op, value, result_type(t, value))
    if broadcast_shapes(op, t.shape, t1.shape, t2.shape) != t.shape:
        raise RuntimeError(f"{op}: output with shape {tuple(t.shape)} doesn't match the "
                           f"broadcast shape of {tuple(t1.shape)} and {tuple(t2.shape)}")
    return apply_(t, lambda s: s + fn(t1, t2) * value, op, t1, t2)


def arith_(t: Tensor, op: str, other: TensorLike) -> Tensor:
    """t = t op other. Without a graph to record, the backend updates the storage directly."""
    other_rg = isinstance(other, Tensor) and other.requires_grad
    if check_inplace(t, op + "_", other_rg):
        if op in _NO_COPY and _fits_in_place(t, other):
            return _written(t, elementwise.BinaryInPlace.apply(t, other,
                                                                op_table.BINARY_BY_NAME[op]))
        result: Tensor = getattr(elementwise, op)(shape.clone(t), other)
        return _write(t, result, op + "_")
    if op == "sub" and t.dtype is bool_:
        raise TypeError("sub_: subtraction, the `-` operator, with a bool tensor is not "
                        "supported; use `^` or logical_xor()")
    if op == "div" and not t.is_floating_point():
        raise RuntimeError(
            f"div_: result type Float can't be cast to the desired output type {t.dtype}"
        )
    if isinstance(other, Tensor):
        if other._backend is not t._backend:
            raise RuntimeError(
                f"{op}_: expected all tensors to be on the same device, but found at least two "
                f"devices, {t.device} and {other.device}!"
            )
        if other._data.dtype != t._data.dtype and \
                _category(result_type(t, other)) > _category(t.dtype):
            raise RuntimeError(f"{op}_: result type {other.dtype} can't be cast to {t.dtype}")
        other_data: Any = other._data
    elif isinstance(other, numbers.Number):
        if _category(result_type(t, other)) > _category(t.dtype):
            raise RuntimeError(f"{op}_: result type Float can't be cast to {t.dtype}")
        other_data = fit_scalar(op + "_", other, t.dtype)
    else:
        raise TypeError(f"{op}_: unsupported operand type {type(other).__name__}")
    try:
        t._backend.binary_(op, t._data, other_data)
    except ValueError:
        raise RuntimeError(
            f"{op}_: output with shape {tuple(t.shape)} doesn't match the broadcast shape of "
            f"{tuple(t.shape)} and {tuple(getattr(other, 'shape', ()))}"
        ) from None
    t._version[0] += 1
    return t


# The in-place ops that record without copying t first: their derivatives read no values.
_NO_COPY = ("add", "sub")


def _fits_in_place(t: Tensor, other: TensorLike) -> bool:
    """Whether t op= other can write t's storage as it is: t floating-point, other a number
    or a tensor of t's dtype and device that broadcasts to t's shape."""
    if t._data.dtype.kind != "f":
        return False
    if not isinstance(other, Tensor):
        return type(other) is float or type(other) is int
    ts, os_ = t._data.shape, other._data.shape
    return (other._data.dtype == t._data.dtype and other._backend is t._backend
            and len(os_) <= len(ts)
            and all(o == 1 or o == n for o, n in zip(reversed(os_), reversed(ts))))


def fill_(t: Tensor, value: TensorLike, op: str = "fill_") -> Tensor:
    if isinstance(value, Tensor):
        if value.ndim:
            raise RuntimeError(f"{op}: only supports a 0-dimensional value tensor, got a tensor "
                               f"with {value.ndim} dimensions")
        value = value.item()
    if not isinstance(value, numbers.Number):
        raise TypeError(f"{op}: value must be a number or a 0-d Tensor, not "
                        f"{type(value).__name__}")
    if not t.is_floating_point() and isinstance(value, float) and not np.isfinite(value):
        raise RuntimeError(f"{op}: value {value} cannot be converted to {t.dtype}")
    value = fit_scalar(op, value, t.dtype)
    if check_inplace(t, op):
        return _write(t, shape.clone(t) * 0 + elementwise.full_like_scalar(t, value), op)
    t._backend.setitem(t._data, (Ellipsis,), value)
    t._version[0] += 1
    return t


def copy_(t: Tensor, src: Tensor) -> Tensor:
    """Copy src (broadcast to t's shape, converted to t's dtype and device) into t, in place
    (``non_blocking`` is not taken).

    >>> import gradflow as gf
    >>> gf.zeros(2, 2).copy_(gf.tensor([1, 2]))
    tensor([[1., 2.],
            [1., 2.]])
    """
    if not isinstance(src, Tensor):
        raise TypeError(f"copy_: src must be a Tensor, got {type(src).__name__}")
    try:
        fits = broadcast_shapes("copy_", t.shape, src.shape) == t.shape
    except ValueError:
        fits = False
    if not fits:
        raise RuntimeError(
            f"copy_: source of shape {tuple(src.shape)} cannot be broadcast to {tuple(t.shape)}"
        )
    if src._backend is not t._backend:
        src = shape.to_device(src, t.device)
    if src.dtype is not t.dtype:
        src = shape.to_dtype(src, t.dtype)
    if check_inplace(t, "copy_", src.requires_grad):
        return _write(t, shape.expand(src, t.shape) + shape.clone(t) * 0, "copy_")
    try:
        t._backend.copy_(t._data, src._data)
    except ValueError:
        raise RuntimeError(
            f"copy_: source of shape {tuple(src.shape)} cannot be broadcast to {tuple(t.shape)}"
        ) from None
    t._version[0] += 1
    return t


def _fill_random(t: Tensor, values: Any, op: str) -> Tensor:
    check_inplace(t, op)
    t._backend.copy_(t._data, values)
    t._version[0] += 1
    return t


def _check_float(t: Tensor, op: str) -> None:
    if not t.is_floating_point():
        raise RuntimeError(f"{op}: expected a floating point tensor, got {t.dtype}")


def uniform_(t: Tensor, a: float = 0.0, b: float = 1.0) -> Tensor:
    """Fill t with uniform random numbers in [a, b), in place.

    >>> import gradflow as gf
    >>> x = gf.empty(100).uniform_(-1, 1)
    >>> bool(x.min() >= -1), bool(x.max() < 1)
    (True, True)
    """
    _check_float(t, "uniform_")
    a, b = as_float(a, "uniform_", "from"), as_float(b, "uniform_", "to")
    if not a <= b:
        raise RuntimeError(f"uniform_: expects a [from, to) range, but got from={a} > to={b}")
    be = t._backend
    u = be.rand(t.shape, t._data.dtype)
    return _fill_random(t, be.binary("add", be.binary("mul", u, b - a), a), "uniform_")


def normal_(t: Tensor, mean: float = 0.0, std: float = 1.0) -> Tensor:
    """Fill t with normal random numbers of the given mean and std, in place.

    >>> import gradflow as gf
    >>> gf.empty(2, 3).normal_(0.0, 0.1).shape
    gradflow.Size([2, 3])
    """
    _check_float(t, "normal_")
    mean, std = as_float(mean, "normal_", "mean"), as_float(std, "normal_", "std")
    if not std >= 0:
        raise RuntimeError(f"normal_: expects std >= 0.0, but got std={std}")
    be = t._backend
    z = be.randn(t.shape, t._data.dtype)
    return _fill_random(t, be.binary("add", be.binary("mul", z, std), mean), "normal_")


def bernoulli_(t: Tensor, p: TensorLike = 0.5) -> Tensor:
    """Each element becomes 1 with probability p (a number, or a float tensor broadcast to t's
    shape), in t's dtype. The draws are float64 for integer and bool tensors.

    >>> import gradflow as gf
    >>> gf.empty(3).bernoulli_(1.0)
    tensor([1., 1., 1.])
    """
    be = t._backend
    if isinstance(p, Tensor):
        if not p.is_floating_point():
            raise RuntimeError(f"bernoulli_: p must be a floating point tensor, got {p.dtype}")
        if p._backend is not be:
            raise RuntimeError(f"bernoulli_: p is on {p.device} but the tensor is on {t.device}")
        if broadcast_shapes("bernoulli_", t.shape, p.shape) != t.shape:
            raise RuntimeError(f"bernoulli_: p of shape {tuple(p.shape)} cannot be broadcast to "
                               f"the tensor's shape {tuple(t.shape)}")
        if p.numel() and not bool(reduce.all((p >= 0) & (p <= 1))):
            raise RuntimeError("bernoulli_: expects all elements of p to be in [0, 1]")
        p = p._data  # the backend array: compared with the draws below
    elif not isinstance(p, numbers.Real):
        raise TypeError(f"bernoulli_: p must be a number or a Tensor, got {type(p).__name__}")
    elif not 0 <= p <= 1:
        raise RuntimeError(f"bernoulli_: expects p to be in [0, 1], but got p={p}")
    draw_dtype = t._data.dtype if t.is_floating_point() else np.dtype(np.float64)
    return _fill_random(t, be.binary("lt", be.rand(t.shape, draw_dtype), p), "bernoulli_")


@numpy_names
def index_add_(t: Tensor, dim: int, index: Tensor, source: Tensor, *, alpha: Number = 1
               ) -> Tensor:
    """In-place index_add: t[..., index[i], ...] += alpha * source[..., i, ...] along dim.

    >>> import gradflow as gf
    >>> gf.zeros(3).index_add_(0, gf.tensor([2, 2]), gf.tensor([1.0, 2.0]))
    tensor([0., 0., 3.])
    """
    return apply_(t, lambda s: _index.index_add(s, dim, index, source, alpha=alpha),
                  "index_add_", source)


@numpy_names
def scatter_(t: Tensor, dim: int, index: Tensor, src: Optional[TensorLike] = None, *,
             value: Optional[Number] = None, reduce: Optional[str] = None) -> Tensor:
    """In-place scatter: t[index[i][j]][j] = src[i][j] (dim=0), or = value.

    >>> import gradflow as gf
    >>> gf.zeros(3).scatter_(0, gf.tensor([1]), 7.0)
    tensor([0., 7., 0.])
    """
    return apply_(t, lambda s: _index.scatter(s, dim, index, src, value=value, reduce=reduce),
                  "scatter_", src)


def _diagonal_mask(t: Tensor, wrap: bool) -> np.ndarray[Any, Any]:
    """Where fill_diagonal_ writes: the elements t[i, i, ..., i]; for a tall 2-D t with
    wrap, the diagonal starts again every (columns + 1) rows, as NumPy's fill_diagonal."""
    if t.ndim < 2:
        raise ValueError(f"fill_diagonal_: the input must have at least 2 dimensions, got "
                         f"shape {tuple(t.shape)}")
    if t.ndim > 2 and len(set(t.shape)) != 1:
        raise ValueError(f"fill_diagonal_: all dimensions of the input must be of equal "
                         f"length, got shape {tuple(t.shape)}")
    mask = np.zeros(t.shape, dtype=bool)
    np.fill_diagonal(mask, True, wrap=wrap)
    return mask


def fill_diagonal_(t: Tensor, fill_value: Number, wrap: bool = False) -> Tensor:
    """Fill the main diagonal t[i, i, ..., i] with fill_value, in place.

    >>> import gradflow as gf
    >>> gf.zeros(2, 3).fill_diagonal_(5)
    tensor([[5., 0., 0.],
            [0., 5., 0.]])
    """
    check_tensor(t, "fill_diagonal_")
    wrap = as_bool(wrap, "fill_diagonal_", "wrap")
    if not isinstance(fill_value, numbers.Number):
        raise TypeError(f"fill_diagonal_: fill_value must be a number, not "
                        f"{type(fill_value).__name__}")
    mask = Tensor._make(t._backend.from_numpy(_diagonal_mask(t, wrap)), t._backend)
    return apply_(t, lambda s: elementwise.masked_fill(s, mask, fill_value), "fill_diagonal_")
