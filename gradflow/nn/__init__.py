"""gradflow.nn: Modules, layers, losses and initialisation, shaped like torch.nn. The layers
are gradflow.nn.modules' (as in PyTorch, which lists them once there)."""

from gradflow.nn import (
    functional,
    init,
    modules,
    parallel,
    utils,
)
from gradflow.nn.modules import *  # noqa: F403
from gradflow.nn.parameter import Parameter

__all__ = ["functional", "init", "modules", "parallel", "utils", "Parameter", *modules.__all__]
