"""softplus, logsigmoid and binary_cross_entropy_with_logits are smooth: their first and
second derivatives at exactly 0 (where a max(x, 0) + log1p(e^-|x|) decomposition would get
0 from the kinks of relu and abs) and far out, against the closed forms and PyTorch."""

from __future__ import annotations

import math

import numpy as np
import pytest

import gradflow as gf
import gradflow.nn.functional as F

torch = pytest.importorskip("torch")

POINTS = [0.0, -0.0, 1e-12, -3.0, 2.0, -800.0, 800.0]


def sigmoid(z: float) -> float:
    return 0.5 * (1 + math.tanh(z / 2))


def derivatives(fn, points=POINTS):
    """(values, first derivatives, second derivatives) of elementwise `fn` at `points`."""
    z = gf.tensor(points, dtype=gf.float64, requires_grad=True)
    out = fn(z)
    (d1,) = gf.autograd.grad(out.sum(), z, create_graph=True)
    (d2,) = gf.autograd.grad(d1.sum(), z)
    return out.detach().numpy(), d1.detach().numpy(), d2.numpy()


@pytest.mark.parametrize("name, fn, first, second", [
    ("softplus", F.softplus, sigmoid, lambda z: sigmoid(z) * (1 - sigmoid(z))),
    ("logsigmoid", F.logsigmoid, lambda z: 1 - sigmoid(z),
     lambda z: -sigmoid(z) * (1 - sigmoid(z))),
])
def test_first_and_second_derivatives_match_the_closed_form(name, fn, first, second):
    _, d1, d2 = derivatives(fn)
    np.testing.assert_allclose(d1, [first(z) for z in POINTS], rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(d2, [second(z) for z in POINTS], rtol=1e-12, atol=1e-300)
    assert np.isfinite(d1).all() and np.isfinite(d2).all()


@pytest.mark.parametrize("beta", [1.0, 2.0])
def test_softplus_matches_torch_at_and_around_zero(beta):
    values, d1, d2 = derivatives(lambda z: F.softplus(z, beta=beta))
    zt = torch.tensor(POINTS, dtype=torch.float64, requires_grad=True)
    out = torch.nn.functional.softplus(zt, beta=beta)
    (g1,) = torch.autograd.grad(out.sum(), zt, create_graph=True)
    (g2,) = torch.autograd.grad(g1.sum(), zt)
    np.testing.assert_allclose(values, out.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(d1, g1.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(d2, g2.numpy(), rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("target", [0.0, 1.0, 0.3])
def test_bce_with_logits_gradient_and_hessian_at_zero_match_torch(target):
    x = gf.zeros(4, dtype=gf.float64, requires_grad=True)
    y = gf.full((4,), target, dtype=gf.float64)
    (g,) = gf.autograd.grad(F.binary_cross_entropy_with_logits(x, y), x, create_graph=True)
    (h,) = gf.autograd.grad(g.sum(), x)
    xt = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(xt, torch.full((4,), target,
                                                                dtype=torch.float64))
    (gt,) = torch.autograd.grad(loss, xt, create_graph=True)
    (ht,) = torch.autograd.grad(gt.sum(), xt)
    np.testing.assert_allclose(g.detach().numpy(), gt.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(h.numpy(), ht.numpy(), rtol=1e-12)
    np.testing.assert_allclose(g.detach().numpy(), (0.5 - target) / 4, rtol=1e-12)
