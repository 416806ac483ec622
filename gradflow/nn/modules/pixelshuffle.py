"""torch.nn.modules.pixelshuffle's classes, for code and checkpoints that name them by path."""

from gradflow.nn.pixelshuffle import (
    PixelShuffle,
    PixelUnshuffle,
)

__all__ = [
    "PixelShuffle", "PixelUnshuffle"
]
