"""Matrix products: matmul in all its forms (1-D, 2-D, batched, broadcast batch), mm, bmm, dot."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import arrays, to_gf

import gradflow as gf
from gradflow.autograd import gradcheck, gradgradcheck


@st.composite
def matmul_shapes(draw):
    """(shape_a, shape_b) valid for np.matmul: 1-D or N-D with broadcastable batch dims."""
    m, k, n = (draw(st.integers(0, 4)) for _ in range(3))
    kind = draw(st.sampled_from(("vv", "mv", "vm", "mm", "batched", "broadcast")))
    if kind == "vv":
        return (k,), (k,)
    if kind == "mv":
        return draw(st.sampled_from([(), (2,)])) + (m, k), (k,)
    if kind == "vm":
        return (k,), draw(st.sampled_from([(), (3,)])) + (k, n)
    if kind == "mm":
        return (m, k), (k, n)
    if kind == "batched":
        b = draw(st.integers(0, 3))
        return (b, m, k), (b, k, n)
    batch_a, batch_b = draw(st.sampled_from([((2, 1), (3,)), ((1,), (2, 3)), ((), (2,)),
                                             ((3, 1), (1, 2))]))
    return batch_a + (m, k), batch_b + (k, n)


@given(data=st.data())
def test_matmul_matches_numpy(data):
    sa, sb = data.draw(matmul_shapes())
    dtype = data.draw(st.sampled_from((np.float64, np.float32)))
    a, b = data.draw(arrays(sa, dtype)), data.draw(arrays(sb, dtype))
    out = to_gf(a) @ to_gf(b)
    expected = np.matmul(a.astype(np.float64), b.astype(np.float64))
    assert out.shape == expected.shape and out.dtype is gf.tensor(a).dtype
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(out.numpy(), expected, rtol=tol, atol=tol)
    np.testing.assert_allclose(gf.matmul(to_gf(a), to_gf(b)).numpy(), expected, rtol=tol,
                               atol=tol)


@pytest.mark.parametrize("sa,sb", [((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 2)), ((2, 3), (3, 4)),
                                   ((2, 2, 3), (2, 3, 2)), ((2, 1, 2, 3), (3, 3, 2)),
                                   ((2, 3), (4, 3, 2)), ((3,), (2, 3, 2)), ((2, 2, 3), (3,))])
def test_matmul_backward_gradcheck(sa, sb):
    rng = np.random.default_rng(0)
    a, b = to_gf(rng.normal(size=sa), True), to_gf(rng.normal(size=sb), True)
    assert gradcheck(gf.matmul, (a, b))
    if len(sa) >= 2 and len(sb) >= 2:  # transposed (non-contiguous) operands too
        at = to_gf(np.swapaxes(rng.normal(size=sa[:-2] + sa[-2:][::-1]), -1, -2), True)
        assert gradcheck(gf.matmul, (at, b))


def test_matmul_second_derivatives():
    rng = np.random.default_rng(1)
    a, b = to_gf(rng.normal(size=(2, 3)), True), to_gf(rng.normal(size=(3, 2)), True)
    assert gradgradcheck(lambda x, y: (x @ y).tanh(), (a, b))


def test_mm_bmm_dot_and_methods():
    a, b = gf.arange(6.0).reshape(2, 3), gf.arange(6.0).reshape(3, 2)
    np.testing.assert_array_equal(gf.mm(a, b).numpy(), a.numpy() @ b.numpy())
    np.testing.assert_array_equal(a.mm(b).numpy(), a.matmul(b).numpy())
    a3, b3 = a.unsqueeze(0).expand(2, 2, 3), b.unsqueeze(0).expand(2, 3, 2)
    np.testing.assert_array_equal(gf.bmm(a3, b3).numpy(), a3.numpy() @ b3.numpy())
    assert gf.dot(gf.tensor([1.0, 2.0]), gf.tensor([3.0, 4.0])).item() == 11.0
    assert gf.tensor([1.0, 2.0]).dot(gf.tensor([3.0, 4.0])).shape == ()
    assert (gf.tensor([1, 2]) @ gf.tensor([[1.0], [1.0]])).dtype is gf.float32


@pytest.mark.parametrize("call,exc,msg", [
    (lambda: gf.ones(2, 3) @ gf.ones(2, 3), ValueError,
     r"matmul: shapes \(2, 3\) and \(2, 3\) cannot be multiplied \(3 != 2\)"),
    (lambda: gf.ones(3) @ gf.ones(4), ValueError,
     r"matmul: shapes \(3,\) and \(4,\) cannot be multiplied"),
    (lambda: gf.ones(2, 2, 3) @ gf.ones(3, 3, 2), ValueError,
     r"matmul of \(2, 2, 3\) and \(3, 3, 2\): shapes \(2,\) and \(3,\) cannot be broadcast"),
    (lambda: gf.tensor(1.0) @ gf.ones(2), ValueError,
     "matmul: both arguments need to be at least 1D, but they are 0D and 1D"),
    (lambda: gf.matmul(gf.ones(2), [1.0, 2.0]), TypeError,
         "matmul: argument 'other' must be a Tensor, not list"),
    (lambda: gf.mm(gf.ones(2), gf.ones(2, 3)), ValueError,
     r"mm: expected 2-D tensors, got shapes \(2,\) and \(2, 3\)"),
    (lambda: gf.bmm(gf.ones(2, 2, 3), gf.ones(3, 3, 2)), ValueError,
     "bmm: expected 3-D tensors with equal batch size"),
    (lambda: gf.dot(gf.ones(2), gf.ones(3)), ValueError,
     r"dot: expected two 1-D tensors of equal size, got shapes \(2,\) and \(3,\)"),
])
def test_matmul_bad_inputs(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call()


@pytest.mark.parametrize("x_shape", [(3,), (4, 3), (2, 4, 3), (0, 3)])
@pytest.mark.parametrize("with_bias", [True, False])
def test_linear_gradients_and_weight_grad_layout(x_shape, with_bias):
    from gradflow.nn.functional import linear

    rng = np.random.default_rng(0)
    xs, ws, bs = (rng.standard_normal(s) for s in (x_shape, (5, 3), (5,)))
    x, w, b = (gf.tensor(a, requires_grad=True) for a in (xs, ws, bs))
    args = (x, w, b) if with_bias else (x, w)
    expected = xs @ ws.T + (bs if with_bias else 0)
    np.testing.assert_allclose(linear(*args).detach().numpy(), expected, atol=1e-12)
    assert gradcheck(linear, args) and gradgradcheck(linear, args)
    linear(*args).sum().backward()
    assert w.grad._data.flags.c_contiguous  # produced as (out, in), never a transposed copy


def test_linear_rejects_mismatched_shapes():
    from gradflow.nn.functional import linear

    with pytest.raises(ValueError, match=r"linear: input of shape \(2, 4\).*\(5, 3\)"):
        linear(gf.randn(2, 4), gf.randn(5, 3))
    with pytest.raises(ValueError, match=r"linear: bias of shape \(4,\)"):
        linear(gf.randn(2, 3), gf.randn(5, 3), gf.randn(4))
