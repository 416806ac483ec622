"""Parameter: a Tensor that a Module registers as one of its learnable weights."""

from __future__ import annotations

from typing import Callable, Tuple

from gradflow.ops import update
from gradflow.ops.common import as_bool
from gradflow.tensor import Tensor, empty

__all__ = ["Parameter"]


class Parameter(Tensor):
    """A leaf Tensor that requires grad by default and that assigning to a Module attribute
    registers (``module.weight = Parameter(...)``). It shares storage with `data`.

    >>> w = nn.Parameter(gf.zeros(2))
    >>> w
    Parameter containing:
    tensor([0., 0.], requires_grad=True)
    >>> w.requires_grad, isinstance(w, gf.Tensor)
    (True, True)
    """

    __slots__ = ()

    def __new__(cls, data: Tensor | None = None, requires_grad: bool = True) -> "Parameter":
        if data is None:
            data = empty(0)
        if not isinstance(data, Tensor):
            raise TypeError(f"Parameter: data must be a Tensor, got {type(data).__name__}")
        p = object.__new__(cls)
        update.share_storage(p, data)
        requires_grad = as_bool(requires_grad, "Parameter", "requires_grad")
        if requires_grad and not data.is_floating_point():
            raise RuntimeError(f"Parameter: only Tensors of floating point dtype can require "
                               f"gradients, got {data.dtype}")
        p.requires_grad_(requires_grad)
        return p

    def __init__(self, data: Tensor | None = None, requires_grad: bool = True) -> None:
        pass  # everything happens in __new__

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()

    __str__ = __repr__

    def __deepcopy__(self, memo: dict) -> "Parameter":
        if id(self) not in memo:
            p = Parameter(update.detached_copy(self), self.requires_grad)
            if self.grad is not None:
                p.grad = self.grad.__deepcopy__(memo)
            memo[id(self)] = p
        return memo[id(self)]


def layer_tensor(layer: str, shape: Tuple[int, ...], device=None, dtype=None,
                 make: Callable = empty, parameter: bool = True) -> Tensor:
    """A layer's parameter (or, parameter=False, buffer) of `shape`, made by `make` (empty,
    zeros, ones): a bad dtype or device, or a shape too large to allocate, raises naming the
    layer (the sizes themselves are the layer's to check, naming its arguments)."""
    try:
        t = make(*shape, device=device, dtype=dtype)
        return Parameter(t) if parameter else t
    except (TypeError, ValueError, RuntimeError, MemoryError) as exc:
        raise type(exc)(f"{layer}: {exc}") from None
