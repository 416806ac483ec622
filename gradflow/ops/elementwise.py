"""Elementwise ops with broadcasting. Each backward is written in Tensor ops, so it is
differentiable again (higher-order gradients)."""

from __future__ import annotations

import math
import numbers

from gradflow import op_table
from gradflow.autograd.function import Function
from gradflow.autograd.grad_mode import _GradMode
from gradflow.backends.base import fused
from gradflow.ops import reduce, shape
from gradflow.ops.common import (
    as_float,
    broadcast_shapes,
    check_tensor,
    operands,
    to_array,
)
from gradflow.tensor import Tensor
from gradflow.types import bool_, get_default_dtype


# ---------------------------------------------------------------- binary (op_table.BINARY)
class Binary(Function):
    """y = op(a, b) for a differentiable row of op_table.BINARY, whose derivatives it applies
    and sums back to each operand's shape. One operand may be a Python number (2 - x, 2 ** x).

    The context keeps only what the backward reads (an op runs thousands of times a step, and
    each object it keeps alive counts towards the garbage collector's next pass): the operands'
    shapes only when one was broadcast, the tensors only when the derivatives read them."""

    @staticmethod
    def forward(ctx, a, b, row):
        a_is, b_is = isinstance(a, Tensor), isinstance(b, Tensor)
        da, db = a._data if a_is else a, b._data if b_is else b
        be = (a if a_is else b)._backend
        out = Tensor._make(be.binary(row.name, da, db), be)
        ctx.row = row
        ctx._name = _BACKWARD_NAMES[row.name]
        shape = out._data.shape
        broadcast = (a_is and da.shape != shape) or (b_is and db.shape != shape)
        ctx.shapes = (da.shape if a_is else None, db.shape if b_is else None) if broadcast \
            else None
        if row.reads_values:  # the tensor operands in order, then (pow) the output
            ctx.number = None if a_is and b_is else b if a_is else a
            tensors = (a, b) if a_is and b_is else (a,) if a_is else (b,)
            if row.reads_output:
                tensors += (out,)
            ctx.save_for_backward(*tensors)
        return out

    @staticmethod
    def backward(ctx, g):
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


# "MulBackward", ...: each row's node name, made once.
_BACKWARD_NAMES = {r.name: r.name.capitalize() + "Backward"
                   for r in op_table.UNARY + op_table.BINARY}


def binary(name: str, a, b) -> Tensor:
    """The row `name` of op_table.BINARY applied to operands already coerced by operands()."""
    return _binary(a, b, op_table.BINARY_BY_NAME[name])


def _binary(a, b, row) -> Tensor:
    """Binary.apply(a, b, row), or, when it would record nothing (grad mode off, or no operand
    that requires grad), the backend's result wrapped directly: the lean path of small
    tensors and of the optimizers' no_grad arithmetic."""
    a_is, b_is = isinstance(a, Tensor), isinstance(b, Tensor)
    if _GradMode.enabled and ((a_is and a.requires_grad) or (b_is and b.requires_grad)):
        return Binary.apply(a, b, row)
    be = (a if a_is else b)._backend
    return Tensor._make(be.binary(row.name, a._data if a_is else a, b._data if b_is else b), be)


_ADD, _MUL = op_table.BINARY_BY_NAME["add"], op_table.BINARY_BY_NAME["mul"]


def _alpha(op: str, b, alpha):
    """b * alpha for add/sub's alpha (a number)."""
    if not isinstance(alpha, numbers.Number):
        raise TypeError(f"{op}: argument 'alpha' must be a number, not {type(alpha).__name__}")
    if alpha == 1 or not isinstance(b, (Tensor, numbers.Number)):
        return b  # a wrong type is operands()' to refuse, naming the op
    return mul(b, alpha) if isinstance(b, Tensor) else b * alpha


def add(a, b, *, alpha=1) -> Tensor:
    if type(alpha) is not int or alpha != 1:
        b = _alpha("add", b, alpha)
    a, b, _ = operands("add", a, b)
    return _binary(a, b, _ADD)


def sub(a, b, *, alpha=1) -> Tensor:
    if type(alpha) is not int or alpha != 1:
        b = _alpha("sub", b, alpha)
    a, b, rt = operands("sub", a, b)
    if rt is bool_:
        raise TypeError("sub: subtraction, the `-` operator, with two bool tensors is not "
                        "supported; use `^` or logical_xor()")
    return binary("sub", a, b)


def mul(a, b) -> Tensor:
    a, b, _ = operands("mul", a, b)
    return _binary(a, b, _MUL)


def div(a, b) -> Tensor:
    a, b, rt = operands("div", a, b)
    if not rt.is_floating_point:  # true division of integers gives the default float dtype
        a = shape.to_dtype(a, get_default_dtype()) if isinstance(a, Tensor) else a
        b = shape.to_dtype(b, get_default_dtype()) if isinstance(b, Tensor) else b
    return binary("div", a, b)


true_divide = div


def pow(a, b) -> Tensor:
    a, b, rt = operands("pow", a, b)
    if not rt.is_floating_point and bool(reduce.any(b < 0) if isinstance(b, Tensor) else b < 0):
        raise ValueError("pow: integers to negative integer powers are not allowed")
    return binary("pow", a, b)


def full_like_scalar(t: Tensor, value) -> Tensor:
    return Tensor._make(t._backend.full((), value, t._data.dtype), t._backend)


def maximum(a, b) -> Tensor:
    return binary("maximum", *operands("maximum", a, b)[:2])


def minimum(a, b) -> Tensor:
    return binary("minimum", *operands("minimum", a, b)[:2])


def remainder(a, b) -> Tensor:
    """Python's modulo (sign of the divisor); gradient 1 w.r.t. a, like PyTorch."""
    a, b, _ = _integral_operands("remainder", a, b)
    return a - floor_divide(a, b).detach() * b


def floor_divide(a, b) -> Tensor:
    a, b, rt = _integral_operands("floor_divide", a, b)
    return shape.to_dtype(unary("floor", div(a, b)), rt)


def _integral_operands(op: str, a, b):
    """operands() for ops that divide and round: bool tensors are refused, as PyTorch."""
    a, b, rt = operands(op, a, b)
    if rt is bool_:
        raise TypeError(f"{op}: not supported for bool tensors (convert with .long())")
    return a, b, rt


# ---------------------------------------------------------------- unary (op_table.UNARY)
class Unary(Function):
    """y = op(x) for a differentiable row of op_table.UNARY, whose derivative it applies."""

    @staticmethod
    def forward(ctx, x, row):
        be = x._backend
        out = Tensor._make(be.unary(row.name, x._data), be)
        ctx.row = row
        ctx._name = _BACKWARD_NAMES[row.name]
        ctx.save_for_backward(x, out)
        return out

    @staticmethod
    def backward(ctx, g):
        x, out = ctx.saved_tensors
        row = ctx.row
        kernel = (fused(g._backend, row.fused_grad)
                  if row.fused_grad is not None and not _GradMode.enabled else None)
        if kernel is not None:  # no graph to record: the backend's one-pass kernel
            return Tensor._make(kernel(g._data, out._data), g._backend), None
        return row.grad(g, x, out), None


def unary(op: str, x) -> Tensor:
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


def _unary_function(row: op_table.UnaryOp):
    def fn(x: Tensor) -> Tensor:
        return unary(row.name, x)

    fn.__name__ = fn.__qualname__ = row.name
    fn.__module__ = __name__
    fn.__doc__ = f"{row.name}(x) elementwise: a row of gradflow.op_table.UNARY."
    return fn


# neg, abs, exp, ..., isnan: one function per row, also gradflow.<name> and (tensor.py
# installs it) the method Tensor.<name>
for _row in op_table.UNARY:
    globals()[_row.name] = _unary_function(_row)


def float_input(op: str, x) -> Tensor:
    """The input of an activation: a Tensor, taken to the default float dtype if integral."""
    check_tensor(x, op)
    return x if x.is_floating_point() else shape.to_dtype(x, get_default_dtype())


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    x = float_input("leaky_relu", x)
    return where(x > 0, x, x * as_float(negative_slope, "leaky_relu", "negative_slope"))


def elu(x: Tensor, alpha: float = 1.0) -> Tensor:
    x = float_input("elu", x)
    alpha = as_float(alpha, "elu", "alpha")
    return where(x > 0, x, unary("expm1", where(x > 0, 0.0, x)) * alpha)


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """x * Phi(x) = x/2 (1 + erf(x/sqrt 2)); approximate='tanh' uses the tanh formula."""
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
    where's backward, and the derivatives at z = 0 are exact (1/2, then 1/4)."""
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


def lerp(x: Tensor, end, weight) -> Tensor:
    """x + weight * (end - x), end and weight tensors or numbers broadcast against x."""
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
    x = float_input("silu", x)
    return x * unary("sigmoid", x)


class Clamp(Function):
    @staticmethod
    def forward(ctx, x, lo, hi):
        ctx.save_for_backward(x)
        ctx.lo, ctx.hi = lo, hi
        return x._backend.clip(x._data, lo, hi)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        inside = x >= ctx.lo if ctx.lo is not None else x <= ctx.hi
        if ctx.lo is not None and ctx.hi is not None:
            inside = inside & (x <= ctx.hi)
        return g * shape.to_dtype(inside, g.dtype), None, None


def clamp(x: Tensor, min=None, max=None) -> Tensor:
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
    return Clamp.apply(x, min, max)


clip = clamp


# ---------------------------------------------------------------- selection
class Where(Function):
    @staticmethod
    def forward(ctx, cond, a, b):
        ctx.save_for_backward(cond)
        ctx.shapes = (a.shape, b.shape)
        return a._backend.where(cond._data, a._data, b._data)

    @staticmethod
    def backward(ctx, g):
        (cond,) = ctx.saved_tensors
        sa, sb = ctx.shapes
        zero = full_like_scalar(g, 0)
        ga = reduce.sum_to_shape(where(cond, g, zero), sa) if ctx.needs_input_grad[1] else None
        gb = reduce.sum_to_shape(where(cond, zero, g), sb) if ctx.needs_input_grad[2] else None
        return None, ga, gb


def where(condition: Tensor, input, other) -> Tensor:
    """input where condition else other, broadcasting all three."""
    if not isinstance(condition, Tensor):
        raise TypeError(f"where: condition must be a bool Tensor, got {type(condition).__name__}")
    if condition.dtype is not bool_:
        raise RuntimeError(
            f"where: expected condition to be a bool tensor, but got a tensor with dtype "
            f"{condition.dtype} (compare it, e.g. condition != 0)"
        )
    a, b, _ = operands("where", input, other)
    a = a if isinstance(a, Tensor) else full_like_scalar(b, a)
    b = b if isinstance(b, Tensor) else full_like_scalar(a, b)
    if condition._backend is not a._backend:
        raise RuntimeError(
            f"where: expected all tensors to be on the same device, but found at least two "
            f"devices, {condition.device} and {a.device}!"
        )
    broadcast_shapes("where", condition.shape, a.shape, b.shape)
    return Where.apply(condition, a, b)


def masked_fill(x: Tensor, mask: Tensor, value) -> Tensor:
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
    if isinstance(value, Tensor) and broadcast_shapes("masked_fill", x.shape,
                                                      value.shape) != x.shape:
        raise ValueError(f"masked_fill: value of shape {tuple(value.shape)} cannot be broadcast "
                         f"to the input's shape {tuple(x.shape)}")
    out = where(mask, value if isinstance(value, Tensor) else full_like_scalar(x, value), x)
    return shape.to_dtype(out, x.dtype)


# ---------------------------------------------------------------- comparisons (no grad)
def _compare(op: str, a, b) -> Tensor:
    a, b, _ = operands(op, a, b)
    if not isinstance(a, Tensor):
        a, b = b, a
        op = {"lt": "gt", "le": "ge", "gt": "lt", "ge": "le"}.get(op, op)
    return Tensor._make(a._backend.binary(op, a._data, to_array(b)), a._backend)


def eq(a, b): return _compare("eq", a, b)
def ne(a, b): return _compare("ne", a, b)
def lt(a, b): return _compare("lt", a, b)
def le(a, b): return _compare("le", a, b)
def gt(a, b): return _compare("gt", a, b)
def ge(a, b): return _compare("ge", a, b)
def logical_and(a, b): return _compare("logical_and", a, b)
def logical_or(a, b): return _compare("logical_or", a, b)
def logical_xor(a, b): return _compare("logical_xor", a, b)


def equal(a: Tensor, b: Tensor) -> bool:
    check_tensor(a, "equal", "input")
    check_tensor(b, "equal", "other")
    return a.shape == b.shape and bool(reduce.all(a == b))


def allclose(a: Tensor, b: Tensor, rtol=1e-5, atol=1e-8, equal_nan=False) -> bool:
    import numpy as np

    check_tensor(a, "allclose", "input")
    check_tensor(b, "allclose", "other")
    broadcast_shapes("allclose", a.shape, b.shape)
    return bool(np.allclose(a.detach().numpy(), b.detach().numpy(), as_float(rtol, "allclose",
                            "rtol"), as_float(atol, "allclose", "atol"), bool(equal_nan)))


def isclose(a: Tensor, b: Tensor, rtol=1e-05, atol=1e-08, equal_nan: bool = False) -> Tensor:
    """|a - b| <= atol + rtol * |b| elementwise, broadcasting a and b; an infinity is close
    only to itself, and nan to nan only with equal_nan."""
    check_tensor(a, "isclose", "input")
    check_tensor(b, "isclose", "other")
    rtol, atol = as_float(rtol, "isclose", "rtol"), as_float(atol, "isclose", "atol")
    if rtol < 0 or atol < 0:
        raise ValueError(f"isclose: rtol and atol must be non-negative, got rtol={rtol}, "
                         f"atol={atol}")
    broadcast_shapes("isclose", a.shape, b.shape)
    close = eq(a, b)
    if a.dtype is bool_ or b.dtype is bool_:
        return close
    a, b, _ = operands("isclose", a, b)
    a, b = where(close, 0, a), where(close, 0, b)  # no inf - inf for equal infinities
    difference = unary("abs", sub(a, b))
    tolerance = add(mul(unary("abs", b), rtol), atol)
    infinite = logical_or(unary("isinf", a), unary("isinf", b))  # close only when equal
    close = logical_or(close, logical_and(le(difference, tolerance), unary("logical_not",
                                                                           infinite)))
    if equal_nan:
        close = logical_or(close, logical_and(unary("isnan", a), unary("isnan", b)))
    return close
