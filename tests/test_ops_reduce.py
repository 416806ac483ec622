"""Reductions over dims (None, int, tuple, negative; keepdim) and the softmax family."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import array_and_dims, axes_tuple, nonempty_shapes, shapes, to_gf

import gradflow as gf
from gradflow.autograd import gradcheck, gradgradcheck


def _np_logsumexp(a, axis, keepdims):
    m = np.max(a, axis=axis, keepdims=True)
    out = np.log(np.sum(np.exp(a - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis)


# name: (gradflow call, NumPy reference, needs a non-empty reduced extent)
REDUCTIONS = {
    "sum": (lambda t, d, k: t.sum(d, keepdim=k), lambda a, ax, k: np.sum(a, ax, keepdims=k),
            False),
    "mean": (lambda t, d, k: t.mean(d, keepdim=k), lambda a, ax, k: np.mean(a, ax, keepdims=k),
             True),
    "prod": (lambda t, d, k: t.prod(d, keepdim=k), lambda a, ax, k: np.prod(a, ax, keepdims=k),
             False),
    "var": (lambda t, d, k: t.var(d, keepdim=k),
            lambda a, ax, k: np.var(a, ax, ddof=1, keepdims=k), True),
    "var_biased": (lambda t, d, k: t.var(d, unbiased=False, keepdim=k),
                   lambda a, ax, k: np.var(a, ax, keepdims=k), True),
    "std": (lambda t, d, k: t.std(d, keepdim=k),
            lambda a, ax, k: np.std(a, ax, ddof=1, keepdims=k), True),
    "std_correction0": (lambda t, d, k: t.std(d, keepdim=k, correction=0),
                        lambda a, ax, k: np.std(a, ax, keepdims=k), True),
    "amax": (lambda t, d, k: t.amax(d if d is not None else (), keepdim=k),
             lambda a, ax, k: np.max(a, ax, keepdims=k), True),
    "amin": (lambda t, d, k: t.amin(d if d is not None else (), keepdim=k),
             lambda a, ax, k: np.min(a, ax, keepdims=k), True),
    "logsumexp": (lambda t, d, k: t.logsumexp(d if d is not None else tuple(range(t.ndim)),
                                              keepdim=k),
                  lambda a, ax, k: _np_logsumexp(a, ax, k), True),
    "norm": (lambda t, d, k: t.norm(dim=d, keepdim=k),
             lambda a, ax, k: np.sqrt(np.sum(a * a, ax, keepdims=k)), False),
    "norm_1": (lambda t, d, k: t.norm(1, dim=d, keepdim=k),
               lambda a, ax, k: np.sum(np.abs(a), ax, keepdims=k), False),
    "norm_3": (lambda t, d, k: t.norm(3, dim=d, keepdim=k),
               lambda a, ax, k: np.sum(np.abs(a) ** 3, ax, keepdims=k) ** (1 / 3), False),
}


def _reduced_is_empty(a, axes) -> bool:
    axes = range(a.ndim) if axes is None else axes
    return any(a.shape[ax] == 0 for ax in axes) or (a.ndim == 0 and a.size == 0)


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
@given(data=st.data())
def test_reduction_forward_matches_numpy(name, data):
    fn, ref, needs_values = REDUCTIONS[name]
    a, dim = data.draw(array_and_dims(shapes(max_dims=3)))
    keepdim = data.draw(st.booleans())
    axes = axes_tuple(dim, a.ndim)
    if needs_values and _reduced_is_empty(a, axes):
        return  # empty extents: see test_reductions_over_empty_extents
    if name.startswith(("var", "std")) and np.prod([a.shape[x] for x in (axes or range(a.ndim))]
                                                   ) < 2:
        return  # N - 1 == 0: see test_var_of_a_single_element
    out = fn(to_gf(a), dim, keepdim)
    expected = np.asarray(ref(a, axes, keepdim))
    assert out.shape == expected.shape
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
@pytest.mark.parametrize("dim,keepdim", [(None, False), (1, False), (-1, True), ((0, 2), False),
                                         ((-3, 1), True)])
def test_reduction_backward_gradcheck(name, dim, keepdim):
    fn = REDUCTIONS[name][0]
    a = np.random.default_rng(0).uniform(0.5, 2.0, (2, 3, 2)) * np.array([1, -1])  # no ties
    assert gradcheck(lambda t: fn(t, dim, keepdim), (to_gf(a, True),))
    at = to_gf(np.ascontiguousarray(a.transpose(2, 1, 0)).transpose(2, 1, 0), True)
    assert not at.is_contiguous()
    assert gradcheck(lambda t: fn(t, dim, keepdim), (at,))


@pytest.mark.parametrize("name", ["sum", "mean", "var", "std", "prod", "logsumexp", "norm"])
def test_reduction_second_derivatives(name):
    fn = REDUCTIONS[name][0]
    a = to_gf(np.random.default_rng(1).uniform(0.5, 2.0, (2, 3)), True)
    assert gradgradcheck(lambda t: fn(t, 1, False), (a,))


def test_prod_gradient_with_zeros():
    for values in ([2.0, 0.0, 3.0], [0.0, 0.0, 3.0], [1.5, 2.0, 3.0]):
        x = to_gf(np.array(values), True)
        assert gradcheck(lambda t: t.prod(), (x,))
    x = to_gf(np.array([2.0, 0.0, 3.0]), True)
    x.prod().backward()
    assert x.grad.tolist() == [0.0, 6.0, 0.0]


def test_var_of_a_single_element_and_empty_reductions():
    assert np.isnan(gf.tensor([1.0]).var().item())
    assert gf.tensor([1.0]).var(unbiased=False).item() == 0.0
    assert gf.zeros(0).sum().item() == 0.0 and gf.zeros(0).prod().item() == 1.0
    assert np.isnan(gf.zeros(0).mean().item())
    assert gf.zeros(2, 0).sum(1).tolist() == [0.0, 0.0]
    assert gf.zeros(0, 3).sum(0, keepdim=True).shape == (1, 3)
    with pytest.raises(ValueError, match="var: give either unbiased or correction"):
        gf.ones(3).var(unbiased=True, correction=1)


def test_reductions_over_empty_extents_raise():
    for fn, op in [(lambda t: t.amax(), "amax"), (lambda t: t.max(), "max"),
                   (lambda t: t.argmax(), "argmax"), (lambda t: t.max(0), "max"),
                   (lambda t: t.amin(0), "amin"), (lambda t: t.argmin(0), "argmin")]:
        with pytest.raises(IndexError, match=rf"{op}\(\): Expected reduction dim to be specified "
                                             r"for input.numel\(\) == 0"):
            fn(gf.zeros(0, 2))


@given(data=st.data())
def test_max_min_values_and_indices(data):
    shape = data.draw(nonempty_shapes(1, 3))
    values = data.draw(st.permutations(range(int(np.prod(shape)))))  # distinct: no ties
    a = np.asarray(values, dtype=np.float64).reshape(shape)
    dim = data.draw(st.integers(-a.ndim, a.ndim - 1))
    keepdim = data.draw(st.booleans())
    t = to_gf(a)
    values, indices = t.max(dim, keepdim)
    np.testing.assert_array_equal(values.numpy(), np.max(a, dim, keepdims=keepdim))
    np.testing.assert_array_equal(indices.numpy(), np.argmax(a, dim, keepdims=keepdim))
    assert indices.dtype is gf.int64
    mn = t.min(dim=dim, keepdim=keepdim)
    np.testing.assert_array_equal(mn.values.numpy(), np.min(a, dim, keepdims=keepdim))
    np.testing.assert_array_equal(mn.indices.numpy(), np.argmin(a, dim, keepdims=keepdim))
    np.testing.assert_array_equal(t.argmax(dim, keepdim).numpy(), np.argmax(a, dim,
                                                                            keepdims=keepdim))
    np.testing.assert_array_equal(t.argmin(dim).numpy(), np.argmin(a, dim))
    assert t.argmax().item() == np.argmax(a) and t.argmin().item() == np.argmin(a)
    assert t.max().item() == a.max() and t.min().item() == a.min()
    assert t.argmax(keepdim=True).shape == (1,) * a.ndim


def test_max_along_dim_backward_goes_to_the_index():
    x = to_gf(np.array([[1.0, 5.0, 2.0], [7.0, 0.0, 3.0]]), True)
    values, _ = x.max(1)
    (values * gf.tensor([1.0, 2.0], dtype=gf.float64)).sum().backward()
    assert x.grad.tolist() == [[0.0, 1.0, 0.0], [2.0, 0.0, 0.0]]
    assert gradcheck(lambda t: t.min(0).values, (to_gf(np.array([[1.0, 5.0], [7.0, 0.0]]), True),))


def test_amax_shares_the_gradient_among_ties():
    x = to_gf(np.array([[3.0, 3.0, 1.0]]), True)
    x.amax().backward()
    assert x.grad.tolist() == [[0.5, 0.5, 0.0]]
    y = to_gf(np.array([3.0, 3.0, 1.0]), True)
    y.max().backward()
    assert y.grad.tolist() == [0.5, 0.5, 0.0]


@given(data=st.data())
def test_all_any(data):
    a, dim = data.draw(array_and_dims(shapes(max_dims=3), np.bool_))
    keepdim = data.draw(st.booleans())
    axes = axes_tuple(dim, a.ndim)
    t = to_gf(a)
    np.testing.assert_array_equal(t.all(dim, keepdim).numpy(), np.all(a, axes, keepdims=keepdim))
    np.testing.assert_array_equal(gf.any(t, dim, keepdim).numpy(),
                                  np.any(a, axes, keepdims=keepdim))
    assert t.all().dtype is gf.bool


def test_sum_dtypes():
    assert gf.tensor([True, True, False]).sum().item() == 2
    assert gf.tensor([True]).sum().dtype is gf.int64 and gf.tensor([1, 2]).sum().dtype is gf.int64
    assert gf.tensor([1, 2]).sum(dtype=gf.float64).dtype is gf.float64
    assert gf.tensor([1, 2]).mean(dtype=gf.float32).item() == 1.5
    with pytest.raises(RuntimeError, match=r"mean\(\): could not infer output dtype"):
        gf.tensor([1, 2]).mean()


def test_norm_variants():
    x = gf.tensor([[3.0, -4.0], [0.0, 1.0]], dtype=gf.float64)
    assert x.norm().item() == pytest.approx(np.sqrt(26))
    assert x.norm(float("inf")).item() == 4.0 and x.norm(float("-inf")).item() == 0.0
    assert x.norm(0).item() == 3.0 and x.norm(1, dim=1).tolist() == [7.0, 1.0]
    z = to_gf(np.zeros(3), True)
    z.norm().backward()
    assert z.grad.tolist() == [0.0, 0.0, 0.0]  # subgradient 0 at the origin, as PyTorch
    with pytest.raises(RuntimeError, match=r"norm\(\): expected a floating point tensor"):
        gf.tensor([1, 2]).norm()


def test_logsumexp_is_stable():
    x = gf.tensor([[1000.0, 1000.0], [-1000.0, -1000.0], [float("-inf"), float("-inf")]],
                  dtype=gf.float64)
    out = x.logsumexp(1).numpy()
    np.testing.assert_allclose(out[:2], [1000 + np.log(2), -1000 + np.log(2)])
    assert out[2] == -np.inf


def test_reduction_bad_dims():
    with pytest.raises(IndexError, match=r"sum: dimension out of range \(expected to be in range "
                                         r"of \[-2, 1\], but got 2\)"):
        gf.ones(2, 3).sum(2)
    with pytest.raises(ValueError, match="mean: dim 0 appears multiple times"):
        gf.ones(2, 3).mean((0, -2))
    with pytest.raises(IndexError, match="amax: dimension out of range"):
        gf.ones(2).amax(3)
    with pytest.raises(IndexError, match="argmax: dimension out of range"):
        gf.ones(2).argmax(1)
    with pytest.raises(ValueError, match="norm: the nuclear norm is not supported"):
        gf.ones(2, 2).norm("nuc")


EVERY_DIM_WHEN_EMPTY = ["sum", "mean", "var", "std", "amax", "amin", "norm", "logsumexp",
                        "prod"]


@pytest.mark.parametrize("name", EVERY_DIM_WHEN_EMPTY)
@pytest.mark.parametrize("empty", [[], ()])
@pytest.mark.parametrize("keepdim", [False, True])
def test_an_empty_dim_list_reduces_every_dim(name, empty, keepdim):
    a = np.random.default_rng(1).normal(size=(2, 3, 4))
    t = to_gf(a, True)
    out = getattr(t, name)(dim=empty, keepdim=keepdim)
    ref = getattr(t, name)(dim=None if name != "logsumexp" else (0, 1, 2), keepdim=keepdim)
    assert out.shape == ((1, 1, 1) if keepdim else ())
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-12)
    assert gradcheck(lambda x: getattr(x, name)(dim=empty, keepdim=keepdim), (t,))


@pytest.mark.parametrize("name", [n for n in EVERY_DIM_WHEN_EMPTY if n != "prod"])
def test_an_empty_dim_list_matches_pytorch(name):
    torch = pytest.importorskip("torch")
    a = np.random.default_rng(2).normal(size=(2, 3))
    for keepdim in (False, True):
        if name == "logsumexp" and not keepdim:
            continue  # torch 2.13 fails on logsumexp(dim=[]) without keepdim (a shape error)
        ref = getattr(torch.from_numpy(a), name)(dim=[], keepdim=keepdim).numpy()
        out = getattr(gf.from_numpy(a), name)(dim=[], keepdim=keepdim).numpy()
        assert out.shape == ref.shape
        np.testing.assert_allclose(out, ref, rtol=1e-12)


def test_all_any_with_an_empty_dim_list_reduce_nothing():
    a = np.array([[0.0, 1.0], [2.0, 0.0]])
    t = gf.from_numpy(a)
    assert t.all(dim=[]).tolist() == t.any(dim=[]).tolist() == (a != 0).tolist()
    assert t.all(dim=()).dtype is gf.bool


def test_reduction_dims_must_be_ints():
    t = gf.ones(2, 3)
    with pytest.raises(TypeError, match="sum: argument 'dim' must be int, not bool"):
        t.sum(True)
    with pytest.raises(TypeError, match="mean: argument 'dim' must be int, not bool"):
        t.mean((0, True))
    with pytest.raises(TypeError, match="amax: argument 'dim' must be int, not float"):
        t.amax(1.0)
    with pytest.raises(TypeError, match="argmax: argument 'dim' must be int, not bool"):
        t.argmax(dim=True)
    with pytest.raises(TypeError, match="max: argument 'dim' must be int, not bool"):
        t.max(dim=True)
    with pytest.raises(TypeError, match="softmax: argument 'dim' must be int, not bool"):
        t.softmax(True)
    with pytest.raises(ValueError, match="sum: argument 'dim' = 9223372036854775808 does not "
                                         "fit in int64"):
        t.sum(2**63)
    with pytest.raises(IndexError, match=r"sum: dimension out of range .*but got "
                                         r"4611686018427387904"):
        t.sum(2**62)
    with pytest.raises(IndexError, match=r"sum: dimension out of range \(expected to be in "
                                         r"range of \[-1, 0\], but got 1\)"):
        gf.tensor(3.0).sum(1)
    assert t.sum(np.int64(1)).tolist() == [3.0, 3.0] and t.sum(gf.tensor(-1)).shape == (2,)


# ---------------------------------------------------------------- softmax family
def _np_softmax(a, axis):
    e = np.exp(a - a.max(axis, keepdims=True))
    return e / e.sum(axis, keepdims=True)


@given(data=st.data())
def test_softmax_log_softmax_match_numpy(data):
    a, dim = data.draw(array_and_dims(nonempty_shapes(1, 3), low=-20, high=20))
    dim = dim if isinstance(dim, int) else 0
    t = to_gf(a)
    np.testing.assert_allclose(t.softmax(dim).numpy(), _np_softmax(a, dim), rtol=1e-10,
                               atol=1e-15)
    np.testing.assert_allclose(t.log_softmax(dim).numpy(), np.log(_np_softmax(a, dim)),
                               rtol=1e-10, atol=1e-12)


def test_softmax_is_stable_for_large_inputs():
    x = gf.tensor([[1000.0, 1001.0, 1002.0], [-1e4, 0.0, 1e4]])
    s, ls = x.softmax(-1).numpy(), x.log_softmax(-1).numpy()
    assert np.isfinite(s).all() and np.isfinite(ls).all()
    np.testing.assert_allclose(s[0], _np_softmax(np.array([0.0, 1.0, 2.0]), 0), rtol=1e-6)
    np.testing.assert_allclose(ls[1], [-2e4, -1e4, 0.0])
    assert gf.softmax(gf.tensor(3.0), 0).item() == 1.0
    assert gf.softmax(gf.tensor([1, 2]), 0).dtype is gf.float32


@pytest.mark.parametrize("fn", [gf.softmax, gf.log_softmax])
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmax_backward(fn, dim):
    a = to_gf(np.random.default_rng(0).normal(size=(3, 4)), True)
    assert gradcheck(lambda t: fn(t, dim), (a,))
    assert gradgradcheck(lambda t: fn(t, dim), (a,))


def test_softmax_of_an_empty_tensor_is_empty():
    for fn in (gf.softmax, gf.log_softmax):
        assert fn(gf.zeros(0, 3), 0).shape == (0, 3) and fn(gf.zeros(0), -1).shape == (0,)


def test_softmax_bad_inputs():
    with pytest.raises(TypeError, match="softmax: the dim argument is required"):
        gf.softmax(gf.ones(2))
    with pytest.raises(IndexError, match="log_softmax: dimension out of range"):
        gf.log_softmax(gf.ones(2), 1)
