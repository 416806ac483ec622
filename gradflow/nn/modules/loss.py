"""torch.nn.modules.loss's classes, for code and checkpoints that name them by path."""

from gradflow.nn import loss as _family
from gradflow.nn.loss import *  # noqa: F403

__all__ = _family.__all__
