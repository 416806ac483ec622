"""DistributedDataParallel: the same model on every process, each on its part of the batch,
gradients averaged over the processes during backward.

Gradients are laid end to end in buckets (flat tensors of at most bucket_cap_mb), filled in
reverse registration order, which is about the order backward produces them. Each parameter's
post-accumulate hook copies its .grad into its bucket; once a bucket is full, a non-blocking
all-reduce (average) starts on it, so communication overlaps the rest of the backward. The
hook of the last parameter waits for every bucket and copies the averages back into .grad,
so backward returns with the gradients of the mean loss over all processes.

All ranks start their buckets in the same order (bucket i only after buckets 0..i-1), as MPI
needs the same collectives in the same order everywhere.
"""

from __future__ import annotations

import contextlib
import functools
import time
import weakref
from typing import Any, Dict, Iterator, List, Optional, Set, Tuple

from gradflow import distributed as dist
from gradflow.autograd.grad_mode import is_grad_enabled, no_grad
from gradflow.distributed.process_group import _group
from gradflow.nn.module import Module
from gradflow.nn.parameter import Parameter
from gradflow.ops.shape import cat
from gradflow.tensor import Tensor, tensor, zeros
from gradflow.types import device as Device
from gradflow.types import int64

_NAME = "DistributedDataParallel"
FIRST_BUCKET_BYTES = 2 ** 20


class _Bucket:
    """Some parameters' gradients end to end in one flat tensor, and the all-reduce on it."""

    def __init__(self, params: List[Parameter]) -> None:
        self.params = params
        offsets = [0]
        for p in params:
            offsets.append(offsets[-1] + p.numel())
        self.flat = zeros(offsets[-1], dtype=params[0].dtype, device=params[0].device)
        # slot i: flat[offsets[i]:offsets[i + 1]] viewed with parameter i's shape, made once
        self.slots = [self.flat[a:b].view(*p.shape)
                      for p, a, b in zip(params, offsets, offsets[1:])]
        self.ready = [False] * len(params)
        self.pending = len(params)
        self.work: Optional[dist.Work] = None

    def load(self, i: int) -> None:
        """Copy parameter i's gradient (zeros when it has none) into the bucket."""
        grad = self.params[i].grad
        with no_grad():
            if grad is None:
                self.slots[i].zero_()
            else:
                self.slots[i].copy_(grad)
        self.ready[i] = True
        self.pending -= 1

    def unload(self) -> None:
        """Wait for the all-reduce, then copy the averaged gradients into .grad."""
        self.work.wait()
        with no_grad():
            for p, avg in zip(self.params, self.slots):
                if p.grad is None:
                    p.grad = avg.clone()
                else:
                    p.grad.copy_(avg)
        self.reset()

    def reset(self) -> None:
        self.ready = [False] * len(self.params)
        self.pending = len(self.params)
        self.work = None


def _split_into_buckets(params: List[Parameter], cap_bytes: int) -> List[List[Parameter]]:
    """Reverse registration order, a new bucket whenever the next gradient would pass the cap
    or has another dtype or device (a bucket is one flat tensor). The first bucket's cap is
    at most FIRST_BUCKET_BYTES (as PyTorch's), so that communication starts early."""
    buckets: List[List[Parameter]] = []
    size = 0
    for p in reversed(params):
        nbytes = p.numel() * p.element_size()
        last = buckets[-1] if buckets else None
        cap = min(cap_bytes, FIRST_BUCKET_BYTES) if len(buckets) == 1 else cap_bytes
        if (last is None or size + nbytes > cap
                or (p.dtype, p.device) != (last[0].dtype, last[0].device)):
            buckets.append([])
            size = 0
        buckets[-1].append(p)
        size += nbytes
    return buckets


def _broadcast_coalesced(tensors: List[Tensor], group) -> None:
    """Rank 0's values of `tensors` on every rank: one broadcast per dtype and device."""
    groups: Dict[Tuple[Any, Any], List[Tensor]] = {}
    for t in tensors:
        groups.setdefault((t.dtype, t.device), []).append(t)
    for ts in groups.values():
        flat = cat([t.detach().reshape(-1) for t in ts])
        dist.broadcast(flat, 0, group)
        offset = 0
        with no_grad():
            for t in ts:
                t.copy_(flat[offset:offset + t.numel()].view(*t.shape))
                offset += t.numel()


def _tensors_in(value) -> Iterator[Tensor]:
    """The tensors in a module's output (a tensor, or lists, tuples and dicts of them)."""
    if isinstance(value, Tensor):
        yield value
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _tensors_in(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _tensors_in(v)


def _leaves_reached(output) -> Set[int]:
    """id() of every leaf tensor a backward from `output` would reach."""
    leaves: Set[int] = set()
    stack = []
    for t in _tensors_in(output):
        if t._ctx is None:
            leaves.add(id(t))
        else:
            stack.append(t._ctx)
    seen = set(stack)
    while stack:
        for edge in stack.pop()._edges:
            if isinstance(edge, tuple):
                if edge[0] not in seen:
                    seen.add(edge[0])
                    stack.append(edge[0])
            elif edge is not None:
                leaves.add(id(edge))
    return leaves


def _grad_ready_hook(ddp: "weakref.ref[DistributedDataParallel]", b: int, i: int,
                     param: Parameter) -> None:
    wrapper = ddp()
    if wrapper is not None:
        wrapper._grad_ready(b, i)


class DistributedDataParallel(Module):
    """Wrap `module` for data-parallel training over the process group (PyTorch's DDP).

    At construction rank 0's parameters and buffers are copied to every rank. Each forward
    first broadcasts rank 0's buffers (broadcast_buffers=True: BatchNorm's running
    statistics), and each backward ends with every parameter's .grad averaged over the ranks.
    Inside `no_sync()` gradients only accumulate locally; the first backward after it
    averages the accumulated sums. With find_unused_parameters=True, parameters that the
    forward's output does not depend on count as ready with the .grad they already have
    (zeros when none); without it, such a parameter leaves its bucket waiting and the next
    forward raises. The hooks on the parameters go away with the wrapper.

    Under ``mpiexec -n 2`` (skipped as a doctest, which has no launcher):

    >>> import gradflow.distributed as dist
    >>> from gradflow.nn.parallel import DistributedDataParallel as DDP
    >>> dist.init_process_group("mpi")  # doctest: +SKIP
    >>> model = DDP(nn.Linear(4, 2))  # doctest: +SKIP
    >>> F.mse_loss(model(gf.ones(8, 4)), gf.zeros(8, 2)).backward()  # doctest: +SKIP
    >>> model.module.weight.grad.shape  # doctest: +SKIP
    gradflow.Size([2, 4])
    """

    def __init__(self, module: Module, device_ids=None, output_device=None,
                 broadcast_buffers: bool = True, process_group=None,
                 bucket_cap_mb: float = 25, find_unused_parameters: bool = False) -> None:
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"{_NAME}: module must be a Module, got {type(module).__name__}")
        if isinstance(bucket_cap_mb, bool) or not isinstance(bucket_cap_mb, (int, float)) \
                or not bucket_cap_mb > 0:
            raise ValueError(f"{_NAME}: bucket_cap_mb must be a positive number, got "
                             f"{bucket_cap_mb!r}")
        self.module = module
        self.process_group = process_group or _group(_NAME)
        self.broadcast_buffers = bool(broadcast_buffers)
        self.find_unused_parameters = bool(find_unused_parameters)
        self.require_backward_grad_sync = True
        params = [p for p in module.parameters() if p.requires_grad]
        self._check_devices(params, device_ids, output_device)
        self._check_same_model(params)
        if self.process_group.size > 1:
            _broadcast_coalesced(list(module.parameters()) + self._buffers_to_sync(),
                                 self.process_group)
        self._buckets = [_Bucket(b) for b in
                         _split_into_buckets(params, int(bucket_cap_mb * 2 ** 20))]
        self._next_bucket = 0  # buckets before it have started their all-reduce
        self._last_comm_wait_s = 0.0  # set by each synchronising backward (_grad_ready)
        me = weakref.ref(self)  # the hooks must not keep the wrapper alive
        self._hook_handles = [
            p.register_post_accumulate_grad_hook(functools.partial(_grad_ready_hook, me, b, i))
            for b, bucket in enumerate(self._buckets) for i, p in enumerate(bucket.params)]

    def __del__(self) -> None:
        for handle in getattr(self, "_hook_handles", ()):
            handle.remove()

    def _check_devices(self, params: List[Parameter], device_ids, output_device) -> None:
        """device_ids / output_device, as in PyTorch, name the one device the module is on."""
        devices = {p.device for p in params}
        if len(devices) > 1:
            raise ValueError(f"{_NAME}: the module's parameters are on several devices "
                             f"({sorted(map(str, devices))}); wrap a single-device module")
        named = list(device_ids or []) + ([] if output_device is None else [output_device])
        for d in named:
            if devices and Device(d) not in devices:
                raise ValueError(f"{_NAME}: device {d!r} given but the module is on "
                                 f"{next(iter(devices))}")

    def _check_same_model(self, params: List[Parameter]) -> None:
        """Every rank must bucket the same parameters, else the all-reduces would mismatch."""
        group = self.process_group
        mine = tensor([len(params), sum(p.numel() for p in params)], dtype=int64)
        everyone = [zeros(2, dtype=int64) for _ in range(group.size)]
        dist.all_gather(everyone, mine, group)
        shapes = [tuple(t.tolist()) for t in everyone]
        if len(set(shapes)) > 1:
            raise RuntimeError(f"{_NAME}: the ranks' models differ: (parameters, elements) per "
                               f"rank are {shapes}")

    def _buffers_to_sync(self) -> List[Tensor]:
        return [b for b in self.module.buffers() if b is not None]

    @contextlib.contextmanager
    def no_sync(self):
        """Backwards inside only accumulate .grad locally (no communication)."""
        previous = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = previous

    def forward(self, *inputs, **kwargs):
        if self._next_bucket or any(b.pending < len(b.params) for b in self._buckets):
            raise RuntimeError(
                f"{_NAME}: Expected to have finished reduction in the prior iteration before "
                "starting a new one: some parameters got no gradient in the last backward. "
                "Pass find_unused_parameters=True if the forward does not use every "
                "parameter, and make sure every forward output takes part in the loss.")
        if self.broadcast_buffers and self.process_group.size > 1:
            buffers = self._buffers_to_sync()
            if buffers:
                _broadcast_coalesced(buffers, self.process_group)
        output = self.module(*inputs, **kwargs)
        if self.find_unused_parameters and self.require_backward_grad_sync \
                and is_grad_enabled():
            self._mark_unused_ready(output)
        return output

    def _mark_unused_ready(self, output) -> None:
        reached = _leaves_reached(output)
        for b, bucket in enumerate(self._buckets):
            for i, p in enumerate(bucket.params):
                if id(p) not in reached:
                    self._grad_ready(b, i)

    def _grad_ready(self, b: int, i: int) -> None:
        """Parameter i of bucket b has its gradient: load it; start every bucket that is now
        full and next in line; after the last, wait for all and write the averages back."""
        if not self.require_backward_grad_sync:
            return
        bucket = self._buckets[b]
        if bucket.ready[i]:
            raise RuntimeError(
                f"{_NAME}: a parameter of shape {tuple(bucket.params[i].shape)} got its "
                "gradient twice in one iteration (backward twice, or the parameter used "
                "both inside and outside the wrapped module); call forward again in between")
        bucket.load(i)
        buckets = self._buckets
        while self._next_bucket < len(buckets) and buckets[self._next_bucket].pending == 0:
            bucket = buckets[self._next_bucket]
            bucket.work = dist.all_reduce(bucket.flat, dist.ReduceOp.AVG, self.process_group,
                                          async_op=True)
            self._next_bucket += 1
        if self._next_bucket < len(buckets):
            for started in buckets[:self._next_bucket]:
                started.work.is_completed()  # lets MPI move them on between our hooks
            return
        self._next_bucket = 0
        start = time.perf_counter()
        for bucket in buckets:
            bucket.work.wait()
        # the communication not hidden behind this rank's backward (benchmarks/ddp.py)
        self._last_comm_wait_s = time.perf_counter() - start
        for bucket in buckets:
            bucket.unload()
