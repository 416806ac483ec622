"""torch.nn.modules.batchnorm's classes, for code and checkpoints that name them by path."""

from gradflow.nn.normalization import BatchNorm1d, BatchNorm2d
from gradflow.nn.sync_batchnorm import SyncBatchNorm

__all__ = ["BatchNorm1d", "BatchNorm2d", "SyncBatchNorm"]
