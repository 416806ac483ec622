"""torch.nn.modules.activation's classes, for code and checkpoints that name them by path."""

from gradflow.nn import activation as _family
from gradflow.nn.activation import *  # noqa: F403
from gradflow.nn.attention import MultiheadAttention

__all__ = [*_family.__all__, "MultiheadAttention"]
