"""torch.nn.modules.dropout's classes, for code and checkpoints that name them by path."""

from gradflow.nn.dropout import (
    Dropout,
    Dropout2d,
)

__all__ = [
    "Dropout", "Dropout2d"
]
