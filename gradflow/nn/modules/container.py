"""torch.nn.modules.container's classes, for code and checkpoints that name them by path."""

from gradflow.nn import containers as _family
from gradflow.nn.containers import *  # noqa: F403

__all__ = _family.__all__
