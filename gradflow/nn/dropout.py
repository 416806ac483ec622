"""Dropout layers: active in training mode only."""

from __future__ import annotations

from gradflow.nn import functional as F
from gradflow.nn.module import Module
from gradflow.ops.common import as_bool, as_float
from gradflow.tensor import Tensor


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
    """Zeroes each element with probability p, scaling the rest by 1/(1-p)."""

    def forward(self, input: Tensor) -> Tensor:
        return F.dropout(input, self.p, self.training, self.inplace)


class Dropout2d(_DropoutNd):
    """Zeroes whole channels of (N, C, H, W) input with probability p."""

    def forward(self, input: Tensor) -> Tensor:
        return F.dropout2d(input, self.p, self.training, self.inplace)
