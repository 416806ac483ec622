"""torch.nn.modules.fold's classes, for code and checkpoints that name them by path."""

from gradflow.nn.conv import Fold, Unfold

__all__ = ["Fold", "Unfold"]
