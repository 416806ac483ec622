"""torch.nn.modules.sparse's classes, for code and checkpoints that name them by path."""

from gradflow.nn import sparse as _family
from gradflow.nn.sparse import *  # noqa: F403

__all__ = _family.__all__
