"""torch.nn.modules.module's classes, for code and checkpoints that name them by path."""

from gradflow.nn import module as _family
from gradflow.nn.module import *  # noqa: F403

__all__ = _family.__all__
