"""Dropout, as torch.nn.functional.dropout / dropout2d: y = x * mask / (1 - p), the mask drawn
from the backend's seeded generator (so gradflow.manual_seed makes it reproducible) with each
element (dropout) or each whole (n, c) channel (dropout2d) kept with probability 1 - p.
Composed of Tensor ops: the gradient is g * mask / (1 - p)."""

from __future__ import annotations

from typing import Tuple

from gradflow.ops.common import as_bool, as_float
from gradflow.ops.conv import check_float
from gradflow.ops.inplace import check_inplace, copy_
from gradflow.tensor import Tensor


def _check_args(op: str, p: float, training: bool, inplace: bool) -> float:
    """p as a float in [0, 1]; the flags must be bools."""
    as_bool(training, op, "training")
    as_bool(inplace, op, "inplace")
    if not 0.0 <= as_float(p, op, "p") <= 1.0:
        raise ValueError(f"{op}: dropout probability has to be between 0 and 1, but got {p}")
    return float(p)


def _result(op: str, input: Tensor, y: Tensor, inplace: bool) -> Tensor:
    if not inplace:
        return y
    check_inplace(input, op)
    return copy_(input, y)


def _masked(x: Tensor, mask_shape: Tuple[int, ...], p: float) -> Tensor:
    be = x._backend
    if p == 1.0:
        return x * 0.0
    keep = be.binary("ge", be.rand(mask_shape, x.dtype.np), p)
    scale = be.binary("mul", be.astype(keep, x.dtype.np), 1.0 / (1.0 - p))
    return x * Tensor._make(scale, be)


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero each element with probability p and scale the rest by 1/(1-p) (training only).

    >>> import gradflow as gf
    >>> x = gf.ones(1000)
    >>> y = gf.nn.functional.dropout(x, p=0.5)
    >>> sorted(set(y.tolist()))
    [0.0, 2.0]
    >>> gf.nn.functional.dropout(x, training=False) is x
    True
    """
    op = "dropout"
    check_float(op, "input", input)
    p = _check_args(op, p, training, inplace)
    if not training or p == 0.0:
        return input
    return _result(op, input, _masked(input, tuple(input.shape), p), inplace)


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True,
              inplace: bool = False) -> Tensor:
    """Zero whole channels of (N, C, H, W) (or unbatched (C, H, W)) input with probability p,
    scaling the rest by 1/(1-p).

    >>> import gradflow as gf
    >>> y = gf.nn.functional.dropout2d(gf.ones(1, 8, 2, 2), p=0.5)
    >>> bool(((y == 0) | (y == 2)).all())
    True
    """
    op = "dropout2d"
    check_float(op, "input", input)
    if input.ndim not in (3, 4):
        raise ValueError(f"{op}: expected 3-D or 4-D input, got shape {tuple(input.shape)}")
    p = _check_args(op, p, training, inplace)
    if not training or p == 0.0:
        return input
    return _result(op, input, _masked(input, tuple(input.shape[:-2]) + (1, 1), p), inplace)
