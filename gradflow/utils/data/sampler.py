"""Samplers: the order in which a DataLoader visits the indices of a map-style dataset."""

from __future__ import annotations

from typing import Any, Iterable, Iterator, List, Optional, Sequence, Sized

import numpy as np

from gradflow.utils.data._rng import Generator, numpy_rng, randperm


class Sampler:
    """An iterable of dataset indices (or, for batch samplers, of lists of indices).

    >>> class Reversed(gf.utils.data.Sampler):
    ...     def __init__(self, n):
    ...         self.n = n
    ...     def __iter__(self):
    ...         return iter(range(self.n - 1, -1, -1))
    ...     def __len__(self):
    ...         return self.n
    >>> [x.tolist() for x in gf.utils.data.DataLoader(range(4), sampler=Reversed(4), batch_size=3)]
    [[3, 2, 1], [0]]
    """

    def __iter__(self) -> Iterator:
        raise NotImplementedError


class SequentialSampler(Sampler):
    """0, 1, …, len(data_source) - 1.

    >>> list(gf.utils.data.SequentialSampler(range(4)))
    [0, 1, 2, 3]
    """

    def __init__(self, data_source: Sized) -> None:
        self.data_source = data_source

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        return len(self.data_source)


class RandomSampler(Sampler):
    """A fresh random permutation of the indices every epoch, or with `replacement=True`
    `num_samples` indices drawn uniformly with replacement.

    Draws come from `generator`, or from gradflow's global generator when it is None.

    >>> sampler = gf.utils.data.RandomSampler(range(5), generator=gf.Generator().manual_seed(0))
    >>> sorted(sampler), len(sampler)
    ([0, 1, 2, 3, 4], 5)
    """

    def __init__(
        self,
        data_source: Sized,
        replacement: bool = False,
        num_samples: Optional[int] = None,
        generator: Optional[Generator] = None,
    ) -> None:
        if not isinstance(replacement, bool):
            raise TypeError(f"RandomSampler: replacement must be a bool, got {replacement!r}")
        if num_samples is not None and (not isinstance(num_samples, int) or num_samples <= 0):
            raise ValueError(
                f"RandomSampler: num_samples should be a positive integer, got {num_samples!r}"
            )
        self.data_source = data_source
        self.replacement = replacement
        self._num_samples = num_samples
        self.generator = generator

    @property
    def num_samples(self) -> int:
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self) -> Iterator[int]:
        n = len(self.data_source)
        if n == 0:
            return
        if self.replacement:
            yield from numpy_rng(self.generator).integers(0, n, self.num_samples).tolist()
            return
        # Without replacement, num_samples > n repeats whole permutations (PyTorch's rule).
        for _ in range(self.num_samples // n):
            yield from randperm(n, self.generator).tolist()
        yield from randperm(n, self.generator)[: self.num_samples % n].tolist()

    def __len__(self) -> int:
        return self.num_samples


class SubsetRandomSampler(Sampler):
    """The given indices in a fresh random order every epoch.

    >>> sampler = gf.utils.data.SubsetRandomSampler([2, 4, 6])
    >>> sorted(sampler)
    [2, 4, 6]
    """

    def __init__(self, indices: Sequence[int], generator: Optional[Generator] = None) -> None:
        self.indices = indices
        self.generator = generator

    def __iter__(self) -> Iterator[int]:
        for i in randperm(len(self.indices), self.generator).tolist():
            yield self.indices[i]

    def __len__(self) -> int:
        return len(self.indices)


class WeightedRandomSampler(Sampler):
    """`num_samples` indices in [0, len(weights)), index i drawn with probability
    weights[i] / sum(weights) (weights need not sum to 1), as torch.utils.data's.

    With `replacement=False` an index is drawn at most once: each draw is made among the
    indices not drawn yet, with the remaining weights renormalised (PyTorch's
    ``multinomial`` without replacement); then num_samples may not exceed the number of
    nonzero weights. Draws come from `generator`, or from gradflow's global generator when it
    is None, so gradflow.manual_seed fixes them; the sequences differ from PyTorch's, which has
    another random number generator.

    Example::

        >>> import gradflow as gf
        >>> from gradflow.utils.data import WeightedRandomSampler
        >>> gf.manual_seed(0)
        >>> sampler = WeightedRandomSampler([0.0, 1.0, 0.0, 3.0], num_samples=5)
        >>> sorted(set(sampler))
        [1, 3]
        >>> sorted(WeightedRandomSampler([1, 0, 2, 5], 3, replacement=False))
        [0, 2, 3]
    """

    def __init__(self, weights: Sequence[float], num_samples: int, replacement: bool = True,
                 generator: Optional[Generator] = None) -> None:
        op = "WeightedRandomSampler"
        if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples <= 0:
            raise ValueError(f"{op}: num_samples should be a positive integer value, but got "
                             f"num_samples={num_samples!r}")
        if not isinstance(replacement, bool):
            raise ValueError(f"{op}: replacement should be a boolean value, but got "
                             f"replacement={replacement!r}")
        from gradflow.tensor import tensor

        self.weights = tensor(_weights_array(weights), dtype="float64")
        self.num_samples = num_samples
        self.replacement = replacement
        self.generator = generator

    def _probabilities(self) -> np.ndarray:
        """weights / sum(weights), after the checks PyTorch's multinomial makes (when drawing,
        as PyTorch: `weights` may be changed after construction)."""
        w = self.weights.detach().numpy()
        op = "WeightedRandomSampler"
        if not np.all(np.isfinite(w)) or np.any(w < 0):
            raise RuntimeError(f"{op}: weights must be finite and >= 0, got {w.tolist()}")
        total = w.sum()
        if not total > 0:
            raise RuntimeError(f"{op}: invalid distribution: the weights sum to {total} "
                               f"(need a positive sum)")
        nonzero = int(np.count_nonzero(w))
        if not self.replacement and self.num_samples > nonzero:
            raise RuntimeError(f"{op}: cannot draw num_samples={self.num_samples} indices "
                               f"without replacement from {nonzero} nonzero weights")
        return w / total

    def __iter__(self) -> Iterator[int]:
        p = self._probabilities()
        draws = numpy_rng(self.generator).choice(len(p), size=self.num_samples,
                                                 replace=self.replacement, p=p)
        yield from draws.tolist()

    def __len__(self) -> int:
        return self.num_samples


def _weights_array(weights: Any) -> np.ndarray:
    """A 1-D float64 copy of a sequence of numbers, a NumPy array or a Tensor."""
    from gradflow.tensor import Tensor

    if isinstance(weights, Tensor):
        weights = weights.detach().numpy()
    try:
        w = np.array(weights, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise TypeError(f"WeightedRandomSampler: weights must be a sequence of numbers, got "
                        f"{type(weights).__name__} ({e})") from None
    if w.ndim != 1:
        raise ValueError(f"WeightedRandomSampler: weights should be a 1d sequence but given "
                         f"weights have shape {tuple(w.shape)}")
    return w


class BatchSampler(Sampler):
    """Groups the indices of `sampler` into lists of `batch_size`; the last, shorter list is
    kept unless `drop_last`.

    >>> sampler = gf.utils.data.SequentialSampler(range(5))
    >>> list(gf.utils.data.BatchSampler(sampler, batch_size=2, drop_last=False))
    [[0, 1], [2, 3], [4]]
    """

    def __init__(self, sampler: Iterable[int], batch_size: int, drop_last: bool) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(
                f"BatchSampler: batch_size should be a positive integer, got {batch_size!r}"
            )
        if not isinstance(drop_last, bool):
            raise ValueError(f"BatchSampler: drop_last should be a bool, got {drop_last!r}")
        self.sampler = sampler
        self.batch_size = batch_size
        self.drop_last = drop_last

    def __iter__(self) -> Iterator[List[int]]:
        batch: List[int] = []
        for idx in self.sampler:
            batch.append(idx)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __len__(self) -> int:
        n = len(self.sampler)  # type: ignore[arg-type]
        if self.drop_last:
            return n // self.batch_size
        return (n + self.batch_size - 1) // self.batch_size
