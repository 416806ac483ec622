"""gradflow.utils.diagnostics.Monitor: every statistic against a hand computation on a tiny
two-layer network, the step bookkeeping (every, eval forwards, remove), layer selection, the
plot; and the optimizer step hooks the monitor stands on."""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest

import gradflow as gf
from gradflow import nn, optim
from gradflow.utils import Monitor
from gradflow.utils.diagnostics import STATS

HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None
X = np.array([[1.0, -2.0], [0.5, 1.0], [-1.0, -1.0]])
W1 = np.array([[1.0, 0.5], [-1.0, 2.0]])
B1 = np.array([0.0, -1.0])
W2 = np.array([[2.0, -3.0]])
B2 = np.array([0.5])
LR = 0.1


def tiny_net() -> nn.Sequential:
    net = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1)).double()
    for p, value in zip(net.parameters(), (W1, B1, W2, B2)):
        p.data = gf.tensor(value)
    return net


def by_hand():
    """Forward and backward of sum(net(X)) in NumPy: the outputs and parameter gradients."""
    h = X @ W1.T + B1
    r = np.maximum(h, 0)
    y = r @ W2.T + B2
    dy = np.ones_like(y)
    dr = dy @ W2
    dh = dr * (h > 0)
    grads1 = [dh.T @ X, dh.sum(0)]
    grads2 = [dy.T @ r, dy.sum(0)]
    return (h, r, y), grads1, grads2


def norm(*arrays) -> float:
    return math.sqrt(sum(float((a ** 2).sum()) for a in arrays))


def train_steps(net, opt, steps: int = 1) -> None:
    for _ in range(steps):
        opt.zero_grad()
        net(gf.tensor(X)).sum().backward()
        opt.step()


def test_each_statistic_matches_a_hand_computation():
    net = tiny_net()
    opt = optim.SGD(net.parameters(), lr=LR)
    monitor = Monitor(net, opt)
    train_steps(net, opt)
    outputs, grads1, grads2 = by_hand()
    assert monitor.steps == [0]
    for name, out in zip(("0", "1", "2"), outputs):
        assert monitor.history["act_mean"][name] == [pytest.approx(out.mean())]
        assert monitor.history["act_std"][name] == [pytest.approx(out.std())]
        assert monitor.history["act_zero_fraction"][name] == [pytest.approx(np.mean(out == 0))]
    assert monitor.history["act_zero_fraction"]["1"] == [pytest.approx(4 / 6)]  # dead units
    assert monitor.history["grad_norm"]["0"] == [pytest.approx(norm(*grads1))]
    assert monitor.history["grad_norm"]["2"] == [pytest.approx(norm(*grads2))]
    # Plain SGD: Δw = -lr ∇w, so ‖Δw‖ / ‖w‖ = lr ‖∇w‖ / ‖w‖.
    assert monitor.history["update_ratio"]["0"] == [pytest.approx(LR * norm(*grads1)
                                                                  / norm(W1, B1))]
    assert monitor.history["update_ratio"]["2"] == [pytest.approx(LR * norm(*grads2)
                                                                  / norm(W2, B2))]
    assert "1" not in monitor.history["grad_norm"]  # ReLU has no parameters
    assert set(monitor.last()["0"]) == set(STATS)


def test_update_ratio_is_the_change_the_step_made_under_adam():
    net = tiny_net()
    opt = optim.Adam(net.parameters(), lr=0.05)
    monitor = Monitor(net, opt, layers=[net[0]])
    train_steps(net, opt)
    before = norm(W1, B1)
    change = norm(net[0].weight.detach().numpy() - W1, net[0].bias.detach().numpy() - B1)
    assert monitor.history["update_ratio"]["0"] == [pytest.approx(change / before)]


def test_every_records_one_step_in_n_and_eval_forwards_are_not_recorded():
    net = tiny_net()
    opt = optim.SGD(net.parameters(), lr=LR)
    monitor = Monitor(net, opt, every=2)
    train_steps(net, opt, steps=5)
    assert monitor.steps == [0, 2, 4]
    assert all(len(v) == 3 for stat in STATS for v in monitor.history[stat].values())

    net.eval()
    net(gf.tensor(X))  # an evaluation forward: not a training activation
    opt.zero_grad()
    opt.step()  # no gradient, no training forward since the last step
    opt.step()
    assert monitor.steps == [0, 2, 4, 6]
    assert math.isnan(monitor.history["act_mean"]["0"][-1])
    assert math.isnan(monitor.history["grad_norm"]["0"][-1])


def test_remove_detaches_and_keeps_the_history():
    net = tiny_net()
    opt = optim.SGD(net.parameters(), lr=LR)
    with Monitor(net, opt) as monitor:
        train_steps(net, opt, steps=2)
    train_steps(net, opt, steps=2)
    assert monitor.steps == [0, 1]
    assert not net[0]._forward_hooks


def test_layer_selection_by_module_name_and_class():
    net = tiny_net()
    opt = optim.SGD(net.parameters(), lr=LR)
    assert list(Monitor(net, opt).layers) == ["0", "1", "2"]
    assert list(Monitor(net, opt, layers=[nn.Linear]).layers) == ["0", "2"]
    assert list(Monitor(net, opt, layers=["1", net[2]]).layers) == ["1", "2"]
    whole = Monitor(net, opt, layers=net)  # a container: its output, all its parameters
    train_steps(net, opt)
    assert list(whole.layers) == ["Sequential"]
    assert whole.history["grad_norm"]["Sequential"] == [pytest.approx(norm(*by_hand()[1],
                                                                           *by_hand()[2]))]


def test_bad_arguments_name_the_argument():
    net = tiny_net()
    opt = optim.SGD(net.parameters(), lr=LR)
    with pytest.raises(TypeError, match="Monitor: model"):
        Monitor(object(), opt)
    with pytest.raises(TypeError, match="Monitor: optimizer"):
        Monitor(net, object())
    with pytest.raises(ValueError, match="Monitor: every"):
        Monitor(net, opt, every=0)
    with pytest.raises(ValueError, match="'fc9' is not a module of the model"):
        Monitor(net, opt, layers=["fc9"])
    with pytest.raises(TypeError, match="Monitor: layers"):
        Monitor(net, opt, layers=[3])


@pytest.mark.skipif(not HAS_MATPLOTLIB, reason="matplotlib is not installed")
def test_plot_writes_one_panel_per_statistic(tmp_path):
    net = tiny_net()
    opt = optim.SGD(net.parameters(), lr=LR)
    monitor = Monitor(net, opt)
    train_steps(net, opt, steps=3)
    fig = monitor.plot(str(tmp_path / "monitor.png"), title="tiny")
    assert (tmp_path / "monitor.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    panels = fig.axes[:len(STATS)]
    assert [len(ax.lines) for ax in panels] == [3, 3, 3, 2, 2]
    assert "layer" not in monitor.table().splitlines()[2]  # rows, one per layer
    assert len(monitor.table().splitlines()) == 2 + 3


# ---------------------------------------------------------------- optimizer step hooks

def test_step_hooks_run_around_each_step_and_can_be_removed():
    net = tiny_net()
    opt = optim.SGD(net.parameters(), lr=LR)
    seen = []
    pre = opt.register_step_pre_hook(lambda o, args, kwargs: seen.append(("pre", o is opt)))
    opt.register_step_post_hook(lambda o, args, kwargs: seen.append(("post", o is opt)))
    train_steps(net, opt)
    assert seen == [("pre", True), ("post", True)]
    pre.remove()
    train_steps(net, opt)
    assert seen[2:] == [("post", True)]


def test_step_pre_hook_may_replace_the_arguments():
    net = tiny_net()
    opt = optim.SGD(net.parameters(), lr=LR)
    opt.register_step_pre_hook(lambda o, args, kwargs: ((), {"closure": lambda: 42.0}))
    assert opt.step() == 42.0


def test_step_hooks_run_once_when_a_subclass_calls_its_parent():
    class LoudSGD(optim.SGD):
        def step(self, closure=None):
            return super().step(closure)

    net = tiny_net()
    opt = LoudSGD(net.parameters(), lr=LR)
    calls = []
    opt.register_step_post_hook(lambda *a: calls.append(1))
    train_steps(net, opt)
    assert calls == [1]
    with pytest.raises(TypeError, match="register_step_pre_hook: hook must be callable"):
        opt.register_step_pre_hook(3)
