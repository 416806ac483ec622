"""torch.nn.modules.flatten's classes, for code and checkpoints that name them by path."""

from gradflow.nn import flatten as _family
from gradflow.nn.flatten import *  # noqa: F403

__all__ = _family.__all__
