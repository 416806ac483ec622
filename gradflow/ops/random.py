"""Sampling ops: normal with tensor or number mean and std, and multinomial.

normal draws from the device's generator (seeded by gradflow.manual_seed) or, when a
gradflow.Generator is passed, from that generator on the host; multinomial draws on the host,
from the CPU's generator or the one passed.
"""

from __future__ import annotations

import numbers
from typing import TYPE_CHECKING, Any, Optional, Sequence, Tuple, Union

import numpy as np

from gradflow.autograd.function import Context, Function, Gradients
from gradflow.ops import elementwise, reduce, shape
from gradflow.ops.common import (
    allocating,
    as_bool,
    as_int,
    as_ints,
    broadcast_shapes,
    check_tensor,
    result_type,
)
from gradflow.tensor import Tensor, randn, zeros
from gradflow.types import DeviceLike, DTypeLike, as_dtype, get_default_dtype

if TYPE_CHECKING:
    from gradflow.utils.data._rng import Generator


def _host_rng(generator: Optional[Generator]) -> np.random.Generator:
    """The NumPy generator of a gradflow.Generator, or the CPU's global one for None."""
    from gradflow.utils.data._rng import numpy_rng  # (utils sits above ops: imported late)

    return numpy_rng(generator)


def _standard_normal(shape_: Tuple[int, ...], like: Tensor, generator: Optional[Generator]
                     ) -> Tensor:
    """N(0, 1) samples of `shape_` with like's dtype and device."""
    if generator is None:
        return randn(shape_, dtype=like.dtype, device=like.device)
    draws = _host_rng(generator).standard_normal(shape_).astype(like._data.dtype)
    return Tensor._make(like._backend.from_numpy(draws), like._backend)


class Normal(Function[Tensor]):
    """mean + std * noise. Like PyTorch's, the sample's gradient with respect to mean and std
    is zero (it is a draw, not a reparameterised sample: use mean + std * randn for that)."""

    @staticmethod
    def forward(ctx: Context, mean: Union[Tensor, float], std: Union[Tensor, float],
                noise: Tensor) -> Any:
        ctx.shapes = [v.shape if isinstance(v, Tensor) else () for v in (mean, std)]
        return (mean + std * noise)._data

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Gradients:
        zero = elementwise.mul(g, 0.0)
        return tuple(reduce.sum_to_shape(zero, s) for s in ctx.shapes) + (None,)


def normal(mean: Union[Tensor, float] = 0.0, std: Union[Tensor, float] = 1.0,
           size: Optional[Sequence[int]] = None, *, generator: Optional[Generator] = None,
           dtype: Optional[DTypeLike] = None, device: Optional[DeviceLike] = None,
           requires_grad: bool = False) -> Tensor:
    """Samples from N(mean, std^2), elementwise over the broadcast of mean and std.

    As ``torch.normal``: mean and std are tensors or numbers; with two numbers, `size` gives
    the shape (and dtype / device / requires_grad apply). The sample has a zero gradient
    with respect to tensor mean and std, as PyTorch's.

    >>> import gradflow as gf
    >>> gf.manual_seed(0)
    >>> gf.normal(gf.tensor([0., 100.]), 0.0)
    tensor([  0., 100.])
    >>> gf.normal(2.0, 1.0, size=(2, 3)).shape
    gradflow.Size([2, 3])
    """
    tensors = [t for t in (mean, std) if isinstance(t, Tensor)]
    for name, v in (("mean", mean), ("std", std)):
        if not isinstance(v, (Tensor, numbers.Real)) or isinstance(v, bool):
            raise TypeError(f"normal: argument '{name}' must be a Tensor or a number, not "
                            f"{type(v).__name__}")
    if not tensors:
        if size is None:
            raise TypeError("normal: with a number mean and std, the size argument is required")
        like = zeros(0, dtype=as_dtype(dtype) if dtype is not None else get_default_dtype(),
                     device=device)
        size = as_ints(size, "normal", "size")
        if any(n < 0 for n in size):
            raise ValueError(f"normal: invalid size {size}: sizes must be non-negative")
        out = _standard_normal(size, like, generator) * float(std) + float(mean)
        return out.requires_grad_(True) if as_bool(requires_grad, "normal",
                                                   "requires_grad") else out
    if size is not None:
        raise TypeError("normal: size is taken only with a number mean and std")
    for t in tensors:
        if not t.is_floating_point():
            raise TypeError(f"normal: expected floating-point mean and std, got {t.dtype}")
    if isinstance(std, Tensor) and bool(reduce.any(std < 0).item()):
        raise ValueError("normal: expects all elements of std >= 0.0")
    if isinstance(std, numbers.Real) and std < 0:
        raise ValueError(f"normal: expects std >= 0.0, got {std}")
    out_shape = broadcast_shapes("normal", *(t.shape for t in tensors))
    dt = result_type(mean, std)
    like = shape.to_dtype(tensors[0], dt)
    return Normal.apply(mean, std, _standard_normal(out_shape, like, generator))


def _check_weights(op: str, x: Tensor, n_samples: int, replacement: bool
                   ) -> np.ndarray[Any, Any]:
    """The weights as a 2-D host array, after PyTorch's checks."""
    check_tensor(x, op)
    if x.ndim not in (1, 2) or not x.is_floating_point():
        raise ValueError(f"{op}: expected a 1-D or 2-D floating-point input, got shape "
                         f"{tuple(x.shape)} and {x.dtype}")
    if x.shape[-1] == 0:
        raise ValueError(f"{op}: the input has no categories (shape {tuple(x.shape)})")
    w = x.detach().double().cpu().numpy().reshape(-1, x.shape[-1])
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError(f"{op}: probability tensor contains either inf, nan or element < 0")
    if np.any(w.sum(1) <= 0):
        raise ValueError(f"{op}: invalid multinomial distribution (sum of probabilities <= 0)")
    if n_samples <= 0:
        raise ValueError(f"{op}: cannot sample num_samples <= 0 samples, got {n_samples}")
    if not replacement and n_samples > w.shape[1]:
        raise ValueError(f"{op}: cannot sample num_samples > the {w.shape[1]} categories "
                         f"without replacement, got {n_samples}")
    return w


def multinomial(input: Tensor, num_samples: int, replacement: bool = False, *,
                generator: Optional[Generator] = None) -> Tensor:
    """Category indices drawn with probabilities proportional to each row of input.

    As ``torch.multinomial``: input is (n,) or (rows, n) of non-negative weights (not
    necessarily summing to 1); the result is int64 (num_samples,) or (rows, num_samples).
    Without replacement, each row's indices are distinct (categories of weight 0 come
    last, as in PyTorch). The draws are made on the host.

    >>> import gradflow as gf
    >>> gf.multinomial(gf.tensor([0., 1., 0.]), 2, replacement=True)
    tensor([1, 1])
    >>> sorted(gf.tensor([1., 2., 3.]).multinomial(3).tolist())
    [0, 1, 2]
    """
    n_samples = as_int(num_samples, "multinomial", "num_samples")
    replacement = as_bool(replacement, "multinomial", "replacement")
    w = _check_weights("multinomial", input, n_samples, replacement)
    rng = _host_rng(generator)
    draws = (w.shape[0], n_samples if replacement else w.shape[1])
    with allocating("multinomial", draws, 8):  # the uniform draws, float64
        u = rng.random(draws)
    if replacement:  # inverse CDF: the first category whose running total passes u * total
        cdf = np.cumsum(w, axis=1)
        last = w.shape[1] - 1 - np.argmax(w[:, ::-1] > 0, axis=1)  # last positive weight
        picks = np.array([np.minimum(np.searchsorted(c, uu * c[-1], side="right"), k)
                          for c, uu, k in zip(cdf, u, last)]).reshape(u.shape)
    else:  # the smallest exponential keys E / w, E ~ Exp(1): sampling without replacement
        with np.errstate(divide="ignore", over="ignore"):  # weight 0 (or tiny): key inf
            keys = -np.log1p(-u) / w
        picks = np.argsort(keys, axis=1, kind="stable")[:, :n_samples]
    picks = picks.astype(np.int64).reshape(input.shape[:-1] + (n_samples,))
    return Tensor._make(input._backend.from_numpy(np.ascontiguousarray(picks)), input._backend)
