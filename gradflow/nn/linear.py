"""Linear and Identity layers."""

from __future__ import annotations

import math
from typing import Any

from gradflow.nn import functional as F
from gradflow.nn import init
from gradflow.nn.module import Module
from gradflow.nn.parameter import layer_tensor
from gradflow.ops.common import as_bool, as_size
from gradflow.tensor import Tensor

__all__ = ["Identity", "Linear"]


class Identity(Module):
    """Returns its input; accepts (and ignores) any constructor arguments.

    >>> nn.Identity(54, unused="argument")(gf.tensor([1.0]))
    tensor([1.])
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def forward(self, input: Tensor) -> Tensor:
        return input


class Linear(Module):
    """y = x W^T + b with W (out_features, in_features). Initialisation as PyTorch's:
    W, b ~ U(-1/sqrt(in_features), 1/sqrt(in_features)).

    >>> fc = nn.Linear(3, 2)
    >>> fc(gf.ones(4, 3)).shape, fc.weight.shape, fc.bias.shape
    (gradflow.Size([4, 2]), gradflow.Size([2, 3]), gradflow.Size([2]))
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 device=None, dtype=None) -> None:
        super().__init__()
        self.in_features = as_size(in_features, "Linear", "in_features")
        self.out_features = as_size(out_features, "Linear", "out_features")
        self.weight = layer_tensor("Linear", (self.out_features, self.in_features), device,
                                   dtype)
        if as_bool(bias, "Linear", "bias"):
            self.bias = layer_tensor("Linear", (self.out_features,), device, dtype)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # kaiming_uniform_ with a = sqrt(5) gives bound = 1/sqrt(fan_in)
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input: Tensor) -> Tensor:
        return F.linear(input, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")
