"""Collectives on tensors, in place, over MPI: all_reduce, broadcast, all_gather,
reduce_scatter, send/recv and barrier.

Each one starts MPI's non-blocking form and returns a `Work`; the blocking call is that
Work's wait(). MPI reads and writes a contiguous CPU tensor's own memory (through its NumPy
view, no copy); a non-contiguous tensor goes through a contiguous copy. A CUDA tensor goes to
MPI directly when MPI is CUDA-aware, else through a host copy (said once, as a warning).

The examples in these docstrings that need a process group run only under a launcher
(``mpiexec -n 2``), which a doctest does not have: they are marked ``# doctest: +SKIP`` and
show what rank 0 of two processes sees (tests/test_distributed.py runs the real jobs).
"""

from __future__ import annotations

import enum
import os
import time
import warnings
from typing import Callable, List, Optional, Sequence

import numpy as np

from gradflow.autograd.grad_mode import no_grad
from gradflow.distributed.process_group import ProcessGroup, _group, _mpi
from gradflow.tensor import Tensor, empty, from_numpy

# Work.wait polls MPI in a tight loop for SPIN_S, then yields the core between polls until
# YIELD_S, then sleeps POLL_SLEEP_S between polls. A sleep delays every round trip of a
# collective the other rank drives, so short waits (ranks a few ms apart) never sleep; a long
# wait (a slow or failed rank) stops competing for the cores (with mpiexec's output
# forwarding, for one).
SPIN_S, YIELD_S, POLL_SLEEP_S = 0.005, 0.05, 0.0002


class ReduceOp(enum.Enum):
    """The reductions of all_reduce and reduce_scatter: SUM, AVG, PRODUCT, MAX, MIN.

    >>> import gradflow.distributed as dist
    >>> [op.name for op in dist.ReduceOp]
    ['SUM', 'AVG', 'PRODUCT', 'MAX', 'MIN']
    """
    SUM = "sum"
    AVG = "avg"
    PRODUCT = "product"
    MAX = "max"
    MIN = "min"


def _mpi_op(MPI, op: ReduceOp):
    return {ReduceOp.SUM: MPI.SUM, ReduceOp.AVG: MPI.SUM, ReduceOp.PRODUCT: MPI.PROD,
            ReduceOp.MAX: MPI.MAX, ReduceOp.MIN: MPI.MIN}[op]


class Work:
    """A started collective. wait() blocks until it is done on this rank (raising if that
    takes longer than the group's timeout), then finishes it: copies staged results back and
    divides an average. is_completed() asks without blocking.

    >>> import gradflow.distributed as dist
    >>> t = gf.ones(2)
    >>> work = dist.all_reduce(t, async_op=True)  # doctest: +SKIP
    >>> work.wait()  # doctest: +SKIP
    >>> t  # doctest: +SKIP
    tensor([2., 2.])
    """

    def __init__(self, op: str, group: ProcessGroup, request, finish: Callable[[], None],
                 status=None) -> None:
        self._op, self._group, self._request, self._finish = op, group, request, finish
        self._status = status  # an MPI.Status for a receive: who sent the message
        self._done = False

    def is_completed(self) -> bool:
        if not self._done and self._request.Test(self._status):
            self._complete()
        return self._done

    def source_rank(self) -> int:
        """The rank a finished receive got its message from."""
        if self._status is None or not self._done:
            raise RuntimeError(f"source_rank: only a finished recv has a source rank "
                               f"(this is {self._op}, done={self._done})")
        return self._status.Get_source()

    def wait(self, timeout=None) -> bool:
        """Block until done; `timeout` (a timedelta) overrides the group's. Polls MPI in a
        tight loop at first, then yielding the core between polls, then with short sleeps
        (SPIN_S, YIELD_S), so that a long wait leaves the cores to the processes that still
        compute."""
        limit = (timeout or self._group.timeout).total_seconds()
        start = time.monotonic()
        while not self.is_completed():
            waited = time.monotonic() - start
            if waited > YIELD_S:
                time.sleep(POLL_SLEEP_S)
            elif waited > SPIN_S:
                os.sched_yield()
            if waited > limit:
                raise RuntimeError(
                    f"{self._op}: timed out after {limit:g} s on rank {self._group.rank} of "
                    f"{self._group.size}, waiting for the other ranks (did one of them fail or "
                    "call a different collective?)")
        return True

    def _complete(self) -> None:
        self._done = True
        self._finish()


class _Buffer:
    """The memory MPI works on for one tensor: the tensor's own (a contiguous CPU tensor, or a
    contiguous CUDA one under CUDA-aware MPI) or a contiguous copy that store() writes back."""

    def __init__(self, t: Tensor, group: ProcessGroup) -> None:
        self.tensor = t
        d = t.detach()
        if d.is_cuda and group.cuda_aware:
            self.mem = d if d.is_contiguous() else d.contiguous()
            self.copied = self.mem is not d
        elif d.is_cuda:
            _warn_staging()
            self.mem, self.copied = d.numpy(), True
        else:
            own = d.numpy()
            self.mem = np.ascontiguousarray(own)
            self.copied = self.mem is not own

    def store(self, divisor: int = 1) -> None:
        """Write MPI's result into the tensor (when MPI worked on a copy), divided by divisor:
        ReduceOp.AVG's group size, as MPI only sums (see _divisor)."""
        with no_grad():
            if self.copied:
                self.tensor.copy_(self.mem if isinstance(self.mem, Tensor)
                                  else from_numpy(self.mem))
            if divisor != 1:
                self.tensor.div_(divisor)


def _divisor(op: ReduceOp, group: ProcessGroup) -> int:
    """What a reduction's sum is divided by: the group's size for AVG, else 1."""
    return group.size if op is ReduceOp.AVG else 1


_warned_staging = False


def _warn_staging() -> None:
    global _warned_staging
    if not _warned_staging:
        _warned_staging = True
        warnings.warn("gradflow.distributed: this MPI is not CUDA-aware, so CUDA tensors are "
                      "copied through host memory for each collective", stacklevel=4)


def _check_tensor(t, op: str, arg: str = "tensor") -> None:
    if not isinstance(t, Tensor):
        raise TypeError(f"{op}: {arg} must be a Tensor, got {type(t).__name__}")


def _check_reduce(t: Tensor, op: str, reduce_op) -> None:
    if not isinstance(reduce_op, ReduceOp):
        raise TypeError(f"{op}: op must be a ReduceOp (SUM, AVG, PRODUCT, MAX, MIN), got "
                        f"{reduce_op!r}")
    if t.dtype.name == "bool":
        raise TypeError(f"{op}: cannot reduce a bool tensor (shape {tuple(t.shape)})")
    if reduce_op is ReduceOp.AVG and not t.is_floating_point():
        raise TypeError(f"{op}: ReduceOp.AVG needs a floating-point tensor, got {t.dtype.name} "
                        f"(shape {tuple(t.shape)})")


def _check_rank(group: ProcessGroup, rank, op: str, arg: str) -> None:
    if isinstance(rank, bool) or not isinstance(rank, int) or not 0 <= rank < group.size:
        raise ValueError(f"{op}: {arg} must be a rank in [0, {group.size}), got {rank!r}")


def _finish(async_op: bool, work: Work) -> Optional[Work]:
    if async_op:
        return work
    work.wait()
    return None


def all_reduce(tensor: Tensor, op: ReduceOp = ReduceOp.SUM, group=None,
               async_op: bool = False) -> Optional[Work]:
    """tensor <- op over all ranks of tensor (AVG: the sum divided by the world size).

    >>> import gradflow.distributed as dist
    >>> t = gf.tensor([1.0, 2.0])
    >>> dist.all_reduce(t, op=dist.ReduceOp.AVG)  # doctest: +SKIP
    >>> t  # doctest: +SKIP
    tensor([1., 2.])
    """
    name = "all_reduce"
    _check_tensor(tensor, name)
    _check_reduce(tensor, name, op)
    g = group or _group(name)
    MPI = _mpi()
    buf = _Buffer(tensor, g)

    request = g.comm.Iallreduce(MPI.IN_PLACE, buf.mem, _mpi_op(MPI, op))
    return _finish(async_op, Work(name, g, request, lambda: buf.store(_divisor(op, g))))


def broadcast(tensor: Tensor, src: int, group=None, async_op: bool = False) -> Optional[Work]:
    """tensor <- rank src's tensor, on every rank.

    >>> import gradflow.distributed as dist
    >>> t = gf.full((2,), float(dist.get_rank()))  # doctest: +SKIP
    >>> dist.broadcast(t, src=0)  # doctest: +SKIP
    >>> t  # doctest: +SKIP
    tensor([0., 0.])
    """
    name = "broadcast"
    _check_tensor(tensor, name)
    g = group or _group(name)
    _check_rank(g, src, name, "src")
    buf = _Buffer(tensor, g)
    request = g.comm.Ibcast(buf.mem, root=src)
    return _finish(async_op, Work(name, g, request, buf.store))


def _check_list(tensors, like: Tensor, group: ProcessGroup, op: str, arg: str) -> List[Tensor]:
    """A list of world-size tensors of like's shape, dtype and device."""
    if not isinstance(tensors, (list, tuple)):
        raise TypeError(f"{op}: {arg} must be a list of Tensors, got {type(tensors).__name__}")
    if len(tensors) != group.size:
        raise ValueError(f"{op}: {arg} must hold one tensor per rank ({group.size}), got "
                         f"{len(tensors)}")
    for i, t in enumerate(tensors):
        _check_tensor(t, op, f"{arg}[{i}]")
        if t.shape != like.shape or t.dtype != like.dtype or t.device != like.device:
            raise ValueError(f"{op}: {arg}[{i}] is {t.dtype.name} {tuple(t.shape)} on {t.device} "
                             f"but the tensor is {like.dtype.name} {tuple(like.shape)} on "
                             f"{like.device}")
    return list(tensors)


def _stack(tensors: Sequence[Tensor], like: Tensor, group: ProcessGroup):
    """One contiguous buffer holding `tensors` one after another (host memory unless MPI is
    CUDA-aware and they live on the GPU)."""
    from gradflow.ops.shape import stack

    if like.is_cuda and group.cuda_aware:
        return stack([t.detach() for t in tensors])
    return np.stack([t.detach().numpy() for t in tensors])


def _empty_stack(n: int, like: Tensor, group: ProcessGroup):
    shape = (n,) + tuple(like.shape)
    if like.is_cuda and group.cuda_aware:
        return empty(*shape, dtype=like.dtype, device=like.device)
    return np.empty(shape, like.dtype.np)


def _as_tensor(mem) -> Tensor:
    return mem if isinstance(mem, Tensor) else from_numpy(mem)


def all_gather(tensor_list: List[Tensor], tensor: Tensor, group=None,
               async_op: bool = False) -> Optional[Work]:
    """tensor_list[r] <- rank r's tensor, on every rank.

    >>> import gradflow.distributed as dist
    >>> parts = [gf.zeros(1) for _ in range(dist.get_world_size())]  # doctest: +SKIP
    >>> dist.all_gather(parts, gf.tensor([float(dist.get_rank())]))  # doctest: +SKIP
    >>> parts  # doctest: +SKIP
    [tensor([0.]), tensor([1.])]
    """
    name = "all_gather"
    _check_tensor(tensor, name)
    g = group or _group(name)
    outputs = _check_list(tensor_list, tensor, g, name, "tensor_list")
    buf = _Buffer(tensor, g)
    gathered = _empty_stack(g.size, tensor, g)

    def finish() -> None:
        with no_grad():
            for out, part in zip(outputs, _as_tensor(gathered).unbind(0)):
                out.copy_(part)

    request = g.comm.Iallgather(buf.mem, gathered)
    return _finish(async_op, Work(name, g, request, finish))


def reduce_scatter(output: Tensor, input_list: List[Tensor], op: ReduceOp = ReduceOp.SUM,
                   group=None, async_op: bool = False) -> Optional[Work]:
    """output <- op over all ranks of their input_list[rank] (this rank's piece).

    >>> import gradflow.distributed as dist
    >>> out = gf.zeros(1)
    >>> dist.reduce_scatter(out, [gf.tensor([1.0]), gf.tensor([2.0])])  # doctest: +SKIP
    >>> out  # doctest: +SKIP
    tensor([2.])
    """
    name = "reduce_scatter"
    _check_tensor(output, name, "output")
    _check_reduce(output, name, op)
    g = group or _group(name)
    inputs = _check_list(input_list, output, g, name, "input_list")
    MPI = _mpi()
    send = _stack(inputs, output, g)
    buf = _Buffer(output, g)

    request = g.comm.Ireduce_scatter_block(send, buf.mem, _mpi_op(MPI, op))
    return _finish(async_op, Work(name, g, request, lambda: buf.store(_divisor(op, g))))


def isend(tensor: Tensor, dst: int, group=None, tag: int = 0) -> Work:
    """Start sending tensor to rank dst.

    >>> import gradflow.distributed as dist
    >>> if dist.get_rank() == 0:  # doctest: +SKIP
    ...     dist.isend(gf.ones(2), dst=1).wait()
    """
    name = "send"
    _check_tensor(tensor, name)
    g = group or _group(name)
    _check_rank(g, dst, name, "dst")
    buf = _Buffer(tensor, g)
    return Work(name, g, g.comm.Isend(buf.mem, dest=dst, tag=tag), lambda: None)


def irecv(tensor: Tensor, src: Optional[int] = None, group=None, tag: int = 0) -> Work:
    """Start receiving into tensor from rank src (None: from any rank; the Work's
    source_rank() tells which once it is done).

    >>> import gradflow.distributed as dist
    >>> buffer = gf.zeros(2)
    >>> work = dist.irecv(buffer, src=None)  # doctest: +SKIP
    >>> work.wait()  # doctest: +SKIP
    >>> work.source_rank(), buffer  # doctest: +SKIP
    (0, tensor([1., 1.]))
    """
    name = "recv"
    _check_tensor(tensor, name)
    g = group or _group(name)
    MPI = _mpi()
    if src is not None:
        _check_rank(g, src, name, "src")
    buf = _Buffer(tensor, g)
    status = MPI.Status()
    request = g.comm.Irecv(buf.mem, source=MPI.ANY_SOURCE if src is None else src, tag=tag)
    return Work(name, g, request, buf.store, status)


def send(tensor: Tensor, dst: int, group=None, tag: int = 0,
         async_op: bool = False) -> Optional[Work]:
    """Send tensor to rank dst (blocks until MPI has it, unless async_op).

    >>> import gradflow.distributed as dist
    >>> if dist.get_rank() == 0:  # doctest: +SKIP
    ...     dist.send(gf.ones(2), dst=1)
    """
    return _finish(async_op, isend(tensor, dst, group, tag))


def recv(tensor: Tensor, src: Optional[int] = None, group=None, tag: int = 0,
         async_op: bool = False):
    """Receive into tensor from rank src (None: any rank); returns the sender's rank (or,
    with async_op, the Work).

    >>> import gradflow.distributed as dist
    >>> buffer = gf.zeros(2)
    >>> dist.recv(buffer, src=0), buffer  # doctest: +SKIP
    (0, tensor([1., 1.]))
    """
    work = irecv(tensor, src, group, tag)
    if async_op:
        return work
    work.wait()
    return work.source_rank()


def barrier(group=None, async_op: bool = False) -> Optional[Work]:
    """Wait until every rank has reached the barrier.

    >>> import gradflow.distributed as dist
    >>> dist.barrier()  # doctest: +SKIP
    """
    g = group or _group("barrier")
    return _finish(async_op, Work("barrier", g, g.comm.Ibarrier(), lambda: None))
