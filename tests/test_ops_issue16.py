"""The ops of issue 16 built on NumPy or on other ops: einsum, cdist, gradflow.linalg (norms,
inv, solve, det, slogdet, svdvals), integer matrix products, normal, multinomial and
inference_mode."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from parity import needs_torch
from strategies import arrays, nonempty_shapes, shapes, to_gf

import gradflow as gf
from gradflow.autograd import gradcheck, gradgradcheck

INF = math.inf


def _rand(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape)


def _leaf(a):
    return gf.tensor(np.array(a, dtype=np.float64), requires_grad=True)


def _well_conditioned(shape, seed=0):
    """Random square matrices pushed away from singular (diagonal + n)."""
    n = shape[-1]
    return _rand(shape, seed) + n * np.eye(n)


# ---------------------------------------------------------------- einsum
EQUATIONS = [  # (equation, operand shapes)
    ("ij,jk->ik", [(2, 3), (3, 4)]),
    ("ij,jk", [(2, 3), (3, 4)]),
    ("ii->i", [(3, 3)]),
    ("ii", [(3, 3)]),
    ("iij->ji", [(3, 3, 2)]),
    ("...ij,...jk->...ik", [(5, 2, 3), (3, 4)]),
    ("b...,b...->b...", [(2, 3, 1), (2, 1, 4)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("i,i->", [(3,), (3,)]),
    ("i,j->ij", [(3,), (4,)]),
    ("ij->", [(2, 3)]),
    ("ji", [(2, 3)]),
    ("ab,bc,cd->ad", [(2, 3), (3, 4), (4, 5)]),
    ("i...->...", [(2, 3, 4)]),
    ("...", [(2, 3)]),
    ("ijk,ikl->", [(0, 2, 3), (0, 3, 4)]),
    ("bn,anm,bm->ba", [(2, 3), (4, 3, 5), (2, 5)]),
    ("ij,ij->ij", [(1, 3), (2, 3)]),
    ("", [()]),
    (",->", [(), ()]),
    ("ii,jj", [(2, 2), (3, 3)]),
    ("abc,cba", [(2, 3, 4), (4, 3, 2)]),
    ("i j , j k -> k i", [(2, 3), (3, 4)]),
    ("Ab,bC->AC", [(2, 0), (0, 3)]),
]


@pytest.mark.parametrize("equation, shapes_", EQUATIONS)
def test_einsum_matches_numpy_and_gradcheck(equation, shapes_):
    arrays_ = [_rand(s, i) for i, s in enumerate(shapes_)]
    out = gf.einsum(equation, *[gf.tensor(a) for a in arrays_])
    np.testing.assert_allclose(out.numpy(), np.einsum(equation.replace(" ", ""), *arrays_),
                               atol=1e-12)
    leaves = [_leaf(a) for a in arrays_]
    assert gradcheck(lambda *ts: gf.einsum(equation, *ts), leaves)


def test_einsum_second_derivatives_and_list_form():
    a, b = _leaf(_rand((2, 3))), _leaf(_rand((3, 4), 1))
    assert gradgradcheck(lambda x, y: gf.einsum("ij,jk->ik", x, y), (a, b))
    np.testing.assert_allclose(gf.einsum("ij,jk", [a, b]).detach().numpy(),
                               (a @ b).detach().numpy())


@settings(deadline=None, max_examples=30)
@given(data=st.data())
def test_einsum_batched_products_any_layout(data):
    b, i, j, k = (data.draw(st.integers(0, 3)) for _ in range(4))
    x = data.draw(arrays((b, i, j)))
    y = data.draw(arrays((1 if data.draw(st.booleans()) else b, j, k)))
    out = gf.einsum("bij,bjk->bik", to_gf(x), to_gf(y))
    np.testing.assert_allclose(out.numpy(), np.einsum("bij,bjk->bik", x, y), atol=1e-12)


def test_einsum_sums_an_ellipsis_the_output_leaves_out():
    a, b = _rand((2, 3, 1)), _rand((2, 1, 4), 1)  # NumPy refuses this; PyTorch sums
    out = gf.einsum("b...,b...->b", gf.tensor(a), gf.tensor(b))
    np.testing.assert_allclose(out.numpy(), (a * b).sum((1, 2)))


def test_einsum_integers_are_exact():
    a = np.array([[2**40, 3], [1, 2]], dtype=np.int64)
    out = gf.einsum("ij,jk->ik", gf.tensor(a), gf.tensor(a))
    assert out.dtype == gf.int64
    np.testing.assert_array_equal(out.numpy(), a @ a)


@pytest.mark.parametrize("call, exc, msg", [
    (lambda: gf.einsum("ij,jk", gf.ones(2, 3)), ValueError, "2 input terms for 1 operands"),
    (lambda: gf.einsum("ijk", gf.ones(2, 3)), ValueError, "3 subscripts for a tensor of 2"),
    (lambda: gf.einsum("i1", gf.ones(2, 3)), ValueError, "invalid subscript '1'"),
    (lambda: gf.einsum("ij->k", gf.ones(2, 3)), ValueError, "'k' is not in any input"),
    (lambda: gf.einsum("ij->ii", gf.ones(2, 3)), ValueError, "'i' appears more than once"),
    (lambda: gf.einsum("ii", gf.ones(1, 3)), ValueError, "repeated for dims of sizes 1 and 3"),
    (lambda: gf.einsum("i,i", gf.ones(2), gf.ones(3)), ValueError,
     "subscript 'i' has sizes 2 and 3"),
    (lambda: gf.einsum("i", [1.0]), TypeError, r"operands\[0\]' must be a Tensor"),
    (lambda: gf.einsum(3, gf.ones(2)), TypeError, "'equation' must be str"),
    (lambda: gf.einsum("i", gf.ones(2, dtype=gf.bool)), TypeError, "bool operands"),
])
def test_einsum_bad_input(call, exc, msg):
    with pytest.raises(exc, match="einsum: .*" + msg):
        call()


@needs_torch
@pytest.mark.parametrize("equation, shapes_", EQUATIONS)
def test_einsum_matches_torch(equation, shapes_):
    import torch

    arrays_ = [_rand(s, i) for i, s in enumerate(shapes_)]
    gs = [_leaf(a) for a in arrays_]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays_]
    out, ref = gf.einsum(equation, *gs), torch.einsum(equation, *ts)
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), atol=1e-12)
    weights = _rand(tuple(ref.shape), 9)
    (out * gf.tensor(weights)).sum().backward()
    (ref * torch.tensor(weights)).sum().backward()
    for g, t in zip(gs, ts):
        np.testing.assert_allclose(g.grad.numpy(), t.grad.numpy(), atol=1e-12)


# ---------------------------------------------------------------- cdist
def _cdist_reference(x1, x2, p):
    diff = np.abs(x1[..., :, None, :] - x2[..., None, :, :])
    if p == 0:
        return (diff != 0).sum(-1).astype(x1.dtype)
    if p == INF:
        return diff.max(-1, initial=0.0)
    return (diff ** p).sum(-1) ** (1 / p)


@settings(deadline=None, max_examples=40)
@given(data=st.data(), p=st.sampled_from([0.0, 1.0, 1.5, 2.0, 3.0, INF]))
def test_cdist_matches_numpy(data, p):
    batch = data.draw(shapes(0, 2, 0, 3))
    rows1, rows2, m = (data.draw(st.integers(0, 4)) for _ in range(3))
    x1 = data.draw(arrays(batch + (rows1, m)))
    x2 = data.draw(arrays(((1,) if batch and data.draw(st.booleans()) else batch)
                          + (rows2, m)))
    out = gf.cdist(to_gf(x1), to_gf(x2), p)
    np.testing.assert_allclose(out.numpy(), _cdist_reference(x1, x2, p), atol=1e-12)


@pytest.mark.parametrize("p", [0.0, 1.0, 2.0, 3.0, INF])
def test_cdist_gradients(p):
    x1, x2 = _leaf(_rand((2, 4, 3))), _leaf(_rand((5, 3), 1))
    assert gradcheck(lambda a, b: gf.cdist(a, b, p), (x1, x2))
    if p == 2.0:
        assert gradgradcheck(lambda a, b: gf.cdist(a, b, p), (x1, x2))


def test_cdist_zero_distance_has_zero_gradient_and_errors():
    x = _leaf(_rand((3, 2)))
    gf.cdist(x, x).sum().backward()
    assert np.all(np.isfinite(x.grad.numpy()))
    with pytest.raises(ValueError, match=r"cdist: expected x1 \(\*, P, M\) and x2"):
        gf.cdist(gf.ones(2, 3), gf.ones(2, 4))
    with pytest.raises(ValueError, match="cdist: p must be >= 0"):
        gf.cdist(gf.ones(2, 3), gf.ones(2, 3), -1)
    with pytest.raises(TypeError, match="cdist: only supports floating-point"):
        gf.cdist(gf.ones(2, 3, dtype=gf.int64), gf.ones(2, 3))


@needs_torch
@pytest.mark.parametrize("p", [0.0, 1.0, 2.0, 2.5, INF])
def test_cdist_matches_torch(p):
    import torch

    a, b = _rand((3, 6, 4)), _rand((3, 5, 4), 1)
    ga, gb = _leaf(a), _leaf(b)
    ta, tb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    out, ref = gf.cdist(ga, gb, p), torch.cdist(ta, tb, p)
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), atol=1e-12)
    out.sum().backward()
    ref.sum().backward()
    np.testing.assert_allclose(ga.grad.numpy(), ta.grad.numpy(), atol=1e-10)
    np.testing.assert_allclose(gb.grad.numpy(), tb.grad.numpy(), atol=1e-10)


# ---------------------------------------------------------------- linalg: inv, solve, det
@settings(deadline=None, max_examples=30)
@given(data=st.data())
def test_inv_det_slogdet_match_numpy(data):
    batch = data.draw(shapes(0, 2, 0, 3))
    n = data.draw(st.integers(0, 4))
    a = data.draw(arrays(batch + (n, n))) + (n + 1) * np.eye(n)
    x = to_gf(a)
    np.testing.assert_allclose(gf.linalg.inv(x).numpy(), np.linalg.inv(a), atol=1e-10)
    np.testing.assert_allclose(gf.linalg.det(x).numpy(), np.linalg.det(a), rtol=1e-10)
    sign, logabs = gf.linalg.slogdet(x)
    ref_sign, ref_logabs = np.linalg.slogdet(a)
    np.testing.assert_array_equal(sign.numpy(), ref_sign)
    np.testing.assert_allclose(logabs.numpy(), ref_logabs, atol=1e-10)


@settings(deadline=None, max_examples=30)
@given(data=st.data())
def test_solve_matches_numpy(data):
    batch = data.draw(shapes(0, 2, 0, 3))
    n, k = data.draw(st.integers(0, 4)), data.draw(st.integers(0, 3))
    a = data.draw(arrays(batch + (n, n))) + (n + 1) * np.eye(n)
    b_batch = batch[1:] if batch and data.draw(st.booleans()) else batch
    b = data.draw(arrays(b_batch + (n, k)))
    np.testing.assert_allclose(gf.linalg.solve(to_gf(a), to_gf(b)).numpy(),
                               np.linalg.solve(a, b), atol=1e-10)
    v = data.draw(arrays((n,)))
    np.testing.assert_allclose(gf.linalg.solve(to_gf(a), to_gf(v)).numpy(),
                               np.linalg.solve(a, v[..., None])[..., 0], atol=1e-10)


def test_linalg_gradients_to_second_order():
    a = _leaf(_well_conditioned((2, 3, 3)))
    b = _leaf(_rand((3, 2), 1))
    v = _leaf(_rand((2, 3), 2))
    for f, args in [(gf.linalg.inv, (a,)), (gf.linalg.det, (a,)),
                    (lambda x: gf.linalg.slogdet(x).logabsdet, (a,)),
                    (gf.linalg.solve, (a, b)), (gf.linalg.solve, (a, v)),
                    (lambda x, y: gf.linalg.solve(x, y.mT, left=False), (a, b))]:
        assert gradcheck(f, args)
        assert gradgradcheck(f, args)
    assert gradcheck(gf.linalg.svdvals, (_leaf(_rand((2, 3, 4))),))


def test_linalg_errors_name_the_op():
    with pytest.raises(gf.linalg.LinAlgError, match=r"linalg.inv: Singular matrix"):
        gf.linalg.inv(gf.zeros(2, 2))
    assert issubclass(gf.linalg.LinAlgError, RuntimeError)
    with pytest.raises(ValueError, match=r"linalg.det: A must be batches of square matrices, "
                       r"got shape \(2, 3\)"):
        gf.linalg.det(gf.ones(2, 3))
    with pytest.raises(TypeError, match="linalg.inv: expected a floating-point A"):
        gf.linalg.inv(gf.ones(2, 2, dtype=gf.int64))
    with pytest.raises(ValueError, match=r"linalg.solve: A of shape \(2, 2\) and B of shape "
                       r"\(3, 1\) do not match"):
        gf.linalg.solve(gf.eye(2), gf.ones(3, 1))
    with pytest.raises(RuntimeError, match="SvdValsBackward is not differentiable twice"):
        x = _leaf(_rand((2, 2)))
        (g,) = gf.autograd.grad(gf.linalg.svdvals(x).sum(), x, create_graph=True)
        g.sum().backward()
    sign, logabs = gf.linalg.slogdet(gf.zeros(2, 2))
    assert sign.item() == 0 and logabs.item() == -INF


def test_linalg_tensor_methods():
    a = gf.tensor(_well_conditioned((3, 3)))
    np.testing.assert_allclose(a.inverse().numpy(), np.linalg.inv(a.numpy()))
    np.testing.assert_allclose(a.det().numpy(), np.linalg.det(a.numpy()))
    np.testing.assert_allclose(a.slogdet().logabsdet.numpy(),
                               np.linalg.slogdet(a.numpy())[1])


# ---------------------------------------------------------------- linalg: norms
MATRIX_ORDS = ["fro", "nuc", 1, -1, 2, -2, INF, -INF]
VECTOR_ORDS = [0, 1, 2, 3.5, -1, INF, -INF]


@settings(deadline=None, max_examples=40)
@given(data=st.data(), ord=st.sampled_from(MATRIX_ORDS))
def test_matrix_norm_matches_numpy(data, ord):
    a = data.draw(arrays(data.draw(nonempty_shapes(2, 4)), low=-3, high=3))
    out = gf.linalg.matrix_norm(to_gf(a), ord, dim=(0, -1), keepdim=data.draw(st.booleans()))
    moved = np.moveaxis(a, (0, a.ndim - 1), (-2, -1))
    ref = np.linalg.norm(moved, ord, axis=(-2, -1))
    np.testing.assert_allclose(out.numpy().reshape(ref.shape), ref, atol=1e-10)


@settings(deadline=None, max_examples=40)
@given(data=st.data(), ord=st.sampled_from(VECTOR_ORDS))
def test_vector_norm_matches_numpy(data, ord):
    a = data.draw(arrays(data.draw(nonempty_shapes(1, 3))))
    out = gf.linalg.vector_norm(to_gf(a), ord)
    np.testing.assert_allclose(out.numpy(), np.linalg.norm(a.ravel(), ord), atol=1e-10)


@pytest.mark.parametrize("ord", MATRIX_ORDS)
def test_matrix_norm_gradients(ord):
    a = _leaf(_rand((2, 3, 4)))
    assert gradcheck(lambda x: gf.linalg.matrix_norm(x, ord, dim=(2, 0)), (a,))
    if ord in ("fro", 1, INF):
        assert gradgradcheck(lambda x: gf.linalg.matrix_norm(x, ord), (a,))


@pytest.mark.parametrize("ord", VECTOR_ORDS)
def test_vector_norm_gradients(ord):
    a = _leaf(_rand((2, 3)))
    assert gradcheck(lambda x: gf.linalg.vector_norm(x, ord, dim=1, keepdim=True), (a,))


def test_linalg_norm_dispatch_and_errors():
    a = _rand((3, 4))
    x = gf.tensor(a)
    np.testing.assert_allclose(gf.linalg.norm(x).numpy(), np.linalg.norm(a))
    np.testing.assert_allclose(gf.linalg.norm(x, "nuc").numpy(), np.linalg.norm(a, "nuc"))
    np.testing.assert_allclose(gf.linalg.norm(x, 2).numpy(), np.linalg.norm(a, 2))
    np.testing.assert_allclose(gf.linalg.norm(x, 3, dim=1).numpy(),
                               np.linalg.norm(a, 3, axis=1))
    np.testing.assert_allclose(gf.linalg.norm(x[0], INF).numpy(), np.abs(a[0]).max())
    with pytest.raises(ValueError, match="linalg.norm: with dim=None and an ord"):
        gf.linalg.norm(gf.ones(2, 2, 2), 2)
    with pytest.raises(ValueError, match="linalg.norm: ord='fro' is a matrix norm"):
        gf.linalg.norm(x, "fro", dim=1)
    with pytest.raises(ValueError, match="linalg.matrix_norm: ord must be 'fro'"):
        gf.linalg.matrix_norm(x, 3)
    with pytest.raises(ValueError, match="linalg.matrix_norm: expected 2 distinct dims"):
        gf.linalg.matrix_norm(gf.ones(3))
    with pytest.raises(TypeError, match="linalg.vector_norm: expected a floating-point"):
        gf.linalg.vector_norm(gf.ones(3, dtype=gf.int64))
    assert gf.linalg.vector_norm(gf.ones(3, dtype=gf.int64), dtype=gf.float64).item() == \
        pytest.approx(math.sqrt(3))


@needs_torch
def test_linalg_matches_torch():
    import torch

    a = _well_conditioned((2, 3, 3))
    b = _rand((2, 3, 2), 1)
    pairs = [
        (lambda m: m.linalg.inv(A), None), (lambda m: m.linalg.det(A), None),
        (lambda m: m.linalg.slogdet(A)[1], None), (lambda m: m.linalg.solve(A, B), None),
        (lambda m: m.linalg.svdvals(A), None), (lambda m: m.linalg.norm(A), None),
    ] + [(lambda m, o=o: m.linalg.matrix_norm(A, o), None) for o in MATRIX_ORDS] + [
        (lambda m, o=o: m.linalg.vector_norm(A, o, dim=(0, 2)), None) for o in VECTOR_ORDS]
    for f, _ in pairs:
        results = []
        for m, make in ((gf, _leaf), (torch, lambda v: torch.tensor(v, requires_grad=True))):
            A, B = make(a), make(b)
            out = f(m)
            out.sum().backward()
            grad = np.zeros(a.shape) if A.grad is None else A.grad.numpy()  # (torch: ord 0)
            results.append((out.detach().numpy(), grad))
        (o1, g1), (o2, g2) = results
        np.testing.assert_allclose(o1, o2, atol=1e-10)
        np.testing.assert_allclose(g1, g2, atol=1e-8)


# ---------------------------------------------------------------- integer matrix products
@settings(deadline=None, max_examples=30)
@given(data=st.data(), dtype=st.sampled_from([np.int64, np.int32, np.int16, np.uint8]))
def test_integer_matmul_is_exact(data, dtype):
    m, k, n = (data.draw(st.integers(0, 4)) for _ in range(3))
    batch = data.draw(shapes(0, 2, 0, 2))
    a = data.draw(arrays(batch + (m, k), np.int64, -100, 100)).astype(dtype)
    b = data.draw(arrays((k, n), np.int64, -100, 100)).astype(dtype)
    out = gf.from_numpy(a) @ gf.from_numpy(b)
    assert out.numpy().dtype == np.matmul(a, b).dtype
    np.testing.assert_array_equal(out.numpy(), np.matmul(a, b))


def test_integer_mm_bmm_beyond_float_precision():
    big = 2**53 + 1  # not a float64
    a = gf.tensor([[big, 1]])
    b = gf.tensor([[1], [1]])
    assert gf.mm(a, b).item() == big + 1
    assert gf.bmm(a[None], b[None]).item() == big + 1
    assert gf.matmul(gf.tensor([1, 2], dtype=gf.int32), gf.tensor([3, 4], dtype=gf.int32)
                     ).dtype == gf.int32
    with pytest.raises(TypeError, match="mm: expected floating-point or integer tensors"):
        gf.mm(gf.ones(1, 1, dtype=gf.bool), gf.ones(1, 1, dtype=gf.bool))


@needs_torch
def test_integer_matmul_matches_torch():
    import torch

    a = np.random.default_rng(0).integers(-2**20, 2**20, (3, 4, 5))
    b = np.random.default_rng(1).integers(-2**20, 2**20, (5, 2))
    np.testing.assert_array_equal((gf.tensor(a) @ gf.tensor(b)).numpy(),
                                  (torch.tensor(a) @ torch.tensor(b)).numpy())
