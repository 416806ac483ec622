"""torch.nn.modules.conv's classes, for code and checkpoints that name them by path."""

from gradflow.nn.conv import Conv1d, Conv2d, ConvTranspose2d

__all__ = ["Conv1d", "Conv2d", "ConvTranspose2d"]
