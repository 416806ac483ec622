"""torch.nn.modules.instancenorm's classes, for code and checkpoints that name them by path."""

from gradflow.nn.normalization import InstanceNorm2d

__all__ = ["InstanceNorm2d"]
