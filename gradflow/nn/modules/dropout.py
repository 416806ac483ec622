"""torch.nn.modules.dropout's classes, for code and checkpoints that name them by path."""

from gradflow.nn import dropout as _family
from gradflow.nn.dropout import *  # noqa: F403

__all__ = _family.__all__
