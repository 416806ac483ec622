"""torch.nn.modules.linear's classes, for code and checkpoints that name them by path."""

from gradflow.nn.attention import NonDynamicallyQuantizableLinear
from gradflow.nn.linear import (
    Identity,
    Linear,
)

__all__ = [
    "Identity", "Linear", "NonDynamicallyQuantizableLinear"
]
