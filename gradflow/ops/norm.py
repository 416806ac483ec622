"""Normalisation: batch_norm, layer_norm, group_norm, instance_norm, as torch.nn.functional.

All four run on one fused native kernel pair that normalises x (N, C, L) per channel c over
(N, L) -- mean, biased variance, y = (x - mean) / sqrt(var + eps) -- by viewing the input as
that shape:

    batch_norm     (N, C, *)  -> (N, C, L)           statistics per channel
    layer_norm     (*, D...)  -> (1, rows, D)         statistics per row
    group_norm     (N, C, *)  -> (1, N*groups, C/groups * L)
    instance_norm  (N, C, *)  -> (1, N*C, L)

batch_norm applies weight/bias inside the kernel; the others apply their affine with two
broadcast Tensor ops (their weight is per channel or per element, not per kernel row). The
backward is the fused native kernel; under create_graph=True it is instead written in Tensor
ops (recomputing the statistics from x), so second derivatives are exact.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Optional, Sequence, Tuple, Union

from gradflow.autograd.function import Context, Function, Gradients
from gradflow.autograd.grad_mode import is_grad_enabled
from gradflow.backends.base import Backend
from gradflow.ops import elementwise, reduce, shape
from gradflow.ops.common import as_bool, as_float, as_size
from gradflow.ops.conv import check_float, check_same
from gradflow.tensor import Tensor


def _data(t: Optional[Tensor]) -> Any:
    return None if t is None else t._data


def _flat(be: Backend, a: Any, size: Sequence[int]) -> Any:
    """An (N, C, *) backend array seen as (N, C, L): the layout the batch-norm kernels take."""
    return be.reshape(a, (size[0], size[1], math.prod(size[2:])))


class NormTrain(Function[Tuple[Tensor, Tensor, Tensor]]):
    """(y, mean, biased var) of x (N, C, *) normalised with its own per-channel statistics,
    y = (x - mean) * invstd * w + b (w, b (C,) or None). y has x's shape and is a new tensor,
    not a view, so in-place ops on it (``out += identity``) are allowed."""

    @staticmethod
    def forward(ctx: Context, x: Tensor, w: Optional[Tensor], b: Optional[Tensor], eps: float
                ) -> Tuple[Any, Tensor, Tensor]:
        be = x._backend
        y, mean, var, invstd = be.batch_norm_train(_flat(be, x._data, x.shape), _data(w),
                                                   _data(b), eps)
        ctx.save_for_backward(x, w)
        ctx.mean, ctx.invstd, ctx.eps = mean, invstd, eps
        mean_t, var_t = Tensor._make(mean, be), Tensor._make(var, be)
        ctx.mark_non_differentiable(mean_t, var_t)
        return be.reshape(y, x.shape), mean_t, var_t

    @staticmethod
    def backward(ctx: Context, gy: Tensor, _gmean: Optional[Tensor], _gvar: Optional[Tensor]
                 ) -> Tuple[Any, ...]:
        x, w = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        if is_grad_enabled():  # create_graph=True: a differentiable formula
            n, c = x.shape[0], x.shape[1]
            gx, gw, gb = _norm_backward_composed(shape.reshape(x, (n, c, -1)), w,
                                                 shape.reshape(gy, (n, c, -1)), ctx.eps)
            return (shape.reshape(gx, x.shape) if need_x else None, gw if need_w else None,
                    gb if need_b else None, None)
        be = x._backend
        gx, gw, gb = be.batch_norm_backward(
            _flat(be, x._data, x.shape), _flat(be, gy._data, x.shape), ctx.mean, ctx.invstd,
            _data(w), True, (need_x, need_w, need_b))
        return (None if gx is None else be.reshape(gx, x.shape)), gw, gb, None


def _channel_mean(t: Tensor) -> Tensor:
    """The mean of t (N, C, L) per channel, over N and L, as (1, C, 1)."""
    return reduce.mean(t, (0, 2), keepdim=True)


def _norm_backward_composed(x: Tensor, w: Optional[Tensor], gy: Tensor, eps: float
                            ) -> Tuple[Tensor, Tensor, Tensor]:
    """The training-mode gradients in Tensor ops for x (N, C, L), statistics recomputed from
    x: gx = invstd * (h - mean(h) - xhat * mean(h * xhat)) with h = gy * w."""
    c = x.shape[1]
    xc = x - _channel_mean(x)
    invstd = elementwise.rsqrt(_channel_mean(xc * xc) + eps)
    xhat = xc * invstd
    h = gy if w is None else gy * shape.reshape(w, (1, c, 1))
    gx = invstd * (h - _channel_mean(h) - xhat * _channel_mean(h * xhat))
    return gx, reduce.sum(gy * xhat, (0, 2)), reduce.sum(gy, (0, 2))


class NormEval(Function[Tensor]):
    """y = (x - mean) * invstd * w + b with fixed statistics (mean, invstd backend arrays);
    x (N, C, *), y a new tensor of x's shape."""

    @staticmethod
    def forward(ctx: Context, x: Tensor, w: Optional[Tensor], b: Optional[Tensor], mean: Any,
                invstd: Any) -> Any:
        ctx.save_for_backward(x, w)
        ctx.mean, ctx.invstd = mean, invstd
        be = x._backend
        y = be.batch_norm_apply(_flat(be, x._data, x.shape), mean, invstd, _data(w), _data(b))
        return be.reshape(y, x.shape)

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> Gradients:
        # Linear in x: written in Tensor ops, so it is differentiable again.
        x, w = ctx.saved_tensors
        be, c = x._backend, x.shape[1]
        per_channel = (1, c) + (1,) * (x.ndim - 2)
        mean = Tensor._make(be.reshape(ctx.mean, per_channel), be)
        invstd = Tensor._make(be.reshape(ctx.invstd, per_channel), be)
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        gx = None
        if need_x:
            gx = gy * (invstd if w is None else invstd * shape.reshape(w, per_channel))
        dims = (0,) + tuple(range(2, x.ndim))
        gw = reduce.sum(gy * ((x - mean) * invstd), dims) if need_w else None
        gb = reduce.sum(gy, dims) if need_b else None
        return gx, gw, gb, None, None


# ---------------------------------------------------------------- helpers
def _check_eps(op: str, eps: float) -> float:
    value = as_float(eps, op, "eps")
    if not value >= 0:
        raise ValueError(f"{op}: eps must be >= 0, got {value}")
    return value


def _check_vec(op: str, x: Tensor, name: str, t: Optional[Tensor], n: int) -> None:
    check_same(op, x, name, t)
    if t is not None and tuple(t.shape) != (n,):
        raise ValueError(
            f"{op}: {name} must have shape ({n},) for input of shape {tuple(x.shape)}, got "
            f"{tuple(t.shape)}"
        )


def _update_running_(running: Tensor, stat: Any, factor: float) -> None:
    """running = (1 - factor) * running + factor * stat, in place (a buffer, no graph)."""
    be = running._backend
    be.binary_("mul", running._data, 1.0 - factor)
    be.binary_("add", running._data, be.binary("mul", stat, factor))
    running._version[0] += 1


def _affine(y: Tensor, weight: Optional[Tensor], bias: Optional[Tensor],
            param_shape: Tuple[int, ...]) -> Tensor:
    """y * weight + bias, the parameters viewed as param_shape to broadcast against y."""
    if weight is not None:
        y = y * shape.reshape(weight, param_shape)
    if bias is not None:
        y = y + shape.reshape(bias, param_shape)
    return y


# ---------------------------------------------------------------- public API
def batch_norm(
    input: Tensor,
    running_mean: Optional[Tensor],
    running_var: Optional[Tensor],
    weight: Optional[Tensor] = None,
    bias: Optional[Tensor] = None,
    training: bool = False,
    momentum: Optional[float] = 0.1,
    eps: float = 1e-5,
    *,
    num_batches_tracked: Optional[int] = None,
) -> Tensor:
    """Batch normalisation over (N, C, *) input, as torch.nn.functional.batch_norm.

    training: y = (x - mean_B) / sqrt(var_B + eps) * weight + bias with the batch's per-channel
    mean and biased variance over (N, *); the running statistics (when given) are updated in
    place: running = (1 - f) * running + f * stat, using the unbiased variance. f = momentum,
    or, for momentum=None (cumulative average), 1 / num_batches_tracked -- BatchNorm passes its
    counter (already incremented for this batch), as PyTorch's module does.
    eval: the running statistics normalise instead.

    >>> import gradflow as gf
    >>> x = gf.tensor([[1.0, 10.0], [3.0, 30.0]])
    >>> mean, var = gf.zeros(2), gf.ones(2)
    >>> gf.nn.functional.batch_norm(x, mean, var, training=True)
    tensor([[-1.0000, -1.0000],
            [ 1.0000,  1.0000]])
    >>> mean
    tensor([0.2000, 2.0000])
    """
    op = "batch_norm"
    check_float(op, "input", input)
    if input.ndim < 2:
        raise ValueError(f"{op}: expected at least 2-D input (N, C, ...), got {tuple(input.shape)}")
    c = input.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        _check_vec(op, input, name, t, c)
    eps = _check_eps(op, eps)
    if momentum is not None:
        as_float(momentum, op, "momentum")
    if as_bool(training, op, "training"):
        return _batch_norm_train(input, running_mean, running_var, weight, bias, momentum, eps,
                                 num_batches_tracked)
    if running_mean is None or running_var is None:
        raise ValueError(f"{op}: running_mean and running_var are required when not training")
    be = input._backend
    invstd = be.unary("rsqrt", be.binary("add", running_var._data, float(eps)))
    return NormEval.apply(input, weight, bias, running_mean._data, invstd)


def _batch_norm_train(input: Tensor, running_mean: Optional[Tensor],
                      running_var: Optional[Tensor], weight: Optional[Tensor],
                      bias: Optional[Tensor], momentum: Optional[float], eps: float,
                      num_batches_tracked: Optional[int]) -> Tensor:
    """batch_norm in training: normalise by the batch's statistics and fold them into the
    running ones (the variance unbiased, times count / (count - 1))."""
    op = "batch_norm"
    c = input.shape[1]
    count = input.numel() // c if c else 0
    if count <= 1:
        raise ValueError(
            f"{op}: expected more than 1 value per channel when training, got input size "
            f"{tuple(input.shape)}"
        )
    factor = _running_factor(op, momentum, running_mean, num_batches_tracked)
    y, mean, var = NormTrain.apply(input, weight, bias, float(eps))
    if running_mean is not None:
        _update_running_(running_mean, mean._data, factor)
    if running_var is not None:
        be = var._backend
        _update_running_(running_var, be.binary("mul", var._data, count / (count - 1)), factor)
    return y


def _running_factor(op: str, momentum: Optional[float], running_mean: Optional[Tensor],
                    num_batches_tracked: Optional[int]) -> float:
    """The weight f of this batch's statistics in running = (1 - f) * running + f * stat:
    momentum, or 1 / num_batches_tracked for the cumulative average (momentum=None)."""
    if momentum is not None:
        return float(momentum)
    if running_mean is not None and not num_batches_tracked:
        raise ValueError(
            f"{op}: momentum=None (cumulative average) needs num_batches_tracked >= 1"
        )
    return 1.0 / num_batches_tracked if num_batches_tracked else 0.0


def layer_norm(
    input: Tensor,
    normalized_shape: Union[int, Sequence[int]],
    weight: Optional[Tensor] = None,
    bias: Optional[Tensor] = None,
    eps: float = 1e-5,
) -> Tensor:
    """y = (x - mean) / sqrt(var + eps) * weight + bias, statistics over the trailing
    dimensions normalized_shape (biased variance), weight/bias of shape normalized_shape.

    >>> import gradflow as gf
    >>> gf.nn.functional.layer_norm(gf.tensor([[1.0, 3.0], [2.0, 2.0]]), (2,))
    tensor([[-1.0000,  1.0000],
            [ 0.0000,  0.0000]])
    """
    op = "layer_norm"
    check_float(op, "input", input)
    if isinstance(normalized_shape, numbers.Integral):
        normalized_shape = (int(normalized_shape),)
    if not isinstance(normalized_shape, (tuple, list)):
        raise TypeError(f"{op}: normalized_shape must be an int or a sequence of ints, got "
                        f"{type(normalized_shape).__name__}")
    normalized = tuple(as_size(s, op, "normalized_shape") for s in normalized_shape)
    eps = _check_eps(op, eps)
    k = len(normalized)
    if k == 0 or k > input.ndim or tuple(input.shape[input.ndim - k:]) != normalized:
        raise ValueError(
            f"{op}: normalized_shape {normalized} does not match the trailing dimensions of input "
            f"{tuple(input.shape)}"
        )
    for name, t in (("weight", weight), ("bias", bias)):
        check_same(op, input, name, t)
        if t is not None and tuple(t.shape) != normalized:
            raise ValueError(f"{op}: {name} must have shape {normalized}, got {tuple(t.shape)}")
    d = 1
    for s in normalized:
        d *= s
    if d == 0 or input.numel() == 0:
        raise ValueError(f"{op}: input {tuple(input.shape)} has a zero-size dimension")
    y, _, _ = NormTrain.apply(shape.reshape(input, (1, input.numel() // d, d)), None, None, eps)
    return _affine(shape.reshape(y, input.shape), weight, bias, normalized)


def group_norm(
    input: Tensor,
    num_groups: int,
    weight: Optional[Tensor] = None,
    bias: Optional[Tensor] = None,
    eps: float = 1e-5,
) -> Tensor:
    """Normalise each group of C/num_groups channels of each sample (statistics over those
    channels and all positions), then weight/bias per channel.

    >>> import gradflow as gf
    >>> x = gf.tensor([[1.0, 3.0, 5.0, 7.0]]).reshape(1, 4, 1)
    >>> gf.nn.functional.group_norm(x, 2).flatten()
    tensor([-1.0000,  1.0000, -1.0000,  1.0000])
    """
    op = "group_norm"
    check_float(op, "input", input)
    if input.ndim < 2:
        raise ValueError(f"{op}: expected at least 2-D input (N, C, ...), got {tuple(input.shape)}")
    n, c = input.shape[0], input.shape[1]
    num_groups = as_size(num_groups, op, "num_groups", minimum=1)
    if c % num_groups:
        raise ValueError(
            f"{op}: expected number of channels in input ({c}) to be divisible by num_groups, "
            f"got num_groups={num_groups!r}"
        )
    for name, t in (("weight", weight), ("bias", bias)):
        _check_vec(op, input, name, t, c)
    eps = _check_eps(op, eps)
    if input.numel() == 0:
        raise ValueError(f"{op}: input {tuple(input.shape)} has a zero-size dimension")
    group = input.numel() // (n * num_groups)
    y, _, _ = NormTrain.apply(shape.reshape(input, (1, n * num_groups, group)), None, None, eps)
    per_channel = (1, c) + (1,) * (input.ndim - 2)
    return _affine(shape.reshape(y, input.shape), weight, bias, per_channel)


def instance_norm(
    input: Tensor,
    running_mean: Optional[Tensor] = None,
    running_var: Optional[Tensor] = None,
    weight: Optional[Tensor] = None,
    bias: Optional[Tensor] = None,
    use_input_stats: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Normalise each (sample, channel) plane over its positions, then weight/bias per channel.
    With use_input_stats the running statistics (if given) move towards the mean over the batch
    of the per-instance mean and unbiased variance; without it they normalise instead.

    >>> import gradflow as gf
    >>> gf.nn.functional.instance_norm(gf.tensor([[[1.0, 3.0]]]))
    tensor([[[-1.0000,  1.0000]]])
    """
    op = "instance_norm"
    check_float(op, "input", input)
    if input.ndim < 3:
        raise ValueError(f"{op}: expected at least 3-D input (N, C, L, ...), got "
                         f"{tuple(input.shape)}")
    n, c = input.shape[0], input.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        _check_vec(op, input, name, t, c)
    per_channel = (1, c) + (1,) * (input.ndim - 2)
    eps = _check_eps(op, eps)
    momentum = as_float(momentum, op, "momentum")
    if not as_bool(use_input_stats, op, "use_input_stats"):
        return batch_norm(input, running_mean, running_var, weight, bias, False, momentum, eps)
    length = input.numel() // max(n * c, 1)
    if length <= 1:
        raise ValueError(
            f"{op}: expected more than 1 spatial element when training, got input size "
            f"{tuple(input.shape)}"
        )
    y, mean, var = NormTrain.apply(shape.reshape(input, (1, n * c, length)), None, None, eps)
    be = input._backend
    if running_mean is not None:
        stat = be.reduce("mean", be.reshape(mean._data, (n, c)), (0,), False)
        _update_running_(running_mean, stat, float(momentum))
    if running_var is not None:
        unbiased = be.binary("mul", be.reshape(var._data, (n, c)), length / (length - 1))
        _update_running_(running_var, be.reduce("mean", unbiased, (0,), False), float(momentum))
    return _affine(shape.reshape(y, input.shape), weight, bias, per_channel)
