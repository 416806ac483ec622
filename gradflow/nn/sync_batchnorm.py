"""SyncBatchNorm: batch normalisation with the statistics of the global batch, that is of
every process's batch together (PyTorch's torch.nn.SyncBatchNorm)."""

from __future__ import annotations

from typing import Optional

from gradflow import distributed as dist
from gradflow.autograd.grad_mode import no_grad
from gradflow.distributed import functional as dist_fn
from gradflow.distributed.process_group import _group
from gradflow.nn.module import Module
from gradflow.nn.normalization import _BatchNorm
from gradflow.ops.shape import cat
from gradflow.tensor import Tensor, full

__all__ = ["SyncBatchNorm"]


class SyncBatchNorm(_BatchNorm):
    """BatchNorm over (N, C, *) input whose training statistics come from all ranks.

    Per channel, with n the number of values on all ranks together,
    mean = (sum over ranks of sum x) / n and var = (sum over ranks of sum (x - mean)^2) / n,
    each sum an all-reduce that autograd differentiates through (backward all-reduces the
    gradients of the sums), so the output and every gradient equal BatchNorm's on the global
    batch. Eval mode, or a single process, is plain BatchNorm.

    >>> model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    >>> nn.SyncBatchNorm.convert_sync_batchnorm(model)[1]
    SyncBatchNorm(4, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: Optional[float] = 0.1,
                 affine: bool = True, track_running_stats: bool = True, process_group=None,
                 device=None, dtype=None, *, bias: bool = True) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device,
                         dtype, bias=bias)
        self.process_group = process_group

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"SyncBatchNorm: expected at least 2D input (got {input.dim()}D "
                             "input)")

    def _group(self):
        if self.process_group is not None or not dist.is_initialized():
            return self.process_group
        return _group("SyncBatchNorm")

    def forward(self, input: Tensor) -> Tensor:
        group = self._group()
        if not self.training or group is None or group.size == 1:
            return super().forward(input)
        self._check_input_dim(input)
        c = input.shape[1]
        dims = tuple(d for d in range(input.dim()) if d != 1)
        shape = (1, c) + (1,) * (input.dim() - 2)
        count = full((1,), input.numel() // c if c else 0, dtype=input.dtype,
                     device=input.device)
        totals = dist_fn.all_reduce(cat([input.sum(dims), count]), group)
        n = float(totals[c].item())
        if n <= 1:
            raise ValueError(f"SyncBatchNorm: Expected more than 1 value per channel when "
                             f"training, got input size {tuple(input.shape)} on all ranks")
        mean = totals[:c] / n
        centred = input - mean.reshape(shape)
        var = dist_fn.all_reduce((centred * centred).sum(dims), group) / n
        out = centred * (var + self.eps).rsqrt().reshape(shape)
        if self.weight is not None:
            out = out * self.weight.reshape(shape)
        if self.bias is not None:
            out = out + self.bias.reshape(shape)
        factor = self._running_factor()
        if self.track_running_stats:
            with no_grad():
                self.running_mean.mul_(1 - factor).add_(mean.detach() * factor)
                self.running_var.mul_(1 - factor).add_(var.detach() * (n / (n - 1) * factor))
        return out

    @classmethod
    def convert_sync_batchnorm(cls, module: Module, process_group=None) -> Module:
        """`module` with every BatchNorm layer replaced by a SyncBatchNorm that shares its
        parameters and buffers (the module itself when it is a BatchNorm)."""
        out = module
        if isinstance(module, _BatchNorm) and not isinstance(module, SyncBatchNorm):
            out = cls(module.num_features, module.eps, module.momentum, module.affine,
                      module.track_running_stats, process_group, bias=module.bias is not None)
            for name in ("weight", "bias"):
                setattr(out, name, getattr(module, name))
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                setattr(out, name, getattr(module, name))
            out.train(module.training)
        for name, child in module.named_children():
            out.add_module(name, cls.convert_sync_batchnorm(child, process_group))
        return out
