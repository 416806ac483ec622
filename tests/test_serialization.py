"""gradflow.save / gradflow.load: round trips, atomic replace, and bad or hostile files."""

from __future__ import annotations

import collections
import io
import json
import math
import os
import pickle
import re
import signal
import socket
import subprocess
import sys
import time
import tracemalloc
import zipfile

import numpy as np
import pytest

import gradflow
from gradflow.serialization import load, save


def _header(path) -> dict:
    with np.load(path, allow_pickle=False) as f:
        return json.loads(f["__header__"].tobytes().decode())


def _write_npz(path, header, **arrays) -> None:
    blob = np.frombuffer(json.dumps(header).encode(), np.uint8)
    with open(path, "wb") as f:
        np.savez(f, __header__=blob, **arrays)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.bool_])
def test_tensor_dtypes_round_trip(tmp_path, dtype):
    rng = np.random.default_rng(0)
    values = (rng.standard_normal((3, 4)) * 10).astype(dtype)
    path = tmp_path / "t.pt"
    save({"w": gradflow.tensor(values)}, path)
    out = load(path)["w"]
    assert isinstance(out, gradflow.Tensor)
    assert out.dtype == gradflow.types.from_numpy_dtype(dtype)
    np.testing.assert_array_equal(out.numpy(), values)
    assert out.device == gradflow.device("cpu")


def test_zero_dim_and_empty_tensors_keep_their_shape(tmp_path):
    # BatchNorm's num_batches_tracked and Adam's step are 0-d: a (1,) comes back unloadable.
    state = {"step": gradflow.tensor(7), "x": gradflow.tensor(2.5), "e": gradflow.zeros(0, 3)}
    gradflow.save(state, tmp_path / "s.gf")
    out = gradflow.load(tmp_path / "s.gf")
    assert {k: tuple(v.shape) for k, v in out.items()} == {"step": (), "x": (), "e": (0, 3)}
    assert out["step"].item() == 7 and out["x"].item() == 2.5


def test_nested_structure_round_trip(tmp_path):
    w = gradflow.tensor(np.arange(6, dtype=np.float32).reshape(2, 3))
    obj = {
        "model": collections.OrderedDict([("fc.weight", w), ("fc.bias", gradflow.zeros(3))]),
        "optimizer": {
            "state": {0: {"step": 12, "exp_avg": gradflow.ones(2, 3)}, 1: {"step": 12}},
            "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "params": [0, 1],
                              "nesterov": False, "maximize": None, "name": "main"}],
        },
        "tied": [w, w],
        "floats": [0.1, -0.0, math.inf, -math.inf, 1e-310, 2.0**-1074],
        "big": 2**80,
        "array": np.arange(4, dtype=np.uint8),
        "scalar": np.float32(2.5),
        "dtype": gradflow.float64,
        "device": gradflow.device("cpu"),
        "empty": gradflow.tensor(np.zeros((0, 3), np.float32)),
        (1, "x"): "tuple key",
    }
    path = tmp_path / "ckpt.pt"
    save(obj, str(path))
    out = load(str(path))
    assert isinstance(out["model"], collections.OrderedDict)
    assert list(out["model"]) == ["fc.weight", "fc.bias"]
    np.testing.assert_array_equal(out["model"]["fc.weight"].numpy(), w.numpy())
    assert out["optimizer"]["state"][0]["step"] == 12
    assert set(out["optimizer"]["state"]) == {0, 1}
    group = out["optimizer"]["param_groups"][0]
    assert group["betas"] == (0.9, 0.999) and group["nesterov"] is False
    assert group["maximize"] is None and group["lr"] == 1e-3 and group["params"] == [0, 1]
    assert out["tied"][0] is out["tied"][1] is out["model"]["fc.weight"]
    assert out["floats"][:5] == [0.1, -0.0, math.inf, -math.inf, 1e-310]
    assert math.copysign(1, out["floats"][1]) == -1 and out["floats"][5] == 2.0**-1074
    assert out["big"] == 2**80
    assert isinstance(out["array"], np.ndarray) and out["array"].dtype == np.uint8
    assert isinstance(out["scalar"], np.float32) and out["scalar"] == 2.5
    assert out["dtype"] == gradflow.float64 and out["device"] == gradflow.device("cpu")
    assert tuple(out["empty"].shape) == (0, 3)
    assert out[(1, "x")] == "tuple key"
    nan = load_via_bytes({"x": math.nan})["x"]
    assert math.isnan(nan)


def load_via_bytes(obj):
    buf = io.BytesIO()
    save(obj, buf)
    buf.seek(0)
    return load(buf)


def test_requires_grad_and_map_location(tmp_path):
    p = gradflow.tensor(np.ones(3, np.float32), requires_grad=True)
    path = tmp_path / "p.pt"
    save({"p": p}, path)
    out = load(path, map_location="cpu")["p"]
    assert out.requires_grad and out.is_leaf
    assert load(path, map_location=gradflow.device("cpu"))["p"].device == gradflow.device("cpu")
    assert load(path, map_location={"cuda:0": "cpu"})["p"].device == gradflow.device("cpu")
    with pytest.raises(TypeError, match="map_location should be"):
        load(path, map_location=3)


def test_map_location_to_missing_cuda_is_clear(tmp_path):
    cuda = getattr(gradflow, "cuda", None)
    if cuda is not None and cuda.is_available():
        pytest.skip("a GPU is present")
    path = tmp_path / "p.pt"
    save({"p": gradflow.ones(2)}, path)
    with pytest.raises(RuntimeError, match="use map_location='cpu'"):
        load(path, map_location="cuda")


def test_unsupported_objects_are_named(tmp_path):
    with pytest.raises(TypeError, match=r"type object at obj\['opt'\]\[1\]"):
        save({"opt": [1, object()]}, tmp_path / "x.pt")
    with pytest.raises(TypeError, match="dtype object"):
        save({"a": np.array([None, 1], dtype=object)}, tmp_path / "x.pt")
    assert not os.listdir(tmp_path)  # nothing half-written


def test_save_replaces_atomically(tmp_path):
    path = tmp_path / "model.pt"
    save({"v": 1}, path)
    save({"v": 2}, path)
    assert load(path) == {"v": 2}
    assert os.listdir(tmp_path) == ["model.pt"]  # no temporary files left

    class Boom:
        pass

    # Failing half-way (an unsupported object) keeps the previous checkpoint.
    with pytest.raises(TypeError):
        save({"v": 3, "bad": Boom()}, path)
    assert load(path) == {"v": 2}


def test_interrupted_write_keeps_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "model.pt"
    save({"v": 1}, path)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        save({"v": 2, "w": gradflow.ones(3)}, path)
    monkeypatch.undo()
    assert load(path) == {"v": 1}
    assert os.listdir(tmp_path) == ["model.pt"]


def test_exact_file_name_without_npz_suffix(tmp_path):
    save({"v": 1}, tmp_path / "weights.ckpt")
    assert os.listdir(tmp_path) == ["weights.ckpt"]


_SAVE_LOOP = """
import sys
import numpy as np
import gradflow
state = {f"w{i}": gradflow.tensor(np.full(1 << 20, i, np.float32)) for i in range(8)}
while True:
    gradflow.save(state, sys.argv[1])
"""


def _temporaries(directory) -> dict:
    sizes = {}
    for name in os.listdir(directory):
        try:
            if name.endswith(".tmp"):
                sizes[name] = os.path.getsize(directory / name)
        except FileNotFoundError:  # renamed under us
            pass
    return sizes


def _kill_mid_save(path) -> dict:
    """kill -9 a process saving 32 MB to `path` in a loop once a temporary file holds data;
    return the temporaries it left and their sizes."""
    proc = subprocess.Popen([sys.executable, "-c", _SAVE_LOOP, str(path)])
    try:
        deadline = time.monotonic() + 60
        while not any(_temporaries(path.parent).values()):
            assert proc.poll() is None, "the saving process died by itself"
            assert time.monotonic() < deadline, "the saving process never started writing"
            time.sleep(0.001)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()  # reaped: its pid is no longer running
    return _temporaries(path.parent)


@pytest.mark.skipif(os.name != "posix", reason="needs kill -9 and POSIX pids")
def test_kill_9_mid_save_keeps_the_checkpoint_and_the_next_save_removes_the_orphan(tmp_path):
    path = tmp_path / "model.pt"
    save({"v": 1}, path)
    for _ in range(5):  # a kill landing between a rename and the next temporary: try again
        orphans = _kill_mid_save(path)
        if orphans:
            break
    assert orphans, "never caught the saving process mid-write"
    out = load(path)  # the previous checkpoint, or the last complete save of the loop
    if "v" in out:
        assert out == {"v": 1}
    else:
        assert all((out[f"w{i}"].numpy() == i).all() for i in range(8))
    save({"v": 2}, path)
    assert os.listdir(tmp_path) == ["model.pt"]
    assert load(path) == {"v": 2}


@pytest.mark.skipif(os.name != "posix", reason="needs POSIX pids")
def test_save_removes_only_orphans_of_dead_saves_of_the_same_target(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", ""])
    dead.wait()
    host = socket.gethostname()
    orphan = f".model.pt.{host}.{dead.pid}.0a1b.tmp"
    kept = [f".model.pt.{host}.{os.getpid()}.0a1b.tmp",  # a save still in progress
            f".model.pt.{host}x.{dead.pid}.0a1b.tmp",  # another host's (shared directory)
            f".model.ptx.{host}.{dead.pid}.0a1b.tmp",  # another target's
            f".model.pt.{host}.{dead.pid}.tmp"]  # not a name save makes
    for name in [orphan, *kept]:
        (tmp_path / name).write_bytes(b"half a checkpoint")
    save({"v": 1}, tmp_path / "model.pt")
    assert sorted(os.listdir(tmp_path)) == sorted(["model.pt", *kept])


# ---------------------------------------------------------------------------- bad files
def test_truncated_and_corrupted_files(tmp_path):
    path = tmp_path / "good.pt"
    save({"w": gradflow.tensor(np.arange(1000, dtype=np.float32))}, path)
    data = path.read_bytes()
    for cut in (len(data) // 2, 30, len(data) - 10):
        bad = tmp_path / f"cut{cut}.pt"
        bad.write_bytes(data[:cut])
        with pytest.raises(ValueError, match=f"'{bad}'"):
            load(bad)
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xFF  # inside the array's bytes: the zip CRC catches it
    bad = tmp_path / "flipped.pt"
    bad.write_bytes(bytes(flipped))
    with pytest.raises(ValueError, match="not a valid gradflow checkpoint"):
        load(bad)
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="no zip signature"):
        load(empty)


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > pwned.txt",))


def test_pickle_file_is_refused_without_running_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "evil.pt"
    bad.write_bytes(pickle.dumps({"w": _Evil()}))
    with pytest.raises(ValueError, match="never reads pickle files"):
        load(bad)
    assert not (tmp_path / "pwned.txt").exists()


def test_object_array_in_npz_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "obj.pt"
    header = {"format": "gradflow.checkpoint", "version": 1,
              "root": {"t": "ndarray", "k": "a0"}}
    _write_npz(bad, header, a0=np.array([_Evil()], dtype=object))
    with pytest.raises(ValueError, match=r"array 'a0' has the unsupported dtype object"):
        load(bad)
    assert not (tmp_path / "pwned.txt").exists()


@pytest.mark.parametrize("root,match", [
    ({"t": "tensor", "k": "a7", "device": "cpu", "requires_grad": False},
     "references array 'a7', which the file does not contain"),
    ({"t": "tensor", "k": "a0", "device": "cpu"}, "bad or missing field 'requires_grad'"),
    ({"t": "tensor", "k": "a0", "device": "tpu", "requires_grad": False}, "device type must be"),
    ({"t": "eval", "v": "__import__('os')"}, "unknown node type 'eval'"),
    ({"t": "int", "v": "12"}, "bad or missing field 'v'"),
    ({"t": "float", "v": "nope"}, "bad float"),
    ({"t": "dict", "v": [[{"t": "list", "v": []}, {"t": "none"}]]}, "unhashable dict key"),
    ({"t": "dict", "v": [[{"t": "none"}]]}, r"not a \[key, value\] pair"),
    ({"t": "tensor", "k": "a1", "device": "cpu", "requires_grad": False}, "dtype uint16"),
    ({"t": "tensor", "k": "__header__", "device": "cpu", "requires_grad": False},
     "references the header"),
    ([1, 2], "expected a node object"),
])
def test_hostile_headers(tmp_path, root, match):
    bad = tmp_path / "bad.pt"
    header = {"format": "gradflow.checkpoint", "version": 1, "root": root}
    _write_npz(bad, header, a0=np.zeros(3, np.float32), a1=np.zeros(2, np.uint16))
    with pytest.raises(ValueError, match=match):
        load(bad)


def test_bad_headers(tmp_path):
    bad = tmp_path / "bad.pt"
    _write_npz(bad, {"format": "other", "version": 1, "root": {"t": "none"}})
    with pytest.raises(ValueError, match="does not name the gradflow checkpoint format"):
        load(bad)
    _write_npz(bad, {"format": "gradflow.checkpoint", "version": 99, "root": {"t": "none"}})
    with pytest.raises(ValueError, match="format version 99 is not supported"):
        load(bad)
    with open(bad, "wb") as f:
        np.savez(f, a0=np.zeros(2))
    with pytest.raises(ValueError, match="has no gradflow header"):
        load(bad)
    with open(bad, "wb") as f:
        np.savez(f, __header__=np.frombuffer(b"{not json", np.uint8))
    with pytest.raises(ValueError, match="not valid JSON"):
        load(bad)
    raw = json.dumps({"format": "gradflow.checkpoint", "version": 1, "root": {"t": "none"}})
    raw = raw.replace('{"t": "none"}', "[" * 100000 + "]" * 100000)
    with open(bad, "wb") as f:
        np.savez(f, __header__=np.frombuffer(raw.encode(), np.uint8))
    with pytest.raises(ValueError, match="not a valid gradflow checkpoint"):
        load(bad)
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("__header__.npy", b"not an npy file")
    with pytest.raises(ValueError, match="'__header__' is not a .npy array"):
        load(bad)


def test_header_is_plain_json(tmp_path):
    path = tmp_path / "m.pt"
    save({"w": gradflow.ones(2), "n": 3}, path)
    header = _header(path)
    assert header["format"] == "gradflow.checkpoint" and header["version"] == 1
    assert header["root"]["t"] == "dict"


# ---------------------------------------------------------------------------- lying sizes
def _npy(shape, dtype, data: bytes) -> bytes:
    """A .npy file whose header declares `shape` and `dtype`, followed by `data`."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {
        "shape": shape, "fortran_order": False,
        "descr": np.lib.format.dtype_to_descr(np.dtype(dtype))})
    return buf.getvalue() + data


def _tensor_zip(path, a0: bytes, method=zipfile.ZIP_STORED, **directory) -> None:
    """A checkpoint of one tensor whose entry 'a0.npy' holds `a0`, written with `method`;
    `directory` overrides what the zip's central directory says about that entry."""
    root = {"t": "tensor", "k": "a0", "device": "cpu", "requires_grad": False}
    blob = json.dumps({"format": "gradflow.checkpoint", "version": 1, "root": root}).encode()
    with zipfile.ZipFile(path, "w", method) as z:
        z.writestr("__header__.npy", _npy((len(blob),), np.uint8, blob))
        z.writestr("a0.npy", a0)
        for field, value in directory.items():
            setattr(z.getinfo("a0.npy"), field, value)


@pytest.mark.parametrize("method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_huge_declared_shape_is_refused_before_allocating(tmp_path, method):
    bad = tmp_path / "huge.pt"
    _tensor_zip(bad, _npy((2**40,), np.float32, bytes(16)), method)
    with pytest.raises(ValueError, match=re.escape(f"'{bad}'") + ".*entry 'a0.npy' declares an "
                       r"array of shape \(1099511627776,\) and dtype float32 \(4398046511104 "
                       r"bytes\) but holds 16 bytes"):
        load(bad)
    _tensor_zip(bad, _npy((0, 2**70), np.float32, b""), method)
    with pytest.raises(ValueError, match=r"array 'a0' has the impossible shape \(0, "):
        load(bad)


def test_zip_bomb_is_refused_without_inflating(tmp_path):
    # 1 MiB of zeros deflates to ~1 KiB; the directory claims the entry inflates to 4 GiB,
    # as a real 4 MB bomb's would, and the .npy header agrees with it.
    bomb = tmp_path / "bomb.pt"
    head = _npy((2**30,), np.float32, b"")
    _tensor_zip(bomb, head + bytes(1 << 20), zipfile.ZIP_DEFLATED, file_size=len(head) + 2**32)
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=re.escape(f"'{bomb}'") + ".*a zip bomb.*largest is "
                           r"entry 'a0.npy', \d+ bytes inflating to 4294967424"):
            load(bomb)
        with pytest.raises(ValueError, match=r"more than max_bytes=1000000 \(its largest entry "
                           "is 'a0.npy', 4294967424 bytes"):
            load(bomb, max_bytes=10**6)
        assert tracemalloc.get_traced_memory()[1] < 8 << 20
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("method,directory,match", [
    (zipfile.ZIP_STORED, {"file_size": 10**6}, "is stored uncompressed in 144 bytes but "
     "declares 1000000"),
    (zipfile.ZIP_STORED, {"file_size": 10**9, "compress_size": 10**9},
     "declares 1000000000 bytes at offset .*, past the end of the .*-byte file"),
    (zipfile.ZIP_DEFLATED, {"compress_size": 10**9}, "declares 1000000000 bytes at offset"),
    (zipfile.ZIP_STORED, {"compress_type": zipfile.ZIP_BZIP2}, "is encrypted or compressed with "
     "method 12"),
    (zipfile.ZIP_STORED, {"flag_bits": 1}, "is encrypted"),
])
def test_zip_directory_is_checked_against_the_file(tmp_path, method, directory, match):
    bad = tmp_path / "bad.pt"
    _tensor_zip(bad, _npy((4,), np.float32, bytes(16)), method, **directory)
    with pytest.raises(ValueError, match=re.escape(f"'{bad}': entry 'a0.npy' ") + match):
        load(bad)


def _compressed_checkpoint(path, zeros: int) -> np.ndarray:
    """What np.savez_compressed makes of {'w': random (1000,), 'z': zeros (zeros,)}."""
    root = {"t": "dict", "v": [
        [{"t": "str", "v": name}, {"t": "tensor", "k": key, "device": "cpu",
                                   "requires_grad": False}] for name, key in (("w", "a0"),
                                                                             ("z", "a1"))]}
    blob = json.dumps({"format": "gradflow.checkpoint", "version": 1, "root": root}).encode()
    w = np.random.default_rng(0).standard_normal(1000).astype(np.float32)
    with open(path, "wb") as f:
        np.savez_compressed(f, __header__=np.frombuffer(blob, np.uint8), a0=w,
                            a1=np.zeros(zeros, np.float32))
    return w


def test_compressed_checkpoint_within_the_cap_loads(tmp_path):
    path = tmp_path / "small.npz"
    w = _compressed_checkpoint(path, 1 << 20)  # 4 MiB of zeros: ~1000x, under the 64 MiB floor
    out = load(path)
    np.testing.assert_array_equal(out["w"].numpy(), w)
    assert tuple(out["z"].shape) == (1 << 20,) and not out["z"].numpy().any()


def test_max_bytes_replaces_the_ratio_cap(tmp_path, monkeypatch):
    monkeypatch.setattr(gradflow.serialization, "_FREE_BYTES", 1 << 20)
    path = tmp_path / "zeros.npz"
    _compressed_checkpoint(path, 1 << 20)
    with pytest.raises(ValueError, match="more than 100 times .*entry 'a1.npy'.* Pass max_bytes="):
        load(path)
    assert tuple(load(path, max_bytes=5 << 20)["z"].shape) == (1 << 20,)
    with pytest.raises(ValueError, match=r"more than max_bytes=4194304 \(its largest entry is "
                       "'a1.npy'"):
        load(path, max_bytes=4 << 20)
    with pytest.raises(ValueError, match="max_bytes should be None or a non-negative int"):
        load(path, max_bytes=-1)


def test_an_entry_named_many_times_is_read_once(tmp_path):
    # 10**4 references to one stored 4 MB array must not take 40 GB.
    path = tmp_path / "many.pt"
    root = {"t": "list", "v": [{"t": "ndarray", "k": "a0"}] * 10**4}
    _write_npz(path, {"format": "gradflow.checkpoint", "version": 1, "root": root},
               a0=np.zeros(10**6, np.float32))
    out = load(path)
    assert len(out) == 10**4 and all(a is out[0] for a in out)


@pytest.mark.parametrize("call,op", [(lambda: save({}, 3), "save"),
                                     (lambda: load(None), "load")])
def test_f_must_be_a_path_or_a_file(call, op):
    with pytest.raises(TypeError, match=rf"{op}: f must be a path or a binary file object"):
        call()
