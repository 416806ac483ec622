"""Indexing: basic (views), advanced (copies), gather/scatter_add/index_select/index_add,
masked_fill and __setitem__."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import arrays, nonempty_shapes, shaped_arrays, to_gf

import gradflow as gf
from gradflow.autograd import gradcheck, gradgradcheck


def _rand(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape)


@st.composite
def basic_keys(draw, shape):
    """A key of ints, slices (steps and negatives), None and at most one Ellipsis."""
    key, dims = [], list(shape)
    used_ellipsis = False
    while dims:
        kind = draw(st.sampled_from(("int", "slice", "slice", "none", "ellipsis", "stop")))
        if kind == "stop" and not used_ellipsis:  # after '...' the key must reach the last dim
            break
        if kind == "none":
            key.append(None)
        elif kind == "ellipsis" and not used_ellipsis:
            used_ellipsis = True
            key.append(Ellipsis)
            keep = draw(st.integers(0, len(dims)))  # the key goes on with the last `keep` dims
            dims = dims[len(dims) - keep:]
        elif kind == "int" and dims[0] > 0:
            key.append(draw(st.integers(-dims[0], dims[0] - 1)))
            dims.pop(0)
        else:
            start = draw(st.none() | st.integers(-5, 5))
            stop = draw(st.none() | st.integers(-5, 5))
            step = draw(st.none() | st.sampled_from([1, 2, 3, -1, -2]))
            key.append(slice(start, stop, step))
            dims.pop(0)
    return tuple(key)


@given(data=st.data())
def test_basic_indexing_matches_numpy_and_is_a_view(data):
    a = data.draw(shaped_arrays(nonempty_shapes(1, 3)))
    key = data.draw(basic_keys(a.shape))
    t = to_gf(a)
    out = t[key]
    np.testing.assert_array_equal(out.numpy(), a[key])
    if out.numel() and any(isinstance(k, slice) for k in key):
        assert out._version is t._version


@given(data=st.data())
def test_integer_array_indexing(data):
    a = data.draw(shaped_arrays(nonempty_shapes(1, 3)))
    idx = np.asarray(data.draw(st.lists(st.integers(-a.shape[0], a.shape[0] - 1), max_size=5)),
                     dtype=np.int64)
    t = to_gf(a)
    np.testing.assert_array_equal(t[gf.from_numpy(idx)].numpy(), a[idx])
    np.testing.assert_array_equal(t[idx.tolist()].numpy(), a[idx.tolist()] if len(idx) else a[idx])
    if a.ndim >= 2:
        j = np.zeros_like(idx)
        np.testing.assert_array_equal(t[gf.from_numpy(idx), gf.from_numpy(j)].numpy(), a[idx, j])
        np.testing.assert_array_equal(t[:, [0]].numpy(), a[:, [0]])


@given(data=st.data())
def test_boolean_mask_indexing(data):
    a = data.draw(shaped_arrays(nonempty_shapes(1, 3)))
    mask = data.draw(arrays(a.shape, np.bool_))
    t = to_gf(a)
    np.testing.assert_array_equal(t[to_gf(mask)].numpy(), a[mask])
    np.testing.assert_array_equal(t[to_gf(mask[..., 0]) if a.ndim > 1 else to_gf(mask)].numpy(),
                                  a[mask[..., 0]] if a.ndim > 1 else a[mask])
    np.testing.assert_array_equal(t[t > 0].numpy(), a[a > 0])


INDEX_FNS = {
    "int": lambda t: t[1],
    "negative_int": lambda t: t[-1, 0],
    "slice_step": lambda t: t[::2, 1:],
    "negative_step": lambda t: t[::-2],
    "none_ellipsis": lambda t: t[None, ..., 1],
    "int_array": lambda t: t[gf.tensor([0, 2, 0])],
    "int_arrays_2": lambda t: t[gf.tensor([0, 2, 0]), gf.tensor([1, 1, 0])],
    "bool_mask": lambda t: t[gf.tensor([True, False, True])],
    "bool_mask_full": lambda t: t[t.detach() > 0],
    "list_index": lambda t: t[:, [1, 1]],
}


@pytest.mark.parametrize("name", sorted(INDEX_FNS))
def test_indexing_backward(name):
    x = to_gf(_rand((3, 2)), True)
    assert gradcheck(INDEX_FNS[name], (x,))
    assert gradgradcheck(lambda t: INDEX_FNS[name](t) ** 2, (to_gf(_rand((3, 2), 1), True),))


def test_repeated_indices_accumulate_gradient():
    x = to_gf(np.arange(3.0), True)
    x[gf.tensor([0, 0, 2, 0])].sum().backward()
    assert x.grad.tolist() == [3.0, 0.0, 1.0]


@given(data=st.data())
def test_gather_and_scatter_add(data):
    a = data.draw(shaped_arrays(nonempty_shapes(1, 3)))
    dim = data.draw(st.integers(-a.ndim, a.ndim - 1))
    ishape = tuple(data.draw(st.integers(0, s)) for s in a.shape)
    ishape = ishape[:dim % a.ndim] + (data.draw(st.integers(0, 4)),) + ishape[dim % a.ndim + 1:]
    idx = data.draw(arrays(ishape, np.int64, 0, a.shape[dim] - 1, layout="contiguous"))
    t = to_gf(a)
    got = t.gather(dim, to_gf(idx))
    crop = tuple(slice(0, s) if d != dim % a.ndim else slice(None) for d, s in enumerate(ishape))
    np.testing.assert_array_equal(got.numpy(), np.take_along_axis(a[crop], idx, dim))
    src = data.draw(arrays(ishape, np.float64))
    expected = a.copy()
    for pos in np.ndindex(*ishape):
        target = list(pos)
        target[dim % a.ndim] = idx[pos]
        expected[tuple(target)] += src[pos]
    np.testing.assert_allclose(t.scatter_add(dim, to_gf(idx), to_gf(src)).numpy(), expected)
    np.testing.assert_array_equal(a, t.numpy())  # out of place


@given(data=st.data())
def test_index_select_and_index_add(data):
    a = data.draw(shaped_arrays(nonempty_shapes(1, 3)))
    dim = data.draw(st.integers(-a.ndim, a.ndim - 1))
    n = a.shape[dim]
    idx = np.asarray(data.draw(st.lists(st.integers(0, n - 1), max_size=4)), dtype=np.int64)
    t = to_gf(a)
    np.testing.assert_array_equal(t.index_select(dim, to_gf(idx)).numpy(),
                                  np.take(a, idx, axis=dim))
    src_shape = a.shape[:dim % a.ndim] + (len(idx),) + a.shape[dim % a.ndim + 1:]
    src = data.draw(arrays(src_shape, np.float64))
    expected = a.copy()
    moved = np.moveaxis(expected, dim, 0)
    np.add.at(moved, idx, np.moveaxis(src, dim, 0) * 2)
    np.testing.assert_allclose(t.index_add(dim, to_gf(idx), to_gf(src), alpha=2).numpy(), expected)


def test_gather_scatter_index_backward():
    x = to_gf(_rand((3, 4)), True)
    idx = gf.tensor([[0, 2], [1, 1], [3, 0]])
    src = to_gf(_rand((3, 2), 1), True)
    assert gradcheck(lambda t: t.gather(1, idx), (x,))
    assert gradcheck(lambda t, s: t.scatter_add(1, idx, s), (x, src))
    assert gradgradcheck(lambda t, s: t.scatter_add(1, idx, s) ** 2, (x, src))
    sel = gf.tensor([2, 0, 2])
    assert gradcheck(lambda t: t.index_select(0, sel), (x,))
    assert gradcheck(lambda t, s: gf.index_add(t, 1, gf.tensor([3, 3]), s, alpha=0.5), (x, src))
    assert gradcheck(lambda t: t.masked_fill(t.detach() > 0, 2.0), (x,))
    value = to_gf(np.array(1.5), True)
    assert gradcheck(lambda t, v: t.masked_fill(t.detach() > 0, v), (x, value))


def test_masked_fill_matches_numpy():
    a = _rand((3, 4))
    mask = a > 0.2
    np.testing.assert_array_equal(to_gf(a).masked_fill(to_gf(mask), -1.0).numpy(),
                                  np.where(mask, -1.0, a))
    row = mask[0]
    np.testing.assert_array_equal(gf.masked_fill(to_gf(a), to_gf(row), 0.0).numpy(),
                                  np.where(row, 0.0, a))
    i = gf.tensor([1, 2, 3]).masked_fill(gf.tensor([True, False, True]), 9)
    assert i.dtype is gf.int64 and i.tolist() == [9, 2, 9]


@given(data=st.data())
def test_setitem_matches_numpy(data):
    a = data.draw(shaped_arrays(nonempty_shapes(1, 3), layout="contiguous"))
    t = gf.tensor(a)
    expected = a.copy()
    choice = data.draw(st.sampled_from(("int", "slice", "mask", "array", "tensor_value")))
    if choice == "int":
        t[0] = 5.0
        expected[0] = 5.0
    elif choice == "slice":
        t[::2] = -1.0
        expected[::2] = -1.0
    elif choice == "mask":
        t[t > 0] = 0.0
        expected[expected > 0] = 0.0
    elif choice == "array":
        t[gf.tensor([0, 0])] = 3.0
        expected[[0, 0]] = 3.0
    else:
        value = np.arange(a.shape[-1], dtype=np.float64)
        t[..., :] = gf.tensor(value)
        expected[..., :] = value
    np.testing.assert_array_equal(t.numpy(), expected)
    assert t._version_counter == 1


def test_setitem_rules():
    t = gf.zeros(2, 3)
    t[1] = [1.0, 2.0, 3.0]
    assert t.tolist() == [[0.0, 0.0, 0.0], [1.0, 2.0, 3.0]]
    w = gf.zeros(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="index assignment: a leaf Variable that requires "
                                           "grad is being used in an in-place operation"):
        w[0] = 1.0
    t[0, 0] = w[0] * 2  # recorded (tests/test_interop.py checks its gradient)
    t.sum().backward()
    assert w.grad.tolist() == [2.0, 0.0]
    t = t.detach()
    with gf.no_grad():
        w[0] = 1.0
    assert w.tolist() == [1.0, 0.0]
    with pytest.raises(ValueError, match=r"index assignment into tensor of shape \(2, 3\): could "
                                         "not broadcast"):
        t[0] = gf.ones(4)


# key -> the result's shape for x of shape (2, 3, 4), as PyTorch 2.13 gives it
BOOL_AND_MIXED_KEYS = [
    ((True,), (1, 2, 3, 4)),
    ((False,), (0, 2, 3, 4)),
    ((0, True), (1, 3, 4)),
    ((0, slice(None), True, 1), (3, 1)),
    ((Ellipsis, True, 0), (2, 3, 1)),
    ((None, True, Ellipsis, False), (0, 1, 2, 3, 4)),
    ((True, True, 0, 0, 0), (1,)),
    ((1, True, 2, True, 3), (1,)),
    ((0, 0, 0, False), (0,)),
    ((True, [0, 1]), (2, 3, 4)),
    (([0, 1], True), (2, 3, 4)),
    ((True, slice(None), [0, 1]), (2, 2, 4)),
    ((0, slice(None), [0, 1]), (3, 2)),  # an int is a select, not part of the broadcast
    ((None, 0, slice(None), [0, 1]), (1, 3, 2)),
    (([0, 1], slice(None), 0), (2, 3)),
    ((0, [True, False, True]), (2, 4)),
]


@pytest.mark.parametrize("key, shape", BOOL_AND_MIXED_KEYS)
def test_bools_and_ints_in_keys_follow_pytorch(key, shape):
    a = np.arange(24.0).reshape(2, 3, 4)
    out = gf.from_numpy(a)[key]
    assert out.shape == shape
    x = to_gf(_rand((2, 3, 4)), True)
    assert gradcheck(lambda t: t[key] * 2, (x,))
    if (torch := _torch_or_none()) is not None:
        np.testing.assert_array_equal(out.numpy(), torch.from_numpy(a)[key].numpy())


def _torch_or_none():
    try:
        import torch
    except ImportError:
        return None
    return torch


def test_zero_dim_index_tensors_act_as_scalars():
    a = np.arange(24.0).reshape(2, 3, 4)
    t = gf.from_numpy(a)
    assert t[gf.tensor(True)].shape == (1, 2, 3, 4) and t[gf.tensor(False), 0].shape == (0, 3, 4)
    assert t[gf.tensor(1), :, [0, 1]].shape == (3, 2)  # a 0-d long tensor is an int
    np.testing.assert_array_equal(t[gf.tensor(-1)].numpy(), a[-1])


@st.composite
def mixed_keys(draw, shape):
    """Keys of ints, slices, int lists, None, bools and at most one Ellipsis for an array of
    `shape`: entries for its first dims, then maybe '...' and entries for its last dims."""
    first = draw(st.integers(0, len(shape)))
    ellipsis = draw(st.booleans())
    last = draw(st.integers(0, len(shape) - first)) if ellipsis else 0

    def extras():
        return draw(st.lists(st.sampled_from([None, True, False]), max_size=1))

    def entry(n):
        kind = draw(st.sampled_from(("int", "slice", "list")))
        if kind == "int":
            return draw(st.integers(-n, n - 1))
        if kind == "list":
            return draw(st.lists(st.integers(-n, n - 1), min_size=1, max_size=3))
        return slice(draw(st.none() | st.integers(-4, 4)), draw(st.none() | st.integers(-4, 4)),
                     draw(st.sampled_from([None, 1, 2])))

    key = []
    for n in shape[:first]:
        key += extras() + [entry(n)]
    if ellipsis:
        key += extras() + [Ellipsis]
        for n in shape[len(shape) - last:]:
            key += extras() + [entry(n)]
    return tuple(key + extras())


@given(data=st.data())
def test_mixed_keys_match_pytorch_forward_backward_and_setitem(data):
    torch = pytest.importorskip("torch")
    a = _rand((2, 3, 2))
    key = data.draw(mixed_keys(a.shape))
    try:
        expected = torch.from_numpy(a)[key].numpy()
    except IndexError:  # e.g. index lists that do not broadcast: gradflow must refuse too
        with pytest.raises(IndexError):
            gf.from_numpy(a)[key]
        return
    x = to_gf(a, True)
    out = x[key]
    np.testing.assert_array_equal(out.detach().numpy(), expected)
    w = np.random.default_rng(3).normal(size=expected.shape)
    (out * to_gf(w)).sum().backward()
    tx = torch.tensor(a, requires_grad=True)
    (tx[key] * torch.from_numpy(w)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12)
    value = np.random.default_rng(4).normal(size=expected.shape)
    t, ref = gf.tensor(a), torch.tensor(a)
    t[key] = gf.tensor(value)
    ref[key] = torch.from_numpy(value)
    if not any(isinstance(k, list) for k in key):  # repeated list indices: the last write wins
        np.testing.assert_array_equal(t.numpy(), ref.numpy())


def test_setitem_with_bools_and_ints_mixed_with_lists():
    t = gf.zeros(2, 3, 4)
    t[True] = 5.0
    assert (t == 5.0).all().item()
    t[False] = -1.0
    assert (t == 5.0).all().item()
    t[0, True, 1] = gf.tensor([[1.0, 2.0, 3.0, 4.0]])
    assert t[0, 1].tolist() == [1.0, 2.0, 3.0, 4.0]
    t[0, :, [0, 1]] = gf.tensor([[-1.0, -2.0]])  # (3, 2) target, as PyTorch
    assert t[0, :, :2].tolist() == [[-1.0, -2.0]] * 3 and t[1, :, :2].tolist() == [[5.0] * 2] * 3


@pytest.mark.parametrize("call,exc,msg", [
    (lambda t: t[5], IndexError, "index 5 is out of bounds for dimension 0 with size 2"),
    (lambda t: t[0, -4], IndexError, "index -4 is out of bounds for dimension 1 with size 3"),
    (lambda t: t[0, 0, 0], IndexError, r"too many indices for tensor of dimension 2 \(shape "
                                       r"\(2, 3\)\)"),
    (lambda t: t[gf.tensor([1.0])], IndexError,
     "tensors used as indices must be long, int, byte or bool"),
    (lambda t: t["a"], IndexError, "only integers, slices, None, Ellipsis"),
    (lambda t: t[..., 0, ...], IndexError, "index: an index can only have a single ellipsis"),
    (lambda t: t[[0, 2]], IndexError, "index 2 is out of bounds for dimension 0 with size 2"),
    (lambda t: t[:, [-4]], IndexError, "index -4 is out of bounds for dimension 1 with size 3"),
    (lambda t: t[[True, False, True]], IndexError, r"index: the shape of the mask \[3\] at index 0 "
                                                   r"does not match the shape of the indexed "
                                                   r"tensor \[2, 3\]"),
    (lambda t: t[False, [0, 1]], IndexError, r"index: shape mismatch: indexing tensors could not "
                                             r"be broadcast together with shapes \[0\], \[2\]"),
    (lambda t: t[[0, 1], [0, 1, 2]], IndexError, "index: shape mismatch"),
    (lambda t: t[0, 0, True, 0], IndexError, "too many indices for tensor of dimension 2"),
    (lambda t: t[[0.5]], IndexError, "list/array indices must hold ints or bools"),
    (lambda t: t.gather(1, gf.tensor([[5]])), IndexError,
     "gather: index 5 is out of bounds for dimension with size 3"),
    (lambda t: t.gather(1, gf.tensor([0])), ValueError,
     r"gather: index \(1,\) must have the input's rank"),
    (lambda t: t.gather(1, gf.tensor([[0.0]])), TypeError, "gather: index must be an int64"),
    (lambda t: t.gather(2, gf.tensor([[0]])), IndexError, "gather: dimension out of range"),
    (lambda t: t.scatter_add(0, gf.tensor([[0]]), gf.ones(2)), ValueError,
     r"scatter_add: index \(1, 1\) must fit in src \(2,\)"),
    (lambda t: t.scatter_add(0, gf.tensor([[2]]), gf.ones(1, 1)), IndexError,
     "scatter_add: index 2 is out of bounds"),
    (lambda t: t.index_select(0, gf.tensor([3])), IndexError,
     "index_select: index 3 is out of bounds for dimension with size 2"),
    (lambda t: t.index_select(0, gf.tensor([[0]])), ValueError, "index_select: index must be 1-D"),
    (lambda t: t.index_add(0, gf.tensor([0]), gf.ones(2, 2)), ValueError,
     r"index_add: source must have shape \(1, 3\) for input \(2, 3\) and index \(1,\), got "
     r"\(2, 2\)"),
])
def test_index_bad_inputs(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call(gf.ones(2, 3))


def test_index_ops_on_a_0d_input_match_pytorch():
    s = gf.tensor(5.0, dtype=gf.float64, requires_grad=True)
    zero = gf.tensor(0)
    assert s.index_select(0, gf.tensor([0])).shape == () and s.index_select(-1, zero).item() == 5
    assert s.gather(0, zero).shape == () and s.gather(0, gf.tensor([0])).tolist() == [5.0]
    assert s.scatter_add(0, zero, gf.tensor(2.0, dtype=gf.float64)).item() == 7.0
    assert gf.index_add(s, 0, zero, gf.tensor(2.0, dtype=gf.float64), alpha=2).item() == 9.0
    assert gradcheck(lambda t: t.index_select(0, zero) * t.gather(0, gf.tensor([0, 0])), (s,))
    with pytest.raises(ValueError, match="index_select: an index into a 0-d tensor can have "
                                         "only 1 value, got 2"):
        s.index_select(0, gf.tensor([0, 0]))
    with pytest.raises(IndexError, match="gather: dimension out of range"):
        s.gather(1, zero)
    with pytest.raises(ValueError, match="index_add: a 0-d input needs a 0-d index and source"):
        gf.index_add(s, 0, gf.tensor([0]), gf.tensor([2.0], dtype=gf.float64))


@pytest.mark.parametrize("call", [
    lambda t: t.gather(True, gf.zeros(2, 3, dtype=gf.int64)),
    lambda t: t.scatter_add(True, gf.zeros(2, 3, dtype=gf.int64), t),
    lambda t: t.index_select(True, gf.tensor([0])),
    lambda t: t.index_add(True, gf.tensor([0]), gf.ones(2, 1)),
])
def test_index_ops_refuse_a_bool_dim(call):
    with pytest.raises(TypeError, match="argument 'dim' must be int, not bool"):
        call(gf.ones(2, 3))
