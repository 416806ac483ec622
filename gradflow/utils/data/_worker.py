"""What runs inside a DataLoader worker process, and what crosses the process boundary.

A worker receives tasks `(epoch, task_id, indices)` on its own index queue and answers
`(epoch, task_id, payload)` on the shared result queue; `None` tells it to stop. The payload
is pickled by the worker itself, so an unpicklable batch becomes an error the main process
re-raises instead of a lost message. Tensors cross as NumPy arrays (`_TensorPayload`) and are
rebuilt in the main process, so nothing depends on how Tensor pickles.
"""

from __future__ import annotations

import collections.abc
import os
import pickle
import queue
import random
import sys
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np

from gradflow.utils.data._rng import seed_cpu_global


@dataclass(frozen=True)
class WorkerInfo:
    """What `get_worker_info()` returns inside a worker process.

    >>> class Shard(gf.utils.data.IterableDataset):
    ...     def __iter__(self):
    ...         info = gf.utils.data.get_worker_info()
    ...         return iter([(info.id, info.num_workers) if info else "main process"])
    >>> list(Shard())
    ['main process']
    """

    id: int
    num_workers: int
    seed: int
    dataset: Any


_worker_info: Optional[WorkerInfo] = None


def get_worker_info() -> Optional[WorkerInfo]:
    """Inside a DataLoader worker: its id, the number of workers, its seed and its copy of the
    dataset. In the main process: None.

    >>> gf.utils.data.get_worker_info() is None
    True
    """
    return _worker_info


class _Exhausted:
    """Answer of a worker whose IterableDataset iterator has run out."""


class KeyErrorMessage(str):
    """KeyError quotes its message; this str keeps a multi-line traceback readable."""

    def __repr__(self) -> str:
        return self


class ExceptionWrapper:
    """An exception raised in a worker, carried to the main process with its traceback."""

    def __init__(self, where: str) -> None:
        exc_type, exc, tb = sys.exc_info()
        self.where = where
        self.text = "".join(traceback.format_exception(exc_type, exc, tb))
        try:
            pickle.loads(pickle.dumps(exc_type))
            self.exc_type = exc_type
        except Exception:
            self.exc_type = RuntimeError

    def reraise(self) -> None:
        msg = f"Caught {self.exc_type.__name__} {self.where}.\nOriginal {self.text}"
        if self.exc_type is KeyError:
            msg = KeyErrorMessage(msg)
        try:
            exc = self.exc_type(msg)
        except Exception:
            raise RuntimeError(msg) from None
        raise exc


@dataclass
class _TensorPayload:
    array: np.ndarray


def pack(data: Any) -> Any:
    """Replace the tensors inside nested containers by their NumPy values."""
    from gradflow.tensor import Tensor

    if isinstance(data, Tensor):
        return _TensorPayload(data.detach().numpy())
    return _map_containers(data, pack)


def unpack(data: Any) -> Any:
    """Inverse of `pack`: NumPy payloads become tensors again."""
    import gradflow

    if isinstance(data, _TensorPayload):
        return gradflow.from_numpy(data.array)
    return _map_containers(data, unpack)


def _map_containers(data: Any, f: Callable[[Any], Any]) -> Any:
    if isinstance(data, (str, bytes, np.ndarray)):
        return data
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(f(d) for d in data))
    if isinstance(data, (list, tuple)):
        return type(data)(f(d) for d in data)
    if isinstance(data, dict):
        return type(data)((k, f(v)) for k, v in data.items())
    if isinstance(data, collections.abc.Mapping):
        return {k: f(v) for k, v in data.items()}
    return data


class IterableFetcher:
    """Batches of up to `batch_size` samples from an iterator (one sample when not batching)."""

    def __init__(self, dataset, auto_collation: bool, collate_fn, drop_last: bool, batch_size):
        self.it = iter(dataset)
        self.auto_collation = auto_collation
        self.collate_fn = collate_fn
        self.drop_last = drop_last
        self.batch_size = batch_size
        self.exhausted = False

    def fetch(self) -> Any:
        """The next batch, or `_Exhausted` once the stream has run out."""
        if self.exhausted:
            return _Exhausted
        if not self.auto_collation:
            try:
                return self.collate_fn(next(self.it))
            except StopIteration:
                self.exhausted = True
                return _Exhausted
        batch = []
        for sample in self.it:
            batch.append(sample)
            if len(batch) == self.batch_size:
                return self.collate_fn(batch)
        self.exhausted = True
        if not batch or (self.drop_last and len(batch) < self.batch_size):
            return _Exhausted
        return self.collate_fn(batch)


def fetch_map(dataset, indices, auto_collation: bool, collate_fn) -> Any:
    if auto_collation:
        return collate_fn([dataset[i] for i in indices])
    return collate_fn(dataset[indices])


def seed_worker(seed: int) -> None:
    """Seed Python's, NumPy's legacy and gradflow's CPU generators in a worker, so random
    augmentations differ between workers and repeat between runs."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    seed_cpu_global(seed)


def worker_loop(
    dataset,
    is_iterable: bool,
    index_queue,
    result_queue,
    auto_collation: bool,
    collate_fn,
    drop_last: bool,
    batch_size,
    seed: int,
    worker_id: int,
    num_workers: int,
    worker_init_fn,
    parent_pid: int,
) -> None:
    global _worker_info
    seed_worker(seed)
    _worker_info = WorkerInfo(worker_id, num_workers, seed, dataset)
    where = f"in DataLoader worker process {worker_id}"
    init_error = None
    try:
        if worker_init_fn is not None:
            worker_init_fn(worker_id)
    except Exception:
        init_error = ExceptionWrapper(where)

    fetcher, fetcher_epoch = None, None
    while True:
        try:
            task = index_queue.get(timeout=5.0)
        except queue.Empty:
            if os.getppid() != parent_pid:  # the main process is gone
                break
            continue
        if task is None:
            break
        epoch, task_id, indices = task
        try:
            if init_error is not None:
                data = init_error
            elif is_iterable:
                if fetcher_epoch != epoch:
                    fetcher = IterableFetcher(
                        dataset, auto_collation, collate_fn, drop_last, batch_size
                    )
                    fetcher_epoch = epoch
                data = fetcher.fetch()
                data = data if data is _Exhausted else pack(data)
            else:
                data = pack(fetch_map(dataset, indices, auto_collation, collate_fn))
            blob = pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:
            blob = pickle.dumps(ExceptionWrapper(where), protocol=pickle.HIGHEST_PROTOCOL)
        result_queue.put((epoch, task_id, blob))
    # Exit without waiting for undelivered results: the main process no longer wants them.
    result_queue.cancel_join_thread()
