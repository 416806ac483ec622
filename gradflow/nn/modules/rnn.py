"""torch.nn.modules.rnn's classes, for code and checkpoints that name them by path."""

from gradflow.nn import rnn as _family
from gradflow.nn.rnn import *  # noqa: F403

__all__ = _family.__all__
