"""Loss functions, as torch.nn.functional's, composed from Tensor ops (so they are
differentiable to any order and run on every device).

Every loss takes ``reduction``: 'none' (per element), 'mean' or 'sum'; the legacy
``size_average`` / ``reduce`` flags map onto it as in PyTorch. Numerically stable forms:
cross-entropy through log-softmax, BCE-with-logits through softplus, BCE with logs clamped at
-100.
"""

from __future__ import annotations

import math
from typing import Any, Optional, Tuple

from gradflow.autograd.function import Context, Function, Gradients
from gradflow.backends.base import fused
from gradflow.ops import elementwise, index, shape
from gradflow.ops import reduce as reduce_ops  # `reduce` is a legacy argument of the losses
from gradflow.ops.common import (
    as_bool,
    as_float,
    as_int,
    broadcast_shapes,
    check_choice,
    check_tensor,
)
from gradflow.tensor import Tensor

Flag = Optional[bool]  # the legacy size_average and reduce arguments


def legacy_reduction(size_average: Optional[bool], reduce: Optional[bool],
                     reduction: str) -> str:
    """The reduction that the deprecated size_average/reduce flags stand for."""
    if size_average is None and reduce is None:
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    if not reduce:
        return "none"
    return "mean" if size_average else "sum"


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "none":
        return loss
    if reduction == "mean":
        return reduce_ops.mean(loss)
    return reduce_ops.sum(loss)


def _check_args(op: str, input: Tensor, target: Tensor, reduction: str,
                reductions: Tuple[str, ...] = ("none", "mean", "sum"),
                **optional: Optional[Tensor]) -> None:
    """What every loss checks first: input a floating-point Tensor, target a Tensor, the
    optional tensors (weight, pos_weight) Tensors or None, reduction one of `reductions`."""
    check_tensor(input, op, "input")
    check_tensor(target, op, "target")
    for name, t in optional.items():
        check_tensor(t, op, name, optional=True)
    if not input.is_floating_point():
        raise TypeError(f"{op}: expected a floating-point input, got {input.dtype}")
    check_choice(reduction, op, "reduction", reductions)


def _check_broadcast(op: str, input: Tensor, **others: Optional[Tensor]) -> None:
    """Each of `others` (target, weight, ...) must broadcast against input."""
    for name, t in others.items():
        if t is not None:
            broadcast_shapes(f"{op}: {name}", input.shape, t.shape)


def _check_same_size(op: str, input: Tensor, target: Tensor) -> None:
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(
            f"{op}: Using a target size ({tuple(target.shape)}) that is different to the input "
            f"size ({tuple(input.shape)}) is not supported. Please ensure they have the same size."
        )


def _class_dim_view(weight: Tensor, ndim: int) -> Tensor:
    """(C,) -> shape broadcasting along dim 1 of an (N, C, d1, …) tensor (dim 0 if 1-D)."""
    return weight if ndim == 1 else shape.reshape(weight, (1, -1) + (1,) * (ndim - 2))


# ---------------------------------------------------------------- classification
def nll_loss(input: Tensor, target: Tensor, weight: Optional[Tensor] = None,
             size_average: Flag = None, ignore_index: int = -100, reduce: Flag = None,
             reduction: str = "mean") -> Tensor:
    """loss_i = -weight[t_i] * input[i, t_i] (0 where t_i == ignore_index). 'mean' divides the
    sum by the sum of weight[t_i] over the kept targets. input (N, C, d1, …) or (C,).

    >>> import gradflow as gf
    >>> F = gf.nn.functional
    >>> logp = gf.tensor([[-0.5, -1.0], [-2.0, -0.1]])
    >>> F.nll_loss(logp, gf.tensor([0, 1]))
    tensor(0.3000)
    """
    reduction = legacy_reduction(size_average, reduce, reduction)
    _check_args("nll_loss", input, target, reduction, weight=weight)
    return _nll("nll_loss", input, target, weight, ignore_index, reduction)


def _check_nll(op: str, input: Tensor, target: Tensor, weight: Optional[Tensor],
               ignore_index: int) -> Tuple[Tensor, Tensor, bool, int]:
    """nll_loss's argument checks: (input, target) with a batch dim, whether they had none,
    and ignore_index as an int."""
    ignore_index = as_int(ignore_index, op, "ignore_index")
    if input.ndim < 1:
        raise ValueError(f"{op}: input must have at least 1 dimension, got a scalar")
    if target.is_floating_point() or target.dtype.name == "bool":
        raise RuntimeError(f"{op}: expected target of an integer dtype (class indices), got "
                           f"{target.dtype}")
    unbatched = input.ndim == 1
    if unbatched:
        input, target = shape.unsqueeze(input, 0), shape.unsqueeze(target, 0)
    n, c = input.shape[0], input.shape[1]
    expected = (n,) + tuple(input.shape[2:])
    if tuple(target.shape) != expected:
        raise ValueError(f"{op}: expected target of shape {expected} for input of shape "
                         f"{tuple(input.shape)}, got {tuple(target.shape)}")
    if weight is not None and tuple(weight.shape) != (c,):
        raise ValueError(f"{op}: weight must have shape ({c},), got {tuple(weight.shape)}")
    if c == 0:
        raise ValueError(f"{op}: input of shape {tuple(input.shape)} has no classes (size 0 "
                         "along the class dim)")
    return input, target, unbatched, ignore_index


def _nll(op: str, input: Tensor, target: Tensor, weight: Optional[Tensor], ignore_index: int,
         reduction: str) -> Tensor:
    """nll_loss on checked arguments; errors name `op` (cross_entropy calls it too)."""
    if _fusable(input, weight):
        return _nll_fused(op, input, target, weight, ignore_index, reduction, 0.0)
    input, target, unbatched, ignore_index = _check_nll(op, input, target, weight, ignore_index)
    c = input.shape[1]
    keep = target != ignore_index
    safe = elementwise.where(keep, target, 0)
    out_of_range = elementwise.logical_or(safe < 0, safe >= c)  # 0 (a class) where ignored
    if target.numel() and bool(reduce_ops.any(out_of_range)):
        bad = target[out_of_range][0].item()
        raise IndexError(f"{op}: Target {bad} is out of bounds (classes 0..{c - 1}).")
    picked = shape.squeeze(index.gather(input, 1, shape.unsqueeze(safe, 1)), 1)
    w = shape.to_dtype(keep, input.dtype)
    if weight is not None:
        w = w * shape.to_dtype(weight, input.dtype)[safe]
    loss = -picked * w
    if reduction == "mean":
        return reduce_ops.sum(loss) / reduce_ops.sum(w)
    if unbatched and reduction == "none":
        return shape.squeeze(loss, 0)
    return _reduce(loss, reduction)


def cross_entropy(input: Tensor, target: Tensor, weight: Optional[Tensor] = None,
                  size_average: Flag = None, ignore_index: int = -100, reduce: Flag = None,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy of the softmax over dim 1 (dim 0 for 1-D input) against class indices
    (with ignore_index, weights as nll_loss) or class probabilities (same shape as input).

    label_smoothing eps mixes the target with the uniform distribution over C classes:
    indices: (1 - eps) * nll + eps / C * sum_c(-w_c log p_c), the smoothing term reduced like
    nll ('mean' divides by the summed target weights); probabilities: target becomes
    target * (1 - eps) + eps / C, and 'mean' divides by the number of samples.

    >>> import gradflow as gf
    >>> F = gf.nn.functional
    >>> F.cross_entropy(gf.zeros(2, 4), gf.tensor([0, 3]))
    tensor(1.3863)
    """
    reduction = legacy_reduction(size_average, reduce, reduction)
    op = "cross_entropy"
    _check_args(op, input, target, reduction, weight=weight)
    label_smoothing = as_float(label_smoothing, op, "label_smoothing")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{op}: label_smoothing must be between 0.0 and 1.0, got "
                         f"{label_smoothing}")
    if input.ndim < 1:
        raise ValueError(f"{op}: input must have at least 1 dimension, got a scalar")
    class_dim = 0 if input.ndim == 1 else 1
    c = input.shape[class_dim]
    if target.is_floating_point():
        _check_probabilities(op, input, target)
        if weight is not None and tuple(weight.shape) != (c,):
            raise ValueError(f"{op}: weight must have shape ({c},), got {tuple(weight.shape)}")
    logp = reduce_ops.log_softmax(input, class_dim)
    if weight is not None:
        weight = shape.to_dtype(weight, input.dtype)
    if target.is_floating_point():
        return _soft_cross_entropy(logp, target, weight, reduction, label_smoothing, class_dim)
    if _fusable(logp, weight):
        return _nll_fused(op, logp, target, weight, ignore_index, reduction, label_smoothing)
    nll = _nll(op, logp, target, weight, ignore_index, reduction)
    if label_smoothing == 0:
        return nll
    smooth = _uniform_target_loss(logp, target, weight, ignore_index, reduction, class_dim)
    return nll * (1 - label_smoothing) + smooth * (label_smoothing / c)


def _soft_cross_entropy(logp: Tensor, target: Tensor, weight: Optional[Tensor],
                        reduction: str, label_smoothing: float, class_dim: int) -> Tensor:
    """-sum_c w_c t_c log p_c against class probabilities t, smoothed to
    t (1 - eps) + eps / C; 'mean' divides by the number of samples."""
    c = logp.shape[class_dim]
    if label_smoothing > 0 and c > 0:  # (no classes: nothing to smooth, a NaN mean as PyTorch's)
        target = target * (1 - label_smoothing) + label_smoothing / c
    prod = logp * target
    if weight is not None:
        prod = prod * _class_dim_view(weight, logp.ndim)
    loss = -reduce_ops.sum(prod, class_dim)
    if reduction == "mean":
        return reduce_ops.sum(loss) / (logp.numel() // c if logp.numel() else 0)
    return _reduce(loss, reduction)


def _uniform_target_loss(logp: Tensor, target: Tensor, weight: Optional[Tensor],
                         ignore_index: int, reduction: str, class_dim: int) -> Tensor:
    """sum_c(-w_c log p_c) per kept sample: label smoothing's term, reduced like nll ('mean'
    divides by the summed target weights of the kept samples)."""
    keep = target != ignore_index
    kept = shape.to_dtype(keep, logp.dtype)
    weighted = logp if weight is None else logp * _class_dim_view(weight, logp.ndim)
    smooth = -reduce_ops.sum(weighted, class_dim) * kept
    if reduction != "mean":
        return _reduce(smooth, reduction)
    if weight is not None:
        denom = reduce_ops.sum(weight[elementwise.where(keep, target, 0)] * kept)
    else:
        denom = reduce_ops.sum(kept)
    return reduce_ops.sum(smooth) / denom


# ---------------------------------------------------------------- fused NLL (CUDA)
def _fusable(logp: Tensor, weight: Optional[Tensor]) -> bool:
    """Whether the backend's fused NLL kernels (backends/base.py FUSED_KERNELS) can compute
    the loss: the backend has them and no gradient is wanted for the class weights."""
    return (fused(logp._backend, "nll_loss") is not None and logp.is_floating_point()
            and (weight is None or not weight.requires_grad))


class _NLLTerms(Function[Tuple[Tensor, ...]]):
    """(loss, weight[, smoothing]) per position (N, S) of logp (N, C, d1, ...) for targets
    (N, d1, ...), S = d1 * ..., by the backend's fused nll_loss (see FUSED_KERNELS), which
    sees logp as (N, C, S). Linear in logp, with _NLLTermsAdjoint as its adjoint, so the pair
    is differentiable to any order; the weights are not differentiable."""

    @staticmethod
    def forward(ctx: Context, logp: Tensor, target: Tensor, weight: Optional[Tensor],
                ignore_index: int, smooth: bool) -> Tuple[Any, ...]:
        be: Any = logp._backend  # with the fused kernels, which are not in the contract
        n, c, s = _nll_dims(logp.shape)
        loss, w, smoothing = be.nll_loss(be.reshape(logp._data, (n, c, s)),
                                         be.reshape(target._data, (n, s)), _raw(weight),
                                         ignore_index, smooth)
        ctx.args = (target, weight, ignore_index, tuple(logp.shape))
        w_t = Tensor._make(w, be)
        ctx.mark_non_differentiable(w_t)
        return (loss, w_t, smoothing) if smooth else (loss, w_t)

    @staticmethod
    def backward(ctx: Context, g_loss: Tensor, _g_w: Optional[Tensor],
                 g_smooth: Optional[Tensor] = None) -> Gradients:
        return _NLLTermsAdjoint.apply(g_loss, g_smooth, *ctx.args), None, None, None, None


class _NLLTermsAdjoint(Function[Tensor]):
    """dlogp (of logp's shape) from the gradients (N, S) of _NLLTerms' loss and smoothing."""

    @staticmethod
    def forward(ctx: Context, g_loss: Tensor, g_smooth: Optional[Tensor], target: Tensor,
                weight: Optional[Tensor], ignore_index: int, logp_shape: Tuple[int, ...]
                ) -> Any:
        ctx.args = (target, weight, ignore_index, g_smooth is not None)
        be: Any = g_loss._backend  # with the fused kernels, which are not in the contract
        n, c, s = _nll_dims(logp_shape)
        dlogp = be.nll_loss_backward(g_loss._data, _raw(g_smooth),
                                     be.reshape(target._data, (n, s)), _raw(weight),
                                     ignore_index, c)
        return be.reshape(dlogp, logp_shape)

    @staticmethod
    def backward(ctx: Context, gg: Tensor) -> Gradients:
        terms = _NLLTerms.apply(gg, *ctx.args)
        return terms[0], (terms[2] if ctx.args[3] else None), None, None, None, None


def _nll_dims(logp_shape: Tuple[int, ...]) -> Tuple[int, int, int]:
    """(N, C, S) of log-probabilities (N, C, d1, ...): S = d1 * ... positions per sample."""
    return logp_shape[0], logp_shape[1], math.prod(logp_shape[2:])


def _raw(t: Optional[Tensor]) -> Any:
    return None if t is None else t._data


def _nll_fused(op: str, logp: Tensor, target: Tensor, weight: Optional[Tensor],
               ignore_index: int, reduction: str, smoothing: float) -> Tensor:
    """nll_loss (smoothing 0) or cross_entropy's class-index case on log-probabilities, in
    one kernel per direction: no one-hot matrix, no gather, and no wait for the device (on
    CUDA a target out of range is reported at the next synchronisation, as PyTorch's CUDA
    kernels do). loss = (1 - eps) * nll + eps / C * smoothing term, both reduced alike ('mean'
    divides by the summed target weights)."""
    logp, target, unbatched, ignore_index = _check_nll(op, logp, target, weight, ignore_index)
    c = logp.shape[1]
    if weight is not None:
        weight = shape.to_dtype(weight.detach(), logp.dtype)
    try:
        terms = _NLLTerms.apply(logp, target, weight, ignore_index, smoothing > 0)
    except IndexError as e:  # a target out of range, found by a host kernel
        raise IndexError(f"{op}: {e}") from None
    loss, w = terms[0], terms[1]
    if smoothing > 0:
        loss = loss * (1 - smoothing) + terms[2] * (smoothing / c)
    if reduction == "mean":
        return reduce_ops.sum(loss) / reduce_ops.sum(w)
    if reduction == "sum":
        return reduce_ops.sum(loss)
    loss = shape.reshape(loss, target.shape)
    return shape.squeeze(loss, 0) if unbatched else loss


def _check_probabilities(op: str, input: Tensor, target: Tensor) -> None:
    """A float target holds class probabilities, so it has the input's shape. A float target
    of the shape class indices would have is almost surely indices in the wrong dtype."""
    if tuple(target.shape) == tuple(input.shape):
        return
    indices_shape = (input.shape[0],) + tuple(input.shape[2:]) if input.ndim > 1 else ()
    if tuple(target.shape) == indices_shape:
        raise RuntimeError(
            f"{op}: target of shape {tuple(target.shape)} has the shape of class indices for "
            f"input of shape {tuple(input.shape)}, but its dtype is {target.dtype}; class "
            f"indices must be int64 (use target.long()), class probabilities must have the "
            f"input's shape {tuple(input.shape)}"
        )
    raise ValueError(
        f"{op}: expected target of class indices of shape {indices_shape} (int64) or of class "
        f"probabilities of the input's shape {tuple(input.shape)}, got {tuple(target.shape)} "
        f"({target.dtype})"
    )


class _BinaryCrossEntropy(Function[Tensor]):
    """-(y log x + (1 - y) log(1 - x)) with both logs clamped to >= -100; the gradient is
    PyTorch's (x - y) / max(x (1 - x), 1e-12), finite at x = 0 and x = 1."""

    @staticmethod
    def forward(ctx: Context, x: Tensor, y: Tensor) -> Tensor:
        ctx.save_for_backward(x, y)
        log_x, log_1mx = _clamped_logs(x)
        return -(y * log_x + (1 - y) * log_1mx)

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Gradients:
        x, y = ctx.saved_tensors
        gx = g * (x - y) / elementwise.clamp(x * (1 - x), min=1e-12)
        gy = None
        if ctx.needs_input_grad[1]:
            log_x, log_1mx = _clamped_logs(x)
            gy = g * (log_1mx - log_x)
        return gx, gy


def _clamped_logs(x: Tensor) -> Tuple[Tensor, Tensor]:
    """(log x, log(1 - x)), each clamped to >= -100 as PyTorch's BCE."""
    return (elementwise.clamp(elementwise.log(x), min=-100),
            elementwise.clamp(elementwise.log1p(-x), min=-100))


def binary_cross_entropy(input: Tensor, target: Tensor, weight: Optional[Tensor] = None,
                         size_average: Flag = None, reduce: Flag = None,
                         reduction: str = "mean") -> Tensor:
    """-weight * (y log x + (1 - y) log(1 - x)) for probabilities x in [0, 1].

    >>> import gradflow as gf
    >>> F = gf.nn.functional
    >>> F.binary_cross_entropy(gf.tensor([0.5, 0.5]), gf.tensor([0.0, 1.0]))
    tensor(0.6931)
    """
    reduction = legacy_reduction(size_average, reduce, reduction)
    op = "binary_cross_entropy"
    _check_args(op, input, target, reduction, weight=weight)
    _check_same_size(op, input, target)
    _check_broadcast(op, input, weight=weight)
    if input.numel() and bool(reduce_ops.any(elementwise.logical_or(input < 0, input > 1))):
        raise RuntimeError(f"{op}: all elements of input should be between 0 and 1")
    loss = _BinaryCrossEntropy.apply(input, shape.to_dtype(target, input.dtype))
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor,
                                     weight: Optional[Tensor] = None, size_average: Flag = None,
                                     reduce: Flag = None, reduction: str = "mean",
                                     pos_weight: Optional[Tensor] = None) -> Tensor:
    """BCE of sigmoid(x), stably: (1 - y) x + (1 + (pos_weight - 1) y) softplus(-x), with
    softplus never linearised (threshold inf).

    >>> import gradflow as gf
    >>> F = gf.nn.functional
    >>> F.binary_cross_entropy_with_logits(gf.zeros(2), gf.tensor([0.0, 1.0]))
    tensor(0.6931)
    """
    reduction = legacy_reduction(size_average, reduce, reduction)
    op = "binary_cross_entropy_with_logits"
    _check_args(op, input, target, reduction, weight=weight, pos_weight=pos_weight)
    _check_same_size(op, input, target)
    _check_broadcast(op, input, weight=weight, pos_weight=pos_weight)
    softplus_neg = elementwise.softplus(-input, threshold=math.inf)
    if pos_weight is not None:
        log_weight = (pos_weight - 1) * target + 1
        loss = (1 - target) * input + log_weight * softplus_neg
    else:
        loss = (1 - target) * input + softplus_neg
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def kl_div(input: Tensor, target: Tensor, size_average: Flag = None, reduce: Flag = None,
           reduction: str = "mean", log_target: bool = False) -> Tensor:
    """Pointwise KL divergence with input = log q: target * (log target - input) (0 where
    target = 0), or exp(t) * (t - input) when the target is given as log p (log_target).
    'batchmean' divides the sum by the batch size (the true KL per sample).

    >>> import gradflow as gf
    >>> F = gf.nn.functional
    >>> p = gf.tensor([[0.5, 0.5]])
    >>> F.kl_div(p.log(), p, reduction='batchmean')
    tensor(0.)
    """
    reduction = legacy_reduction(size_average, reduce, reduction)
    _check_args("kl_div", input, target, reduction, ("none", "mean", "sum", "batchmean"))
    _check_broadcast("kl_div", input, target=target)
    if as_bool(log_target, "kl_div", "log_target"):
        loss = elementwise.exp(target) * (target - input)
    else:
        positive = target > 0
        log_p = elementwise.log(elementwise.where(positive, target, 1.0))
        loss = elementwise.where(positive, target * log_p, 0.0) - target * input
    if reduction == "batchmean":
        return reduce_ops.sum(loss) / (input.shape[0] if input.ndim else 1)
    return _reduce(loss, reduction)


# ---------------------------------------------------------------- regression
def mse_loss(input: Tensor, target: Tensor, size_average: Flag = None, reduce: Flag = None,
             reduction: str = "mean") -> Tensor:
    """(x - y)^2.

    >>> import gradflow as gf
    >>> F = gf.nn.functional
    >>> F.mse_loss(gf.tensor([1.0, 2.0]), gf.tensor([1.0, 4.0]))
    tensor(2.)
    """
    reduction = legacy_reduction(size_average, reduce, reduction)
    _check_args("mse_loss", input, target, reduction)
    _check_broadcast("mse_loss", input, target=target)
    d = input - target
    return _reduce(d * d, reduction)


def l1_loss(input: Tensor, target: Tensor, size_average: Flag = None, reduce: Flag = None,
            reduction: str = "mean") -> Tensor:
    """|x - y|.

    >>> import gradflow as gf
    >>> F = gf.nn.functional
    >>> F.l1_loss(gf.tensor([1.0, 2.0]), gf.tensor([1.0, 4.0]), reduction='sum')
    tensor(2.)
    """
    reduction = legacy_reduction(size_average, reduce, reduction)
    _check_args("l1_loss", input, target, reduction)
    _check_broadcast("l1_loss", input, target=target)
    return _reduce(elementwise.abs(input - target), reduction)


def smooth_l1_loss(input: Tensor, target: Tensor, size_average: Flag = None, reduce: Flag = None,
                   reduction: str = "mean", beta: float = 1.0) -> Tensor:
    """0.5 d^2 / beta where d = |x - y| < beta, else d - 0.5 beta (beta = 0: L1).

    >>> import gradflow as gf
    >>> F = gf.nn.functional
    >>> F.smooth_l1_loss(gf.tensor([0.5, 3.0]), gf.zeros(2), reduction='none')
    tensor([0.1250, 2.5000])
    """
    reduction = legacy_reduction(size_average, reduce, reduction)
    _check_args("smooth_l1_loss", input, target, reduction)
    _check_broadcast("smooth_l1_loss", input, target=target)
    beta = as_float(beta, "smooth_l1_loss", "beta")
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be >= 0, got {beta}")
    d = elementwise.abs(input - target)
    if beta == 0:
        return _reduce(d, reduction)
    return _reduce(elementwise.where(d < beta, d * d * (0.5 / beta), d - 0.5 * beta), reduction)


def huber_loss(input: Tensor, target: Tensor, reduction: str = "mean",
               delta: float = 1.0) -> Tensor:
    """0.5 d^2 where d = |x - y| < delta, else delta (d - 0.5 delta).

    >>> import gradflow as gf
    >>> F = gf.nn.functional
    >>> F.huber_loss(gf.tensor([0.5, 3.0]), gf.zeros(2), reduction='none', delta=2.0)
    tensor([0.1250, 4.0000])
    """
    _check_args("huber_loss", input, target, reduction)
    _check_broadcast("huber_loss", input, target=target)
    delta = as_float(delta, "huber_loss", "delta")
    if delta <= 0:
        raise ValueError(f"huber_loss: delta must be > 0, got {delta}")
    d = elementwise.abs(input - target)
    return _reduce(elementwise.where(d < delta, d * d * 0.5, (d - 0.5 * delta) * delta),
                   reduction)
