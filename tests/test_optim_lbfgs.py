"""optim.LBFGS against torch.optim.LBFGS: the same losses, parameters, closure calls and
iteration counts, with and without the strong-Wolfe line search, on Rosenbrock's function and
on a small network with several parameters; the line search's cubic step; errors."""

from __future__ import annotations

import numpy as np
import pytest
from parity import needs_torch, to_gf_state

import gradflow as gf
from gradflow.optim.lbfgs import _cubic_interpolate


def _rosenbrock(x):
    return ((1 - x[:-1]) ** 2).sum() + (100 * (x[1:] - x[:-1] ** 2) ** 2).sum()


def _run(m, x0, steps, **kw):
    """Losses returned by each step, the final x and the state's counters."""
    x = m.tensor(x0.copy(), dtype=m.float64, requires_grad=True)
    opt = m.optim.LBFGS([x], **kw)

    def closure():
        opt.zero_grad()
        loss = _rosenbrock(x)
        loss.backward()
        return loss

    losses = [float(opt.step(closure).detach()) for _ in range(steps)]
    state = opt.state[x]
    return losses, x.detach().numpy().copy(), state["func_evals"], state["n_iter"]


@needs_torch
@pytest.mark.parametrize("kw", [
    {"lr": 0.1, "max_iter": 10, "history_size": 3},
    {"line_search_fn": "strong_wolfe", "max_iter": 8, "history_size": 4},
    {"line_search_fn": "strong_wolfe", "max_iter": 30, "max_eval": 12},
    {"lr": 0.05, "max_iter": 4, "tolerance_change": 1e-3},
])
def test_rosenbrock_matches_torch(kw):
    import torch

    x0 = np.array([-1.2, 1.0, 0.5, -0.3, 0.8])
    ours, theirs = _run(gf, x0, 4, **kw), _run(torch, x0, 4, **kw)
    # the cubic steps magnify last-bit differences of the sums (about 1e-14) to about 1e-8
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-6)
    np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-6, atol=1e-9)
    assert ours[2:] == theirs[2:]


def _net(m):
    m.manual_seed(0)
    return m.nn.Sequential(m.nn.Linear(3, 5), m.nn.Tanh(), m.nn.Linear(5, 1)).double()


@needs_torch
@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
def test_network_training_matches_torch(line_search_fn):
    import torch

    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((16, 3)), rng.standard_normal((16, 1))
    tnet = _net(torch)
    gnet = _net(gf)
    gnet.load_state_dict(to_gf_state(tnet))
    results = []
    for m, net in ((gf, gnet), (torch, tnet)):
        xs, ys = m.tensor(x), m.tensor(y)
        opt = m.optim.LBFGS(net.parameters(), lr=0.5, max_iter=5, history_size=4,
                            line_search_fn=line_search_fn)

        def closure():
            opt.zero_grad()
            loss = ((net(xs) - ys) ** 2).mean()
            loss.backward()
            return loss

        results.append([float(opt.step(closure).detach()) for _ in range(4)])
    np.testing.assert_allclose(results[0], results[1], rtol=1e-9)
    assert results[0][-1] < results[0][0]


def test_stops_at_once_at_a_minimum_and_keeps_state_in_state_dict():
    x = gf.tensor([1.0, 1.0, 1.0], dtype=gf.float64, requires_grad=True)
    opt = gf.optim.LBFGS([x])
    calls = []

    def closure():
        calls.append(1)
        opt.zero_grad()
        loss = _rosenbrock(x)
        loss.backward()
        return loss

    assert float(opt.step(closure)) == 0.0 and len(calls) == 1
    x.data = gf.tensor([0.0, 0.5, 2.0], dtype=gf.float64)
    opt.step(closure)
    state = opt.state_dict()["state"][0]
    assert state["n_iter"] > 0 and len(state["old_dirs"]) > 0
    again = gf.optim.LBFGS([x])
    again.load_state_dict(opt.state_dict())
    assert again.state[x]["n_iter"] == state["n_iter"]


def test_cubic_interpolate_finds_a_cubics_minimum():
    # f(x) = (x - 1)^2 (x + 2): minimum at x = 1, slope f'(x) = 3x^2 - 3
    f = lambda x: (x - 1) ** 2 * (x + 2)  # noqa: E731
    df = lambda x: 3 * x * x - 3  # noqa: E731
    assert _cubic_interpolate(0.0, f(0.0), df(0.0), 2.0, f(2.0), df(2.0)) == pytest.approx(1.0)
    assert _cubic_interpolate(2.0, f(2.0), df(2.0), 0.0, f(0.0), df(0.0)) == pytest.approx(1.0)
    assert _cubic_interpolate(0.0, 0.0, 1.0, 1.0, 0.0, 1.0, bounds=(0.2, 0.4)) in (0.2, 0.3, 0.4)
