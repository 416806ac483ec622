"""CosineAnnealingWarmRestarts: lr sequences against PyTorch's (step(), fractional and
interleaved step(epoch)), hand-derived values, state_dict and errors."""

import math

import numpy as np
import pytest
from test_lr_scheduler import _sequence

import gradflow as gf
from gradflow import optim
from gradflow.optim import lr_scheduler as lrs

WARM = [
    ("T0=3", lambda s, o: s.CosineAnnealingWarmRestarts(o, T_0=3), 10),
    ("T0=2-Tmult=2-eta_min", lambda s, o: s.CosineAnnealingWarmRestarts(o, 2, T_mult=2,
                                                                         eta_min=0.01), 20),
    ("T0=1-Tmult=3", lambda s, o: s.CosineAnnealingWarmRestarts(o, 1, 3), 15),
]


@pytest.mark.parametrize("name,make,steps", WARM, ids=[w[0] for w in WARM])
@pytest.mark.parametrize("opt_name", ["SGD", "Adam"])
def test_sequence_matches_torch(name, make, steps, opt_name):
    pytest.importorskip("torch")
    ours = _sequence(make, "gradflow", steps, opt_name=opt_name)
    theirs = _sequence(make, "torch", steps, opt_name=opt_name)
    for i, (a, b) in enumerate(zip(ours, theirs)):
        for x, y in zip(a, b):
            np.testing.assert_allclose(np.array(x, dtype=float), np.array(y, dtype=float),
                                       rtol=1e-12, atol=1e-15, err_msg=f"step {i}")


def _lrs_with_epochs(lib, epochs, **kw):
    """The lr after each step(epoch) (None: step()), per batch as in PyTorch's example."""
    opt = lib.optim.SGD([lib.zeros(1, requires_grad=True)], lr=0.5)
    sched = lib.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, **kw)
    out = []
    for e in epochs:
        sched.step() if e is None else sched.step(e)
        out.append((sched.get_last_lr()[0], sched.last_epoch, float(sched.T_cur),
                    sched.T_i))
    return out


@pytest.mark.parametrize("kw", [{"T_0": 3}, {"T_0": 2, "T_mult": 2, "eta_min": 0.05}])
def test_fractional_and_interleaved_epochs_match_torch(kw):
    torch = pytest.importorskip("torch")
    epochs = [e + i / 4 for e in range(9) for i in range(4)] + [None, None, 26, None, 3, None]
    ours = _lrs_with_epochs(gf, epochs, **kw)
    theirs = _lrs_with_epochs(torch, epochs, **kw)
    np.testing.assert_allclose(np.array(ours, float), np.array(theirs, float), rtol=1e-12,
                               atol=1e-15)


def test_hand_derived_values_and_state_dict():
    opt = optim.SGD([gf.zeros(1, requires_grad=True)], lr=1.0)
    s = lrs.CosineAnnealingWarmRestarts(opt, T_0=2, T_mult=2, eta_min=0.0)
    seen = [s.get_last_lr()[0]]
    for _ in range(7):
        opt.step()
        s.step()
        seen.append(s.get_last_lr()[0])
    # periods of 2 then 4 epochs: restarts at epochs 2 and 6
    cos = lambda t, T: (1 + math.cos(math.pi * t / T)) / 2  # noqa: E731
    np.testing.assert_allclose(seen, [1.0, cos(1, 2), 1.0, cos(1, 4), cos(2, 4), cos(3, 4),
                                      1.0, cos(1, 8)], atol=1e-15)
    sd = s.state_dict()
    assert "optimizer" not in sd and sd["T_i"] == 8 and sd["T_cur"] == 1
    opt2 = optim.SGD([gf.zeros(1, requires_grad=True)], lr=1.0)
    s2 = lrs.CosineAnnealingWarmRestarts(opt2, T_0=5)
    s2.load_state_dict(sd)
    s.step()
    s2.step()
    assert s.get_last_lr() == s2.get_last_lr()


def test_errors():
    opt = optim.SGD([gf.zeros(1, requires_grad=True)], lr=1.0)
    with pytest.raises(ValueError, match="Expected positive integer T_0"):
        lrs.CosineAnnealingWarmRestarts(opt, T_0=0)
    with pytest.raises(ValueError, match="Expected positive integer T_0"):
        lrs.CosineAnnealingWarmRestarts(opt, T_0=2.5)
    with pytest.raises(ValueError, match="Expected integer T_mult >= 1"):
        lrs.CosineAnnealingWarmRestarts(opt, T_0=2, T_mult=0)
    with pytest.raises(TypeError, match="eta_min"):
        lrs.CosineAnnealingWarmRestarts(opt, T_0=2, eta_min="0")
    s = lrs.CosineAnnealingWarmRestarts(opt, T_0=2)
    with pytest.raises(ValueError, match="Expected non-negative epoch"):
        s.step(-1)
    with pytest.raises(TypeError, match="not an Optimizer"):
        lrs.CosineAnnealingWarmRestarts("sgd", T_0=2)
