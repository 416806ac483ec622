"""gradflow.save / gradflow.load: round trips, atomic replace, and bad or hostile files."""

from __future__ import annotations

import collections
import io
import json
import math
import os
import pickle
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
    with pytest.raises(ValueError, match=r"array 'a0' cannot be read"):
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
    ({"t": "tensor", "k": "a1", "device": "cpu", "requires_grad": False}, "dtype uint8"),
    ({"t": "tensor", "k": "__header__", "device": "cpu", "requires_grad": False},
     "references the header"),
    ([1, 2], "expected a node object"),
])
def test_hostile_headers(tmp_path, root, match):
    bad = tmp_path / "bad.pt"
    header = {"format": "gradflow.checkpoint", "version": 1, "root": root}
    _write_npz(bad, header, a0=np.zeros(3, np.float32), a1=np.zeros(2, np.uint8))
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
