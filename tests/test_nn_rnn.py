"""Recurrent cells and layers (gradflow.nn.rnn) against PyTorch with the same weights, plus
gradcheck through them, hypothesis shapes and bad-input errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from parity import check_forward_backward, needs_torch, pair, same_layout, twin

import gradflow as gf
import gradflow.nn as nn
from gradflow.autograd import gradcheck

CELLS = {"RNNCell": {}, "RNNCell_relu": {"nonlinearity": "relu"}, "LSTMCell": {},
         "GRUCell": {}, "GRUCell_nobias": {"bias": False}}


def _cell(name):
    return name.split("_")[0], CELLS[name]


@needs_torch
@pytest.mark.parametrize("name", CELLS)
@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("with_state", [True, False])
def test_cell_matches_torch(name, batched, with_state):
    import torch

    cls, kw = _cell(name)
    g, t = twin(getattr(nn, cls)(3, 4, **kw), getattr(torch.nn, cls)(3, 4, **kw))
    rng = np.random.default_rng(1)
    shape = (2,) if batched else ()
    gx, tx = pair(rng.standard_normal(shape + (3,)))
    gin, tin = [gx], [tx]
    if with_state:
        states = [pair(rng.standard_normal(shape + (4,))) for _ in range(1 + (cls == "LSTMCell"))]
        gs, ts = [s[0] for s in states], [s[1] for s in states]
        gin.append(tuple(gs) if cls == "LSTMCell" else gs[0])
        tin.append(tuple(ts) if cls == "LSTMCell" else ts[0])
    check_forward_backward(g, t, gin, tin)
    for a, b in zip(gs if with_state else [], ts if with_state else []):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), atol=1e-10)


LAYERS = [
    ("RNN", {}),
    ("RNN", {"nonlinearity": "relu", "num_layers": 2}),
    ("LSTM", {"num_layers": 2, "bidirectional": True}),
    ("LSTM", {"batch_first": True, "proj_size": 2}),
    ("LSTM", {"bias": False, "num_layers": 3, "bidirectional": True, "proj_size": 3}),
    ("GRU", {"bidirectional": True, "batch_first": True}),
    ("GRU", {"num_layers": 2, "dropout": 0.5}),  # dropout is off in eval mode
]


@needs_torch
@pytest.mark.parametrize("cls,kw", LAYERS)
@pytest.mark.parametrize("with_state", [True, False])
def test_layer_matches_torch(cls, kw, with_state):
    import torch

    g, t = twin(getattr(nn, cls)(3, 5, **kw), getattr(torch.nn, cls)(3, 5, **kw))
    g.eval()
    t.eval()
    rng = np.random.default_rng(2)
    layers = kw.get("num_layers", 1) * (2 if kw.get("bidirectional") else 1)
    h_size = kw.get("proj_size", 0) or 5
    gx, tx = pair(rng.standard_normal((2, 4, 3) if kw.get("batch_first") else (4, 2, 3)))
    gin, tin = [gx], [tx]
    if with_state:
        gh, th = pair(rng.standard_normal((layers, 2, h_size)))
        if cls == "LSTM":
            gc, tc = pair(rng.standard_normal((layers, 2, 5)))
            gin.append((gh, gc))
            tin.append((th, tc))
        else:
            gin.append(gh)
            tin.append(th)
    check_forward_backward(g, t, gin, tin)


@needs_torch
@pytest.mark.parametrize("cls", ["RNN", "LSTM", "GRU"])
def test_unbatched_layer_matches_torch(cls):
    import torch

    g, t = twin(getattr(nn, cls)(2, 3, num_layers=2), getattr(torch.nn, cls)(2, 3, num_layers=2))
    gx, tx = pair(np.random.default_rng(3).standard_normal((5, 2)))
    check_forward_backward(g, t, [gx], [tx])


@needs_torch
@given(st.integers(1, 4), st.integers(0, 3), st.booleans(), st.sampled_from(["LSTM", "GRU"]))
def test_layer_shapes_match_torch(steps, batch, batch_first, cls):
    import torch

    g, t = twin(getattr(nn, cls)(2, 3, batch_first=batch_first),
                getattr(torch.nn, cls)(2, 3, batch_first=batch_first))
    shape = (batch, steps, 2) if batch_first else (steps, batch, 2)
    gx, tx = pair(np.random.default_rng(steps).standard_normal(shape))
    check_forward_backward(g, t, [gx], [tx])


@needs_torch
def test_state_dict_loads_both_ways_and_layout():
    import torch

    for kw in ({"num_layers": 2, "bidirectional": True, "proj_size": 2}, {}):
        same_layout(nn.LSTM(4, 6, **kw), torch.nn.LSTM(4, 6, **kw))
    g = nn.GRU(4, 6, num_layers=2)
    t = torch.nn.GRU(4, 6, num_layers=2)
    t.load_state_dict({k: torch.from_numpy(v.numpy()) for k, v in g.state_dict().items()})
    np.testing.assert_array_equal(t.weight_hh_l1.detach().numpy(), g.weight_hh_l1.detach().numpy())


def test_gradcheck_lstm_and_gru():
    gf.manual_seed(0)
    for layer in (nn.LSTM(2, 3, bidirectional=True, proj_size=1).double(),
                  nn.GRU(2, 3, num_layers=2).double(), nn.RNN(2, 3).double()):
        x = gf.randn(3, 2, 2, dtype=gf.float64, requires_grad=True)
        params = list(layer.parameters())
        assert gradcheck(lambda x, *_: layer(x)[0], (x, *params))
    cell = nn.LSTMCell(2, 3).double()
    x = gf.randn(2, 2, dtype=gf.float64, requires_grad=True)
    h = gf.randn(2, 3, dtype=gf.float64, requires_grad=True)
    c = gf.randn(2, 3, dtype=gf.float64, requires_grad=True)
    assert gradcheck(lambda x, h, c: cell(x, (h, c)), (x, h, c))


def test_initialisation_bounds_and_repr():
    gf.manual_seed(0)
    lstm = nn.LSTM(3, 16, num_layers=2)
    for p in lstm.parameters():
        assert float(p.abs().max()) <= 0.25
    assert len(lstm.all_weights) == 2 and len(lstm.all_weights[0]) == 4
    assert repr(lstm) == "LSTM(3, 16, num_layers=2)"
    assert repr(nn.GRUCell(3, 4, bias=False)) == "GRUCell(3, 4, bias=False)"
    assert repr(nn.RNNCell(3, 4, nonlinearity="relu")) == "RNNCell(3, 4, nonlinearity='relu')"


def test_dropout_between_layers_only_in_training():
    gf.manual_seed(0)
    gru = nn.GRU(2, 4, num_layers=2, dropout=0.9)
    x = gf.randn(3, 2, 2)
    gru.eval()
    a, b = gru(x)[0], gru(x)[0]
    assert gf.equal(a, b)
    gru.train()
    assert not gf.equal(gru(x)[0], a)


def test_bad_inputs_name_the_layer():
    with pytest.raises(ValueError, match=r"LSTM: expected input of shape \(L, N, 3\)"):
        nn.LSTM(3, 4)(gf.zeros(2, 2, 5))
    with pytest.raises(ValueError, match=r"GRU: expected hx of shape \(1, 2, 4\)"):
        nn.GRU(3, 4)(gf.zeros(5, 2, 3), gf.zeros(2, 2, 4))
    with pytest.raises(TypeError, match="LSTM: hx must be a tuple"):
        nn.LSTM(3, 4)(gf.zeros(5, 2, 3), gf.zeros(1, 2, 4))
    with pytest.raises(ValueError, match="at least one step"):
        nn.RNN(3, 4)(gf.zeros(0, 2, 3))
    with pytest.raises(ValueError, match="proj_size"):
        nn.LSTM(3, 4, proj_size=4)
    with pytest.raises(ValueError, match="nonlinearity"):
        nn.RNNCell(3, 4, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match=r"LSTMCell: c_0 must have shape \(2, 4\)"):
        nn.LSTMCell(3, 4)(gf.zeros(2, 3), (gf.zeros(2, 4), gf.zeros(2, 5)))
    with pytest.raises(ValueError, match=r"GRUCell: expected input of shape \(N, 3\)"):
        nn.GRUCell(3, 4)(gf.zeros(2, 4))
    with pytest.raises(TypeError, match="RNNCell: argument 'input' must be a Tensor"):
        nn.RNNCell(3, 4)([1.0, 2.0, 3.0])
