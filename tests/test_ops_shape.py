"""Shape ops: views, joins, splits, pad; forward against NumPy, backward by gradcheck."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import arrays, nonempty_shapes, shaped_arrays, shapes, to_gf

import gradflow as gf
from gradflow.autograd import gradcheck, gradgradcheck


def _rand(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape)


@given(data=st.data())
def test_reshape_view_flatten_match_numpy(data):
    a = data.draw(shaped_arrays(shapes(max_dims=4)))
    t = to_gf(a)
    target = data.draw(st.sampled_from([(-1,), (a.size,), (1, -1) if a.size else (1, 0),
                                        (a.size, 1)]))
    np.testing.assert_array_equal(t.reshape(target).numpy(), a.reshape(target))
    np.testing.assert_array_equal(t.reshape(*target).numpy(), a.reshape(target))
    np.testing.assert_array_equal(t.flatten().numpy(), a.reshape(-1))
    if a.ndim >= 2:
        np.testing.assert_array_equal(t.flatten(1).numpy(),
                                      a.reshape(a.shape[0], int(np.prod(a.shape[1:]))))
        np.testing.assert_array_equal(t.flatten(0, -2).numpy(),
                                      a.reshape(int(np.prod(a.shape[:-1])), a.shape[-1]))
    if a.flags.c_contiguous:
        v = t.view(target)
        assert np.shares_memory(v.numpy(), a) or a.size == 0
        np.testing.assert_array_equal(t.view_as(gf.zeros(v.shape)).numpy(), a.reshape(target))


def test_view_needs_compatible_strides():
    t = gf.arange(6.0).reshape(2, 3).t()
    with pytest.raises(RuntimeError, match=r"view size \(6,\) is not compatible with input "
                                           r"tensor's size \(3, 2\)"):
        t.view(6)
    assert t.reshape(6).tolist() == [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]


def test_views_share_storage_and_version():
    base = gf.zeros(2, 3)
    for v in (base.view(6), base.reshape(3, 2), base.t(), base.permute(1, 0), base[0],
              base.unsqueeze(0), base.expand(4, 2, 3), base.flip(0)):
        assert v._version is base._version
    base.view(6)[0] = 1.0
    assert base[0, 0].item() == 1.0


@given(data=st.data())
def test_squeeze_unsqueeze(data):
    a = data.draw(shaped_arrays(shapes(max_dims=4, max_side=2)))
    t = to_gf(a)
    np.testing.assert_array_equal(t.squeeze().numpy(), np.squeeze(a))
    for d in range(-a.ndim, a.ndim):
        expected = np.squeeze(a, d) if a.shape[d] == 1 else a
        assert t.squeeze(d).shape == expected.shape
    for d in range(-a.ndim - 1, a.ndim + 1):
        np.testing.assert_array_equal(t.unsqueeze(d).numpy(), np.expand_dims(a, d))


@given(data=st.data())
def test_permute_transpose_t(data):
    a = data.draw(shaped_arrays(shapes(max_dims=4)))
    t = to_gf(a)
    perm = data.draw(st.permutations(range(a.ndim)))
    np.testing.assert_array_equal(t.permute(*perm).numpy(), a.transpose(perm))
    np.testing.assert_array_equal(t.permute(perm).numpy(), a.transpose(perm))
    if a.ndim >= 2:
        d0, d1 = data.draw(st.integers(-a.ndim, a.ndim - 1)), data.draw(
            st.integers(-a.ndim, a.ndim - 1))
        np.testing.assert_array_equal(t.transpose(d0, d1).numpy(), np.swapaxes(a, d0, d1))
    if a.ndim <= 2:
        np.testing.assert_array_equal(t.t().numpy(), a.T)
        np.testing.assert_array_equal(gf.t(t).numpy(), a.T)
    np.testing.assert_array_equal(t.T.numpy(), a.T)


@given(data=st.data())
def test_expand_broadcast_to_repeat(data):
    a = data.draw(shaped_arrays(shapes(max_dims=3, max_side=2)))
    t = to_gf(a)
    target = tuple(data.draw(st.sampled_from([s, 3]) if s == 1 else st.just(s)) for s in a.shape)
    lead = data.draw(st.sampled_from([(), (2,), (0,)]))
    np.testing.assert_array_equal(t.expand(lead + target).numpy(),
                                  np.broadcast_to(a, lead + target))
    np.testing.assert_array_equal(t.expand(*lead, *(-1 for _ in a.shape)).numpy(),
                                  np.broadcast_to(a, lead + a.shape))
    np.testing.assert_array_equal(gf.broadcast_to(t, lead + target).numpy(),
                                  np.broadcast_to(a, lead + target))
    np.testing.assert_array_equal(t.expand_as(gf.zeros(lead + target)).numpy(),
                                  np.broadcast_to(a, lead + target))
    reps = tuple(data.draw(st.integers(0, 3)) for _ in range(a.ndim + data.draw(
        st.integers(0, 1))))
    if reps:
        np.testing.assert_array_equal(t.repeat(*reps).numpy(), np.tile(a, reps))


@given(data=st.data())
def test_cat_stack(data):
    shape = data.draw(nonempty_shapes(1, 3))
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    sizes = data.draw(st.lists(st.integers(0, 3), min_size=1, max_size=3))
    parts = [data.draw(arrays(shape[:dim % len(shape)] + (s,) + shape[dim % len(shape) + 1:]))
             for s in sizes]
    np.testing.assert_array_equal(gf.cat([to_gf(p) for p in parts], dim).numpy(),
                                  np.concatenate(parts, dim))
    same = [data.draw(arrays(shape)) for _ in sizes]
    sdim = data.draw(st.integers(-len(shape) - 1, len(shape)))
    np.testing.assert_array_equal(gf.stack([to_gf(p) for p in same], sdim).numpy(),
                                  np.stack(same, sdim))


def test_cat_promotes_and_skips_legacy_empty():
    out = gf.cat([gf.tensor([1, 2]), gf.tensor([0.5])])
    assert out.dtype is gf.float32 and out.tolist() == [1.0, 2.0, 0.5]
    assert gf.cat([gf.zeros(0), gf.ones(2, 2)]).shape == (2, 2)
    assert gf.concat([gf.ones(1)], 0).tolist() == [1.0]


@given(data=st.data())
def test_split_chunk(data):
    a = data.draw(shaped_arrays(nonempty_shapes(1, 3, max_side=5)))
    dim = data.draw(st.integers(-a.ndim, a.ndim - 1))
    n = a.shape[dim]
    size = data.draw(st.integers(1, n + 1))
    parts = to_gf(a).split(size, dim)
    bounds = list(range(size, n, size))
    for got, expected in zip(parts, np.split(a, bounds, dim), strict=True):
        np.testing.assert_array_equal(got.numpy(), expected)
    sections = data.draw(st.lists(st.integers(0, n), min_size=1, max_size=3).filter(
        lambda s: sum(s) <= n))
    sections = sections + [n - sum(sections)]
    for got, expected in zip(to_gf(a).split(sections, dim),
                             np.split(a, np.cumsum(sections)[:-1], dim), strict=True):
        np.testing.assert_array_equal(got.numpy(), expected)
    chunks = data.draw(st.integers(1, 4))
    got = gf.chunk(to_gf(a), chunks, dim)
    step = -(-n // chunks)
    assert [g.shape[dim] for g in got] == [min(step, n - i) for i in range(0, n, step)]
    np.testing.assert_array_equal(gf.cat(got, dim).numpy(), a)


@given(data=st.data())
def test_flip(data):
    a = data.draw(shaped_arrays(shapes(min_dims=1, max_dims=3)))
    dims = tuple(data.draw(st.lists(st.integers(0, a.ndim - 1), min_size=1, unique=True)))
    np.testing.assert_array_equal(to_gf(a).flip(dims).numpy(), np.flip(a, dims))
    np.testing.assert_array_equal(gf.flip(to_gf(a), -1).numpy(), np.flip(a, -1))


@given(data=st.data())
def test_pad(data):
    a = data.draw(shaped_arrays(shapes(min_dims=1, max_dims=3)))
    n_dims = data.draw(st.integers(1, a.ndim))
    pads = [data.draw(st.integers(0, 2)) for _ in range(2 * n_dims)]
    value = data.draw(st.sampled_from([0.0, -1.5]))
    widths = [(0, 0)] * (a.ndim - n_dims) + [(pads[2 * i], pads[2 * i + 1])
                                             for i in reversed(range(n_dims))]
    np.testing.assert_array_equal(gf.pad(to_gf(a), pads, value=value).numpy(),
                                  np.pad(a, widths, constant_values=value))


@pytest.mark.parametrize("mode, np_mode", [("reflect", "reflect"), ("replicate", "edge"),
                                           ("circular", "wrap")])
@given(data=st.data())
def test_pad_modes_match_numpy_and_gradcheck(mode, np_mode, data):
    a = data.draw(shaped_arrays(nonempty_shapes(min_dims=1, max_dims=3)))
    n_dims = data.draw(st.integers(1, a.ndim))
    sizes = a.shape[::-1][:n_dims]  # last dim first, as the pad list
    limit = [n - 1 if mode == "reflect" else n for n in sizes]
    pads = [data.draw(st.integers(0, min(2, limit[i // 2]))) for i in range(2 * n_dims)]
    widths = [(0, 0)] * (a.ndim - n_dims) + [(pads[2 * i], pads[2 * i + 1])
                                             for i in reversed(range(n_dims))]
    np.testing.assert_array_equal(gf.pad(to_gf(a), pads, mode=mode).numpy(),
                                  np.pad(a, widths, mode=np_mode))
    x = gf.tensor(a.astype(np.float64), requires_grad=True)
    assert gradcheck(lambda t: gf.pad(t, pads, mode=mode), (x,))


def test_pad_mode_limits_are_checked():
    t = gf.zeros(1, 3)
    with pytest.raises(ValueError, match=r"pad: mode='reflect' needs padding \(got \(3, 0\)"):
        gf.pad(t, [3, 0], mode="reflect")
    with pytest.raises(ValueError, match="mode must be"):
        gf.pad(t, [1, 1], mode="symmetric")
    gf.pad(t, [3, 3], mode="circular")  # up to the size is fine


def test_pad_negative_crops():
    t = gf.arange(12.0).reshape(3, 4)
    np.testing.assert_array_equal(gf.pad(t, [-1, 1]).numpy(),
                                  np.pad(np.arange(12.0).reshape(3, 4)[:, 1:], [(0, 0), (0, 1)]))


def test_unflatten_unbind_narrow():
    t = gf.arange(24.0).reshape(2, 12)
    assert t.unflatten(1, (3, 4)).shape == (2, 3, 4) and t.unflatten(-1, (-1, 6)).shape == (2, 2,
                                                                                           6)
    assert [u.tolist() for u in gf.arange(4).reshape(2, 2).unbind(1)] == [[0, 2], [1, 3]]
    assert gf.narrow(gf.arange(5), 0, 1, 3).tolist() == [1, 2, 3]


@given(data=st.data())
def test_narrow_matches_slicing_with_negative_dim_and_start(data):
    a = data.draw(shaped_arrays(shapes(min_dims=1, max_dims=3)))
    dim = data.draw(st.integers(-a.ndim, a.ndim - 1))
    n = a.shape[dim]
    start = data.draw(st.integers(-n, n))
    lo = start + n if start < 0 else start
    length = data.draw(st.integers(0, n - lo))
    expected = np.take(a, range(lo, lo + length), axis=dim)
    out = to_gf(a).narrow(dim, start, length)
    np.testing.assert_array_equal(out.numpy(), expected)
    np.testing.assert_array_equal(gf.narrow(to_gf(a), dim, start, length).numpy(), expected)


def test_narrow_matches_pytorch():
    torch = pytest.importorskip("torch")
    a = np.arange(24.0).reshape(2, 3, 4)
    for dim, start, length in [(-1, 0, 1), (-1, -2, 2), (1, -3, 3), (0, 2, 0), (0, -2, 1),
                               (2, 4, 0), (-3, 1, 1)]:
        np.testing.assert_array_equal(gf.from_numpy(a).narrow(dim, start, length).numpy(),
                                      torch.from_numpy(a).narrow(dim, start, length).numpy())


def test_narrow_gradient_and_view():
    x = to_gf(_rand((2, 5)), True)
    assert gradcheck(lambda t: t.narrow(-1, -3, 2) * 2, (x,))
    base = gf.zeros(2, 5)
    base.narrow(-1, 1, 2).fill_(1.0)
    assert base.tolist() == [[0.0, 1.0, 1.0, 0.0, 0.0]] * 2


@pytest.mark.parametrize("args, exc, msg", [
    ((0, 1, -1), RuntimeError, "narrow: length must be non-negative, got -1"),
    ((0, 3, 0), IndexError, r"narrow: start out of range \(expected to be in range of \[-2, 2\], "
                            r"but got 3\) for dim 0 of shape \(2, 3\)"),
    ((0, -3, 1), IndexError, r"narrow: start out of range .* but got -3"),
    ((1, 1, 3), RuntimeError, r"narrow: start \(1\) \+ length \(3\) exceeds dimension size "
                              r"\(3\) of dim 1 of shape \(2, 3\)"),
    ((-1, -1, 2), RuntimeError, r"narrow: start \(2\) \+ length \(2\) exceeds"),
    ((2, 0, 1), IndexError, "narrow: dimension out of range"),
    ((True, 0, 1), TypeError, "narrow: argument 'dim' must be int, not bool"),
    ((0, True, 1), TypeError, "narrow: argument 'start' must be int, not bool"),
    ((0, 0, 1.0), TypeError, "narrow: argument 'length' must be int, not float"),
    ((0, 0, 2**62), RuntimeError, r"narrow: start \(0\) \+ length \(4611686018427387904\)"),
    ((0, 2**63, 1), ValueError, "narrow: argument 'start' = 9223372036854775808 does not fit in "
                                "int64"),
])
def test_narrow_bad_arguments(args, exc, msg):
    with pytest.raises(exc, match=msg):
        gf.ones(2, 3).narrow(*args)
    with pytest.raises(RuntimeError, match="narrow: cannot be applied to a 0-dim tensor"):
        gf.tensor(1.0).narrow(0, 0, 1)


def _index(lib, shape, d):
    """An int64 index for dim d of `shape`: zeros, of the same shape (gather's rule)."""
    return lib.zeros(shape, dtype=lib.int64) if shape[d] else lib.zeros(shape, dtype=lib.int64)[:0]


# name -> f(lib, t, d, e): the same call in gradflow and PyTorch, dims d and e in [-ndim, ndim)
DIM_CALLS = {
    "flatten": lambda lib, t, d, e: t.flatten(d, e),
    "unflatten": lambda lib, t, d, e: t.unflatten(d, (1, -1)) if t.shape[d] else t.unflatten(
        d, (1, 0)),
    "squeeze": lambda lib, t, d, e: t.squeeze(d),
    "unsqueeze": lambda lib, t, d, e: t.unsqueeze(d),
    "transpose": lambda lib, t, d, e: t.transpose(d, e),
    "permute": lambda lib, t, d, e: t.permute(*reversed(range(-t.ndim, 0))),
    "flip": lambda lib, t, d, e: t.flip(d),
    "narrow": lambda lib, t, d, e: t.narrow(d, -(t.shape[d] // 2), t.shape[d] // 2),
    "split": lambda lib, t, d, e: t.split(2, d),
    "split_sizes": lambda lib, t, d, e: t.split([t.shape[d] // 2, t.shape[d] - t.shape[d] // 2],
                                                d),
    "chunk": lambda lib, t, d, e: t.chunk(3, d),
    "unbind": lambda lib, t, d, e: t.unbind(d),
    "cat": lambda lib, t, d, e: lib.cat([t, t * 2], d),
    "stack": lambda lib, t, d, e: lib.stack([t, t * 2], d),
    "index_select": lambda lib, t, d, e: t.index_select(
        d, lib.tensor([0, 0] if t.shape[d] else [], dtype=lib.int64)),
    "gather": lambda lib, t, d, e: t.gather(d, _index(lib, t.shape, d)),
    "sum": lambda lib, t, d, e: t.sum(d),
    "sum_two": lambda lib, t, d, e: t.sum((d, e)),
    "mean_keepdim": lambda lib, t, d, e: t.mean(d, keepdim=True),
    "amax": lambda lib, t, d, e: t.amax((d, e)),
    "softmax": lambda lib, t, d, e: t.softmax(d),
    "size": lambda lib, t, d, e: t.size(d),
}


def _outcome(call):
    """The result as NumPy arrays (or ints), or 'error' when the call raised."""
    try:
        out = call()
    except (IndexError, ValueError, RuntimeError, TypeError):
        return "error"
    if isinstance(out, (tuple, list)):
        return [o.detach().numpy() for o in out]
    return out if isinstance(out, int) else out.detach().numpy()


@pytest.mark.parametrize("name", sorted(DIM_CALLS))
@given(data=st.data())
def test_dim_arguments_match_pytorch(name, data):
    torch = pytest.importorskip("torch")
    a = data.draw(shaped_arrays(shapes(min_dims=1, max_dims=4)))
    d = data.draw(st.integers(-a.ndim, a.ndim - 1))
    e = data.draw(st.integers(-a.ndim, a.ndim - 1))
    call = DIM_CALLS[name]
    ours = _outcome(lambda: call(gf, gf.tensor(a), d, e))
    theirs = _outcome(lambda: call(torch, torch.tensor(a.copy()), d, e))
    if isinstance(theirs, str) or isinstance(ours, str):
        assert isinstance(ours, str) and isinstance(theirs, str), (a.shape, d, e, ours, theirs)
    elif isinstance(theirs, list):
        assert len(ours) == len(theirs)
        for o, t in zip(ours, theirs):
            np.testing.assert_allclose(o, t, rtol=1e-12)
    else:
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)


# ---------------------------------------------------------------- backward
SHAPE_OPS = {
    "reshape": (lambda t: t.reshape(3, 4), (2, 6)),
    "view": (lambda t: t.view(-1), (2, 3)),
    "view_as": (lambda t: t.view_as(gf.zeros(6, 1)), (2, 3)),
    "flatten": (lambda t: t.flatten(1), (2, 2, 3)),
    "unflatten": (lambda t: t.unflatten(1, (2, 3)), (2, 6)),
    "squeeze": (lambda t: t.squeeze(1), (2, 1, 3)),
    "unsqueeze": (lambda t: t.unsqueeze(-1), (2, 3)),
    "permute": (lambda t: t.permute(2, 0, 1), (2, 3, 2)),
    "transpose": (lambda t: t.transpose(0, -1), (2, 3, 2)),
    "t": (lambda t: t.t(), (2, 3)),
    "T": (lambda t: t.T, (2, 3, 2)),
    "expand": (lambda t: t.expand(2, 3, 4), (3, 1)),
    "expand_as": (lambda t: t.expand_as(gf.zeros(2, 3)), (1, 3)),
    "broadcast_to": (lambda t: gf.broadcast_to(t, (2, 2, 3)), (3,)),
    "repeat": (lambda t: t.repeat(2, 1, 3), (2, 2)),
    "cat": (lambda t: gf.cat([t, t * 2, t[:1]], 0), (2, 3)),
    "cat_dim1": (lambda t: gf.cat([t, t.flip(1)], -1), (2, 3)),
    "stack": (lambda t: gf.stack([t, t * 3], 1), (2, 3)),
    "split": (lambda t: t.split(2, 1)[1] * 2 + t.split([1, 3], 1)[0].sum(), (2, 4)),
    "chunk": (lambda t: gf.cat(t.chunk(3, 0)[::-1], 0), (5, 2)),
    "flip": (lambda t: t.flip((0, 1)), (2, 3)),
    "pad": (lambda t: gf.pad(t, [1, 2, 0, 1], value=0.5), (2, 3)),
    "pad_crop": (lambda t: gf.pad(t, [-1, 1]), (2, 3)),
    "contiguous": (lambda t: t.t().contiguous(), (2, 3)),
}


@pytest.mark.parametrize("name", sorted(SHAPE_OPS))
def test_shape_op_backward_gradcheck(name):
    fn, shape = SHAPE_OPS[name]
    assert gradcheck(fn, (to_gf(_rand(shape), True),))
    if name.startswith("view"):
        return  # a view of a non-contiguous input is an error (test_view_needs_compatible_strides)
    # a non-contiguous input of the same shape
    nc = to_gf(np.ascontiguousarray(_rand(shape[::-1], 1).T), True) if len(shape) == 1 else \
        to_gf(_rand(shape[::-1], 1).T, True)
    assert gradcheck(fn, (nc,))


@pytest.mark.parametrize("name", ["repeat", "pad", "expand", "stack"])
def test_shape_op_second_derivatives(name):
    fn, shape = SHAPE_OPS[name]
    assert gradgradcheck(lambda t: fn(t) * fn(t), (to_gf(_rand(shape), True),))


# ---------------------------------------------------------------- bad inputs
@pytest.mark.parametrize("call,exc,msg", [
    (lambda t: t.reshape(4), ValueError, r"reshape: shape \(4,\) is invalid for input of size 6"),
    (lambda t: t.reshape(-1, -1), ValueError, "reshape: only one dimension can be inferred"),
    (lambda t: t.view(4, -1), ValueError, r"view: shape \(4, -1\) is invalid for input of size 6"),
    (lambda t: t.permute(0), ValueError, "permute: number of dims don't match: input has 2 dims"),
    (lambda t: t.permute(0, 0), ValueError, "permute: dim 0 appears multiple times"),
    (lambda t: t.transpose(0, 2), IndexError, "transpose: dimension out of range"),
    (lambda t: t.unsqueeze(3), IndexError, "unsqueeze: dimension out of range"),
    (lambda t: t.squeeze(2), IndexError, "squeeze: dimension out of range"),
    (lambda t: t.expand(3, 3), ValueError, r"expand: the expanded size of the tensor \(3\) must "
                                           r"match the existing size \(2\)"),
    (lambda t: t.expand(3), ValueError, r"expand: the number of sizes provided \(1\)"),
    (lambda t: t.repeat(2), ValueError, r"repeat: number of repeat dims can not be smaller"),
    (lambda t: gf.cat([t, gf.ones(2, 2)]), ValueError,
     r"cat: sizes of tensors must match except in dimension 0; got \(2, 3\), \(2, 2\)"),
    (lambda t: gf.cat([]), ValueError, "cat: expected a non-empty list"),
    (lambda t: gf.stack([t, gf.ones(3, 2)]), ValueError,
     r"stack: expects each tensor to be equal size, but got \(2, 3\), \(3, 2\)"),
    (lambda t: t.split([1, 1], 1), ValueError,
     r"split: split sizes \[1, 1\] don't sum to the size 3 of dim 1 \(shape \(2, 3\)\)"),
    (lambda t: t.split(0, 1), ValueError, "split: split_size must be positive"),
    (lambda t: t.chunk(0), ValueError, "chunk: chunks must be positive"),
    (lambda t: gf.pad(t, [1]), ValueError, r"pad: padding length must be even .* for input of "
                                           r"shape \(2, 3\)"),
    (lambda t: gf.pad(t, [1, 1], mode="edge"), ValueError, "pad: mode must be"),
    (lambda t: t.flip(2), IndexError, "flip: dimension out of range"),
    (lambda t: t.flatten(1, 0), ValueError, "flatten: start_dim 1 comes after end_dim 0"),
    (lambda t: t.unflatten(1, (2, 2)), ValueError, r"unflatten: shape \(2, 2\) is invalid for "
                                                   r"input of size 3"),
    (lambda t: gf.ones(2, 2, 2).t(), ValueError, r"t\(\) expects a tensor with <= 2 dimensions"),
    # a bool or float where an int belongs is refused (True is not 1), as PyTorch
    (lambda t: t.reshape(True, -1), TypeError, "reshape: argument 'shape' must be int, not bool"),
    (lambda t: t.view(2.0, -1), TypeError, "view: argument 'shape' must be int, not float"),
    (lambda t: t.expand(True, 3), TypeError, "expand: argument 'size' must be int, not bool"),
    (lambda t: t.repeat(2.0, 1), TypeError, "repeat: argument 'repeats' must be int, not float"),
    (lambda t: t.unflatten(1, (True, 3)), TypeError, "unflatten: argument 'shape' must be int"),
    (lambda t: t.split(True), TypeError, "split: argument 'split_size' must be int, not bool"),
    (lambda t: t.split([1, True]), TypeError, "split: argument 'split_sizes' must be int, not "
                                              "bool"),
    (lambda t: t.split(1.0), TypeError, "split: argument 'split_size' must be int, not float"),
    (lambda t: t.chunk(True), TypeError, "chunk: argument 'chunks' must be int, not bool"),
    (lambda t: gf.pad(t, (True, 0)), TypeError, "pad: argument 'pad' must be int, not bool"),
    (lambda t: t.permute(True, 0), TypeError, "permute: argument 'dim' must be int, not bool"),
    (lambda t: t.transpose(True, 0), TypeError, "transpose: argument 'dim0' must be int, not "
                                                "bool"),
    (lambda t: t.unsqueeze(True), TypeError, "unsqueeze: argument 'dim' must be int, not bool"),
    (lambda t: t.squeeze((0, True)), TypeError, "squeeze: argument 'dim' must be int, not bool"),
    (lambda t: t.flatten(True), TypeError, "flatten: argument 'start_dim' must be int, not bool"),
    (lambda t: t.flip([0, True]), TypeError, "flip: argument 'dim' must be int, not bool"),
    (lambda t: gf.cat([t, t], True), TypeError, "cat: argument 'dim' must be int, not bool"),
    (lambda t: gf.stack([t, t], 1.0), TypeError, "stack: argument 'dim' must be int, not float"),
    (lambda t: t.unbind(True), TypeError, "unbind: argument 'dim' must be int, not bool"),
    (lambda t: t.size(True), TypeError, "size: argument 'dim' must be int, not bool"),
    # negative sizes and sizes past int64 or past the addressable bytes
    (lambda t: t.repeat(-1, 1), ValueError, r"repeat: repeats must be non-negative, got \[-1, 1\]"),
    (lambda t: t.expand(2, -2), ValueError, r"expand: sizes must be non-negative \(or -1 to keep "
                                            r"a dim\), got \[2, -2\]"),
    (lambda t: t.split([4, -1], 1), ValueError, r"split: split sizes must be non-negative, got "
                                                r"\[4, -1\]"),
    (lambda t: t.reshape(2**63), ValueError, "reshape: argument 'shape' = 9223372036854775808 "
                                             "does not fit in int64"),
    (lambda t: t.expand(2**63, 2, 3), ValueError, "expand: argument 'size' = 9223372036854775808"),
    (lambda t: t.expand(2**62, 2, 3), RuntimeError, r"expand: a tensor of shape "
                                                    r"\(4611686018427387904, 2, 3\) is too large"),
    (lambda t: t.repeat(2**62, 1), RuntimeError, r"repeat: a tensor of shape "
                                                 r"\(9223372036854775808, 3\) is too large"),
    (lambda t: gf.pad(t, (2**62, 0)), RuntimeError, r"pad: a tensor of shape "
                                                    r"\(2, 4611686018427387907\) is too large"),
    (lambda t: gf.pad(t, (2**63, 0)), ValueError, "pad: argument 'pad' = 9223372036854775808"),
    (lambda t: t.split(2**63), ValueError, "split: argument 'split_size' = 9223372036854775808"),
    (lambda t: t.chunk(2**63), ValueError, "chunk: argument 'chunks' = 9223372036854775808"),
    (lambda t: t.unsqueeze(2**63), ValueError, "unsqueeze: argument 'dim' = 9223372036854775808"),
    (lambda t: gf.zeros(0, 3).reshape(0, -1), ValueError,
     r"reshape: cannot reshape a tensor of 0 elements into shape \(0, -1\)"),
    (lambda t: gf.zeros(2**60, 0).reshape(2**60, 2**60, 0), RuntimeError,
     "reshape: a tensor of shape .* is too large"),
    # 0-d tensors: dims in [-1, 0]; no splitting, unbinding or concatenating
    (lambda t: gf.tensor(1.0).transpose(0, 1), IndexError, r"transpose: dimension out of range "
                                                           r"\(expected to be in range of "
                                                           r"\[-1, 0\], but got 1\)"),
    (lambda t: gf.tensor(1.0).flatten(0, 3), IndexError, "flatten: dimension out of range"),
    (lambda t: gf.tensor(1.0).split(1), RuntimeError, "split: expects at least a 1-dimensional"),
    (lambda t: gf.tensor(1.0).chunk(1), RuntimeError, "chunk: expects at least a 1-dimensional"),
    (lambda t: gf.tensor(1.0).unbind(0), IndexError, "unbind: dimension specified as 0 but tensor "
                                                     "has no dimensions"),
    (lambda t: gf.tensor(1.0).unflatten(0, (1,)), RuntimeError, "unflatten: cannot be applied "
                                                                "to a 0-dim tensor"),
    (lambda t: gf.cat([t[0, 0], t[0, 1]]), RuntimeError, r"cat: zero-dimensional tensor \(at "
                                                         r"position 0\) cannot be concatenated"),
])
def test_shape_bad_inputs(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call(gf.ones(2, 3))


def test_shape_args_take_numpy_and_tensor_ints():
    t = gf.arange(6.0)
    assert t.reshape(np.int64(2), gf.tensor(3)).shape == (2, 3)
    assert t.unsqueeze(gf.tensor(-1)).shape == (6, 1) and t.expand(np.int64(2), 6).shape == (2, 6)
    assert [p.shape for p in t.split(np.int64(4))] == [(4,), (2,)]
    s = gf.tensor(2.0)  # 0-d: dims 0 and -1 are fine
    assert s.transpose(0, -1).shape == () and s.flatten(-1, 0).shape == (1,)


def test_chunk_of_an_empty_dim_gives_chunks_empty_pieces():
    assert [p.shape for p in gf.zeros(2, 0).chunk(3, 1)] == [(2, 0)] * 3  # as PyTorch
    assert [p.shape for p in gf.zeros(0).split(2)] == [(0,)]


def test_repeat_owns_its_storage():
    x = gf.arange(4.0).reshape(2, 2)
    y = x.repeat(2, 1, 1)  # a broadcast view inside; the result must be a real copy
    y[0, 0, 0] = 100.0
    assert y[1, 0, 0].item() == 0.0 and x[0, 0].item() == 0.0
    z = x.repeat(1, 1)  # all ones: a copy too, as PyTorch
    z[0, 0] = -5.0
    assert x[0, 0].item() == 0.0 and not z._is_view
