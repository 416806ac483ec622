"""torch.nn.modules.padding's classes, for code and checkpoints that name them by path."""

from gradflow.nn import padding as _family
from gradflow.nn.padding import *  # noqa: F403

__all__ = _family.__all__
