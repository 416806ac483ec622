"""The ops of issue 16 that need no new kernel: triangles and diagonals, roll, outer, scans,
isclose, meshgrid, addmm/baddbmm, sorting and selection, scatter, and the Tensor methods
around them (new_*, type, data_ptr, device predicates, in-place variants)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from parity import needs_torch
from strategies import DEVICES, nonempty_shapes, shaped_arrays, shapes, to_gf

import gradflow as gf
from gradflow.autograd import gradcheck, gradgradcheck


def _rand(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape)


def _leaf(a):
    return gf.tensor(np.array(a, dtype=np.float64), requires_grad=True)


# ---------------------------------------------------------------- tril, triu
@given(a=shaped_arrays(shapes(2, 4)), k=st.integers(-5, 5))
def test_tril_triu_match_numpy(a, k):
    np.testing.assert_array_equal(gf.tril(to_gf(a), k).numpy(), np.tril(a, k))
    np.testing.assert_array_equal(gf.triu(to_gf(a), diagonal=k).numpy(), np.triu(a, k))


def test_tril_triu_gradients_and_infinities():
    x = _leaf(_rand((2, 3, 4)))
    assert gradcheck(lambda t: gf.tril(t, 1), (x,))
    assert gradcheck(lambda t: gf.triu(t, -1), (x,))
    inf = gf.full((3, 3), float("inf"))
    assert gf.tril(inf).numpy()[0, 2] == 0  # zeroed, not inf * 0


@pytest.mark.parametrize("op", ["tril", "triu"])
def test_triangles_refuse_vectors(op):
    with pytest.raises(ValueError, match=f"{op}: .*at least 2 dimensions"):
        getattr(gf, op)(gf.ones(3))
    with pytest.raises(TypeError, match=f"{op}: argument 'diagonal'"):
        getattr(gf, op)(gf.ones(3, 3), 1.5)


# ---------------------------------------------------------------- roll
@st.composite
def roll_args(draw):
    a = draw(shaped_arrays(shapes(0, 3)))
    if a.ndim == 0 or draw(st.booleans()):
        return a, draw(st.integers(-7, 7)), None
    dims = draw(st.lists(st.integers(-a.ndim, a.ndim - 1), min_size=1, max_size=3))
    return a, tuple(draw(st.integers(-7, 7)) for _ in dims), tuple(dims)


@given(args=roll_args())
def test_roll_matches_numpy(args):
    a, shifts, dims = args
    np.testing.assert_array_equal(gf.roll(to_gf(a), shifts, dims).numpy(),
                                  np.roll(a, shifts, dims))


def test_roll_gradient_and_errors():
    x = _leaf(_rand((3, 4)))
    assert gradcheck(lambda t: gf.roll(t, (1, -3), (0, 1)), (x,))
    assert gradcheck(lambda t: gf.roll(t, 5), (x,))
    with pytest.raises(ValueError, match="roll: shifts and dims"):
        gf.roll(x, (1, 2), 0)
    with pytest.raises(IndexError, match="roll: dimension out of range"):
        gf.roll(x, 1, 2)


# ---------------------------------------------------------------- outer, diag
def test_outer_matches_numpy_and_has_gradients():
    a, b = _rand(3), _rand(4, seed=1)
    np.testing.assert_allclose(gf.outer(gf.tensor(a), gf.tensor(b)).numpy(), np.outer(a, b))
    assert gradcheck(gf.outer, (_leaf(a), _leaf(b)))
    with pytest.raises(ValueError, match="outer: expected two 1-D"):
        gf.outer(gf.ones(2, 2), gf.ones(2))


@given(a=shaped_arrays(shapes(1, 2)), k=st.integers(-4, 4))
def test_diag_matches_numpy(a, k):
    np.testing.assert_array_equal(gf.diag(to_gf(a), k).numpy(), np.diag(a, k))


def test_diag_gradients_both_ways():
    assert gradcheck(lambda v: gf.diag(v, 1), (_leaf(_rand(3)),))
    assert gradgradcheck(lambda v: gf.diag(v, -2), (_leaf(_rand(3)),))
    assert gradcheck(lambda m: gf.diag(m, -1), (_leaf(_rand((4, 3))),))
    with pytest.raises(ValueError, match="diag: input must be 1-D or 2-D"):
        gf.diag(gf.ones(2, 2, 2))


# ---------------------------------------------------------------- cumsum, cumprod
@given(a=shaped_arrays(shapes(0, 3)), data=st.data())
def test_scans_match_numpy(a, data):
    dim = data.draw(st.integers(-max(a.ndim, 1), max(a.ndim, 1) - 1))
    axis = dim if a.ndim else None
    np.testing.assert_allclose(gf.cumsum(to_gf(a), dim).numpy(),
                               np.cumsum(a, axis).reshape(a.shape))
    np.testing.assert_allclose(gf.cumprod(to_gf(a), dim=dim).numpy(),
                               np.cumprod(a, axis).reshape(a.shape))


def test_scans_dtypes():
    ints = gf.tensor([[1, 2], [3, 4]], dtype=gf.int32)
    assert gf.cumsum(ints, 0).dtype is gf.int64  # integers accumulate as int64
    assert gf.cumsum(gf.tensor([True, True]), 0).tolist() == [1, 2]
    out = gf.cumprod(ints, 1, dtype=gf.float64)
    assert out.dtype is gf.float64 and out.tolist() == [[1.0, 2.0], [3.0, 12.0]]


@pytest.mark.parametrize("zeros", [(), ((0, 1),), ((0, 1), (0, 3)), ((1, 0), (2, 2))])
def test_cumprod_gradients_with_zeros(zeros):
    a = _rand((3, 4))
    for z in zeros:
        a[z] = 0.0
    for dim in (0, 1):
        assert gradcheck(lambda t: gf.cumprod(t, dim), (_leaf(a),))
        assert gradgradcheck(lambda t: gf.cumprod(t, dim), (_leaf(a),))
    assert gradgradcheck(lambda t: gf.cumsum(t, -1), (_leaf(a),))


# ---------------------------------------------------------------- isclose
def test_isclose_matches_numpy():
    a = np.array([1.0, np.nan, np.inf, -np.inf, 1e-9, 2.0, np.inf])
    b = np.array([1.0 + 1e-7, np.nan, np.inf, np.inf, 0.0, 2.1, 5.0])
    for equal_nan in (False, True):
        np.testing.assert_array_equal(
            gf.isclose(gf.tensor(a), gf.tensor(b), equal_nan=equal_nan).numpy(),
            np.isclose(a, b, equal_nan=equal_nan))
    np.testing.assert_array_equal(gf.isclose(gf.tensor(a), gf.tensor(b), rtol=0.1, atol=0).numpy(),
                                  np.isclose(a, b, rtol=0.1, atol=0))
    ints = gf.tensor([1, 2, 3])
    assert gf.isclose(ints, gf.tensor([1, 3, 3])).tolist() == [True, False, True]
    with pytest.raises(ValueError, match="isclose: rtol and atol must be non-negative"):
        gf.isclose(ints, ints, rtol=-1)
    with pytest.raises(TypeError, match="isclose: argument 'equal_nan' must be bool"):
        gf.isclose(ints, ints, equal_nan=np.ones(3))  # found by the fuzz run (seed 7)


# ---------------------------------------------------------------- meshgrid
@pytest.mark.parametrize("indexing", ["ij", "xy"])
@pytest.mark.parametrize("sizes", [(3,), (2, 3), (2, 0, 4), (1, 3, 2)])
def test_meshgrid_matches_numpy(indexing, sizes):
    arrays = [_rand(n, seed=n) for n in sizes]
    ours = gf.meshgrid(*[gf.tensor(a) for a in arrays], indexing=indexing)
    for o, e in zip(ours, np.meshgrid(*arrays, indexing=indexing)):
        np.testing.assert_array_equal(o.numpy(), e)
    assert len(gf.meshgrid([gf.tensor(a) for a in arrays], indexing=indexing)) == len(sizes)


def test_meshgrid_gradients_and_errors():
    assert gradcheck(lambda a, b: gf.meshgrid(a, b, indexing="xy")[0].t() * 2
                     + gf.meshgrid(a, b)[1], (_leaf(_rand(2)), _leaf(_rand(3))))
    with pytest.raises(ValueError, match="meshgrid: indexing"):
        gf.meshgrid(gf.ones(2), indexing="ji")
    with pytest.raises(ValueError, match="meshgrid: expects 0-D or 1-D"):
        gf.meshgrid(gf.ones(2, 2))
    with pytest.raises(TypeError, match="meshgrid: expects all tensors to have the same dtype"):
        gf.meshgrid(gf.ones(2), gf.arange(2))


# ---------------------------------------------------------------- addmm, baddbmm
def test_addmm_baddbmm_match_numpy():
    c, a, b = _rand((1, 4)), _rand((3, 2), 1), _rand((2, 4), 2)
    out = gf.addmm(gf.tensor(c), gf.tensor(a), gf.tensor(b), beta=0.5, alpha=-2)
    np.testing.assert_allclose(out.numpy(), 0.5 * c - 2 * a @ b)
    c3, a3, b3 = _rand((5, 3, 4)), _rand((5, 3, 2), 1), _rand((5, 2, 4), 2)
    out = gf.baddbmm(gf.tensor(c3), gf.tensor(a3), gf.tensor(b3), alpha=3)
    np.testing.assert_allclose(out.numpy(), c3 + 3 * a3 @ b3)
    nan = gf.full((3, 4), float("nan"))
    assert not gf.addmm(nan, gf.tensor(a), gf.tensor(b), beta=0).isnan().any()


def test_addmm_baddbmm_gradients_and_errors():
    assert gradcheck(lambda c, a, b: gf.addmm(c, a, b, beta=2, alpha=0.5),
                     (_leaf(_rand(4)), _leaf(_rand((3, 2))), _leaf(_rand((2, 4)))))
    assert gradcheck(lambda c, a, b: gf.baddbmm(c, a, b, beta=0),
                     (_leaf(_rand((2, 3, 4))), _leaf(_rand((2, 3, 2))), _leaf(_rand((2, 2, 4)))))
    with pytest.raises(ValueError, match=r"addmm: shapes \(5,\) and \(3, 4\)"):
        gf.addmm(gf.ones(5), gf.ones(3, 2), gf.ones(2, 4))
    with pytest.raises(ValueError, match="mm: expected 2-D"):
        gf.addmm(gf.ones(4), gf.ones(3), gf.ones(2, 4))
    with pytest.raises(TypeError, match="baddbmm: argument 'beta'"):
        gf.baddbmm(gf.ones(1, 3, 4), gf.ones(1, 3, 2), gf.ones(1, 2, 4), beta="1")


def test_numel():
    assert gf.numel(gf.ones(2, 0, 3)) == 0 and gf.numel(gf.ones(2, 3)) == 6
    with pytest.raises(TypeError, match="numel: argument 'input'"):
        gf.numel([1, 2])


# ---------------------------------------------------------------- sort, argsort, topk
@given(a=shaped_arrays(shapes(0, 3), low=-2, high=2), descending=st.booleans(), data=st.data())
def test_sort_matches_stable_numpy(a, descending, data):
    a = np.asarray(np.round(a))  # ties, to test stability
    dim = data.draw(st.integers(-max(a.ndim, 1), max(a.ndim, 1) - 1))
    values, indices = gf.sort(to_gf(a), dim, descending, stable=True)
    if a.ndim == 0:
        assert values.item() == a and indices.item() == 0
        return
    key = -a if descending else a  # stable: equal values keep their order either way
    expected = np.argsort(key, axis=dim, kind="stable")
    np.testing.assert_array_equal(indices.numpy(), expected)
    np.testing.assert_array_equal(values.numpy(), np.take_along_axis(a, expected, dim))
    np.testing.assert_array_equal(gf.argsort(to_gf(a), dim, descending=descending).numpy(),
                                  expected)


def test_sort_puts_nan_last_ascending_and_first_descending():
    x = gf.tensor([2.0, float("nan"), 1.0])
    assert gf.sort(x).indices.tolist() == [2, 0, 1]
    assert gf.sort(x, descending=True).indices.tolist() == [1, 0, 2]


@given(a=shaped_arrays(nonempty_shapes(1, 3)), largest=st.booleans(), data=st.data())
def test_topk_matches_sorted_numpy(a, largest, data):
    dim = data.draw(st.integers(-a.ndim, a.ndim - 1))
    k = data.draw(st.integers(0, a.shape[dim]))
    values, indices = gf.topk(to_gf(a), k, dim, largest=largest)
    order = np.argsort(-a if largest else a, axis=dim, kind="stable")
    expected = np.take(order, np.arange(k), axis=dim)
    np.testing.assert_array_equal(indices.numpy(), expected)
    np.testing.assert_array_equal(values.numpy(), np.take_along_axis(a, expected, dim))


def test_sort_topk_gradients_scatter_back():
    x = _leaf(_rand((3, 5)))
    assert gradcheck(lambda t: gf.sort(t, 1, descending=True).values, (x,))
    assert gradcheck(lambda t: gf.topk(t, 2, 0).values, (x,))
    gf.topk(x, 2).values.sum().backward()
    assert (x.grad.sum(1) == 2).all() and (x.grad >= 0).all()


def test_sort_topk_errors():
    with pytest.raises(IndexError, match=r"topk: k \(4\) is out of range"):
        gf.topk(gf.ones(3), 4)
    with pytest.raises(IndexError, match="sort: dimension out of range"):
        gf.sort(gf.ones(3), 1)
    with pytest.raises(TypeError, match="argsort: argument 'descending' must be bool"):
        gf.argsort(gf.ones(3), 0, 1)
    assert gf.topk(gf.tensor(5.0), 1).values.ndim == 0


# ---------------------------------------------------------------- masked_select, nonzero
@given(pair=st.data())
def test_masked_select_broadcasts_like_numpy(pair):
    shape_a, shape_m = pair.draw(st.tuples(shapes(0, 3), shapes(0, 3)).filter(
        lambda s: _broadcastable(*s)))
    a = pair.draw(shaped_arrays(st.just(shape_a)))
    m = pair.draw(shaped_arrays(st.just(shape_m), dtype=np.bool_))
    out = gf.masked_select(to_gf(a), to_gf(m))
    full_a, full_m = np.broadcast_arrays(a, m)
    np.testing.assert_array_equal(out.numpy(), full_a[full_m])


def _broadcastable(sa, sb):
    try:
        np.broadcast_shapes(sa, sb)
        return True
    except ValueError:
        return False


def test_masked_select_gradient_and_errors():
    mask = gf.tensor([[True, False, True]])
    assert gradcheck(lambda t: gf.masked_select(t, mask), (_leaf(_rand((2, 3))),))
    with pytest.raises(TypeError, match="masked_select: mask must be a bool tensor"):
        gf.masked_select(gf.ones(3), gf.ones(3))
    with pytest.raises(ValueError, match="masked_select: shapes"):
        gf.masked_select(gf.ones(3), gf.ones(2, dtype=gf.bool))


@given(a=shaped_arrays(shapes(0, 3), dtype=np.int64, low=-1, high=1))
def test_nonzero_matches_numpy(a):
    out = gf.nonzero(to_gf(a))
    assert out.dtype is gf.int64
    if a.ndim:
        np.testing.assert_array_equal(out.numpy(), np.argwhere(a))
        for ours, theirs in zip(gf.nonzero(to_gf(a), as_tuple=True), np.nonzero(a)):
            np.testing.assert_array_equal(ours.numpy(), theirs)
    else:
        assert tuple(out.shape) == (int(a != 0), 0)
        assert gf.nonzero(to_gf(a), as_tuple=True)[0].tolist() == ([0] if a else [])


# ---------------------------------------------------------------- unique
def test_unique_flat_and_along_a_dim():
    x = gf.tensor([[3, 1, 3], [0, 1, 3]])
    values, inverse, counts = gf.unique(x, return_inverse=True, return_counts=True)
    assert values.tolist() == [0, 1, 3] and counts.tolist() == [1, 2, 3]
    assert inverse.tolist() == [[2, 1, 2], [0, 1, 2]]
    assert gf.unique(x).tolist() == [0, 1, 3]
    rows = gf.tensor([[1, 2], [0, 5], [1, 2]])
    values, inverse = gf.unique(rows, dim=0, return_inverse=True)
    assert values.tolist() == [[0, 5], [1, 2]] and inverse.tolist() == [1, 0, 1]
    assert gf.unique(gf.ones(0)).shape == (0,)
    with pytest.raises(TypeError, match="unique: argument 'return_counts' must be bool"):
        gf.unique(x, return_counts=1)


# ---------------------------------------------------------------- scatter
def test_scatter_matches_put_along_axis_and_has_gradients():
    x, src = _rand((3, 4)), _rand((3, 5), 1)
    index = np.array([[3, 0], [1, 2], [0, 0]])
    out = gf.scatter(gf.tensor(x), 1, gf.tensor(index), gf.tensor(src))
    expected = x.copy()
    np.put_along_axis(expected, index, src[:, :2], 1)  # the last write wins at [2, 0]
    np.testing.assert_array_equal(out.numpy(), expected)
    filled = gf.tensor(x).scatter(0, gf.tensor([[2, 1, 0, 2]]), value=9.0)
    assert filled.numpy()[[2, 1, 0, 2], [0, 1, 2, 3]].tolist() == [9.0] * 4
    distinct = gf.tensor([[3, 0], [1, 2], [0, 2]])
    assert gradcheck(lambda a, s: gf.scatter(a, 1, distinct, s), (_leaf(x), _leaf(src)))
    assert gradcheck(lambda a: gf.scatter(a, 1, distinct, value=1.5), (_leaf(x),))


@given(a=shaped_arrays(nonempty_shapes(1, 3)), data=st.data())
def test_scatter_matches_numpy_on_drawn_shapes(a, data):
    dim = data.draw(st.integers(-a.ndim, a.ndim - 1))
    index_shape = tuple(data.draw(st.integers(0, n)) for n in a.shape)
    index = data.draw(st.lists(st.integers(-a.shape[dim], a.shape[dim] - 1),
                               min_size=int(np.prod(index_shape)),
                               max_size=int(np.prod(index_shape))))
    index = np.array(index, dtype=np.int64).reshape(index_shape)
    src = _rand(index_shape)
    expected = a.copy()
    for position in np.ndindex(*index_shape):  # row-major: the last write wins, as ours
        target = list(position)
        target[dim] = index[position]
        expected[tuple(target)] = src[position]
    out = gf.scatter(to_gf(a), dim, gf.tensor(index), gf.tensor(src))
    np.testing.assert_array_equal(out.numpy(), expected)


def test_scatter_errors():
    x, index = gf.zeros(2, 3), gf.tensor([[0, 1]])
    with pytest.raises(IndexError, match="scatter: index 5 is out of bounds"):
        gf.scatter(x, 1, gf.tensor([[5]]), gf.ones(1, 1))
    with pytest.raises(ValueError, match="scatter: index"):
        gf.scatter(x, 1, index, gf.ones(1, 1))
    with pytest.raises(TypeError, match="scatter: give exactly one of src"):
        gf.scatter(x, 1, index)
    with pytest.raises(ValueError, match="scatter: reduce must be None or 'add'"):
        gf.scatter(x, 1, index, gf.ones(1, 2), reduce="multiply")
    assert gf.scatter(x, 1, index, gf.ones(1, 2), reduce="add").sum().item() == 2


# ---------------------------------------------------------------- Tensor methods
def test_ops_are_methods():
    x = gf.tensor(_rand((3, 3)))
    for name, args in [("tril", (1,)), ("triu", ()), ("roll", (1, 0)), ("diag", ()),
                       ("cumsum", (0,)), ("cumprod", (1,)), ("argsort", ()),
                       ("masked_select", (x > 0,)), ("nonzero", ()), ("unique", ())]:
        np.testing.assert_array_equal(getattr(x, name)(*args).numpy(),
                                      getattr(gf, name)(x, *args).numpy())
    assert x.sort().values.tolist() == gf.sort(x).values.tolist()
    assert x.topk(2).indices.tolist() == gf.topk(x, 2).indices.tolist()
    assert x.isclose(x).all() and x.allclose(x)
    assert x.diag().outer(x.diag()).shape == (3, 3)


def test_new_creation_methods_follow_self():
    x = gf.ones(2, dtype=gf.float64)
    for t in (x.new_zeros(2, 3), x.new_ones((2, 3)), x.new_empty(2, 3),
              x.new_full((2, 3), 7)):
        assert t.shape == (2, 3) and t.dtype is gf.float64 and t.device == x.device
    assert x.new_zeros(2).tolist() == [0, 0] and x.new_full((1,), 7).tolist() == [7.0]
    t = x.new_tensor([1, 2], requires_grad=True)
    assert t.dtype is gf.float64 and t.requires_grad and t.is_leaf
    assert x.new_ones(2, dtype=gf.int64).dtype is gf.int64


def test_type_and_predicates():
    x = gf.ones(2)
    assert x.type() == "gradflow.FloatTensor"
    assert gf.ones(2, dtype=gf.int64).type() == "gradflow.LongTensor"
    assert x.type(gf.float64).dtype is gf.float64
    assert x.type("torch.LongTensor").dtype is gf.int64
    with pytest.raises(ValueError, match="type: unknown tensor type"):
        x.type("torch.ComplexTensor")
    assert not (x.is_xpu or x.is_mps or x.is_meta or x.is_sparse or x.is_quantized)


def test_data_ptr_counts_the_view_offset():
    a = np.zeros((4, 4))
    t = gf.from_numpy(a)
    assert t.data_ptr() == a.ctypes.data
    assert t[1:, 2].data_ptr() == a.ctypes.data + (4 + 2) * 8


@pytest.mark.parametrize("shape,wrap", [((3, 3), False), ((5, 2), False), ((7, 3), True),
                                        ((2, 4), True), ((3, 3, 3), False)])
def test_fill_diagonal_matches_numpy(shape, wrap):
    a = _rand(shape)
    t = gf.tensor(a)
    assert t.fill_diagonal_(-1.5, wrap=wrap) is t
    np.fill_diagonal(a, -1.5, wrap=wrap)
    np.testing.assert_array_equal(t.numpy(), a)


def test_fill_diagonal_errors_and_gradient():
    with pytest.raises(ValueError, match="fill_diagonal_: all dimensions"):
        gf.ones(2, 3, 3).fill_diagonal_(0)
    with pytest.raises(RuntimeError, match="leaf Variable"):
        gf.ones(2, 2, requires_grad=True).fill_diagonal_(0)
    x = _leaf(_rand((3, 3)))
    y = x * 1
    y.fill_diagonal_(0.0)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), 1 - np.eye(3))


def test_inplace_index_add_and_scatter():
    t = gf.zeros(3, 2)
    assert t.index_add_(0, gf.tensor([2, 0, 2]), gf.ones(3, 2), alpha=2) is t
    assert t.tolist() == [[2, 2], [0, 0], [4, 4]]
    s = gf.zeros(2, 2)
    assert s.scatter_(1, gf.tensor([[1], [0]]), gf.tensor([[5.0], [6.0]])) is s
    assert s.tolist() == [[0, 5], [6, 0]]
    s.scatter_(0, gf.tensor([[1, 1]]), value=3.0)
    assert s.tolist() == [[0, 5], [3, 3]]
    src = _leaf([[1.0], [2.0]])
    y = gf.zeros(2, 2) + 0
    y.scatter_(1, gf.tensor([[1], [0]]), src)
    (y * gf.tensor([[1.0, 10.0], [100.0, 1000.0]])).sum().backward()
    assert src.grad.tolist() == [[10.0], [100.0]]


# ---------------------------------------------------------------- parity with PyTorch
def _t(a):
    import torch

    return torch.tensor(np.asarray(a))


@needs_torch
def test_parity_shape_and_linalg_ops():
    import torch

    a = _rand((3, 4))
    for k in (-1, 0, 2):
        np.testing.assert_array_equal(gf.tril(gf.tensor(a), k).numpy(),
                                      torch.tril(_t(a), k).numpy())
        np.testing.assert_array_equal(gf.triu(gf.tensor(a), k).numpy(),
                                      torch.triu(_t(a), k).numpy())
        np.testing.assert_array_equal(gf.diag(gf.tensor(a), k).numpy(),
                                      torch.diag(_t(a), k).numpy())
        np.testing.assert_array_equal(gf.diag(gf.tensor(a[0]), k).numpy(),
                                      torch.diag(_t(a[0]), k).numpy())
    np.testing.assert_array_equal(gf.roll(gf.tensor(a), (1, -5), (1, 0)).numpy(),
                                  torch.roll(_t(a), (1, -5), (1, 0)).numpy())
    np.testing.assert_array_equal(gf.roll(gf.tensor(a), 3).numpy(), torch.roll(_t(a), 3).numpy())
    for indexing in ("ij", "xy"):
        ours = gf.meshgrid(gf.tensor(a[0]), gf.tensor(a[1, :3]), indexing=indexing)
        theirs = torch.meshgrid(_t(a[0]), _t(a[1, :3]), indexing=indexing)
        for o, t in zip(ours, theirs):
            np.testing.assert_array_equal(o.numpy(), t.numpy())
    c, m1, m2 = _rand(4), _rand((3, 2), 1), _rand((2, 4), 2)
    np.testing.assert_allclose(
        gf.addmm(gf.tensor(c), gf.tensor(m1), gf.tensor(m2), beta=0.3, alpha=2).numpy(),
        torch.addmm(_t(c), _t(m1), _t(m2), beta=0.3, alpha=2).numpy())
    b1, b2 = _rand((2, 3, 2)), _rand((2, 2, 4), 1)
    np.testing.assert_allclose(
        gf.baddbmm(gf.tensor(c), gf.tensor(b1), gf.tensor(b2), beta=0, alpha=-1).numpy(),
        torch.baddbmm(_t(c), _t(b1), _t(b2), beta=0, alpha=-1).numpy())
    x, y = np.array([1.0, np.nan, np.inf, 2.0]), np.array([1.0 + 1e-6, np.nan, np.inf, 2.5])
    for equal_nan in (False, True):
        np.testing.assert_array_equal(
            gf.isclose(gf.tensor(x), gf.tensor(y), atol=1e-5, equal_nan=equal_nan).numpy(),
            torch.isclose(_t(x), _t(y), atol=1e-5, equal_nan=equal_nan).numpy())


@needs_torch
@pytest.mark.parametrize("zeros", [(), ((1,),), ((1,), (3,)), ((0,), (4,))])
def test_parity_scan_gradients(zeros):
    import torch

    a = _rand(5)
    for z in zeros:
        a[z] = 0.0
    weights = _rand(5, 3)
    for name in ("cumsum", "cumprod"):
        ours = _leaf(a)
        (getattr(gf, name)(ours, 0) * gf.tensor(weights)).sum().backward()
        theirs = _t(a).requires_grad_(True)
        (getattr(torch, name)(theirs, 0) * _t(weights)).sum().backward()
        np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), atol=1e-12)


@needs_torch
def test_parity_sorting_and_selection():
    import torch

    a = np.round(_rand((4, 6)) * 2)  # ties
    for descending in (False, True):
        ours = gf.sort(gf.tensor(a), 1, descending, stable=True)
        theirs = torch.sort(_t(a), dim=1, descending=descending, stable=True)
        np.testing.assert_array_equal(ours.values.numpy(), theirs.values.numpy())
        np.testing.assert_array_equal(ours.indices.numpy(), theirs.indices.numpy())
        np.testing.assert_array_equal(gf.argsort(gf.tensor(a), 0, descending, stable=True)
                                      .numpy(), torch.argsort(_t(a), dim=0, descending=descending,
                                                              stable=True).numpy())
    distinct = _rand((4, 6))
    for largest in (False, True):
        ours = gf.topk(gf.tensor(distinct), 3, 1, largest)
        theirs = torch.topk(_t(distinct), 3, 1, largest)
        np.testing.assert_array_equal(ours.values.numpy(), theirs.values.numpy())
        np.testing.assert_array_equal(ours.indices.numpy(), theirs.indices.numpy())
    mask = a > 0
    np.testing.assert_array_equal(gf.masked_select(gf.tensor(a), gf.tensor(mask[0])).numpy(),
                                  torch.masked_select(_t(a), _t(mask[0])).numpy())
    np.testing.assert_array_equal(gf.nonzero(gf.tensor(a)).numpy(), torch.nonzero(_t(a)).numpy())
    for size in ((), (0,), (2, 0)):
        z = np.ones(size)
        assert gf.nonzero(gf.tensor(z)).shape == tuple(torch.nonzero(_t(z)).shape)
    ours = gf.unique(gf.tensor(a), return_inverse=True, return_counts=True)
    theirs = torch.unique(_t(a), return_inverse=True, return_counts=True)
    for o, t in zip(ours, theirs):
        np.testing.assert_array_equal(o.numpy(), t.numpy())
    rows = np.array([[1, 2], [0, 5], [1, 2]])
    for o, t in zip(gf.unique(gf.tensor(rows), dim=0, return_inverse=True, return_counts=True),
                    torch.unique(_t(rows), dim=0, return_inverse=True, return_counts=True)):
        np.testing.assert_array_equal(o.numpy(), t.numpy())


@needs_torch
def test_parity_scatter_and_fill_diagonal():
    import torch

    x, src = _rand((3, 4)), _rand((3, 2), 1)  # (PyTorch's backward needs src as index)
    index = np.array([[3, 0], [1, 2], [0, 1]])
    ours_x, ours_src = _leaf(x), _leaf(src)
    out = gf.scatter(ours_x, 1, gf.tensor(index), ours_src)
    theirs_x, theirs_src = _t(x).requires_grad_(True), _t(src).requires_grad_(True)
    expected = torch.scatter(theirs_x, 1, _t(index), theirs_src)
    np.testing.assert_array_equal(out.detach().numpy(), expected.detach().numpy())
    weights = _rand((3, 4), 2)
    (out * gf.tensor(weights)).sum().backward()
    (expected * _t(weights)).sum().backward()
    np.testing.assert_array_equal(ours_x.grad.numpy(), theirs_x.grad.numpy())
    np.testing.assert_array_equal(ours_src.grad.numpy(), theirs_src.grad.numpy())
    for shape, wrap in (((7, 3), True), ((7, 3), False), ((3, 3, 3), False)):
        ours, theirs = gf.zeros(*shape), torch.zeros(*shape)
        ours.fill_diagonal_(2.0, wrap=wrap)
        theirs.fill_diagonal_(2.0, wrap=wrap)
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


@settings(max_examples=20)
@given(a=shaped_arrays(shapes(1, 3)))
def test_gradients_of_scans_on_drawn_shapes(a):
    dim = a.ndim - 1
    assert gradcheck(lambda t: gf.cumsum(t, dim), (to_gf(a.copy(), True),))
    assert gradcheck(lambda t: gf.cumprod(t, dim), (to_gf(a.copy(), True),))


@pytest.mark.parametrize("device", DEVICES)
def test_ops_on_a_device_match_the_cpu(device):
    a = np.round(_rand((3, 4)) * 2)
    index = np.array([[3, 0], [1, 2], [0, 1]])
    calls = [
        ("tril", lambda t: gf.tril(t, 1)), ("triu", lambda t: gf.triu(t, -1)),
        ("diag", lambda t: gf.diag(gf.diag(t, 1), -1)),
        ("roll", lambda t: gf.roll(t, (1, 2), (0, 1))),
        ("cumsum", lambda t: gf.cumsum(t, 1)), ("cumprod", lambda t: gf.cumprod(t, 0)),
        ("sort", lambda t: gf.sort(t, 1, descending=True).values),
        ("topk", lambda t: gf.topk(t, 2, 0).values), ("masked_select", lambda t: t[t > 0] * 1),
        ("outer", lambda t: gf.outer(t[0], t[1])),
        ("addmm", lambda t: gf.addmm(t[:, :2], t[:, :3], t[:3, :2], beta=0.5)),
        ("scatter", lambda t: gf.scatter(t, 1, gf.tensor(index, device=t.device), t[:, :2])),
        ("meshgrid", lambda t: gf.meshgrid(t[0], t[1])[0]),
    ]
    for name, fn in calls:
        results = []
        for where in ("cpu", device):
            x = gf.tensor(a, device=where, requires_grad=True)
            y = fn(x)
            y.sum().backward()
            results.append((y.detach().cpu().numpy(), x.grad.cpu().numpy()))
        for cpu_value, device_value in zip(*results):
            np.testing.assert_allclose(device_value, cpu_value, err_msg=name)
    x = gf.tensor(a, device=device)
    for fn in (gf.argsort, gf.nonzero, gf.unique, lambda t: gf.isclose(t, t * 1.0000001)):
        np.testing.assert_array_equal(fn(x).cpu().numpy(), fn(gf.tensor(a)).numpy())
    assert x.new_zeros(2).device == x.device and x.data_ptr() != 0


def test_scans_keep_their_node_name():
    """The scan's op is kept on ctx apart from Context.name(), which grad_fn.name() calls."""
    x = gf.tensor([1.0, 2.0], requires_grad=True)
    assert gf.cumsum(x, 0).grad_fn.name() == "CumsumBackward"
    assert gf.cumprod(x, 0).grad_fn.name() == "CumprodBackward"
