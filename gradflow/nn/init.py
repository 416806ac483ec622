"""Weight initialisation, as torch.nn.init: every function fills its tensor in place (under
no_grad) from gradflow's seeded generator and returns it."""

from __future__ import annotations

import math
import numbers
from typing import Optional, Tuple

import numpy as np

from gradflow.autograd import no_grad
from gradflow.ops.common import as_float, check_choice, check_tensor
from gradflow.ops.elementwise import where
from gradflow.tensor import Tensor, randn, randn_like, tensor


def calculate_gain(nonlinearity: str, param: Optional[float] = None) -> float:
    """The std multiplier that keeps activations' variance through `nonlinearity`:
    1 for linear/conv/sigmoid, 5/3 for tanh, sqrt(2) for relu,
    sqrt(2 / (1 + slope^2)) for leaky_relu (slope `param`, default 0.01), 3/4 for selu.

    >>> nn.init.calculate_gain("relu"), nn.init.calculate_gain("tanh")
    (1.4142135623730951, 1.6666666666666667)
    """
    linear = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
              "conv_transpose3d", "sigmoid")
    if not isinstance(nonlinearity, str):
        raise TypeError(f"calculate_gain: nonlinearity must be a str, got "
                        f"{type(nonlinearity).__name__}")
    if nonlinearity in linear:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, (int, float)) and not isinstance(param, bool):
            slope = param
        else:
            raise ValueError(f"calculate_gain: negative_slope {param} not a valid number")
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: Unsupported nonlinearity {nonlinearity!r}")


def _calculate_fan_in_and_fan_out(t: Tensor, op: str = "init") -> Tuple[int, int]:
    """fan_in = size(1) * receptive field, fan_out = size(0) * receptive field, where the
    receptive field is the product of the dims after the first two."""
    if t.dim() < 2:
        raise ValueError(
            f"{op}: Fan in and fan out can not be computed for tensor with fewer than 2 "
            f"dimensions (got shape {tuple(t.shape)})"
        )
    receptive = 1
    for s in t.shape[2:]:
        receptive *= s
    return t.shape[1] * receptive, t.shape[0] * receptive


def _check_float(t: Tensor, op: str) -> None:
    """The tensor to fill with random draws: a floating-point Tensor."""
    check_tensor(t, op, "tensor")
    if not t.is_floating_point():
        raise TypeError(f"{op}: expected a floating-point tensor, got {t.dtype}")


def _calculate_correct_fan(t: Tensor, mode: str, op: str) -> int:
    check_choice(mode, op, "mode", ("fan_in", "fan_out"))
    fan_in, fan_out = _calculate_fan_in_and_fan_out(t, op)
    return fan_in if mode == "fan_in" else fan_out


def uniform_(t: Tensor, a: float = 0.0, b: float = 1.0) -> Tensor:
    """Fills t in place with draws from U(a, b); returns t.

    >>> gf.manual_seed(0)
    >>> w = nn.init.uniform_(gf.empty(3), -1.0, 1.0)
    >>> bool(((w >= -1) & (w < 1)).all())
    True
    """
    _check_float(t, "uniform_")
    with no_grad():
        return t.uniform_(a, b)


def normal_(t: Tensor, mean: float = 0.0, std: float = 1.0) -> Tensor:
    """Fills t in place with draws from N(mean, std^2); returns t.

    >>> gf.manual_seed(0)
    >>> nn.init.normal_(gf.empty(2, 3), std=0.02).shape
    gradflow.Size([2, 3])
    """
    _check_float(t, "normal_")
    with no_grad():
        return t.normal_(mean, std)


def constant_(t: Tensor, val: float) -> Tensor:
    """Fills t in place with val; returns t.

    >>> nn.init.constant_(gf.empty(3), 0.5)
    tensor([0.5000, 0.5000, 0.5000])
    """
    check_tensor(t, "constant_", "tensor")
    if not isinstance(val, numbers.Number) and not (isinstance(val, Tensor) and val.ndim == 0):
        raise TypeError(f"constant_: argument 'val' must be a number or a 0-d tensor, not "
                        f"{type(val).__name__}"
                        + (f" of shape {tuple(val.shape)}" if isinstance(val, Tensor) else ""))
    with no_grad():
        return t.fill_(val)


def zeros_(t: Tensor) -> Tensor:
    """Fills t in place with zeros; returns t.

    >>> nn.init.zeros_(gf.empty(3))
    tensor([0., 0., 0.])
    """
    check_tensor(t, "zeros_", "tensor")
    return constant_(t, 0.0)


def ones_(t: Tensor) -> Tensor:
    """Fills t in place with ones; returns t.

    >>> nn.init.ones_(gf.empty(3))
    tensor([1., 1., 1.])
    """
    check_tensor(t, "ones_", "tensor")
    return constant_(t, 1.0)


def eye_(t: Tensor) -> Tensor:
    """Fills the 2-D t in place with the identity (ones on the diagonal); returns t.

    >>> nn.init.eye_(gf.empty(2, 3))
    tensor([[1., 0., 0.],
            [0., 1., 0.]])
    """
    check_tensor(t, "eye_", "tensor")
    if t.dim() != 2:
        raise ValueError(f"eye_: Only tensors with 2 dimensions are supported, got shape "
                         f"{tuple(t.shape)}")
    with no_grad():
        return t.copy_(tensor(np.eye(*t.shape), dtype=t.dtype))


def xavier_uniform_(t: Tensor, gain: float = 1.0) -> Tensor:
    """U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out)).

    >>> gf.manual_seed(0)
    >>> w = nn.init.xavier_uniform_(gf.empty(20, 30))
    >>> bool(w.abs().max() <= (6 / 50) ** 0.5)
    True
    """
    _check_float(t, "xavier_uniform_")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(t, "xavier_uniform_")
    if t.numel() == 0:
        return t
    a = math.sqrt(3.0) * as_float(gain, "xavier_uniform_", "gain") * math.sqrt(
        2.0 / float(fan_in + fan_out))
    return uniform_(t, -a, a)


def xavier_normal_(t: Tensor, gain: float = 1.0) -> Tensor:
    """N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out)).

    >>> gf.manual_seed(0)
    >>> nn.init.xavier_normal_(gf.empty(20, 30)).shape
    gradflow.Size([20, 30])
    """
    _check_float(t, "xavier_normal_")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(t, "xavier_normal_")
    if t.numel() == 0:
        return t
    gain = as_float(gain, "xavier_normal_", "gain")
    return normal_(t, 0.0, gain * math.sqrt(2.0 / float(fan_in + fan_out)))


def kaiming_uniform_(t: Tensor, a: float = 0, mode: str = "fan_in",
                     nonlinearity: str = "leaky_relu") -> Tensor:
    """U(-b, b) with b = gain(nonlinearity, a) * sqrt(3 / fan).

    >>> gf.manual_seed(0)
    >>> w = nn.init.kaiming_uniform_(gf.empty(16, 8), nonlinearity="relu")
    >>> bool(w.abs().max() <= (2 * 3 / 8) ** 0.5)
    True
    """
    _check_float(t, "kaiming_uniform_")
    if 0 in t.shape:
        return t
    fan = _calculate_correct_fan(t, mode, "kaiming_uniform_")
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan)
    bound = math.sqrt(3.0) * std
    return uniform_(t, -bound, bound)


def kaiming_normal_(t: Tensor, a: float = 0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu") -> Tensor:
    """N(0, std^2) with std = gain(nonlinearity, a) / sqrt(fan).

    >>> gf.manual_seed(0)
    >>> nn.init.kaiming_normal_(gf.empty(16, 8), mode="fan_out").shape
    gradflow.Size([16, 8])
    """
    _check_float(t, "kaiming_normal_")
    if 0 in t.shape:
        return t
    fan = _calculate_correct_fan(t, mode, "kaiming_normal_")
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan)
    return normal_(t, 0.0, std)


def trunc_normal_(t: Tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0,
                  b: float = 2.0) -> Tensor:
    """N(mean, std^2) conditioned on [a, b]: out-of-range draws are redrawn (rejection
    sampling, exact), and after 100 rounds any stragglers are clamped.

    >>> gf.manual_seed(0)
    >>> w = nn.init.trunc_normal_(gf.empty(1000), std=1.0, a=-0.5, b=0.5)
    >>> bool(w.abs().max() <= 0.5)
    True
    """
    _check_float(t, "trunc_normal_")
    mean, std, a, b = (as_float(v, "trunc_normal_", name)
                       for name, v in (("mean", mean), ("std", std), ("a", a), ("b", b)))
    if not a <= b:
        raise ValueError(f"trunc_normal_: expects a <= b, got a={a}, b={b}")
    with no_grad():
        t.normal_(mean, std)
        for _ in range(100):
            bad = (t < a).logical_or(t > b)
            if not bad.any():
                break
            t.copy_(where(bad, randn_like(t) * std + mean, t))
        return t.clamp_(a, b)


def orthogonal_(t: Tensor, gain: float = 1.0) -> Tensor:
    """A (semi-)orthogonal matrix (the first dim against the flattened rest): the Q of the QR
    decomposition of a standard normal draw, with signs fixed by diag(R), times gain.

    >>> gf.manual_seed(0)
    >>> q = nn.init.orthogonal_(gf.empty(3, 3))
    >>> gf.allclose(q @ q.T, gf.eye(3), atol=1e-6)
    True
    """
    _check_float(t, "orthogonal_")
    gain = as_float(gain, "orthogonal_", "gain")
    if t.dim() < 2:
        raise ValueError(f"orthogonal_: Only tensors with 2 or more dimensions are supported, "
                         f"got shape {tuple(t.shape)}")
    if t.numel() == 0:
        return t
    rows = t.shape[0]
    cols = t.numel() // rows
    flat = randn(rows, cols, dtype=t.dtype, device=t.device).numpy().astype(np.float64)
    if rows < cols:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    q = q * np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    with no_grad():
        return t.copy_((tensor(q, dtype=t.dtype) * gain).reshape(t.shape).to(t.device))
