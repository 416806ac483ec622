"""conv2d / conv_transpose2d: NumPy reference, gradcheck, PyTorch parity, bad inputs.

Every test runs on each device (`device`: cpu, and cuda where a GPU is present); on CUDA the
results are also compared with the CPU's on identical inputs."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradflow as gf
from gradflow import _C
from gradflow.autograd import gradcheck, gradgradcheck
from gradflow.ops.conv import conv2d, conv_transpose2d

RNG = np.random.default_rng(0)


# ---------------------------------------------------------------- NumPy references
def ref_conv2d(x, w, b, stride, padding, dilation, groups):
    """Direct definition: pad, then for each kernel tap add w[o, c, i, j] * shifted input."""
    n, cin, h, wd = x.shape
    cout, cg, kh, kw = w.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    y = np.zeros((n, cout, oh, ow))
    og = cout // groups
    for o in range(cout):
        g = o // og
        for c in range(cg):
            for i in range(kh):
                for j in range(kw):
                    patch = xp[:, g * cg + c, i * dh: i * dh + sh * (oh - 1) + 1: sh,
                               j * dw: j * dw + sw * (ow - 1) + 1: sw]
                    y[:, o] += w[o, c, i, j] * patch
        if b is not None:
            y[:, o] += b[o]
    return y


def ref_conv2d_grads(x, w, dy, stride, padding, dilation):
    """dx and dw of ref_conv2d (groups 1) from its output gradient dy: each tap's patch of
    the padded input gets w * dy added back (dx), and w's gradient is <dy, patch> (dw)."""
    n, cin, h, wd = x.shape
    cout, _, kh, kw = w.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    dxp = np.zeros_like(xp)
    dw_ = np.zeros_like(w)
    oh, ow = dy.shape[2:]
    for i in range(kh):
        for j in range(kw):
            rows = slice(i * dh, i * dh + sh * (oh - 1) + 1, sh)
            cols = slice(j * dw, j * dw + sw * (ow - 1) + 1, sw)
            dxp[:, :, rows, cols] += np.einsum("nohw,oc->nchw", dy, w[:, :, i, j])
            dw_[:, :, i, j] = np.einsum("nohw,nchw->oc", dy, xp[:, :, rows, cols])
    return dxp[:, :, ph: ph + h, pw: pw + wd], dw_


def ref_conv_transpose2d(x, w, b, stride, padding, output_padding, groups, dilation):
    """Scatter definition: every input pixel adds w * x into the (padded) output."""
    n, cin, h, wd = x.shape
    _, cog, kh, kw = w.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    oh = (h - 1) * sh - 2 * ph + dh * (kh - 1) + output_padding[0] + 1
    ow = (wd - 1) * sw - 2 * pw + dw * (kw - 1) + output_padding[1] + 1
    full = np.zeros((n, cog * groups, oh + 2 * ph + sh + dh * kh, ow + 2 * pw + sw + dw * kw))
    cg = cin // groups
    for c in range(cin):
        g = c // cg
        for o in range(cog):
            for i in range(kh):
                for j in range(kw):
                    full[:, g * cog + o, i * dh: i * dh + sh * (h - 1) + 1: sh,
                         j * dw: j * dw + sw * (wd - 1) + 1: sw] += w[c, o, i, j] * x[:, c]
    y = full[:, :, ph: ph + oh, pw: pw + ow]
    if b is not None:
        y = y + b[None, :, None, None]
    return y


DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]


@pytest.fixture(params=DEVICES)
def device(request):
    return request.param


def t(a, requires_grad=False, device="cpu"):
    return gf.tensor(a, requires_grad=requires_grad, device=device)


def same_on_devices(fn, arrays, device, rtol=1e-12, atol=1e-12):
    """fn(*tensors) on `device` and, for CUDA, equal to fn on the CPU: returns the result."""
    out = fn(*(None if a is None else t(a, device=device) for a in arrays)).numpy()
    if device != "cpu":
        ref = fn(*(None if a is None else t(a) for a in arrays)).numpy()
        np.testing.assert_allclose(out, ref, rtol=rtol, atol=atol)
    return out


def native(device):
    """The device's kernel module, and its arrays from and to NumPy (tests of the bindings)."""
    if device == "cpu":
        return _C, np.asarray, np.asarray
    from gradflow import _cuda

    return _cuda, _cuda.from_numpy, _cuda.to_numpy


# ---------------------------------------------------------------- forward vs reference
@st.composite
def conv_configs(draw):
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    cin = groups * draw(st.integers(1, 2))
    cout = groups * draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    h = draw(st.integers(max(1, dilation[0] * (kh - 1) + 1 - 2 * padding[0]), 9))
    w = draw(st.integers(max(1, dilation[1] * (kw - 1) + 1 - 2 * padding[1]), 9))
    n = draw(st.integers(1, 3))
    bias = draw(st.booleans())
    return n, cin, cout, h, w, (kh, kw), stride, padding, dilation, groups, bias


@pytest.mark.parametrize("device", DEVICES)
@settings(max_examples=60, deadline=None)
@given(conv_configs())
def test_conv2d_matches_reference(device, cfg):
    n, cin, cout, h, w, k, stride, padding, dilation, groups, bias = cfg
    x = RNG.standard_normal((n, cin, h, w))
    wt = RNG.standard_normal((cout, cin // groups) + k)
    b = RNG.standard_normal(cout) if bias else None
    f = lambda x, w, b: conv2d(x, w, b, stride, padding, dilation, groups)
    y = same_on_devices(f, (x, wt, b), device)
    np.testing.assert_allclose(y, ref_conv2d(x, wt, b, stride, padding, dilation, groups),
                               rtol=1e-10, atol=1e-10)
    y32 = same_on_devices(f, [None if a is None else a.astype(np.float32) for a in (x, wt, b)],
                          device, rtol=1e-4, atol=1e-4)
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32, y, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("device", DEVICES)
@settings(max_examples=40, deadline=None)
@given(conv_configs(), st.integers(0, 2), st.integers(0, 2))
def test_conv_transpose2d_matches_reference(device, cfg, oph, opw):
    n, cin, cout, h, w, k, stride, padding, dilation, groups, bias = cfg
    op = (oph % max(stride[0], dilation[0]), opw % max(stride[1], dilation[1]))
    oh = (h - 1) * stride[0] - 2 * padding[0] + dilation[0] * (k[0] - 1) + op[0] + 1
    ow = (w - 1) * stride[1] - 2 * padding[1] + dilation[1] * (k[1] - 1) + op[1] + 1
    if oh < 1 or ow < 1:
        return
    x = RNG.standard_normal((n, cin, h, w))
    wt = RNG.standard_normal((cin, cout // groups) + k)
    b = RNG.standard_normal(cout) if bias else None
    y = same_on_devices(lambda x, w, b: conv_transpose2d(x, w, b, stride, padding, op, groups,
                                                         dilation), (x, wt, b), device)
    ref = ref_conv_transpose2d(x, wt, b, stride, padding, op, groups, dilation)
    np.testing.assert_allclose(y, ref, rtol=1e-10, atol=1e-10)


def test_conv2d_special_shapes(device):
    x = RNG.standard_normal((2, 3, 5, 5))
    # 1x1 (the direct-GEMM path, with and without groups), kernel equal to the input, unbatched
    w1 = RNG.standard_normal((4, 3, 1, 1))
    np.testing.assert_allclose(same_on_devices(conv2d, (x, w1), device),
                               ref_conv2d(x, w1, None, (1, 1), (0, 0), (1, 1), 1), atol=1e-12)
    xg, wg, bg = RNG.standard_normal((2, 4, 3, 5)), RNG.standard_normal((6, 2, 1, 1)), np.ones(6)
    np.testing.assert_allclose(
        same_on_devices(lambda x, w, b: conv2d(x, w, b, groups=2), (xg, wg, bg), device),
        ref_conv2d(xg, wg, bg, (1, 1), (0, 0), (1, 1), 2), atol=1e-12)
    w5 = RNG.standard_normal((2, 3, 5, 5))
    y = same_on_devices(conv2d, (x, w5), device)
    assert y.shape == (2, 2, 1, 1)
    np.testing.assert_allclose(y[:, :, 0, 0], np.einsum("nchw,ochw->no", x, w5), atol=1e-12)
    y3 = conv2d(t(x[0], device=device), t(w5, device=device), padding=1)
    assert y3.shape == (2, 3, 3)
    np.testing.assert_allclose(y3.numpy(), conv2d(t(x[:1]), t(w5), padding=1).numpy()[0],
                               atol=1e-12)


def test_conv_transpose2d_dilated_1x1_with_output_padding(device):
    # The output is one row and column larger than the conv it is the adjoint of: the 1x1
    # kernels must not take x's planes as their column matrix (they once read past them).
    x, w = RNG.standard_normal((2, 2, 3, 3)), RNG.standard_normal((2, 3, 1, 1))
    y = same_on_devices(lambda x, w: conv_transpose2d(x, w, None, 1, 0, 1, 1, 2), (x, w), device)
    ref = ref_conv_transpose2d(x, w, None, (1, 1), (0, 0), (1, 1), 1, (2, 2))
    np.testing.assert_allclose(y, ref, atol=1e-12)


@pytest.mark.parametrize("k,dil", [((3, 3), (1, 1)), ((2, 4), (1, 1)), ((3, 2), (2, 3))])
def test_conv2d_padding_strings(device, k, dil):
    x = RNG.standard_normal((1, 2, 6, 7))
    w = RNG.standard_normal((3, 2) + k)
    y = same_on_devices(lambda x, w: conv2d(x, w, padding="same", dilation=dil), (x, w), device)
    assert y.shape == (1, 3, 6, 7)
    # PyTorch's rule: total padding d*(k-1), the odd pixel at the bottom/right
    tot = (dil[0] * (k[0] - 1), dil[1] * (k[1] - 1))
    xp = np.pad(x, ((0, 0), (0, 0), (tot[0] // 2, tot[0] - tot[0] // 2),
                    (tot[1] // 2, tot[1] - tot[1] // 2)))
    np.testing.assert_allclose(y, ref_conv2d(xp, w, None, (1, 1), (0, 0), dil, 1), atol=1e-12)
    yv = same_on_devices(lambda x, w: conv2d(x, w, padding="valid", dilation=dil), (x, w), device)
    np.testing.assert_allclose(yv, ref_conv2d(x, w, None, (1, 1), (0, 0), dil, 1), atol=1e-12)


# ---------------------------------------------------------------- gradients
GRAD_CASES = [
    # (x shape, w shape, bias, stride, padding, dilation, groups)
    ((2, 2, 5, 4), (3, 2, 3, 2), True, 1, 0, 1, 1),
    ((1, 4, 6, 5), (4, 2, 3, 3), False, (2, 1), (1, 2), 1, 2),
    ((2, 3, 6, 6), (3, 1, 2, 2), True, 2, 1, 2, 3),
    ((1, 2, 4, 4), (2, 2, 1, 1), True, 1, 0, 1, 1),
    ((1, 1, 3, 3), (2, 1, 3, 3), False, 1, 0, 1, 1),
    ((2, 3, 5, 4), (3, 1, 3, 3), True, 1, 1, 1, 3),  # depthwise
    ((2, 4, 3, 3), (2, 2, 1, 1), True, 1, 0, 1, 2),  # grouped 1x1
]


@pytest.mark.parametrize("xs,ws,bias,stride,padding,dilation,groups", GRAD_CASES)
def test_conv2d_gradcheck(device, xs, ws, bias, stride, padding, dilation, groups):
    x = t(RNG.standard_normal(xs), True, device)
    w = t(RNG.standard_normal(ws), True, device)
    b = t(RNG.standard_normal(ws[0]), True, device) if bias else None
    args = (x, w, b) if bias else (x, w)

    def f(x, w, b=None):
        return conv2d(x, w, b, stride, padding, dilation, groups)

    assert gradcheck(f, args)


@pytest.mark.parametrize("xs,ws,stride,padding,output_padding,groups,dilation", [
    ((2, 2, 3, 4), (2, 3, 3, 2), 2, 1, 1, 1, 1),
    ((1, 4, 3, 3), (4, 1, 2, 3), (1, 2), (0, 1), (0, 1), 2, 1),
    ((1, 2, 3, 3), (2, 2, 2, 2), 1, 0, 1, 1, 2),  # output_padding >= stride (allowed by dilation)
])
def test_conv_transpose2d_gradcheck(device, xs, ws, stride, padding, output_padding, groups,
                                    dilation):
    x = t(RNG.standard_normal(xs), True, device)
    w = t(RNG.standard_normal(ws), True, device)
    b = t(RNG.standard_normal(ws[1] * groups), True, device)
    assert gradcheck(lambda x, w, b: conv_transpose2d(x, w, b, stride, padding, output_padding,
                                                      groups, dilation), (x, w, b))


def test_conv_double_backward(device):
    x = t(RNG.standard_normal((1, 2, 4, 4)), True, device)
    w = t(RNG.standard_normal((2, 1, 2, 3)), True, device)
    b = t(RNG.standard_normal(2), True, device)
    assert gradgradcheck(lambda x, w, b: conv2d(x, w, b, 2, 1, 1, 2), (x, w, b))
    wt = t(RNG.standard_normal((2, 3, 3, 2)), True, device)
    assert gradgradcheck(lambda x, w: conv_transpose2d(x, w, None, 2, 1, 1), (x, wt))


# ---------------------------------------------------------------- PyTorch parity
def _torch_device(device):
    """The torch device to compare with: CUDA's conv (cuDNN, TF32 off) on a GPU when the
    installed torch has CUDA, else torch's CPU conv."""
    torch = pytest.importorskip("torch")
    if device == "cuda" and torch.cuda.is_available():
        torch.backends.cudnn.allow_tf32 = False
        return torch, "cuda"
    return torch, "cpu"


@pytest.mark.parametrize("dtype,tol", [(np.float32, 2e-4), (np.float64, 1e-10)])
def test_conv_torch_parity(device, dtype, tol):
    torch, tdev = _torch_device(device)
    F = torch.nn.functional
    ours = lambda a: t(a, True, device)
    theirs = lambda a: torch.tensor(a, device=tdev, requires_grad=True)
    x = RNG.standard_normal((3, 4, 9, 8)).astype(dtype)
    w = RNG.standard_normal((6, 2, 3, 3)).astype(dtype)
    b = RNG.standard_normal(6).astype(dtype)
    gx, gw, gb = (ours(a) for a in (x, w, b))
    y = conv2d(gx, gw, gb, stride=(2, 1), padding=(1, 2), dilation=(2, 1), groups=2)
    tx, tw, tb = (theirs(a) for a in (x, w, b))
    ty = F.conv2d(tx, tw, tb, stride=(2, 1), padding=(1, 2), dilation=(2, 1), groups=2)
    g = RNG.standard_normal(ty.shape).astype(dtype)
    y.backward(t(g, device=device))
    ty.backward(torch.tensor(g, device=tdev))
    for a, b_ in ((y, ty), (gx.grad, tx.grad), (gw.grad, tw.grad), (gb.grad, tb.grad)):
        np.testing.assert_allclose(a.detach().cpu().numpy(), b_.detach().cpu().numpy(),
                                   rtol=tol, atol=tol * 10)
    wt = RNG.standard_normal((4, 3, 4, 4)).astype(dtype)
    gwt, twt = ours(wt), theirs(wt)
    tx.grad = None
    gx.grad = None
    y = conv_transpose2d(gx, gwt, None, 2, 1, 1)
    ty = F.conv_transpose2d(tx, twt, None, 2, 1, 1)
    g = RNG.standard_normal(ty.shape).astype(dtype)
    y.backward(t(g, device=device))
    ty.backward(torch.tensor(g, device=tdev))
    for a, b_ in ((y, ty), (gx.grad, tx.grad), (gwt.grad, twt.grad)):
        np.testing.assert_allclose(a.detach().cpu().numpy(), b_.detach().cpu().numpy(),
                                   rtol=tol, atol=tol * 10)


# ---------------------------------------------------------------- bad inputs
def _zeros(device):
    return lambda *shape: t(np.zeros(shape), device=device)


@pytest.mark.parametrize("call,match", [
    (lambda x: conv2d(x(2, 3), x(1, 3, 1, 1)), r"expected 3-D .* got shape \(2, 3\)"),
    (lambda x: conv2d(x(1, 3, 5, 5), x(1, 3, 3)), r"weight must be 4-D .* \(1, 3, 3\)"),
    (lambda x: conv2d(x(1, 3, 5, 5), x(2, 2, 3, 3)), r"expects input with 2 channels.*3, 5, 5"),
    (lambda x: conv2d(x(1, 4, 5, 5), x(3, 2, 3, 3), groups=2), r"divisible by groups \(2\)"),
    (lambda x: conv2d(x(1, 3, 5, 5), x(2, 3, 3, 3), stride=0), r"stride must be >= 1, got \(0, 0"),
    (lambda x: conv2d(x(1, 3, 5, 5), x(2, 3, 3, 3), padding=-1), r"padding must be >= 0"),
    (lambda x: conv2d(x(1, 3, 5, 5), x(2, 3, 3, 3), dilation=(1, 0)), r"dilation must be >= 1"),
    (lambda x: conv2d(x(1, 3, 2, 5), x(2, 3, 3, 3)), r"larger than the padded input size \(2, 5\)"),
    (lambda x: conv2d(x(1, 3, 5, 5), x(2, 3, 3, 3), x(3)), r"bias must have shape \(2,\)"),
    (lambda x: conv2d(x(1, 3, 0, 5), x(2, 3, 1, 1)), r"zero-size dimension"),
    (lambda x: conv2d(x(1, 3, 5, 5), x(2, 3, 3, 3), stride=2, padding="same"), r"strided"),
    (lambda x: conv2d(x(1, 3, 5, 5), x(2, 3, 3, 3), padding="full"), r"'valid', 'same'"),
    (lambda x: conv_transpose2d(x(1, 2, 3, 3), x(2, 1, 3, 3), stride=2, output_padding=2),
     r"output padding must be smaller than either stride or dilation"),
    (lambda x: conv_transpose2d(x(1, 2, 1, 1), x(2, 1, 1, 1), padding=1), r"output size .* small"),
    (lambda x: conv_transpose2d(x(1, 3, 3, 3), x(2, 1, 3, 3)), r"expects input with 2 channels"),
])
def test_conv_bad_inputs(device, call, match):
    with pytest.raises(ValueError, match=match):
        call(_zeros(device))


def test_conv_dtype_mismatch(device):
    with pytest.raises(TypeError, match="same dtype"):
        conv2d(t(np.zeros((1, 1, 3, 3)), device=device),
               t(np.zeros((1, 1, 1, 1), np.float32), device=device))


def _binding_errors(mod, put, x, w):
    """Each bad call of the conv bindings and the error text it must raise."""
    ones = (1, 1)
    return [
        (lambda: mod.conv2d_forward(x, w, None, (0, 1), (0, 0), ones, 1),
         ValueError, r"^conv2d: stride must be >= 1, got \(0, 1\)$"),
        (lambda: mod.conv2d_forward(x, put(np.zeros((2, 2, 5, 5))), None, ones, (0, 0), ones, 1),
         ValueError, r"^conv2d: kernel \(5, 5\) with dilation \(1, 1\) is larger than the "
                     r"padded input \(4, 4\)$"),
        (lambda: mod.conv2d_forward(x, put(np.zeros((3, 1, 3, 3))), None, ones, (0, 0), ones, 2),
         ValueError, r"^conv2d: in_channels 2 and out_channels 3 must be divisible by groups 2$"),
        (lambda: mod.conv2d_forward(x, put(np.zeros((2, 2, 3, 3), np.float32)), None, ones,
                                    (0, 0), ones, 1),
         TypeError, r"^conv2d: weight must have dtype float64, got float32$"),
        (lambda: mod.conv2d_forward(x, w, put(np.zeros(3)), ones, (0, 0), ones, 1),
         ValueError, r"^conv2d: bias must have shape \(2,\), got \(3,\)$"),
        (lambda: mod.conv2d_backward_input(put(np.zeros((1, 2, 5, 5))), w, (4, 4), ones, (0, 0),
                                           ones, 1),
         ValueError, r"^conv2d_backward_input: grad_output \(1, 2, 5, 5\) does not match weight "
                     r"\(2, 2, 3, 3\) and input size \(4, 4\) \(expected \(1, 2, 2, 2\)\)$"),
        (lambda: mod.conv2d_backward_weight(x, put(np.zeros((2, 2, 2, 2))), (3, 3), ones,
                                            (0, 0), ones, 1),
         ValueError, r"^conv2d_backward_weight: grad_output \(2, 2, 2, 2\) does not match input "
                     r"\(1, 2, 4, 4\)$"),
        (lambda: mod.conv2d_forward(put(np.zeros((1, 2, 0, 4))), w, None, ones, ones, ones, 1),
         ValueError, r"^conv2d: input has an invalid size: shape \(1, 2, 0, 4\)$"),
        (lambda: mod.conv2d_backward_weight(put(np.zeros((1, 2**14, 4, 4))),
                                            put(np.zeros((1, 2, 1, 1))), (2**30, 2**30), ones,
                                            (2**30, 2**30), ones, 1),  # C*kh*kw overflows
         ValueError, r"^conv2d_backward_weight: im2col workspace too large$"),
        (lambda: mod.channel_sum(put(np.zeros(3))),
         ValueError, r"^channel_sum: input must be at least 2-D, got shape \(3,\)$"),
        (lambda: mod.set_conv_workspace_bytes(0),
         ValueError, r"^set_conv_workspace_bytes: bytes must be >= 1, got 0$"),
    ]


def test_binding_validates(device):
    mod, put, _ = native(device)
    x, w = put(np.zeros((1, 2, 4, 4))), put(np.zeros((2, 2, 3, 3)))
    for call, error, match in _binding_errors(mod, put, x, w):
        with pytest.raises(error, match=match):
            call()
    strided = np.zeros((1, 2, 4, 8))
    if device == "cpu":
        strided = strided[..., ::2]
    else:
        strided = put(strided).as_strided((1, 2, 4, 4), (64, 32, 8, 2), 0)
    with pytest.raises(ValueError, match=r"^conv2d: input must be C-contiguous"):
        mod.conv2d_forward(strided, w, None, (1, 1), (0, 0), (1, 1), 1)


def test_threads_agree():
    x = RNG.standard_normal((5, 3, 7, 7))
    w = RNG.standard_normal((4, 3, 3, 3))
    g = RNG.standard_normal((5, 4, 4, 4))
    prev = _C.get_num_threads()
    outs = []
    try:
        for n in (1, 2):
            _C.set_num_threads(n)
            outs.append((_C.conv2d_forward(x, w, None, (2, 2), (1, 1), (1, 1), 1),
                         _C.conv2d_backward_input(g, w, (7, 7), (2, 2), (1, 1), (1, 1), 1),
                         _C.conv2d_backward_weight(x, g, (3, 3), (2, 2), (1, 1), (1, 1), 1)))
    finally:
        _C.set_num_threads(prev)
    for a, b in zip(*outs):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


# The CPU splits the batch over T threads (each running its own chunks) when N is a multiple
# of T or N >= 4T, and otherwise runs chunks of about 512 columns one after another on the
# GEMM's threads: with T = 2, N = 7 is serial and 8, 9 are split (9 unevenly). A thread's
# images come in chunks of at most 512 // L: with L = 100, N = 9, 10, 11 on one thread give
# chunks of 5 + 4, 5 + 5 and 4 + 4 + 3 images. Output widths from 1 to 23 and 2-row-high
# images put the block copies of im2col (whole rows in 32-byte blocks, exact at the end of
# each image and of the input) at and past every row's edge.
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("n,shape,k,stride,padding,dilation", [
    (1, (3, 5, 5), (3, 3), (1, 1), (1, 1), (1, 1)),
    (9, (2, 12, 12), (3, 3), (1, 1), (0, 0), (1, 1)),
    (10, (2, 12, 12), (3, 3), (1, 1), (0, 0), (1, 1)),
    (11, (2, 12, 12), (3, 3), (1, 1), (0, 0), (1, 1)),
    (3, (2, 9, 10), (3, 3), (1, 1), (1, 1), (1, 1)),
    (7, (3, 8, 8), (3, 3), (1, 1), (1, 1), (1, 1)),
    (8, (3, 14, 14), (5, 5), (1, 1), (0, 0), (1, 1)),
    (9, (2, 2, 23), (2, 3), (1, 1), (1, 2), (1, 1)),
    (9, (2, 20, 20), (3, 3), (1, 1), (1, 1), (1, 1)),
    (8, (2, 11, 17), (3, 3), (2, 2), (1, 1), (1, 1)),
    (8, (2, 9, 9), (3, 2), (1, 1), (2, 3), (2, 3)),
    (8, (2, 6, 1), (3, 1), (1, 1), (1, 0), (1, 1)),
])
def test_conv_kernels_batch_over_threads(dtype, threads, n, shape, k, stride, padding, dilation):
    cout = 3
    x = RNG.standard_normal((n, *shape)).astype(dtype)
    w = RNG.standard_normal((cout, shape[0], *k)).astype(dtype)
    b = RNG.standard_normal(cout).astype(dtype)
    saved = _C.get_num_threads()
    _C.set_num_threads(threads)
    try:
        args = (stride, padding, dilation, 1)
        y = _C.conv2d_forward(x, w, b, *args)
        dy = RNG.standard_normal(y.shape).astype(dtype)
        dx = _C.conv2d_backward_input(dy, w, shape[1:], *args)
        dw = _C.conv2d_backward_weight(x, dy, k, *args)
    finally:
        _C.set_num_threads(saved)
    x64, w64, dy64 = x.astype(np.float64), w.astype(np.float64), dy.astype(np.float64)
    ref = ref_conv2d(x64, w64, b.astype(np.float64), stride, padding, dilation, 1)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(y, ref, rtol=tol, atol=tol)
    ref_dx, ref_dw = ref_conv2d_grads(x64, w64, dy64, stride, padding, dilation)
    np.testing.assert_allclose(dx, ref_dx, rtol=tol, atol=tol * 10)
    np.testing.assert_allclose(dw, ref_dw, rtol=tol, atol=tol * 100)


# Stride 2 along a row: im2col gathers every other input element in whole 32-byte blocks of
# output (8 floats, 4 doubles) and col2im adds back in 16-byte vectors (4 floats, 2 doubles),
# exactly near the end of the input. Widths 1 to 37 give output rows of 1 to 19 elements, at,
# below and above every multiple of those; one and three rows, padding 0 and 1 put the edge
# of the image inside and outside the blocks. A 3x3 kernel at stride 2 runs im2col + GEMM.
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("height,padding,width", [
    (h, p, w) for h, p in [(3, 0), (5, 1), (2, 1)] for w in range(1, 38) if w + 2 * p >= 3])
def test_conv_stride2_rows(dtype, height, padding, width):
    x = RNG.standard_normal((2, 3, height, width)).astype(dtype)
    w = RNG.standard_normal((4, 3, 3, 3)).astype(dtype)
    args = ((2, 2), (padding, padding), (1, 1), 1)
    y = _C.conv2d_forward(x, w, None, *args)
    dy = RNG.standard_normal(y.shape).astype(dtype)
    dx = _C.conv2d_backward_input(dy, w, (height, width), *args)
    dw = _C.conv2d_backward_weight(x, dy, (3, 3), *args)
    x64, w64, dy64 = x.astype(np.float64), w.astype(np.float64), dy.astype(np.float64)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(y, ref_conv2d(x64, w64, None, *args[:3], 1), rtol=tol, atol=tol)
    ref_dx, ref_dw = ref_conv2d_grads(x64, w64, dy64, *args[:3])
    np.testing.assert_allclose(dx, ref_dx, rtol=tol, atol=tol * 10)
    np.testing.assert_allclose(dw, ref_dw, rtol=tol, atol=tol * 100)


# The direct convolution (csrc/cpu/conv.cpp) takes float32 undilated, ungrouped convs with a
# kernel larger than 1x1 (here stride 1; strided ones below). Its output vectors (8 floats on
# AVX2, 16 on AVX-512) are whole rows when the output width is a multiple of the vector width,
# else a flat grid over the padded rows (Wp = OW + kw - 1 wide, rounded up to whole vectors,
# garbage columns dropped); its channels come in blocks of 4, a last partial block staged. It
# runs when at least half of the channels of its blocks and half of its grid's positions are
# real outputs, and a flat grid only up to 288 taps (C*kh*kw of the correlation; 576 on
# AVX-512): forward over (Cin -> Cout, OH x OW), input gradient over (Cout -> Cin, H x W) with
# any padding, weight gradient as the forward when Cin*kh*kw <= 288 (576)
# (its taps go in groups of 3, or 6: the rest left over). Tiles are 3 vectors (6), between 3
# and 6 (6 and 12) left two tiles of half of them: 1 to 7 (13) vectors per plane cover every
# remainder. Cases just below, at and above each condition; each result is checked against the
# float64 im2col path, at every SIMD level (portable: im2col only).
DIRECT_CASES = [  # n, cin, (h, w), cout, (kh, kw), (ph, pw)
    (2, 4, (8, 8), 4, (3, 3), (1, 1)),     # whole rows everywhere, 8 vectors
    (2, 4, (8, 7), 4, (3, 3), (1, 1)),     # OW = W = 7: flat (56 of 72 positions) everywhere
    (2, 4, (8, 9), 4, (3, 3), (1, 1)),     # OW = W = 9: flat (72 of 88)
    (1, 4, (5, 7), 4, (3, 3), (1, 1)),     # flat, 45 positions rounded up to 48
    (2, 4, (8, 10), 4, (3, 3), (0, 0)),    # OW = 8 (forward), W = 10 (input gradient: flat)
    (2, 4, (6, 6), 4, (3, 3), (2, 2)),     # OW = 8 (forward); padding 2 < 3: W = 6, flat
    (2, 4, (6, 8), 4, (3, 3), (2, 2)),     # W = 8, padding 2 = kh - 1: input gradient direct
    (2, 4, (6, 8), 4, (3, 3), (3, 3)),     # padding 3 = kh: dy's window starts inside it
    (2, 4, (6, 8), 4, (3, 3), (4, 4)),     # padding 4 > kh
    (1, 4, (5, 3), 4, (3, 3), (1, 1)),     # OW = 3 of Wp = 5: 15 of 32 real, below half: im2col
    (1, 4, (4, 3), 4, (3, 3), (1, 1)),     # 12/24: at half, flat
    (1, 4, (3, 3), 4, (3, 3), (1, 1)),     # 9/16: above
    (1, 4, (1, 1), 4, (3, 3), (1, 1)),     # 1/8: im2col
    (1, 1, (8, 16), 4, (3, 3), (1, 1)),    # Cin = 1 (1/4 of a block): input gradient im2col
    (1, 2, (8, 16), 4, (3, 3), (1, 1)),    # Cin = 2 (2/4): a partial block
    (1, 3, (8, 16), 4, (3, 3), (1, 1)),    # Cin = 3
    (1, 5, (8, 16), 8, (3, 3), (1, 1)),    # Cin = 5 (5/8): a full block and a partial one
    (1, 8, (8, 16), 1, (3, 3), (1, 1)),    # Cout = 1: forward and weight gradient im2col
    (1, 8, (8, 16), 2, (3, 3), (1, 1)),    # Cout = 2: a partial block (weight: dy staged)
    (1, 8, (8, 16), 5, (3, 3), (1, 1)),    # Cout = 5
    (2, 4, (8, 16), 6, (3, 3), (1, 1)),    # Cout = 6, whole rows: the weight gradient stages dy
    (2, 1, (12, 12), 6, (5, 5), (0, 0)),   # LeNet's first layer: flat, 6 channels
    (1, 8, (8, 12), 3, (3, 3), (1, 1)),    # a partial block on a flat grid
    (3, 4, (1, 8), 12, (3, 3), (1, 1)),    # 1 vector per plane
    (1, 4, (2, 8), 4, (3, 3), (1, 1)),     # 2
    (1, 4, (3, 8), 4, (3, 3), (1, 1)),     # 3
    (1, 4, (4, 8), 4, (3, 3), (1, 1)),     # 4 = 2 + 2
    (1, 4, (5, 8), 4, (3, 3), (1, 1)),     # 5 = 3 + 2
    (1, 4, (7, 8), 4, (3, 3), (1, 1)),     # 7 = 3 + 2 + 2
    (1, 4, (1, 6), 4, (1, 3), (0, 1)),     # flat, 1x3: 1 vector per plane, reads past the plane
    (1, 4, (2, 6), 4, (1, 3), (0, 1)),     # 2
    (1, 4, (4, 6), 4, (1, 3), (0, 1)),     # 4
    (1, 4, (5, 6), 4, (1, 3), (0, 1)),     # 5
    (2, 4, (9, 24), 8, (3, 3), (1, 1)),    # 27 vectors, 3 per row
    (2, 4, (5, 16), 4, (1, 3), (0, 1)),    # 1x3
    (2, 4, (5, 8), 4, (3, 1), (1, 0)),     # 3x1
    (2, 4, (9, 9), 4, (2, 2), (0, 0)),     # 2x2, OW = 8, W = 9
    (2, 8, (12, 12), 4, (5, 5), (0, 0)),   # 5x5, OW = 8, W = 12
    (2, 4, (8, 8), 4, (1, 1), (0, 0)),     # 1x1: the GEMM path
    (0, 4, (8, 8), 4, (3, 3), (1, 1)),     # empty batch
    (1, 4, (8, 8), 4, (3, 3), (1, 1)),     # one (image, block) pair: fewer than the threads
    (1, 32, (7, 7), 4, (3, 3), (1, 1)),    # flat forward of 288 taps: direct
    (1, 33, (7, 7), 4, (3, 3), (1, 1)),    # 297: im2col (AVX-512: direct)
    (1, 4, (7, 7), 32, (3, 3), (1, 1)),    # flat input gradient of 288 taps: direct
    (1, 4, (7, 7), 33, (3, 3), (1, 1)),    # 297: im2col (AVX-512: direct)
    (2, 31, (8, 8), 4, (3, 3), (1, 1)),    # 279 taps: direct weight gradient
    (2, 32, (8, 8), 4, (3, 3), (1, 1)),    # 288 taps: direct weight gradient
    (2, 33, (8, 8), 4, (3, 3), (1, 1)),    # 297 taps: its GEMMs (whole-row forward: direct)
    (1, 64, (7, 7), 4, (3, 3), (1, 1)),    # flat forward of 576 taps: AVX-512 direct
    (1, 65, (7, 7), 4, (3, 3), (1, 1)),    # 585: im2col
    (1, 4, (7, 7), 64, (3, 3), (1, 1)),    # flat input gradient of 576 taps: AVX-512 direct
    (1, 4, (7, 7), 65, (3, 3), (1, 1)),    # 585: im2col
    (2, 63, (8, 16), 4, (3, 3), (1, 1)),   # 567 taps: AVX-512 direct weight gradient
    (2, 64, (8, 16), 4, (3, 3), (1, 1)),   # 576
    (2, 65, (8, 16), 4, (3, 3), (1, 1)),   # 585: its GEMMs
    (2, 7, (8, 8), 4, (2, 2), (1, 1)),     # 28 taps: a group of 1 left over
    (2, 5, (8, 8), 4, (2, 2), (1, 1)),     # 20 taps: a group of 2 left over
    # AVX-512's vectors of 16 (above, the AVX2 vectors of 8; the 8 x 16 cases fit both)
    (2, 4, (8, 15), 4, (3, 3), (1, 1)),    # OW = 15: flat at both widths
    (2, 4, (8, 17), 4, (3, 3), (1, 1)),    # OW = 17: flat at both
    (2, 4, (4, 32), 4, (3, 3), (1, 1)),    # whole rows of 2 vectors of 16
    (3, 4, (1, 16), 12, (3, 3), (1, 1)),   # 1 vector of 16 per plane
    (1, 4, (2, 16), 4, (3, 3), (1, 1)),    # 2
    (1, 4, (3, 16), 4, (3, 3), (1, 1)),    # 3
    (1, 4, (4, 16), 4, (3, 3), (1, 1)),    # 4 = 2 + 2
    (1, 4, (5, 16), 4, (3, 3), (1, 1)),    # 5 = 3 + 2
    (1, 4, (7, 16), 4, (3, 3), (1, 1)),    # 7 = 3 + 2 + 2 (AVX-512's tiles of 6: 4 + 3)
    (1, 4, (6, 16), 4, (3, 3), (1, 1)),    # 6: one tile of 6
    (1, 4, (11, 16), 4, (3, 3), (1, 1)),   # 11 = 6 + 5
    (1, 4, (12, 16), 4, (3, 3), (1, 1)),   # 12 = 6 + 6
    (1, 4, (13, 16), 4, (3, 3), (1, 1)),   # 13 = 6 + 4 + 3
    (1, 4, (3, 5), 4, (3, 3), (1, 1)),     # flat, 3 rows of Wp = 7: 15 of 32 real at 16
    (2, 3, (8, 16), 4, (3, 3), (1, 1)),    # 27 taps: weight groups of 6, 3 left over
    (2, 1, (8, 16), 4, (5, 5), (2, 2)),    # 25 taps: 1 left over (of 3: 1)
    (2, 5, (8, 16), 4, (1, 7), (0, 3)),    # 35 taps: 5 left over (of 3: 2)
]


# A stride-s conv whose kernel the stride divides into more than one tap: the direct forward
# is the stride-1 correlation of the image's s*s phases (space to depth) with (kh/s, kw/s) taps,
# the input gradient s*s stride-1 correlations of dy, one per phase of dx, scattered into it,
# the weight gradient (up to 288 taps C*kh*kw) that of the forward's correlation, each tap
# scattered back to its place in the kernel.
STRIDED_CASES = [  # n, cin, (h, w), cout, (kh, kw), stride, (ph, pw)
    (2, 4, (16, 16), 4, (4, 4), 2, (1, 1)),   # DCGAN's k4 s2 p1: 8x8 output, whole rows
    (2, 3, (14, 14), 6, (4, 4), 2, (1, 1)),   # 7x7 output: a flat grid; partial blocks
    (2, 8, (16, 16), 8, (4, 4), 2, (5, 5)),   # padding 5 above the kernel: dy's window cropped
    (2, 4, (15, 17), 4, (4, 4), 2, (1, 1)),   # odd sizes: the last phases' rows and columns
    (1, 4, (16, 16), 4, (4, 4), 2, (0, 0)),   # unpadded: 7x7
    (1, 4, (16, 16), 4, (4, 4), 2, (3, 2)),   # padding of 3 and 2, above s
    (1, 4, (16, 16), 4, (4, 2), 2, (1, 0)),   # 2x1 taps
    (1, 4, (16, 16), 4, (2, 2), 2, (0, 0)),   # 1 tap: im2col
    (1, 4, (16, 16), 4, (3, 3), 2, (1, 1)),   # 3 is not a multiple of 2: im2col
    (1, 2, (24, 24), 4, (6, 6), 3, (1, 1)),   # stride 3: 9 phases of 2x2 taps
    (0, 4, (16, 16), 4, (4, 4), 2, (1, 1)),   # empty batch
    (2, 17, (8, 8), 4, (4, 4), 2, (1, 1)),    # 272 taps: direct weight gradient
    (2, 18, (8, 8), 4, (4, 4), 2, (1, 1)),    # 288
    (2, 19, (8, 8), 4, (4, 4), 2, (1, 1)),    # 304: its GEMMs
]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("n,cin,hw,cout,k,stride,pad",
                         [(*c[:5], 1, c[5]) for c in DIRECT_CASES] + STRIDED_CASES)
def test_conv_direct_path_thresholds(simd, threads, n, cin, hw, cout, k, stride, pad):
    x = RNG.standard_normal((n, cin, *hw)).astype(np.float32)
    w = RNG.standard_normal((cout, cin, *k)).astype(np.float32)
    b = RNG.standard_normal(cout).astype(np.float32)
    args = ((stride, stride), pad, (1, 1), 1)
    y64 = _C.conv2d_forward(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64),
                            *args)
    dy = RNG.standard_normal(y64.shape).astype(np.float32)
    dx64 = _C.conv2d_backward_input(dy.astype(np.float64), w.astype(np.float64), hw, *args)
    dw64 = _C.conv2d_backward_weight(x.astype(np.float64), dy.astype(np.float64), k, *args)
    saved = _C.get_num_threads()
    _C.set_num_threads(threads)
    try:
        y = _C.conv2d_forward(x, w, b, *args)
        dx = _C.conv2d_backward_input(dy, w, hw, *args)
        dw = _C.conv2d_backward_weight(x, dy, k, *args)
    finally:
        _C.set_num_threads(saved)
    assert y.dtype == dx.dtype == dw.dtype == np.float32
    np.testing.assert_allclose(y, y64, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dx, dx64, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dw, dw64, rtol=1e-4, atol=1e-3)


# The weight gradient of a stride-s conv whose kernel s divides into more than one tap per
# phase, on the GEMM path (float64; float32 above the direct path's 288 taps, or without
# AVX2), reads flat columns of each image's gathered phases: Hq x Wq planes, each col row one
# copy of OH*Wq elements whose Wq - OW garbage columns meet zeros in the dy blocks. One tap per
# phase (k2 s2) takes the strided im2col.
PHASE_CASES = [  # n, cin, (h, w), cout, (kh, kw), stride, (ph, pw)
    (3, 19, (16, 16), 5, (4, 4), 2, (1, 1)),   # 304 taps: 8x8 outputs, rows of 9
    (3, 19, (15, 17), 4, (4, 4), 2, (1, 1)),   # odd sizes: the last phases' rows and columns
    (2, 19, (16, 16), 4, (4, 4), 2, (3, 2)),   # padding above s
    (2, 19, (16, 16), 4, (4, 4), 2, (0, 0)),   # unpadded: 7x7
    (2, 38, (16, 16), 4, (4, 2), 2, (1, 0)),   # 2x1 taps per phase
    (2, 9, (24, 24), 3, (6, 6), 3, (1, 1)),    # stride 3: 9 phases of 2x2 taps
    (2, 19, (16, 16), 4, (2, 2), 2, (0, 0)),   # 1 tap per phase: im2col
    (0, 19, (16, 16), 4, (4, 4), 2, (1, 1)),   # empty batch
]


def check_weight_gradient(n, cin, hw, cout, k, stride, pad, dtype):
    x = RNG.standard_normal((n, cin, *hw)).astype(dtype)
    w = RNG.standard_normal((cout, cin, *k)).astype(dtype)
    args = ((stride, stride), pad, (1, 1))
    y = ref_conv2d(x.astype(np.float64), w.astype(np.float64), None, *args, 1)
    dy = RNG.standard_normal(y.shape)
    dw = _C.conv2d_backward_weight(x, dy.astype(dtype), k, *args, 1)
    _, ref_dw = ref_conv2d_grads(x.astype(np.float64), w.astype(np.float64), dy, *args)
    tol = 1e-12 if dtype == np.float64 else 1e-4
    assert dw.dtype == dtype
    np.testing.assert_allclose(dw, ref_dw, rtol=tol, atol=tol * 100)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("case", PHASE_CASES)
def test_conv_weight_gradient_on_flat_phases(simd, dtype, threads, case):
    saved = _C.get_num_threads()
    _C.set_num_threads(threads)
    try:
        check_weight_gradient(*case, dtype)
    finally:
        _C.set_num_threads(saved)


# The flat phase columns run when a chunk holds a whole image, OH*Wq = 8*9 = 72 columns of
# (K + Cout) elements per thread here; at 64 (OH*OW) the strided im2col still holds whole
# images, below it splits them.
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("columns", [63, 64, 71, 72, 73])
def test_conv_weight_gradient_on_flat_phases_at_the_workspace_cap(dtype, threads, columns):
    n, cin, cout = 4, 19, 5
    saved, saved_cap = _C.get_num_threads(), _C.conv_workspace_bytes()
    _C.set_num_threads(threads)
    _C.set_conv_workspace_bytes(columns * threads * (cin * 16 + cout) * np.dtype(dtype).itemsize)
    try:
        check_weight_gradient(n, cin, (16, 16), cout, (4, 4), 2, (1, 1), dtype)
    finally:
        _C.set_num_threads(saved)
        _C.set_conv_workspace_bytes(saved_cap)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("run", [1, 2, 3, 5])
@pytest.mark.parametrize("width", [8, 7])
def test_conv_direct_weight_gradient_in_runs_of_images(threads, run, width):
    """The direct weight gradient pads as many images at once as fit the workspace cap: caps
    of 1, 2, 3 and 5 images split a batch of 5 into runs (each padded image, and on a flat
    grid, width 7, its dy laid out as the grid) fit a run's workspace."""
    n, cin, cout = 5, 4, 8
    # floats per image: the padded image, and on the flat grid (rows 9 wide, 54 positions
    # rounded up to 56) 11 floats of slack and dy's 8 planes of 56
    per_image = cin * 8 * 10 if width == 8 else cin * 8 * 9 + 11 + cout * 56
    x = RNG.standard_normal((n, cin, 6, width)).astype(np.float32)
    dy = RNG.standard_normal((n, cout, 6, width)).astype(np.float32)
    args = ((1, 1), (1, 1), (1, 1), 1)
    expected = _C.conv2d_backward_weight(x.astype(np.float64), dy.astype(np.float64), (3, 3),
                                         *args)
    saved, saved_cap = _C.get_num_threads(), _C.conv_workspace_bytes()
    _C.set_num_threads(threads)
    _C.set_conv_workspace_bytes(run * per_image * 4)
    try:
        dw = _C.conv2d_backward_weight(x, dy, (3, 3), *args)
    finally:
        _C.set_num_threads(saved)
        _C.set_conv_workspace_bytes(saved_cap)
    np.testing.assert_allclose(dw, expected, rtol=1e-4, atol=1e-4)


def test_conv_direct_path_non_contiguous_and_parity():
    """A ResNet-shaped layer through the Tensor API: transposed (non-contiguous) input and
    weight, gradients of all three operands, against the same computation in float64."""
    xs = RNG.standard_normal((3, 16, 16, 8))
    ws = RNG.standard_normal((3, 3, 8, 16)) * 0.1
    outs = []
    for dtype in (np.float32, np.float64):
        x = t(xs.astype(dtype).transpose(0, 3, 1, 2), True)
        w = t(ws.astype(dtype).transpose(3, 2, 0, 1), True)
        b = t(np.arange(16, dtype=dtype), True)
        y = conv2d(x, w, b, 1, 1)
        (y * y).sum().backward()
        outs.append([a.numpy() for a in (y.detach(), x.grad, w.grad, b.grad)])
    for a, e in zip(*outs):
        np.testing.assert_allclose(a, e, rtol=2e-4, atol=2e-3)


def test_conv2d_non_contiguous_input_over_threads(simd):
    """A transposed (non-contiguous) input and weight give the contiguous result on 1 and 2
    threads, forward and backward, at every SIMD level of the kernels."""
    xs = RNG.standard_normal((8, 9, 9, 3))
    ws = RNG.standard_normal((3, 3, 3, 4))
    results = []
    saved = _C.get_num_threads()
    try:
        for threads in (1, 2):
            _C.set_num_threads(threads)
            for arrays in ((xs.transpose(0, 3, 1, 2), ws.transpose(3, 2, 0, 1)),
                           (np.ascontiguousarray(xs.transpose(0, 3, 1, 2)),
                            np.ascontiguousarray(ws.transpose(3, 2, 0, 1)))):
                x, w = t(arrays[0], True), t(arrays[1], True)
                y = conv2d(x, w, None, 1, 1)
                (y * y).sum().backward()
                results.append((y.detach().numpy(), x.grad.numpy(), w.grad.numpy()))
    finally:
        _C.set_num_threads(saved)
    ref = ref_conv2d(xs.transpose(0, 3, 1, 2), ws.transpose(3, 2, 0, 1), None, (1, 1), (1, 1),
                     (1, 1), 1)
    for y, dx, dw in results:
        np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(dx, results[-1][1], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(dw, results[-1][2], rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- workspace cap
# Each device keeps one call's im2col workspace under <module>.conv_workspace_bytes(). The CPU
# (csrc/cpu/conv.cpp) has at most cap = bytes // ((K + Cog) * itemsize) columns in all,
# cap // threads per thread; CUDA (csrc/cuda/conv_chunks.h) cap = bytes // ((Cin*kh*kw + Cout)
# * itemsize) columns per chunk of images. Images with more output positions L than that are
# split into runs of columns, one after another. A small cap puts the thresholds at a few dozen
# columns.
CAP_BYTES = 16 * 1024


@pytest.fixture
def small_workspace(device):
    mod = native(device)[0]
    saved = mod.conv_workspace_bytes()
    mod.set_conv_workspace_bytes(CAP_BYTES)
    yield
    mod.set_conv_workspace_bytes(saved)


def split_cases():
    """(device, dtype, threads, N, groups, L, OW): L just below, at and above the cap (per
    thread on the CPU), and several runs per image, some of which start and end mid-row."""
    cases = []
    for dtype in (np.float32, np.float64):
        cap = CAP_BYTES // ((2 * 3 * 3 + 2) * np.dtype(dtype).itemsize)  # K = 18, Cog = 2
        for threads in (1, 2):
            cases += [("cpu", dtype, threads, 3, 2, cap // threads + d, 1) for d in (-1, 0, 1)]
        cases += [("cpu", dtype, 2, 3, 2, 2 * cap + 1, 1), ("cpu", dtype, 1, 2, 1, 3 * cap + 5, 7)]
        for groups in (1, 2):  # CUDA: Cin = 2 * groups, Cout = 2 * groups, 3x3
            cap = CAP_BYTES // ((2 * groups * 9 + 2 * groups) * np.dtype(dtype).itemsize)
            cases += [pytest.param("cuda", dtype, 1, 5, groups, L, 1, marks=pytest.mark.cuda)
                      for L in (cap // 3, cap // 2, cap - 1, cap, cap + 1, 2 * cap + 1)]
            cases.append(pytest.param("cuda", dtype, 1, 2, groups, 3 * cap + 5, 7,
                                      marks=pytest.mark.cuda))
    return cases


@pytest.mark.parametrize("device,dtype,threads,n,groups,L,ow", split_cases())
def test_conv_kernels_split_images_over_the_workspace_cap(small_workspace, device, dtype,
                                                          threads, n, groups, L, ow):
    mod, put, get = native(device)
    oh = -(-L // ow)
    stride, padding = ((1, 2), (1, 2)) if ow > 1 else ((1, 1), (1, 0))
    h, wd = oh - 2 * padding[0] + 2, (ow - 1) * stride[1] + 3 - 2 * padding[1]
    x = RNG.standard_normal((n, 2 * groups, h, wd)).astype(dtype)
    w = RNG.standard_normal((2 * groups, 2, 3, 3)).astype(dtype)
    b = RNG.standard_normal(2 * groups).astype(dtype)
    saved = _C.get_num_threads()
    _C.set_num_threads(threads)
    try:
        args = (stride, padding, (1, 1), groups)
        y = get(mod.conv2d_forward(put(x), put(w), put(b), *args))
        dy = RNG.standard_normal(y.shape).astype(dtype)
        dx = get(mod.conv2d_backward_input(put(dy), put(w), (h, wd), *args))
        dw = get(mod.conv2d_backward_weight(put(x), put(dy), (3, 3), *args))
    finally:
        _C.set_num_threads(saved)
    assert y.shape == (n, 2 * groups, oh, ow)
    x64, w64, dy64 = x.astype(np.float64), w.astype(np.float64), dy.astype(np.float64)
    ref = ref_conv2d(x64, w64, b.astype(np.float64), stride, padding, (1, 1), groups)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(y, ref, rtol=tol, atol=tol)
    # The gradients are the forward's adjoints: <dy, conv(x, w)> = <dx, x> = <dw, w>, up to
    # rounding relative to the sum of the terms' magnitudes (the sum itself may cancel).
    inner = np.sum(dy64 * ref_conv2d(x64, w64, None, stride, padding, (1, 1), groups))
    magnitude = np.sum(np.abs(dy64) * ref_conv2d(np.abs(x64), np.abs(w64), None, stride,
                                                 padding, (1, 1), groups))
    assert abs(np.sum(dx * x64) - inner) <= tol * 10 * magnitude
    assert abs(np.sum(dw * w64) - inner) <= tol * 10 * magnitude


def test_conv_transpose_output_too_large_is_a_memory_error_naming_the_op():
    with pytest.raises(MemoryError, match=r"conv_transpose2d: conv2d_backward_input: out of "
                                          r"memory: could not allocate the output of shape"):
        gf.nn.functional.conv_transpose2d(gf.rand(1, 1, 3, 3), gf.rand(1, 1, 2, 2), stride=2**20)


@pytest.mark.parametrize("k", [1, 3])
def test_conv_kernels_on_an_empty_batch(device, k):
    mod, put, get = native(device)
    x, w = put(np.zeros((0, 2, 5, 5))), put(RNG.standard_normal((3, 2, k, k)))
    args = ((1, 1), (k // 2, k // 2), (1, 1), 1)
    y = mod.conv2d_forward(x, w, put(np.ones(3)), *args)
    assert y.shape == (0, 3, 5, 5)
    assert mod.conv2d_backward_input(y, w, (5, 5), *args).shape == (0, 2, 5, 5)
    dw = mod.conv2d_backward_weight(x, y, (k, k), *args)
    np.testing.assert_array_equal(get(dw), np.zeros((3, 2, k, k)))
    np.testing.assert_array_equal(get(mod.channel_sum(y)), np.zeros(3))
