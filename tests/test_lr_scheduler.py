"""Learning-rate schedulers: the lr (and momentum) sequences against PyTorch's (when
installed); hand-derived values and state_dict round trips always."""

import math
import warnings

import numpy as np
import pytest

import gradflow as gf
from gradflow import optim
from gradflow.optim import lr_scheduler as lrs


def _params(lib):
    if lib == "torch":
        import torch

        return [torch.zeros(2, requires_grad=True)], [torch.zeros(1, requires_grad=True)]
    return [gf.zeros(2, requires_grad=True)], [gf.zeros(1, requires_grad=True)]


def _sequence(make, lib, steps, opt_name="SGD", metrics=None):
    mod = __import__("torch").optim if lib == "torch" else optim
    a, b = _params(lib)
    kwargs = {"momentum": 0.9} if opt_name == "SGD" else {}
    opt = getattr(mod, opt_name)([{"params": a}, {"params": b, "lr": 0.5}], lr=0.1, **kwargs)
    sched = make(mod.lr_scheduler, opt)
    seq = []
    for i in range(steps):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            opt.step()
            if metrics is not None:
                sched.step(metrics[i])
            else:
                sched.step()
        moments = [g.get("momentum", g.get("betas", (None,))[0]) for g in opt.param_groups]
        seq.append((list(sched.get_last_lr()), [g["lr"] for g in opt.param_groups], moments))
    return seq


SCHEDULERS = [
    ("LambdaLR", lambda s, o: s.LambdaLR(o, lambda e: 0.95**e), 8),
    ("LambdaLR-list", lambda s, o: s.LambdaLR(o, [lambda e: 1 / (e + 1), lambda e: e]), 6),
    ("StepLR", lambda s, o: s.StepLR(o, step_size=3, gamma=0.5), 10),
    ("MultiStepLR", lambda s, o: s.MultiStepLR(o, milestones=[2, 5, 5, 7], gamma=0.3), 10),
    ("ExponentialLR", lambda s, o: s.ExponentialLR(o, gamma=0.9), 8),
    ("CosineAnnealingLR", lambda s, o: s.CosineAnnealingLR(o, T_max=5, eta_min=0.001), 17),
    ("LinearLR", lambda s, o: s.LinearLR(o, start_factor=0.25, end_factor=0.9,
                                         total_iters=4), 8),
    ("CyclicLR", lambda s, o: s.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=3,
                                         step_size_down=2), 14),
    ("CyclicLR-triangular2", lambda s, o: s.CyclicLR(o, 0.01, [0.1, 0.2], step_size_up=2,
                                                     mode="triangular2"), 14),
    ("CyclicLR-exp-range", lambda s, o: s.CyclicLR(o, 0.01, 0.1, step_size_up=2,
                                                   mode="exp_range", gamma=0.9,
                                                   cycle_momentum=False), 12),
    ("OneCycleLR", lambda s, o: s.OneCycleLR(o, max_lr=1.0, total_steps=12), 12),
    ("OneCycleLR-linear-3phase", lambda s, o: s.OneCycleLR(o, max_lr=[1.0, 2.0], epochs=2,
                                                           steps_per_epoch=5,
                                                           anneal_strategy="linear",
                                                           three_phase=True), 10),
    ("SequentialLR", lambda s, o: s.SequentialLR(
        o, [s.LinearLR(o, start_factor=0.1, total_iters=3), s.ExponentialLR(o, gamma=0.8)],
        milestones=[3]), 9),
    ("SequentialLR-3", lambda s, o: s.SequentialLR(
        o, [s.ExponentialLR(o, 0.5), s.StepLR(o, 2), s.CosineAnnealingLR(o, 4)],
        milestones=[2, 5]), 10),
]


@pytest.mark.parametrize("name,make,steps", SCHEDULERS, ids=[s[0] for s in SCHEDULERS])
def test_sequence_matches_torch(name, make, steps):
    pytest.importorskip("torch")
    ours = _sequence(make, "gradflow", steps)
    theirs = _sequence(make, "torch", steps)
    for i, (a, b) in enumerate(zip(ours, theirs)):
        for x, y in zip(a, b):
            np.testing.assert_allclose(np.array(x, dtype=float), np.array(y, dtype=float),
                                       rtol=1e-12, atol=1e-15, err_msg=f"step {i}")


def test_onecycle_with_adam_betas_matches_torch():
    pytest.importorskip("torch")
    make = lambda s, o: s.OneCycleLR(o, max_lr=0.3, total_steps=8)  # noqa: E731
    ours = _sequence(make, "gradflow", 8, opt_name="Adam")
    theirs = _sequence(make, "torch", 8, opt_name="Adam")
    np.testing.assert_allclose(np.array([s[2] for s in ours], float),
                               np.array([s[2] for s in theirs], float), rtol=1e-12)


@pytest.mark.parametrize("kw", [{}, {"mode": "max", "threshold_mode": "abs", "patience": 1},
                                {"patience": 0, "cooldown": 2, "min_lr": [0.05, 0.2],
                                 "factor": 0.5}])
def test_reduce_on_plateau_matches_torch(kw):
    pytest.importorskip("torch")
    metrics = [1.0, 0.9, 0.95, 0.95, 0.95, 0.8, 0.8, 0.8, 0.8, 0.9, 0.9, 0.9, 0.9, 0.7] * 2
    make = lambda s, o: s.ReduceLROnPlateau(o, **dict({"patience": 2}, **kw))  # noqa: E731
    ours = _sequence(make, "gradflow", len(metrics), metrics=metrics)
    theirs = _sequence(make, "torch", len(metrics), metrics=metrics)
    np.testing.assert_allclose(np.array([s[1] for s in ours]), np.array([s[1] for s in theirs]),
                               rtol=1e-12)


def _opt(lr=0.1):
    return optim.SGD([gf.zeros(1, requires_grad=True)], lr=lr, momentum=0.9)


def test_hand_derived_values():
    opt = _opt()
    s = lrs.StepLR(opt, step_size=2, gamma=0.1)
    seen = [s.get_last_lr()[0]]
    for _ in range(4):
        opt.step()
        s.step()
        seen.append(s.get_last_lr()[0])
    np.testing.assert_allclose(seen, [0.1, 0.1, 0.01, 0.01, 0.001])
    opt = _opt(1.0)
    s = lrs.CosineAnnealingLR(opt, T_max=4)
    for _ in range(4):
        opt.step()
        s.step()
    assert abs(s.get_last_lr()[0]) < 1e-12
    opt = _opt(1.0)
    s = lrs.CosineAnnealingLR(opt, T_max=4)
    opt.step()
    s.step()
    assert math.isclose(s.get_last_lr()[0], (1 + math.cos(math.pi / 4)) / 2)
    s.step(epoch=2)  # closed form
    assert math.isclose(opt.param_groups[0]["lr"], 0.5)


def test_state_dict_round_trip():
    opt = _opt()
    s = lrs.MultiStepLR(opt, milestones=[1, 3], gamma=0.5)
    for _ in range(2):
        opt.step()
        s.step()
    sd = s.state_dict()
    assert "optimizer" not in sd and sd["last_epoch"] == 2
    opt2 = _opt()
    s2 = lrs.MultiStepLR(opt2, milestones=[9], gamma=0.1)
    s2.load_state_dict(sd)
    opt2.param_groups[0]["lr"] = opt.param_groups[0]["lr"]
    s.step()
    s2.step()
    assert s.get_last_lr() == s2.get_last_lr() == [0.025]
    opt = _opt()
    seq = lrs.SequentialLR(opt, [lrs.LinearLR(opt), lrs.ExponentialLR(opt, 0.5)],
                           milestones=[2])
    sd = seq.state_dict()
    assert isinstance(sd["_schedulers"], list) and len(sd["_schedulers"]) == 2


def test_errors():
    with pytest.raises(TypeError, match="is not an Optimizer"):
        lrs.StepLR("sgd", 1)
    opt = _opt()
    with pytest.raises(ValueError, match="Expected 1 lr_lambdas"):
        lrs.LambdaLR(opt, [lambda e: 1, lambda e: 1])
    with pytest.raises(ValueError, match="Factor should be < 1.0"):
        lrs.ReduceLROnPlateau(opt, factor=2.0)
    with pytest.raises(ValueError, match="total_steps OR"):
        lrs.OneCycleLR(opt, max_lr=1.0)
    s = lrs.OneCycleLR(opt, max_lr=1.0, total_steps=2)
    s.step()
    s.step()
    with pytest.raises(ValueError, match="Tried to step 3 times"):
        s.step()
    with pytest.raises(ValueError, match="optimizer must support momentum"):
        lrs.CyclicLR(optim.Adagrad([gf.zeros(1, requires_grad=True)]), 0.1, 1.0)
