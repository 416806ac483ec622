"""conv2d / conv_transpose2d: NumPy reference, gradcheck, PyTorch parity, bad inputs."""

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


def t(a, requires_grad=False):
    return gf.tensor(a, requires_grad=requires_grad)


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


@settings(max_examples=60, deadline=None)
@given(conv_configs())
def test_conv2d_matches_reference(cfg):
    n, cin, cout, h, w, k, stride, padding, dilation, groups, bias = cfg
    x = RNG.standard_normal((n, cin, h, w))
    wt = RNG.standard_normal((cout, cin // groups) + k)
    b = RNG.standard_normal(cout) if bias else None
    y = conv2d(t(x), t(wt), None if b is None else t(b), stride, padding, dilation, groups)
    np.testing.assert_allclose(y.numpy(), ref_conv2d(x, wt, b, stride, padding, dilation, groups),
                               rtol=1e-10, atol=1e-10)
    y32 = conv2d(t(x.astype(np.float32)), t(wt.astype(np.float32)),
                 None if b is None else t(b.astype(np.float32)), stride, padding, dilation, groups)
    assert y32.dtype is gf.float32
    np.testing.assert_allclose(y32.numpy(), y.numpy(), rtol=1e-4, atol=1e-4)


@settings(max_examples=40, deadline=None)
@given(conv_configs(), st.integers(0, 2), st.integers(0, 2))
def test_conv_transpose2d_matches_reference(cfg, oph, opw):
    n, cin, cout, h, w, k, stride, padding, dilation, groups, bias = cfg
    op = (oph % max(stride[0], dilation[0]), opw % max(stride[1], dilation[1]))
    oh = (h - 1) * stride[0] - 2 * padding[0] + dilation[0] * (k[0] - 1) + op[0] + 1
    ow = (w - 1) * stride[1] - 2 * padding[1] + dilation[1] * (k[1] - 1) + op[1] + 1
    if oh < 1 or ow < 1:
        return
    x = RNG.standard_normal((n, cin, h, w))
    wt = RNG.standard_normal((cin, cout // groups) + k)
    b = RNG.standard_normal(cout) if bias else None
    y = conv_transpose2d(t(x), t(wt), None if b is None else t(b), stride, padding, op, groups,
                         dilation)
    ref = ref_conv_transpose2d(x, wt, b, stride, padding, op, groups, dilation)
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-10, atol=1e-10)


def test_conv2d_special_shapes():
    x = RNG.standard_normal((2, 3, 5, 5))
    # 1x1 (the direct-GEMM path), kernel equal to the input, unbatched input
    w1 = RNG.standard_normal((4, 3, 1, 1))
    np.testing.assert_allclose(conv2d(t(x), t(w1)).numpy(),
                               ref_conv2d(x, w1, None, (1, 1), (0, 0), (1, 1), 1), atol=1e-12)
    w5 = RNG.standard_normal((2, 3, 5, 5))
    y = conv2d(t(x), t(w5))
    assert y.shape == (2, 2, 1, 1)
    np.testing.assert_allclose(y.numpy()[:, :, 0, 0], np.einsum("nchw,ochw->no", x, w5),
                               atol=1e-12)
    y3 = conv2d(t(x[0]), t(w5), padding=1)
    assert y3.shape == (2, 3, 3)
    np.testing.assert_allclose(y3.numpy(), conv2d(t(x[:1]), t(w5), padding=1).numpy()[0])


@pytest.mark.parametrize("k,dil", [((3, 3), (1, 1)), ((2, 4), (1, 1)), ((3, 2), (2, 3))])
def test_conv2d_padding_strings(k, dil):
    x = RNG.standard_normal((1, 2, 6, 7))
    w = RNG.standard_normal((3, 2) + k)
    y = conv2d(t(x), t(w), padding="same", dilation=dil)
    assert y.shape == (1, 3, 6, 7)
    # PyTorch's rule: total padding d*(k-1), the odd pixel at the bottom/right
    tot = (dil[0] * (k[0] - 1), dil[1] * (k[1] - 1))
    xp = np.pad(x, ((0, 0), (0, 0), (tot[0] // 2, tot[0] - tot[0] // 2),
                    (tot[1] // 2, tot[1] - tot[1] // 2)))
    np.testing.assert_allclose(y.numpy(), ref_conv2d(xp, w, None, (1, 1), (0, 0), dil, 1),
                               atol=1e-12)
    yv = conv2d(t(x), t(w), padding="valid", dilation=dil)
    np.testing.assert_allclose(yv.numpy(), ref_conv2d(x, w, None, (1, 1), (0, 0), dil, 1),
                               atol=1e-12)


# ---------------------------------------------------------------- gradients
GRAD_CASES = [
    # (x shape, w shape, bias, stride, padding, dilation, groups)
    ((2, 2, 5, 4), (3, 2, 3, 2), True, 1, 0, 1, 1),
    ((1, 4, 6, 5), (4, 2, 3, 3), False, (2, 1), (1, 2), 1, 2),
    ((2, 3, 6, 6), (3, 1, 2, 2), True, 2, 1, 2, 3),
    ((1, 2, 4, 4), (2, 2, 1, 1), True, 1, 0, 1, 1),
    ((1, 1, 3, 3), (2, 1, 3, 3), False, 1, 0, 1, 1),
]


@pytest.mark.parametrize("xs,ws,bias,stride,padding,dilation,groups", GRAD_CASES)
def test_conv2d_gradcheck(xs, ws, bias, stride, padding, dilation, groups):
    x = t(RNG.standard_normal(xs), True)
    w = t(RNG.standard_normal(ws), True)
    b = t(RNG.standard_normal(ws[0]), True) if bias else None
    args = (x, w, b) if bias else (x, w)

    def f(x, w, b=None):
        return conv2d(x, w, b, stride, padding, dilation, groups)

    assert gradcheck(f, args)


@pytest.mark.parametrize("xs,ws,stride,padding,output_padding,groups,dilation", [
    ((2, 2, 3, 4), (2, 3, 3, 2), 2, 1, 1, 1, 1),
    ((1, 4, 3, 3), (4, 1, 2, 3), (1, 2), (0, 1), (0, 1), 2, 1),
    ((1, 2, 3, 3), (2, 2, 2, 2), 1, 0, 1, 1, 2),  # output_padding >= stride (allowed by dilation)
])
def test_conv_transpose2d_gradcheck(xs, ws, stride, padding, output_padding, groups, dilation):
    x = t(RNG.standard_normal(xs), True)
    w = t(RNG.standard_normal(ws), True)
    b = t(RNG.standard_normal(ws[1] * groups), True)
    assert gradcheck(lambda x, w, b: conv_transpose2d(x, w, b, stride, padding, output_padding,
                                                      groups, dilation), (x, w, b))


def test_conv_double_backward():
    x = t(RNG.standard_normal((1, 2, 4, 4)), True)
    w = t(RNG.standard_normal((2, 1, 2, 3)), True)
    b = t(RNG.standard_normal(2), True)
    assert gradgradcheck(lambda x, w, b: conv2d(x, w, b, 2, 1, 1, 2), (x, w, b))
    wt = t(RNG.standard_normal((2, 3, 3, 2)), True)
    assert gradgradcheck(lambda x, w: conv_transpose2d(x, w, None, 2, 1, 1), (x, wt))


# ---------------------------------------------------------------- PyTorch parity
@pytest.mark.parametrize("dtype,tol", [(np.float32, 2e-4), (np.float64, 1e-10)])
def test_conv_torch_parity(dtype, tol):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = RNG.standard_normal((3, 4, 9, 8)).astype(dtype)
    w = RNG.standard_normal((6, 2, 3, 3)).astype(dtype)
    b = RNG.standard_normal(6).astype(dtype)
    gx, gw, gb = t(x, True), t(w, True), t(b, True)
    y = conv2d(gx, gw, gb, stride=(2, 1), padding=(1, 2), dilation=(2, 1), groups=2)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = F.conv2d(tx, tw, tb, stride=(2, 1), padding=(1, 2), dilation=(2, 1), groups=2)
    g = RNG.standard_normal(ty.shape).astype(dtype)
    y.backward(t(g))
    ty.backward(torch.tensor(g))
    for ours, theirs in ((y, ty), (gx.grad, tx.grad), (gw.grad, tw.grad), (gb.grad, tb.grad)):
        np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=tol,
                                   atol=tol * 10)
    wt = RNG.standard_normal((4, 3, 4, 4)).astype(dtype)
    gwt, twt = t(wt, True), torch.tensor(wt, requires_grad=True)
    tx.grad = None
    gx.grad = None
    y = conv_transpose2d(gx, gwt, None, 2, 1, 1)
    ty = F.conv_transpose2d(tx, twt, None, 2, 1, 1)
    g = RNG.standard_normal(ty.shape).astype(dtype)
    y.backward(t(g))
    ty.backward(torch.tensor(g))
    for ours, theirs in ((y, ty), (gx.grad, tx.grad), (gwt.grad, twt.grad)):
        np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=tol,
                                   atol=tol * 10)


# ---------------------------------------------------------------- bad inputs
def _x(*shape):
    return t(np.zeros(shape))


@pytest.mark.parametrize("call,match", [
    (lambda: conv2d(_x(2, 3), _x(1, 3, 1, 1)), r"expected 3-D .* got shape \(2, 3\)"),
    (lambda: conv2d(_x(1, 3, 5, 5), _x(1, 3, 3)), r"weight must be 4-D .* \(1, 3, 3\)"),
    (lambda: conv2d(_x(1, 3, 5, 5), _x(2, 2, 3, 3)), r"expects input with 2 channels.*3, 5, 5"),
    (lambda: conv2d(_x(1, 4, 5, 5), _x(3, 2, 3, 3), groups=2), r"divisible by groups \(2\)"),
    (lambda: conv2d(_x(1, 3, 5, 5), _x(2, 3, 3, 3), stride=0), r"stride must be >= 1, got \(0, 0"),
    (lambda: conv2d(_x(1, 3, 5, 5), _x(2, 3, 3, 3), padding=-1), r"padding must be >= 0"),
    (lambda: conv2d(_x(1, 3, 5, 5), _x(2, 3, 3, 3), dilation=(1, 0)), r"dilation must be >= 1"),
    (lambda: conv2d(_x(1, 3, 2, 5), _x(2, 3, 3, 3)), r"larger than the padded input size \(2, 5\)"),
    (lambda: conv2d(_x(1, 3, 5, 5), _x(2, 3, 3, 3), _x(3)), r"bias must have shape \(2,\)"),
    (lambda: conv2d(_x(1, 3, 0, 5), _x(2, 3, 1, 1)), r"zero-size dimension"),
    (lambda: conv2d(_x(1, 3, 5, 5), _x(2, 3, 3, 3), stride=2, padding="same"), r"strided"),
    (lambda: conv2d(_x(1, 3, 5, 5), _x(2, 3, 3, 3), padding="full"), r"'valid', 'same'"),
    (lambda: conv_transpose2d(_x(1, 2, 3, 3), _x(2, 1, 3, 3), stride=2, output_padding=2),
     r"output padding must be smaller than either stride or dilation"),
    (lambda: conv_transpose2d(_x(1, 2, 1, 1), _x(2, 1, 1, 1), padding=1), r"output size .* small"),
    (lambda: conv_transpose2d(_x(1, 3, 3, 3), _x(2, 1, 3, 3)), r"expects input with 2 channels"),
])
def test_conv_bad_inputs(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_conv_dtype_mismatch():
    with pytest.raises(TypeError, match="same dtype"):
        conv2d(t(np.zeros((1, 1, 3, 3))), t(np.zeros((1, 1, 1, 1), np.float32)))


def test_binding_validates():
    x = np.zeros((1, 2, 4, 4))
    w = np.zeros((2, 2, 3, 3))
    with pytest.raises(ValueError, match=r"conv2d: stride must be >= 1"):
        _C.conv2d_forward(x, w, None, (0, 1), (0, 0), (1, 1), 1)
    with pytest.raises(ValueError, match=r"larger than the padded input"):
        _C.conv2d_forward(x, np.zeros((2, 2, 5, 5)), None, (1, 1), (0, 0), (1, 1), 1)
    with pytest.raises(ValueError, match=r"divisible by groups"):
        _C.conv2d_forward(x, np.zeros((3, 1, 3, 3)), None, (1, 1), (0, 0), (1, 1), 2)
    with pytest.raises(TypeError, match=r"dtype"):
        _C.conv2d_forward(x, w.astype(np.float32), None, (1, 1), (0, 0), (1, 1), 1)
    with pytest.raises(ValueError, match=r"grad_output .* does not match"):
        _C.conv2d_backward_input(np.zeros((1, 2, 5, 5)), w, (4, 4), (1, 1), (0, 0), (1, 1), 1)
    with pytest.raises(ValueError, match=r"invalid size"):
        _C.conv2d_forward(np.zeros((1, 2, 0, 4)), w, None, (1, 1), (1, 1), (1, 1), 1)
    with pytest.raises(ValueError, match=r"C-contiguous"):
        _C.conv2d_forward(np.zeros((1, 2, 4, 8))[..., ::2], w, None, (1, 1), (0, 0), (1, 1), 1)


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


# ---------------------------------------------------------------- workspace cap
# csrc/cpu/conv.cpp keeps the im2col workspace of one call under _C.conv_workspace_bytes():
# at most cap = bytes // ((K + Cog) * itemsize) columns in all, cap // threads per thread.
# Images with more output positions L than that are split into runs of columns, one after
# another. A small cap puts the thresholds at a few dozen columns.
CAP_BYTES = 16 * 1024


@pytest.fixture
def small_workspace():
    saved = _C.conv_workspace_bytes()
    _C.set_conv_workspace_bytes(CAP_BYTES)
    yield
    _C.set_conv_workspace_bytes(saved)


def split_cases():
    """(dtype, threads, N, groups, L, OW): L just below, at and above cap // threads, and
    several runs per image, some of which start and end mid-row."""
    cases = []
    for dtype in (np.float32, np.float64):
        cap = CAP_BYTES // ((2 * 3 * 3 + 2) * np.dtype(dtype).itemsize)  # K = 18, Cog = 2
        for threads in (1, 2):
            cases += [(dtype, threads, 3, 2, cap // threads + d, 1) for d in (-1, 0, 1)]
        cases += [(dtype, 2, 3, 2, 2 * cap + 1, 1), (dtype, 1, 2, 1, 3 * cap + 5, 7)]
    return cases


@pytest.mark.parametrize("dtype,threads,n,groups,L,ow", split_cases())
def test_conv_kernels_split_images_over_the_workspace_cap(small_workspace, dtype, threads, n,
                                                          groups, L, ow):
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
        y = _C.conv2d_forward(x, w, b, *args)
        dy = RNG.standard_normal(y.shape).astype(dtype)
        dx = _C.conv2d_backward_input(dy, w, (h, wd), *args)
        dw = _C.conv2d_backward_weight(x, dy, (3, 3), *args)
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


def test_conv_workspace_cap_is_validated():
    with pytest.raises(ValueError, match="set_conv_workspace_bytes: bytes must be >= 1, got 0"):
        _C.set_conv_workspace_bytes(0)


def test_conv_transpose_output_too_large_is_a_memory_error_naming_the_op():
    with pytest.raises(MemoryError, match=r"conv_transpose2d: conv2d_backward_input: out of "
                                          r"memory: could not allocate the output of shape"):
        gf.nn.functional.conv_transpose2d(gf.rand(1, 1, 3, 3), gf.rand(1, 1, 2, 2), stride=2**20)


def test_conv_kernels_on_an_empty_batch():
    x, w = np.zeros((0, 2, 5, 5)), RNG.standard_normal((3, 2, 3, 3))
    args = ((1, 1), (1, 1), (1, 1), 1)
    y = _C.conv2d_forward(x, w, None, *args)
    assert y.shape == (0, 3, 5, 5)
    assert _C.conv2d_backward_input(y, w, (5, 5), *args).shape == (0, 2, 5, 5)
    dw = _C.conv2d_backward_weight(x, y, (3, 3), *args)
    np.testing.assert_array_equal(dw, np.zeros((3, 2, 3, 3)))
