"""Issue 16's nn pieces: Conv1d / F.conv1d, F.unfold / F.fold (Unfold / Fold),
F.cosine_similarity, ParameterList and ParameterDict. Each against a NumPy or hand reference,
gradcheck in float64, hypothesis shapes, and PyTorch's numbers where it is installed."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from parity import needs_torch, pair, same_layout, twin

import gradflow as gf
import gradflow.nn as nn
import gradflow.nn.functional as F
from gradflow.autograd import gradcheck
from gradflow.ops import conv as conv_ops

rng = np.random.default_rng(16)


def t64(a, requires_grad: bool = True) -> gf.Tensor:
    return gf.tensor(a, dtype=gf.float64, requires_grad=requires_grad)


# ---------------------------------------------------------------- references in NumPy
def conv1d_ref(x, w, b, stride, padding, dilation, groups):
    """Direct sum: y[n, o, i] = b[o] + sum_{c,p} w[o,c,p] x[n, g*Cg + c, i*s - pad + p*d]."""
    n, cin, length = x.shape
    cout, cg, k = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding)))
    out_len = (length + 2 * padding - dilation * (k - 1) - 1) // stride + 1
    y = np.zeros((n, cout, out_len))
    for o in range(cout):
        g = o // (cout // groups)
        for i in range(out_len):
            window = xp[:, g * cg:(g + 1) * cg, i * stride:i * stride + dilation * (k - 1) + 1:
                        dilation]
            y[:, o, i] = (window * w[o]).sum(axis=(1, 2))
    return y if b is None else y + b[None, :, None]


def unfold_ref(x, k, d, p, s):
    """im2col by loops: row (c*kh + i)*kw + j, column oh*OW + ow."""
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])))
    oh = (h + 2 * p[0] - d[0] * (k[0] - 1) - 1) // s[0] + 1
    ow = (w + 2 * p[1] - d[1] * (k[1] - 1) - 1) // s[1] + 1
    cols = np.zeros((n, c * k[0] * k[1], oh * ow))
    for ci in range(c):
        for i in range(k[0]):
            for j in range(k[1]):
                row = (ci * k[0] + i) * k[1] + j
                for a in range(oh):
                    for b in range(ow):
                        cols[:, row, a * ow + b] = xp[:, ci, a * s[0] + i * d[0],
                                                      b * s[1] + j * d[1]]
    return cols


# ---------------------------------------------------------------- conv1d
CONV1D_CASES = [
    dict(stride=1, padding=0, dilation=1, groups=1),
    dict(stride=2, padding=1, dilation=2, groups=2),
    dict(stride=3, padding=2, dilation=1, groups=4),
]


@pytest.mark.parametrize("kw", CONV1D_CASES)
def test_conv1d_matches_direct_sum_and_gradcheck(kw):
    x = rng.standard_normal((2, 4, 9))
    w = rng.standard_normal((8, 4 // kw["groups"], 3))
    b = rng.standard_normal(8)
    y = F.conv1d(t64(x, False), t64(w, False), t64(b, False), **kw)
    np.testing.assert_allclose(y.numpy(), conv1d_ref(x, w, b, **kw), rtol=1e-12, atol=1e-12)
    assert gradcheck(lambda a, c, e: F.conv1d(a, c, e, **kw), (t64(x), t64(w), t64(b)))


def test_conv1d_unbatched_and_string_padding():
    x, w = rng.standard_normal((3, 7)), rng.standard_normal((2, 3, 4))
    same = F.conv1d(t64(x, False), t64(w, False), padding="same")
    assert same.shape == (2, 7)
    # PyTorch's 'same' puts the odd sample on the right: total d*(k-1) = 3 -> (1, 2)
    ref = conv1d_ref(np.pad(x, ((0, 0), (1, 2)))[None], w, None, 1, 0, 1, 1)[0]
    np.testing.assert_allclose(same.numpy(), ref, atol=1e-12)
    valid = F.conv1d(t64(x, False), t64(w, False), padding="valid")
    np.testing.assert_allclose(valid.numpy(), conv1d_ref(x[None], w, None, 1, 0, 1, 1)[0],
                               atol=1e-12)


@given(n=st.integers(1, 2), c=st.integers(1, 3), length=st.integers(1, 8),
       k=st.integers(1, 4), stride=st.integers(1, 3), padding=st.integers(0, 2))
def test_conv1d_shapes_hypothesis(n, c, length, k, stride, padding):
    if length + 2 * padding < k:
        with pytest.raises(ValueError, match="conv1d"):
            F.conv1d(gf.zeros(n, c, length), gf.zeros(2, c, k), stride=stride, padding=padding)
        return
    x, w = rng.standard_normal((n, c, length)), rng.standard_normal((2, c, k))
    y = F.conv1d(t64(x, False), t64(w, False), stride=stride, padding=padding)
    np.testing.assert_allclose(y.numpy(), conv1d_ref(x, w, None, stride, padding, 1, 1),
                               atol=1e-12)


def test_conv1d_non_contiguous_input():
    x = rng.standard_normal((2, 9, 4))
    xt = t64(x, False).transpose(1, 2)
    w = rng.standard_normal((3, 4, 2))
    np.testing.assert_allclose(F.conv1d(xt, t64(w, False)).numpy(),
                               conv1d_ref(x.transpose(0, 2, 1), w, None, 1, 0, 1, 1), atol=1e-12)


@pytest.mark.parametrize("call, exc, msg", [
    (lambda: F.conv1d(gf.zeros(1, 2, 5), gf.zeros(3, 2, 2, 2)), ValueError, "weight must be 3-D"),
    (lambda: F.conv1d(gf.zeros(2, 5, 5, 5), gf.zeros(3, 2, 2)), ValueError,
     r"2-D \(unbatched\) or 3-D"),
    (lambda: F.conv1d(gf.zeros(1, 2, 5), gf.zeros(3, 2, 2), stride=(1, 2)), ValueError,
     "stride must be an int or a 1-tuple"),
    (lambda: F.conv1d(gf.zeros(1, 2, 5), gf.zeros(3, 4, 2)), ValueError,
     r"conv1d \(input \(1, 2, 5\), weight \(3, 4, 2\)\)"),
    (lambda: F.conv1d(gf.zeros(1, 2, 5, dtype=gf.int64), gf.zeros(3, 2, 2)), TypeError,
     "conv1d: input must be float32 or float64"),
])
def test_conv1d_bad_inputs(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call()


def test_conv1d_layer_shapes_repr_and_padding_modes():
    conv = nn.Conv1d(4, 6, 3, stride=2, padding=1, groups=2, bias=False)
    assert conv.weight.shape == (6, 2, 3) and conv.bias is None
    assert repr(conv) == ("Conv1d(4, 6, kernel_size=(3,), stride=(2,), padding=(1,), groups=2, "
                          "bias=False)")
    assert conv(gf.randn(5, 4, 10)).shape == (5, 6, 5)
    assert conv(gf.randn(4, 10)).shape == (6, 5)
    for mode in ("reflect", "replicate", "circular"):
        layer = nn.Conv1d(2, 2, 3, padding="same", padding_mode=mode).double()
        x = rng.standard_normal((1, 2, 6))
        padded = np.pad(x, ((0, 0), (0, 0), (1, 1)),
                        mode={"reflect": "reflect", "replicate": "edge", "circular": "wrap"}[mode])
        ref = conv1d_ref(padded, layer.weight.detach().numpy(), layer.bias.detach().numpy(),
                         1, 0, 1, 1)
        np.testing.assert_allclose(layer(t64(x, False)).detach().numpy(), ref, atol=1e-12)


def test_conv1d_layer_bad_arguments():
    with pytest.raises(ValueError, match="Conv1d: kernel_size must be an int or a 1-tuple"):
        nn.Conv1d(2, 2, (3, 3))
    with pytest.raises(ValueError, match="in_channels must be divisible by groups"):
        nn.Conv1d(3, 2, 3, groups=2)


@needs_torch
@pytest.mark.parametrize("kw", [dict(), dict(stride=2, padding=2, dilation=2, groups=2),
                                dict(padding="same", padding_mode="reflect"),
                                dict(padding=1, padding_mode="circular")])
def test_conv1d_layer_matches_torch(kw):
    import torch

    mine, theirs = twin(nn.Conv1d(4, 6, 3, **kw), torch.nn.Conv1d(4, 6, 3, **kw))
    assert repr(mine) == repr(theirs)
    x, xt = pair(rng.standard_normal((2, 4, 11)))
    y, yt = mine(x), theirs(xt)
    np.testing.assert_allclose(y.detach().numpy(), yt.detach().numpy(), atol=1e-12)
    g = rng.standard_normal(tuple(y.shape))
    y.backward(gf.tensor(g))
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(mine.weight.grad.numpy(), theirs.weight.grad.numpy(), atol=1e-12)


def test_conv1d_initialisation_bound():
    conv = nn.Conv1d(4, 8, 5)
    bound = 1 / np.sqrt(4 * 5)  # kaiming_uniform(a=sqrt(5)) on fan_in = C_in/groups * k
    assert np.abs(conv.weight.detach().numpy()).max() <= bound
    assert np.abs(conv.bias.detach().numpy()).max() <= bound


# ---------------------------------------------------------------- unfold / fold
UNFOLD_CASES = [
    ((2, 2), (1, 1), (0, 0), (1, 1)),
    ((2, 3), (2, 1), (1, 2), (2, 1)),
    ((1, 1), (1, 1), (0, 0), (2, 2)),
    ((3, 3), (1, 1), (1, 1), (1, 1)),
]


@pytest.mark.parametrize("k, d, p, s", UNFOLD_CASES)
def test_unfold_matches_loops_and_gradcheck(k, d, p, s):
    x = rng.standard_normal((2, 3, 6, 5))
    cols = F.unfold(t64(x, False), k, d, p, s)
    np.testing.assert_array_equal(cols.numpy(), unfold_ref(x, k, d, p, s))
    assert gradcheck(lambda a: F.unfold(a, k, d, p, s), (t64(x[:1, :2]),))


@pytest.mark.parametrize("k, d, p, s", UNFOLD_CASES)
def test_fold_is_the_adjoint_of_unfold_and_gradcheck(k, d, p, s):
    x = rng.standard_normal((2, 3, 6, 5))
    cols = unfold_ref(x, k, d, p, s)
    c = rng.standard_normal(cols.shape)
    image = F.fold(t64(c, False), (6, 5), k, d, p, s).numpy()
    # <unfold(x), c> == <x, fold(c)>: fold is col2im, unfold's adjoint
    np.testing.assert_allclose((cols * c).sum(), (x * image).sum(), rtol=1e-12)
    assert gradcheck(lambda a: F.fold(a, (6, 5), k, d, p, s), (t64(c[:1]),))


@pytest.mark.parametrize("k, d, p, s", UNFOLD_CASES)
def test_unfold_fold_composed_from_conv_match_the_native_kernels(k, d, p, s, monkeypatch):
    """Devices without the fused im2col/col2im kernels run conv2d with a one-hot kernel."""
    x = rng.standard_normal((2, 3, 6, 5))
    c = rng.standard_normal(unfold_ref(x, k, d, p, s).shape)
    native = (F.unfold(t64(x, False), k, d, p, s), F.fold(t64(c, False), (6, 5), k, d, p, s))
    monkeypatch.setattr(conv_ops, "fused", lambda backend, name: None)
    composed = (F.unfold(t64(x, False), k, d, p, s), F.fold(t64(c, False), (6, 5), k, d, p, s))
    for a, b in zip(native, composed):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12, atol=1e-12)
    assert gradcheck(lambda a: F.fold(F.unfold(a, k, d, p, s), (6, 5), k, d, p, s),
                     (t64(x[:1, :1]),))


def test_unfold_fold_native_kernels_validate_their_arguments():
    from gradflow import _C

    x = np.zeros((1, 2, 4, 4))
    with pytest.raises(ValueError, match="unfold: kernel_size must be >= 1"):
        _C.unfold(x, (0, 2), (1, 1), (0, 0), (1, 1))
    with pytest.raises(ValueError, match="unfold: input must be C-contiguous"):
        _C.unfold(x[:, :, ::2], (1, 1), (1, 1), (0, 0), (1, 1))
    with pytest.raises(ValueError, match=r"fold: input \(1, 4, 5\) has 5 blocks"):
        _C.fold(np.zeros((1, 4, 5)), (3, 3), (2, 2), (1, 1), (0, 0), (1, 1))
    with pytest.raises(ValueError, match="multiple of the kernel area 4"):
        _C.fold(np.zeros((1, 5, 4)), (3, 3), (2, 2), (1, 1), (0, 0), (1, 1))
    with pytest.raises(ValueError, match="fold: output_size must be below 2\\^31"):
        _C.fold(np.zeros((1, 4, 1)), (2**40, 3), (2, 2), (1, 1), (0, 0), (1, 1))
    with pytest.raises(TypeError, match="fold: input must have dtype float32"):
        _C.fold(np.zeros((1, 4, 4), np.int64), (3, 3), (2, 2), (1, 1), (0, 0), (1, 1))
    assert _C.unfold(np.zeros((0, 3, 4, 4)), (2, 2), (1, 1), (0, 0), (1, 1)).shape == (0, 12, 9)


def test_fold_of_unfold_counts_overlaps():
    ones = F.fold(F.unfold(gf.ones(1, 1, 3, 3), 2), (3, 3), 2)
    np.testing.assert_array_equal(ones.numpy()[0, 0], [[1, 2, 1], [2, 4, 2], [1, 2, 1]])


def test_unfold_fold_unbatched_and_second_order():
    x = t64(rng.standard_normal((2, 4, 4)))
    cols = F.unfold(x, 2, stride=2)
    assert cols.shape == (8, 4)
    np.testing.assert_array_equal(F.fold(cols, 4, 2, stride=2).detach().numpy(),
                                  x.detach().numpy())  # non-overlapping blocks: a permutation
    (g,) = gf.autograd.grad((F.unfold(x, 2) ** 2).sum(), x, create_graph=True)
    g.sum().backward()  # the gradient is itself differentiable (fold of 2*cols)
    assert x.grad.shape == x.shape


@given(h=st.integers(1, 6), w=st.integers(1, 6), k=st.integers(1, 3), s=st.integers(1, 3),
       p=st.integers(0, 1))
def test_unfold_fold_shapes_hypothesis(h, w, k, s, p):
    x = rng.standard_normal((1, 2, h, w))
    if min(h, w) + 2 * p < k:
        with pytest.raises(ValueError, match="unfold: kernel size"):
            F.unfold(t64(x, False), k, 1, p, s)
        return
    cols = F.unfold(t64(x, False), k, 1, p, s)
    np.testing.assert_array_equal(cols.numpy(), unfold_ref(x, (k, k), (1, 1), (p, p), (s, s)))
    back = F.fold(cols, (h, w), k, 1, p, s)
    assert back.shape == (1, 2, h, w)


@pytest.mark.parametrize("call, msg", [
    (lambda: F.fold(gf.zeros(1, 5, 4), (3, 3), 2), "divisible by the product of kernel_size"),
    (lambda: F.fold(gf.zeros(1, 4, 5), (3, 3), 2), "calculated number of sliding blocks 2 \\* 2"),
    (lambda: F.fold(gf.zeros(4, 4, 4, 4), (3, 3), 2), r"fold: expected 2-D \(unbatched\)"),
    (lambda: F.unfold(gf.zeros(1, 1, 2, 2), 3), "unfold: kernel size"),
    (lambda: F.unfold(gf.zeros(1, 1, 4, 4), 0), "unfold: kernel_size must be >= 1"),
    (lambda: F.unfold(gf.zeros(4, 4), 2), r"unfold: expected 3-D \(unbatched\)"),
])
def test_unfold_fold_bad_inputs(call, msg):
    with pytest.raises(ValueError, match=msg):
        call()


@needs_torch
@pytest.mark.parametrize("k, d, p, s", UNFOLD_CASES)
def test_unfold_fold_match_torch(k, d, p, s):
    import torch

    x, xt = pair(rng.standard_normal((2, 3, 7, 6)))
    cols, cols_t = F.unfold(x, k, d, p, s), torch.nn.functional.unfold(xt, k, d, p, s)
    np.testing.assert_array_equal(cols.detach().numpy(), cols_t.detach().numpy())
    c, ct = pair(rng.standard_normal(tuple(cols.shape)))
    img, img_t = F.fold(c, (7, 6), k, d, p, s), torch.nn.functional.fold(ct, (7, 6), k, d, p, s)
    np.testing.assert_allclose(img.detach().numpy(), img_t.detach().numpy(), atol=1e-12)
    g = rng.standard_normal(tuple(img.shape))
    img.backward(gf.tensor(g))
    img_t.backward(torch.tensor(g))
    np.testing.assert_allclose(c.grad.numpy(), ct.grad.numpy(), atol=1e-12)
    assert repr(nn.Fold((7, 6), k, d, p, s)) == repr(torch.nn.Fold((7, 6), k, d, p, s))
    assert repr(nn.Unfold(k, d, p, s)) == repr(torch.nn.Unfold(k, d, p, s))


def test_unfold_fold_layers():
    x = gf.randn(1, 3, 4, 4)
    cols = nn.Unfold(kernel_size=2, stride=2)(x)
    assert cols.shape == (1, 12, 4)
    np.testing.assert_array_equal(nn.Fold(4, 2, stride=2)(cols).numpy(), x.numpy())


# ---------------------------------------------------------------- cosine_similarity
def cosine_ref(a, b, dim, eps):
    a, b = np.broadcast_arrays(a, b)
    na = np.maximum(np.linalg.norm(a, axis=dim, keepdims=True), eps)
    nb = np.maximum(np.linalg.norm(b, axis=dim, keepdims=True), eps)
    return ((a / na) * (b / nb)).sum(axis=dim)


@pytest.mark.parametrize("sa, sb, dim", [((4, 5), (4, 5), 1), ((3, 1, 5), (1, 4, 5), -1),
                                         ((5,), (2, 5), 1), ((2, 3), (2, 3), 0)])
def test_cosine_similarity_matches_numpy_and_gradcheck(sa, sb, dim):
    a, b = rng.standard_normal(sa), rng.standard_normal(sb)
    got = F.cosine_similarity(t64(a, False), t64(b, False), dim=dim)
    np.testing.assert_allclose(got.numpy(), cosine_ref(a, b, dim, 1e-8), rtol=1e-12)
    assert gradcheck(lambda x, y: F.cosine_similarity(x, y, dim), (t64(a), t64(b)))


def test_cosine_similarity_eps_clamps_small_norms():
    a = np.array([[1e-10, 0.0]])
    b = np.array([[1.0, 0.0]])
    got = F.cosine_similarity(t64(a, False), t64(b, False), eps=1e-3)
    np.testing.assert_allclose(got.numpy(), [1e-7])  # 1e-10 / max(1e-10, 1e-3) * 1


@given(st.integers(1, 4), st.integers(1, 4), st.integers(0, 3))
def test_cosine_similarity_hypothesis(rows, cols, zero_rows):
    a, b = rng.standard_normal((rows, cols)), rng.standard_normal((rows, cols))
    a[:min(zero_rows, rows)] = 0.0  # zero vectors: the eps clamp keeps it finite (0)
    got = F.cosine_similarity(t64(a, False), t64(b, False))
    np.testing.assert_allclose(got.numpy(), cosine_ref(a, b, 1, 1e-8), atol=1e-12)
    assert np.all(np.abs(got.numpy()) <= 1 + 1e-12)


def test_cosine_similarity_bad_inputs():
    with pytest.raises(ValueError, match=r"cosine_similarity: shapes \(2, 3\) and \(4, 3\)"):
        F.cosine_similarity(gf.zeros(2, 3), gf.zeros(4, 3))
    with pytest.raises(TypeError, match="cosine_similarity: expected floating-point"):
        F.cosine_similarity(gf.zeros(2, 3, dtype=gf.int64), gf.zeros(2, 3))
    with pytest.raises(TypeError, match="argument 'x2' must be a Tensor"):
        F.cosine_similarity(gf.zeros(2, 3), [1, 2, 3])


@needs_torch
def test_cosine_similarity_matches_torch_including_clamped_gradient():
    import torch

    a = rng.standard_normal((3, 4))
    a[0] = 1e-9  # norm below eps: PyTorch differentiates through the unclamped norm
    b = rng.standard_normal((1, 4))
    (x, xt), (y, yt) = pair(a), pair(b)
    got = F.cosine_similarity(x, y, eps=1e-6)
    ref = torch.nn.functional.cosine_similarity(xt, yt, eps=1e-6)
    np.testing.assert_allclose(got.detach().numpy(), ref.detach().numpy(), rtol=1e-12)
    got.sum().backward()
    ref.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(y.grad.numpy(), yt.grad.numpy(), rtol=1e-9, atol=1e-12)


# ---------------------------------------------------------------- ParameterList / Dict
class Holder(nn.Module):
    def __init__(self, params, table) -> None:
        super().__init__()
        self.params = params
        self.table = table


def test_parameter_list_registers_indexes_and_wraps_tensors():
    plist = nn.ParameterList([nn.Parameter(gf.ones(2)), gf.zeros(3)])
    assert isinstance(plist[1], nn.Parameter) and plist[1].requires_grad
    plist.append(gf.ones(1)).extend([gf.ones(4)])
    plist += [gf.ones(5)]
    assert len(plist) == 5 and [p.shape[0] for p in plist] == [2, 3, 1, 4, 5]
    assert plist[-1].shape == (5,) and len(plist[1:3]) == 2
    plist[0] = gf.full((2,), 7.0)
    assert plist[0].detach().numpy().tolist() == [7.0, 7.0]
    assert list(plist.state_dict()) == ["0", "1", "2", "3", "4"]
    with pytest.raises(IndexError, match="out of range for ParameterList of length 5"):
        plist[5]
    plist.append("note")  # PyTorch keeps other objects too, outside parameters()
    assert plist[5] == "note" and len(list(plist.parameters())) == 5


def test_parameter_dict_registers_in_order_and_behaves_like_a_dict():
    pdict = nn.ParameterDict({"scale": gf.ones(2)})
    pdict["shift"] = nn.Parameter(gf.zeros(2))
    pdict.update([("gain", gf.ones(1))])
    assert list(pdict) == ["scale", "shift", "gain"] and "gain" in pdict and len(pdict) == 3
    assert list(pdict.state_dict()) == ["scale", "shift", "gain"]
    assert isinstance(pdict["scale"], nn.Parameter)
    assert pdict.pop("shift").shape == (2,) and "shift" not in pdict
    assert pdict.get("missing") is None and pdict.setdefault("bias", gf.zeros(3)).shape == (3,)
    assert [k for k, _ in pdict.items()] == ["scale", "gain", "bias"]
    assert pdict.copy()["scale"] is pdict["scale"]
    with pytest.raises(KeyError):
        pdict["missing"]
    with pytest.raises(TypeError, match="keys must be strings"):
        pdict[3] = gf.ones(1)
    pdict.clear()
    assert len(pdict) == 0 and list(pdict.parameters()) == []


def test_parameter_containers_in_a_module_train():
    m = Holder(nn.ParameterList([gf.ones(2)]), nn.ParameterDict({"w": gf.ones(2)}))
    assert [k for k, _ in m.named_parameters()] == ["params.0", "table.w"]
    opt = gf.optim.SGD(m.parameters(), lr=0.5)
    (m.params[0] * m.table["w"] * 2).sum().backward()
    opt.step()
    assert m.params[0].detach().numpy().tolist() == [0.0, 0.0]
    m2 = Holder(nn.ParameterList([gf.zeros(2)]), nn.ParameterDict({"w": gf.zeros(2)}))
    m2.load_state_dict(m.state_dict())
    assert m2.table["w"].detach().numpy().tolist() == [0.0, 0.0]


@needs_torch
def test_parameter_containers_match_torch_layout_and_repr():
    import torch

    mine = Holder(nn.ParameterList([gf.ones(2), gf.ones(3, 2)]),
                  nn.ParameterDict({"a": gf.ones(4), "b": gf.ones(1)}))
    theirs = torch.nn.Module()
    theirs.params = torch.nn.ParameterList([torch.ones(2), torch.ones(3, 2)])
    theirs.table = torch.nn.ParameterDict({"a": torch.ones(4), "b": torch.ones(1)})
    same_layout(mine, theirs)
    assert repr(mine.table) == repr(theirs.table).replace("torch.", "gradflow.")
    mine.load_state_dict(theirs.state_dict())  # a PyTorch checkpoint loads as is
