"""Datasets: indexable (map-style) and iterable sources of samples, and ways to combine them."""

from __future__ import annotations

import bisect
import math
from typing import Any, Generic, Iterator, List, Optional, Sequence, TypeVar, Union

from gradflow.utils.data._rng import Generator, randperm

T_co = TypeVar("T_co", covariant=True)


class Dataset(Generic[T_co]):
    """A map-style dataset: `dataset[i]` is sample i for 0 <= i < len(dataset).

    Subclasses implement `__getitem__` and, for samplers and `len(loader)`, `__len__`.
    `a + b` concatenates two datasets.

    >>> class Squares(gf.utils.data.Dataset):
    ...     def __len__(self):
    ...         return 4
    ...     def __getitem__(self, i):
    ...         return i * i
    >>> list(gf.utils.data.DataLoader(Squares(), batch_size=2))
    [tensor([0, 1]), tensor([4, 9])]
    """

    def __getitem__(self, index: int) -> T_co:
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__")

    def __add__(self, other: "Dataset") -> "ConcatDataset":
        return ConcatDataset([self, other])


class IterableDataset(Dataset[T_co]):
    """A stream of samples: subclasses implement `__iter__`.

    With `num_workers > 0` every worker process iterates its own copy of the dataset, so
    each sample appears once per worker unless `__iter__` shards the stream using
    `gradflow.utils.data.get_worker_info()` (its `id` and `num_workers`).

    >>> class Count(gf.utils.data.IterableDataset):
    ...     def __iter__(self):
    ...         return iter(range(5))
    >>> [batch.tolist() for batch in gf.utils.data.DataLoader(Count(), batch_size=2)]
    [[0, 1], [2, 3], [4]]
    """

    def __iter__(self) -> Iterator[T_co]:
        raise NotImplementedError(f"{type(self).__name__} must implement __iter__")

    def __add__(self, other: "Dataset") -> "ChainDataset":
        return ChainDataset([self, other])


class TensorDataset(Dataset):
    """Sample i is the tuple `(t[i] for t in tensors)`; all tensors share their first size.

    >>> ds = gf.utils.data.TensorDataset(gf.arange(3.0), gf.tensor([0, 1, 0]))
    >>> len(ds), ds[1]
    (3, (tensor(1.), tensor(1)))
    """

    def __init__(self, *tensors: Any) -> None:
        if not tensors:
            raise ValueError("TensorDataset: needs at least one tensor")
        n = tensors[0].shape[0]
        for k, t in enumerate(tensors):
            if t.shape[0] != n:
                sizes = [tuple(x.shape) for x in tensors]
                raise ValueError(
                    f"TensorDataset: size mismatch between tensors: tensor {k} has first size "
                    f"{t.shape[0]}, tensor 0 has {n} (shapes {sizes})"
                )
        self.tensors = tensors

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __len__(self) -> int:
        return self.tensors[0].shape[0]


class ConcatDataset(Dataset):
    """The samples of several map-style datasets, one after another.

    >>> ds = gf.utils.data.ConcatDataset([[1, 2], [3, 4, 5]])
    >>> len(ds), ds[3]
    (5, 4)
    """

    def __init__(self, datasets: Sequence[Dataset]) -> None:
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset: datasets should not be an empty iterable")
        for d in self.datasets:
            if isinstance(d, IterableDataset):
                raise TypeError("ConcatDataset does not support IterableDataset (use ChainDataset)")
        self.cumulative_sizes: List[int] = []
        total = 0
        for d in self.datasets:
            total += len(d)
            self.cumulative_sizes.append(total)

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, index: int):
        n = len(self)
        if index < 0:
            if -index > n:
                raise IndexError(f"ConcatDataset: index {index} out of range for length {n}")
            index += n
        if index >= n:
            raise IndexError(f"ConcatDataset: index {index} out of range for length {n}")
        which = bisect.bisect_right(self.cumulative_sizes, index)
        start = self.cumulative_sizes[which - 1] if which > 0 else 0
        return self.datasets[which][index - start]


class ChainDataset(IterableDataset):
    """The streams of several iterable datasets, one after another.

    >>> class Count(gf.utils.data.IterableDataset):
    ...     def __init__(self, n):
    ...         self.n = n
    ...     def __iter__(self):
    ...         return iter(range(self.n))
    >>> list(gf.utils.data.ChainDataset([Count(2), Count(3)]))
    [0, 1, 0, 1, 2]
    """

    def __init__(self, datasets: Sequence[IterableDataset]) -> None:
        self.datasets = list(datasets)

    def __iter__(self):
        for d in self.datasets:
            yield from d

    def __len__(self) -> int:
        return sum(len(d) for d in self.datasets)


class Subset(Dataset):
    """The samples of `dataset` at `indices`, in that order.

    >>> sub = gf.utils.data.Subset([10, 11, 12, 13], [3, 0])
    >>> len(sub), sub[0], list(sub)
    (2, 13, [13, 10])
    """

    def __init__(self, dataset: Dataset, indices: Sequence[int]) -> None:
        self.dataset = dataset
        self.indices = indices

    def __getitem__(self, index):
        if isinstance(index, list):
            return [self.dataset[self.indices[i]] for i in index]
        return self.dataset[self.indices[index]]

    def __len__(self) -> int:
        return len(self.indices)


def _split_lengths(n: int, lengths: Sequence[Union[int, float]]) -> List[int]:
    """Integer lengths as given; fractions as floor(n * f), the remainder handed out one by one
    from the first split on (PyTorch's rule)."""
    if all(isinstance(x, int) and not isinstance(x, bool) for x in lengths):
        if any(x < 0 for x in lengths):
            raise ValueError(f"random_split: lengths must be non-negative, got {list(lengths)}")
        if sum(lengths) != n:
            raise ValueError(
                f"random_split: sum of input lengths ({sum(lengths)}) does not equal the length "
                f"of the input dataset ({n})"
            )
        return list(lengths)
    fractions = [float(x) for x in lengths]
    if any(not 0.0 <= f <= 1.0 for f in fractions) or not math.isclose(sum(fractions), 1.0):
        raise ValueError(
            f"random_split: fractions must lie in [0, 1] and sum to 1, got {list(lengths)}"
        )
    sizes = [math.floor(n * f) for f in fractions]
    for i in range(n - sum(sizes)):
        sizes[i % len(sizes)] += 1
    return sizes


def random_split(
    dataset: Dataset,
    lengths: Sequence[Union[int, float]],
    generator: Optional[Generator] = None,
) -> List[Subset]:
    """Split `dataset` into non-overlapping random subsets of the given lengths.

    `lengths` are sample counts summing to `len(dataset)`, or fractions summing to 1. The
    permutation is drawn from `generator`, or from gradflow's global generator (seeded by
    `gradflow.manual_seed`) when it is None.

    >>> train, val = gf.utils.data.random_split(range(10), [0.8, 0.2],
    ...                                         generator=gf.Generator().manual_seed(0))
    >>> len(train), len(val), sorted(list(train) + list(val)) == list(range(10))
    (8, 2, True)
    """
    sizes = _split_lengths(len(dataset), lengths)
    perm = randperm(sum(sizes), generator).tolist()
    out, start = [], 0
    for size in sizes:
        out.append(Subset(dataset, perm[start : start + size]))
        start += size
    return out
