"""torch.nn.modules.pixelshuffle's classes, for code and checkpoints that name them by path."""

from gradflow.nn import pixelshuffle as _family
from gradflow.nn.pixelshuffle import *  # noqa: F403

__all__ = _family.__all__
