"""torch.nn.modules.linear's classes, for code and checkpoints that name them by path
(NonDynamicallyQuantizableLinear, MultiheadAttention's out_proj, is found here but is not
exported, as in PyTorch)."""

from gradflow.nn import linear as _family
from gradflow.nn.attention import NonDynamicallyQuantizableLinear  # noqa: F401
from gradflow.nn.linear import *  # noqa: F403

__all__ = _family.__all__
