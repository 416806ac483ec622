"""Parallel wrappers of a Module (PyTorch's torch.nn.parallel)."""

from gradflow.nn.parallel.distributed import DistributedDataParallel

__all__ = ["DistributedDataParallel"]
