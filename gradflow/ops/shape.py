"""Shape ops: views (reshape, permute, expand, flip), joins (cat, stack), splits, pad,
and the dtype/device conversions. Views share storage and the version counter."""

from __future__ import annotations

import builtins
import numbers
from typing import Any, List, Optional, Sequence, Tuple, Union

import numpy as np

from gradflow import backends
from gradflow.autograd.function import Context, Function, Gradients
from gradflow.ops import index, reduce
from gradflow.ops.common import (
    allocating,
    as_int,
    as_ints,
    check_numel,
    check_same_device,
    check_tensor,
    normalize_dims,
    numpy_names,
    wrap_dim,
)
from gradflow.tensor import Tensor, _varargs
from gradflow.types import DeviceLike, Dims, DTypeLike, Number, as_dtype, dtype, promote_types
from gradflow.types import device as Device

Sizes = Union[int, Sequence[int]]  # a shape, sizes or dims argument: a sequence or one int


def _view_of(out: Tensor, base: Tensor) -> Tensor:
    """Mark `out` as a view of `base` when the backend returned shared storage."""
    if out._backend.shares_memory(out._data, base._data):
        out._version = base._version
        out._is_view = True
    return out


def _infer_shape(sizes: Sequence[int], numel: int, op: str, old: Sequence[int]
                 ) -> Tuple[int, ...]:
    shape = as_ints(sizes, op, "shape")
    if shape.count(-1) > 1:
        raise ValueError(f"{op}: only one dimension can be inferred, got shape {shape}")
    known = 1
    for s in shape:
        if s != -1:
            if s < 0:
                raise ValueError(f"{op}: invalid shape dimension {s} in {shape}")
            known *= s
    if -1 in shape:
        if known == 0 and numel == 0:
            raise ValueError(f"{op}: cannot reshape a tensor of 0 elements into shape {shape}: "
                             "the size of the -1 dim is ambiguous")
        if known == 0 or numel % known:
            raise ValueError(f"{op}: shape {shape} is invalid for input of size {numel}")
        shape = tuple(numel // known if s == -1 else s for s in shape)
    elif known != numel:
        raise ValueError(
            f"{op}: shape {shape} is invalid for input of size {numel} (shape {tuple(old)})"
        )
    return shape


class Reshape(Function[Tensor]):
    @staticmethod
    def forward(ctx: Context, x: Tensor, shape: Tuple[int, ...]) -> Tensor:
        ctx.in_shape = x.shape
        return _view_of(Tensor._make(x._backend.reshape(x._data, shape), x._backend), x)

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Gradients:
        return reshape(g, ctx.in_shape), None


def _ints_arg(value: Any) -> Tuple[Any, ...]:
    """A shape or dims argument: a sequence as a tuple, anything else as one item (which
    as_ints then checks, naming the op)."""
    return _varargs(tuple(value)) if isinstance(value, (tuple, list)) else (value,)


def reshape(x: Tensor, shape: Sizes) -> Tensor:
    """x with another shape (one dim may be -1: inferred), a view where the layout allows.

    >>> import gradflow as gf
    >>> gf.reshape(gf.arange(6), (2, 3))
    tensor([[0, 1, 2],
            [3, 4, 5]])
    """
    check_tensor(x, "reshape")
    shape = _infer_shape(_ints_arg(shape), x.numel(), "reshape", x.shape)
    check_numel(shape, "reshape", x.element_size())
    if shape == x.shape:
        return Reshape.apply(x, shape) if x.requires_grad else _alias(x)
    return Reshape.apply(x, shape)


def _alias(x: Tensor) -> Tensor:
    out = Tensor._make(x._data, x._backend)
    out._version, out._is_view = x._version, True
    return out


def view(x: Tensor, shape: Sizes) -> Tensor:
    """Like reshape, but the result must share x's storage (as PyTorch's view)."""
    shape = _infer_shape(_ints_arg(shape), x.numel(), "view", x.shape)
    check_numel(shape, "view", x.element_size())
    out = Reshape.apply(x, shape)
    if x.numel() and not out._backend.shares_memory(out._data, x._data):
        raise RuntimeError(
            f"view size {shape} is not compatible with input tensor's size {tuple(x.shape)} and "
            "stride (at least one dimension spans across two contiguous subspaces). Use "
            ".reshape(...) instead."
        )
    return out


def flatten(x: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """x with dims start_dim .. end_dim merged into one.

    >>> import gradflow as gf
    >>> gf.zeros(2, 3, 4).flatten(1).shape
    gradflow.Size([2, 12])
    """
    check_tensor(x, "flatten")
    s = wrap_dim(start_dim, x.ndim, "flatten", "start_dim")
    e = wrap_dim(end_dim, x.ndim, "flatten", "end_dim")
    if x.ndim == 0:
        return reshape(x, (1,))
    if s > e:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    n = 1
    for d in x.shape[s : e + 1]:
        n *= d
    return reshape(x, x.shape[:s] + (n,) + x.shape[e + 1 :])


@numpy_names
def unflatten(x: Tensor, dim: int, sizes: Sequence[int]) -> Tensor:
    """x with dim split into sizes (one may be -1).

    >>> import gradflow as gf
    >>> gf.zeros(2, 12).unflatten(1, (3, -1)).shape
    gradflow.Size([2, 3, 4])
    """
    check_tensor(x, "unflatten")
    if x.ndim == 0:
        raise RuntimeError("unflatten: cannot be applied to a 0-dim tensor")
    d = wrap_dim(dim, x.ndim, "unflatten")
    sizes = _infer_shape(_ints_arg(sizes), x.shape[d], "unflatten", x.shape)
    return reshape(x, x.shape[:d] + tuple(sizes) + x.shape[d + 1 :])


@numpy_names
def squeeze(x: Tensor, dim: Dims = None) -> Tensor:
    """x without its size-1 dims (only those among dim, when given).

    >>> import gradflow as gf
    >>> gf.zeros(2, 1, 3, 1).squeeze().shape, gf.zeros(2, 1, 3, 1).squeeze(1).shape
    (gradflow.Size([2, 3]), gradflow.Size([2, 3, 1]))
    """
    check_tensor(x, "squeeze")
    if dim is None:
        return reshape(x, tuple(s for s in x.shape if s != 1))
    dims = normalize_dims(dim, x.ndim, "squeeze")
    return reshape(x, tuple(s for i, s in enumerate(x.shape) if not (i in dims and s == 1)))


@numpy_names
def unsqueeze(x: Tensor, dim: int) -> Tensor:
    """x with a new size-1 dim at position dim.

    >>> import gradflow as gf
    >>> gf.tensor([1, 2]).unsqueeze(1)
    tensor([[1],
            [2]])
    """
    check_tensor(x, "unsqueeze")
    d = wrap_dim(dim, x.ndim + 1, "unsqueeze")
    return reshape(x, x.shape[:d] + (1,) + x.shape[d:])


class Permute(Function[Tensor]):
    @staticmethod
    def forward(ctx: Context, x: Tensor, axes: Tuple[int, ...]) -> Tensor:
        ctx.inverse = tuple(sorted(range(len(axes)), key=lambda i: axes[i]))
        return _view_of(Tensor._make(x._backend.permute(x._data, axes), x._backend), x)

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Gradients:
        return permute(g, ctx.inverse), None


def permute(x: Tensor, dims: Sequence[int]) -> Tensor:
    """x with its dims reordered (a view): dim i of the result is dim dims[i] of x.

    >>> import gradflow as gf
    >>> gf.permute(gf.zeros(2, 3, 4), (2, 0, 1)).shape
    gradflow.Size([4, 2, 3])
    """
    check_tensor(x, "permute")
    axes = normalize_dims(_ints_arg(dims), x.ndim, "permute")
    if len(axes) != x.ndim:
        raise ValueError(
            f"permute: number of dims don't match: input has {x.ndim} dims, got {len(axes)}"
        )
    return Permute.apply(x, axes)


def transpose(x: Tensor, dim0: int, dim1: int) -> Tensor:
    """x with dims dim0 and dim1 swapped (a view).

    >>> import gradflow as gf
    >>> gf.tensor([[1, 2, 3]]).transpose(0, 1)
    tensor([[1],
            [2],
            [3]])
    """
    check_tensor(x, "transpose")
    d0 = wrap_dim(dim0, x.ndim, "transpose", "dim0")
    d1 = wrap_dim(dim1, x.ndim, "transpose", "dim1")
    if x.ndim == 0:
        return x
    axes = list(range(x.ndim))
    axes[d0], axes[d1] = axes[d1], axes[d0]
    return Permute.apply(x, tuple(axes))


def t(x: Tensor) -> Tensor:
    """The transpose of a matrix (a tensor of at most 2 dims is returned as it is).

    >>> import gradflow as gf
    >>> gf.tensor([[1, 2], [3, 4]]).t()
    tensor([[1, 3],
            [2, 4]])
    """
    check_tensor(x, "t")
    if x.ndim > 2:
        raise ValueError(f"t() expects a tensor with <= 2 dimensions, but self is {x.ndim}D")
    return transpose(x, 0, 1) if x.ndim == 2 else x


class Expand(Function[Tensor]):
    @staticmethod
    def forward(ctx: Context, x: Tensor, shape: Tuple[int, ...]) -> Tensor:
        ctx.in_shape = x.shape
        return _view_of(Tensor._make(x._backend.broadcast_to(x._data, shape), x._backend), x)

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Gradients:
        return reduce.sum_to_shape(g, ctx.in_shape), None


def expand(x: Tensor, sizes: Sizes) -> Tensor:
    """x broadcast to sizes (a view; -1 keeps a dim); broadcast_to is the same function.

    >>> import gradflow as gf
    >>> gf.expand(gf.tensor([[1], [2]]), (2, 3))
    tensor([[1, 1, 1],
            [2, 2, 2]])
    """
    check_tensor(x, "expand")
    sizes = as_ints(_ints_arg(sizes), "expand", "size")
    if len(sizes) < x.ndim:
        raise ValueError(
            f"expand: the number of sizes provided ({len(sizes)}) must be greater or equal to "
            f"the number of dimensions in the tensor ({x.ndim})"
        )
    lead = len(sizes) - x.ndim
    shape: Any = []
    for i, s in enumerate(sizes):
        old = x.shape[i - lead] if i >= lead else None
        if s == -1:
            if old is None:
                raise ValueError(f"expand: -1 is not allowed in a leading, new dimension {sizes}")
            s = old
        elif s < 0:
            raise ValueError(f"expand: sizes must be non-negative (or -1 to keep a dim), got "
                             f"{list(sizes)}")
        elif old is not None and old != 1 and old != s:
            raise ValueError(
                f"expand: the expanded size of the tensor ({s}) must match the existing size "
                f"({old}) at non-singleton dimension {i}. Target sizes: {list(sizes)}. Tensor "
                f"sizes: {list(x.shape)}"
            )
        shape.append(s)
    shape = tuple(shape)
    check_numel(shape, "expand", x.element_size())
    return x if shape == x.shape else Expand.apply(x, shape)


broadcast_to = expand


def repeat(x: Tensor, sizes: Sizes) -> Tensor:
    """Tile: dim i becomes sizes[i] copies, in new storage. Composed of reshape/expand/reshape
    (and a clone where those gave a view).

    >>> import gradflow as gf
    >>> gf.repeat(gf.tensor([[1, 2]]), (2, 2))
    tensor([[1, 2, 1, 2],
            [1, 2, 1, 2]])
    """
    check_tensor(x, "repeat")
    sizes = as_ints(_ints_arg(sizes), "repeat", "repeats")
    if len(sizes) < x.ndim:
        raise ValueError(
            "repeat: number of repeat dims can not be smaller than number of tensor dims "
            f"({len(sizes)} < {x.ndim})"
        )
    if any(r < 0 for r in sizes):
        raise ValueError(f"repeat: repeats must be non-negative, got {list(sizes)}")
    x = reshape(x, (1,) * (len(sizes) - x.ndim) + tuple(x.shape))
    interleaved: List[int] = []
    target: List[int] = []
    final: List[int] = []
    for r, s in zip(sizes, x.shape):
        interleaved += [1, s]
        target += [r, s]
        final.append(r * s)
    with allocating("repeat", tuple(final), x.element_size()):
        check_numel(tuple(target), "repeat", x.element_size())  # the stride-0 view on the way
        out = reshape(expand(reshape(x, tuple(interleaved)), tuple(target)), tuple(final))
        # The reshape is a view where it can be (stride 0 or an alias of x); repeat owns its data.
        return clone(out) if out._backend.shares_memory(out._data, x._data) else out


class Flip(Function[Tensor]):
    @staticmethod
    def forward(ctx: Context, x: Tensor, axes: Tuple[int, ...]) -> Tensor:
        ctx.axes = axes
        return _view_of(Tensor._make(x._backend.flip(x._data, axes), x._backend), x)

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Gradients:
        return flip(g, ctx.axes), None


def flip(x: Tensor, dims: Dims) -> Tensor:
    """x reversed along dims.

    >>> import gradflow as gf
    >>> gf.tensor([[1, 2], [3, 4]]).flip(1)
    tensor([[2, 1],
            [4, 3]])
    """
    check_tensor(x, "flip")
    return Flip.apply(x, normalize_dims(dims, x.ndim, "flip"))


# ---------------------------------------------------------------- joining and splitting
class Cat(Function[Tensor]):
    @staticmethod
    def forward(ctx: Context, axis: int, *xs: Tensor) -> Any:
        ctx.axis = axis
        ctx.sizes = [x.shape[axis] for x in xs]
        be = xs[0]._backend
        return be.concatenate([x._data for x in xs], axis)

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Gradients:
        grads: List[Optional[Tensor]] = []
        start = 0
        for size, needed in zip(ctx.sizes, ctx.needs_input_grad[1:]):
            grads.append(narrow(g, ctx.axis, start, size) if needed else None)
            start += size
        return (None, *grads)


def _tensor_list(tensors: Any, op: str) -> List[Tensor]:
    if not isinstance(tensors, (list, tuple)):
        raise TypeError(f"{op}: expected a list or tuple of Tensors, got {type(tensors).__name__}")
    for i, t_ in enumerate(tensors):
        check_tensor(t_, op, f"tensors[{i}]")
    return list(tensors)


@numpy_names
def cat(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """The tensors joined along dim (dtypes promoted); concat is the same function.

    >>> import gradflow as gf
    >>> gf.cat([gf.tensor([[1, 2]]), gf.tensor([[3, 4]])], dim=0)
    tensor([[1, 2],
            [3, 4]])
    """
    tensors = _tensor_list(tensors, "cat")
    if not tensors:
        raise ValueError("cat: expected a non-empty list of Tensors")
    # PyTorch skips 1-D empty tensors of shape (0,) in cat (legacy behaviour).
    nonempty = [t for t in tensors if not (t.ndim == 1 and t.shape[0] == 0)] or tensors[:1]
    for i, t_ in enumerate(tensors):
        if t_.ndim == 0:
            raise RuntimeError(f"cat: zero-dimensional tensor (at position {i}) cannot be "
                               "concatenated")
    ref = nonempty[0]
    axis = wrap_dim(dim, ref.ndim, "cat")
    rt = ref.dtype
    for t_ in nonempty[1:]:
        check_same_device("cat", ref, t_)
        rt = promote_types(rt, t_.dtype)
        if t_.ndim != ref.ndim or any(
            a != b for i, (a, b) in enumerate(zip(t_.shape, ref.shape)) if i != axis
        ):
            raise ValueError(
                f"cat: sizes of tensors must match except in dimension {axis}; got "
                + ", ".join(str(tuple(x.shape)) for x in nonempty)
            )
    nonempty = [to_dtype(t_, rt) for t_ in nonempty]
    if len(nonempty) == 1:
        return clone(nonempty[0]) if nonempty[0] is ref else nonempty[0]
    return Cat.apply(axis, *nonempty)


concat = cat


@numpy_names
def stack(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """The tensors (all of one shape) joined along a new dim.

    >>> import gradflow as gf
    >>> gf.stack([gf.tensor([1, 2]), gf.tensor([3, 4])], dim=1)
    tensor([[1, 3],
            [2, 4]])
    """
    tensors = _tensor_list(tensors, "stack")
    if not tensors:
        raise ValueError("stack: expected a non-empty list of Tensors")
    shape = tensors[0].shape
    for t_ in tensors[1:]:
        if t_.shape != shape:
            raise ValueError(
                "stack: expects each tensor to be equal size, but got "
                + ", ".join(str(tuple(x.shape)) for x in tensors)
            )
    d = wrap_dim(dim, len(shape) + 1, "stack")
    return cat([unsqueeze(t_, d) for t_ in tensors], d)


@numpy_names
def narrow(x: Tensor, dim: int, start: int, length: int) -> Tensor:
    """x[..., start:start + length, ...] along dim, a view. As PyTorch: dim and start may be
    negative (start wraps once, in [-size, size]); length >= 0 must fit in the dim.

    >>> import gradflow as gf
    >>> gf.arange(5).narrow(0, 1, 3)
    tensor([1, 2, 3])
    """
    check_tensor(x, "narrow")
    if x.ndim == 0:
        raise RuntimeError("narrow: cannot be applied to a 0-dim tensor")
    d = wrap_dim(dim, x.ndim, "narrow")
    start, length = as_int(start, "narrow", "start"), as_int(length, "narrow", "length")
    size = x.shape[d]
    if not -size <= start <= size:
        raise IndexError(
            f"narrow: start out of range (expected to be in range of [{-size}, {size}], but got "
            f"{start}) for dim {d} of shape {tuple(x.shape)}"
        )
    start = start + size if start < 0 else start
    if length < 0:
        raise RuntimeError(f"narrow: length must be non-negative, got {length}")
    if start + length > size:
        raise RuntimeError(
            f"narrow: start ({start}) + length ({length}) exceeds dimension size ({size}) of "
            f"dim {d} of shape {tuple(x.shape)}"
        )
    return x[(slice(None),) * d + (slice(start, start + length),)]


def _at_least_1d(x: Tensor, op: str) -> None:
    if x.ndim == 0:
        raise RuntimeError(f"{op}: expects at least a 1-dimensional tensor")


def split(x: Tensor, split_size_or_sections: Union[int, Sequence[int]], dim: int = 0
          ) -> Tuple[Tensor, ...]:
    """Views of x along dim: pieces of split_size (the last may be smaller), or of the
    given sizes.

    >>> import gradflow as gf
    >>> gf.arange(5).split(2)
    (tensor([0, 1]), tensor([2, 3]), tensor([4]))
    >>> gf.arange(5).split([1, 4])
    (tensor([0]), tensor([1, 2, 3, 4]))
    """
    check_tensor(x, "split")
    _at_least_1d(x, "split")
    axis = wrap_dim(dim, x.ndim, "split")
    n = x.shape[axis]
    if not isinstance(split_size_or_sections, (list, tuple)):
        step = as_int(split_size_or_sections, "split", "split_size")
        if step <= 0 and n:
            raise ValueError(f"split: split_size must be positive, got {step}")
        sizes = [builtins.min(step, n - i) for i in range(0, n, step)] if n else [0]
    else:
        sizes = list(as_ints(split_size_or_sections, "split", "split_sizes"))
        if any(s < 0 for s in sizes):
            raise ValueError(f"split: split sizes must be non-negative, got {sizes}")
        if builtins.sum(sizes) != n:
            raise ValueError(
                f"split: split sizes {sizes} don't sum to the size {n} of dim {axis} "
                f"(shape {tuple(x.shape)})"
            )
    out: List[Tensor] = []
    start = 0
    for s in sizes:
        out.append(narrow(x, axis, start, s))
        start += s
    return tuple(out)


@numpy_names
def chunk(x: Tensor, chunks: int, dim: int = 0) -> Tuple[Tensor, ...]:
    """x split along dim into `chunks` views of equal size (the last may be smaller; there
    may be fewer).

    >>> import gradflow as gf
    >>> gf.arange(6).chunk(3)
    (tensor([0, 1]), tensor([2, 3]), tensor([4, 5]))
    """
    check_tensor(x, "chunk")
    _at_least_1d(x, "chunk")
    chunks = as_int(chunks, "chunk", "chunks")
    if chunks <= 0:
        raise ValueError(f"chunk: chunks must be positive, got {chunks}")
    axis = wrap_dim(dim, x.ndim, "chunk")
    n = x.shape[axis]
    if n == 0:  # as PyTorch: `chunks` empty pieces
        try:
            return split(x, [0] * chunks, axis)
        except MemoryError:
            raise MemoryError(f"chunk: cannot make {chunks} empty chunks") from None
    return split(x, -(-n // chunks), axis)


@numpy_names
def unbind(x: Tensor, dim: int = 0) -> Tuple[Tensor, ...]:
    """The slices of x along dim, each without that dim.

    >>> import gradflow as gf
    >>> gf.tensor([[1, 2], [3, 4]]).unbind(1)
    (tensor([1, 3]), tensor([2, 4]))
    """
    check_tensor(x, "unbind")
    if x.ndim == 0:
        raise IndexError("unbind: dimension specified as 0 but tensor has no dimensions")
    axis = wrap_dim(dim, x.ndim, "unbind")
    return tuple(x[(slice(None),) * axis + (i,)] for i in range(x.shape[axis]))


class Pad(Function[Tensor]):
    @staticmethod
    def forward(ctx: Context, x: Tensor, pad_width: Tuple[Tuple[int, int], ...], value: Number
                ) -> Any:
        ctx.key = tuple(slice(lo, lo + s) for (lo, _), s in zip(pad_width, x.shape))
        return x._backend.pad(x._data, pad_width, value)

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Gradients:
        return g[ctx.key], None, None


def _source_positions(n: int, lo: int, hi: int, mode: str) -> np.ndarray[Any, Any]:
    """For each position of a dim of size n padded by (lo, hi), the input position it copies:
    reflect mirrors about the edge samples, replicate repeats them, circular wraps around."""
    i = np.arange(-lo, n + hi, dtype=np.int64)
    if mode == "reflect":  # lo, hi < n: one reflection at most
        return np.where(i < 0, -i, np.where(i >= n, 2 * (n - 1) - i, i))
    if mode == "replicate":
        return np.clip(i, 0, n - 1)
    return i % n  # circular, lo, hi <= n


def _pad_by_copying(x: Tensor, widths: List[Tuple[int, int]], mode: str) -> Tensor:
    """Non-constant padding as a gather along each padded dim (index_select, so the gradient
    of every copy flows back to its source)."""
    for dim, ((lo, hi), n) in enumerate(zip(widths, x.shape)):
        if lo == hi == 0:
            continue
        # replicate repeats the edge sample any number of times, as PyTorch's
        limit = {"reflect": n - 1, "circular": n}.get(mode, builtins.max(lo, hi))
        if lo < 0 or hi < 0 or builtins.max(lo, hi) > limit or n == 0:
            rule = {"reflect": "between 0 and the size - 1 of",
                    "circular": "between 0 and the size of"}.get(mode, "of at least 0 for")
            raise ValueError(f"pad: mode='{mode}' needs padding (got {(lo, hi)} on dim {dim}) "
                             f"{rule} a non-empty input {tuple(x.shape)}")
        size = n + lo + hi
        with allocating("pad", (size,), 8):  # the int64 source positions
            source = x._backend.from_numpy(_source_positions(n, lo, hi, mode))
        with allocating("pad", tuple(x.shape[:dim]) + (size,) + tuple(x.shape[dim + 1:]),
                        x.element_size()):
            x = index.index_select(x, dim, Tensor._make(source, x._backend))
    return x


def pad(x: Tensor, pad: Sequence[int], mode: str = "constant", value: Number = 0.0) -> Tensor:
    """Padding as torch.nn.functional.pad: `pad` lists (left, right) pairs starting from the
    LAST dim. mode 'constant' fills with `value` (negative pads crop); 'reflect', 'replicate'
    and 'circular' copy samples of the input (see _source_positions).

    >>> import gradflow as gf
    >>> gf.nn.functional.pad(gf.tensor([1, 2]), (1, 2), value=9)
    tensor([9, 1, 2, 9, 9])
    """
    check_tensor(x, "pad")
    if not isinstance(mode, str) or mode not in ("constant", "reflect", "replicate", "circular"):
        raise ValueError(f"pad: mode must be 'constant', 'reflect', 'replicate' or 'circular', "
                         f"got {mode!r}")
    value = 0.0 if value is None else value  # None means 0, as PyTorch's
    if not isinstance(value, numbers.Number):
        raise TypeError(f"pad: argument 'value' must be a number, not {type(value).__name__}")
    pad = list(as_ints(_ints_arg(pad), "pad", "pad"))
    if len(pad) % 2 or len(pad) // 2 > x.ndim:
        raise ValueError(
            f"pad: padding length must be even and at most 2*ndim ({2 * x.ndim}), got {len(pad)} "
            f"for input of shape {tuple(x.shape)}"
        )
    widths = [(0, 0)] * x.ndim
    for i in range(len(pad) // 2):
        widths[x.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    if mode != "constant":
        return _pad_by_copying(x, widths, mode)
    crop = tuple(slice(builtins.max(-lo, 0), s - builtins.max(-hi, 0))
                 for (lo, hi), s in zip(widths, x.shape))
    if any(lo < 0 or hi < 0 for lo, hi in widths):
        x = x[crop]
        widths = [(builtins.max(lo, 0), builtins.max(hi, 0)) for lo, hi in widths]
    for (lo, hi), s in zip(widths, x.shape):
        if s + lo + hi < 0:
            raise ValueError(f"pad: resulting size would be negative for input {tuple(x.shape)}")
    if not any(lo or hi for lo, hi in widths):  # nothing to pad (also NumPy's case of a 0-d x)
        return clone(x)
    with allocating("pad", tuple(s + lo + hi for (lo, hi), s in zip(widths, x.shape)),
                    x.element_size()):
        return Pad.apply(x, tuple(widths), value)


# ---------------------------------------------------------------- copies and conversions
class Clone(Function[Tensor]):
    @staticmethod
    def forward(ctx: Context, x: Tensor) -> Any:
        return x._backend.copy(x._data)

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Tensor:
        return g


def clone(x: Tensor) -> Tensor:
    """A copy of x in new storage, differentiable (``memory_format`` is not taken).

    >>> import gradflow as gf
    >>> gf.tensor([1, 2]).clone()
    tensor([1, 2])
    """
    check_tensor(x, "clone")
    return Clone.apply(x)


class ToDtype(Function[Tensor]):
    @staticmethod
    def forward(ctx: Context, x: Tensor, dtype: dtype) -> Any:
        ctx.in_dtype = x.dtype
        return x._backend.astype(x._data, dtype.np)

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Gradients:
        return (to_dtype(g, ctx.in_dtype) if ctx.in_dtype.is_floating_point else None), None


def to_dtype(x: Tensor, dtype: DTypeLike) -> Tensor:
    """x converted to dtype: x itself if it has that dtype already (as x.to(dtype))."""
    target = as_dtype(dtype)
    return x if x.dtype is target else ToDtype.apply(x, target)


class ToDevice(Function[Tensor]):
    @staticmethod
    def forward(ctx: Context, x: Tensor, device: Device) -> Tensor:
        ctx.src = x.device
        target = backends.get_backend(device)
        data = target.from_numpy(x._backend.to_numpy(x._data))
        return Tensor._make(data, target)

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Gradients:
        return to_device(g, ctx.src), None


def to_device(x: Tensor, device: DeviceLike) -> Tensor:
    """x copied to device: x itself if it is there already (as x.to(device))."""
    target = Device(device)
    return x if target == x.device else ToDevice.apply(x, target)


def roll(x: Tensor, shifts: Sizes, dims: Dims = None) -> Tensor:
    """out[..., (i + shift) % n, ...] = x[..., i, ...] along each dim; with dims=None the
    flattened tensor is rolled and the shape restored.

    >>> import gradflow as gf
    >>> gf.arange(4).roll(1)
    tensor([3, 0, 1, 2])
    """
    check_tensor(x, "roll")
    shifts = as_ints(shifts if isinstance(shifts, (tuple, list)) else (shifts,), "roll",
                     "shifts")
    if dims is None:
        if len(shifts) != 1:
            raise ValueError(f"roll: with dims=None, shifts must be one int, got {shifts}")
        return reshape(roll(reshape(x, (-1,)), shifts, 0), x.shape)
    dims = dims if isinstance(dims, (tuple, list)) else (dims,)
    if len(dims) != len(shifts):
        raise ValueError(f"roll: shifts and dims must have the same length, got shifts "
                         f"{shifts} and dims {tuple(dims)}")
    out = x
    for shift, dim in zip(shifts, dims):
        d = wrap_dim(dim, x.ndim, "roll", "dims")
        n = x.shape[d] if x.ndim else 1
        if n and shift % n:
            source = (np.arange(n, dtype=np.int64) - shift) % n  # out[i] = x[i - shift]
            out = index.index_select(out, d, Tensor._make(x._backend.from_numpy(source),
                                                          x._backend))
    return out


def meshgrid(*tensors: Any, indexing: str = "ij") -> Tuple[Tensor, ...]:
    """Coordinate grids from 1-D tensors: with indexing='ij' the i-th output varies along dim
    i, shape (len(t0), len(t1), ...); with 'xy' the first two dims are swapped (as NumPy).
    The outputs are expanded views of the inputs.

    >>> import gradflow as gf
    >>> rows, cols = gf.meshgrid(gf.tensor([1, 2]), gf.tensor([5, 6, 7]))
    >>> rows
    tensor([[1, 1, 1],
            [2, 2, 2]])
    >>> cols
    tensor([[5, 6, 7],
            [5, 6, 7]])
    """
    if len(tensors) == 1 and isinstance(tensors[0], (tuple, list)):
        tensors = tuple(tensors[0])
    if indexing not in ("ij", "xy"):
        raise ValueError(f"meshgrid: indexing must be 'ij' or 'xy', got {indexing!r}")
    if not tensors:
        raise ValueError("meshgrid: expects a non-empty list of tensors")
    for i, t in enumerate(tensors):
        check_tensor(t, "meshgrid", f"tensors[{i}]")
        if t.ndim > 1:
            raise ValueError(f"meshgrid: expects 0-D or 1-D tensors, got tensors[{i}] of shape "
                             f"{tuple(t.shape)}")
        if t.dtype is not tensors[0].dtype:
            raise TypeError(f"meshgrid: expects all tensors to have the same dtype, got "
                            f"{tensors[0].dtype} and {t.dtype}")
        check_same_device("meshgrid", tensors[0], t)
    axis_of = list(range(len(tensors)))
    if indexing == "xy" and len(tensors) > 1:
        axis_of[0], axis_of[1] = 1, 0
    sizes = [0] * len(tensors)
    for t, axis in zip(tensors, axis_of):
        sizes[axis] = t.numel()
    grids = []
    for t, axis in zip(tensors, axis_of):
        column = tuple(-1 if a == axis else 1 for a in range(len(tensors)))
        grids.append(expand(reshape(t, column), tuple(sizes)))
    return tuple(grids)
