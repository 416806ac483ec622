"""DLPack exchange of CUDA tensors (the CPU exchange is tested in test_interop.py).

Three layers, from the one that runs everywhere to the one that needs a GPU:
- gradflow.from_dlpack's device dispatch and errors (any machine);
- gradflow._cuda's capsules, driven by producers built here with ctypes over fake device
  addresses that are never dereferenced: the capsule names, the single-use rule, the version and
  flag checks, the dtype/stride validation and who calls which deleter when (any machine with
  the CUDA module built, GPU or not; CI builds it wherever nvcc exists);
- real device memory: gradflow <-> gradflow and gradflow <-> torch round trips, views, streams
  and lifetimes (marked cuda).
"""

from __future__ import annotations

import ctypes
import gc

import numpy as np
import pytest

import gradflow as gf

# ---------------------------------------------------------------- the DLPack ABI, for ctypes
c_int32, c_int64, c_uint8, c_uint16, c_uint32, c_uint64 = (
    ctypes.c_int32, ctypes.c_int64, ctypes.c_uint8, ctypes.c_uint16, ctypes.c_uint32,
    ctypes.c_uint64)
DELETER = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


class DLDevice(ctypes.Structure):
    _fields_ = [("device_type", c_int32), ("device_id", c_int32)]


class DLDataType(ctypes.Structure):
    _fields_ = [("code", c_uint8), ("bits", c_uint8), ("lanes", c_uint16)]


class DLTensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("device", DLDevice), ("ndim", c_int32),
                ("dtype", DLDataType), ("shape", ctypes.POINTER(c_int64)),
                ("strides", ctypes.POINTER(c_int64)), ("byte_offset", c_uint64)]


class DLManagedTensor(ctypes.Structure):
    _fields_ = [("dl_tensor", DLTensor), ("manager_ctx", ctypes.c_void_p), ("deleter", DELETER)]


class DLManagedTensorVersioned(ctypes.Structure):
    _fields_ = [("major", c_uint32), ("minor", c_uint32), ("manager_ctx", ctypes.c_void_p),
                ("deleter", DELETER), ("flags", c_uint64), ("dl_tensor", DLTensor)]


_api = ctypes.pythonapi
_api.PyCapsule_New.restype = ctypes.py_object
_api.PyCapsule_New.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
_api.PyCapsule_GetName.restype = ctypes.c_char_p
_api.PyCapsule_GetName.argtypes = [ctypes.py_object]
_api.PyCapsule_GetPointer.restype = ctypes.c_void_p
_api.PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
_NAMES = {False: b"dltensor", True: b"dltensor_versioned"}  # alive as long as the capsules

FLOAT32, FLOAT64, INT32, INT64, BOOL = (2, 32, 1), (2, 64, 1), (0, 32, 1), (0, 64, 1), (6, 8, 1)
FAKE_ADDRESS = 1 << 40  # a device address the tests never dereference
READ_ONLY, IS_COPIED = 1, 2


def capsule_name(capsule) -> str:
    return _api.PyCapsule_GetName(capsule).decode()


def managed_of(capsule):
    """The managed struct inside a capsule, read without consuming it."""
    name = _api.PyCapsule_GetName(capsule)
    kind = DLManagedTensorVersioned if name == _NAMES[True] else DLManagedTensor
    return kind.from_address(_api.PyCapsule_GetPointer(capsule, name))


class FakeProducer:
    """A DLPack producer over fake device memory: `capsule` holds a DLManagedTensor(Versioned)
    describing it, and `deleted` counts the calls of its deleter. The capsule has no destructor
    of its own, so every deleter call seen is the consumer's."""

    def __init__(self, shape, strides=None, dtype=FLOAT32, device=(2, 0), byte_offset=0,
                 versioned=False, version=(1, 0), flags=0, data=FAKE_ADDRESS):
        self.deleted = 0
        self._shape = (c_int64 * len(shape))(*shape)
        self._strides = None if strides is None else (c_int64 * len(strides))(*strides)
        self._deleter = DELETER(self._delete)
        tensor = DLTensor(data, DLDevice(*device), len(shape), DLDataType(*dtype),
                          self._shape, self._strides, byte_offset)
        if versioned:
            self.managed = DLManagedTensorVersioned(*version, None, self._deleter, flags, tensor)
        else:
            self.managed = DLManagedTensor(tensor, None, self._deleter)
        self.capsule = _api.PyCapsule_New(ctypes.addressof(self.managed), _NAMES[versioned],
                                          None)

    def _delete(self, _managed):
        self.deleted += 1


# ---------------------------------------------------------------- from_dlpack's dispatch
class DeviceProducer:
    """An object that claims DLPack device `device` and must not be asked for a capsule."""

    def __init__(self, device):
        self.device = device

    def __dlpack_device__(self):
        return self.device

    def __dlpack__(self, **kwargs):
        raise AssertionError("from_dlpack asked for a capsule it cannot import")


@pytest.mark.skipif(gf.cuda.is_available(), reason="the error of a machine without CUDA")
def test_cuda_memory_without_a_cuda_device_is_a_clear_error():
    with pytest.raises(RuntimeError, match=r"from_dlpack: cannot use device cuda:0: no CUDA "
                                           r"device"):
        gf.from_dlpack(DeviceProducer((2, 0)))


def test_other_devices_are_clear_errors():
    with pytest.raises(RuntimeError, match=r"from_dlpack: .*cuda:1"):
        gf.from_dlpack(DeviceProducer((2, 1)))  # gradflow runs on cuda:0 only
    with pytest.raises(BufferError, match="from_dlpack: DLPack device type 7 is not supported"):
        gf.from_dlpack(DeviceProducer((7, 0)))
    with pytest.raises(TypeError, match="from_dlpack: expected an object with __dlpack__"):
        gf.from_dlpack(type("OnlyDevice", (), {"__dlpack_device__": lambda self: (1, 0)})())


def test_cpu_export_passes_the_protocol_arguments_to_numpy():
    t = gf.arange(3.0)
    assert capsule_name(t.__dlpack__()) == "dltensor"
    assert capsule_name(t.__dlpack__(max_version=(1, 0))) == "dltensor_versioned"
    capsule = t.__dlpack__(max_version=(1, 0), copy=True)
    assert managed_of(capsule).flags & IS_COPIED
    with pytest.raises(BufferError):
        t.__dlpack__(dl_device=(2, 0))


# ---------------------------------------------------------------- the CUDA module's capsules
needs_cuda_module = pytest.mark.skipif(not gf.cuda.is_built(),
                                       reason="gradflow was built without its CUDA module")


def _cuda():
    from gradflow import _cuda

    return _cuda


@needs_cuda_module
@pytest.mark.parametrize("versioned", [False, True])
def test_import_takes_ownership_and_releases_through_the_deleter(versioned):
    producer = FakeProducer((2, 3), (1, 2), byte_offset=8, versioned=versioned)
    a = _cuda().from_dlpack(producer.capsule)
    assert capsule_name(producer.capsule) == "used_" + _NAMES[versioned].decode()
    assert (a.shape, a.strides, a.offset, a.dtype) == ((2, 3), (1, 2), 0, np.float32)
    assert a.storage_ptr == FAKE_ADDRESS + 8 and a.storage_nbytes == 6 * 4
    view = a.as_strided((3,), (2,), 1)  # views stay inside the described memory
    with pytest.raises(ValueError, match="leaves its storage of 6 elements"):
        a.as_strided((4,), (2,), 1)
    with pytest.raises(BufferError, match="consumed already"):
        _cuda().from_dlpack(producer.capsule)
    del a
    gc.collect()
    assert producer.deleted == 0  # the view still uses the memory
    del view
    gc.collect()
    assert producer.deleted == 1


@needs_cuda_module
@pytest.mark.parametrize("kwargs, error, words", [
    ({"dtype": INT32}, TypeError, "CUDA tensors hold float32, float64, int64 or bool, not int32"),
    ({"dtype": (2, 16, 1)}, TypeError, "not float16"),
    ({"dtype": (2, 32, 4)}, BufferError, "4 lanes"),
    ({"device": (1, 0)}, BufferError, "lives on cpu"),
    ({"device": (2, 1)}, BufferError, "lives on cuda:1"),
    ({"strides": (-3, 1)}, BufferError, "are negative"),
    ({"strides": (1 << 62, 1)}, BufferError, "reach past any address"),
    ({"byte_offset": 2}, BufferError, "not aligned"),
    ({"data": None}, BufferError, "NULL data"),
    ({"versioned": True, "version": (2, 0)}, BufferError, "DLPack version 2.0 is not supported"),
    ({"versioned": True, "flags": READ_ONLY}, BufferError, "read-only"),
])
def test_a_rejected_capsule_keeps_its_ownership(kwargs, error, words):
    producer = FakeProducer((2, 3), **kwargs)
    name = capsule_name(producer.capsule)
    with pytest.raises(error, match="from_dlpack: .*" + words):
        _cuda().from_dlpack(producer.capsule)
    assert capsule_name(producer.capsule) == name and producer.deleted == 0


@needs_cuda_module
def test_import_checks_what_it_is_given():
    with pytest.raises(TypeError, match="from_dlpack: expected a DLPack capsule"):
        _cuda().from_dlpack(object())
    other = _api.PyCapsule_New(FAKE_ADDRESS, b"something_else", None)
    with pytest.raises(TypeError, match="from_dlpack: expected a DLPack capsule"):
        _cuda().from_dlpack(other)
    for dtype, expected in [(FLOAT64, np.float64), (INT64, np.int64), (BOOL, np.bool_)]:
        producer = FakeProducer((4, 0, 2), dtype=dtype, data=None)  # zero-size: no pointer
        a = _cuda().from_dlpack(producer.capsule)
        assert a.dtype == expected and a.shape == (4, 0, 2) and a.storage_nbytes == 0


@needs_cuda_module
@pytest.mark.parametrize("versioned", [False, True])
def test_export_describes_the_view_and_keeps_the_storage(versioned):
    producer = FakeProducer((4, 6), dtype=FLOAT64)
    a = _cuda().from_dlpack(producer.capsule)
    view = a.as_strided((3, 2), (1, 6), 7)  # a transposed view at element 7
    capsule = _cuda().to_dlpack(view, versioned)
    assert capsule_name(capsule) == _NAMES[versioned].decode()
    managed = managed_of(capsule)
    t = managed.dl_tensor
    assert (t.data, t.byte_offset, t.ndim) == (FAKE_ADDRESS, 7 * 8, 2)
    assert (t.device.device_type, t.device.device_id) == (2, 0)
    assert (t.dtype.code, t.dtype.bits, t.dtype.lanes) == FLOAT64
    assert (t.shape[0], t.shape[1], t.strides[0], t.strides[1]) == (3, 2, 1, 6)
    if versioned:
        assert (managed.major, managed.minor, managed.flags) == (1, 0, 0)
    del a, view, t, managed
    gc.collect()
    assert producer.deleted == 0  # the unconsumed capsule holds the storage
    del capsule  # its destructor calls our deleter
    gc.collect()
    assert producer.deleted == 1


@needs_cuda_module
def test_export_then_import_shares_the_memory_once():
    producer = FakeProducer((5,), dtype=INT64)
    a = _cuda().from_dlpack(producer.capsule)
    capsule = _cuda().to_dlpack(a.as_strided((2,), (2,), 1), True, copied=True)
    assert managed_of(capsule).flags == IS_COPIED
    b = _cuda().from_dlpack(capsule)
    assert capsule_name(capsule) == "used_dltensor_versioned"
    assert (b.shape, b.strides, b.storage_ptr) == ((2,), (2,), FAKE_ADDRESS + 8)
    with pytest.raises(BufferError, match="consumed already"):
        _cuda().from_dlpack(capsule)
    del a, capsule
    gc.collect()
    assert producer.deleted == 0  # b still uses it
    del b
    gc.collect()
    assert producer.deleted == 1


@needs_cuda_module
def test_export_refuses_negative_strides():
    producer = FakeProducer((5,))
    flipped = _cuda().from_dlpack(producer.capsule).as_strided((5,), (-1,), 4)
    with pytest.raises(BufferError, match=r"__dlpack__: a view with negative strides \(-1,\)"):
        _cuda().to_dlpack(flipped, True)


@needs_cuda_module
def test_an_import_of_our_own_memory_aliases_it():
    from gradflow.backends.cuda import CUDABackend

    a = _cuda().from_dlpack(FakeProducer((8,)).capsule)
    b = _cuda().from_dlpack(_cuda().to_dlpack(a.as_strided((4,), (1,), 4), False))
    backend = CUDABackend()
    assert backend.shares_memory(a, b) and backend.shares_memory(b, a.as_strided((2,), (3,), 2))
    assert not backend.shares_memory(b, a.as_strided((4,), (1,), 0))


# ---------------------------------------------------------------- real device memory
class Capsule:
    """Hands a ready capsule to a consumer that calls __dlpack__ (NumPy takes no capsule)."""

    def __init__(self, capsule, device):
        self.capsule, self.device = capsule, device

    def __dlpack_device__(self):
        return self.device

    def __dlpack__(self, **kwargs):
        return self.capsule


def _values(dtype):
    return gf.tensor(np.arange(24).reshape(4, 6) % 5).to(dtype)


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [gf.float32, gf.float64, gf.int64, gf.bool])
def test_cuda_round_trip_shares_memory(dtype):
    host = _values(dtype)
    t = host.to("cuda")
    u = gf.from_dlpack(t)
    assert u.device == t.device and u.dtype is dtype and u.tolist() == host.tolist()
    u[0, 0] = 1 if dtype is not gf.bool else True
    u[1, 2] = 0 if dtype is not gf.bool else False
    assert t[0, 0].item() == u[0, 0].item() and t[1, 2].item() == u[1, 2].item()
    assert t.__dlpack_device__() == (2, 0)


@pytest.mark.cuda
def test_cuda_views_cross_as_views():
    base = gf.arange(48.0, device="cuda").reshape(6, 8)
    for view in (base.t(), base[1:, 3:], base[::2, 1::3], base[2], base[1:2, 5:6],
                 base.unsqueeze(1).expand(6, 3, 8), base[:0]):
        u = gf.from_dlpack(view)
        assert u.shape == view.shape and u.tolist() == view.tolist()
    u = gf.from_dlpack(base[2:, 4:])
    u.fill_(-1.0)
    assert base[2:, 4:].tolist() == [[-1.0] * 4] * 4 and base[1, 4].item() == 12.0


@pytest.mark.cuda
def test_cuda_overlapping_copy_through_an_import():
    t = gf.arange(6.0, device="cuda")
    u = gf.from_dlpack(t)
    t[1:] = u[:-1]  # the copy sees the overlap although the storages differ
    assert t.tolist() == [0.0, 0.0, 1.0, 2.0, 3.0, 4.0]


@pytest.mark.cuda
def test_cuda_flipped_view_is_exported_as_a_copy():
    base = gf.arange(5.0, device="cuda")
    flipped = gf.flip(base, 0)
    capsule = flipped.__dlpack__(max_version=(1, 0))
    assert managed_of(capsule).flags & IS_COPIED
    assert gf.from_dlpack(Capsule(capsule, (2, 0))).tolist() == [4.0, 3.0, 2.0, 1.0, 0.0]
    with pytest.raises(BufferError, match="copy=False"):
        flipped.__dlpack__(copy=False)


@pytest.mark.cuda
def test_cuda_capsule_is_single_use_and_released_unconsumed():
    t = gf.ones(1000, device="cuda")
    before = gf.cuda.memory_allocated()
    capsule = t.__dlpack__(max_version=(1, 0))
    u = gf.from_dlpack(Capsule(capsule, (2, 0)))
    with pytest.raises(BufferError, match="consumed already"):
        gf.from_dlpack(Capsule(capsule, (2, 0)))
    del t, u, capsule
    gc.collect()
    assert gf.cuda.memory_allocated() < before  # the last owner gave the block back
    t = gf.ones(1000, device="cuda")
    before = gf.cuda.memory_allocated()
    capsule = t.__dlpack__()
    del t
    gc.collect()
    assert gf.cuda.memory_allocated() == before  # the capsule holds it
    del capsule
    gc.collect()
    assert gf.cuda.memory_allocated() < before


@pytest.mark.cuda
def test_cuda_producer_dies_before_the_consumer():
    t = gf.arange(1000.0, device="cuda") * 2
    u = gf.from_dlpack(t)
    del t
    gc.collect()
    junk = gf.full((1000,), -5.0, device="cuda")  # would reuse a freed block
    assert u.sum().item() == 999.0 * 1000 and junk.sum().item() == -5000.0


@pytest.mark.cuda
def test_cuda_export_arguments():
    t = gf.arange(4.0, device="cuda")
    with pytest.raises(RuntimeError, match="requires grad"):
        gf.ones(2, device="cuda", requires_grad=True).__dlpack__()
    with pytest.raises(ValueError, match="0 is ambiguous"):
        t.__dlpack__(stream=0)
    for stream in (None, -1, 1, 2):
        assert gf.from_dlpack(Capsule(t.__dlpack__(stream=stream), (2, 0))).tolist() == [
            0.0, 1.0, 2.0, 3.0]
    host = t.__dlpack__(dl_device=(1, 0), max_version=(1, 0))
    assert np.from_dlpack(Capsule(host, (1, 0))).tolist() == [0.0, 1.0, 2.0, 3.0]
    with pytest.raises(BufferError, match=r"to DLPack device \(1, 0\) with copy=False"):
        t.__dlpack__(dl_device=(1, 0), copy=False)
    copied, shared = (t.__dlpack__(max_version=(1, 0), copy=c) for c in (True, None))
    assert managed_of(copied).flags & IS_COPIED and not managed_of(shared).flags & IS_COPIED
    assert managed_of(copied).dl_tensor.data != managed_of(shared).dl_tensor.data


def _torch_cuda():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA")
    return torch


@pytest.mark.cuda
def test_cuda_torch_to_gradflow():
    torch = _torch_cuda()
    for dtype in (torch.float32, torch.float64, torch.int64, torch.bool):
        tt = (torch.arange(24, device="cuda") % 3).reshape(4, 6).to(dtype)
        for view in (tt, tt.t(), tt[1:, 2::2]):
            u = gf.from_dlpack(view)
            assert u.is_cuda and u.tolist() == view.tolist()
    tt = torch.zeros(3, 4, device="cuda")
    u = gf.from_dlpack(tt)
    u[1] = 7.0
    torch.cuda.synchronize()
    assert tt[1].tolist() == [7.0] * 4
    with pytest.raises(TypeError, match="from_dlpack: .*not int32"):
        gf.from_dlpack(torch.zeros(2, dtype=torch.int32, device="cuda"))
    del tt  # torch's memory stays until gradflow's last view dies
    torch.cuda.empty_cache()
    assert u.sum().item() == 28.0


@pytest.mark.cuda
def test_cuda_gradflow_to_torch():
    torch = _torch_cuda()
    t = gf.arange(24.0, device="cuda").reshape(4, 6)
    for view in (t, t.t(), t[1:, 2::2]):
        tt = torch.from_dlpack(view)
        assert tt.is_cuda and tt.tolist() == view.tolist()
    tt = torch.from_dlpack(t)
    tt[0, 0] = -1.0
    torch.cuda.synchronize()
    assert t[0, 0].item() == -1.0
    del t
    gc.collect()
    assert tt.sum().item() == sum(range(24)) - 1.0
