"""DistributedSampler: each process of a data-parallel job visits its own share of a dataset."""

from __future__ import annotations

from typing import Iterator, Optional, Sized

from gradflow.utils.data._rng import Generator, randperm
from gradflow.utils.data.sampler import Sampler


def _default(value, getter: str, arg: str):
    if value is not None:
        return value
    from gradflow import distributed as dist

    if not dist.is_initialized():
        raise RuntimeError(f"DistributedSampler: {arg} not given and the default process "
                           "group is not initialized (call init_process_group first)")
    return getattr(dist, getter)()


class DistributedSampler(Sampler):
    """Indices rank, rank + num_replicas, rank + 2 * num_replicas, ... of one ordering of the
    dataset, the same ordering on every rank: a permutation seeded by seed + epoch when
    `shuffle` (call set_epoch each epoch), else 0..len-1. So that every rank gets as many,
    the ordering is padded by repeating its start, or, with drop_last, cut to a multiple of
    num_replicas. num_replicas and rank default to the process group's.

    >>> sampler = gf.utils.data.DistributedSampler(range(5), num_replicas=2, rank=1, shuffle=False)
    >>> list(sampler), len(sampler)
    ([1, 3, 0], 3)
    """

    def __init__(self, dataset: Sized, num_replicas: Optional[int] = None,
                 rank: Optional[int] = None, shuffle: bool = True, seed: int = 0,
                 drop_last: bool = False) -> None:
        num_replicas = _default(num_replicas, "get_world_size", "num_replicas")
        rank = _default(rank, "get_rank", "rank")
        for arg, value in (("num_replicas", num_replicas), ("rank", rank), ("seed", seed)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"DistributedSampler: {arg} must be an int, got {value!r}")
        if num_replicas < 1:
            raise ValueError(f"DistributedSampler: num_replicas must be at least 1, got "
                             f"{num_replicas}")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"DistributedSampler: Invalid rank {rank}, rank should be in the "
                             f"interval [0, {num_replicas - 1}]")
        for arg, value in (("shuffle", shuffle), ("drop_last", drop_last)):
            if not isinstance(value, bool):
                raise TypeError(f"DistributedSampler: {arg} must be a bool, got {value!r}")
        self.dataset = dataset
        self.num_replicas, self.rank = num_replicas, rank
        self.shuffle, self.seed, self.drop_last = shuffle, seed, drop_last
        self.epoch = 0
        n = len(dataset)
        self.num_samples = (n // num_replicas if drop_last
                            else (n + num_replicas - 1) // num_replicas)
        self.total_size = self.num_samples * num_replicas

    def set_epoch(self, epoch: int) -> None:
        """The epoch whose shuffle to use (same on every rank, different every epoch)."""
        if isinstance(epoch, bool) or not isinstance(epoch, int):
            raise TypeError(f"DistributedSampler.set_epoch: epoch must be an int, got {epoch!r}")
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        n = len(self.dataset)
        if self.shuffle:
            order = randperm(n, Generator().manual_seed(self.seed + self.epoch)).tolist()
        else:
            order = list(range(n))
        while 0 < len(order) < self.total_size:
            order += order[: self.total_size - len(order)]
        order = order[: self.total_size]
        return iter(order[self.rank:self.total_size:self.num_replicas])

    def __len__(self) -> int:
        return self.num_samples
