"""Jobs that tests/test_distributed.py runs under mpiexec: ``python distributed_jobs.py JOB``.

Every rank checks its own results and ends by printing ``ok JOB rank/size``. A failed check
raises, which (init_process_group's hook) aborts every rank, so mpiexec exits non-zero.
Inputs are made from (rank, case) seeds, so each rank can build every rank's input and check
a collective against NumPy on all of them.
"""

from __future__ import annotations

import sys
from typing import Callable, Dict, List

import numpy as np

import gradflow as gf
import gradflow.distributed as dist
import gradflow.nn as nn
import gradflow.nn.functional as F
from gradflow.nn.parallel import DistributedDataParallel as DDP

JOBS: Dict[str, Callable[[int, int], None]] = {}
DTYPES = [np.float32, np.float64, np.int64]
SHAPES = [(0,), (1,), (7,), (3, 5)]


def job(fn: Callable[[int, int], None]) -> Callable[[int, int], None]:
    JOBS[fn.__name__] = fn
    return fn


def rank_input(rank: int, case: int, shape, dtype) -> np.ndarray:
    rng = np.random.default_rng(1000 * case + rank)
    return (rng.integers(-9, 10, shape) if dtype == np.int64
            else rng.standard_normal(shape)).astype(dtype)


def as_tensor(a: np.ndarray, transpose: bool) -> gf.Tensor:
    """A tensor of a's values; transpose: a non-contiguous view (of a.T's transpose)."""
    return gf.tensor(a.T.copy()).T if transpose else gf.tensor(a)


def close(got: gf.Tensor, want: np.ndarray) -> None:
    tol = 1e-5 if want.dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got.numpy(), want, rtol=tol, atol=tol)
    assert got.numpy().dtype == want.dtype, (got.dtype, want.dtype)


REDUCE = {dist.ReduceOp.SUM: np.sum, dist.ReduceOp.MAX: np.max, dist.ReduceOp.MIN: np.min,
          dist.ReduceOp.AVG: np.mean, dist.ReduceOp.PRODUCT: np.prod}


def _cases():
    case = 0
    for dtype in DTYPES:
        for shape in SHAPES:
            for transpose in ([False, True] if len(shape) == 2 else [False]):
                case += 1
                yield case, dtype, shape, transpose


@job
def collectives(rank: int, size: int) -> None:
    for case, dtype, shape, transpose in _cases():
        everyone = [rank_input(r, case, shape, dtype) for r in range(size)]
        for op, reduce in REDUCE.items():
            if op is dist.ReduceOp.AVG and dtype == np.int64:
                continue
            t = as_tensor(everyone[rank], transpose)
            work = dist.all_reduce(t, op, async_op=case % 2 == 0)
            if work is not None:
                assert work.wait() and work.is_completed()
            close(t, reduce(np.stack(everyone), axis=0).astype(dtype))
        for src in range(size):
            t = as_tensor(everyone[rank], transpose)
            dist.broadcast(t, src)
            close(t, everyone[src])
        outs = [as_tensor(np.zeros(shape, dtype), transpose) for _ in range(size)]
        dist.all_gather(outs, as_tensor(everyone[rank], transpose))
        for out, want in zip(outs, everyone):
            close(out, want)
        _reduce_scatter(rank, size, case, dtype, shape)
        _ring(rank, size, everyone, transpose)
    dist.barrier()


def _reduce_scatter(rank: int, size: int, case: int, dtype, shape) -> None:
    pieces = {r: [rank_input(r, 100 * case + i, shape, dtype) for i in range(size)]
              for r in range(size)}
    out = gf.zeros(*shape, dtype=gf.tensor(pieces[rank][0]).dtype)
    work = dist.reduce_scatter(out, [gf.tensor(p) for p in pieces[rank]], async_op=True)
    work.wait()
    close(out, sum(pieces[r][rank] for r in range(size)).astype(dtype))


def _ring(rank: int, size: int, everyone: List[np.ndarray], transpose: bool) -> None:
    """Each rank sends its input to the next and receives the previous one's."""
    right, left = (rank + 1) % size, (rank - 1) % size
    got = as_tensor(np.zeros_like(everyone[rank]), transpose)
    receiving = dist.irecv(got, src=None if rank % 2 else left)
    dist.send(as_tensor(everyone[rank], transpose), right)
    receiving.wait()
    assert receiving.source_rank() == left
    close(got, everyone[left])


@job
def errors(rank: int, size: int) -> None:
    """Bad arguments raise clear errors before anything is sent."""
    checks = [
        (lambda: dist.all_reduce(gf.ones(2, dtype=gf.int64), dist.ReduceOp.AVG), TypeError,
         "ReduceOp.AVG needs a floating-point tensor"),
        (lambda: dist.all_reduce(gf.ones(2), "sum"), TypeError, "op must be a ReduceOp"),
        (lambda: dist.all_reduce([1.0]), TypeError, "tensor must be a Tensor"),
        (lambda: dist.broadcast(gf.ones(2), size), ValueError, "src must be a rank"),
        (lambda: dist.all_gather([gf.ones(2)] * (size + 1), gf.ones(2)), ValueError,
         "one tensor per rank"),
        (lambda: dist.all_gather([gf.ones(3)] * size, gf.ones(2)), ValueError, r"\(3,\)"),
        (lambda: dist.send(gf.ones(1), -1), ValueError, "dst must be a rank"),
        (lambda: dist.init_process_group("mpi"), RuntimeError, "twice"),
        (lambda: DDP(nn.Linear(2, 2), bucket_cap_mb=0), ValueError, "bucket_cap_mb"),
    ]
    import re
    for fn, kind, message in checks:
        try:
            fn()
        except kind as exc:
            assert re.search(message, str(exc)), (message, str(exc))
        else:
            raise AssertionError(f"no {kind.__name__} for {message}")
    _timeout(rank)
    dist.destroy_process_group()
    try:
        dist.get_rank()
    except RuntimeError as exc:
        assert "has not been initialized" in str(exc)
    else:
        raise AssertionError("get_rank without a process group")
    try:
        dist.init_process_group("mpi", world_size=size + 1)
    except ValueError as exc:
        assert f"world_size={size + 1} but MPI says {size}" in str(exc)
    else:
        raise AssertionError("init_process_group with a wrong world_size")
    dist.init_process_group("mpi")


def _timeout(rank: int) -> None:
    """A wait that outlives its timeout raises, naming the op and the rank; the message
    then arrives and the same Work completes."""
    import datetime

    if rank == 0:
        got = gf.zeros(2)
        work = dist.irecv(got, src=1, tag=7)
        try:
            work.wait(timeout=datetime.timedelta(seconds=0.2))
        except RuntimeError as exc:
            assert "recv: timed out after 0.2 s on rank 0" in str(exc), str(exc)
        else:
            raise AssertionError("no timeout")
        dist.barrier()
        work.wait()
        assert got.tolist() == [7.0, 7.0] and work.source_rank() == 1
    else:
        dist.barrier()  # only once rank 0 has timed out
        if rank == 1:
            dist.send(gf.full((2,), 7.0), 0, tag=7)


@job
def fail(rank: int, size: int) -> None:
    """Rank 1 raises while the others wait in a collective: mpiexec must end non-zero."""
    if rank == 1:
        raise ValueError("rank 1 fails on purpose")
    dist.all_reduce(gf.ones(3))


class LeNet5(nn.Module):
    """LeNet-5 on 1x28x28 input: conv 5x5 (6), avg-pool, conv 5x5 (16), avg-pool,
    120-84-10 with tanh."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 6, 5), nn.Conv2d(6, 16, 5)
        self.fc1, self.fc2, self.fc3 = nn.Linear(256, 120), nn.Linear(120, 84), nn.Linear(84, 10)

    def forward(self, x: gf.Tensor) -> gf.Tensor:
        x = F.avg_pool2d(gf.tanh(self.conv1(x)), 2)
        x = F.avg_pool2d(gf.tanh(self.conv2(x)), 2).flatten(1)
        return self.fc3(gf.tanh(self.fc2(gf.tanh(self.fc1(x)))))


def global_batch(step: int, n: int, shape=(1, 28, 28)):
    rng = np.random.default_rng(step)
    x = rng.standard_normal((n,) + shape)
    return gf.tensor(x, dtype=gf.float64), gf.tensor(rng.integers(0, 10, n))


def built(make: Callable[[], nn.Module], seed: int) -> nn.Module:
    gf.manual_seed(seed)
    return make().to(gf.float64)


def train(model: nn.Module, steps: int, batches: Callable[[int], list], sync=None) -> None:
    """SGD with momentum; each step sums the backward of every (x, y) of batches(step), all
    but the last inside sync() (DDP's no_sync) when given."""
    opt = gf.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for step in range(steps):
        opt.zero_grad()
        parts = batches(step)
        for i, (x, y) in enumerate(parts):
            inside = sync() if sync is not None and i < len(parts) - 1 else _nothing()
            with inside:
                F.cross_entropy(model(x), y).backward()
        opt.step()


class _nothing:
    def __enter__(self): return self
    def __exit__(self, *exc): return False


def same_parameters(model: nn.Module, reference: nn.Module, tol: float = 1e-10) -> None:
    for (name, a), b in zip(model.state_dict().items(), reference.state_dict().values()):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=0, atol=tol, err_msg=name)


def mine(x: gf.Tensor, rank: int, size: int) -> gf.Tensor:
    n = x.shape[0] // size
    return x[rank * n:(rank + 1) * n]


@job
def ddp_lenet(rank: int, size: int) -> None:
    """20 steps of DDP, each rank on its part of a global batch of 8, from different initial
    weights (DDP copies rank 0's) = one process on the whole batch from rank 0's weights;
    then again with a tiny bucket cap (one bucket per parameter)."""
    def local(step):
        x, y = global_batch(step, 4 * size)
        return [(mine(x, rank, size), mine(y, rank, size))]

    reference = built(LeNet5, 0)
    train(reference, 20, lambda step: [global_batch(step, 4 * size)])
    for cap in (25, 1e-6):
        model = DDP(built(LeNet5, rank), bucket_cap_mb=cap)
        assert len(model._buckets) == (1 if cap == 25 else 10)
        train(model, 20, local)
        same_parameters(model.module, reference)


@job
def ddp_no_sync(rank: int, size: int) -> None:
    """Two micro-batches per step, the first inside no_sync: the same as one process running
    backward on both global micro-batches."""
    def micro(step, part):
        return global_batch(100 * step + part, 2 * size)

    reference = built(LeNet5, 0)
    train(reference, 5, lambda step: [micro(step, 0), micro(step, 1)])
    model = DDP(built(LeNet5, 0))
    train(model, 5, lambda step: [tuple(mine(t, rank, size) for t in micro(step, p))
                                  for p in (0, 1)], sync=model.no_sync)
    same_parameters(model.module, reference)


def conv_bn() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.Flatten(), nn.Linear(4 * 6 * 6, 10))


@job
def sync_batchnorm(rank: int, size: int) -> None:
    """SyncBatchNorm under DDP = BatchNorm on the global batch (outputs, parameters, running
    statistics), over 5 steps; in eval mode it uses the running statistics."""
    def local(step):
        x, y = global_batch(step, 3 * size, (3, 6, 6))
        return [(mine(x, rank, size), mine(y, rank, size))]

    reference = built(conv_bn, 0)
    train(reference, 5, lambda step: [global_batch(step, 3 * size, (3, 6, 6))])
    model = DDP(nn.SyncBatchNorm.convert_sync_batchnorm(built(conv_bn, 0)))
    assert isinstance(model.module[1], nn.SyncBatchNorm)
    train(model, 5, local)
    same_parameters(model.module, reference)
    x, _ = global_batch(99, 3 * size, (3, 6, 6))
    model.eval()
    reference.eval()
    np.testing.assert_allclose(model(mine(x, rank, size)).numpy(force=True),
                               mine(reference(x), rank, size).numpy(force=True), atol=1e-10)


class TwoHeads(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(4, 3), nn.Linear(4, 3)

    def forward(self, x: gf.Tensor, use_b: bool = False) -> gf.Tensor:
        return (self.b if use_b else self.a)(x)


@job
def ddp_options(rank: int, size: int) -> None:
    """A parameter the forward does not use: without find_unused_parameters the next forward
    says so; with it, the used ones are averaged and the unused get zero gradients."""
    x = gf.tensor(np.random.default_rng(rank).standard_normal((2, 4)))
    model = DDP(TwoHeads())
    model(x).sum().backward()
    try:
        model(x)
    except RuntimeError as exc:
        assert "find_unused_parameters=True" in str(exc)
    else:
        raise AssertionError("DDP did not notice the unused parameters")
    model = DDP(TwoHeads(), find_unused_parameters=True)
    model(x).sum().backward()
    model(x, use_b=True).sum().backward()
    everyone = [np.random.default_rng(r).standard_normal((2, 4)) for r in range(size)]
    want = np.mean([e.sum(0) for e in everyone], axis=0)
    for head in (model.module.a, model.module.b):
        np.testing.assert_allclose(head.weight.grad.numpy(), np.tile(want, (3, 1)), atol=1e-6)
        np.testing.assert_allclose(head.bias.grad.numpy(), np.full(3, 2.0), atol=1e-6)
    _buffers_and_frozen(rank)
    _rewrapped()


def _rewrapped() -> None:
    """A module wrapped again once its first wrapper is gone has only the new one's hooks."""
    import gc

    lin = nn.Linear(2, 2)
    DDP(lin)
    gc.collect()
    wrapper = DDP(lin)
    assert len(lin.weight._post_accumulate_hooks) == 1
    del wrapper
    assert not lin.weight._post_accumulate_hooks


def _buffers_and_frozen(rank: int) -> None:
    """Rank 0's buffers reach the others at every forward (unless broadcast_buffers=False);
    a frozen parameter is copied from rank 0 but gets no gradient."""
    for broadcast in (True, False):
        bn = nn.BatchNorm1d(3).eval()
        bn.bias.requires_grad_(False).fill_(float(rank))
        model = DDP(bn, broadcast_buffers=broadcast)
        assert model.module.bias.tolist() == [0.0] * 3
        bn.running_mean.fill_(float(rank))
        model(gf.ones(2, 3)).sum().backward()
        want = 0.0 if broadcast else float(rank)
        assert bn.running_mean.tolist() == [want] * 3, (broadcast, bn.running_mean.tolist())
        assert bn.bias.grad is None and bn.weight.grad is not None


def main() -> None:
    name = sys.argv[1]
    dist.init_process_group("mpi")
    rank, size = dist.get_rank(), dist.get_world_size()
    JOBS[name](rank, size)
    print(f"ok {name} {rank}/{size}", flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
