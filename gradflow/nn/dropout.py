"""Dropout layers: active in training mode only."""

from __future__ import annotations

from gradflow.nn import functional as F
from gradflow.nn.module import Module
from gradflow.ops.common import as_bool, as_float
from gradflow.tensor import Tensor

__all__ = ["Dropout", "Dropout2d"]


class _DropoutNd(Module):
    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        name = type(self).__name__
        if not 0 <= as_float(p, name, "p") <= 1:
            raise ValueError(f"{name}: dropout probability has to be between 0 and 1, but got {p}")
        self.p = p
        self.inplace = as_bool(inplace, name, "inplace")

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class Dropout(_DropoutNd):
    """Zeroes each element with probability p, scaling the rest by 1/(1-p).

    >>> gf.manual_seed(0)
    >>> drop = nn.Dropout(0.5)
    >>> drop(gf.ones(8))
    tensor([2., 0., 0., 0., 2., 2., 2., 2.])
    >>> drop.eval()(gf.ones(2))
    tensor([1., 1.])
    """

    def forward(self, input: Tensor) -> Tensor:
        return F.dropout(input, self.p, self.training, self.inplace)


class Dropout2d(_DropoutNd):
    """Zeroes whole channels of (N, C, H, W) input with probability p.

    >>> gf.manual_seed(0)
    >>> nn.Dropout2d(0.5)(gf.ones(1, 4, 1, 1)).flatten()
    tensor([2., 0., 0., 0.])
    """

    def forward(self, input: Tensor) -> Tensor:
        return F.dropout2d(input, self.p, self.training, self.inplace)
