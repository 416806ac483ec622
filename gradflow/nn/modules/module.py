"""torch.nn.modules.module's classes, for code and checkpoints that name them by path."""

from gradflow.nn.module import Module

__all__ = [
    "Module"
]
