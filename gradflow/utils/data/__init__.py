"""Datasets, samplers and the DataLoader (PyTorch's torch.utils.data, same names)."""

from gradflow.utils.data._rng import Generator
from gradflow.utils.data._worker import WorkerInfo, get_worker_info
from gradflow.utils.data.collate import default_collate, default_convert
from gradflow.utils.data.dataloader import DataLoader
from gradflow.utils.data.dataset import (
    ChainDataset,
    ConcatDataset,
    Dataset,
    IterableDataset,
    Subset,
    TensorDataset,
    random_split,
)
from gradflow.utils.data.distributed import DistributedSampler
from gradflow.utils.data.sampler import (
    BatchSampler,
    RandomSampler,
    Sampler,
    SequentialSampler,
    SubsetRandomSampler,
    WeightedRandomSampler,
)

__all__ = [
    "BatchSampler", "ChainDataset", "ConcatDataset", "DataLoader", "Dataset", "DistributedSampler",
    "Generator", "IterableDataset", "RandomSampler", "Sampler", "SequentialSampler", "Subset",
    "SubsetRandomSampler", "TensorDataset", "WeightedRandomSampler", "WorkerInfo",
    "default_collate", "default_convert", "get_worker_info", "random_split",
]
