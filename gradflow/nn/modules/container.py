"""torch.nn.modules.container's classes, for code and checkpoints that name them by path."""

from gradflow.nn.containers import (
    ModuleDict,
    ModuleList,
    ParameterDict,
    ParameterList,
    Sequential,
)

__all__ = [
    "ModuleDict", "ModuleList", "ParameterDict", "ParameterList", "Sequential"
]
