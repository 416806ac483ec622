"""The op tables: one row per elementwise or reduction op, the one place that lists them.

A row names the op (the name is also the kernel's: ``Backend.unary(name, x)``, the CPU
backend's NumPy function or own kernel, the CUDA kernel's name (``csrc/cuda``)), its
dtype class, and its derivative. Everything that lists ops reads from here: the
backend contract's op lists (``backends/base.py``), the CPU dispatch (``backends/cpu.py``),
the CUDA backend's dtype sets (``backends/cuda.py``), the dtype checks and the autograd rule of
every unary op, and its function (``ops/elementwise.py``) and Tensor method (``tensor.py``).
``tests/test_op_table.py`` checks the CUDA kernel names against these rows.

Dtype classes:

- ``FLOAT``: float-only; an integer or bool input is first converted to the default float
  dtype (``exp(int_tensor)`` is a float tensor, as PyTorch's);
- ``INT``: integer-ok; the result keeps the input's dtype (a bool input is returned as it is,
  except by ``neg``, which refuses it);
- ``BOOL``: a bool result, any input dtype; not differentiable.

Each differentiable row carries its derivative, written in Tensor ops so that it is
differentiable again (higher-order gradients): a unary op's ``grad(g, x, y)`` gives the
input's gradient from the output's gradient ``g``, the input ``x`` and the output ``y``; a
binary op's ``grad_a`` and ``grad_b`` take ``(g, a, b, y)``; a reduction's ``grad`` takes
``(g, x, y, axes)`` with ``g`` and ``y`` broadcast back to the input. ``ops/elementwise.py``
(``Unary``, ``Binary``) and ``ops/reduce.py`` (``Reduce``) are the three Functions that apply
them. The tables sit at the package root and import nothing from gradflow, because the backends
below ``ops/`` read them too.

Adding a unary op touches three files and a test: a row here (its docstring included), the
CPU kernel (the row names a NumPy function, or ``backends/cpu.py`` has a kernel), and the CUDA
kernel (its name in ``GRADFLOW_UNARY_OPS`` and a case of the functor, both in
``csrc/cuda/elementwise.cu``). ``gradflow.<name>``, ``Tensor.<name>``, ``Tensor.<name>_`` and
their docstrings follow from the row.
"""

from __future__ import annotations

import math
from typing import Callable, Dict, NamedTuple, Optional, Tuple

FLOAT, INT, BOOL = "float", "int", "bool"

_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


class Doc(NamedTuple):
    """A unary op's docstring: what it computes elementwise, an input and the result printed
    (the doctest of ``gradflow.<name>``)."""
    summary: str
    example: str
    result: str


class UnaryOp(NamedTuple):
    name: str
    dtype: str  # FLOAT, INT or BOOL
    grad: Optional[Callable]  # (g, x, y) -> dx; None: not differentiable (BOOL)
    numpy: Optional[str]  # the NumPy function the CPU runs; None: backends/cpu.py has a kernel
    doc: Doc
    # A backend's fused kernel (backends/base.py FUSED_KERNELS) giving grad's value from
    # (g, y) in one pass, used when no graph is recorded (no create_graph).
    fused_grad: Optional[str] = None


class BinaryOp(NamedTuple):
    name: str
    dtype: str  # INT: the operands' result type (div: a float type); BOOL: a bool result
    numpy: str  # the NumPy ufunc the CPU runs
    # (g, a, b, y) -> da and -> db: each operand's gradient, before it is summed back to the
    # operand's shape; a or b may be a Python number. None: not differentiable (BOOL), or
    # composed of other ops in ops/elementwise.py (remainder).
    grad_a: Optional[Callable] = None
    grad_b: Optional[Callable] = None
    reads_values: bool = False  # the derivatives read a and b, so the op keeps them
    reads_output: bool = False  # ... and y


class ReduceOp(NamedTuple):
    name: str
    dtype: str  # FLOAT: mean; INT: sum/prod (bool counts as int64); BOOL: all/any; "" keeps it
    numpy: str
    # (g, x, y, axes, n) -> dx, with g and y the output's gradient and value kept at x's rank
    # (size 1 along `axes`), n the count each output combines; dx broadcasts to x's shape.
    # None: not differentiable (BOOL).
    grad: Optional[Callable] = None
    reads_values: bool = False  # the derivative reads x and y, so the op keeps them


def _zero(g, x, y):
    """Piecewise constant (sign, floor, ceil, round, trunc): zero gradient, of g's dtype."""
    return g * 0.0


UNARY: Tuple[UnaryOp, ...] = (
    UnaryOp("neg", INT, lambda g, x, y: -g, "negative",
            Doc("-x.", "[1.5, 0.0, -2.0]", "tensor([-1.5000, -0.0000,  2.0000])")),
    UnaryOp("abs", INT, lambda g, x, y: g * x.sign(), "abs",
            Doc("|x|.", "[-1.5, 0.0, 2.0]", "tensor([1.5000, 0.0000, 2.0000])")),
    UnaryOp("exp", FLOAT, lambda g, x, y: g * y, "exp",
            Doc("e ** x.", "[0.0, 1.0]", "tensor([1.0000, 2.7183])")),
    UnaryOp("expm1", FLOAT, lambda g, x, y: g * (y + 1), "expm1",
            Doc("e ** x - 1, exact for small x.",
                "[0.0, 1e-8]", "tensor([0.0000e+00, 1.0000e-08])")),
    UnaryOp("log", FLOAT, lambda g, x, y: g / x, "log",
            Doc("The natural logarithm.", "[1.0, 2.0]", "tensor([0.0000, 0.6931])")),
    UnaryOp("log1p", FLOAT, lambda g, x, y: g / (x + 1), "log1p",
            Doc("log(1 + x), exact for small x.", "[0.0, 1.0]", "tensor([0.0000, 0.6931])")),
    UnaryOp("sqrt", FLOAT, lambda g, x, y: g / (y * 2), "sqrt",
            Doc("The square root.", "[4.0, 2.0]", "tensor([2.0000, 1.4142])")),
    UnaryOp("rsqrt", FLOAT, lambda g, x, y: g * y * y * y * -0.5, None,
            Doc("1 / sqrt(x).", "[4.0, 0.25]", "tensor([0.5000, 2.0000])")),
    UnaryOp("sin", FLOAT, lambda g, x, y: g * x.cos(), "sin",
            Doc("The sine.", "[0.0, 1.0]", "tensor([0.0000, 0.8415])")),
    UnaryOp("cos", FLOAT, lambda g, x, y: -g * x.sin(), "cos",
            Doc("The cosine.", "[0.0, 1.0]", "tensor([1.0000, 0.5403])")),
    UnaryOp("tanh", FLOAT, lambda g, x, y: g * (1 - y * y), "tanh",
            Doc("The hyperbolic tangent.", "[0.0, 1.0]", "tensor([0.0000, 0.7616])")),
    UnaryOp("sigmoid", FLOAT, lambda g, x, y: g * y * (1 - y), None,
            Doc("1 / (1 + e ** -x).", "[0.0, 2.0]", "tensor([0.5000, 0.8808])")),
    UnaryOp("relu", INT, lambda g, x, y: g * (y > 0).to(g.dtype), None,
            Doc("max(x, 0).", "[-1.0, 2.0]", "tensor([0., 2.])"), fused_grad="relu_backward"),
    UnaryOp("sign", INT, _zero, "sign",
            Doc("-1, 0 or 1 by the sign of x.", "[-1.5, 0.0, 2.0]", "tensor([-1.,  0.,  1.])")),
    UnaryOp("floor", INT, _zero, "floor",
            Doc("The largest integer <= x.", "[-1.5, 2.5]", "tensor([-2.,  2.])")),
    UnaryOp("ceil", INT, _zero, "ceil",
            Doc("The smallest integer >= x.", "[-1.5, 2.5]", "tensor([-1.,  3.])")),
    UnaryOp("round", INT, _zero, "round",
            Doc("The nearest integer, halves to even (``decimals`` is not taken).",
                "[0.5, 1.5, 2.7]", "tensor([0., 2., 3.])")),
    UnaryOp("trunc", INT, _zero, "trunc",
            Doc("x rounded towards zero.", "[-1.5, 2.5]", "tensor([-1.,  2.])")),
    UnaryOp("erf", FLOAT, lambda g, x, y: g * (-(x * x)).exp() * _TWO_OVER_SQRT_PI, None,
            Doc("The error function.", "[0.0, 1.0]", "tensor([0.0000, 0.8427])")),
    UnaryOp("reciprocal", FLOAT, lambda g, x, y: -g * y * y, "reciprocal",
            Doc("1 / x.", "[2.0, 4.0]", "tensor([0.5000, 0.2500])")),
    UnaryOp("logical_not", BOOL, None, "logical_not",
            Doc("not x, as a bool tensor (nonzero is True).",
                "[0.0, 2.0]", "tensor([ True, False])")),
    UnaryOp("isnan", BOOL, None, "isnan",
            Doc("Whether x is NaN.", "[1.0, float('nan')]", "tensor([False,  True])")),
    UnaryOp("isinf", BOOL, None, "isinf",
            Doc("Whether x is +inf or -inf.", "[1.0, float('-inf')]", "tensor([False,  True])")),
)

def _pow_grad_base(g, a, b, y):
    """d/da a**b = b * a**(b-1); 0 for the exponent 0 (even at a = 0)."""
    if not hasattr(b, "shape") and b == 0:
        return g * 0.0
    return g * b * a ** (b - 1)


def _pow_grad_exponent(g, a, b, y):
    """d/db a**b = a**b * log(a), taken as 0 where a == 0 (as PyTorch)."""
    if hasattr(a, "shape"):
        return g * y * a.masked_fill(a == 0, 1.0).log()
    return g * y * (math.log(a) if a > 0 else 0.0 if a == 0 else math.nan)


def _extremum_grads(wins):
    """(da, db) of maximum (wins: a > b) or minimum (wins: a < b): all of g to the winner,
    split evenly at ties (as PyTorch)."""
    def weight_a(g, a, b):
        return wins(a, b).to(g.dtype) + (a == b).to(g.dtype) * 0.5

    return (lambda g, a, b, y: g * weight_a(g, a, b),
            lambda g, a, b, y: g * (1 - weight_a(g, a, b)))


BINARY: Tuple[BinaryOp, ...] = (
    BinaryOp("add", INT, "add", lambda g, a, b, y: g, lambda g, a, b, y: g),
    BinaryOp("sub", INT, "subtract", lambda g, a, b, y: g, lambda g, a, b, y: -g),
    BinaryOp("mul", INT, "multiply", lambda g, a, b, y: g * b, lambda g, a, b, y: g * a,
             reads_values=True),
    BinaryOp("div", FLOAT, "true_divide", lambda g, a, b, y: g / b,
             lambda g, a, b, y: -g * a / (b * b), reads_values=True),
    BinaryOp("pow", INT, "power", _pow_grad_base, _pow_grad_exponent, reads_values=True,
             reads_output=True),
    BinaryOp("maximum", INT, "maximum", *_extremum_grads(lambda a, b: a > b), reads_values=True),
    BinaryOp("minimum", INT, "minimum", *_extremum_grads(lambda a, b: a < b), reads_values=True),
    BinaryOp("remainder", INT, "remainder"),
    BinaryOp("eq", BOOL, "equal"),
    BinaryOp("ne", BOOL, "not_equal"),
    BinaryOp("lt", BOOL, "less"),
    BinaryOp("le", BOOL, "less_equal"),
    BinaryOp("gt", BOOL, "greater"),
    BinaryOp("ge", BOOL, "greater_equal"),
    BinaryOp("logical_and", BOOL, "logical_and"),
    BinaryOp("logical_or", BOOL, "logical_or"),
    BinaryOp("logical_xor", BOOL, "logical_xor"),
)


def _prod_grad(g, x, y, axes, n):
    """The product of the other elements: y / x where x != 0; where x == 0, the product of
    the nonzero others if x is its slice's only zero, else 0."""
    is_zero = x == 0
    nonzero = x.masked_fill(is_zero, 1.0)
    lone_zero = is_zero.sum(axes, keepdim=True) == 1
    at_zero = nonzero.prod(axes, keepdim=True).masked_fill(~lone_zero, 0.0)
    return g * (y / nonzero).masked_fill(is_zero, at_zero)


def _extremum_share(g, x, y, axes, n):
    """amax/amin: the gradient shared evenly among the elements equal to the extremum."""
    mask = (x == y).to(g.dtype)
    return g * mask / mask.sum(axes, keepdim=True)


REDUCE: Tuple[ReduceOp, ...] = (
    ReduceOp("sum", INT, "sum", lambda g, x, y, axes, n: g),
    ReduceOp("prod", INT, "prod", _prod_grad, reads_values=True),
    ReduceOp("max", "", "max", _extremum_share, reads_values=True),
    ReduceOp("min", "", "min", _extremum_share, reads_values=True),
    ReduceOp("mean", FLOAT, "mean", lambda g, x, y, axes, n: g / n),
    ReduceOp("all", BOOL, "all"),
    ReduceOp("any", BOOL, "any"),
)

UNARY_BY_NAME: Dict[str, UnaryOp] = {r.name: r for r in UNARY}
BINARY_BY_NAME: Dict[str, BinaryOp] = {r.name: r for r in BINARY}
REDUCE_BY_NAME: Dict[str, ReduceOp] = {r.name: r for r in REDUCE}

# The unary ops with an in-place method x.<name>_() (ops/inplace.py): those with a value
# result, not the BOOL rows.
UNARY_INPLACE: Tuple[str, ...] = tuple(r.name + "_" for r in UNARY if r.dtype != BOOL)


def names(table, dtype: Optional[str] = None) -> Tuple[str, ...]:
    """The op names of a table, in table order; only those of dtype class `dtype` if given."""
    return tuple(r.name for r in table if dtype is None or r.dtype == dtype)
