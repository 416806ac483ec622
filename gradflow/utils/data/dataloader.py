"""DataLoader: batches from a dataset, in the main process or in worker processes.

With `num_workers > 0` the loader starts that many processes (forked where the platform
allows, else spawned: then the dataset and collate_fn must be picklable). The main process
walks the sampler and deals batches of indices round-robin to the workers, keeping
`prefetch_factor` batches per worker in flight; results are put back into sampler order.
An exception in a worker is raised again in the main process with the worker's traceback; a
worker that dies raises RuntimeError instead of hanging. Forked workers run the native
kernels on one OpenMP thread (gradflow._C resets OpenMP in the child after fork).
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import pickle
import queue
import time
import warnings
from typing import Any, Callable, Iterable, Optional, Tuple, Union

from gradflow.utils.data import _worker
from gradflow.utils.data._rng import Generator, numpy_rng
from gradflow.utils.data.collate import default_collate, default_convert
from gradflow.utils.data.dataset import Dataset, IterableDataset
from gradflow.utils.data.sampler import BatchSampler, RandomSampler, Sampler, SequentialSampler

_POLL_S = 1.0  # how often a waiting main process checks that its workers are alive


def _check_worker_options(num_workers: int, timeout: float,
                          prefetch_factor: Optional[int], persistent_workers: bool) -> None:
    if not isinstance(num_workers, int) or num_workers < 0:
        raise ValueError(
            "num_workers option should be non-negative; "
            "use num_workers=0 to disable multiprocessing."
        )
    if timeout < 0:
        raise ValueError("timeout option should be non-negative")
    if num_workers == 0 and prefetch_factor is not None:
        raise ValueError(
            "prefetch_factor option could only be specified in multiprocessing. "
            "let num_workers > 0 to enable multiprocessing, otherwise set prefetch_factor "
            "to None."
        )
    if prefetch_factor is not None and prefetch_factor < 1:
        raise ValueError(f"prefetch_factor option should be >= 1, got {prefetch_factor}")
    if persistent_workers and num_workers == 0:
        raise ValueError("persistent_workers option needs num_workers > 0")


def _check_iterable_options(shuffle: Optional[bool], sampler, batch_sampler) -> None:
    """An IterableDataset yields its own order: no shuffle, sampler or batch_sampler."""
    if shuffle not in (None, False):
        raise ValueError(
            "DataLoader with IterableDataset: expected unspecified shuffle option, "
            f"but got shuffle={shuffle}"
        )
    if sampler is not None:
        raise ValueError(
            "DataLoader with IterableDataset: expected unspecified sampler option, "
            f"but got sampler={sampler}"
        )
    if batch_sampler is not None:
        raise ValueError(
            "DataLoader with IterableDataset: expected unspecified batch_sampler "
            f"option, but got batch_sampler={batch_sampler}"
        )


def _check_sampling_options(batch_size: Optional[int], shuffle: bool, sampler, batch_sampler,
                            drop_last: bool) -> Tuple[Optional[int], bool]:
    """The (batch_size, drop_last) to use: a batch_sampler excludes the other options."""
    if sampler is not None and shuffle:
        raise ValueError("sampler option is mutually exclusive with shuffle")
    if batch_sampler is not None:
        if batch_size != 1 or shuffle or sampler is not None or drop_last:
            raise ValueError(
                "batch_sampler option is mutually exclusive with batch_size, shuffle, "
                "sampler, and drop_last"
            )
        return None, False
    if batch_size is None and drop_last:
        raise ValueError(
            "batch_size=None option disables auto-batching and is mutually exclusive "
            "with drop_last"
        )
    return batch_size, drop_last


def _warn_pin_memory(pin_memory: bool, pin_memory_device: str) -> None:
    if pin_memory_device:
        warnings.warn("DataLoader: pin_memory_device is deprecated (as in PyTorch), ignoring "
                      f"pin_memory_device='{pin_memory_device}'", UserWarning, stacklevel=3)
    if pin_memory:
        warnings.warn("DataLoader: 'pin_memory' argument is set as true but gradflow cannot "
                      "pin host memory yet (the CUDA backend has no page-locked allocator), "
                      "so batches stay in ordinary pageable memory", UserWarning, stacklevel=3)


class DataLoader:
    """Iterate over `dataset` in batches (PyTorch's DataLoader, same arguments and rules).

    `shuffle=True` draws a new permutation each epoch from `generator`, or from gradflow's
    global generator when it is None (so `gradflow.manual_seed` fixes the order). Worker i is
    seeded with `base_seed + i`, base_seed drawn from the same generator for each epoch (once,
    with `persistent_workers`). `timeout` (seconds, 0 = wait forever) bounds the wait for one
    batch from the workers.

    `pin_memory=True` is accepted so that PyTorch scripts run unchanged, but gradflow cannot
    pin host memory yet (its CUDA backend has no page-locked allocator): batches stay in
    ordinary pageable memory, which ``.to("cuda")`` copies as usual, and the loader says so
    with a UserWarning, as PyTorch does when it has no accelerator to pin for. It will pin for
    real once the CUDA backend can. `pin_memory_device` is accepted and ignored, with
    PyTorch's deprecation warning.

    >>> ds = gf.utils.data.TensorDataset(gf.arange(10.0).reshape(5, 2), gf.arange(5))
    >>> loader = gf.utils.data.DataLoader(ds, batch_size=2, shuffle=True,
    ...                                   generator=gf.Generator().manual_seed(0))
    >>> [(x.shape, y.shape) for x, y in loader][-1], len(loader)
    ((gradflow.Size([1, 2]), gradflow.Size([1])), 3)
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_size: Optional[int] = 1,
        shuffle: Optional[bool] = None,
        sampler: Union[Sampler, Iterable, None] = None,
        batch_sampler: Union[Sampler, Iterable, None] = None,
        num_workers: int = 0,
        collate_fn: Optional[Callable] = None,
        pin_memory: bool = False,
        drop_last: bool = False,
        timeout: float = 0,
        worker_init_fn: Optional[Callable[[int], None]] = None,
        multiprocessing_context=None,
        generator: Optional[Generator] = None,
        *,
        prefetch_factor: Optional[int] = None,
        persistent_workers: bool = False,
        pin_memory_device: str = "",
    ) -> None:
        _check_worker_options(num_workers, timeout, prefetch_factor, persistent_workers)
        _warn_pin_memory(pin_memory, pin_memory_device)
        is_iterable = isinstance(dataset, IterableDataset)
        if is_iterable:
            _check_iterable_options(shuffle, sampler, batch_sampler)
        shuffle = bool(shuffle)
        batch_size, drop_last = _check_sampling_options(batch_size, shuffle, sampler,
                                                        batch_sampler, drop_last)

        if sampler is None and not is_iterable:
            sampler = RandomSampler(dataset, generator=generator) if shuffle else (
                SequentialSampler(dataset)
            )
        if batch_size is not None and batch_sampler is None and not is_iterable:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        if collate_fn is None:
            collate_fn = default_collate if self._auto(batch_size, batch_sampler) else (
                default_convert
            )

        self.dataset = dataset
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.num_workers = num_workers
        self.collate_fn = collate_fn
        self.pin_memory = pin_memory
        self.pin_memory_device = pin_memory_device
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.multiprocessing_context = multiprocessing_context
        self.generator = generator
        self.prefetch_factor = 2 if prefetch_factor is None and num_workers > 0 else prefetch_factor
        self.persistent_workers = persistent_workers
        self._is_iterable = is_iterable
        self._iterator: Optional[_MultiProcessIter] = None

    @staticmethod
    def _auto(batch_size, batch_sampler) -> bool:
        return batch_size is not None or batch_sampler is not None

    @property
    def _auto_collation(self) -> bool:
        return self._auto(self.batch_size, self.batch_sampler)

    @property
    def _index_sampler(self):
        return self.batch_sampler if self._auto_collation else self.sampler

    def _mp_context(self):
        ctx = self.multiprocessing_context
        if ctx is None:
            methods = multiprocessing.get_all_start_methods()
            return multiprocessing.get_context("fork" if "fork" in methods else "spawn")
        if isinstance(ctx, str):
            return multiprocessing.get_context(ctx)
        return ctx

    def __iter__(self):
        if self.num_workers == 0:
            return _SingleProcessIter(self)
        if self.persistent_workers:
            if self._iterator is None:
                self._iterator = _MultiProcessIter(self)
            else:
                self._iterator._reset()
            return self._iterator
        return _MultiProcessIter(self)

    def __len__(self) -> int:
        if self._is_iterable:
            n = len(self.dataset)  # TypeError when the stream has no length
            if self.batch_size is not None:
                n = n // self.batch_size if self.drop_last else -(-n // self.batch_size)
            return n
        return len(self._index_sampler)


def _draw_base_seed(loader: DataLoader) -> int:
    """One draw per epoch (per worker start-up with persistent workers), made with or without
    workers, so that a seeded shuffle gives the same order for every num_workers."""
    return int(numpy_rng(loader.generator).integers(0, 2**62))


class _SingleProcessIter:
    def __init__(self, loader: DataLoader) -> None:
        self._loader = loader
        _draw_base_seed(loader)  # as with workers, so the shuffle order does not depend on them
        if loader._is_iterable:
            self._fetcher = _worker.IterableFetcher(
                loader.dataset, loader._auto_collation, loader.collate_fn, loader.drop_last,
                loader.batch_size,
            )
        else:
            self._sampler_iter = iter(loader._index_sampler)

    def __iter__(self):
        return self

    def __next__(self) -> Any:
        loader = self._loader
        if loader._is_iterable:
            data = self._fetcher.fetch()
            if data is _worker._Exhausted:
                raise StopIteration
            return data
        indices = next(self._sampler_iter)
        return _worker.fetch_map(loader.dataset, indices, loader._auto_collation, loader.collate_fn)


class _MultiProcessIter:
    """Holds no reference to its loader (which may hold it, with persistent workers): a
    reference cycle would leave shutdown to the garbage collector, which closes the queues
    before the iterator can tell its workers to stop."""

    def __init__(self, loader: DataLoader) -> None:
        self._closed = True
        self._index_sampler = loader._index_sampler
        self._is_iterable = loader._is_iterable
        self._prefetch = loader.prefetch_factor
        self._persistent = loader.persistent_workers
        self._timeout = loader.timeout
        n = loader.num_workers
        ctx = loader._mp_context()
        base_seed = _draw_base_seed(loader)
        self._result_queue = ctx.Queue()
        self._index_queues = []
        self._workers = []
        for i in range(n):
            iq = ctx.Queue()
            # The main process never joins an index queue's feeder thread on exit.
            iq.cancel_join_thread()
            w = ctx.Process(
                target=_worker.worker_loop,
                args=(
                    loader.dataset, loader._is_iterable, iq, self._result_queue,
                    loader._auto_collation, loader.collate_fn, loader.drop_last,
                    loader.batch_size, base_seed + i, i, n, loader.worker_init_fn, os.getpid(),
                ),
                daemon=True,
            )
            w.start()
            self._index_queues.append(iq)
            self._workers.append(w)
        self._closed = False
        self._epoch = 0
        self._reset()

    def _reset(self) -> None:
        """Start an epoch. Persistent workers keep their generators across epochs (reseeding
        them would repeat the first epoch's augmentations); stale results are dropped."""
        self._epoch += 1
        self._sampler_iter = None if self._is_iterable else iter(self._index_sampler)
        self._active = [True] * len(self._workers)
        self._rr = itertools.cycle(range(len(self._workers)))
        self._send_idx = 0
        self._rcvd_idx = 0
        self._task_worker: dict = {}
        self._results: dict = {}
        for _ in range(self._prefetch * len(self._workers)):
            self._put_task()

    def _put_task(self) -> None:
        if not any(self._active):
            return
        if self._is_iterable:
            indices = None
        else:
            try:
                indices = next(self._sampler_iter)
            except StopIteration:
                return
        w = next(self._rr)
        while not self._active[w]:
            w = next(self._rr)
        self._index_queues[w].put((self._epoch, self._send_idx, indices))
        self._task_worker[self._send_idx] = w
        self._send_idx += 1

    def _get_result(self) -> None:
        """Wait for one result of this epoch and file it under its task id."""
        timeout = self._timeout
        start = time.monotonic()
        while True:
            try:
                poll = min(_POLL_S, timeout) if timeout > 0 else _POLL_S
                epoch, task_id, blob = self._result_queue.get(timeout=poll)
            except queue.Empty:
                dead = [w for w in self._workers if not w.is_alive()]
                if dead:
                    info = ", ".join(f"pid {w.pid} exit code {w.exitcode}" for w in dead)
                    self._shutdown(wait=0.0)
                    raise RuntimeError(
                        f"DataLoader worker ({info}) exited unexpectedly"
                    ) from None
                if timeout > 0 and time.monotonic() - start > timeout:
                    self._shutdown(wait=0.0)
                    raise RuntimeError(
                        f"DataLoader timed out after {timeout} seconds waiting for a batch"
                    ) from None
                continue
            if epoch == self._epoch:
                self._results[task_id] = pickle.loads(blob)
                return

    def __iter__(self):
        return self

    def __next__(self) -> Any:
        while True:
            if self._closed or self._rcvd_idx == self._send_idx:
                if not self._persistent:
                    self._shutdown()
                raise StopIteration
            while self._rcvd_idx not in self._results:
                self._get_result()
            data = self._results.pop(self._rcvd_idx)
            w = self._task_worker.pop(self._rcvd_idx)
            self._rcvd_idx += 1
            if data is _worker._Exhausted:
                self._active[w] = False
                self._put_task()
                continue
            self._put_task()
            if isinstance(data, _worker.ExceptionWrapper):
                data.reraise()
            return _worker.unpack(data)

    def _shutdown(self, wait: float = 2.0) -> None:
        """Ask the workers to stop; terminate those still running after `wait` seconds."""
        if self._closed:
            return
        self._closed = True
        for q in self._index_queues:
            try:
                q.put(None)
            except (OSError, ValueError):
                pass
        deadline = time.monotonic() + wait
        for w in self._workers:
            w.join(timeout=max(0.0, deadline - time.monotonic()))
        for w in self._workers:
            if w.is_alive():
                w.terminate()
                w.join()
        for q in self._index_queues + [self._result_queue]:
            q.cancel_join_thread()
            q.close()

    def __del__(self) -> None:
        self._shutdown()
