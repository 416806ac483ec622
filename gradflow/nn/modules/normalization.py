"""torch.nn.modules.normalization's classes, for code and checkpoints that name them by path."""

from gradflow.nn.normalization import GroupNorm, LayerNorm

__all__ = ["GroupNorm", "LayerNorm"]
