"""No-graph in-place updates and storage sharing, for the layers above ops (optim, nn).

The updates write into a tensor's storage through its backend (``binary_``), so an optimizer
step builds no graph and allocates only the temporaries its formula needs, on any device. Each
bumps the tensor's version counter, so a graph that saved the tensor before the update notices
it changed. Callers run them under no_grad (they never record, whatever the grad mode).
"""

from __future__ import annotations

from typing import Iterable, Union

from gradflow.backends.base import fused
from gradflow.ops import inplace
from gradflow.tensor import Tensor


def _written(t: Tensor) -> Tensor:
    t._version[0] += 1
    return t


def _addc_(op: str, t: Tensor, a: Tensor, b: Tensor, value: float) -> Tensor:
    """t += (value * a) op b, evaluated in that order as PyTorch's kernels."""
    be = t._backend
    tmp = be.binary("mul", a._data, value) if value != 1 else be.copy(a._data)
    be.binary_(op, tmp, b._data)
    be.binary_("add", t._data, tmp)
    return _written(t)


def addcmul_(t: Tensor, a: Tensor, b: Tensor, value: float = 1.0) -> Tensor:
    """t += value * a * b."""
    return _addc_("mul", t, a, b, value)


def addcdiv_(t: Tensor, a: Tensor, b: Tensor, value: float = 1.0) -> Tensor:
    """t += value * a / b."""
    return _addc_("div", t, a, b, value)


def add_(t: Tensor, other: Union[Tensor, float], alpha: float = 1.0) -> Tensor:
    """t += alpha * other."""
    be = t._backend
    axpy_ = fused(be, "axpy_") if isinstance(other, Tensor) and alpha != 1 else None
    if axpy_ is not None and isinstance(other, Tensor):
        axpy_(t._data, alpha, other._data)
        return _written(t)
    if isinstance(other, Tensor):
        other = other._data if alpha == 1 else be.binary("mul", other._data, alpha)
    else:
        other = other * alpha
    be.binary_("add", t._data, other)
    return _written(t)


def mul_(t: Tensor, value: Union[Tensor, float]) -> Tensor:
    """t *= value."""
    t._backend.binary_("mul", t._data, value._data if isinstance(value, Tensor) else value)
    return _written(t)


def div_(t: Tensor, value: Union[Tensor, float]) -> Tensor:
    """t /= value."""
    t._backend.binary_("div", t._data, value._data if isinstance(value, Tensor) else value)
    return _written(t)


def lerp_(t: Tensor, end: Tensor, weight: float) -> Tensor:
    """t += weight * (end - t), in PyTorch's two-sided form (weight >= 0.5 interpolates from
    `end`, which is exact at weight = 1)."""
    be = t._backend
    diff = be.binary("sub", end._data, t._data)
    if abs(weight) < 0.5:
        be.binary_("mul", diff, weight)
        be.binary_("add", t._data, diff)
    else:
        be.binary_("mul", diff, 1 - weight)
        be.copy_(t._data, be.binary("sub", end._data, diff))
    return _written(t)


def maximum_(t: Tensor, other: Tensor) -> Tensor:
    """t = max(t, other) elementwise."""
    t._backend.binary_("maximum", t._data, other._data)
    return _written(t)


def sqrt(t: Tensor) -> Tensor:
    """A new tensor sqrt(t) (no graph)."""
    return Tensor._make(t._backend.unary("sqrt", t._data), t._backend)


def sqrt_(t: Tensor) -> Tensor:
    """t = sqrt(t) in place (no graph)."""
    t._backend.copy_(t._data, t._backend.unary("sqrt", t._data))
    return _written(t)


def zeros_state(p: Tensor, value: float = 0.0) -> Tensor:
    """A state tensor shaped, typed and placed like parameter p, filled with value."""
    return Tensor._make(p._backend.full(tuple(p.shape), value, p._data.dtype), p._backend)


def clone_state(t: Tensor) -> Tensor:
    """A copy of a state tensor (the first momentum buffer is the first gradient's copy)."""
    return detached_copy(t)


def detached_copy(t: Tensor) -> Tensor:
    """A new leaf tensor with a copy of t's values (no graph, its own storage)."""
    return Tensor._make(t._backend.copy(t._data), t._backend)


def share_storage(dst: Tensor, src: Tensor) -> None:
    """Make the uninitialised tensor `dst` (a Parameter being built) a view of all of `src`:
    same storage and the same version counter, so writes through either are seen by both."""
    Tensor._init(dst, src._data, src._backend)
    dst._version = src._version


def alias(t: Tensor) -> Tensor:
    """A new leaf tensor on t's storage and version counter (t's values, no graph)."""
    out = Tensor._make(t._data, t._backend)
    out._version = t._version
    return out


def zero_grad(params: Iterable[Tensor], set_to_none: bool = True) -> None:
    """Reset the .grad of each of params: to None, or (set_to_none=False) to zeros in place,
    detached from any graph. Module.zero_grad and Optimizer.zero_grad."""
    for p in params:
        if p.grad is None:
            continue
        if set_to_none:
            p.grad = None
        else:
            if p.grad.grad_fn is not None:
                p.grad.detach_()
            else:
                p.grad.requires_grad_(False)
            inplace.fill_(p.grad, 0, "zero_")
