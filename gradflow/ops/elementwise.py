"""Elementwise ops with broadcasting. Each backward is written in Tensor ops, so it is
differentiable again (higher-order gradients)."""

from __future__ import annotations

import math
import numbers
from typing import TYPE_CHECKING, Any, Callable, Optional, Tuple, cast

from gradflow import op_table
from gradflow.autograd.function import Context, Function, Gradients
from gradflow.autograd.grad_mode import _GradMode
from gradflow.backends.base import fused
from gradflow.ops import reduce, shape
from gradflow.ops.common import (
    as_bool,
    as_float,
    broadcast_shapes,
    check_tensor,
    fit_scalar,
    made_from_row,
    operands,
    to_array,
)
from gradflow.tensor import Tensor
from gradflow.types import Number, TensorLike, bool_, dtype, get_default_dtype


# ---------------------------------------------------------------- binary (op_table.BINARY)
class Binary(Function[Tensor]):
    """y = op(a, b) for a differentiable row of op_table.BINARY, whose derivatives it applies
    and sums back to each operand's shape. One operand may be a Python number (2 - x, 2 ** x).

    The context keeps only what the backward reads (an op runs thousands of times a step, and
    each object it keeps alive counts towards the garbage collector's next pass): the operands'
    shapes only when one was broadcast, the tensors only when the derivatives read them."""

    @staticmethod
    def forward(ctx: Context, a: TensorLike, b: TensorLike, row: op_table.BinaryOp) -> Tensor:
        # a_is / b_is narrow the operands as isinstance would (mypy cannot follow the flags)
        a_is, b_is = isinstance(a, Tensor), isinstance(b, Tensor)
        da: Any = a._data if a_is else a  # type: ignore[union-attr]
        db: Any = b._data if b_is else b  # type: ignore[union-attr]
        be = (a if a_is else b)._backend  # type: ignore[union-attr]
        out = Tensor._make(be.binary(row.name, da, db), be)
        ctx.row = row
        ctx._name = _BACKWARD_NAMES[row.name]
        shape = out._data.shape
        broadcast = (a_is and da.shape != shape) or (b_is and db.shape != shape)
        ctx.shapes = (da.shape if a_is else None, db.shape if b_is else None) if broadcast \
            else None
        if row.reads_values:  # the tensor operands in order, then (pow) the output
            ctx.number = None if a_is and b_is else b if a_is else a
            tensors: Tuple[Any, ...] = (a, b) if a_is and b_is else (a,) if a_is else (b,)
            if row.reads_output:
                tensors += (out,)
            ctx.save_for_backward(*tensors)  # only Tensors: the flags picked them
        return out

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Gradients:
        row, need = ctx.row, ctx.needs_input_grad
        a = b = y = None
        if row.reads_values:
            saved = ctx.saved_tensors
            if ctx.number is None:
                a, b = saved[0], saved[1]
            else:  # the Tensor operand is the one whose gradient is needed
                a, b = (saved[0], ctx.number) if need[0] else (ctx.number, saved[0])
            y = saved[-1] if row.reads_output else None
        ga = row.grad_a(g, a, b, y) if need[0] else None
        gb = row.grad_b(g, a, b, y) if need[1] else None
        if ctx.shapes is not None:
            ga = reduce.sum_to_shape(ga, ctx.shapes[0]) if ga is not None else None
            gb = reduce.sum_to_shape(gb, ctx.shapes[1]) if gb is not None else None
        return ga, gb, None


class BinaryInPlace(Function[Tensor]):
    """a op= b in a's storage while recording, for the rows whose derivatives read neither
    operand (add, sub): Binary's node and backward, without the copy of a that Binary would
    make. b is a Tensor of a's dtype or a number, and broadcasts to a's shape. The caller
    gives a the node's history (see inplace.arith_)."""

    @staticmethod
    def forward(ctx: Context, a: Tensor, b: TensorLike, row: op_table.BinaryOp) -> Any:
        b_is = isinstance(b, Tensor)
        db: Any = b._data if b_is else b  # type: ignore[union-attr]
        a._backend.binary_(row.name, a._data, db)
        ctx.row = row
        ctx._name = _BACKWARD_NAMES[row.name]
        ctx.shapes = (a._data.shape, db.shape) if b_is and db.shape != a._data.shape else None
        return a._data

    backward = Binary.backward


# "MulBackward", ...: each row's node name, made once.
_BACKWARD_NAMES = {r.name: r.name.capitalize() + "Backward"
                   for r in op_table.UNARY + op_table.BINARY}


def binary(name: str, a: TensorLike, b: TensorLike) -> Tensor:
    """The row `name` of op_table.BINARY applied to operands already coerced by operands()."""
    return _binary(a, b, op_table.BINARY_BY_NAME[name])


def _binary(a: TensorLike, b: TensorLike, row: op_table.BinaryOp) -> Tensor:
    """Binary.apply(a, b, row), or, when it would record nothing (grad mode off, or no operand
    that requires grad), the backend's result wrapped directly: the lean path of small
    tensors and of the optimizers' no_grad arithmetic."""
    a_is, b_is = isinstance(a, Tensor), isinstance(b, Tensor)  # (narrowing as in Binary)
    if _GradMode.enabled and ((a_is and a.requires_grad)  # type: ignore[union-attr]
                              or (b_is and b.requires_grad)):  # type: ignore[union-attr]
        return Binary.apply(a, b, row)
    be = (a if a_is else b)._backend  # type: ignore[union-attr]
    da, db = a._data if a_is else a, b._data if b_is else b  # type: ignore[union-attr]
    return Tensor._make(be.binary(row.name, da, db), be)


_ADD, _MUL = op_table.BINARY_BY_NAME["add"], op_table.BINARY_BY_NAME["mul"]


def _alpha(op: str, b: TensorLike, alpha: Number) -> TensorLike:
    """b * alpha for add/sub's alpha (a number)."""
    if not isinstance(alpha, numbers.Number):
        raise TypeError(f"{op}: argument 'alpha' must be a number, not {type(alpha).__name__}")
    if alpha == 1 or not isinstance(b, (Tensor, numbers.Number)):
        return b  # a wrong type is operands()' to refuse, naming the op
    return mul(b, alpha) if isinstance(b, Tensor) else b * alpha


def add(a: TensorLike, b: TensorLike, *, alpha: Number = 1) -> Tensor:
    """a + alpha * b elementwise, broadcasting a and b (either may be a Python number).

    >>> import gradflow as gf
    >>> gf.add(gf.tensor([1.0, 2.0]), gf.tensor([10.0, 20.0]), alpha=2)
    tensor([21., 42.])
    """
    if type(alpha) is not int or alpha != 1:
        b = _alpha("add", b, alpha)
    a, b, _ = operands("add", a, b)
    return _binary(a, b, _ADD)


def sub(a: TensorLike, b: TensorLike, *, alpha: Number = 1) -> Tensor:
    """a - alpha * b elementwise, broadcasting a and b (either may be a Python number).

    >>> import gradflow as gf
    >>> gf.sub(gf.tensor([5, 6]), 1)
    tensor([4, 5])
    """
    if type(alpha) is not int or alpha != 1:
        b = _alpha("sub", b, alpha)
    a, b, rt = operands("sub", a, b)
    if rt is bool_:
        raise TypeError("sub: subtraction, the `-` operator, with two bool tensors is not "
                        "supported; use `^` or logical_xor()")
    return binary("sub", a, b)


def mul(a: TensorLike, b: TensorLike) -> Tensor:
    """a * b elementwise, broadcasting a and b (either may be a Python number).

    >>> import gradflow as gf
    >>> gf.mul(gf.tensor([[1.0], [2.0]]), gf.tensor([1.0, 10.0]))
    tensor([[ 1., 10.],
            [ 2., 20.]])
    """
    a, b, _ = operands("mul", a, b)
    return _binary(a, b, _MUL)


def div(a: TensorLike, b: TensorLike) -> Tensor:
    """a / b elementwise (true division: integers give the default float dtype);
    ``rounding_mode`` is not taken (see floor_divide).

    >>> import gradflow as gf
    >>> gf.div(gf.tensor([1, 2]), 4)
    tensor([0.2500, 0.5000])
    """
    a, b, rt = operands("div", a, b)
    if not rt.is_floating_point:  # true division of integers gives the default float dtype
        a = shape.to_dtype(a, get_default_dtype()) if isinstance(a, Tensor) else a
        b = shape.to_dtype(b, get_default_dtype()) if isinstance(b, Tensor) else b
    return binary("div", a, b)


true_divide = div


def pow(a: TensorLike, b: TensorLike) -> Tensor:
    """a ** b elementwise, broadcasting a and b (either may be a Python number).

    >>> import gradflow as gf
    >>> gf.pow(gf.tensor([1.0, 2.0, 3.0]), 2)
    tensor([1., 4., 9.])
    >>> gf.pow(2, gf.tensor([0, 3]))
    tensor([1, 8])
    """
    a, b, rt = operands("pow", a, b)
    if not rt.is_floating_point and bool(reduce.any(b < 0) if isinstance(b, Tensor) else b < 0):
        raise ValueError("pow: integers to negative integer powers are not allowed")
    return binary("pow", a, b)


def full_like_scalar(t: Tensor, value: Number) -> Tensor:
    """A 0-d tensor holding value, with t's dtype and device (broadcasts against t)."""
    return Tensor._make(t._backend.full((), value, t._data.dtype), t._backend)


def maximum(a: TensorLike, b: TensorLike) -> Tensor:
    """The larger of a and b elementwise (NaN propagates); the gradient splits at ties.

    >>> import gradflow as gf
    >>> gf.maximum(gf.tensor([1.0, 5.0]), gf.tensor([3.0, 2.0]))
    tensor([3., 5.])
    """
    return binary("maximum", *operands("maximum", a, b)[:2])


def minimum(a: TensorLike, b: TensorLike) -> Tensor:
    """The smaller of a and b elementwise (NaN propagates); the gradient splits at ties.

    >>> import gradflow as gf
    >>> gf.minimum(gf.tensor([1.0, 5.0]), gf.tensor([3.0, 2.0]))
    tensor([1., 2.])
    """
    return binary("minimum", *operands("minimum", a, b)[:2])


def remainder(a: TensorLike, b: TensorLike) -> Tensor:
    """Python's modulo (sign of the divisor); gradient 1 w.r.t. a, like PyTorch.

    >>> import gradflow as gf
    >>> gf.remainder(gf.tensor([-3, 5]), 4)
    tensor([1, 1])
    """
    a, b, _ = _integral_operands("remainder", a, b)
    return a - floor_divide(a, b).detach() * b


def floor_divide(a: TensorLike, b: TensorLike) -> Tensor:
    """floor(a / b) elementwise, in the operands' promoted dtype (Python's ``//``).

    >>> import gradflow as gf
    >>> gf.tensor([-3, 5]) // 2
    tensor([-2,  2])
    """
    a, b, rt = _integral_operands("floor_divide", a, b)
    return shape.to_dtype(unary("floor", div(a, b)), rt)


def _integral_operands(op: str, a: TensorLike, b: TensorLike
                       ) -> Tuple[TensorLike, TensorLike, dtype]:
    """operands() for ops that divide and round: bool tensors are refused, as PyTorch."""
    a, b, rt = operands(op, a, b)
    if rt is bool_:
        raise TypeError(f"{op}: not supported for bool tensors (convert with .long())")
    return a, b, rt


# ---------------------------------------------------------------- unary (op_table.UNARY)
class Unary(Function[Tensor]):
    """y = op(x) for a differentiable row of op_table.UNARY, whose derivative it applies."""

    @staticmethod
    def forward(ctx: Context, x: Tensor, row: op_table.UnaryOp) -> Tensor:
        be = x._backend
        out = Tensor._make(be.unary(row.name, x._data), be)
        ctx.row = row
        ctx._name = _BACKWARD_NAMES[row.name]
        ctx.save_for_backward(x, out)
        return out

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Gradients:
        x, out = ctx.saved_tensors
        row = ctx.row
        kernel = (fused(g._backend, row.fused_grad)
                  if row.fused_grad is not None and not _GradMode.enabled else None)
        if kernel is not None:  # no graph to record: the backend's one-pass kernel
            return Tensor._make(kernel(g._data, out._data), g._backend), None
        return row.grad(g, x, out), None


def unary(op: str, x: Tensor) -> Tensor:
    """The row `op` of op_table.UNARY applied to x elementwise, with its dtype class's rule."""
    row = op_table.UNARY_BY_NAME[op]
    check_tensor(x, op)
    if row.dtype == op_table.BOOL:
        return Tensor._make(x._backend.unary(op, x._data), x._backend)
    if row.dtype == op_table.FLOAT:
        if not x.is_floating_point():
            x = shape.to_dtype(x, get_default_dtype())
    elif x.dtype is bool_:  # abs, sign, relu, floor, ceil, round keep 0/1 as they are
        if op == "neg":
            raise RuntimeError("neg: negation, the `-` operator, on a bool tensor is not "
                               "supported; to invert a mask use `~` or logical_not()")
        return shape.clone(x)
    if _GradMode.enabled and x.requires_grad:
        return Unary.apply(x, row)
    return Tensor._make(x._backend.unary(op, x._data), x._backend)  # nothing to record


def _unary_function(row: op_table.UnaryOp) -> Callable[[Tensor], Tensor]:
    def fn(x: Tensor) -> Tensor:
        return unary(row.name, x)

    doc = row.doc
    return made_from_row(fn, row.name, __name__, f"{row.name}(input) -> Tensor: {doc.summary}",
                         f"gf.{row.name}(gf.tensor({doc.example}))", doc.result)


# neg, abs, exp, ..., isnan: one function per row, also gradflow.<name> and (tensor.py
# installs it) the method Tensor.<name>
for _row in op_table.UNARY:
    globals()[_row.name] = _unary_function(_row)

if TYPE_CHECKING:  # the functions the loop above makes, as type checkers see them (for the
    # typed code that calls them; a new row works without a line here)
    def neg(x: Tensor) -> Tensor: ...
    def abs(x: Tensor) -> Tensor: ...
    def exp(x: Tensor) -> Tensor: ...
    def expm1(x: Tensor) -> Tensor: ...
    def log(x: Tensor) -> Tensor: ...
    def log1p(x: Tensor) -> Tensor: ...
    def sqrt(x: Tensor) -> Tensor: ...
    def rsqrt(x: Tensor) -> Tensor: ...
    def sin(x: Tensor) -> Tensor: ...
    def cos(x: Tensor) -> Tensor: ...
    def tanh(x: Tensor) -> Tensor: ...
    def sigmoid(x: Tensor) -> Tensor: ...
    def relu(x: Tensor) -> Tensor: ...
    def sign(x: Tensor) -> Tensor: ...
    def floor(x: Tensor) -> Tensor: ...
    def ceil(x: Tensor) -> Tensor: ...
    def round(x: Tensor) -> Tensor: ...
    def erf(x: Tensor) -> Tensor: ...
    def reciprocal(x: Tensor) -> Tensor: ...
    def logical_not(x: Tensor) -> Tensor: ...
    def isnan(x: Tensor) -> Tensor: ...
    def isinf(x: Tensor) -> Tensor: ...


def float_input(op: str, x: Tensor) -> Tensor:
    """The input of an activation: a Tensor, taken to the default float dtype if integral."""
    check_tensor(x, op)
    return x if x.is_floating_point() else shape.to_dtype(x, get_default_dtype())


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    """x where x > 0, else negative_slope * x (``inplace`` is not taken).

    >>> import gradflow as gf
    >>> gf.leaky_relu(gf.tensor([-2.0, 3.0]), 0.1)
    tensor([-0.2000,  3.0000])
    """
    x = float_input("leaky_relu", x)
    return where(x > 0, x, x * as_float(negative_slope, "leaky_relu", "negative_slope"))


def elu(x: Tensor, alpha: float = 1.0) -> Tensor:
    """x where x > 0, else alpha * (e ** x - 1) (``inplace`` is not taken).

    >>> import gradflow as gf
    >>> gf.elu(gf.tensor([-1.0, 2.0]))
    tensor([-0.6321,  2.0000])
    """
    x = float_input("elu", x)
    alpha = as_float(alpha, "elu", "alpha")
    return where(x > 0, x, unary("expm1", where(x > 0, 0.0, x)) * alpha)


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """x * Phi(x) = x/2 (1 + erf(x/sqrt 2)); approximate='tanh' uses the tanh formula.

    >>> import gradflow as gf
    >>> gf.gelu(gf.tensor([0.0, 1.0]))
    tensor([0.0000, 0.8413])
    """
    x = float_input("gelu", x)
    if not isinstance(approximate, str) or approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    if approximate == "tanh":
        inner = (x + x * x * x * 0.044715) * math.sqrt(2.0 / math.pi)
        return x * 0.5 * (unary("tanh", inner) + 1)
    return x * 0.5 * (unary("erf", x * (1.0 / math.sqrt(2.0))) + 1)


def softplus(x: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + e^(beta x)) / beta, linear where beta*x > threshold, as PyTorch. With z = bx:
    z + log1p(e^-z) for z > 0 and log1p(e^z) otherwise, two smooth branches that never
    overflow; each sees only its own inputs (0 elsewhere), so neither sends a NaN through
    where's backward, and the derivatives at z = 0 are exact (1/2, then 1/4).

    >>> import gradflow as gf
    >>> gf.softplus(gf.tensor([0.0, 30.0]))
    tensor([ 0.6931, 30.0000])
    """
    x = float_input("softplus", x)
    beta = as_float(beta, "softplus", "beta")
    threshold = as_float(threshold, "softplus", "threshold")
    if beta == 0:
        raise ValueError("softplus: beta must be nonzero (it divides)")
    bx = x * beta
    positive = bx > 0
    upper, lower = where(positive, bx, 0.0), where(positive, 0.0, bx)
    stable = where(positive, upper + unary("log1p", unary("exp", -upper)),
                   unary("log1p", unary("exp", lower))) / beta
    return where(bx > threshold, x, stable)


def lerp(x: Tensor, end: TensorLike, weight: TensorLike) -> Tensor:
    """x + weight * (end - x), end and weight tensors or numbers broadcast against x.

    >>> import gradflow as gf
    >>> gf.zeros(2).lerp(gf.tensor([10.0, 20.0]), 0.25)
    tensor([2.5000, 5.0000])
    """
    check_tensor(x, "lerp")
    if not x.is_floating_point():
        raise TypeError(f"lerp: expected a floating-point input, got {x.dtype}")
    for name, v in (("end", end), ("weight", weight)):
        if not isinstance(v, (Tensor, numbers.Number)):
            raise TypeError(f"lerp: argument '{name}' must be a Tensor or a number, not "
                            f"{type(v).__name__}")
    broadcast_shapes("lerp", x.shape, *(v.shape for v in (end, weight) if isinstance(v, Tensor)))
    return x + (end - x) * weight


def silu(x: Tensor) -> Tensor:
    """x * sigmoid(x) (``inplace`` is not taken).

    >>> import gradflow as gf
    >>> gf.silu(gf.tensor([0.0, 1.0]))
    tensor([0.0000, 0.7311])
    """
    x = float_input("silu", x)
    return x * unary("sigmoid", x)


class Clamp(Function[Tensor]):
    @staticmethod
    def forward(ctx: Context, x: Tensor, lo: Optional[Number], hi: Optional[Number]) -> Any:
        ctx.save_for_backward(x)
        ctx.lo, ctx.hi = lo, hi
        return x._backend.clip(x._data, lo, hi)

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Gradients:
        (x,) = ctx.saved_tensors
        inside = x >= ctx.lo if ctx.lo is not None else x <= ctx.hi
        if ctx.lo is not None and ctx.hi is not None:
            inside = inside & (x <= ctx.hi)
        return g * shape.to_dtype(inside, g.dtype), None, None


def clamp(x: Tensor, min: Optional[TensorLike] = None, max: Optional[TensorLike] = None
          ) -> Tensor:
    """x limited to [min, max] elementwise (either bound may be None, a number or a tensor).

    >>> import gradflow as gf
    >>> gf.clamp(gf.tensor([-2.0, 0.5, 3.0]), min=0.0, max=1.0)
    tensor([0.0000, 0.5000, 1.0000])
    """
    check_tensor(x, "clamp")
    for name, bound in (("min", min), ("max", max)):
        if bound is not None and not isinstance(bound, (numbers.Real, Tensor)):
            raise TypeError(f"clamp: argument '{name}' must be a number or a Tensor, not "
                            f"{type(bound).__name__}")
    if min is None and max is None:
        raise ValueError("clamp: at least one of 'min' or 'max' must not be None")
    broadcast_shapes("clamp", x.shape, *(b.shape for b in (min, max) if isinstance(b, Tensor)))
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        out = x
        if min is not None:
            out = maximum(out, min)
        if max is not None:
            out = minimum(out, max)
        return out
    if not x.is_floating_point() and any(isinstance(v, float) for v in (min, max)):
        x = shape.to_dtype(x, get_default_dtype())
    lo, hi = (None if v is None else fit_scalar("clamp", v, x.dtype) for v in (min, max))
    return Clamp.apply(x, lo, hi)


clip = clamp


# ---------------------------------------------------------------- selection
class Where(Function[Tensor]):
    @staticmethod
    def forward(ctx: Context, cond: Tensor, a: Tensor, b: Tensor) -> Any:
        ctx.save_for_backward(cond)
        ctx.shapes = (a.shape, b.shape)
        return a._backend.where(cond._data, a._data, b._data)

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Gradients:
        (cond,) = ctx.saved_tensors
        sa, sb = ctx.shapes
        zero = full_like_scalar(g, 0)
        ga = reduce.sum_to_shape(where(cond, g, zero), sa) if ctx.needs_input_grad[1] else None
        gb = reduce.sum_to_shape(where(cond, zero, g), sb) if ctx.needs_input_grad[2] else None
        return None, ga, gb


def where(condition: Tensor, input: TensorLike, other: TensorLike) -> Tensor:
    """input where condition else other, broadcasting all three (input and other may be
    numbers); the one-argument form where(condition) is nonzero(condition, as_tuple=True).

    >>> import gradflow as gf
    >>> x = gf.tensor([1.0, -2.0, 3.0])
    >>> gf.where(x > 0, x, 0.0)
    tensor([1., 0., 3.])
    """
    if not isinstance(condition, Tensor):
        raise TypeError(f"where: condition must be a bool Tensor, got {type(condition).__name__}")
    if condition.dtype is not bool_:
        raise RuntimeError(
            f"where: expected condition to be a bool tensor, but got a tensor with dtype "
            f"{condition.dtype} (compare it, e.g. condition != 0)"
        )
    a, b, _ = operands("where", input, other)
    a = a if isinstance(a, Tensor) else full_like_scalar(cast(Tensor, b), a)
    b = b if isinstance(b, Tensor) else full_like_scalar(a, b)
    if condition._backend is not a._backend:
        raise RuntimeError(
            f"where: expected all tensors to be on the same device, but found at least two "
            f"devices, {condition.device} and {a.device}!"
        )
    broadcast_shapes("where", condition.shape, a.shape, b.shape)
    return Where.apply(condition, a, b)


def masked_fill(x: Tensor, mask: Tensor, value: TensorLike) -> Tensor:
    """x with value where the bool mask (broadcast to x) is True.

    >>> import gradflow as gf
    >>> x = gf.tensor([1.0, -2.0, 3.0])
    >>> x.masked_fill(x < 0, 0.0)
    tensor([1., 0., 3.])
    """
    check_tensor(x, "masked_fill")
    if not isinstance(value, (Tensor, numbers.Number)):
        raise TypeError(f"masked_fill: value must be a number or a Tensor, not "
                        f"{type(value).__name__}")
    if not isinstance(mask, Tensor) or mask.dtype is not bool_:
        raise RuntimeError(
            f"masked_fill: only supports bool masks, but got "
            f"{mask.dtype if isinstance(mask, Tensor) else type(mask).__name__}"
        )
    if broadcast_shapes("masked_fill", x.shape, mask.shape) != x.shape:
        raise ValueError(
            f"masked_fill: mask of shape {tuple(mask.shape)} cannot be broadcast to the input's "
            f"shape {tuple(x.shape)}"
        )
    if isinstance(value, Tensor) and value.ndim == 0 and not value.requires_grad:
        value = value.item()
    if not isinstance(value, Tensor):  # an int past x's dtype is refused, as PyTorch's
        value = fit_scalar("masked_fill", value, x.dtype)
    if isinstance(value, Tensor) and broadcast_shapes("masked_fill", x.shape,
                                                      value.shape) != x.shape:
        raise ValueError(f"masked_fill: value of shape {tuple(value.shape)} cannot be broadcast "
                         f"to the input's shape {tuple(x.shape)}")
    out = where(mask, value if isinstance(value, Tensor) else full_like_scalar(x, value), x)
    return shape.to_dtype(out, x.dtype)


# ---------------------------------------------------------------- comparisons (no grad)
def _compare(op: str, a: TensorLike, b: TensorLike) -> Tensor:
    a, b, _ = operands(op, a, b)
    if not isinstance(a, Tensor):
        a, b = b, a
        op = {"lt": "gt", "le": "ge", "gt": "lt", "ge": "le"}.get(op, op)
    a = cast(Tensor, a)  # operands() returns at least one Tensor
    return Tensor._make(a._backend.binary(op, a._data, to_array(b)), a._backend)


# Each comparison row's docstring: what it says of a and b, and an example call's operands
# and result printed.
_COMPARE_DOCS = {
    "eq": ("a == b", "gf.tensor([1, 2, 3]), 2", "tensor([False,  True, False])"),
    "ne": ("a != b", "gf.tensor([1, 2, 3]), 2", "tensor([ True, False,  True])"),
    "lt": ("a < b", "gf.tensor([1, 2, 3]), 2", "tensor([ True, False, False])"),
    "le": ("a <= b", "gf.tensor([1, 2, 3]), 2", "tensor([ True,  True, False])"),
    "gt": ("a > b", "gf.tensor([1, 2, 3]), 2", "tensor([False, False,  True])"),
    "ge": ("a >= b", "gf.tensor([1, 2, 3]), 2", "tensor([False,  True,  True])"),
    "logical_and": ("a and b (nonzero is True)",
                    "gf.tensor([True, False]), gf.tensor([True, True])", "tensor([ True, False])"),
    "logical_or": ("a or b (nonzero is True)",
                   "gf.tensor([True, False]), gf.tensor([False, False])",
                   "tensor([ True, False])"),
    "logical_xor": ("a xor b (nonzero is True)",
                    "gf.tensor([True, False]), gf.tensor([True, True])", "tensor([False,  True])"),
}


def _compare_function(name: str) -> Callable[[TensorLike, TensorLike], Tensor]:
    def fn(a: TensorLike, b: TensorLike) -> Tensor:
        return _compare(name, a, b)

    summary, operands_, result = _COMPARE_DOCS[name]
    return made_from_row(fn, name, __name__,
                         f"{summary} elementwise, a bool tensor (not differentiable).",
                         f"gf.{name}({operands_})", result)


# eq, ne, lt, le, gt, ge, logical_and/or/xor: one function per BOOL row of op_table.BINARY
for _name in (row.name for row in op_table.BINARY if row.dtype == op_table.BOOL):
    globals()[_name] = _compare_function(_name)

if TYPE_CHECKING:  # the functions the loop above makes, as type checkers see them
    def eq(a: TensorLike, b: TensorLike) -> Tensor: ...
    def ne(a: TensorLike, b: TensorLike) -> Tensor: ...
    def lt(a: TensorLike, b: TensorLike) -> Tensor: ...
    def le(a: TensorLike, b: TensorLike) -> Tensor: ...
    def gt(a: TensorLike, b: TensorLike) -> Tensor: ...
    def ge(a: TensorLike, b: TensorLike) -> Tensor: ...
    def logical_and(a: TensorLike, b: TensorLike) -> Tensor: ...
    def logical_or(a: TensorLike, b: TensorLike) -> Tensor: ...
    def logical_xor(a: TensorLike, b: TensorLike) -> Tensor: ...


def equal(a: Tensor, b: Tensor) -> bool:
    """Whether a and b have the same shape and the same values.

    >>> import gradflow as gf
    >>> gf.equal(gf.tensor([1, 2]), gf.tensor([1, 2])), gf.equal(gf.tensor([1]), gf.tensor([1, 1]))
    (True, False)
    """
    check_tensor(a, "equal", "input")
    check_tensor(b, "equal", "other")
    return a.shape == b.shape and bool(reduce.all(a == b))


def allclose(a: Tensor, b: Tensor, rtol: float = 1e-5, atol: float = 1e-8,
             equal_nan: bool = False) -> bool:
    """Whether isclose(a, b, rtol, atol, equal_nan) holds everywhere.

    >>> import gradflow as gf
    >>> gf.allclose(gf.tensor([1.0, 2.0]), gf.tensor([1.0, 2.0 + 1e-7]))
    True
    """
    import numpy as np

    check_tensor(a, "allclose", "input")
    check_tensor(b, "allclose", "other")
    broadcast_shapes("allclose", a.shape, b.shape)
    return bool(np.allclose(a.detach().numpy(), b.detach().numpy(), as_float(rtol, "allclose",
                            "rtol"), as_float(atol, "allclose", "atol"), bool(equal_nan)))


def isclose(a: Tensor, b: Tensor, rtol: float = 1e-05, atol: float = 1e-08,
            equal_nan: bool = False) -> Tensor:
    """|a - b| <= atol + rtol * |b| elementwise, broadcasting a and b; an infinity is close
    only to itself, and nan to nan only with equal_nan.

    >>> import gradflow as gf
    >>> gf.isclose(gf.tensor([1.0, 2.0]), gf.tensor([1.0, 2.1]))
    tensor([ True, False])
    """
    check_tensor(a, "isclose", "input")
    check_tensor(b, "isclose", "other")
    rtol, atol = as_float(rtol, "isclose", "rtol"), as_float(atol, "isclose", "atol")
    equal_nan = as_bool(equal_nan, "isclose", "equal_nan")
    if rtol < 0 or atol < 0:
        raise ValueError(f"isclose: rtol and atol must be non-negative, got rtol={rtol}, "
                         f"atol={atol}")
    broadcast_shapes("isclose", a.shape, b.shape)
    close = eq(a, b)
    if a.dtype is bool_ or b.dtype is bool_:
        return close
    promoted_a, promoted_b, _ = operands("isclose", a, b)
    # no inf - inf for equal infinities
    a, b = where(close, 0, promoted_a), where(close, 0, promoted_b)
    difference = unary("abs", sub(a, b))
    tolerance = add(mul(unary("abs", b), rtol), atol)
    infinite = logical_or(unary("isinf", a), unary("isinf", b))  # close only when equal
    close = logical_or(close, logical_and(le(difference, tolerance), unary("logical_not",
                                                                           infinite)))
    if equal_nan:
        close = logical_or(close, logical_and(unary("isnan", a), unary("isnan", b)))
    return close
