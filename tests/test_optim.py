"""Optimizers: parameter trajectories against PyTorch's (when installed), and the Optimizer API
(param groups, state_dict, closures, errors) always."""

import numpy as np
import pytest

import gradflow as gf
import gradflow.nn as nn
from gradflow import optim

SHAPES = [(3, 4), (5,)]
STEPS = 6


def _trajectory(make_opt, lib, dtype, steps=STEPS, groups=False):
    """Parameters after each step from fixed start values and a fixed gradient sequence."""
    rng = np.random.default_rng(0)
    starts = [rng.standard_normal(s) for s in SHAPES]
    grads = [[rng.standard_normal(s) for s in SHAPES] for _ in range(steps)]
    if lib == "torch":
        import torch

        params = [torch.tensor(a, dtype=getattr(torch, dtype), requires_grad=True)
                  for a in starts]
        wrap = lambda a: torch.tensor(a, dtype=getattr(torch, dtype))  # noqa: E731
        mod = torch.optim
    else:
        params = [gf.tensor(a, dtype=dtype, requires_grad=True) for a in starts]
        wrap = lambda a: gf.tensor(a, dtype=dtype)  # noqa: E731
        mod = optim
    spec = [{"params": [params[0]]}, {"params": [params[1]], "lr": 0.05}] if groups else params
    opt = make_opt(mod, spec)
    out = []
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = wrap(g)
        opt.step()
        out.append([p.detach().numpy().copy() for p in params])
    return out, opt


CONFIGS = [
    ("SGD", lambda o, p: o.SGD(p, lr=0.1)),
    ("SGD-momentum", lambda o, p: o.SGD(p, lr=0.1, momentum=0.9)),
    ("SGD-dampening-wd", lambda o, p: o.SGD(p, lr=0.1, momentum=0.8, dampening=0.3,
                                            weight_decay=0.01)),
    ("SGD-nesterov-maximize", lambda o, p: o.SGD(p, lr=0.05, momentum=0.9, nesterov=True,
                                                 maximize=True)),
    ("Adagrad", lambda o, p: o.Adagrad(p, lr=0.1)),
    ("Adagrad-all", lambda o, p: o.Adagrad(p, lr=0.1, lr_decay=0.05, weight_decay=0.1,
                                           initial_accumulator_value=0.2, eps=1e-6)),
    ("RMSprop", lambda o, p: o.RMSprop(p, lr=0.01)),
    ("RMSprop-centered-momentum", lambda o, p: o.RMSprop(p, lr=0.01, alpha=0.9, momentum=0.5,
                                                         centered=True, weight_decay=0.1)),
    ("RMSprop-centered", lambda o, p: o.RMSprop(p, lr=0.01, centered=True, eps=1e-4)),
    ("Adam", lambda o, p: o.Adam(p, lr=0.01)),
    ("Adam-wd-amsgrad", lambda o, p: o.Adam(p, lr=0.01, betas=(0.8, 0.9), weight_decay=0.1,
                                            amsgrad=True)),
    ("Adam-maximize", lambda o, p: o.Adam(p, lr=0.02, eps=1e-3, maximize=True)),
    ("AdamW", lambda o, p: o.AdamW(p, lr=0.01)),
    ("AdamW-amsgrad", lambda o, p: o.AdamW(p, lr=0.01, weight_decay=0.5, amsgrad=True,
                                           betas=(0.5, 0.6))),
    ("Adadelta", lambda o, p: o.Adadelta(p)),
    ("Adadelta-all", lambda o, p: o.Adadelta(p, lr=0.5, rho=0.8, eps=1e-4, weight_decay=0.1,
                                             maximize=True)),
]


@pytest.mark.parametrize("name,make", CONFIGS, ids=[c[0] for c in CONFIGS])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_trajectory_matches_torch(name, make, dtype):
    pytest.importorskip("torch")
    ours, our_opt = _trajectory(make, "gradflow", dtype, groups=dtype == "float64")
    theirs, their_opt = _trajectory(make, "torch", dtype, groups=dtype == "float64")
    rtol, atol = (1e-5, 1e-6) if dtype == "float32" else (1e-12, 1e-14)
    for step, (a, b) in enumerate(zip(ours, theirs)):
        for x, y in zip(a, b):
            np.testing.assert_allclose(x, y, rtol=rtol, atol=atol, err_msg=f"step {step}")
    # the same state layout as PyTorch's state_dict
    ours_sd, theirs_sd = our_opt.state_dict(), their_opt.state_dict()
    assert ours_sd["state"].keys() == theirs_sd["state"].keys()
    for k in theirs_sd["state"]:
        assert set(ours_sd["state"][k]) == set(theirs_sd["state"][k])
        for key, v in theirs_sd["state"][k].items():
            np.testing.assert_allclose(ours_sd["state"][k][key].numpy(), v.numpy(),
                                       rtol=rtol, atol=atol)
    for g_ours, g_theirs in zip(ours_sd["param_groups"], theirs_sd["param_groups"]):
        assert g_ours["params"] == g_theirs["params"]
        for key, v in g_ours.items():
            if key in g_theirs:
                assert g_theirs[key] == v or (isinstance(v, tuple) and list(v) == list(
                    g_theirs[key])), key


def test_state_dict_round_trip_continues_identically():
    make = CONFIGS[10][1]  # Adam with amsgrad and weight decay
    full, _ = _trajectory(make, "gradflow", "float64", steps=6)
    rng = np.random.default_rng(0)
    starts = [rng.standard_normal(s) for s in SHAPES]
    grads = [[rng.standard_normal(s) for s in SHAPES] for _ in range(6)]
    params = [gf.tensor(a, requires_grad=True, dtype="float64") for a in starts]
    opt = make(optim, params)
    for g in grads[:3]:
        for p, gi in zip(params, g):
            p.grad = gf.tensor(gi)
        opt.step()
    sd = opt.state_dict()
    params2 = [gf.tensor(p.detach().numpy(), requires_grad=True) for p in params]
    opt2 = make(optim, params2)
    opt2.load_state_dict(sd)
    assert opt2.state[params2[0]]["exp_avg"] is not sd["state"][0]["exp_avg"]
    for g in grads[3:]:
        for p, gi in zip(params2, g):
            p.grad = gf.tensor(gi)
        opt2.step()
    for a, b in zip(params2, full[-1]):
        np.testing.assert_allclose(a.detach().numpy(), b, rtol=1e-12)


def test_param_groups_defaults_and_errors():
    w, b = nn.Parameter(gf.zeros(2)), nn.Parameter(gf.zeros(1))
    opt = optim.SGD([{"params": [w]}, {"params": b, "lr": 0.5}], lr=0.1, momentum=0.9)
    assert opt.param_groups[0]["lr"] == 0.1 and opt.param_groups[1]["lr"] == 0.5
    assert opt.param_groups[1]["momentum"] == 0.9 and opt.param_groups[1]["params"] == [b]
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [w]})
    opt.add_param_group({"params": [nn.Parameter(gf.zeros(3))], "momentum": 0.0})
    assert len(opt.param_groups) == 3 and opt.param_groups[2]["lr"] == 0.1
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.Adam([])
    with pytest.raises(TypeError, match="iterable of Tensors"):
        optim.Adam(w)
    with pytest.raises(TypeError, match="ordered collections"):
        optim.Adam([{"params": {w}}])
    with pytest.raises(ValueError, match="non-leaf"):
        optim.Adam([w * 2])
    with pytest.raises(ValueError, match="Invalid learning rate"):
        optim.SGD([w], lr=-1)
    with pytest.raises(ValueError, match="Nesterov momentum requires"):
        optim.SGD([w], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="Invalid beta parameter at index 1"):
        optim.Adam([w], betas=(0.9, 1.0))
    sd = opt.state_dict()
    opt_small = optim.SGD([w], lr=0.1)
    with pytest.raises(ValueError, match="different number of parameter groups"):
        opt_small.load_state_dict(sd)


def test_zero_grad_and_named_params():
    model = nn.Linear(2, 1)
    opt = optim.Adam(model.named_parameters(), lr=0.1)
    assert opt.param_groups[0]["param_names"] == ["weight", "bias"]
    model(gf.ones(1, 2)).sum().backward()
    opt.zero_grad(set_to_none=False)
    assert model.weight.grad.abs().sum().item() == 0
    opt.zero_grad()
    assert model.weight.grad is None


def test_step_builds_no_graph_and_bumps_version():
    w = nn.Parameter(gf.ones(3))
    w.grad = gf.ones(3)
    v0 = w._version_counter
    optim.SGD([w], lr=0.1, momentum=0.9).step()
    assert w.grad_fn is None and w.is_leaf and w._version_counter > v0
    assert np.allclose(w.detach().numpy(), 0.9)
    y = w * w
    w.grad = gf.ones(3)
    optim.Adam([w]).step()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_closure_and_skipped_params():
    w = nn.Parameter(gf.tensor([2.0]))
    frozen = nn.Parameter(gf.tensor([5.0]))
    opt = optim.SGD([w, frozen], lr=0.25)

    def closure():
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert loss.item() == 4.0 and np.isclose(w.item(), 1.0) and frozen.item() == 5.0
    assert frozen not in opt.state


def test_repr():
    opt = optim.SGD([nn.Parameter(gf.zeros(1))], lr=0.1)
    assert repr(opt).startswith("SGD (\nParameter Group 0\n    dampening: 0\n")


def test_training_script_matches_torch_end_to_end():
    """The same small convnet, data and schedule in both libraries: the same losses."""
    torch = pytest.importorskip("torch")

    def build(lib):
        n = lib.nn
        return n.Sequential(n.Conv2d(1, 4, 3, bias=False), n.BatchNorm2d(4), n.ReLU(),
                            n.MaxPool2d(2), n.Flatten(), n.Linear(4 * 3 * 3, 16), n.GELU(),
                            n.Dropout(0.0), n.Linear(16, 3))

    torch.manual_seed(0)
    theirs, ours = build(torch), build(gf)
    ours.load_state_dict({k: gf.tensor(v.numpy()) for k, v in theirs.state_dict().items()})
    rng = np.random.default_rng(0)
    x = rng.standard_normal((12, 1, 8, 8)).astype(np.float32)
    y = rng.integers(0, 3, 12)
    runs = []
    for lib, model in ((torch, theirs), (gf, ours)):
        opt = lib.optim.AdamW(model.parameters(), lr=0.01)
        sched = lib.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
        losses = []
        for _ in range(6):
            opt.zero_grad()
            loss = lib.nn.functional.cross_entropy(model(lib.tensor(x)), lib.tensor(y),
                                                   label_smoothing=0.1)
            loss.backward()
            lib.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
            opt.step()
            sched.step()
            losses.append(loss.item())
        model.eval()
        with lib.no_grad():
            losses.append(model(lib.tensor(x)).sum().item())
        runs.append(losses)
    np.testing.assert_allclose(runs[1], runs[0], rtol=2e-5)
