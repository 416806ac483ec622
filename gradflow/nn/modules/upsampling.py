"""torch.nn.modules.upsampling's classes, for code and checkpoints that name them by path."""

from gradflow.nn.pooling import Upsample

__all__ = ["Upsample"]
