"""torch.nn.modules.sparse's classes, for code and checkpoints that name them by path."""

from gradflow.nn.sparse import Embedding

__all__ = [
    "Embedding"
]
