"""The small integer dtypes (uint8, int8, int16, int32) are kept as such, and promote as in
PyTorch: every pair of dtypes, tensor with tensor, with a 0-d tensor and with a Python scalar,
for arithmetic, comparisons, reductions and conversions."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from parity import needs_torch

import gradflow as gf
from gradflow.utils.data import default_collate

NAMES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float32", "float64"]
SMALL = ["uint8", "int8", "int16", "int32"]


def _values(name, shape=(3,)):
    """Small values every dtype holds (0/1 for bool)."""
    a = np.arange(1, 1 + int(np.prod(shape))).reshape(shape) % 3
    return a.astype(np.bool_ if name == "bool" else name)


def test_dtypes_exist_with_pytorchs_aliases():
    assert (gf.uint8, gf.int8, gf.int16, gf.int32) == (gf.byte, gf.char, gf.short, gf.int)
    for name in SMALL:
        d = getattr(gf, name)
        assert not d.is_floating_point and d.itemsize == np.dtype(name).itemsize
        assert repr(d) == f"gradflow.{name}"


@pytest.mark.parametrize("name", SMALL)
def test_arrays_keep_their_dtype(name, tmp_path):
    a = _values(name, (2, 3))
    for t in (gf.tensor(a), gf.from_numpy(a), gf.as_tensor(a)):
        assert t.dtype is getattr(gf, name) and t.numpy().dtype == a.dtype
    assert gf.from_numpy(a)._data is a or np.shares_memory(gf.from_numpy(a).numpy(), a)
    t = gf.tensor([1, 2], dtype=getattr(gf, name))
    assert t.dtype is getattr(gf, name)
    assert gf.zeros(2, dtype=name).dtype is getattr(gf, name)
    gf.save({"t": t}, tmp_path / "t.gf")
    back = gf.load(tmp_path / "t.gf")["t"]
    assert back.dtype is t.dtype and gf.equal(back, t)
    assert f"dtype=gradflow.{name}" in repr(t)


def test_conversion_methods():
    t = gf.tensor([1.7, -2.2, 3.0])
    assert t.int().dtype is gf.int32 and t.int().tolist() == [1, -2, 3]
    assert t.short().dtype is gf.int16 and t.char().dtype is gf.int8
    assert t.abs().byte().dtype is gf.uint8 and t.abs().byte().tolist() == [1, 2, 3]
    assert t.to(gf.int16).long().dtype is gf.int64
    assert t.to("uint8").dtype is gf.uint8


@needs_torch
@pytest.mark.parametrize("a,b", list(itertools.product(NAMES, NAMES)))
def test_promotion_matches_torch(a, b):
    import torch

    ga, gb = gf.tensor(_values(a)), gf.tensor(_values(b))
    ta, tb = torch.tensor(_values(a)), torch.tensor(_values(b))
    assert gf.promote_types(ga.dtype, gb.dtype).name == str(torch.promote_types(ta.dtype,
                                                                             tb.dtype))[6:]
    for op in (lambda x, y: x + y, lambda x, y: x * y, lambda x, y: x < y,
               lambda x, y: x == y, lambda x, y: gf.maximum(x, y) if isinstance(x, gf.Tensor)
               else torch.maximum(x, y)):
        ours, theirs = op(ga, gb), op(ta, tb)
        assert ours.dtype.name == str(theirs.dtype)[6:], (a, b)
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    if "bool" not in (a, b):
        assert (ga - gb).dtype.name == str((ta - tb).dtype)[6:]
        assert (ga / (gb + 1)).dtype.name == str((ta / (tb + 1)).dtype)[6:]
    zero_d = gf.tensor(_values(b)[0])
    assert (ga + zero_d).dtype.name == str((ta + torch.tensor(_values(b)[0])).dtype)[6:]


@needs_torch
@pytest.mark.parametrize("name", SMALL)
@pytest.mark.parametrize("scalar", [2, 1.5, True])
def test_scalars_do_not_widen_small_ints(name, scalar):
    import torch

    ours, theirs = gf.tensor(_values(name)) * scalar, torch.tensor(_values(name)) * scalar
    assert ours.dtype.name == str(theirs.dtype)[6:]
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


@needs_torch
@pytest.mark.parametrize("name", SMALL)
def test_reductions_and_ops_match_torch(name):
    import torch

    a = _values(name, (2, 3))
    g, t = gf.tensor(a), torch.tensor(a)
    cases = [lambda m, x: x.sum(), lambda m, x: x.sum(1), lambda m, x: x.prod(),
             lambda m, x: x.max(), lambda m, x: x.argmax(), lambda m, x: x.min(0)[0],
             lambda m, x: x.float().mean(), lambda m, x: x[x > 0], lambda m, x: x.reshape(3, 2),
             lambda m, x: m.cat([x, x]), lambda m, x: x.t(), lambda m, x: x // 2,
             lambda m, x: x % 2, lambda m, x: m.where(x > 1, x, x * 0), lambda m, x: x.abs(),
             lambda m, x: x.clamp(0, 1), lambda m, x: x.double() / 2]
    for case in cases:
        ours, theirs = case(gf, g), case(torch, t)
        assert ours.dtype.name == str(theirs.dtype)[6:], case
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


@needs_torch
def test_uint8_images_collate_and_normalise_as_torch():
    import torch
    from torch.utils.data import default_collate as torch_collate

    images = [np.full((2, 2), 200, np.uint8), np.zeros((2, 2), np.uint8)]
    ours, theirs = default_collate(images), torch_collate(images)
    assert ours.dtype is gf.uint8 and theirs.dtype is torch.uint8
    np.testing.assert_allclose((ours.float() / 255).numpy(), (theirs.float() / 255).numpy())


def test_out_of_range_scalars_and_cuda_storage_are_refused_clearly():
    t = gf.tensor(_values("uint8"))
    with pytest.raises(ValueError, match="add: the Python int 300 does not fit in gradflow.uint8"):
        t + 300
    with pytest.raises(ValueError, match="does not fit in gradflow.int8"):
        gf.full((2,), 200, dtype=gf.int8)
    with pytest.raises(RuntimeError, match="only Tensors of floating point dtype can require"):
        gf.tensor([1], dtype=gf.int16, requires_grad=True)


@needs_torch
def test_embedding_takes_int32_indices_as_torch():
    import torch

    weight = np.random.default_rng(0).standard_normal((5, 3))
    idx = np.array([[1, 4], [0, 1]], np.int32)
    ours = gf.nn.functional.embedding(gf.tensor(idx), gf.tensor(weight))
    theirs = torch.nn.functional.embedding(torch.tensor(idx), torch.tensor(weight))
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    with pytest.raises(RuntimeError, match="expected indices of dtype int64 or int32, got "
                       "gradflow.int16"):
        gf.nn.functional.embedding(gf.tensor(idx).short(), gf.tensor(weight))
