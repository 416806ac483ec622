"""torch.nn.modules.flatten's classes, for code and checkpoints that name them by path."""

from gradflow.nn.flatten import (
    Flatten,
    Unflatten,
)

__all__ = [
    "Flatten", "Unflatten"
]
