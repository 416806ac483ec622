"""NAdam, RAdam, Adamax and LBFGS: trajectories against PyTorch's step by step (when installed),
state_dict layout and round trips, option checks."""

import importlib.util
import io

import numpy as np
import pytest

import gradflow as gf
import gradflow.nn as nn
from gradflow import optim

SHAPES = [(3, 4), (5,)]
STEPS = 12


def _grads(steps):
    rng = np.random.default_rng(0)
    starts = [rng.standard_normal(s) for s in SHAPES]
    return starts, [[rng.standard_normal(s) for s in SHAPES] for _ in range(steps)]


def _lib(name):
    if name == "torch":
        import torch

        return torch, lambda a, dt: torch.tensor(a, dtype=getattr(torch, dt))
    return gf, lambda a, dt: gf.tensor(a, dtype=dt)


def _run(make_opt, lib_name, dtype, steps=STEPS, opt=None, params=None, first=0):
    """Parameters after each step from fixed start values and a fixed gradient sequence
    (two param groups, the second with its own lr)."""
    lib, wrap = _lib(lib_name)
    starts, grads = _grads(steps)
    if params is None:
        params = [wrap(a, dtype).requires_grad_() for a in starts]
    if opt is None:
        opt = make_opt(lib.optim, [{"params": [params[0]]},
                                   {"params": [params[1]], "lr": 0.03}])
    out = []
    for step_grads in grads[first:]:
        for p, g in zip(params, step_grads):
            p.grad = wrap(g, dtype)
        opt.step()
        out.append([p.detach().numpy().copy() for p in params])
    return out, opt, params


CONFIGS = [
    ("NAdam", lambda o, p: o.NAdam(p, lr=0.01)),
    ("NAdam-wd", lambda o, p: o.NAdam(p, lr=0.01, betas=(0.8, 0.9), weight_decay=0.1,
                                      momentum_decay=0.01)),
    ("NAdam-decoupled-maximize", lambda o, p: o.NAdam(p, lr=0.02, weight_decay=0.3, eps=1e-3,
                                                      decoupled_weight_decay=True,
                                                      maximize=True)),
    ("RAdam", lambda o, p: o.RAdam(p, lr=0.01)),
    ("RAdam-wd", lambda o, p: o.RAdam(p, lr=0.01, betas=(0.8, 0.9), weight_decay=0.1)),
    ("RAdam-decoupled-maximize", lambda o, p: o.RAdam(p, lr=0.02, betas=(0.5, 0.7),
                                                      weight_decay=0.3, eps=1e-3,
                                                      decoupled_weight_decay=True,
                                                      maximize=True)),
    ("Adamax", lambda o, p: o.Adamax(p, lr=0.01)),
    ("Adamax-all", lambda o, p: o.Adamax(p, lr=0.05, betas=(0.7, 0.8), eps=1e-2,
                                         weight_decay=0.2, maximize=True)),
]


def _saved_and_loaded(obj):
    buf = io.BytesIO()
    gf.save(obj, buf)
    buf.seek(0)
    return gf.load(buf)


def _assert_state_dicts_match(ours, theirs, rtol, atol):
    assert ours["state"].keys() == theirs["state"].keys()
    for k, their_state in theirs["state"].items():
        assert set(ours["state"][k]) == set(their_state)
        for key, v in their_state.items():
            np.testing.assert_allclose(ours["state"][k][key].numpy(), v.numpy(), rtol=rtol,
                                       atol=atol, err_msg=key)
    for g_ours, g_theirs in zip(ours["param_groups"], theirs["param_groups"]):
        assert g_ours["params"] == g_theirs["params"]
        for key, v in g_ours.items():
            assert key in g_theirs, key
            assert g_theirs[key] == v or list(v) == list(g_theirs[key]), key


@pytest.mark.parametrize("name,make", CONFIGS, ids=[c[0] for c in CONFIGS])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_trajectory_matches_torch(name, make, dtype):
    pytest.importorskip("torch")
    ours, our_opt, _ = _run(make, "gradflow", dtype)
    theirs, their_opt, _ = _run(make, "torch", dtype)
    rtol, atol = (2e-5, 1e-6) if dtype == "float32" else (1e-12, 1e-14)
    for step, (a, b) in enumerate(zip(ours, theirs)):
        for x, y in zip(a, b):
            np.testing.assert_allclose(x, y, rtol=rtol, atol=atol, err_msg=f"step {step}")
    _assert_state_dicts_match(our_opt.state_dict(), their_opt.state_dict(), rtol, atol)


def _resumed(make, lib_name):
    """Run half the steps, save and load the optimizer's state_dict into a fresh optimizer
    (whose second group has another lr, which the load overrides) and run the rest."""
    lib, wrap = _lib(lib_name)
    half, opt, params = _run(make, lib_name, "float64", steps=STEPS // 2)
    sd = _saved_and_loaded(opt.state_dict()) if lib is gf else opt.state_dict()
    params2 = [wrap(p.detach().numpy(), "float64").requires_grad_() for p in params]
    opt2 = make(lib.optim, [{"params": [params2[0]]}, {"params": [params2[1]], "lr": 0.5}])
    opt2.load_state_dict(sd)
    assert opt2.param_groups[1]["lr"] == 0.03
    if lib is gf:  # the loaded state is a copy (PyTorch shares its 'step' tensors)
        for key, v in sd["state"][0].items():
            assert opt2.state[params2[0]][key] is not v
    rest, _, _ = _run(make, lib_name, "float64", opt=opt2, params=params2, first=STEPS // 2)
    return rest[-1]


@pytest.mark.parametrize("name,make", CONFIGS, ids=[c[0] for c in CONFIGS])
def test_state_dict_round_trip_continues(name, make):
    full, _, _ = _run(make, "gradflow", "float64")
    resumed = _resumed(make, "gradflow")
    # NAdam's float32 mu_product loads as float64 (PyTorch casts every state tensor but 'step'
    # to its parameter's dtype), so its continuation differs from the uninterrupted run in the
    # float32 rounding of mu_product; it matches PyTorch's own resumed run exactly
    tol = 1e-7 if name.startswith("NAdam") else 1e-13
    for a, b in zip(resumed, full[-1]):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
    if importlib.util.find_spec("torch") is not None:
        for a, b in zip(resumed, _resumed(make, "torch")):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def _odd_shapes_run(lib, make, starts, steps=8):
    """Parameters after `steps` steps with gradients that are non-contiguous views."""
    rng = np.random.default_rng(2)
    params = [lib.tensor(a, dtype=lib.float64).requires_grad_() for a in starts]
    opt = make(lib.optim, params)
    for _ in range(steps):
        for p in params:
            g = lib.tensor(rng.standard_normal(tuple(p.shape)[::-1]), dtype=lib.float64)
            p.grad = g.T if g.ndim == 2 else g
        opt.step()
    return [p.detach().numpy() for p in params]


ODD = [np.zeros((0, 3)), np.arange(12.0).reshape(4, 3) / 7, np.ones(1)]


@pytest.mark.parametrize("name,make", CONFIGS[::2], ids=[c[0] for c in CONFIGS[::2]])
def test_zero_size_size_one_and_noncontiguous_grads_match_torch(name, make):
    torch = pytest.importorskip("torch")
    for a, b in zip(_odd_shapes_run(gf, make, ODD), _odd_shapes_run(torch, make, ODD)):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name,make", CONFIGS, ids=[c[0] for c in CONFIGS])
def test_zero_dim_parameter(name, make):
    (value,) = _odd_shapes_run(gf, make, [np.array(1.5)])
    assert value.shape == ()
    torch = pytest.importorskip("torch")
    (expected,) = _odd_shapes_run(torch, make, [np.array(1.5)])
    np.testing.assert_allclose(value, expected, rtol=1e-12)


def test_first_steps_by_hand():
    """Hand-derived first steps (no torch needed): p = 1, grad = 2 * p, lr = 0.1."""
    def one_step(make):
        w = nn.Parameter(gf.ones(1, dtype="float64"))
        (w * w).sum().backward()
        make([w]).step()
        return w.item()

    # Adamax: m = 0.2, u = 2 + eps, p = 1 - 0.1 / 0.1 * 0.2 / u
    assert np.isclose(one_step(lambda p: optim.Adamax(p, lr=0.1)), 1 - 0.2 / (2 + 1e-8))
    # RAdam: rho_1 <= 5, so an SGD-with-momentum step: p = 1 - 0.1 * m / (1 - beta1) = 0.8
    assert np.isclose(one_step(lambda p: optim.RAdam(p, lr=0.1)), 0.8)
    # NAdam: mu_1 = 0.9 (1 - 0.96^0.004 / 2), denom = sqrt(0.004 / 0.001) = 2
    mu1 = 0.9 * (1 - 0.5 * 0.96**0.004)
    mu2 = 0.9 * (1 - 0.5 * 0.96**0.008)
    mu1_f32 = float(np.float32(mu1))
    expected = 1 - 0.1 * (1 - mu1) / (1 - mu1_f32) - 0.1 * mu2 / (1 - mu1_f32 * mu2) * 0.1
    assert np.isclose(one_step(lambda p: optim.NAdam(p, lr=0.1)), expected, rtol=1e-12)


@pytest.mark.parametrize("cls", [optim.NAdam, optim.RAdam, optim.Adamax])
def test_option_errors(cls):
    w = nn.Parameter(gf.zeros(2))
    with pytest.raises(ValueError, match=f"{cls.__name__}: Invalid learning rate"):
        cls([w], lr=-1)
    with pytest.raises(ValueError, match="Invalid beta parameter at index 0"):
        cls([w], betas=(1.0, 0.9))
    with pytest.raises(ValueError, match="Invalid epsilon value"):
        cls([w], eps=-1e-8)
    with pytest.raises(ValueError, match="Invalid weight_decay value"):
        cls([w], weight_decay=-0.1)
    with pytest.raises(TypeError, match="lr"):
        cls([w], lr="0.1")


def test_nadam_momentum_decay_checked_and_steps_skip_params_without_grad():
    w, frozen = nn.Parameter(gf.ones(2)), nn.Parameter(gf.ones(2))
    with pytest.raises(ValueError, match="NAdam: Invalid momentum_decay value"):
        optim.NAdam([w], momentum_decay=-1)
    for cls in (optim.NAdam, optim.RAdam, optim.Adamax):
        opt = cls([w, frozen], lr=0.1)
        w.grad = gf.ones(2)
        opt.step()
        assert frozen not in opt.state and np.all(frozen.detach().numpy() == 1)
        assert w.grad_fn is None and w.is_leaf


# ---------------------------------------------------------------- LBFGS
_rng = np.random.default_rng(1)
A, B = _rng.standard_normal((6, 4)), _rng.standard_normal(6)
W0, V0 = _rng.standard_normal(4), _rng.standard_normal(5) * 0.5


def _lbfgs_problem(lib_name, dtype="float64", **kw):
    """Least squares in w plus a Rosenbrock valley in v: the optimizer and its closure."""
    lib, wrap = _lib(lib_name)
    w, v = wrap(W0, dtype).requires_grad_(), wrap(V0, dtype).requires_grad_()
    a, b = wrap(A, dtype), wrap(B, dtype)
    opt = lib.optim.LBFGS([w, v], **kw)

    def closure():
        opt.zero_grad()
        r = a @ w - b
        loss = (r * r).sum() + ((1 - v) ** 2).sum() + 10 * ((v[1:] - v[:-1] ** 2) ** 2).sum()
        loss.backward()
        return loss

    return opt, closure, [w, v]


def _lbfgs_run(lib_name, steps=4, dtype="float64", **kw):
    opt, closure, params = _lbfgs_problem(lib_name, dtype, **kw)
    out = []
    for _ in range(steps):
        loss = opt.step(closure)
        state = opt.state[params[0]]
        out.append((float(loss.detach()), [p.detach().numpy().copy() for p in params],
                    state["func_evals"], state["n_iter"]))
    return out, opt


LBFGS_CONFIGS = [
    {},
    {"line_search_fn": "strong_wolfe"},
    {"lr": 0.5, "max_iter": 7, "history_size": 3},
    {"line_search_fn": "strong_wolfe", "history_size": 2, "max_iter": 9, "max_eval": 11},
    {"line_search_fn": "strong_wolfe", "tolerance_grad": 1e-3, "tolerance_change": 1e-5},
    {"max_iter": 30, "tolerance_change": 1e-3, "lr": 0.8},
    {"line_search_fn": "strong_wolfe", "max_eval": 3},
]


@pytest.mark.parametrize("kw", LBFGS_CONFIGS, ids=[str(k) for k in LBFGS_CONFIGS])
def test_lbfgs_matches_torch(kw):
    pytest.importorskip("torch")
    ours, our_opt = _lbfgs_run("gradflow", **kw)
    theirs, their_opt = _lbfgs_run("torch", **kw)
    for step, (a, b) in enumerate(zip(ours, theirs)):
        assert a[2:] == b[2:], f"step {step}: (func_evals, n_iter)"
        np.testing.assert_allclose(a[0], b[0], rtol=1e-10, err_msg=f"loss, step {step}")
        for x, y in zip(a[1], b[1]):
            np.testing.assert_allclose(x, y, rtol=1e-10, atol=1e-12, err_msg=f"step {step}")
    ours_sd, theirs_sd = our_opt.state_dict(), their_opt.state_dict()
    assert ours_sd["param_groups"][0] == theirs_sd["param_groups"][0]
    ours_state, theirs_state = ours_sd["state"][0], theirs_sd["state"][0]
    assert set(ours_state) == set(theirs_state)
    for key, v in theirs_state.items():
        mine = ours_state[key]
        if isinstance(v, list):
            assert len(mine) == len(v), key
            mine = [np.nan if m is None else np.asarray(m.numpy() if hasattr(m, "numpy")
                                                        else m, float) for m in mine]
            v = [np.nan if m is None else np.asarray(m, float) for m in v]
        np.testing.assert_allclose(np.asarray(mine, float) if not hasattr(mine, "numpy")
                                   else mine.numpy(), np.asarray(v, float), rtol=1e-9,
                                   atol=1e-10, err_msg=key)  # y = g - g_prev cancels


def test_lbfgs_float32_matches_torch():
    pytest.importorskip("torch")
    for kw in ({}, {"line_search_fn": "strong_wolfe"}):
        ours, _ = _lbfgs_run("gradflow", steps=2, dtype="float32", **kw)
        theirs, _ = _lbfgs_run("torch", steps=2, dtype="float32", **kw)
        for a, b in zip(ours, theirs):
            for x, y in zip(a[1], b[1]):
                np.testing.assert_allclose(x, y, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("kw", LBFGS_CONFIGS[:4], ids=[str(k) for k in LBFGS_CONFIGS[:4]])
def test_lbfgs_state_dict_round_trip_continues_identically(kw):
    full, _ = _lbfgs_run("gradflow", steps=4, **kw)
    opt, closure, params = _lbfgs_problem("gradflow", **kw)
    for _ in range(2):
        opt.step(closure)
    sd = _saved_and_loaded(opt.state_dict())
    opt2, closure2, params2 = _lbfgs_problem("gradflow", **kw)
    with gf.no_grad():
        for p, q in zip(params2, params):
            p.copy_(q)
    opt2.load_state_dict(sd)
    for _ in range(2):
        opt2.step(closure2)
    for a, b in zip(params2, full[-1][1]):
        np.testing.assert_allclose(a.detach().numpy(), b, rtol=1e-13, atol=1e-15)
    assert opt2.state[params2[0]]["func_evals"] == full[-1][2]


def test_lbfgs_solves_least_squares():
    """No torch needed: a convex quadratic is minimised to the least-squares solution, and a
    parameter the loss does not use (grad None) stays put."""
    for line_search in (None, "strong_wolfe"):
        w = nn.Parameter(gf.tensor(W0, dtype="float64"))
        unused = nn.Parameter(gf.ones(2, dtype="float64"))
        a, b = gf.tensor(A), gf.tensor(B)
        opt = optim.LBFGS([w, unused], line_search_fn=line_search, max_iter=100,
                          tolerance_grad=1e-9, tolerance_change=1e-15)

        def closure():
            opt.zero_grad()
            r = a @ w - b
            loss = (r * r).sum()
            loss.backward()
            return loss

        first = opt.step(closure)
        assert np.isclose(first.item(), np.sum((A @ W0 - B) ** 2))
        expected = np.linalg.lstsq(A, B, rcond=None)[0]
        np.testing.assert_allclose(w.detach().numpy(), expected, rtol=1e-6, atol=1e-8)
        assert np.all(unused.detach().numpy() == 1) and w.is_leaf and w.grad_fn is None
        evals = opt.state[w]["func_evals"]
        opt.step(closure)  # at the optimum: one evaluation, max|g| <= tolerance_grad
        assert opt.state[w]["func_evals"] == evals + 1


def test_lbfgs_errors():
    w = nn.Parameter(gf.zeros(2))
    with pytest.raises(ValueError, match="LBFGS doesn't support per-parameter options"):
        optim.LBFGS([{"params": [w]}, {"params": [nn.Parameter(gf.zeros(1))]}])
    opt = optim.LBFGS([w])
    with pytest.raises(ValueError, match="LBFGS doesn't support per-parameter options"):
        opt.add_param_group({"params": [nn.Parameter(gf.zeros(1))]})
    with pytest.raises(ValueError, match="line_search_fn must be None or 'strong_wolfe'"):
        optim.LBFGS([w], line_search_fn="armijo")
    with pytest.raises(ValueError, match="LBFGS: max_iter must be a positive integer"):
        optim.LBFGS([w], max_iter=0)
    with pytest.raises(ValueError, match="LBFGS: history_size must be a positive integer"):
        optim.LBFGS([w], history_size=-1)
    with pytest.raises(ValueError, match="LBFGS: Invalid learning rate"):
        optim.LBFGS([w], lr=-1)
    with pytest.raises(TypeError, match="LBFGS.step: a closure .* is required"):
        opt.step(None)
    with pytest.raises(TypeError, match="the closure must return the loss"):
        opt.step(lambda: None)
    assert optim.LBFGS([w], max_iter=8).param_groups[0]["max_eval"] == 10


def test_lbfgs_scalar_and_zero_size_params():
    w = gf.tensor(3.0, dtype=gf.float64, requires_grad=True)
    empty = gf.zeros(0, 2, dtype=gf.float64, requires_grad=True)
    opt = optim.LBFGS([w, empty], line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = (w - 1) ** 2 + (empty * empty).sum()
        loss.backward()
        return loss

    assert opt.step(closure).item() == 4.0
    assert abs(w.item() - 1) < 1e-9 and empty.shape == (0, 2)
