"""Losses: gradcheck in float64 (always), every option against PyTorch (when installed)."""

import numpy as np
import pytest

import gradflow as gf
import gradflow.nn as nn
import gradflow.nn.functional as F
from gradflow.autograd import gradcheck

RNG = np.random.default_rng(0)
REDUCTIONS = ("mean", "sum", "none")


def _t(a, rg=False):
    return gf.tensor(a, requires_grad=rg)


def _np(t):
    return t.detach().numpy()


# ---------------------------------------------------------------- data
LOGITS = RNG.standard_normal((5, 4))
LOGITS_ND = RNG.standard_normal((3, 4, 2, 3))
LABELS = np.array([0, 3, 1, 3, 2])
LABELS_IGN = np.array([0, -100, 1, 3, -100])
LABELS_ND = RNG.integers(0, 4, (3, 2, 3))
PROBS = np.abs(RNG.standard_normal((5, 4)))
PROBS /= PROBS.sum(1, keepdims=True)
CLASS_W = np.array([0.5, 2.0, 1.0, 1.5])
X = RNG.standard_normal((4, 3))
Y = RNG.standard_normal((4, 3))
P = 1 / (1 + np.exp(-RNG.standard_normal((4, 3))))
B = (RNG.random((4, 3)) > 0.5).astype(np.float64)
ELEM_W = RNG.random((4, 3))
POS_W = np.array([0.5, 1.0, 3.0])

# (name, our call, torch call name, inputs, kwargs): inputs are (array, differentiable?)
CASES = []
for red in REDUCTIONS:
    for kw in ({}, {"weight": CLASS_W}, {"ignore_index": -100}, {"label_smoothing": 0.2},
               {"weight": CLASS_W, "label_smoothing": 0.1}):
        labels = LABELS_IGN if "ignore_index" in kw or "label_smoothing" in kw else LABELS
        CASES.append(("cross_entropy", [(LOGITS, True), (labels, False)], dict(kw, reduction=red)))
    CASES.append(("cross_entropy", [(LOGITS_ND, True), (LABELS_ND, False)],
                  {"reduction": red, "weight": CLASS_W, "label_smoothing": 0.3}))
    CASES.append(("cross_entropy", [(LOGITS[0], True), (LABELS[1], False)], {"reduction": red}))
    for kw in ({}, {"weight": CLASS_W}, {"label_smoothing": 0.25, "weight": CLASS_W}):
        CASES.append(("cross_entropy", [(LOGITS, True), (PROBS, False)], dict(kw, reduction=red)))
    CASES.append(("nll_loss", [(LOGITS, True), (LABELS_IGN, False)],
                  {"reduction": red, "weight": CLASS_W}))
    CASES.append(("nll_loss", [(LOGITS_ND, True), (LABELS_ND, False)], {"reduction": red}))
    CASES.append(("mse_loss", [(X, True), (Y, True)], {"reduction": red}))
    CASES.append(("l1_loss", [(X, True), (Y, True)], {"reduction": red}))
    for beta in (1.0, 0.5, 0.0):
        CASES.append(("smooth_l1_loss", [(X, True), (Y, True)], {"reduction": red, "beta": beta}))
    for delta in (1.0, 0.3):
        CASES.append(("huber_loss", [(X, True), (Y, True)], {"reduction": red, "delta": delta}))
    CASES.append(("binary_cross_entropy", [(P, True), (B, False)], {"reduction": red}))
    CASES.append(("binary_cross_entropy", [(P, True), (P[::-1].copy(), True)],
                  {"reduction": red, "weight": ELEM_W}))
    for kw in ({}, {"weight": ELEM_W}, {"pos_weight": POS_W}, {"weight": ELEM_W,
                                                               "pos_weight": POS_W}):
        CASES.append(("binary_cross_entropy_with_logits", [(X * 5, True), (P, True)],
                      dict(kw, reduction=red)))
    for log_target in (False, True):
        target = np.log(PROBS) if log_target else PROBS
        CASES.append(("kl_div", [(np.log(PROBS[::-1].copy()), True), (target, True)],
                      {"reduction": red, "log_target": log_target}))
CASES.append(("kl_div", [(np.log(PROBS[::-1].copy()), True), (PROBS, True)],
              {"reduction": "batchmean"}))
PROBS_ZERO = PROBS.copy()
PROBS_ZERO[0, 0] = 0.0
CASES.append(("kl_div", [(np.log(PROBS), True), (PROBS_ZERO, False)], {"reduction": "sum"}))


def _ids():
    return [f"{i}-{c[0]}-{'-'.join(f'{k}' for k in c[2])}" for i, c in enumerate(CASES)]


def _kwargs(kw, make):
    return {k: make(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}


@pytest.mark.parametrize("name,inputs,kw", CASES, ids=_ids())
def test_loss_matches_torch(name, inputs, kw):
    torch = pytest.importorskip("torch")
    ours = [_t(a, rg and a.dtype.kind == "f") for a, rg in inputs]
    theirs = [torch.tensor(a, requires_grad=bool(rg and a.dtype.kind == "f"))
              for a, rg in inputs]
    out = getattr(F, name)(*ours, **_kwargs(kw, gf.tensor))
    ref = getattr(torch.nn.functional, name)(*theirs, **_kwargs(kw, torch.tensor))
    np.testing.assert_allclose(_np(out), ref.detach().numpy(), rtol=1e-10, atol=1e-12)
    up = RNG.standard_normal(tuple(ref.shape))
    out.backward(gf.tensor(up))
    ref.backward(torch.tensor(up))
    for a, b in zip(ours, theirs):
        if b.requires_grad:
            np.testing.assert_allclose(_np(a.grad), b.grad.numpy(), rtol=1e-9, atol=1e-12)


GRADCHECK = [c for c in CASES if c[2].get("reduction") != "none" or c[0] == "mse_loss"]


@pytest.mark.parametrize("name,inputs,kw", GRADCHECK[::3],
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(GRADCHECK[::3])])
def test_loss_gradcheck(name, inputs, kw):
    args = [_t(a, rg and a.dtype.kind == "f") for a, rg in inputs]
    fn = getattr(F, name)
    kwargs = _kwargs(kw, gf.tensor)
    assert gradcheck(lambda *xs: fn(*xs, **kwargs), tuple(args))


def test_loss_modules_match_functional():
    x, y = _t(LOGITS, True), _t(LABELS)
    w = _t(CLASS_W)
    pairs = [
        (nn.CrossEntropyLoss(weight=w, label_smoothing=0.1),
         F.cross_entropy(x, y, weight=w, label_smoothing=0.1)),
        (nn.NLLLoss(reduction="sum"), F.nll_loss(x, y, reduction="sum")),
    ]
    for module, expected in pairs:
        assert np.allclose(_np(module(x, y)), _np(expected))
    a, b = _t(X), _t(Y)
    assert np.allclose(_np(nn.MSELoss()(a, b)), _np(F.mse_loss(a, b)))
    assert np.allclose(_np(nn.L1Loss(reduction="sum")(a, b)), _np(F.l1_loss(a, b, reduction="sum")))
    assert np.allclose(_np(nn.SmoothL1Loss(beta=0.5)(a, b)), _np(F.smooth_l1_loss(a, b, beta=0.5)))
    assert np.allclose(_np(nn.HuberLoss(delta=0.5)(a, b)), _np(F.huber_loss(a, b, delta=0.5)))
    p, t = _t(P), _t(B)
    assert np.allclose(_np(nn.BCELoss()(p, t)), _np(F.binary_cross_entropy(p, t)))
    pw = _t(POS_W)
    mod = nn.BCEWithLogitsLoss(pos_weight=pw)
    assert "pos_weight" in dict(mod.named_buffers())
    assert np.allclose(_np(mod(a, p)),
                       _np(F.binary_cross_entropy_with_logits(a, p, pos_weight=pw)))
    lp = _t(np.log(PROBS))
    assert np.allclose(_np(nn.KLDivLoss(reduction="batchmean")(lp, _t(PROBS))), 0.0)
    assert nn.MSELoss(size_average=False).reduction == "sum"
    assert nn.L1Loss(reduce=False).reduction == "none"
    assert repr(nn.CrossEntropyLoss()) == "CrossEntropyLoss()"


def test_numerical_stability():
    big = _t(np.array([[1000.0, -1000.0, 0.0]]), True)
    loss = F.cross_entropy(big, _t(np.array([1])))
    assert np.isclose(loss.item(), 2000.0)
    loss.backward()
    assert np.all(np.isfinite(_np(big.grad)))
    z = _t(np.array([800.0, -800.0]), True)
    out = F.binary_cross_entropy_with_logits(z, _t(np.array([0.0, 1.0])), reduction="none")
    assert np.allclose(_np(out), [800.0, 800.0])
    p = _t(np.array([0.0, 1.0]), True)
    out = F.binary_cross_entropy(p, _t(np.array([1.0, 0.0])), reduction="none")
    assert np.allclose(_np(out), [100.0, 100.0])  # log clamped at -100
    out.sum().backward()
    assert np.all(np.isfinite(_np(p.grad)))


def test_loss_errors():
    with pytest.raises(IndexError, match="Target 7 is out of bounds"):
        F.cross_entropy(_t(LOGITS), _t(np.array([0, 1, 7, 0, 0])))
    with pytest.raises(ValueError, match="expected target of shape"):
        F.nll_loss(_t(LOGITS), _t(np.array([0, 1])))
    with pytest.raises(RuntimeError, match="between 0 and 1"):
        F.binary_cross_entropy(_t(X), _t(B))
    with pytest.raises(ValueError, match="different to the input size"):
        F.binary_cross_entropy_with_logits(_t(X), _t(B[:2]))
    with pytest.raises(ValueError, match="is not a valid value for reduction"):
        F.mse_loss(_t(X), _t(Y), reduction="avg")
    with pytest.raises(ValueError, match="label_smoothing"):
        F.cross_entropy(_t(LOGITS), _t(LABELS), label_smoothing=1.5)


def test_all_ignored_mean_is_nan():
    out = F.cross_entropy(_t(LOGITS), _t(np.full(5, -100)))
    assert np.isnan(out.item())
