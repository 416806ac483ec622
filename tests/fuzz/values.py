"""The values a fuzz case passes, each with the source text that rebuilds it.

A case's reproducer is plain Python run from the repository root after
``from tests.fuzz.values import *``: tensors are spelled ``T(shape, dtype, seed)``, which
rebuilds the same values from the seed, so a printed call is the exact call.
"""

from __future__ import annotations

import operator
import os
import random
from typing import Any, Optional, Sequence

import numpy as np

import gradflow as gf
import gradflow.nn as nn
import gradflow.nn.functional as F
import gradflow.optim as optim
from gradflow.optim import lr_scheduler

__all__ = ["F", "T", "V", "backward_sum", "gf", "loss_backward", "lr_scheduler", "nn", "np",
           "operator", "optim", "truncate", "unpool", "write_bytes"]

DTYPES = ("float32", "float64", "int64", "bool")
HUGE = (2**40, 2**63, 2**62, -(2**63))  # far past any machine's memory, so the same
# verdict everywhere (a 2**31 float64 size is 16 GiB: allocatable on some machines)


def T(shape: Sequence[int], dtype: str = "float32", seed: int = 0, *, nc: bool = False,
      grad: bool = False, low: int = -3, high: int = 6) -> gf.Tensor:
    """A tensor of `shape` and `dtype` with values drawn from `seed`: floats ~ N(0, 1),
    ints in [low, high), bools fair coins. nc=True gives a non-contiguous view of the same
    values; grad=True a leaf that requires grad (floats only)."""
    rng = np.random.default_rng(seed)
    shape = tuple(shape)
    if dtype == "bool":
        a = rng.random(shape) < 0.5
    elif dtype == "int64":
        a = rng.integers(low, high, size=shape, dtype=np.int64)
    else:
        a = rng.standard_normal(shape).astype(dtype)
    if nc and a.ndim >= 2:
        t = gf.tensor(np.ascontiguousarray(np.swapaxes(a, -1, -2))).transpose(-1, -2).detach()
    elif nc and a.ndim == 1:
        t = gf.tensor(a[::-1].copy()).flip(0).detach()
    else:
        t = gf.tensor(a)
    return t.requires_grad_(True) if grad else t


def backward_sum(y) -> None:
    """y.sum().backward() when y is a float tensor in a graph (else nothing); not for views of
    more than 10**7 elements (an expand to (2**20, 2**20) is a fine view, but summing it takes
    minutes, correctly)."""
    if isinstance(y, gf.Tensor) and y.requires_grad and y.is_floating_point() and (
            y.numel() <= 10**7):
        y.sum().backward()


def loss_backward(m) -> None:
    m(gf.ones(4, 3)).sum().backward()


def unpool(out, kernel_size, **kwargs):
    """max_unpool2d(*max_pool2d(..., return_indices=True), kernel_size, ...)."""
    return F.max_unpool2d(out[0], out[1], kernel_size, **kwargs)


def write_bytes(path: str, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)


def truncate(path: str, n: int) -> None:
    if os.path.exists(path):
        with open(path, "r+b") as f:
            f.truncate(n)


class V:
    """A value and the source text that builds it."""

    __slots__ = ("code", "value")

    def __init__(self, code: str, value: Any) -> None:
        self.code, self.value = code, value

    def __repr__(self) -> str:
        return self.code


def lit(value: Any) -> V:
    """A literal (numbers, strings, None, tuples and lists of them)."""
    return V(_literal(value), value)


def _literal(value: Any) -> str:
    if isinstance(value, float) and not np.isfinite(value):
        return f"float('{value}')"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2**30:
        return _power_of_two(value)
    if isinstance(value, tuple):
        inner = ", ".join(_literal(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, list):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    return repr(value)


def _power_of_two(n: int) -> str:
    k = abs(n).bit_length() - 1
    return repr(n) if abs(n) != 2**k else ("-" if n < 0 else "") + f"2**{k}"


class Draw:
    """Random choices for one case, from a seed string like '0:1234'."""

    def __init__(self, seed: str, junk_p: float = 0.08) -> None:
        self.rng = random.Random(seed)
        self.junk_p = junk_p
        self._tensor_seed = 0

    # ------------------------------------------------------------ plain choices
    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def pick(self, *options):
        return self.rng.choice(options)

    def int(self, lo: int, hi: int) -> int:
        return self.rng.randint(lo, hi)

    def float(self, lo: float = -2.0, hi: float = 2.0) -> float:
        return round(self.rng.uniform(lo, hi), 3)

    def dtype(self, floats_only: bool = False) -> str:
        if floats_only:
            return self.pick("float32", "float32", "float64")
        return self.pick("float32", "float32", "float32", "float64", "int64", "bool")

    def size(self, lo: int = 0, hi: int = 4) -> int:
        """A dim's size: small, with 0 and 1 drawn often."""
        return self.pick(lo, min(lo + 1, hi), self.int(lo, hi), self.int(lo, hi))

    def shape(self, ndim: Optional[int] = None, lo: int = 0, hi: int = 4) -> tuple:
        ndim = self.int(0, 4) if ndim is None else ndim
        return tuple(self.size(lo, hi) for _ in range(ndim))

    def broadcast_partner(self, shape: tuple) -> tuple:
        """A shape that usually broadcasts with `shape` (and sometimes does not)."""
        if self.chance(0.1):
            return self.shape()
        out = [1 if self.chance(0.25) else s for s in shape]
        return tuple(out[self.int(0, len(out)):]) if self.chance(0.3) else tuple(out)

    # ------------------------------------------------------------ values
    def tensor(self, shape: Optional[tuple] = None, dtype: Optional[str] = None, *,
               grad: Optional[bool] = None, low: int = -3, high: int = 6) -> V:
        shape = self.shape() if shape is None else tuple(shape)
        dtype = self.dtype() if dtype is None else dtype
        self._tensor_seed += 1
        seed = self._tensor_seed
        nc = len(shape) > 0 and self.chance(0.15)
        grad = dtype.startswith("float") and self.chance(0.3) if grad is None else grad
        grad = grad and dtype.startswith("float")
        extra = (", nc=True" if nc else "") + (", grad=True" if grad else "")
        if dtype == "int64" and (low, high) != (-3, 6):
            extra += f", low={low}, high={high}"
        value = T(shape, dtype, seed, nc=nc, grad=grad, low=low, high=high)
        return V(f"T({_literal(shape)}, '{dtype}', {seed}{extra})", value)

    def index(self, shape: tuple, n: int) -> V:
        """An int64 tensor of indices mostly in [0, n) (sometimes negative or too big)."""
        lo, hi = (0, max(n, 1)) if self.chance(0.85) else (-n - 1, n + 2)
        return self.tensor(shape, "int64", low=lo, high=hi)

    def dim(self, ndim: int) -> V:
        return lit(self.int(-ndim - 1, ndim) if self.chance(0.15) else
                   self.int(-max(ndim, 1), max(ndim, 1) - 1))

    def gf_dtype(self) -> V:
        name = self.pick(*DTYPES)
        return V(f"gf.{name}", getattr(gf, name))

    def junk(self) -> V:
        """A value of a wrong kind or range."""
        kind = self.int(0, 17)
        if kind == 0:
            return lit(None)
        if kind == 1:
            return lit(self.pick(True, False))
        if kind == 2:
            return lit(self.pick(-1, -2, 0))
        if kind == 3:
            return lit(self.pick(*HUGE))
        if kind == 4:
            return lit(self.pick(1.5, -0.5, 0.0, float("nan"), float("inf"), -float("inf")))
        if kind == 5:
            return lit(self.pick("abc", "", "cuda", "mean", "none"))
        if kind == 6:
            return lit(self.pick((), [], (1, 2), [2, -1], (0,), (1, 2, 3), (2**40, 2)))
        if kind == 7:
            return V("object()", object())
        if kind == 8:
            return self.tensor((), self.dtype())
        if kind == 9:
            return self.tensor()
        if kind == 10:
            return self.gf_dtype()
        if kind == 11:
            return V("gf.device('cpu')", gf.device("cpu"))
        if kind == 12:
            return lit(self.pick((1.5, 2), [None], ("a",), (True, 1), [[1, 2]]))
        if kind == 13:
            return V("np.ones(3)", np.ones(3))
        if kind == 14:
            return V("{'a': 1}", {"a": 1})
        if kind == 15:
            return lit(self.pick(10**6, 7, 3))
        if kind == 16:
            return self.tensor(self.shape(), "int64")
        return V("lambda *a: None", lambda *a: None)

    def maybe(self, v: V) -> V:
        """`v`, or now and then a junk value in its place."""
        return self.junk() if self.chance(self.junk_p) else v
