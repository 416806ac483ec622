"""torch.nn.modules.transformer's classes, for code and checkpoints that name them by path."""

from gradflow.nn import transformer as _family
from gradflow.nn.transformer import *  # noqa: F403

__all__ = _family.__all__
