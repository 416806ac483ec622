"""Attention and the Transformer family against PyTorch with the same weights (forward and
every gradient, float64): F.scaled_dot_product_attention, MultiheadAttention (masks, extra
keys, kdim/vdim, batch_first, unbatched), the encoder and decoder layers and stacks, and
nn.Transformer; state dicts load both ways."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from parity import check_forward_backward, needs_torch, pair, same_layout, twin

import gradflow as gf
import gradflow.nn as nn
import gradflow.nn.functional as F
from gradflow.autograd import gradcheck

pytestmark = pytest.mark.filterwarnings("ignore:enable_nested_tensor is True")


def _both(array):
    """gradflow and torch tensors of an array (bool or float), not requiring grad."""
    import torch

    return gf.tensor(array), torch.tensor(array)


# ---------------------------------------------------------------- scaled_dot_product_attention
class _SDPA:
    """F.scaled_dot_product_attention as a module, so check_forward_backward can call it."""

    def __init__(self, m, **kw):
        self.fn = (F if m is gf else m.nn.functional).scaled_dot_product_attention
        self.kw = kw

    def __call__(self, *args, **kw):
        return self.fn(*args, **self.kw, **kw)

    def named_parameters(self):
        return iter(())


SDPA_CASES = [
    ({}, (2, 3, 4), (2, 5, 4), (2, 5, 6), None),
    ({"is_causal": True}, (2, 2, 4, 3), (2, 2, 4, 3), (2, 2, 4, 3), None),
    ({"is_causal": True}, (3, 4), (5, 4), (5, 2), None),  # top-left aligned when L != S
    ({"scale": 0.7}, (1, 3, 4), (1, 2, 4), (1, 2, 4), "bool"),
    ({}, (2, 2, 3, 4), (2, 2, 5, 4), (2, 2, 5, 4), "float"),
    ({"enable_gqa": True}, (1, 4, 3, 2), (1, 2, 5, 2), (1, 2, 5, 3), None),
]


@needs_torch
@pytest.mark.parametrize("kw,q,k,v,mask", SDPA_CASES)
def test_sdpa_matches_torch(kw, q, k, v, mask):
    import torch

    rng = np.random.default_rng(0)
    ins = [pair(rng.standard_normal(s)) for s in (q, k, v)]
    gk, tk = {}, {}
    if mask is not None:
        shape = (q[-2], k[-2])
        m = rng.random(shape) > 0.4 if mask == "bool" else rng.standard_normal(shape)
        if mask == "bool":
            m[:, 0] = True  # no row fully masked (that row is NaN in both)
        gk["attn_mask"], tk["attn_mask"] = _both(m)
    check_forward_backward(_SDPA(gf, **kw), _SDPA(torch, **kw), [a for a, _ in ins],
                           [b for _, b in ins], gf_kwargs=gk, torch_kwargs=tk)


@needs_torch
@given(st.integers(1, 3), st.integers(1, 4), st.integers(1, 4), st.integers(1, 3),
       st.booleans())
def test_sdpa_shapes_match_torch(batch, length, source, dim, causal):
    import torch

    rng = np.random.default_rng(length * 7 + source)
    ins = [pair(rng.standard_normal((batch, n, dim))) for n in (length, source, source)]
    check_forward_backward(_SDPA(gf, is_causal=causal), _SDPA(torch, is_causal=causal),
                           [a for a, _ in ins], [b for _, b in ins])


def test_sdpa_gradcheck_and_errors():
    q, k, v = (gf.randn(2, 3, 2, dtype=gf.float64, requires_grad=True) for _ in range(3))
    assert gradcheck(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
                     (q, k, v))
    with pytest.raises(ValueError, match="either attn_mask or is_causal"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=gf.ones(3, 3, dtype=gf.bool),
                                       is_causal=True)
    with pytest.raises(ValueError, match=r"expected query \(\*, L, E\)"):
        F.scaled_dot_product_attention(q, gf.zeros(2, 3, 5), v)
    with pytest.raises(TypeError, match="attn_mask must be a bool or floating-point"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=gf.ones(3, 3, dtype=gf.int64))


# ---------------------------------------------------------------- MultiheadAttention
MHA_CASES = [
    {}, {"add_bias_kv": True, "add_zero_attn": True}, {"kdim": 3, "vdim": 5},
    {"bias": False, "batch_first": True}, {"add_bias_kv": True, "batch_first": True},
]


def _mha_inputs(rng, kw, unbatched=False):
    shapes = [(4, 3, 8), (6, 3, kw.get("kdim", 8)), (6, 3, kw.get("vdim", 8))]
    arrays = [rng.standard_normal(s) for s in shapes]
    if unbatched:
        arrays = [a[:, 0] for a in arrays]
    elif kw.get("batch_first"):
        arrays = [a.transpose(1, 0, 2) for a in arrays]
    return [pair(a) for a in arrays]


@needs_torch
@pytest.mark.parametrize("kw", MHA_CASES)
@pytest.mark.parametrize("masks", ["none", "bool", "float", "heads"])
@pytest.mark.parametrize("average", [True, False])
def test_multihead_attention_matches_torch(kw, masks, average):
    import torch

    g, t = twin(nn.MultiheadAttention(8, 2, **kw), torch.nn.MultiheadAttention(8, 2, **kw))
    rng = np.random.default_rng(1)
    ins = _mha_inputs(rng, kw)
    gk, tk = {"average_attn_weights": average}, {"average_attn_weights": average}
    if masks == "bool":
        attn = rng.random((4, 6)) > 0.7
        padding = np.zeros((3, 6), bool)
        padding[1, 3:] = True
        gk["attn_mask"], tk["attn_mask"] = _both(attn)
        gk["key_padding_mask"], tk["key_padding_mask"] = _both(padding)
    elif masks == "float":
        gk["attn_mask"], tk["attn_mask"] = _both(rng.standard_normal((4, 6)))
        gk["key_padding_mask"], tk["key_padding_mask"] = _both(rng.standard_normal((3, 6)))
    elif masks == "heads":
        gk["attn_mask"], tk["attn_mask"] = _both(rng.standard_normal((6, 4, 6)))
    check_forward_backward(g, t, [a for a, _ in ins], [b for _, b in ins],
                           gf_kwargs=gk, torch_kwargs=tk)


@needs_torch
def test_multihead_attention_unbatched_and_without_weights():
    import torch

    g, t = twin(nn.MultiheadAttention(8, 4), torch.nn.MultiheadAttention(8, 4))
    ins = _mha_inputs(np.random.default_rng(2), {}, unbatched=True)
    check_forward_backward(g, t, [a for a, _ in ins], [b for _, b in ins])
    out, weights = g(*[a for a, _ in ins], need_weights=False)
    assert weights is None and tuple(out.shape) == (4, 8)


@needs_torch
def test_multihead_attention_layout_and_init():
    import torch

    for kw in MHA_CASES:
        same_layout(nn.MultiheadAttention(8, 2, **kw), torch.nn.MultiheadAttention(8, 2, **kw))
    mha = nn.MultiheadAttention(8, 2)
    assert float(mha.in_proj_bias.abs().sum()) == 0 and float(mha.out_proj.bias.abs().sum()) == 0
    assert type(mha.out_proj).__name__ == "NonDynamicallyQuantizableLinear"


def test_multihead_attention_dropout_and_errors():
    gf.manual_seed(0)
    mha = nn.MultiheadAttention(4, 2, dropout=0.5)
    x = gf.randn(3, 2, 4)
    mha.eval()
    assert gf.equal(mha(x, x, x)[0], mha(x, x, x)[0])
    mha.train()
    assert not gf.allclose(mha(x, x, x)[1], mha(x, x, x)[1])
    with pytest.raises(ValueError, match="embed_dim \\(5\\) must be divisible by num_heads"):
        nn.MultiheadAttention(5, 2)
    with pytest.raises(ValueError, match="expected key with 4 features"):
        mha(x, gf.zeros(3, 2, 5), x)
    with pytest.raises(ValueError, match=r"key_padding_mask must have shape \(2, 3\)"):
        mha(x, x, x, key_padding_mask=gf.zeros(3, 3, dtype=gf.bool))
    with pytest.raises(ValueError, match=r"attn_mask must have shape \(3, 3\) or \(4, 3, 3\)"):
        mha(x, x, x, attn_mask=gf.zeros(2, 3))
    with pytest.raises(RuntimeError, match="is_causal is a hint"):
        mha(x, x, x, is_causal=True)


def test_multihead_attention_gradcheck():
    gf.manual_seed(0)
    mha = nn.MultiheadAttention(4, 2, add_bias_kv=True).double()
    q = gf.randn(3, 1, 4, dtype=gf.float64, requires_grad=True)
    k = gf.randn(2, 1, 4, dtype=gf.float64, requires_grad=True)
    assert gradcheck(lambda q, k, *_: mha(q, k, k)[0], (q, k, *mha.parameters()))


# ---------------------------------------------------------------- Transformer
def _layer_kw(kw):
    return dict(dim_feedforward=16, dropout=0.0, **kw)


LAYER_CASES = [{}, {"norm_first": True, "activation": "gelu"}, {"batch_first": True},
               {"bias": False}]


def _seq(rng, length, kw, n=3, d=8):
    a = rng.standard_normal((n, length, d) if kw.get("batch_first") else (length, n, d))
    return pair(a)


@needs_torch
@pytest.mark.parametrize("kw", LAYER_CASES)
def test_encoder_layer_and_stack_match_torch(kw):
    import torch

    g, t = twin(nn.TransformerEncoderLayer(8, 2, **_layer_kw(kw)),
                torch.nn.TransformerEncoderLayer(8, 2, **_layer_kw(kw)))
    rng = np.random.default_rng(3)
    src = _seq(rng, 5, kw)
    padding = np.zeros((3, 5), bool)
    padding[2, 3:] = True
    gm, tm = _both(padding)
    check_forward_backward(g, t, [src[0]], [src[1]], gf_kwargs={"src_key_padding_mask": gm},
                           torch_kwargs={"src_key_padding_mask": tm})
    g.zero_grad()  # torch's deepcopy of a Parameter drops its grad; gradflow's keeps it
    t.zero_grad()
    ge = nn.TransformerEncoder(g, 2, norm=nn.LayerNorm(8))
    te = torch.nn.TransformerEncoder(t, 2, norm=torch.nn.LayerNorm(8), enable_nested_tensor=False)
    ge, te = twin(ge, te)
    causal = nn.Transformer.generate_square_subsequent_mask(5, dtype=gf.float64)
    check_forward_backward(ge, te, [src[0]], [src[1]],
                           gf_kwargs={"mask": causal, "is_causal": True},
                           torch_kwargs={"mask": torch.from_numpy(causal.numpy()),
                                         "is_causal": True})


@needs_torch
@pytest.mark.parametrize("kw", LAYER_CASES)
def test_decoder_layer_and_stack_match_torch(kw):
    import torch

    g, t = twin(nn.TransformerDecoderLayer(8, 2, **_layer_kw(kw)),
                torch.nn.TransformerDecoderLayer(8, 2, **_layer_kw(kw)))
    rng = np.random.default_rng(4)
    tgt, memory = _seq(rng, 4, kw), _seq(rng, 6, kw)
    causal = nn.Transformer.generate_square_subsequent_mask(4, dtype=gf.float64)
    gm, tm = causal, gf_to_torch(causal)
    check_forward_backward(g, t, [tgt[0], memory[0]], [tgt[1], memory[1]],
                           gf_kwargs={"tgt_mask": gm, "tgt_is_causal": True},
                           torch_kwargs={"tgt_mask": tm, "tgt_is_causal": True})
    g.zero_grad()
    t.zero_grad()
    gd, td = twin(nn.TransformerDecoder(g, 2), torch.nn.TransformerDecoder(t, 2))
    padding = np.zeros((3, 6), bool)
    padding[0, 4:] = True
    gp, tp = _both(padding)
    check_forward_backward(gd, td, [tgt[0], memory[0]], [tgt[1], memory[1]],
                           gf_kwargs={"tgt_mask": gm, "memory_key_padding_mask": gp},
                           torch_kwargs={"tgt_mask": tm, "memory_key_padding_mask": tp})


def gf_to_torch(t):
    import torch

    return torch.from_numpy(t.numpy().copy())


@needs_torch
@pytest.mark.parametrize("kw", [{}, {"norm_first": True, "batch_first": True}])
def test_transformer_matches_torch(kw):
    import torch

    args = dict(d_model=8, nhead=2, num_encoder_layers=2, num_decoder_layers=1,
                dim_feedforward=16, dropout=0.0, **kw)
    g, t = twin(nn.Transformer(**args), torch.nn.Transformer(**args))
    rng = np.random.default_rng(5)
    src, tgt = _seq(rng, 5, kw, n=2), _seq(rng, 3, kw, n=2)
    mask = nn.Transformer.generate_square_subsequent_mask(3, dtype=gf.float64)
    check_forward_backward(g, t, [src[0], tgt[0]], [src[1], tgt[1]],
                           gf_kwargs={"tgt_mask": mask},
                           torch_kwargs={"tgt_mask": gf_to_torch(mask)})


@needs_torch
def test_transformer_masks_and_layout_match_torch():
    import torch

    np.testing.assert_array_equal(
        nn.Transformer.generate_square_subsequent_mask(4).numpy(),
        torch.nn.Transformer.generate_square_subsequent_mask(4).numpy())
    assert nn.Transformer.generate_square_subsequent_mask(3).dtype is gf.float32
    args = dict(d_model=8, nhead=2, num_encoder_layers=1, num_decoder_layers=2,
                dim_feedforward=16)
    same_layout(nn.Transformer(**args), torch.nn.Transformer(**args))
    act = dict(activation=nn.GELU())
    same_layout(nn.TransformerEncoderLayer(8, 2, 16, **act),
                torch.nn.TransformerEncoderLayer(8, 2, 16, activation=torch.nn.GELU()))


def test_transformer_errors_and_init():
    gf.manual_seed(0)
    model = nn.Transformer(8, 2, 1, 1, 16)
    w = model.encoder.layers[0].linear1.weight
    assert float(w.abs().max()) <= (6 / (8 + 16)) ** 0.5
    with pytest.raises(RuntimeError, match="batch number of src"):
        model(gf.zeros(3, 2, 8), gf.zeros(3, 4, 8))
    with pytest.raises(RuntimeError, match="equal to d_model"):
        model(gf.zeros(3, 2, 8), gf.zeros(3, 2, 6))
    with pytest.raises(RuntimeError, match="activation should be relu/gelu"):
        nn.TransformerEncoderLayer(8, 2, activation="tanh")
    layer = nn.TransformerEncoderLayer(4, 2, 8, dropout=0.0)
    x = gf.randn(3, 4)  # unbatched (L, E)
    assert tuple(layer(x).shape) == (3, 4)
