"""Issue 16: gradflow tensors behave as Python and NumPy objects and PyTorch's data loads.

copy / deepcopy / pickle of tensors, parameters and modules; format(); NumPy arrays as
operands; NumPy dtypes in from_numpy and tensor(); indexing by range, lists, arrays and
tensors (read, gradient, write); axis= / keepdims= aliases; load_state_dict of PyTorch and
NumPy values; DLPack both ways (CPU; CUDA tensors in test_dlpack.py)."""

from __future__ import annotations

import copy
import operator
import pickle

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from parity import needs_torch

import gradflow as gf
import gradflow.nn as nn
from gradflow.autograd import gradcheck

rng = np.random.default_rng(1616)


# ---------------------------------------------------------------- copy and pickle
def test_pickle_round_trips_values_dtype_and_requires_grad():
    for t in (gf.arange(6.0).reshape(2, 3), gf.tensor([1, 2], dtype=gf.int8),
              gf.tensor([True, False]), gf.tensor(3.5, dtype=gf.float64),
              gf.arange(12.0).reshape(3, 4).t(), gf.zeros(0, 3)):
        back = pickle.loads(pickle.dumps(t))
        assert type(back) is gf.Tensor and back.dtype is t.dtype and back.shape == t.shape
        np.testing.assert_array_equal(back.numpy(), t.numpy())
    leaf = gf.ones(2, requires_grad=True)
    (leaf * 2).sum().backward()
    back = pickle.loads(pickle.dumps(leaf))
    assert back.requires_grad and back.is_leaf and back.grad is None  # .grad is not pickled


def test_pickle_of_a_graph_output_gives_a_leaf():
    y = gf.ones(2, requires_grad=True) * 3
    back = pickle.loads(pickle.dumps(y))
    assert back.is_leaf and back.requires_grad
    assert back.detach().numpy().tolist() == [3.0, 3.0]


def test_pickle_keeps_parameters_and_aliasing():
    p = nn.Parameter(gf.ones(3))
    q = nn.Parameter(gf.ones(1), requires_grad=False)
    back_p, back_q, again = pickle.loads(pickle.dumps([p, q, p]))
    assert isinstance(back_p, nn.Parameter) and back_p.requires_grad
    assert isinstance(back_q, nn.Parameter) and not back_q.requires_grad
    assert again is back_p  # pickle's memo keeps shared objects shared


def test_pickle_module_round_trip_trains_the_same():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 2))
    back = pickle.loads(pickle.dumps(model))
    assert isinstance(back[0].weight, nn.Parameter)
    assert list(back.state_dict()) == list(model.state_dict())
    x = gf.randn(1, 1, 4, 4)
    np.testing.assert_array_equal(back(x).detach().numpy(), model(x).detach().numpy())
    back(x).sum().backward()
    assert back[3].weight.grad is not None and model[3].weight.grad is None


def test_unpickled_numpy_arrays_reach_the_native_kernels():
    # an unpickled array's dtype is an equal copy of NumPy's, not the same object
    a = pickle.loads(pickle.dumps(np.ones((1, 1, 3, 3), np.float32)))
    for t in (gf.from_numpy(a), gf.as_tensor(a)):
        assert np.shares_memory(t.numpy(), a)
        assert nn.functional.conv2d(t, gf.ones(1, 1, 2, 2)).tolist() == [[[[4.0, 4.0],
                                                                              [4.0, 4.0]]]]


def test_copy_copy_shares_storage_as_pytorch():
    t = gf.zeros(3)
    c = copy.copy(t)
    c[0] = 5.0
    assert t[0].item() == 5.0 and c is not t
    p = nn.Parameter(gf.ones(2))
    assert isinstance(copy.copy(p), nn.Parameter)


def test_deepcopy_of_module_and_parameter_is_independent():
    model = nn.Linear(2, 2)
    twin = copy.deepcopy(model)
    with gf.no_grad():
        twin.weight.fill_(0.0)
    assert not np.all(model.weight.detach().numpy() == 0)
    assert isinstance(twin.weight, nn.Parameter)


def test_gradflow_save_stays_pickle_free(tmp_path):
    path = tmp_path / "w.pt"
    gf.save({"w": gf.ones(2)}, path)
    with np.load(path, allow_pickle=False) as f:  # would raise on a pickled member
        assert len(f.files) >= 1


@pytest.mark.cuda
def test_pickled_cuda_tensor_comes_back_on_its_device():
    t = gf.arange(4.0, device="cuda")
    back = pickle.loads(pickle.dumps(t))
    assert back.device == t.device
    np.testing.assert_array_equal(back.cpu().numpy(), t.cpu().numpy())


# ---------------------------------------------------------------- format
def test_format_of_one_element_tensors():
    assert format(gf.tensor(3.14159), ".2f") == "3.14"
    assert format(gf.tensor([2.5]), ".1f") == "2.5"
    assert f"{gf.tensor([[7]])}" == "tensor([[7]])"
    with pytest.raises(TypeError):
        format(gf.ones(2), ".2f")


# ---------------------------------------------------------------- NumPy arrays as operands
OPS = [operator.add, operator.sub, operator.mul, operator.truediv, operator.lt, operator.le,
       operator.gt, operator.ge, operator.eq, operator.ne, operator.pow]


@pytest.mark.parametrize("op", OPS, ids=lambda f: f.__name__)
def test_ndarray_operands_on_either_side_give_tensors(op):
    a = rng.uniform(0.5, 2.0, (3, 4))
    b = rng.uniform(0.5, 2.0, (4,))
    t = gf.tensor(a)
    for left, right, ref in ((t, b, op(a, b)), (b, t, op(b, a))):
        out = op(left, right)
        assert isinstance(out, gf.Tensor)
        np.testing.assert_allclose(out.numpy(), ref, rtol=1e-6)


def test_ndarray_matmul_and_gradient_through_the_tensor_side():
    a = rng.standard_normal((2, 3))
    t = gf.tensor(rng.standard_normal((3, 2)), dtype=gf.float64, requires_grad=True)
    out = a @ t
    assert isinstance(out, gf.Tensor)
    np.testing.assert_allclose(out.detach().numpy(), a @ t.detach().numpy())
    (t @ a).sum().backward()
    np.testing.assert_allclose(t.grad.numpy(), np.ones((3, 3)) @ a.T)


def test_ndarray_operand_promotion_follows_pytorch():
    assert (gf.ones(2) + np.ones(2)).dtype is gf.float64  # an array is a tensor, not a scalar
    assert (gf.ones(2) + np.ones(2, np.int8)).dtype is gf.float32
    assert (gf.ones(2, dtype=gf.int32) + np.ones(2, np.int64)).dtype is gf.int64
    t = gf.zeros(2)
    t += np.array([1.0, 2.0])
    assert t.dtype is gf.float32 and t.numpy().tolist() == [1.0, 2.0]


def test_numpy_scalars_are_python_numbers_to_promotion():
    t = gf.ones(2)
    for scalar in (np.float64(2), np.int64(2), np.bool_(True), np.float32(2), np.int8(2)):
        assert (scalar * t).dtype is gf.float32 and (t + scalar).dtype is gf.float32
    assert (gf.ones(2, dtype=gf.int32) * np.int64(3)).dtype is gf.int32
    assert (gf.ones(2, dtype=gf.int64) * np.float64(1.5)).dtype is gf.float32
    t += np.float64(1.0)
    assert t.dtype is gf.float32 and t.tolist() == [2.0, 2.0]
    with pytest.raises(TypeError, match="mul: unsupported operand type str"):
        np.str_("a") * t


@needs_torch
def test_ndarray_operands_match_torch_where_torch_takes_them():
    import torch

    a = rng.standard_normal((2, 3))
    for op in (operator.add, operator.mul, operator.truediv):
        mine, theirs = op(gf.ones(2, 3), a), op(torch.ones(2, 3), a)
        assert str(mine.dtype).split(".")[-1] == str(theirs.dtype).split(".")[-1]
        np.testing.assert_allclose(mine.numpy(), theirs.numpy())


# ---------------------------------------------------------------- NumPy dtypes
@pytest.mark.parametrize("np_dtype, gf_dtype", [
    (np.int8, gf.int8), (np.int16, gf.int16), (np.int32, gf.int32), (np.uint8, gf.uint8),
    (np.bool_, gf.bool), (np.int64, gf.int64), (np.float32, gf.float32),
    (np.float64, gf.float64)])
def test_from_numpy_and_tensor_keep_small_integer_dtypes(np_dtype, gf_dtype):
    a = np.array([0, 1, 1], dtype=np_dtype)
    shared = gf.from_numpy(a)
    assert shared.dtype is gf_dtype and gf.tensor(a).dtype is gf_dtype
    a[0] = 1
    assert shared[0].item() == 1  # from_numpy shares memory


@pytest.mark.parametrize("np_dtype", [np.complex64, np.complex128, np.uint32, np.uint64,
                                      "datetime64[s]", object])
def test_from_numpy_names_the_dtypes_it_cannot_share(np_dtype):
    with pytest.raises(TypeError, match="from_numpy: can't convert np.ndarray of type"):
        gf.from_numpy(np.zeros(2, dtype=np_dtype))


def test_tensor_refuses_complex_with_a_clear_message():
    with pytest.raises(TypeError, match="unsupported dtype complex64"):
        gf.tensor(np.zeros(2, np.complex64))


# ---------------------------------------------------------------- indexing
KEYS = [
    range(2), range(3, 0, -2), [0, 2], [[0, 1], [2, 0]], np.array([3, 1]),
    np.array([True, False, True, False]), (slice(None), [1, 2]), ([0, 3], slice(1, 3)),
    (None, [1, 2], Ellipsis), (Ellipsis, [0, 2, 2]), ([0, 1], [2, 0]), ([[0], [3]], [1, 2]),
    (range(2), None, 1), (np.array([[True, False, True]] * 4),),
]


@pytest.mark.parametrize("key", KEYS, ids=repr)
def test_getitem_matches_numpy_and_gradcheck(key):
    a = rng.standard_normal((4, 3))
    t = gf.tensor(a, dtype=gf.float64, requires_grad=True)
    np.testing.assert_array_equal(t[key].detach().numpy(), a[_numpy_key(key)])
    assert gradcheck(lambda x: x[key], (t,))


@pytest.mark.parametrize("key", KEYS, ids=repr)
def test_setitem_matches_numpy(key):
    a = rng.standard_normal((4, 3))
    t = gf.tensor(a)
    t[key] = -1.0
    ref = a.copy()
    ref[_numpy_key(key)] = -1.0
    np.testing.assert_allclose(t.numpy(), ref, rtol=1e-6)


def test_indexing_by_tensors_of_every_integer_dtype_and_byte_masks():
    t = gf.arange(5.0)
    for d in (gf.int8, gf.int16, gf.int32, gf.int64):
        assert t[gf.tensor([4, 0], dtype=d)].tolist() == [4.0, 0.0]
    assert t[gf.tensor([1, 0, 1, 0, 0], dtype=gf.uint8)].tolist() == [0.0, 2.0]  # a mask
    with pytest.raises(IndexError, match="long, int, byte or bool tensors, got gradflow.float32"):
        t[gf.tensor([1.0])]


def test_setitem_by_range_with_a_tensor_value_is_differentiable():
    base = gf.zeros(4, 2, dtype=gf.float64)
    v = gf.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=gf.float64, requires_grad=True)
    base[range(1, 3)] = v * 2
    base.sum().backward()
    assert base.numpy(force=True)[1:3].tolist() == [[2.0, 4.0], [6.0, 8.0]]
    assert v.grad.numpy().tolist() == [[2.0, 2.0], [2.0, 2.0]]


@given(st.integers(1, 5), st.data())
def test_list_and_range_indexing_hypothesis(n, data):
    a = rng.standard_normal((n, 3))
    idx = data.draw(st.lists(st.integers(-n, n - 1), max_size=6))
    np.testing.assert_array_equal(gf.tensor(a)[idx].numpy(), a[np.array(idx, dtype=np.int64)])
    start, stop = data.draw(st.integers(0, n)), data.draw(st.integers(0, n))
    np.testing.assert_array_equal(gf.tensor(a)[range(start, stop)].numpy(),
                                  a[list(range(start, stop))])


@pytest.mark.parametrize("key", KEYS, ids=repr)
def test_setitem_records_a_differentiable_write(key):
    a = rng.standard_normal((4, 3))
    target = a[_numpy_key(key)].shape
    b = rng.standard_normal(target[-1:] if target else ())  # broadcast over the rest

    def write(x, v):
        y = x * 1.0  # a non-leaf copy: leaves that require grad refuse in-place writes
        y[key] = v
        return y

    x = gf.tensor(a, dtype=gf.float64, requires_grad=True)
    v = gf.tensor(b, dtype=gf.float64, requires_grad=True)
    ref = a.copy()
    ref[_numpy_key(key)] = b
    np.testing.assert_array_equal(write(x, v).detach().numpy(), ref)  # repeats: last wins
    assert gradcheck(write, (x, v))


def _numpy_key(key):
    if isinstance(key, tuple):
        return tuple(list(k) if isinstance(k, range) else k for k in key)
    return list(key) if isinstance(key, range) else key


def test_setitem_on_a_leaf_that_requires_grad_is_refused_as_pytorch():
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad"):
        gf.ones(3, requires_grad=True)[range(2)] = 0.0


def test_setitem_value_shape_mismatch_is_a_clear_error():
    x = gf.ones(4, 3) * gf.ones(1, requires_grad=True)
    with pytest.raises(ValueError, match=r"value of shape \(2,\) cannot be broadcast to the "
                       r"indexed shape \(2, 3\)"):
        x[[0, 1]] = gf.ones(2)


# PyTorch 2.13 still reads x[[[0, 1], [2, 0]]] as x[[0, 1], [2, 0]] (deprecated, and to become
# the array index NumPy and gradflow take), so that key is compared with NumPy only.
@needs_torch
@pytest.mark.parametrize("key", [k for k in KEYS if not (
    isinstance(k, list) and isinstance(k[0], list))], ids=repr)
def test_getitem_matches_torch(key):
    import torch

    a = rng.standard_normal((4, 3))
    t = gf.tensor(a, dtype=gf.float64, requires_grad=True)
    tt = torch.tensor(a, requires_grad=True)
    out, ref = t[key], tt[key]
    np.testing.assert_array_equal(out.detach().numpy(), ref.detach().numpy())
    g = rng.standard_normal(tuple(out.shape))
    out.backward(gf.tensor(g))
    ref.backward(torch.tensor(g))
    np.testing.assert_array_equal(t.grad.numpy(), tt.grad.numpy())


def test_index_out_of_range_is_a_clear_error():
    with pytest.raises(IndexError, match="out of bounds"):
        gf.zeros(3)[range(5)]


# ---------------------------------------------------------------- axis= / keepdims=
ALIASED = [
    ("sum", {}), ("mean", {}), ("prod", {}), ("std", {}), ("var", {}), ("amax", {}),
    ("amin", {}), ("logsumexp", {}), ("norm", {"p": 2}), ("any", {}), ("all", {}),
    ("argmax", {}), ("argmin", {}),
]


@pytest.mark.parametrize("name, extra", ALIASED, ids=lambda v: v if isinstance(v, str) else "")
def test_axis_and_keepdims_alias_dim_and_keepdim(name, extra):
    x = gf.tensor(rng.standard_normal((3, 4)))
    for f in (getattr(gf, name), getattr(gf.Tensor, name)):
        ref = f(x, dim=1, keepdim=True, **extra)
        got = f(x, axis=1, keepdims=True, **extra)
        np.testing.assert_array_equal(got.numpy(), ref.numpy())
    assert getattr(gf, name).__name__ == name and getattr(gf, name).__doc__ == getattr(
        gf.Tensor, name).__doc__


def test_axis_alias_on_max_min_scans_and_joins():
    x = gf.tensor(rng.standard_normal((3, 4)))
    assert x.max(axis=0).values.shape == (4,)
    assert gf.min(x, axis=1, keepdims=True)[0].shape == (3, 1)
    np.testing.assert_array_equal(x.cumsum(axis=1).numpy(), x.cumsum(1).numpy())
    np.testing.assert_array_equal(gf.softmax(x, axis=0).numpy(), gf.softmax(x, 0).numpy())
    assert gf.cat([x, x], axis=1).shape == (3, 8) and gf.stack([x, x], axis=0).shape == (2, 3, 4)
    assert x.unsqueeze(axis=0).shape == (1, 3, 4) and x.sort(axis=0).values.shape == (3, 4)


def test_axis_alias_on_gathers_scatters_and_views():
    x = gf.tensor(rng.standard_normal((3, 4)))
    i = gf.tensor([[0, 3]])
    np.testing.assert_array_equal(gf.gather(x, axis=1, index=i).numpy(), x.gather(1, i).numpy())
    np.testing.assert_array_equal(x.index_select(axis=1, index=i[0]).numpy(),
                                  x.index_select(1, i[0]).numpy())
    assert x.narrow(axis=1, start=1, length=2).shape == (3, 2)
    assert len(x.chunk(2, axis=1)) == 2 and len(x.unbind(axis=1)) == 4
    assert x.unflatten(axis=1, sizes=(2, 2)).shape == (3, 2, 2)
    y = x.clone().scatter_(axis=1, index=i, src=x)
    np.testing.assert_array_equal(y.numpy(), x.clone().scatter_(1, i, x).numpy())
    z = x.clone().index_add_(axis=1, index=i[0], source=x[:, :2])
    np.testing.assert_array_equal(z.numpy(), x.clone().index_add_(1, i[0], x[:, :2]).numpy())
    np.testing.assert_array_equal(gf.scatter_add(x, axis=1, index=i, src=x).numpy(),
                                  gf.scatter_add(x, 1, i, x).numpy())


def test_both_spellings_of_one_argument_is_an_error():
    with pytest.raises(TypeError, match="sum\\(\\) got both 'dim' and its alias 'axis'"):
        gf.ones(2).sum(dim=0, axis=0)
    with pytest.raises(TypeError, match="both 'keepdim' and its alias 'keepdims'"):
        gf.ones(2).mean(0, keepdim=True, keepdims=True)


# ---------------------------------------------------------------- PyTorch state dicts, DLPack
@needs_torch
def test_load_state_dict_takes_a_pytorch_state_dict():
    import torch

    theirs = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2))
    mine = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    mine.load_state_dict(theirs.state_dict())
    for k, v in theirs.state_dict().items():
        np.testing.assert_array_equal(mine.state_dict()[k].numpy(), v.numpy())
    assert mine.state_dict()["1.num_batches_tracked"].dtype is gf.int64
    sd = dict(theirs.state_dict())
    sd["0.weight"] = theirs[0].weight  # requires grad: exported detached
    mine.load_state_dict(sd)


@needs_torch
def test_load_state_dict_shape_mismatch_from_pytorch_names_both_shapes():
    import torch

    with pytest.raises(RuntimeError, match=r"size mismatch for weight: copying a param with "
                       r"shape \(3, 2\) from checkpoint, the shape in current model is \(3, 3\)"):
        nn.Linear(3, 3).load_state_dict(torch.nn.Linear(2, 3).state_dict())
    with pytest.raises(RuntimeError, match="received torch.Tensor torch.complex64"):
        nn.Linear(2, 3).load_state_dict({"weight": torch.zeros(3, 2, dtype=torch.complex64),
                                         "bias": torch.zeros(3)})


def test_load_state_dict_takes_numpy_arrays_and_converts_dtype():
    lin = nn.Linear(2, 1)
    lin.load_state_dict({"weight": np.array([[1.0, 2.0]]), "bias": np.array([3.0])})
    assert lin.weight.dtype is gf.float32 and lin(gf.ones(1, 2)).item() == 6.0
    with pytest.raises(RuntimeError, match="expected a tensor or array .* but received "
                       "builtins.str"):
        lin.load_state_dict({"weight": "w", "bias": np.array([3.0])})


def test_load_accepts_weights_only(tmp_path):
    gf.save({"w": gf.ones(2)}, tmp_path / "w.pt")
    for flag in (True, False, None):
        assert gf.load(tmp_path / "w.pt", weights_only=flag)["w"].tolist() == [1.0, 1.0]


def test_dlpack_with_numpy_both_ways():
    t = gf.arange(6.0).reshape(2, 3)
    a = np.from_dlpack(t)
    a[0, 0] = 9.0
    assert t[0, 0].item() == 9.0  # shared memory
    back = gf.from_dlpack(np.arange(4, dtype=np.int32))
    assert back.dtype is gf.int32 and back.tolist() == [0, 1, 2, 3]
    assert t.__dlpack_device__() == (1, 0)
    with pytest.raises(RuntimeError, match="requires grad"):
        np.from_dlpack(gf.ones(2, requires_grad=True))
    with pytest.raises(TypeError, match="from_dlpack: expected an object with __dlpack__"):
        gf.from_dlpack([1, 2])


@needs_torch
def test_dlpack_with_torch_both_ways():
    import torch

    t = gf.arange(6.0).reshape(2, 3).t()  # a non-contiguous view
    tt = torch.from_dlpack(t)
    assert tt.shape == (3, 2) and torch.equal(tt, torch.arange(6.0).reshape(2, 3).t())
    tt[0, 0] = -1.0
    assert t[0, 0].item() == -1.0
    back = gf.from_dlpack(torch.arange(5, dtype=torch.int16))
    assert back.dtype is gf.int16 and back.tolist() == [0, 1, 2, 3, 4]
