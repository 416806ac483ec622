"""Normalisation layers: BatchNorm1d/2d, LayerNorm, GroupNorm, InstanceNorm2d."""

from __future__ import annotations

import numbers
from typing import Optional, Sequence, Union

from gradflow.nn import functional as F
from gradflow.nn import init
from gradflow.nn.module import Module
from gradflow.nn.parameter import layer_tensor
from gradflow.ops.common import as_bool, as_float, as_size
from gradflow.tensor import Tensor, ones, tensor, zeros
from gradflow.types import int64

__all__ = ["BatchNorm1d", "BatchNorm2d", "GroupNorm", "InstanceNorm2d", "LayerNorm"]


def _affine_params(m: Module, shape: tuple, affine: bool, bias: bool, device, dtype) -> None:
    """Register weight (ones) and bias (zeros; None with bias=False) of `shape`, or None for
    both."""
    name = type(m).__name__
    affine, bias = as_bool(affine, name, "affine"), as_bool(bias, name, "bias")
    m.register_parameter("weight", layer_tensor(name, shape, device, dtype, ones)
                         if affine else None)
    m.register_parameter("bias", layer_tensor(name, shape, device, dtype, zeros)
                         if affine and bias else None)


def _check_eps_momentum(name: str, eps, momentum) -> None:
    as_float(eps, name, "eps")
    if momentum is not None:
        as_float(momentum, name, "momentum")


def _reset_affine(m: Module) -> None:
    if m.weight is not None:
        init.ones_(m.weight)
    if m.bias is not None:
        init.zeros_(m.bias)


class _NormBase(Module):
    """Per-channel affine weight (ones) and bias (zeros), and the running statistics buffers
    running_mean (zeros), running_var (ones) and num_batches_tracked when tracked."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: Optional[float] = 0.1,
                 affine: bool = True, track_running_stats: bool = True, device=None,
                 dtype=None, *, bias: bool = True) -> None:
        super().__init__()
        name = type(self).__name__
        self.num_features = num_features = as_size(num_features, name, "num_features")
        _check_eps_momentum(name, eps, momentum)
        self.eps = eps
        self.momentum = momentum
        self.affine = affine = as_bool(affine, name, "affine")
        self.track_running_stats = track_running_stats = as_bool(track_running_stats, name,
                                                                 "track_running_stats")
        _affine_params(self, (num_features,), affine, bias, device, dtype)
        if track_running_stats:
            self.register_buffer("running_mean", layer_tensor(name, (num_features,), device, dtype,
                                                              zeros, parameter=False))
            self.register_buffer("running_var", layer_tensor(name, (num_features,), device, dtype,
                                                             ones, parameter=False))
            self.register_buffer("num_batches_tracked", tensor(0, dtype=int64, device=device))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            init.zeros_(self.running_mean)
            init.ones_(self.running_var)
            init.zeros_(self.num_batches_tracked)

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        _reset_affine(self)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, bias={self.bias is not None}, "
                f"track_running_stats={self.track_running_stats}")


class _BatchNorm(_NormBase):
    """Training: normalise by the batch statistics and move the running ones by momentum
    (momentum=None: cumulative average, factor 1/num_batches_tracked). Eval (with tracked
    statistics): normalise by the running statistics."""

    def _check_input_dim(self, input: Tensor) -> None:
        raise NotImplementedError

    def _running_factor(self) -> float:
        """f of running = (1 - f) * running + f * batch for this batch (counting it first)."""
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:
                factor = 1.0 / float(self.num_batches_tracked.item())
        return factor

    def forward(self, input: Tensor) -> Tensor:
        self._check_input_dim(input)
        factor = self._running_factor()
        use_batch_stats = self.training or (self.running_mean is None
                                            and self.running_var is None)
        keep_stats = not self.training or self.track_running_stats
        return F.batch_norm(input, self.running_mean if keep_stats else None,
                            self.running_var if keep_stats else None, self.weight, self.bias,
                            use_batch_stats, factor, self.eps)


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, C) or (N, C, L) input.

    >>> bn = nn.BatchNorm1d(2)
    >>> bn(gf.tensor([[1.0, 0.0], [3.0, 4.0]]))
    tensor([[-1.0000, -1.0000],
            [ 1.0000,  1.0000]], grad_fn=<NormTrainBackward>)
    >>> bn.running_mean
    tensor([0.2000, 0.2000])
    """

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() not in (2, 3):
            raise ValueError(f"BatchNorm1d: expected 2D or 3D input (got {input.dim()}D input)")


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of (N, C, H, W) input.

    >>> nn.BatchNorm2d(3)(gf.ones(2, 3, 4, 4)).shape
    gradflow.Size([2, 3, 4, 4])
    """

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() != 4:
            raise ValueError(f"BatchNorm2d: expected 4D input (got {input.dim()}D input)")


class InstanceNorm2d(_NormBase):
    """Normalise each (sample, channel) plane of (N, C, H, W) or (C, H, W) input; affine and
    running statistics are off by default.

    >>> nn.InstanceNorm2d(1)(gf.tensor([[[[1.0, 3.0]]]]))
    tensor([[[[-1.0000,  1.0000]]]])
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: Optional[float] = 0.1,
                 affine: bool = False, track_running_stats: bool = False, device=None,
                 dtype=None, *, bias: bool = True) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device,
                         dtype, bias=bias)

    def forward(self, input: Tensor) -> Tensor:
        if input.dim() not in (3, 4):
            raise ValueError(f"InstanceNorm2d: expected 3D or 4D input (got {input.dim()}D "
                             "input)")
        if input.dim() == 3:
            return self.forward(input.unsqueeze(0)).squeeze(0)
        return F.instance_norm(input, self.running_mean, self.running_var, self.weight,
                               self.bias, self.training or not self.track_running_stats,
                               self.momentum if self.momentum is not None else 0.0, self.eps)


class LayerNorm(Module):
    """Normalise over the trailing normalized_shape dims; weight ones, bias zeros.

    >>> nn.LayerNorm(2)(gf.tensor([[1.0, 3.0]]))
    tensor([[-1.0000,  1.0000]], grad_fn=<AddBackward>)
    """

    def __init__(self, normalized_shape: Union[int, Sequence[int]], eps: float = 1e-5,
                 elementwise_affine: bool = True, bias: bool = True, device=None,
                 dtype=None) -> None:
        super().__init__()
        if isinstance(normalized_shape, numbers.Integral):
            normalized_shape = (normalized_shape,)
        if not isinstance(normalized_shape, (tuple, list)):
            raise TypeError(f"LayerNorm: normalized_shape must be an int or a sequence of ints, "
                            f"got {type(normalized_shape).__name__}")
        self.normalized_shape = tuple(as_size(n, "LayerNorm", "normalized_shape")
                                      for n in normalized_shape)
        _check_eps_momentum("LayerNorm", eps, None)
        self.eps = eps
        self.elementwise_affine = as_bool(elementwise_affine, "LayerNorm", "elementwise_affine")
        _affine_params(self, self.normalized_shape, self.elementwise_affine, bias, device, dtype)

    def forward(self, input: Tensor) -> Tensor:
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}")


class GroupNorm(Module):
    """Normalise each group of num_channels/num_groups channels per sample; weight ones,
    bias zeros (per channel).

    >>> nn.GroupNorm(2, 4)(gf.arange(8.0).reshape(1, 4, 2))
    tensor([[[-1.3416, -0.4472],
             [ 0.4472,  1.3416],
             [-1.3416, -0.4472],
             [ 0.4472,  1.3416]]], grad_fn=<AddBackward>)
    """

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5,
                 affine: bool = True, device=None, dtype=None, *, bias: bool = True) -> None:
        super().__init__()
        num_groups = as_size(num_groups, "GroupNorm", "num_groups", minimum=1)
        num_channels = as_size(num_channels, "GroupNorm", "num_channels")
        _check_eps_momentum("GroupNorm", eps, None)
        if num_channels % num_groups != 0:
            raise ValueError(f"GroupNorm: num_channels ({num_channels}) must be divisible by "
                             f"num_groups ({num_groups})")
        self.num_groups = num_groups
        self.num_channels = num_channels
        self.eps = eps
        self.affine = affine
        _affine_params(self, (num_channels,), affine, bias, device, dtype)

    def forward(self, input: Tensor) -> Tensor:
        return F.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
                f"bias={self.bias is not None}")
