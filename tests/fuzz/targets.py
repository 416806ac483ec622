"""What the fuzzer calls: one generator per family of public calls, drawn by weight.

Each generator gets a `Gen` for one case and adds one to a few steps: mostly plausible
arguments (shapes that fit, dims in range), with junk swapped in now and then by `Gen.call`,
and now and then a deliberately bad value (a huge or negative size, a wrong dtype, a device
that is not there).
"""

from __future__ import annotations

import operator
import os
from typing import Callable, List, Tuple

import gradflow as gf
import gradflow.nn as nn
import gradflow.nn.functional as F
import gradflow.optim as optim
from gradflow import _C
from gradflow.optim import lr_scheduler

from .steps import Gen, Step
from .values import (
    HUGE,
    T,
    V,
    backward_sum,
    lit,
    loss_backward,
    truncate,
    unpool,
    write_bytes,
)

_TARGETS: List[Tuple[str, int, Callable[[Gen], None]]] = []


def target(weight: int):
    def register(fn: Callable[[Gen], None]) -> Callable[[Gen], None]:
        _TARGETS.append((fn.__name__, weight, fn))
        return fn
    return register


def build(seed: int, case: int, tmpdir: str) -> Tuple[str, List[Step]]:
    """The steps of case `case` of run `seed` (the same on every machine and run)."""
    g = Gen(f"{seed}:{case}")
    g.tmpdir = tmpdir
    total = sum(w for _, w, _ in _TARGETS)
    r = g.rng.random() * total
    for name, weight, fn in _TARGETS:
        r -= weight
        if r < 0:
            break
    fn(g)
    return name, g.steps


# ------------------------------------------------------------------ shared drawing helpers
def _bad_size(g: Gen) -> int:
    return g.pick(*HUGE, -1, -5)


def _sizes(g: Gen, shape: tuple) -> tuple:
    """A shape, now and then with a huge or negative size in it."""
    if shape and g.chance(0.12):
        i = g.int(0, len(shape) - 1)
        shape = shape[:i] + (_bad_size(g),) + shape[i + 1:]
    elif g.chance(0.05):
        shape = (2**20, 2**20, 2**4)[: max(len(shape), 2)]
    return shape


def _device(g: Gen) -> V:
    name = g.pick("cpu", "cuda", "cuda:0", "cuda:1", "tpu", "cpu:0", "cuda:x", 0)
    return lit(name) if g.chance(0.8) else V(f"gf.device('{name}')", name)


def _float_x(g: Gen, shape=None, ndim=None) -> V:
    return g.tensor(g.shape(ndim) if shape is None else shape, g.dtype(floats_only=True))


def _pair(g: Gen, lo: int, hi: int):
    v = g.int(lo, hi)
    return v if g.chance(0.6) else (v, g.int(lo, hi))


def _reduction(g: Gen) -> str:
    return g.pick("mean", "sum", "none", "mean", "batchmean", "avg")


def _options(g: Gen, **choices) -> dict:
    """Each keyword argument with probability 1/2, its value drawn from the given options."""
    return {k: (v if isinstance(v, V) else lit(g.pick(*v)) if isinstance(v, tuple) else lit(v))
            for k, v in choices.items() if g.chance(0.5)}


# ------------------------------------------------------------------ creation
@target(4)
def creation_sized(g: Gen) -> None:
    fn = g.pick("zeros", "ones", "empty", "rand", "randn")
    shape = _sizes(g, g.shape())
    args = [lit(shape)] if g.chance(0.4) else [lit(s) for s in shape]
    kw = _options(g, requires_grad=(True, False))
    if g.chance(0.5):
        kw["dtype"] = g.gf_dtype()
    if g.chance(0.2):
        kw["device"] = _device(g)
    g.call(f"gf.{fn}", getattr(gf, fn), *args, **kw)


@target(3)
def creation_other(g: Gen) -> None:
    kind = g.int(0, 8)
    dev = {"device": _device(g)} if g.chance(0.15) else {}
    dt = {"dtype": g.gf_dtype()} if g.chance(0.4) else {}
    if kind == 0:
        g.call("gf.full", gf.full, _sizes(g, g.shape()), g.pick(1.5, 2, True, -1), **dt, **dev)
    elif kind == 1:
        m = (g.size(0, 5),) if g.chance(0.5) else ()
        g.call("gf.eye", gf.eye, g.pick(g.size(0, 5), g.size(0, 5), _bad_size(g)), *m, **dt,
               **dev)
    elif kind == 2:
        a, b = g.pick(0, 1, -2, 0.5), g.pick(5, 3.5, -1, _bad_size(g), 2**40)
        step = (g.pick(1, 2, 0.5, -1, 0, 1e-12),) if g.chance(0.6) else ()
        g.call("gf.arange", gf.arange, a, b, *step, **dt, **dev)
    elif kind == 3:
        g.call("gf.linspace", gf.linspace, g.float(), g.float(),
               g.pick(0, 1, 5, -1, 2**40, 2**63, 2.5), **dt, **dev)
    elif kind == 4:
        lo, hi = g.pick((0, 5), (3, 3), (5, 0), (-2, 2), (0, 2**63), (0.5, 3))
        g.call("gf.randint", gf.randint, lo, hi, _sizes(g, g.shape()), **dt, **dev)
    elif kind == 5:
        g.call("gf.randperm", gf.randperm, g.pick(0, 1, 5, -1, 2**40, 2**63, 2.5), **dt, **dev)
    elif kind == 6:
        fn = g.pick("zeros_like", "ones_like", "empty_like", "rand_like", "randn_like",
                    "full_like", "randint_like")
        extra = {"full_like": (g.float(),), "randint_like": (g.pick(3, 0, -1),)}.get(fn, ())
        g.call(f"gf.{fn}", getattr(gf, fn), g.tensor(), *extra, **dt, **dev)
    elif kind == 7:
        g.call("gf.manual_seed", gf.manual_seed, g.pick(0, -1, 2**64, 2**63, 1.5, "a"))
    else:
        g.call("gf.set_default_dtype", gf.set_default_dtype, g.gf_dtype())


@target(3)
def tensor_from_data(g: Gen) -> None:
    data = g.pick([1, 2, 3], [[1.0, 2.0], [3.0]], [[1, 2], [3, 4]], [], [[]], 3.5, True,
                  [True, 1, 2.5], [[1, 2], [3, "a"]], [None], "abc", (1, 2), [2**63], [2**70],
                  [float("nan")], {"a": 1}, [[1], [2, 3]])
    value = lit(data)
    if g.chance(0.25):
        value = g.pick(
            V("np.ones((2, 3), np.int32)", __import__("numpy").ones((2, 3), "int32")),
            V("np.ones(3, np.complex64)", __import__("numpy").ones(3, "complex64")),
            V("np.array([1, 'a'], object)", __import__("numpy").array([1, "a"], object)),
            V("np.ones((3, 2))[::2]", __import__("numpy").ones((3, 2))[::2]),
            V("np.float16(2)", __import__("numpy").float16(2)),
            V("[T((2,), 'float32', 9), T((2,), 'float32', 10)]",
              [gf.ones(2), gf.ones(2)]),
        )
    fn = g.pick("tensor", "tensor", "as_tensor", "from_numpy", "Tensor")
    kw = {} if fn == "from_numpy" else {"dtype": g.gf_dtype()} if g.chance(0.4) else {}
    if fn in ("tensor", "Tensor") and g.chance(0.3):
        kw["requires_grad"] = lit(True)
    if fn != "from_numpy" and g.chance(0.15):
        kw["device"] = _device(g)
    g.call(f"gf.{fn}", getattr(gf, fn), value, **kw, names=("tensor",))


@target(1)
def device_and_config(g: Gen) -> None:
    kind = g.int(0, 3)
    if kind == 0:
        g.call("gf.device", gf.device, g.pick("cpu", "cuda", "cuda:0", "cuda:-1", "gpu", "",
                                               "cuda:1:2", 3, None))
    elif kind == 1:
        g.call("gf.set_num_threads", gf.set_num_threads, g.pick(1, 2, 0, -1, 2**40, 1.5))
        g.call("gf.set_num_threads", gf.set_num_threads, 2, junk=False)
    elif kind == 2:
        x = g.tensor()
        how = g.pick("to", "to", "cuda", "cpu")
        args = (_device(g),) if how == "to" else ()
        g.method(x, how, *args, names=("device", "dtype"))
    else:
        g.call("gf.promote_types", gf.promote_types, g.gf_dtype(), g.gf_dtype())


# ------------------------------------------------------------------ elementwise
UNARY = ("neg", "abs", "exp", "expm1", "log", "log1p", "sqrt", "rsqrt", "sin", "cos", "tanh",
         "sigmoid", "relu", "erf", "reciprocal", "sign", "floor", "ceil", "round", "isnan",
         "isinf", "logical_not")
BINARY = ("add", "sub", "mul", "div", "true_divide", "pow", "maximum", "minimum",
          "remainder", "eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or",
          "logical_xor", "equal", "allclose")
OPERATORS = {"add": "+", "sub": "-", "mul": "*", "truediv": "/", "pow": "**", "mod": "%",
             "floordiv": "//", "eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">",
             "ge": ">=", "and_": "&", "or_": "|", "xor": "^", "matmul": "@"}


def _operand(g: Gen, shape: tuple) -> V:
    kind = g.int(0, 5)
    if kind == 0:
        return lit(g.pick(2, -1.5, True, 0, 0.0, 2**63, float("nan")))
    return g.tensor(g.broadcast_partner(shape))


@target(6)
def unary(g: Gen) -> None:
    x = g.tensor()
    op = g.pick(*UNARY, "square", "T", "mT")
    if op in ("T", "mT"):
        g.call("getattr", getattr, x, op, names=(op, "transpose", "permute"), junk=False)
    elif op == "square" or g.chance(0.5):
        g.method(x, op)
    else:
        g.call(f"gf.{op}", getattr(gf, op), x)
    _maybe_backward(g, op)


@target(8)
def binary(g: Gen) -> None:
    x = g.tensor()
    y = _operand(g, x.value.shape)
    if g.chance(0.3):
        x, y = y, x
    op = g.pick(*BINARY)
    if g.chance(0.3) and op not in ("true_divide", "equal", "allclose", "remainder",
                                    "logical_xor", "maximum", "minimum") and isinstance(
            x.value, gf.Tensor):
        g.method(x, op, y)
    elif op in ("add", "sub") and g.chance(0.3):
        g.call(f"gf.{op}", getattr(gf, op), x, y, alpha=g.pick(2, 0.5, True, None))
    else:
        g.call(f"gf.{op}", getattr(gf, op), x, y)
    _maybe_backward(g, op)


@target(5)
def operators(g: Gen) -> None:
    x = g.tensor()
    y = g.maybe(_operand(g, x.value.shape))  # junk only here: one operand stays a tensor
    if g.chance(0.3):
        x, y = y, x
    op = g.pick(*OPERATORS)
    sym = OPERATORS[op]
    g.call(f"operator.{op}", getattr(operator, op), x, y, junk=False,
           names=(sym, op.rstrip("_"), "remainder", "floor_divide", "logical_and",
                  "logical_or", "logical_xor", "div", "pow", "lt", "le", "gt", "ge"))
    _maybe_backward(g, op)


@target(4)
def inplace(g: Gen) -> None:
    x = g.tensor()
    op = g.pick("add_", "sub_", "mul_", "div_", "pow_", "neg_", "exp_", "sqrt_", "relu_",
                "sigmoid_", "tanh_", "clamp_", "masked_fill_", "lerp_", "addcmul_",
                "addcdiv_", "copy_", "zero_", "fill_", "uniform_", "normal_", "bernoulli_",
                "iadd", "isub", "imul", "itruediv", "requires_grad_", "detach_",
                "retain_grad")
    shape = x.value.shape
    if op in ("add_", "sub_", "mul_", "div_", "pow_", "copy_", "fill_"):
        g.method(x, op, _operand(g, shape))
    elif op in ("iadd", "isub", "imul", "itruediv"):
        g.call(f"operator.{op}", getattr(operator, op), x, g.maybe(_operand(g, shape)),
               junk=False, names=(op[1:] + "_", op[1:], "div_", "div"))
    elif op == "clamp_":
        g.method(x, op, g.float(), g.pick(g.float(), None))
    elif op == "masked_fill_":
        g.method(x, op, g.tensor(g.broadcast_partner(shape), "bool"), g.float())
    elif op in ("lerp_", "addcmul_", "addcdiv_"):
        g.method(x, op, _operand(g, shape), _operand(g, shape))
    elif op in ("uniform_", "normal_"):
        g.method(x, op, g.float(), g.pick(g.float(), -1.0, float("inf")))
    elif op == "bernoulli_":
        g.method(x, op, g.pick(0.5, 0.0, 1.0, -0.1, 2, float("nan")))
    elif op == "requires_grad_":
        g.method(x, op, g.pick(True, False))
    else:
        g.method(x, op)


@target(3)
def activations(g: Gen) -> None:
    x = _float_x(g) if g.chance(0.85) else g.tensor()
    kind = g.int(0, 11)
    inplace = _options(g, inplace=(True, False))
    if kind == 0:
        g.call("F.leaky_relu", F.leaky_relu, x, g.float(), **inplace)
    elif kind == 1:
        g.call("F.elu", F.elu, x, g.float(0, 2), **inplace)
    elif kind == 2:
        g.call("F.gelu", F.gelu, x, approximate=g.pick("none", "tanh", "bad"))
    elif kind == 3:
        g.call("F.softplus", F.softplus, x, g.pick(1.0, 0.0, -1.0, 2), g.pick(20.0, 0.0))
    elif kind == 4:
        g.call("F.hardtanh", F.hardtanh, x, g.float(-2, 0), g.float(-1, 2), **inplace)
    elif kind == 5:
        w = g.tensor((g.pick(1, x.value.shape[1] if x.value.ndim > 1 else 1, 3),),
                     x.value.dtype.name)
        g.call("F.prelu", F.prelu, x, w)
    elif kind == 6:
        fn = g.pick("relu", "relu6", "silu", "logsigmoid", "sigmoid", "tanh", "relu_")
        g.call(f"F.{fn}", getattr(F, fn), x, **({} if fn in ("logsigmoid", "sigmoid", "tanh",
                                                               "relu_") else inplace))
    elif kind == 7:
        fn = g.pick("leaky_relu", "elu", "gelu", "softplus", "silu")
        g.call(f"gf.{fn}", getattr(gf, fn), x)
    elif kind == 8:
        g.call("gf.clamp", gf.clamp, x, g.pick(g.float(), None, _operand(g, x.value.shape)),
               g.pick(g.float(), None, _operand(g, x.value.shape)))
    elif kind == 9:
        cond = g.tensor(g.broadcast_partner(x.value.shape), g.pick("bool", "bool", "int64"))
        g.call("gf.where", gf.where, cond, x, _operand(g, x.value.shape))
    elif kind == 10:
        mask = g.tensor(g.broadcast_partner(x.value.shape), g.pick("bool", "bool", "float32"))
        g.call("gf.masked_fill", gf.masked_fill, x, mask, g.pick(g.float(), 2, True))
    else:
        g.method(x, "lerp", _operand(g, x.value.shape), g.pick(0.5, _operand(g, ())))
    _maybe_backward(g, "activation")


def _maybe_backward(g: Gen, op: str) -> None:
    """Now and then run backward through the last step's result."""
    if not g.steps or g.steps[-1].var is not None or not g.chance(0.35):
        return
    last = g.steps.pop()
    last.var = "y"
    g.steps.append(last)
    g.call("backward_sum", backward_sum, g.ref("y"), names=(op, "backward", "grad"), junk=False)


# ------------------------------------------------------------------ reductions
REDUCTIONS = ("sum", "mean", "var", "std", "prod", "max", "min", "amax", "amin", "argmax",
              "argmin", "logsumexp", "norm", "all", "any", "softmax", "log_softmax")


def _dims(g: Gen, ndim: int) -> V:
    kind = g.int(0, 5)
    if kind == 0:
        return lit(None)
    if kind == 1 and ndim:
        return lit(tuple(sorted({g.int(-ndim, ndim - 1) for _ in range(g.int(1, ndim))})))
    if kind == 2:
        return lit(g.pick([], (), [0, 0], (0, -1)))
    return g.dim(ndim)


@target(8)
def reductions(g: Gen) -> None:
    x = g.tensor()
    op = g.pick(*REDUCTIONS)
    nd = x.value.ndim
    if op in ("softmax", "log_softmax"):
        args = (g.dim(nd),)
        kw = {"dtype": g.gf_dtype()} if g.chance(0.2) else {}
    elif op == "norm":
        args = (g.pick(2, 1, "fro", "nuc", float("inf"), 0, -1, 3.5, "bad"), _dims(g, nd))
        kw = _options(g, keepdim=(True, False))
    elif op == "logsumexp":
        args, kw = (_dims(g, nd),), _options(g, keepdim=(True, False))
    else:
        args = (_dims(g, nd),) if g.chance(0.8) else ()
        kw = _options(g, keepdim=(True, False, 1))
        if op in ("var", "std"):
            kw.update(_options(g, correction=(0, 1, 2, -1, 1.5)))
        if op in ("sum", "mean", "prod") and g.chance(0.2):
            kw["dtype"] = g.gf_dtype()
    if g.chance(0.5):
        g.method(x, op, *args, **kw)
    else:
        g.call(f"gf.{op}", getattr(gf, op), x, *args, **kw)
    _maybe_backward(g, op)


# ------------------------------------------------------------------ shape ops
@target(10)
def shape_ops(g: Gen) -> None:
    x = g.tensor()
    op = g.int(0, 21)
    (_reshaping_ops if op <= 10 else _splitting_and_other_ops)(g, x, op)
    _maybe_backward(g, "shape")


def _reshaping_ops(g: Gen, x: V, op: int) -> None:
    """shape_ops 0-10: reshape, view, flatten, squeeze, permute, transpose, expand, flip."""
    s, nd, n = x.value.shape, x.value.ndim, x.value.numel()
    if op == 0:
        new = g.pick((-1,), (n,), (1, n), (-1, 1), g.shape(), (n, -1, 1), (-1, -1), (0, -1))
        g.method(x, g.pick("reshape", "view"), *_sizes(g, new))
    elif op == 1:
        g.call("gf.reshape", gf.reshape, x, _sizes(g, g.pick((-1,), (n,), g.shape())))
    elif op == 2:
        g.method(x, "flatten", g.dim(nd), g.dim(nd))
    elif op == 3:
        g.method(x, "unflatten", g.dim(nd), g.pick((-1,), (1, -1), (2, -1), (s[0],) if s else (1,),
                                                   (-1, -1), ()))
    elif op == 4:
        g.method(x, g.pick("squeeze", "unsqueeze"), g.dim(nd + 1))
    elif op == 5:
        dims = list(range(nd))
        g.rng.shuffle(dims)
        if g.chance(0.2):
            dims = dims[:-1] if dims else [0]
        g.method(x, "permute", *dims) if g.chance(0.5) else g.call("gf.permute", gf.permute,
                                                                    x, tuple(dims))
    elif op == 6:
        g.method(x, "transpose", g.dim(nd), g.dim(nd))
    elif op == 7:
        g.method(x, "t")
    elif op == 8:
        target_shape = tuple(g.pick(k, k, -1, g.size(1, 4)) if k == 1 else g.pick(k, k, -1)
                             for k in s)
        target_shape = _sizes(g, (g.size(1, 3),) * g.int(0, 1) + target_shape)
        g.method(x, g.pick("expand", "broadcast_to"), target_shape)
    elif op == 9:
        g.method(x, "repeat", *_sizes(g, tuple(g.size(0, 3) for _ in range(nd + g.int(-1, 1)))))
    elif op == 10:
        g.method(x, "flip", g.pick(g.dim(nd), lit((0, 1)), lit(()), lit([0, 0])))


def _splitting_and_other_ops(g: Gen, x: V, op: int) -> None:
    """shape_ops 11-21: split, chunk, unbind, narrow, cat/stack, pad, conversions, to."""
    s, nd = x.value.shape, x.value.ndim
    if op == 11:
        g.method(x, "split", g.pick(1, 2, 0, -1, [1, 1], [2, 2, 2], (), 2**63), g.dim(nd))
    elif op == 12:
        g.method(x, "chunk", g.pick(1, 2, 3, 0, -1), g.dim(nd))
    elif op == 13:
        g.method(x, "unbind", g.dim(nd))
    elif op == 14:
        g.method(x, "narrow", g.dim(nd), g.int(-3, 3), g.int(-1, 3))
    elif op == 15:
        others = [g.tensor(g.broadcast_partner(s) if g.chance(0.3) else s,
                           g.pick(x.value.dtype.name, g.dtype())) for _ in range(g.int(0, 2))]
        seq = [x] + others
        fn = g.pick("cat", "stack", "concat")
        lst = V("[" + ", ".join(v.code for v in seq) + "]", [v.value for v in seq])
        g.call(f"gf.{fn}", getattr(gf, fn), g.pick(lst, lst, lst, lit([]), x), g.dim(nd + 1))
    elif op == 16:
        g.call("F.pad", F.pad, x, _sizes(g, tuple(g.int(-1, 2) for _ in range(g.pick(
            2, 2, 4, 6, 1, 0)))), g.pick("constant", "reflect", "replicate", "circular",
                                           "bad"), g.pick(0.0, 1.5, None))
    elif op == 17:
        g.method(x, g.pick("view_as", "reshape_as", "expand_as", "type_as"),
                 g.tensor(g.pick(s, g.shape(), g.broadcast_partner(s))))
    elif op == 18:
        g.method(x, g.pick("clone", "contiguous", "detach", "float", "double", "long", "bool",
                           "item", "tolist", "numpy", "is_contiguous", "numel", "dim",
                           "element_size", "__len__", "__bool__", "__float__", "__int__",
                           "__index__", "__repr__", "__iter__"),
                 *(({},) if g.chance(0.1) else ()))
    elif op == 19:
        g.method(x, "size", g.dim(nd))
    elif op == 20:
        g.method(x, "to", g.pick(g.gf_dtype(), lit("float64"), lit("int32"), lit(int),
                                 g.tensor()), names=("dtype", "device"))
    else:
        g.call("gf.split", gf.split, x, g.pick(1, 2, [1, 2], 0), g.dim(nd))


# ------------------------------------------------------------------ indexing
def _key(g: Gen, s: tuple):
    """An index: ints, slices, None, Ellipsis, masks and index tensors, and bad ones."""
    parts = []
    for k in range(g.int(0, len(s) + 1)):
        size = s[k] if k < len(s) else 1
        kind = g.int(0, 11)
        if kind <= 2:
            parts.append(lit(g.int(-size - 1, size)))
        elif kind <= 4:
            parts.append(lit(slice(g.pick(None, 0, 1, -1, 2**63), g.pick(None, 2, -1, 10),
                                   g.pick(None, None, 1, 2, -1, 0))))
        elif kind == 5:
            parts.append(lit(None))
        elif kind == 6:
            parts.append(lit(Ellipsis))
        elif kind == 7:
            parts.append(g.tensor(s[k:] if g.chance(0.6) else (size,), "bool"))
        elif kind == 8:
            parts.append(g.index((g.int(0, 3),), size))
        elif kind == 9:
            parts.append(lit(g.pick([0, 1], [True, False], [], [-1])))
        else:
            parts.append(g.pick(lit(1.5), lit("a"), g.tensor((), "float32"), lit(2**63),
                                g.tensor((2,), "float32")))
    if len(parts) == 1 and g.chance(0.7):
        return parts[0]
    return V("(" + "".join(p.code + ", " for p in parts) + ")", tuple(p.value for p in parts))


@target(8)
def indexing(g: Gen) -> None:
    x = g.tensor()
    s, nd = x.value.shape, x.value.ndim
    kind = g.int(0, 6)
    if kind <= 2:
        g.call("operator.getitem", operator.getitem, x, _key(g, s), indexing=True,
               names=("getitem", "index"), junk=False)
        _maybe_backward(g, "getitem")
    elif kind == 3:
        value = g.pick(lit(g.float()), lit(2), g.tensor(g.shape(g.int(0, 2))), lit("a"))
        g.call("operator.setitem", operator.setitem, x, _key(g, s), value, indexing=True,
               names=("setitem", "index"), junk=False)
    elif kind == 4:
        d = g.dim(nd)
        size = s[d.value] if isinstance(d.value, int) and -nd <= d.value < nd else 1
        g.method(x, g.pick("index_select", "gather"), d,
                 g.index(g.pick((g.int(0, 3),), s, g.shape()), size), indexing=True)
    elif kind == 5:
        d = g.dim(nd)
        size = s[d.value] if isinstance(d.value, int) and -nd <= d.value < nd else 1
        src = g.tensor(g.pick(s, g.shape()), g.pick(x.value.dtype.name, g.dtype()))
        g.method(x, "scatter_add", d, g.index(g.pick(s, g.shape()), size), src, indexing=True)
    else:
        d = g.dim(nd)
        size = s[d.value] if isinstance(d.value, int) and -nd <= d.value < nd else 1
        k = g.int(0, 3)
        src_shape = tuple(k if i == (d.value % max(nd, 1)) else n for i, n in enumerate(s)) \
            if isinstance(d.value, int) else s
        g.method(x, "index_add", d, g.index((k,), size),
                 g.tensor(g.pick(src_shape, g.shape()), x.value.dtype.name), indexing=True)


# ------------------------------------------------------------------ issue 16's composed ops
@target(4)
def composed_ops(g: Gen) -> None:
    x = g.tensor()
    s, nd = x.value.shape, x.value.ndim
    op = g.pick("tril", "triu", "diag", "roll", "cumsum", "cumprod", "sort", "argsort", "topk",
                "nonzero", "unique", "masked_select", "isclose", "outer", "scatter")
    if op in ("tril", "triu", "diag"):
        g.method(x, op, g.int(-3, 3))
    elif op == "roll":
        g.method(x, op, g.pick(1, -2, (1, 1), 7), g.pick(None, g.dim(nd), (0, -1)))
    elif op in ("cumsum", "cumprod", "argsort"):
        g.method(x, op, g.dim(nd))
    elif op == "sort":
        g.method(x, op, g.dim(nd), g.pick(True, False), stable=g.pick(True, False))
    elif op == "topk":
        g.method(x, op, g.int(-1, 4), g.dim(nd), g.pick(True, False))
    elif op in ("nonzero", "unique"):
        g.method(x, op, **_options(g, as_tuple=(True, False)) if op == "nonzero" else
                 _options(g, return_inverse=(True, False), return_counts=(True, False)))
    elif op == "masked_select":
        g.method(x, op, g.tensor(g.pick(s, g.broadcast_partner(s), g.shape()), "bool"))
    elif op == "isclose":
        g.method(x, op, g.tensor(g.pick(s, g.broadcast_partner(s))), **_options(
            g, rtol=(0.1, -1.0), equal_nan=(True, False)))
    elif op == "outer":
        g.method(x, op, g.tensor(g.shape(1), x.value.dtype.name))
    else:
        d = g.dim(nd)
        size = s[d.value] if isinstance(d.value, int) and -nd <= d.value < nd else 1
        g.method(x, op, d, g.index(g.pick(s, g.shape()), size),
                 g.tensor(g.pick(s, g.shape()), x.value.dtype.name), indexing=True)
    _maybe_backward(g, op)


# ------------------------------------------------------------------ issue 16's NumPy-backed ops
@target(3)
def numpy_backed_ops(g: Gen) -> None:
    """einsum, cdist, gradflow.linalg, normal, multinomial and the half-float conversions."""
    n, b = g.size(0, 3), g.size(0, 2)
    op = g.pick("einsum", "cdist", "inv", "det", "slogdet", "solve", "vector_norm",
                "matrix_norm", "norm", "multinomial", "normal", "half", "bfloat16")
    square = g.tensor(g.pick((n, n), (b, n, n), g.shape()), g.dtype(floats_only=g.chance(0.8)))
    if op == "einsum":
        eq = g.pick("ij,jk->ik", "ii", "...ij->...ji", "bij,bjk", "i,i->", "ij->k", "i1")
        g.call("gf.einsum", gf.einsum, lit(eq), square, g.tensor(g.pick((n, n), g.shape()),
                                                                  square.value.dtype.name))
    elif op == "cdist":
        m = g.size(0, 3)
        g.call("gf.cdist", gf.cdist, g.tensor((b, n, m), "float64"),
               g.tensor(g.pick((b, 2, m), (2, m + 1), g.shape()), "float64"),
               g.pick(2.0, 1.0, 0.0, 3.5, float("inf"), -1.0))
    elif op in ("inv", "det", "slogdet"):
        g.call(f"gf.linalg.{op}", getattr(gf.linalg, op), square)
    elif op == "solve":
        g.call("gf.linalg.solve", gf.linalg.solve, square,
               g.tensor(g.pick((n,), (n, 2), (b, n, 1), g.shape()), square.value.dtype.name),
               **_options(g, left=(True, False)))
    elif op in ("vector_norm", "matrix_norm", "norm"):
        ords = ("fro", "nuc", 1, -1, 2, float("inf"), 0, 3.5) if op != "vector_norm" else (
            0, 1, 2, -1, float("inf"), 3.5)
        g.call(f"gf.linalg.{op}", getattr(gf.linalg, op), square, g.pick(*ords),
               **_options(g, dim=(None, -1, (0, 1), (-2, -1)), keepdim=(True, False)))
    elif op == "multinomial":
        g.method(g.tensor(g.pick((n + 1,), (b + 1, n + 1), g.shape()), "float64"), "abs",
                 var="w", junk=False)
        g.method(g.ref("w"), "multinomial", g.int(0, n + 3), g.pick(True, False))
    elif op == "normal":
        g.call("gf.normal", gf.normal, g.pick(0.0, square), g.pick(1.0, -1.0, square),
               **_options(g, size=((2, n),)))
    else:
        x = g.method(square, op, var="h").ref("h")
        g.expr("h + h", lambda h: h + h, x, names=(op,))
        g.expr("h.float()", lambda h: h.float(), x, names=(op,))
        return
    _maybe_backward(g, op)


# ------------------------------------------------------------------ linear algebra
@target(4)
def linalg(g: Gen) -> None:
    m, k, n, b = (g.size(0, 4) for _ in range(4))
    dt = g.dtype(floats_only=g.chance(0.8))
    op = g.pick("matmul", "mm", "bmm", "dot", "linear", "matmul")
    if op == "mm":
        shapes = ((m, k), (k if g.chance(0.85) else k + 1, n))
    elif op == "bmm":
        shapes = ((b, m, k), (b, k, n) if g.chance(0.85) else (b + 1, k, n))
    elif op == "dot":
        shapes = ((k,), (k if g.chance(0.85) else k + 1,))
    elif op == "linear":
        shapes = (g.shape(g.int(1, 3))[:-1] + (k,), (n, k if g.chance(0.85) else k + 1))
    else:
        shapes = (g.shape(g.int(0, 3)) + (m, k)[-g.int(1, 2):],
                  (k, n)[: g.int(1, 2)] if g.chance(0.5) else g.shape(g.int(1, 4)))
    a = g.tensor(shapes[0], dt)
    w = g.tensor(shapes[1], dt if g.chance(0.9) else g.dtype())
    if op == "linear":
        bias = g.pick(None, g.tensor((n,), dt), g.tensor((n + 1,), dt))
        g.call("F.linear", F.linear, a, w, bias)
    else:
        g.call(f"gf.{op}", getattr(gf, op), a, w)
    _maybe_backward(g, op)


# ------------------------------------------------------------------ nn.functional
def _image(g: Gen, c: int = None, ndim: int = 4, dt: str = None) -> V:
    c = g.size(1, 3) if c is None else c
    shape = (g.size(0, 2), c, g.size(1, 6), g.size(1, 6))[4 - ndim:]
    return g.tensor(shape, dt or g.dtype(floats_only=g.chance(0.9)))


@target(6)
def conv(g: Gen) -> None:
    """A conv at one of the SIMD levels this CPU has (the direct path's kernels differ)."""
    _C.cap_simd(g.pick(*_C.simd_levels()))
    try:
        _conv(g)
    finally:
        _C.cap_simd(_C.simd_levels()[-1])


def _conv(g: Gen) -> None:
    # direct: near the CPU's direct path (csrc/cpu/conv.h), channels in fours, rows about 8 or
    # 16 wide (its vectors on AVX2 and AVX-512), stride 1 or a stride 2 that divides the kernel;
    # otherwise anything small
    direct = g.chance(0.3)
    groups = 1 if direct else g.pick(1, 1, 1, 2, 0, -1, 3)
    cin = (g.pick(3, 4, 8) if direct else g.size(1, 2)) * (groups if groups > 0 else 1)
    cout = (g.pick(4, 5, 8) if direct else g.size(1, 2)) * (groups if groups > 0 else 1)
    if direct:
        x = g.tensor((g.size(0, 2), cin, g.int(1, 9), g.pick(6, 7, 8, 9, 10, 15, 16, 17, 18)),
                     g.pick("float32", "float32", "float64"))
    else:
        x = _image(g, cin, g.pick(4, 4, 4, 3, 2, 5))
    dt = x.value.dtype.name if g.chance(0.9) else g.dtype()
    kh, kw = (g.pick(1, 2, 3, 4), g.pick(2, 3, 4)) if direct else (g.size(1, 3), g.size(1, 3))
    transposed = g.chance(0.35)
    wshape = (cin, cout // max(groups, 1), kh, kw) if transposed else (
        cout, cin // max(groups, 1), kh, kw)
    if g.chance(0.1):
        wshape = g.shape()
    w = g.tensor(wshape, dt)
    bias = g.pick(None, g.tensor((cout,), dt), g.tensor((cout + 1,), dt))
    if direct:
        kw_ = _options(g, stride=(1, 1, 2), padding=(0, 1, 2, 5, (1, 0), "same"))
    else:
        kw_ = _options(g, stride=(_pair(g, 1, 3), 0, -1, 2**63),
                       padding=(_pair(g, 0, 2), -1, "same", "valid", 2**40),
                       dilation=(_pair(g, 1, 2), 0), groups=(groups,))
    if transposed:
        kw_.update(_options(g, output_padding=(0, 1, 2, (0, 1))))
        g.call("F.conv_transpose2d", F.conv_transpose2d, x, w, bias, **kw_)
    else:
        g.call("F.conv2d", F.conv2d, x, w, bias, **kw_)
    _maybe_backward(g, "conv")


@target(5)
def pooling(g: Gen) -> None:
    x = _image(g, ndim=g.pick(4, 4, 3, 2))
    k = _pair(g, 1, 3)
    kind = g.int(0, 5)
    if kind == 0:
        g.call("F.max_pool2d", F.max_pool2d, x, k, **_options(
            g, stride=(None, 1, 2, 0, -1), padding=(0, 1, 2, -1), dilation=(1, 2, 0),
            ceil_mode=(True, False), return_indices=(True, False)))
    elif kind == 1:
        g.call("F.avg_pool2d", F.avg_pool2d, x, k, **_options(
            g, stride=(None, 1, 2, 0), padding=(0, 1, 2, -1), ceil_mode=(True, False),
            count_include_pad=(True, False), divisor_override=(None, 1, 0, -2)))
    elif kind == 2:
        fn = g.pick("adaptive_avg_pool2d", "adaptive_max_pool2d")
        g.call(f"F.{fn}", getattr(F, fn), x, g.pick(1, 2, (2, 3), (None, 2), 0, -1, (1,),
                                                     2**40))
    elif kind == 3:
        g.call("F.max_pool2d", F.max_pool2d, x, k, return_indices=True, var="out", junk=False)
        g.call("unpool", unpool, g.ref("out"), k,
               **_options(g, stride=(None, 1, 2, 0), padding=(0, 1, -1),
                          output_size=(None, (4, 4), (2**40, 2), (1, 1))),
               names=("max_unpool2d",))
    elif kind == 4:
        g.call("F.max_unpool2d", F.max_unpool2d, x, g.index(x.value.shape, 10), k,
               **_options(g, stride=(None, 1, 2), output_size=(None, (4, 4), (2**40, 2))))
    else:
        kw = {"size": lit(g.pick(2, (3, 4), 0, -1, (2**40, 2), (1,)))} if g.chance(0.5) else {
            "scale_factor": lit(g.pick(2, 0.5, 1.5, (2, 3), 0, -1, float("nan"), 2**40))}
        kw.update(_options(g, mode=("nearest", "bilinear", "bicubic", "linear", "bad"),
                           align_corners=(None, True, False)))
        g.call("F.interpolate", F.interpolate, x, **kw)
    _maybe_backward(g, "pool")


@target(5)
def normalization(g: Gen) -> None:
    x = _image(g, ndim=g.pick(4, 4, 3, 2))
    s = x.value.shape
    c = s[1] if len(s) > 1 else 1
    dt = x.value.dtype.name

    def vec(n):
        return g.pick(None, g.tensor((n,), dt), g.tensor((n,), dt),
                      g.tensor((n + 1,), dt), g.tensor((n,), "int64"))

    kind = g.int(0, 4)
    if kind == 0:
        g.call("F.batch_norm", F.batch_norm, x, vec(c), vec(c), vec(c), vec(c),
               **_options(g, training=(True, False), momentum=(0.1, None, -1.0, 2.0),
                          eps=(1e-5, 0.0, -1.0)))
    elif kind == 1:
        ns = s[-g.int(1, min(2, len(s))):] if g.chance(0.85) else g.shape(g.int(0, 2))
        w = g.pick(None, g.tensor(ns, dt), g.tensor(g.shape(), dt))
        g.call("F.layer_norm", F.layer_norm, x, g.pick(ns, ns, list(ns), 3, (), -1), w,
               **_options(g, eps=(1e-5, 0.0, -1.0)))
    elif kind == 2:
        groups = g.pick(1, c, 2, 0, -1, 3)
        g.call("F.group_norm", F.group_norm, x, groups, vec(c), vec(c),
               **_options(g, eps=(1e-5, 0.0)))
    elif kind == 3:
        g.call("F.instance_norm", F.instance_norm, x, vec(c), vec(c), vec(c), vec(c),
               **_options(g, use_input_stats=(True, False), momentum=(0.1, 2.0)))
    else:
        g.call("F.normalize", F.normalize, x, **_options(g, p=(2.0, 1, 0, -1, float("inf")),
                                                         dim=(1, 0, -1, 5), eps=(1e-12, 0.0)))
    _maybe_backward(g, "norm")


@target(6)
def losses(g: Gen) -> None:
    n, c = g.size(0, 3), g.size(1, 4)
    dt = g.dtype(floats_only=g.chance(0.9))
    extra = g.shape(g.pick(0, 0, 1, 2), 1, 3)
    x = g.tensor((n, c) + extra if g.chance(0.9) else g.shape(), dt)
    s = x.value.shape
    kind = g.int(0, 6)
    red = _options(g, reduction=(_reduction(g),))
    if kind <= 1:
        fn = g.pick("cross_entropy", "nll_loss")
        tshape = (s[0],) + tuple(s[2:]) if len(s) > 1 else ()
        target_ = g.pick(g.index(tshape, c), g.index(tshape, c),
                         g.tensor(tshape, g.pick("float32", "float64", "bool")),
                         g.tensor(s, dt), g.index(g.shape(), c))
        opts = _options(g, weight=g.pick(g.tensor((c,), dt), g.tensor((c + 1,), dt)),
                        ignore_index=(-100, 0, 1, 2**63))
        if fn == "cross_entropy":
            opts.update(_options(g, label_smoothing=(0.0, 0.1, 1.5, -0.1)))
        g.call(f"F.{fn}", getattr(F, fn), x, target_, **opts, **red)
    elif kind == 2:
        fn = g.pick("binary_cross_entropy", "binary_cross_entropy_with_logits")
        xin = x if fn.endswith("logits") or g.chance(0.2) else V(
            f"{x.code}.detach().sigmoid()", x.value.detach().sigmoid()
            if x.value.is_floating_point() else x.value)
        opts = _options(g, weight=g.pick(g.tensor(s, dt), g.tensor((c,), dt)))
        if fn.endswith("logits"):
            opts.update(_options(g, pos_weight=g.pick(g.tensor((c,), dt), g.tensor((), dt))))
        g.call(f"F.{fn}", getattr(F, fn), xin, g.tensor(g.pick(s, s, g.shape()),
                                                         g.pick(dt, dt, "int64")), **opts, **red)
    elif kind == 3:
        fn = g.pick("mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "kl_div")
        opts = {"smooth_l1_loss": _options(g, beta=(1.0, 0.0, -1.0)),
                "huber_loss": _options(g, delta=(1.0, 0.0, -1.0)),
                "kl_div": _options(g, log_target=(True, False))}.get(fn, {})
        g.call(f"F.{fn}", getattr(F, fn), x,
               g.tensor(g.pick(s, s, g.broadcast_partner(s), g.shape()), g.pick(dt, dt, "int64")),
               **opts, **red)
    elif kind == 4:
        g.call("F.one_hot", F.one_hot, g.index(g.shape(), c),
               g.pick(-1, c, c + 1, 0, 2**40, -2))
    elif kind == 5:
        w = g.tensor((c, g.size(0, 3)), dt)
        g.call("F.embedding", F.embedding, g.index(g.shape(), c), w,
               **_options(g, padding_idx=(None, 0, -1, c, 2**63), max_norm=(None, 1.0, -1.0),
                          scale_grad_by_freq=(True, False), sparse=(False, True)))
    else:
        fn = g.pick("dropout", "dropout2d")
        g.call(f"F.{fn}", getattr(F, fn), x, **_options(
            g, p=(0.5, 0.0, 1.0, -0.1, 1.5, float("nan")), training=(True, False),
            inplace=(True, False)))
    _maybe_backward(g, "loss")


# ------------------------------------------------------------------ nn layers
def _layer(g: Gen):
    """(constructor code, class, args, input V) for a layer with drawn arguments."""
    c = g.size(1, 4)
    x4 = _image(g, c)
    k = g.size(1, 3)
    kind = g.int(0, 16)
    if kind == 0:
        return "nn.Linear", nn.Linear, (c, g.size(0, 3)), g.tensor(g.shape(g.int(1, 3))[:-1]
                                                                     + (c,))
    if kind == 1:
        return "nn.Conv2d", nn.Conv2d, (c, g.size(1, 3), k), x4
    if kind == 2:
        return "nn.ConvTranspose2d", nn.ConvTranspose2d, (c, g.size(1, 3), k), x4
    if kind == 3:
        return "nn.BatchNorm2d", nn.BatchNorm2d, (c,), x4
    if kind == 4:
        return "nn.BatchNorm1d", nn.BatchNorm1d, (c,), _image(g, c, g.pick(2, 3))
    if kind == 5:
        return "nn.LayerNorm", nn.LayerNorm, (x4.value.shape[-1:],), x4
    if kind == 6:
        return "nn.GroupNorm", nn.GroupNorm, (g.pick(1, c, 2), c), x4
    if kind == 7:
        return "nn.Embedding", nn.Embedding, (c, g.size(1, 3)), g.index(g.shape(), c)
    if kind == 8:
        return "nn.MaxPool2d", nn.MaxPool2d, (k,), x4
    if kind == 9:
        return "nn.AvgPool2d", nn.AvgPool2d, (k,), x4
    if kind == 10:
        return "nn.AdaptiveAvgPool2d", nn.AdaptiveAvgPool2d, (g.pick(1, 2, (2, 3)),), x4
    if kind == 11:
        return "nn.InstanceNorm2d", nn.InstanceNorm2d, (c,), x4
    if kind == 12:
        return "nn.PReLU", nn.PReLU, (g.pick(1, c),), x4
    if kind == 13:
        return "nn.Upsample", nn.Upsample, (), x4
    if kind == 14:
        return "nn.Flatten", nn.Flatten, (), x4
    if kind == 15:
        return "nn.Unflatten", nn.Unflatten, (1, (c, 1)), x4
    name = g.pick("ReLU", "Sigmoid", "Tanh", "GELU", "SiLU", "ELU", "LeakyReLU", "Softplus",
                  "Softmax", "LogSoftmax", "Dropout", "Dropout2d", "Identity", "ReLU6")
    return f"nn.{name}", getattr(nn, name), (), g.tensor()


_LAYER_KWARGS = {
    "Linear": dict(bias=(True, False, None)),
    "Conv2d": dict(stride=(1, 2, 0, (1, 2)), padding=(0, 1, "same", -1, "bad"),
                   dilation=(1, 2, 0), groups=(1, 2, 0), bias=(True, False),
                   padding_mode=("zeros", "reflect", "replicate", "circular", "bad")),
    "ConvTranspose2d": dict(stride=(1, 2, 0), padding=(0, 1, -1), output_padding=(0, 1, 3),
                            groups=(1, 2), dilation=(1, 2, 0), padding_mode=("zeros", "bad")),
    "BatchNorm2d": dict(eps=(1e-5, 0.0, -1.0), momentum=(0.1, None, 2.0),
                        affine=(True, False), track_running_stats=(True, False)),
    "BatchNorm1d": dict(eps=(1e-5, -1.0), momentum=(0.1, None), affine=(True, False)),
    "LayerNorm": dict(eps=(1e-5, 0.0), elementwise_affine=(True, False), bias=(True, False)),
    "GroupNorm": dict(eps=(1e-5, 0.0), affine=(True, False)),
    "Embedding": dict(padding_idx=(None, 0, -1, 100), max_norm=(None, 1.0),
                      scale_grad_by_freq=(True, False), sparse=(False, True)),
    "MaxPool2d": dict(stride=(None, 1, 0), padding=(0, 1, 5), dilation=(1, 2),
                      return_indices=(True, False), ceil_mode=(True, False)),
    "AvgPool2d": dict(stride=(None, 1, 0), padding=(0, 1, 5), ceil_mode=(True, False),
                      count_include_pad=(True, False), divisor_override=(None, 0, 2)),
    "InstanceNorm2d": dict(affine=(True, False), track_running_stats=(True, False)),
    "PReLU": dict(init=(0.25, -1.0)),
    "Upsample": dict(size=(None, 3, (2, 3), 0), scale_factor=(None, 2, 0.5, 0),
                     mode=("nearest", "bilinear", "bad"), align_corners=(None, True)),
    "Flatten": dict(start_dim=(1, 0, -1, 5), end_dim=(-1, 0, 5)),
    "Softmax": dict(dim=(None, 0, 1, -1, 5)),
    "LogSoftmax": dict(dim=(None, 0, 1, -1, 5)),
    "Dropout": dict(p=(0.5, 0.0, 1.0, -1.0, 2)),
    "Dropout2d": dict(p=(0.5, -1.0), inplace=(True, False)),
    "ELU": dict(alpha=(1.0, -1.0)),
    "LeakyReLU": dict(negative_slope=(0.01, -1.0)),
    "Softplus": dict(beta=(1.0, 0.0), threshold=(20.0, -1.0)),
    "GELU": dict(approximate=("none", "tanh", "bad")),
}


@target(8)
def layers(g: Gen) -> None:
    code, cls, args, x = _layer(g)
    name = code.split(".")[1]
    kwargs = _options(g, **_LAYER_KWARGS.get(name, {}))
    if g.chance(0.1):
        kwargs["dtype"] = g.gf_dtype()
    if g.chance(0.05):
        kwargs["device"] = _device(g)
    args = tuple(_bad_size(g) if g.chance(0.05) else a for a in args)
    aliases = _FUNCTIONAL.get(name, ())
    g.call(code, cls, *args, **kwargs, var="m", names=aliases)
    if g.chance(0.2):
        g.method(g.ref("m"), g.pick("eval", "train", "double", "float", "zero_grad",
                                    "requires_grad_", "cpu", "cuda"), junk=False, names=(name,))
    g.call("m", g.ref("m"), x, var="y", names=(name,) + aliases, junk=False)
    g.call("backward_sum", backward_sum, g.ref("y"), names=(name, "backward") + aliases, junk=False)


_FUNCTIONAL = {
    "Conv2d": ("conv2d",), "ConvTranspose2d": ("conv_transpose2d",),
    "BatchNorm2d": ("batch_norm",), "BatchNorm1d": ("batch_norm",),
    "LayerNorm": ("layer_norm",), "GroupNorm": ("group_norm",), "Embedding": ("embedding",),
    "MaxPool2d": ("max_pool2d",), "AvgPool2d": ("avg_pool2d",),
    "AdaptiveAvgPool2d": ("adaptive_avg_pool2d",), "InstanceNorm2d": ("instance_norm",),
    "PReLU": ("prelu",), "Upsample": ("interpolate",), "Flatten": ("flatten",),
    "Unflatten": ("unflatten",), "Softmax": ("softmax",), "LogSoftmax": ("log_softmax",),
    "Dropout": ("dropout",), "Dropout2d": ("dropout2d",), "Linear": ("linear",),
    "ELU": ("elu",), "LeakyReLU": ("leaky_relu",), "Softplus": ("softplus",),
    "GELU": ("gelu",), "SiLU": ("silu",), "ReLU6": ("relu6", "hardtanh"),
}


@target(3)
def loss_layers(g: Gen) -> None:
    name = g.pick("CrossEntropyLoss", "NLLLoss", "BCELoss", "BCEWithLogitsLoss", "MSELoss",
                  "L1Loss", "SmoothL1Loss", "HuberLoss", "KLDivLoss")
    c = g.size(1, 4)
    kw = _options(g, reduction=(_reduction(g),))
    if name in ("CrossEntropyLoss", "NLLLoss"):
        kw.update(_options(g, weight=g.tensor((g.pick(c, c + 1),)), ignore_index=(-100, 0)))
        if name == "CrossEntropyLoss":
            kw.update(_options(g, label_smoothing=(0.0, 0.2, 2.0)))
    n = g.size(0, 3)
    x = g.tensor((n, c), g.dtype(floats_only=True))
    t = g.index((n,), c) if name in ("CrossEntropyLoss", "NLLLoss") and g.chance(0.8) else \
        g.tensor(g.pick((n, c), (n,), g.shape()), g.pick("float32", "float64", "int64"))
    snake = {"CrossEntropyLoss": "cross_entropy", "NLLLoss": "nll_loss",
             "BCELoss": "binary_cross_entropy",
             "BCEWithLogitsLoss": "binary_cross_entropy_with_logits",
             "MSELoss": "mse_loss", "L1Loss": "l1_loss", "SmoothL1Loss": "smooth_l1_loss",
             "HuberLoss": "huber_loss", "KLDivLoss": "kl_div"}[name]
    g.call(f"nn.{name}", getattr(nn, name), **kw, var="m", names=(snake,))
    g.call("m", g.ref("m"), x, t, names=(name, snake), junk=False)


@target(3)
def modules(g: Gen) -> None:
    g.call("nn.Sequential", nn.Sequential, V("nn.Linear(3, 2)", nn.Linear(3, 2)),
           V("nn.ReLU()", nn.ReLU()), var="m", junk=False)
    m = g.ref("m")
    kind = g.int(0, 9)
    if kind == 0:
        g.method(m, "load_state_dict", g.pick(
            lit({}), V("{'0.weight': T((2, 3))}", {"0.weight": gf.zeros(2, 3)}),
            V("{'0.weight': T((3, 3)), '0.bias': T((2,))}",
              {"0.weight": gf.zeros(3, 3), "0.bias": gf.zeros(2)}),
            V("{'0.weight': 1, '0.bias': 'a'}", {"0.weight": 1, "0.bias": "a"}),
            lit([1, 2])), **_options(g, strict=(True, False)), names=("Sequential",))
    elif kind == 1:
        g.method(m, "to", g.pick(_device(g), g.gf_dtype(), lit("int64"), lit(3)),
                 names=("Sequential", "dtype", "device"))
    elif kind == 2:
        g.method(m, "register_buffer", g.pick("buf", "", "a.b", 3, "weight"),
                 g.pick(lit(None), g.tensor(), lit(3)), names=("Sequential",))
    elif kind == 3:
        g.method(m, "add_module", g.pick("x", "", "a.b", 3), g.pick(
            V("nn.ReLU()", nn.ReLU()), lit(None), lit(3)), names=("Sequential",))
    elif kind == 4:
        g.call("operator.getitem", operator.getitem, m, g.pick(0, 1, 2, -3, slice(0, 1), "a",
                                                              1.5), names=("Sequential",),
               indexing=True)
    elif kind == 5:
        g.method(m, g.pick("get_submodule", "get_parameter"), g.pick("0", "0.weight", "x", "",
                                                                      "0.x", 3),
                 names=("Sequential",))
        g.steps[-1].extra_ok = (AttributeError,)  # a missing name, as PyTorch's lookups
    elif kind == 6:
        g.method(m, "apply", g.pick(V("lambda m: None", lambda m: None), lit(3)),
                 names=("Sequential",))
    elif kind == 7:
        g.method(m, "register_parameter", g.pick("p", "", "a.b"),
                 g.pick(lit(None), g.tensor(), V("nn.Parameter(gf.zeros(2))",
                                                 nn.Parameter(gf.zeros(2)))),
                 names=("Sequential",))
    elif kind == 8:
        g.call("nn.Parameter", nn.Parameter, g.pick(g.tensor(), lit(3), lit(None)),
               **_options(g, requires_grad=(True, False)))
    else:
        g.call("m", m, g.tensor(g.pick((2, 3), (3,), (2, 2), ())), names=("Sequential",
                                                                          "linear"))


@target(2)
def init_fns(g: Gen) -> None:
    fn = g.pick("uniform_", "normal_", "constant_", "zeros_", "ones_", "eye_", "xavier_uniform_",
                "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "trunc_normal_",
                "orthogonal_", "calculate_gain")
    if fn == "calculate_gain":
        g.call("nn.init.calculate_gain", nn.init.calculate_gain,
               g.pick("relu", "tanh", "leaky_relu", "bad", "selu"), g.pick(None, 0.2, "a"))
        return
    x = g.tensor(g.shape(), g.dtype(floats_only=g.chance(0.85)))
    args = {"constant_": (g.float(),)}.get(fn, ())
    kw = {}
    if fn.startswith("kaiming"):
        kw = _options(g, mode=("fan_in", "fan_out", "bad"),
                      nonlinearity=("relu", "leaky_relu", "bad"))
    g.call(f"nn.init.{fn}", getattr(nn.init, fn), x, *args, **kw)


# ------------------------------------------------------------------ optimizers
_OPT_KWARGS = {
    "SGD": dict(lr=(0.1, -1.0, 0.0), momentum=(0.0, 0.9, -1.0), dampening=(0.0, 0.5),
                weight_decay=(0.0, 0.1, -1.0), nesterov=(True, False)),
    "Adam": dict(lr=(1e-3, -1.0), betas=((0.9, 0.999), (1.0, 0.5), (0.9,), (-0.1, 0.9)),
                 eps=(1e-8, -1.0), weight_decay=(0.0, -1.0), amsgrad=(True, False)),
    "AdamW": dict(lr=(1e-3, -1.0), betas=((0.9, 0.999), (2.0, 0.9)), weight_decay=(0.01, -1.0),
                  amsgrad=(True, False)),
    "Adagrad": dict(lr=(0.01, -1.0), lr_decay=(0.0, -1.0), eps=(1e-10, -1.0),
                    initial_accumulator_value=(0.0, -1.0)),
    "Adadelta": dict(lr=(1.0, -1.0), rho=(0.9, 1.5, -0.1), eps=(1e-6, -1.0)),
    "RMSprop": dict(lr=(0.01, -1.0), alpha=(0.99, -1.0), eps=(1e-8, -1.0),
                    momentum=(0.0, -1.0, 0.5), centered=(True, False)),
}


@target(4)
def optimizers(g: Gen) -> None:
    name = g.pick(*_OPT_KWARGS)
    g.call("nn.Linear", nn.Linear, 3, 2, var="m", junk=False)
    code = g.pick("m.parameters()", "list(m.parameters())", "[]", "None", "3",
                  "[{'params': list(m.parameters()), 'lr': 0.5}]", "[T((2,), 'float32', 1)]",
                  "T((2,), 'float32', 1, grad=True)", "[{'params': m.weight}, {'lr': 1}]")
    g.expr(code, _eval(code), g.ref("m"), var="params")
    kw = _options(g, **_OPT_KWARGS[name])
    if g.chance(0.1):
        kw["lr"] = g.junk()
    g.call(f"optim.{name}", getattr(optim, name), g.ref("params"), **kw, var="opt", junk=False)
    g.call("loss_backward", loss_backward, g.ref("m"), junk=False, names=(name, "backward"))
    opt = g.ref("opt")
    kind = g.int(0, 5)
    if kind <= 2:
        g.method(opt, "step", junk=False, names=(name,))
    elif kind == 3:
        g.method(opt, "zero_grad", *([g.pick(True, False, "a")] if g.chance(0.5) else []),
                 names=(name,))
    elif kind == 4:
        g.method(opt, "load_state_dict", g.pick(
            lit({}), lit({"state": {}, "param_groups": []}), lit({"state": {}}), lit(3),
            lit({"state": {0: {"momentum_buffer": 1}}, "param_groups": [{"params": [0, 1]}]}),
            lit({"state": {}, "param_groups": [{"params": [0]}]})), names=(name,))
    else:
        group = g.pick("{}", "{'params': []}", "3", "{'params': m.weight}",
                       "{'params': [T((2,), 'float32', 1, grad=True)], 'lr': -1.0}")
        g.expr(f"opt.add_param_group({group})", _eval(f"opt.add_param_group({group})"),
               g.ref("m"), opt, names=(name, "add_param_group", "params"))


def _eval(code: str) -> Callable:
    """A function of (m, opt) that evaluates `code`, a harness-written expression."""
    def run(m, opt=None):
        return eval(code, {"m": m, "opt": opt, "T": T, "list": list})  # noqa: S307
    return run


_SCHEDULERS = {
    "StepLR": lambda g: dict(step_size=lit(g.pick(1, 0, -1, 2.5)), gamma=lit(g.pick(0.1, -1.0))),
    "MultiStepLR": lambda g: dict(milestones=lit(g.pick([1, 2], [2, 1], [], [-1], 3))),
    "ExponentialLR": lambda g: dict(gamma=lit(g.pick(0.9, 0.0, -1.0))),
    "CosineAnnealingLR": lambda g: dict(T_max=lit(g.pick(10, 0, -1, 1.5))),
    "LinearLR": lambda g: dict(start_factor=lit(g.pick(0.3, 0.0, 2.0, -1.0)),
                               total_iters=lit(g.pick(5, 0, -1))),
    "LambdaLR": lambda g: dict(lr_lambda=g.pick(V("lambda e: 0.5", lambda e: 0.5), lit(3),
                                                V("[lambda e: 1.0] * 2", [lambda e: 1.0] * 2))),
    "OneCycleLR": lambda g: dict(max_lr=lit(g.pick(0.1, -1.0, [0.1, 0.2])),
                                 total_steps=lit(g.pick(10, 0, None, -1, 1)),
                                 **_options(g, epochs=(2, 0), steps_per_epoch=(3, 0),
                                            pct_start=(0.3, 1.5, 0.0),
                                            anneal_strategy=("cos", "linear", "bad"))),
    "CyclicLR": lambda g: dict(base_lr=lit(g.pick(0.01, -1.0)), max_lr=lit(g.pick(0.1, 0.0)),
                               **_options(g, step_size_up=(2, 0, -1),
                                          mode=("triangular", "exp_range", "bad"))),
    "ReduceLROnPlateau": lambda g: _options(g, mode=("min", "max", "bad"),
                                            factor=(0.1, 1.0, 2.0, -1.0), patience=(0, -1),
                                            threshold_mode=("rel", "abs", "bad")),
}


@target(3)
def schedulers(g: Gen) -> None:
    name = g.pick(*_SCHEDULERS)
    g.call("optim.SGD", optim.SGD, V("[nn.Parameter(gf.zeros(2))]",
                                     [nn.Parameter(gf.zeros(2))]), lr=0.1, momentum=0.9,
           var="opt", junk=False)
    g.call(f"lr_scheduler.{name}", getattr(lr_scheduler, name), g.ref("opt"),
           **_SCHEDULERS[name](g), var="s")
    for _ in range(g.int(1, 4)):
        if name == "ReduceLROnPlateau":
            g.method(g.ref("s"), "step", g.pick(1.0, 0.5, float("nan"), "a", None), names=(name,))
        else:
            g.method(g.ref("s"), "step", junk=False, names=(name,))
    g.method(g.ref("s"), g.pick("get_last_lr", "state_dict"), junk=False, names=(name,))


# ------------------------------------------------------------------ save / load
@target(3)
def save_load(g: Gen) -> None:
    path = os.path.join(g.tmpdir, f"f{g.int(0, 9)}.bin")
    obj = g.pick(g.tensor(), lit({"a": 1}), V("nn.Linear(2, 3).state_dict()",
                                            nn.Linear(2, 3).state_dict()),
                 V("{'w': T((2, 2)), 'n': [1, 2.5, 'x']}", {"w": gf.zeros(2, 2),
                                                           "n": [1, 2.5, "x"]}),
                 V("[T((0,)), T((3,), 'bool')]", [gf.zeros(0), gf.zeros(3, dtype=gf.bool)]),
                 lit(3), V("object()", object()), V("{1: T((2,))}", {1: gf.zeros(2)}),
                 V("T((2, 2)).t()", gf.zeros(2, 2).t()))
    kind = g.int(0, 3)
    if kind == 0:
        g.call("gf.save", gf.save, obj, g.pick(path, path, path, None, 3, g.tmpdir,
                                               "/nonexistent/dir/f.bin"))
        g.call("gf.load", gf.load, path, junk=False, **_options(g, map_location=(
            None, "cpu", "cuda", 3)))
    elif kind == 1:
        data = g.pick(b"", b"garbage", b"PK\x03\x04xx", b"\x93NUMPY", b"{}", b"\x00" * 64)
        g.call("write_bytes", write_bytes, path, data, junk=False)
        g.call("gf.load", gf.load, path, **_options(g, max_bytes=(None, 10, 0, -1)))
    elif kind == 2:
        g.call("gf.save", gf.save, obj, path, junk=False)
        g.call("truncate", truncate, path, g.int(0, 200), junk=False)
        g.call("gf.load", gf.load, path, junk=False)
    else:
        g.call("gf.load", gf.load, g.pick(path + ".missing", g.tmpdir, None, 3, ""))
    for s in g.steps:
        if s.names[0] in ("save", "load"):
            s.extra_ok = (OSError,)


# ------------------------------------------------------------------ autograd
@target(2)
def autograd(g: Gen) -> None:
    x = g.tensor(g.shape(), "float32", grad=True)
    g.call("gf.mul", gf.mul, x, x, var="y", junk=False)
    kind = g.int(0, 3)
    if kind == 0:
        g.method(g.ref("y"), "backward", g.pick(lit(None), g.tensor(x.value.shape), g.tensor(),
                                                lit(1.0)))
    elif kind == 1:
        g.call("gf.autograd.grad", gf.autograd.grad, g.ref("y"), g.pick(x, lit([]), lit(3),
                                                                          g.tensor()),
               **_options(g, grad_outputs=(None,), allow_unused=(True, False)))
    elif kind == 2:
        g.method(g.ref("y"), "register_hook", g.pick(lit(3), V("lambda g: None",
                                                               lambda g_: None)))
    else:
        g.method(x, "backward", junk=False)
