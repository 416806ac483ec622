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
    a = data.draw(arrays(batch + (n, n))) + (3 * n + 1) * np.eye(n)  # dominant diagonal
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
    a = data.draw(arrays(batch + (n, n))) + (3 * n + 1) * np.eye(n)  # dominant diagonal
    b_batch = batch[1:] if batch and data.draw(st.booleans()) else batch
    b = data.draw(arrays(b_batch + (n, k)))
    vector = b.shape == a.shape[:-1]  # PyTorch's rule: then b holds one vector per matrix
    ref = np.linalg.solve(a, b[..., None])[..., 0] if vector else np.linalg.solve(a, b)
    np.testing.assert_allclose(gf.linalg.solve(to_gf(a), to_gf(b)).numpy(), ref, atol=1e-10)
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


# ---------------------------------------------------------------- normal
@pytest.mark.parametrize("mean, std", [
    (gf.zeros(2, 1, dtype=gf.float64), gf.ones(3, dtype=gf.float64)),
    (gf.full((4000,), 3.0), 2.0),
    (-1.0, gf.full((4000,), 0.5)),
])
def test_normal_overloads_shape_dtype_and_moments(mean, std):
    out = gf.normal(mean, std)
    shapes_ = [t.shape for t in (mean, std) if isinstance(t, gf.Tensor)]
    assert out.shape == np.broadcast_shapes(*shapes_)
    assert out.dtype == next(t for t in (mean, std) if isinstance(t, gf.Tensor)).dtype
    if out.numel() > 1000:
        m = mean if isinstance(mean, float) else mean.numpy().mean()
        s = std if isinstance(std, float) else std.numpy().mean()
        assert abs(out.numpy().mean() - m) < 5 * s / math.sqrt(out.numel())
        assert abs(out.numpy().std() - s) < 0.1 * s


def test_normal_numbers_size_seed_and_generator():
    gf.manual_seed(7)
    a = gf.normal(2.0, 3.0, size=(2, 3), dtype=gf.float64)
    gf.manual_seed(7)
    b = gf.normal(2.0, 3.0, (2, 3), dtype=gf.float64)
    assert a.dtype == gf.float64 and a.shape == (2, 3)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    g1, g2 = gf.Generator().manual_seed(1), gf.Generator().manual_seed(1)
    np.testing.assert_array_equal(gf.normal(gf.zeros(5), 1.0, generator=g1).numpy(),
                                  gf.normal(gf.zeros(5), 1.0, generator=g2).numpy())
    assert gf.normal(0.0, 1.0, (2,), requires_grad=True).requires_grad


def test_normal_gradient_is_zero_as_pytorch():
    mean, std = _leaf(np.zeros(3)), _leaf(np.ones(1))
    gf.normal(mean, std).sum().backward()
    np.testing.assert_array_equal(mean.grad.numpy(), 0)
    np.testing.assert_array_equal(std.grad.numpy(), 0)


@pytest.mark.parametrize("call, exc, msg", [
    (lambda: gf.normal(0.0, 1.0), TypeError, "the size argument is required"),
    (lambda: gf.normal(gf.zeros(2), -gf.ones(2)), ValueError, "std >= 0.0"),
    (lambda: gf.normal(gf.zeros(2), -1.0), ValueError, "std >= 0.0"),
    (lambda: gf.normal(gf.zeros(2, dtype=gf.int64), 1.0), TypeError, "floating-point"),
    (lambda: gf.normal("a", 1.0), TypeError, "'mean' must be a Tensor or a number"),
    (lambda: gf.normal(gf.zeros(2), 1.0, (2,)), TypeError, "size is taken only"),
])
def test_normal_bad_input(call, exc, msg):
    with pytest.raises(exc, match="normal: .*" + msg):
        call()


@needs_torch
def test_normal_shapes_and_dtypes_match_torch():
    import torch

    for args in [((2, 1), (3,)), ((4,), None), (None, (2, 2))]:
        gm, tm = (gf.zeros(*args[0], dtype=gf.float64), torch.zeros(*args[0],
                  dtype=torch.float64)) if args[0] else (0.0, 0.0)
        gs, ts = (gf.ones(*args[1]), torch.ones(*args[1])) if args[1] else (1.0, 1.0)
        out, ref = gf.normal(gm, gs), torch.normal(tm, ts)
        assert tuple(out.shape) == tuple(ref.shape)
        assert out.dtype.name == str(ref.dtype).split(".")[1]


# ---------------------------------------------------------------- multinomial
@settings(deadline=None, max_examples=30)
@given(data=st.data(), replacement=st.booleans())
def test_multinomial_draws_valid_indices(data, replacement):
    rows = data.draw(st.sampled_from([None, 1, 3]))
    n = data.draw(st.integers(1, 5))
    shape = (n,) if rows is None else (rows, n)
    w = data.draw(arrays(shape, low=0.0, high=2.0))
    w[..., data.draw(st.integers(0, n - 1))] = 1.0  # one positive weight at least
    k = data.draw(st.integers(1, n if not replacement else 7))
    out = gf.multinomial(to_gf(w), k, replacement)
    assert out.dtype == gf.int64 and out.shape == shape[:-1] + (k,)
    picks = out.numpy().reshape(-1, k)
    for row, weights in zip(picks, w.reshape(-1, n)):
        positive = int((weights > 0).sum())
        assert np.all(weights[row[:min(k, positive)]] > 0)  # weight-0 categories come last
        if not replacement:
            assert len(set(row.tolist())) == k


def test_multinomial_frequencies_follow_the_weights():
    gf.manual_seed(0)
    p = np.array([1.0, 2.0, 3.0, 4.0]) / 10
    with_repl = np.bincount(gf.multinomial(gf.tensor(p * 10), 40000, True).numpy(), minlength=4)
    first = gf.multinomial(gf.tensor(np.tile(p, (20000, 1))), 2).numpy()
    for counts in (with_repl / 40000, np.bincount(first[:, 0], minlength=4) / 20000):
        np.testing.assert_allclose(counts, p, atol=0.015)
    # the second pick without replacement: P(j second) = sum_i p_i p_j / (1 - p_i)
    second = sum(p[i] * np.where(np.arange(4) == i, 0, p) / (1 - p[i]) for i in range(4))
    np.testing.assert_allclose(np.bincount(first[:, 1], minlength=4) / 20000, second,
                               atol=0.015)


def test_multinomial_seed_generator_and_method():
    w = gf.tensor([0.2, 0.5, 0.3])
    gf.manual_seed(3)
    a = w.multinomial(8, replacement=True)
    gf.manual_seed(3)
    np.testing.assert_array_equal(a.numpy(), gf.multinomial(w, 8, True).numpy())
    g1, g2 = gf.Generator().manual_seed(5), gf.Generator().manual_seed(5)
    np.testing.assert_array_equal(gf.multinomial(w, 3, generator=g1).numpy(),
                                  gf.multinomial(w, 3, generator=g2).numpy())


@pytest.mark.parametrize("call, msg", [
    (lambda: gf.multinomial(gf.tensor([1.0, -1.0]), 1), "element < 0"),
    (lambda: gf.multinomial(gf.tensor([1.0, float("nan")]), 1), "inf, nan"),
    (lambda: gf.multinomial(gf.tensor([0.0, 0.0]), 1), "sum of probabilities <= 0"),
    (lambda: gf.multinomial(gf.tensor([1.0, 1.0]), 3), "num_samples > the 2 categories"),
    (lambda: gf.multinomial(gf.tensor([1.0]), 0, True), "num_samples <= 0"),
    (lambda: gf.multinomial(gf.ones(2, 2, 2), 1), "1-D or 2-D floating-point"),
    (lambda: gf.multinomial(gf.ones(2, dtype=gf.int64), 1), "1-D or 2-D floating-point"),
])
def test_multinomial_bad_input(call, msg):
    with pytest.raises(ValueError, match="multinomial: .*" + msg):
        call()


@pytest.mark.parametrize("op", [gf.tril, gf.triu])
@pytest.mark.parametrize("diagonal", [-2**63, -4, -3, 3, 4, 2**63 - 1])
def test_triangles_at_diagonals_past_the_matrix(op, diagonal):
    """Past the matrix (below -rows, above cols) the mask no longer changes; at -2**63
    NumPy's tri would overflow its C long (found by the fuzz run)."""
    x = gf.arange(1.0, 7.0).reshape(2, 3)
    np_op = np.tril if op is gf.tril else np.triu
    clipped = min(max(diagonal, -4), 4)
    np.testing.assert_array_equal(op(x, diagonal).numpy(), np_op(x.numpy(), clipped))


def test_pad_by_copying_too_large_names_the_op():
    with pytest.raises(RuntimeError, match=r"pad: a tensor of shape \(\d+,\) is too large"):
        gf.nn.functional.pad(gf.ones(1, dtype=gf.bool), (2**61, 2), "replicate")


def test_conv_transpose2d_output_too_large_names_the_op():
    m = gf.nn.ConvTranspose2d(2, 1, 3, padding=1, output_padding=1, dilation=(2**40, 2))
    with pytest.raises(ValueError, match=r"conv_transpose2d: output size \(2199023255553, 5\) "
                                         r"is too large"):
        m(gf.ones(1, 2, 2, 2))


@pytest.mark.parametrize("dtype, value",
                         [(gf.bool, 2**63), (gf.int32, 2**31), (gf.int64, -2**63 - 1)])
def test_masked_fill_refuses_an_int_past_the_dtype(dtype, value):
    """(NumPy's C long overflowed on a bool tensor, or wrapped the value silently; found by
    the fuzz run.) The largest value that fits is written as it is."""
    x, mask = gf.zeros(2, dtype=dtype), gf.tensor([True, False])
    with pytest.raises(ValueError, match=f"masked_fill: the Python int {value} does not fit"):
        x.masked_fill_(mask, value)
    fits = 1 if dtype is gf.bool else value - 1 if value > 0 else value + 1
    assert x.masked_fill(mask, fits).tolist()[0] == (True if dtype is gf.bool else fits)


def test_size_argument_refuses_a_0d_tensor():
    """A 0-d tensor has no items to read as sizes (it raised Tensor's own "iteration over a
    0-d tensor", naming no op; found by the fuzz run)."""
    with pytest.raises(TypeError, match="normal: argument 'size' must be a sequence of ints, "
                                        "not Tensor"):
        gf.normal(0.0, 1.0, size=gf.tensor(2))
    assert gf.normal(0.0, 1.0, size=gf.tensor([2, 3])).shape == (2, 3)


@pytest.mark.parametrize("shape", [(0,), (2, 0)])
def test_soft_cross_entropy_with_no_classes_is_nan(shape):
    """No classes: nothing to smooth (label_smoothing / C divided by zero), and the mean of
    no terms is NaN, as PyTorch's."""
    for smoothing in (0.0, 0.1):
        loss = gf.nn.functional.cross_entropy(gf.zeros(shape), gf.zeros(shape),
                                              label_smoothing=smoothing)
        assert np.isnan(loss.item())


def test_constant_init_takes_a_number_or_a_0d_tensor():
    with pytest.raises(TypeError, match=r"constant_: argument 'val' must be a number or a 0-d "
                                        r"tensor, not Tensor of shape \(1, 1, 1\)"):
        gf.nn.init.constant_(gf.zeros(2), gf.ones(1, 1, 1))
    assert gf.nn.init.constant_(gf.zeros(2), gf.tensor(3.0)).tolist() == [3.0, 3.0]


def test_multinomial_too_many_samples_names_the_op():
    """2**62 float64 draws overflow the addressable bytes: a clear error before any allocation
    (NumPy's own message names no op), found by the fuzz run."""
    too_large = r"multinomial: a tensor of shape \(1, \d+\) is too large"
    with pytest.raises(RuntimeError, match=too_large):
        gf.tensor([2.0]).multinomial(2**62, True)


@needs_torch
def test_multinomial_shapes_match_torch():
    import torch

    for shape, k, repl in [((4,), 3, False), ((2, 5), 7, True), ((1, 3), 3, False)]:
        out = gf.multinomial(gf.ones(*shape), k, repl)
        ref = torch.multinomial(torch.ones(*shape), k, repl)
        assert tuple(out.shape) == tuple(ref.shape) and str(ref.dtype) == "torch.int64"
    # both put the weight-0 category last when there are not enough positive ones
    assert gf.multinomial(gf.tensor([0.0, 1.0]), 2).tolist() == \
        torch.multinomial(torch.tensor([0.0, 1.0]), 2).tolist() == [1, 0]


# ---------------------------------------------------------------- inference_mode
def test_inference_mode_context_and_decorators():
    x = gf.ones(2, requires_grad=True)
    with gf.inference_mode():
        assert gf.is_inference_mode_enabled() and not gf.is_grad_enabled()
        assert not (x * 2).requires_grad
        with gf.inference_mode(False):
            assert not gf.is_inference_mode_enabled() and gf.is_grad_enabled()
            assert (x * 2).requires_grad
    assert not gf.is_inference_mode_enabled() and gf.is_grad_enabled()

    @gf.inference_mode
    def bare(t):
        return t * 2, gf.is_inference_mode_enabled()

    @gf.inference_mode()
    def called(t):
        return t * 2

    y, inside = bare(x)
    assert inside and not y.requires_grad and not called(x).requires_grad
    assert bare.__name__ == "bare" and not gf.is_inference_mode_enabled()
    with pytest.raises(TypeError, match="inference_mode: argument 'mode' must be bool"):
        gf.inference_mode(1)
    assert gf.autograd.inference_mode is gf.inference_mode


def test_inference_mode_restores_after_an_exception():
    with pytest.raises(KeyError):
        with gf.inference_mode():
            raise KeyError
    assert gf.is_grad_enabled() and not gf.is_inference_mode_enabled()


# ---------------------------------------------------------------- edge cases the fuzzer found
def test_edge_cases_raise_errors_naming_the_op():
    with pytest.raises(ValueError, match="linalg.vector_norm: cannot compute the inf norm over "
                       "an empty dim"):
        gf.linalg.vector_norm(gf.ones(0, 2), INF)
    with pytest.raises(ValueError, match="linalg.norm: cannot compute the 1 norm"):
        gf.linalg.norm(gf.ones(2, 0), 1)
    with pytest.raises(TypeError, match="linalg.norm: expected a floating-point input"):
        gf.linalg.norm(gf.ones(2, 2, dtype=gf.bool), "nuc")
    with pytest.raises(IndexError, match="linalg.vector_norm: dimension out of range"):
        gf.linalg.vector_norm(gf.ones(2), dim=(0, 1))
    with pytest.raises(ValueError, match="linalg.solve: with left=False, B must be a matrix"):
        gf.linalg.solve(gf.eye(2), gf.ones(2), left=False)
    with pytest.raises(ValueError, match="multinomial: the input has no categories"):
        gf.multinomial(gf.ones(0), 1)
    with pytest.raises(ValueError, match="normal: invalid size"):
        gf.normal(0.0, 1.0, (-1,))
    with pytest.raises(TypeError, match="normal: argument 'size'"):
        gf.normal(0.0, 1.0, size=object())
    assert gf.multinomial(gf.ones(0, 3), 2).shape == (0, 2)
    assert gf.linalg.matrix_norm(gf.ones(0, 3), "nuc").item() == 0
    assert gf.linalg.vector_norm(gf.ones(0, 2)).item() == 0


# ---------------------------------------------------------------- CUDA: host copies
@pytest.mark.cuda
def test_numpy_backed_ops_on_cuda_match_the_cpu():
    a, b = _well_conditioned((2, 3, 3)), _rand((2, 3, 2), 1)
    calls = [lambda x, y: gf.linalg.inv(x), lambda x, y: gf.linalg.det(x),
             lambda x, y: gf.linalg.solve(x, y), lambda x, y: gf.linalg.slogdet(x).logabsdet,
             lambda x, y: gf.linalg.matrix_norm(x, "nuc"), lambda x, y: gf.cdist(x, y.mT),
             lambda x, y: gf.einsum("bij,bjk->bik", x, y)]
    for f in calls:
        results = []
        for device in ("cpu", "cuda"):
            x, y = (gf.tensor(v, device=device, requires_grad=True) for v in (a, b))
            out = f(x, y)
            out.sum().backward()
            assert out.device.type == device
            results.append([out.detach().cpu().numpy(), x.grad.cpu().numpy()])
        for got, want in zip(results[1], results[0]):
            np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    ints = gf.tensor([[2**40, 1]], device="cuda") @ gf.tensor([[3], [1]], device="cuda")
    assert ints.device.type == "cuda" and ints.cpu().item() == 3 * 2**40 + 1
    w = gf.tensor([0.0, 1.0], device="cuda")
    assert gf.multinomial(w, 2).device.type == "cuda"
    assert gf.normal(gf.zeros(3, device="cuda"), 1.0).device.type == "cuda"
