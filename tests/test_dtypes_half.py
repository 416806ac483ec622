"""float16 and bfloat16 as CPU storage types: creation, conversion (bfloat16 rounds to the
nearest, ties to even), math in float32 rounded back, autograd, save/load and state_dict,
promotion, finfo, and the clear refusal on CUDA."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from parity import needs_torch
from strategies import array_pairs, shaped_arrays, shapes

import gradflow as gf
from gradflow.types import BFLOAT16_BITS

HALVES = [gf.float16, gf.bfloat16]


def _bfloat16_reference(x: np.ndarray) -> np.ndarray:
    """float32 -> the nearest bfloat16 (ties to the even one), as float32, by comparing the
    two bfloat16 neighbours: the truncation and the next one up in magnitude."""
    x = np.asarray(x, np.float32)
    bits = x.view(np.uint32)
    down = (bits & np.uint32(0xFFFF0000)).view(np.float32)
    up = ((bits & np.uint32(0xFFFF0000)) + np.uint32(0x10000)).view(np.float32)
    err_down = np.abs(x.astype(np.float64) - down)
    err_up = np.abs(up.astype(np.float64) - x)
    down_is_even = ((bits >> 16) & 1) == 0
    pick_up = (err_up < err_down) | ((err_up == err_down) & ~down_is_even)
    return np.where(np.isnan(x), x, np.where(pick_up, up, down)).astype(np.float32)


def _values(t: gf.Tensor) -> np.ndarray:
    """A tensor's values as float32 (bfloat16 has no NumPy dtype)."""
    return t.detach().float().numpy()


def _as_half(a: np.ndarray, dtype) -> np.ndarray:
    """a (float32 values) rounded to dtype, as float32."""
    a = np.asarray(a, np.float32)
    return a.astype(np.float16).astype(np.float32) if dtype is gf.float16 else \
        _bfloat16_reference(a)


# ---------------------------------------------------------------- creation and conversion
@pytest.mark.parametrize("dtype", HALVES)
def test_creation_functions_take_the_half_dtypes(dtype):
    for t in (gf.zeros(2, 3, dtype=dtype), gf.ones(2, 3, dtype=dtype),
              gf.full((2, 3), 1.5, dtype=dtype), gf.randn(2, 3, dtype=dtype),
              gf.rand(2, 3, dtype=dtype), gf.empty(2, 3, dtype=dtype),
              gf.arange(0, 3, 0.5, dtype=dtype), gf.tensor([[1.0, 2.0]], dtype=dtype),
              gf.zeros_like(gf.ones(2), dtype=dtype), gf.eye(3, dtype=dtype)):
        assert t.dtype is dtype and t.is_floating_point() and t.element_size() == 2
    np.testing.assert_array_equal(_values(gf.full((2,), 1.5, dtype=dtype)), 1.5)
    np.testing.assert_array_equal(_values(gf.arange(0, 3, 0.5, dtype=dtype)),
                                  np.arange(0, 3, 0.5))
    r = _values(gf.rand(1000, dtype=dtype))
    assert r.min() >= 0 and r.max() <= 1 and 0.4 < r.mean() < 0.6


def test_float16_numpy_round_trip_and_inference():
    a = np.arange(6, dtype=np.float16).reshape(2, 3)
    t = gf.from_numpy(a)
    assert t.dtype is gf.float16 and np.shares_memory(t.numpy(), a)
    assert gf.tensor(a).dtype is gf.float16 and gf.as_tensor(a).dtype is gf.half
    assert gf.tensor(a.T).numpy().dtype == np.float16  # a non-contiguous source


def test_bfloat16_has_no_numpy_dtype_as_in_pytorch():
    t = gf.tensor([1.0, 2.0], dtype=gf.bfloat16)
    with pytest.raises(TypeError, match=r"numpy\(\): NumPy has no bfloat16"):
        t.numpy()
    assert t.tolist() == [1.0, 2.0] and t[1].item() == 2.0
    assert t.float().numpy().dtype == np.float32


@settings(deadline=None, max_examples=60)
@given(a=shaped_arrays(shapes(0, 3), np.float32, -1e5, 1e5))
def test_bfloat16_rounds_to_nearest_even(a):
    out = gf.from_numpy(a).bfloat16()
    np.testing.assert_array_equal(_values(out), _bfloat16_reference(a))


def test_bfloat16_rounding_of_ties_and_specials():
    values = np.array([1 + 2**-8, 1 + 3 * 2**-8, 1 + 2**-8 + 2**-20, -(1 + 2**-8), 3.4e38,
                       np.inf, -np.inf, np.nan, 1e-40, -0.0], np.float32)
    out = _values(gf.tensor(values).bfloat16())
    np.testing.assert_array_equal(out[:4], [1.0, 1 + 4 * 2**-8, 1 + 2**-7, -1.0])  # ties: even
    assert out[4] == np.inf and out[5] == np.inf and out[6] == -np.inf and np.isnan(out[7])
    assert out[8] == _bfloat16_reference(values[8:9])[0] and np.signbit(out[9])


@pytest.mark.parametrize("dtype", HALVES)
def test_conversions_between_dtypes(dtype):
    x = gf.tensor([1.0, -2.5, 1 / 3, 300.7])
    h = x.to(dtype)
    assert h.dtype is dtype and (x.half() if dtype is gf.float16 else x.bfloat16()).dtype is dtype
    np.testing.assert_array_equal(_values(h), _as_half(x.numpy(), dtype))
    assert h.float().dtype is gf.float32 and h.double().dtype is gf.float64
    np.testing.assert_array_equal(h.int().numpy(), [1, -2, 0, int(_values(h)[3])])
    assert h.int().dtype is gf.int32 and h.long().dtype is gf.int64
    assert gf.tensor([True, False]).to(dtype).tolist() == [1.0, 0.0]
    assert h.to(gf.float16 if dtype is gf.bfloat16 else gf.bfloat16).dtype is not dtype
    assert h.to(dtype) is h and gf.tensor(h).dtype is dtype
    assert h.type() == {gf.float16: "gradflow.HalfTensor",
                        gf.bfloat16: "gradflow.BFloat16Tensor"}[dtype]
    assert f"dtype=gradflow.{dtype.name}" in repr(h)


# ---------------------------------------------------------------- math in float32
BINARY = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide,
          "maximum": np.maximum}


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")
@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
@settings(deadline=None, max_examples=40)
@given(pair=array_pairs(np.float32, -100, 100), op=st.sampled_from(sorted(BINARY)),
       dtype=st.sampled_from(HALVES))
def test_binary_ops_compute_in_float32_and_round_back(pair, op, dtype):
    a, b = (_as_half(v, dtype) for v in pair)
    ta, tb = gf.from_numpy(np.asarray(a)).to(dtype), gf.from_numpy(np.asarray(b)).to(dtype)
    out = getattr(gf, op)(ta, tb)
    assert out.dtype is dtype
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = _as_half(BINARY[op](a, b), dtype)
    np.testing.assert_array_equal(_values(out), expected)


@settings(deadline=None, max_examples=30)
@given(a=shaped_arrays(shapes(0, 3), np.float32, -3, 3), dtype=st.sampled_from(HALVES))
def test_unary_ops_and_reductions_round_once(a, dtype):
    h = _as_half(a, dtype)
    t = gf.from_numpy(np.asarray(h)).to(dtype)
    for got, want in [(t.exp(), np.exp(h)), (t.tanh(), np.tanh(h)), (-t, -h),
                      (t * 2.5, h * np.float32(2.5)), (t.sum(), h.sum(dtype=np.float32)),
                      (t.abs().amax() if h.size else t.sum(), np.abs(h).max() if h.size
                       else np.float32(0))]:
        assert got.dtype is dtype
        np.testing.assert_allclose(_values(got), _as_half(want, dtype), rtol=1e-6)


@pytest.mark.parametrize("dtype", HALVES)
def test_matmul_and_layers_run_in_float32(dtype):
    rng = np.random.default_rng(0)
    a, b = (_as_half(rng.normal(size=s), dtype) for s in ((2, 3, 5), (5, 4)))
    out = gf.tensor(a).to(dtype) @ gf.tensor(b).to(dtype)
    assert out.dtype is dtype
    np.testing.assert_allclose(_values(out), _as_half(a @ b, dtype), rtol=1e-2, atol=1e-3)
    assert (gf.ones(2, 2, dtype=dtype) @ gf.ones(2, 2)).dtype is gf.float32
    conv = gf.nn.Conv2d(1, 2, 3).to(dtype)
    assert conv(gf.ones(1, 1, 5, 5, dtype=dtype)).dtype is dtype
    assert gf.nn.Linear(3, 2).to(dtype)(gf.ones(4, 3, dtype=dtype)).dtype is dtype


@pytest.mark.parametrize("dtype", HALVES)
def test_in_place_ops_and_indexing(dtype):
    w = gf.zeros(2, 3, dtype=dtype)
    w[0, 1] = 5
    w[1] = gf.tensor([1.0, 2.0, 3.0])
    w.add_(gf.ones(3)).mul_(0.5)
    w.T[0].fill_(7)
    np.testing.assert_array_equal(_values(w), [[7, 3, 0.5], [7, 1.5, 2]])
    w.copy_(gf.full((2, 3), 1 / 3))
    np.testing.assert_array_equal(_values(w), _as_half(np.full((2, 3), 1 / 3), dtype))
    assert gf.cat([w, w]).dtype is dtype and w[:, ::2].contiguous().dtype is dtype
    assert gf.where(w > 0.3, w, 0.0).dtype is dtype and w.masked_fill(w > 0, 2).dtype is dtype
    idx = gf.tensor([1, 0])
    assert w.index_select(1, idx).dtype is dtype and w.gather(1, idx[None]).dtype is dtype
    z = gf.zeros(3, dtype=dtype).index_add_(0, gf.tensor([0, 0]), gf.ones(2, dtype=dtype))
    assert z.tolist() == [2.0, 0.0, 0.0]


# ---------------------------------------------------------------- autograd
@pytest.mark.parametrize("dtype", HALVES)
def test_requires_grad_and_backward(dtype):
    rng = np.random.default_rng(1)
    a = _as_half(rng.normal(size=(3, 4)), dtype)
    x = gf.tensor(a).to(dtype).requires_grad_()
    y = ((x * x).sum(1) + x.exp().mean()).sum()
    y.backward()
    assert x.grad.dtype is dtype and y.dtype is dtype
    ref = gf.tensor(a, requires_grad=True)
    ((ref * ref).sum(1) + ref.exp().mean()).sum().backward()
    np.testing.assert_allclose(_values(x.grad), ref.grad.numpy(), rtol=2e-2, atol=1e-3)
    leaf = gf.ones(2, dtype=dtype, requires_grad=True)
    assert leaf.requires_grad and (leaf * 2).grad_fn is not None
    h = gf.ones(2, requires_grad=True)
    h.to(dtype).sum().backward()  # the cast's gradient comes back as float32
    assert h.grad.dtype is gf.float32


@pytest.mark.parametrize("dtype", HALVES)
def test_optimizer_steps_on_half_parameters(dtype):
    # Seeded: in float16 Adam's (1 - beta2) * g**2 underflows to 0 for |g| < 8e-3, as in
    # PyTorch, and a first step then divides by eps alone (1e-8 is 0 there: 1e-4 is not).
    gf.manual_seed(0)
    model = gf.nn.Linear(3, 1).to(dtype)
    opt = gf.optim.Adam(model.parameters(), lr=0.1, eps=1e-4)
    x = gf.randn(8, 3, dtype=dtype)
    losses = []
    for _ in range(5):
        opt.zero_grad()
        loss = (model(x) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert model.weight.dtype is dtype and losses[-1] < losses[0]


# ---------------------------------------------------------------- save, load, state_dict
@pytest.mark.parametrize("dtype", HALVES)
def test_save_load_and_state_dict_round_trips(dtype, tmp_path):
    model = gf.nn.Linear(3, 2).to(dtype)
    assert gf.nn.Linear(3, 2).half().weight.dtype is gf.float16
    assert gf.nn.Linear(3, 2).bfloat16().weight.dtype is gf.bfloat16
    path = tmp_path / "half.gf"
    gf.save({"state": model.state_dict(), "dtype": dtype, "t": gf.tensor([0.1], dtype=dtype)},
            path)
    back = gf.load(path)
    assert back["dtype"] is dtype and back["t"].dtype is dtype
    for name, value in model.state_dict().items():
        assert back["state"][name].dtype is dtype
        np.testing.assert_array_equal(_values(back["state"][name]), _values(value))
    other = gf.nn.Linear(3, 2).to(dtype)
    other.load_state_dict(back["state"])
    np.testing.assert_array_equal(_values(other.weight), _values(model.weight))
    as_float = gf.nn.Linear(3, 2)
    as_float.load_state_dict(back["state"])  # values convert into float32 parameters
    np.testing.assert_array_equal(as_float.weight.detach().numpy(), _values(model.weight))


def test_a_bfloat16_checkpoint_stores_uint16_bits():
    buf = io.BytesIO()
    gf.save(gf.tensor([1.0, -2.0], dtype=gf.bfloat16), buf)
    buf.seek(0)
    stored = np.load(buf, allow_pickle=False)["a0"]
    assert stored.dtype == np.uint16 and stored.tolist() == [0x3F80, 0xC000]


# ---------------------------------------------------------------- promotion, finfo, CUDA
def test_promotion_rules():
    f16, bf16 = gf.float16, gf.bfloat16
    assert gf.promote_types(f16, bf16) is gf.float32
    assert gf.promote_types(f16, gf.float32) is gf.float32
    assert gf.promote_types(bf16, gf.float64) is gf.float64
    assert gf.promote_types(gf.int64, f16) is f16 and gf.promote_types(gf.bool, bf16) is bf16
    assert (gf.ones(2, dtype=f16) + 1.5).dtype is f16
    assert (gf.ones(2, dtype=bf16) + gf.tensor(1.0, dtype=gf.float64)).dtype is bf16
    assert gf.half is gf.float16 and gf.as_tensor([1.0], dtype="half").dtype is f16


@needs_torch
def test_promotion_and_finfo_match_torch():
    import torch

    names = ["float16", "bfloat16", "float32", "float64", "int64", "int32", "uint8", "bool"]
    for a in names:
        for b in names:
            got = gf.promote_types(getattr(gf, a), getattr(gf, b))
            assert got.name == str(torch.promote_types(getattr(torch, a),
                                                       getattr(torch, b))).split(".")[1]
    for name in ["float16", "bfloat16", "float32", "float64"]:
        ours, theirs = gf.finfo(getattr(gf, name)), torch.finfo(getattr(torch, name))
        for field in ("bits", "eps", "max", "min", "tiny", "smallest_normal", "resolution"):
            assert getattr(ours, field) == pytest.approx(getattr(theirs, field), rel=1e-6), \
                (name, field)


@needs_torch
@settings(deadline=None, max_examples=30)
@given(pair=array_pairs(np.float32, -1e4, 1e4), dtype=st.sampled_from(["float16", "bfloat16"]))
def test_half_arithmetic_matches_torch(pair, dtype):
    import torch

    ta, tb = (torch.tensor(v.copy()).to(getattr(torch, dtype)) for v in pair)
    ga, gb = (gf.from_numpy(v).to(getattr(gf, dtype)) for v in pair)
    np.testing.assert_array_equal(_values(ga), ta.float().numpy())  # the conversion, bit exact
    for f in (lambda m, x, y: x + y, lambda m, x, y: x * y, lambda m, x, y: x / (y.abs() + 1),
              lambda m, x, y: m.maximum(x, y), lambda m, x, y: (x - y).exp()):
        np.testing.assert_array_equal(_values(f(gf, ga, gb)), f(torch, ta, tb).float().numpy())


def test_finfo_values():
    assert gf.finfo(gf.bfloat16).eps == 2.0 ** -7 and gf.finfo(gf.float16).max == 65504.0
    assert gf.finfo().bits == 32 and gf.finfo(gf.float64).eps == np.finfo(np.float64).eps
    with pytest.raises(TypeError, match="finfo: expected a floating-point dtype"):
        gf.finfo(gf.int64)


def test_bfloat16_storage_dtype_is_distinct():
    t = gf.ones(2, dtype=gf.bfloat16)
    assert t._data.dtype == BFLOAT16_BITS and t.dtype is not gf.int16
    with pytest.raises(TypeError):
        np.add(t._data, t._data)  # NumPy refuses integer math on the stored bits


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", HALVES)
def test_half_dtypes_are_refused_on_cuda(dtype):
    with pytest.raises(TypeError, match="is not supported on cuda"):
        gf.ones(2, dtype=dtype).to("cuda")
    with pytest.raises(TypeError, match="is not supported on cuda"):
        gf.zeros(2, dtype=dtype, device="cuda")
