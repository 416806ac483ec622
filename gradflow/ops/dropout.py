"""Dropout, as torch.nn.functional.dropout / dropout2d: y = x * mask / (1 - p), the mask drawn
from the backend's seeded generator (so gradflow.manual_seed makes it reproducible) with each
element (dropout) or each whole (n, c) channel (dropout2d) kept with probability 1 - p.
Composed of Tensor ops: the gradient is g * mask / (1 - p)."""

from __future__ import annotations

from gradflow.ops.conv import check_float
from gradflow.tensor import Tensor


def _check_p(op: str, p: float) -> float:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{op}: dropout probability has to be between 0 and 1, but got {p}")
    return float(p)


def _masked(x: Tensor, mask_shape: tuple, p: float) -> Tensor:
    be = x._backend
    if p == 1.0:
        return x * 0.0
    keep = be.binary("ge", be.rand(mask_shape, x.dtype.np), p)
    scale = be.binary("mul", be.astype(keep, x.dtype.np), 1.0 / (1.0 - p))
    return x * Tensor._make(scale, be)


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero each element with probability p and scale the rest by 1/(1-p) (training only)."""
    op = "dropout"
    check_float(op, "input", input)
    p = _check_p(op, p)
    if not training or p == 0.0:
        return input
    y = _masked(input, tuple(input.shape), p)
    return input.copy_(y) if inplace else y


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True,
              inplace: bool = False) -> Tensor:
    """Zero whole channels of (N, C, H, W) (or unbatched (C, H, W)) input with probability p,
    scaling the rest by 1/(1-p)."""
    op = "dropout2d"
    check_float(op, "input", input)
    if input.ndim not in (3, 4):
        raise ValueError(f"{op}: expected 3-D or 4-D input, got shape {tuple(input.shape)}")
    p = _check_p(op, p)
    if not training or p == 0.0:
        return input
    y = _masked(input, tuple(input.shape[:-2]) + (1, 1), p)
    return input.copy_(y) if inplace else y
