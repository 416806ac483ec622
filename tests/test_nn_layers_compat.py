"""Layers that PyTorch programs use beside the core ones, against PyTorch: padding layers,
PixelShuffle / PixelUnshuffle (and F.pixel_shuffle), Upsample; the registration order
that reassigning a sub-module, parameter or buffer keeps; and the layers and containers built
on a shared private base (signature, repr, state_dict keys, editing)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from parity import check_forward_backward, needs_torch, pair, to_gf_state

import gradflow as gf
import gradflow.nn as nn
import gradflow.nn.functional as F
from gradflow.autograd import gradcheck


# ---------------------------------------------------------------- registration order
class _Net:
    """The same small network for both libraries (m is gradflow or torch)."""

    @staticmethod
    def build(m):
        class Net(m.nn.Module):
            def __init__(self):
                super().__init__()
                self.conv1 = m.nn.Conv2d(3, 4, 3)
                self.bn = m.nn.BatchNorm2d(4)
                self.fc = m.nn.Linear(4, 2)
                self.scale = m.nn.Parameter(m.ones(1))
                self.register_buffer("steps", m.zeros(1))

        net = Net()
        net.conv1 = m.nn.Conv2d(1, 4, 7, 2, 3)
        net.scale = m.nn.Parameter(m.zeros(1))
        net.steps = m.ones(1)
        return net


@needs_torch
def test_reassignment_keeps_registration_order_as_torch():
    import torch

    g, t = _Net.build(gf), _Net.build(torch)
    assert [n for n, _ in g.named_children()] == [n for n, _ in t.named_children()] \
        == ["conv1", "bn", "fc"]
    assert list(g.state_dict()) == list(t.state_dict())
    assert [n for n, _ in g.named_parameters()] == [n for n, _ in t.named_parameters()]
    assert [n for n, _ in g.named_buffers()] == [n for n, _ in t.named_buffers()]
    assert tuple(g.conv1.weight.shape) == (4, 1, 7, 7)


def test_reassignment_keeps_order_and_slicing_children_drops_the_last():
    net = nn.Sequential()
    net.add_module("conv", nn.Conv2d(3, 4, 3))
    net.add_module("fc", nn.Linear(4, 2))
    net.conv = nn.Conv2d(1, 4, 3)
    body = nn.Sequential(*list(net.children())[:-1])
    assert isinstance(body[0], nn.Conv2d) and body[0].in_channels == 1
    net.fc = None  # a module slot set to None stays in place, empty
    assert list(net._modules) == ["conv", "fc"]


def test_a_name_moving_between_kinds_is_registered_once():
    m = nn.Module()
    m.a = nn.Linear(1, 1)
    m.b = nn.Parameter(gf.zeros(1))
    m.a = nn.Parameter(gf.ones(1))  # module -> parameter: gone from modules, last in params
    assert list(m._modules) == [] and list(m._parameters) == ["b", "a"]
    with pytest.raises(TypeError, match="cannot assign 'Linear' as parameter 'b'"):
        m.b = nn.Linear(1, 1)  # as PyTorch: a parameter's name takes a Parameter or None


# ---------------------------------------------------------------- padding layers
PADS = [
    ("ZeroPad1d", (2,), {}, (2, 3, 4)), ("ZeroPad2d", ((1, 2, 0, 3),), {}, (2, 3, 4, 5)),
    ("ZeroPad2d", ((-1, 2, 1, -1),), {}, (1, 2, 4, 5)),
    ("ConstantPad1d", ((1, 2), 3.5), {}, (3, 4)), ("ConstantPad2d", (1, -2.0), {}, (2, 2, 3, 3)),
    ("ConstantPad3d", ((1, 0, 0, 1, 2, 1), 1.0), {}, (1, 2, 2, 3, 2)),
    ("ReflectionPad1d", ((2, 1),), {}, (2, 3, 4)), ("ReflectionPad2d", (2,), {}, (2, 3, 4, 5)),
    ("ReflectionPad2d", ((1, 0, 2, 1),), {}, (3, 4, 5)),
    ("ReflectionPad3d", (1,), {}, (1, 1, 2, 3, 4)),
    ("ReplicationPad1d", ((3, 0),), {}, (1, 2, 2)), ("ReplicationPad2d", ((1, 2, 3, 0),), {},
                                                     (2, 1, 3, 3)),
    ("ReplicationPad3d", (1,), {}, (1, 1, 2, 2, 2)),
    ("CircularPad1d", ((1, 2),), {}, (1, 2, 3)), ("CircularPad2d", (1,), {}, (1, 2, 3, 3)),
    ("CircularPad3d", ((1, 0, 0, 1, 1, 1),), {}, (1, 1, 2, 2, 2)),
]


@needs_torch
@pytest.mark.parametrize("name,args,kw,shape", PADS)
def test_padding_layers_match_torch(name, args, kw, shape):
    import torch

    g, t = getattr(nn, name)(*args, **kw), getattr(torch.nn, name)(*args, **kw)
    gx, tx = pair(np.random.default_rng(0).standard_normal(shape))
    check_forward_backward(g, t, [gx], [tx])
    assert g.padding == t.padding


def test_padding_layers_gradcheck_and_errors():
    x = gf.randn(1, 2, 3, 3, dtype=gf.float64, requires_grad=True)
    for layer in (nn.ReflectionPad2d(2), nn.ReplicationPad2d((1, 0, 2, 1)), nn.ZeroPad2d(1),
                  nn.ConstantPad2d(1, 2.0)):
        assert gradcheck(layer, (x,))
    with pytest.raises(ValueError, match="ReflectionPad2d: padding must be an int or 4 ints"):
        nn.ReflectionPad2d((1, 2))
    with pytest.raises(ValueError, match=r"ZeroPad2d: expected a 3-D \(unbatched\) or 4-D"):
        nn.ZeroPad2d(1)(gf.zeros(2))
    with pytest.raises(ValueError, match="mode='reflect' needs padding"):
        nn.ReflectionPad1d(3)(gf.zeros(1, 2, 3))
    assert repr(nn.ConstantPad2d(1, 0.5)) == "ConstantPad2d(padding=(1, 1, 1, 1), value=0.5)"


# ---------------------------------------------------------------- pixel shuffle
@needs_torch
@given(st.lists(st.integers(1, 2), max_size=2), st.integers(1, 2), st.integers(1, 3),
       st.integers(1, 3), st.integers(1, 2))
def test_pixel_shuffle_and_unshuffle_match_torch(batch, c, r, h, w):
    import torch

    gx, tx = pair(np.random.default_rng(1).standard_normal((*batch, c * r * r, h, w)))
    check_forward_backward(nn.PixelShuffle(r), torch.nn.PixelShuffle(r), [gx], [tx])
    gy, ty = pair(np.random.default_rng(2).standard_normal((*batch, c, h * r, w * r)))
    check_forward_backward(nn.PixelUnshuffle(r), torch.nn.PixelUnshuffle(r), [gy], [ty])


def test_pixel_shuffle_of_empty_inputs_has_the_shape_the_formula_gives():
    # PyTorch 2.x returns an empty input's shape unchanged; gradflow keeps the formula
    assert F.pixel_shuffle(gf.zeros(0, 8, 2, 3), 2).shape == (0, 2, 4, 6)
    assert F.pixel_unshuffle(gf.zeros(2, 0, 4, 2), 2).shape == (2, 0, 2, 1)
    assert F.pixel_shuffle(gf.zeros(3, 4, 0, 1), 2).shape == (3, 1, 0, 2)


def test_pixel_shuffle_layout_gradcheck_and_errors():
    x = gf.arange(8.0).reshape(1, 4, 1, 2)
    # out[c, h r + i, w r + j] = in[c r^2 + i r + j, h, w]
    np.testing.assert_array_equal(F.pixel_shuffle(x, 2).numpy(),
                                  [[[[0, 2, 1, 3], [4, 6, 5, 7]]]])
    assert gf.equal(F.pixel_unshuffle(F.pixel_shuffle(x, 2), 2), x)
    y = gf.randn(2, 8, 2, 3, dtype=gf.float64, requires_grad=True)
    assert gradcheck(lambda y: F.pixel_shuffle(y, 2), (y,))
    z = gf.randn(2, 2, 4, 2, dtype=gf.float64, requires_grad=True)
    assert gradcheck(lambda z: F.pixel_unshuffle(z, 2), (z,))
    assert gradcheck(nn.PixelShuffle(2), (y.transpose(2, 3),))  # a non-contiguous input
    with pytest.raises(ValueError, match=r"pixel_shuffle: the channels of input \(1, 3, 2, 2\)"):
        F.pixel_shuffle(gf.zeros(1, 3, 2, 2), 2)
    with pytest.raises(ValueError, match="pixel_unshuffle: the height and width"):
        F.pixel_unshuffle(gf.zeros(1, 3, 3, 2), 2)
    with pytest.raises(ValueError, match="upscale_factor must be greater than 0"):
        F.pixel_shuffle(gf.zeros(1, 4, 2, 2), 0)
    with pytest.raises(ValueError, match="at least 3 dims"):
        F.pixel_shuffle(gf.zeros(4, 2), 2)
    assert repr(nn.PixelShuffle(3)) == "PixelShuffle(upscale_factor=3)"


# ---------------------------------------------------------------- upsample
@needs_torch
@pytest.mark.parametrize("kw", [{"scale_factor": 2}, {"size": (5, 3)},
                                {"scale_factor": 2, "mode": "bilinear"},
                                {"scale_factor": 2, "mode": "bilinear", "align_corners": True}])
def test_upsample_matches_torch(kw):
    import torch

    gx, tx = pair(np.random.default_rng(3).standard_normal((2, 3, 4, 3)))
    check_forward_backward(nn.Upsample(**kw), torch.nn.Upsample(**kw), [gx], [tx])


@needs_torch
def test_converted_state_dict_of_a_padded_shuffled_net_loads():
    import torch

    def net(m):
        return m.nn.Sequential(m.nn.ReflectionPad2d(1), m.nn.Conv2d(2, 8, 3),
                               m.nn.PixelShuffle(2))

    t, g = net(torch).double(), net(gf).double()
    g.load_state_dict(to_gf_state(t))
    gx, tx = pair(np.random.default_rng(4).standard_normal((1, 2, 3, 3)))
    check_forward_backward(g, t, [gx], [tx])


# ---------------------------------------------------------------- layers sharing a base
# Layers built on a shared private base (activations with inplace or dim, the pools' window,
# Unfold/Fold's blocks, the transformer layers' constructor, the containers): PyTorch's
# signature, repr and state_dict keys.
_SHARED_BASE_LAYERS = [
    ("ReLU", (), {}), ("ReLU", (True,), {}), ("ReLU6", (), {"inplace": True}), ("SiLU", (), {}),
    ("Softmax", (), {"dim": 1}), ("LogSoftmax", (0,), {}), ("Softmax", (), {}),
    ("MaxPool2d", (3, 1, 1, 2, False, True), {}), ("MaxPool2d", (2,), {}),
    ("AvgPool2d", (2,), {"stride": 1, "padding": 1}), ("MaxUnpool2d", ((2, 3),), {}),
    ("Unfold", (2,), {"dilation": 2, "padding": 1}), ("Fold", ((4, 5), 2), {"stride": 1}),
    ("LayerNorm", ((3, 4),), {"bias": False}), ("GroupNorm", (2, 4), {}),
    ("Conv1d", (2, 4, 3), {"padding": "same", "padding_mode": "circular", "bias": False}),
    ("TransformerEncoderLayer", (8, 2, 16), {"norm_first": True}),
    ("TransformerDecoderLayer", (8, 2, 16), {"activation": "gelu"}),
]


@needs_torch
@pytest.mark.parametrize("name,args,kw", _SHARED_BASE_LAYERS)
def test_layers_on_a_shared_base_keep_torchs_signature_repr_and_keys(name, args, kw):
    import inspect

    import torch

    ours, theirs = getattr(nn, name)(*args, **kw), getattr(torch.nn, name)(*args, **kw)
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours_params = list(inspect.signature(type(ours)).parameters)
    assert ours_params == list(inspect.signature(type(theirs)).parameters)


def _exercise_containers(lib):
    """Sequential, ModuleList, ModuleDict and ParameterDict edited in place (lib: gradflow or
    torch), summarised."""
    m = lib.nn
    seq = m.Sequential(m.ReLU(), m.Tanh()).append(m.Sigmoid()).extend([m.ReLU6()])
    del seq[1]
    seq.insert(-1, m.SiLU())
    ml = m.ModuleList([m.ReLU()]).extend([m.Tanh(), m.Sigmoid()])
    del ml[0]
    ml.insert(0, m.SiLU())
    md = m.ModuleDict([("a", m.ReLU())])
    md.update({"b": m.Tanh()})
    pd = m.ParameterDict({"w": m.Parameter(lib.ones(1))})
    pd.update([("v", m.Parameter(lib.zeros(2)))])
    return [repr(seq), [type(x).__name__ for x in seq], repr(ml), len(ml), list(md), "b" in md,
            len(md), list(pd.keys()), "v" in pd, len(pd), list(pd.state_dict())]


@needs_torch
def test_containers_on_a_shared_base_behave_as_torchs():
    import torch

    assert _exercise_containers(gf) == _exercise_containers(torch)
