"""The op tables: one row per elementwise or reduction op, the one place that lists them.

A row names the op (the name is also the kernel's: ``Backend.unary(name, x)``, the CPU
backend's NumPy function or own kernel, the CUDA enum value in ``csrc/cuda/kernels.h``), its
dtype class, and for unary ops its derivative. Everything that lists ops reads from here: the
backend contract's op lists (``backends/base.py``), the CPU dispatch (``backends/cpu.py``),
the CUDA backend's dtype sets (``backends/cuda.py``), the dtype checks and the autograd rule of
every unary op, and its function and Tensor method (``ops/elementwise.py``).
``tests/test_op_table.py`` checks the CUDA kernel names against these rows.

Dtype classes:

- ``FLOAT``: float-only; an integer or bool input is first converted to the default float
  dtype (``exp(int_tensor)`` is a float tensor, as PyTorch's);
- ``INT``: integer-ok; the result keeps the input's dtype (a bool input is returned as it is,
  except by ``neg``, which refuses it);
- ``BOOL``: a bool result, any input dtype; not differentiable.

A derivative is ``grad(g, x, y)``: the input's gradient from the output's gradient ``g``, the
input ``x`` and the output ``y``, written in Tensor ops so that it is differentiable again
(higher-order gradients). The tables sit at the package root and import nothing from
gradflow, because the backends below ``ops/`` read them too.

Adding a unary op: a row here, a kernel per device (a NumPy function or ``backends/cpu.py``
kernel on the CPU, a functor in ``csrc/cuda/elementwise.cu`` plus its name in
``GRADFLOW_UNARY_OPS`` of ``csrc/cuda/kernels.h``), and a test. ``gradflow.<name>`` and
``Tensor.<name>`` follow from the row.
"""

from __future__ import annotations

import math
from typing import Callable, Dict, NamedTuple, Optional, Tuple

FLOAT, INT, BOOL = "float", "int", "bool"

_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


class UnaryOp(NamedTuple):
    name: str
    dtype: str  # FLOAT, INT or BOOL
    grad: Optional[Callable]  # (g, x, y) -> dx; None: not differentiable (BOOL)
    numpy: Optional[str]  # the NumPy function the CPU runs; None: backends/cpu.py has a kernel


class BinaryOp(NamedTuple):
    name: str
    dtype: str  # INT: the operands' result type (div: a float type); BOOL: a bool result
    numpy: str  # the NumPy ufunc the CPU runs


class ReduceOp(NamedTuple):
    name: str
    dtype: str  # FLOAT: mean; INT: sum/prod (bool counts as int64); BOOL: all/any; "" keeps it
    numpy: str


def _zero(g, x, y):
    """Piecewise constant (sign, floor, ceil, round): zero gradient, of g's dtype."""
    return g * 0.0


UNARY: Tuple[UnaryOp, ...] = (
    UnaryOp("neg", INT, lambda g, x, y: -g, "negative"),
    UnaryOp("abs", INT, lambda g, x, y: g * x.sign(), "abs"),
    UnaryOp("exp", FLOAT, lambda g, x, y: g * y, "exp"),
    UnaryOp("expm1", FLOAT, lambda g, x, y: g * (y + 1), "expm1"),
    UnaryOp("log", FLOAT, lambda g, x, y: g / x, "log"),
    UnaryOp("log1p", FLOAT, lambda g, x, y: g / (x + 1), "log1p"),
    UnaryOp("sqrt", FLOAT, lambda g, x, y: g / (y * 2), "sqrt"),
    UnaryOp("rsqrt", FLOAT, lambda g, x, y: g * y * y * y * -0.5, None),
    UnaryOp("sin", FLOAT, lambda g, x, y: g * x.cos(), "sin"),
    UnaryOp("cos", FLOAT, lambda g, x, y: -g * x.sin(), "cos"),
    UnaryOp("tanh", FLOAT, lambda g, x, y: g * (1 - y * y), "tanh"),
    UnaryOp("sigmoid", FLOAT, lambda g, x, y: g * y * (1 - y), None),
    UnaryOp("relu", INT, lambda g, x, y: g * (y > 0).to(g.dtype), None),
    UnaryOp("sign", INT, _zero, "sign"),
    UnaryOp("floor", INT, _zero, "floor"),
    UnaryOp("ceil", INT, _zero, "ceil"),
    UnaryOp("round", INT, _zero, "round"),
    UnaryOp("erf", FLOAT, lambda g, x, y: g * (-(x * x)).exp() * _TWO_OVER_SQRT_PI, None),
    UnaryOp("reciprocal", FLOAT, lambda g, x, y: -g * y * y, "reciprocal"),
    UnaryOp("logical_not", BOOL, None, "logical_not"),
    UnaryOp("isnan", BOOL, None, "isnan"),
    UnaryOp("isinf", BOOL, None, "isinf"),
)

# The derivatives of the binary ops live with their Functions in ops/elementwise.py (they
# handle scalar operands, broadcasting and the reversed scalar-first forms).
BINARY: Tuple[BinaryOp, ...] = (
    BinaryOp("add", INT, "add"),
    BinaryOp("sub", INT, "subtract"),
    BinaryOp("mul", INT, "multiply"),
    BinaryOp("div", FLOAT, "true_divide"),
    BinaryOp("pow", INT, "power"),
    BinaryOp("maximum", INT, "maximum"),
    BinaryOp("minimum", INT, "minimum"),
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

# The derivatives of the reductions live with their Functions in ops/reduce.py.
REDUCE: Tuple[ReduceOp, ...] = (
    ReduceOp("sum", INT, "sum"),
    ReduceOp("prod", INT, "prod"),
    ReduceOp("max", "", "max"),
    ReduceOp("min", "", "min"),
    ReduceOp("mean", FLOAT, "mean"),
    ReduceOp("all", BOOL, "all"),
    ReduceOp("any", BOOL, "any"),
)

UNARY_BY_NAME: Dict[str, UnaryOp] = {r.name: r for r in UNARY}


def names(table, dtype: Optional[str] = None) -> Tuple[str, ...]:
    """The op names of a table, in table order; only those of dtype class `dtype` if given."""
    return tuple(r.name for r in table if dtype is None or r.dtype == dtype)
