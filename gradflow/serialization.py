"""gradflow.save / gradflow.load: checkpoints without pickle.

A checkpoint is an ordinary `.npz` archive (a zip of `.npy` files) that np.load can read with
`allow_pickle=False`; gradflow reads it with its own stricter reader (below), which accepts
only bool, integer, float and complex arrays, so never a pickled object. Its member
`__header__` is UTF-8 JSON describing the saved object as a tree of nodes; tensors and NumPy
arrays are stored as members `a0`, `a1`, … and referenced from the tree by name. Loading only
ever builds the node types listed below, so a hostile file can at worst be rejected, never run
code.

Node types ("t"): none, bool, int, float (stored exactly with float.hex), str, list, tuple,
dict and odict (key/value node pairs, so keys may be ints, as in optimizer states), tensor
(array name, device, requires_grad; a bfloat16 tensor is stored as its uint16 bits and marked
"dtype": "bfloat16"), ndarray, npscalar, dtype and device. A tensor saved
twice under one object (tied weights) is stored once and loads as one tensor.

`save` to a path writes a temporary file in the same directory, flushes it to disk and
renames it over the target (os.replace), so an interrupted save leaves the previous
checkpoint intact. The temporary is named `.<target>.<host>.<pid>.<random>.tmp`; a process
killed mid-write (kill -9, power loss) leaves it behind, and the next save to the same target
deletes those whose process on this host is no longer running.

`load` reads the zip itself instead of trusting it: before it allocates anything it checks
that every entry's bytes lie inside the file, that a stored entry holds exactly the bytes it
declares, that each `.npy` header's shape and dtype match the entry's size, and that the
compressed entries inflate at most 100 times (or to 64 MiB), or to `max_bytes` when the caller
gives it. A zip bomb or a lying header raises ValueError naming the file and the entry.
"""

from __future__ import annotations

import collections
import json
import math
import os
import re
import secrets
import socket
import zipfile
import zlib
from typing import Any, BinaryIO, Callable, Dict, List, Optional, Union

import numpy as np

from gradflow.types import BFLOAT16_BITS
from gradflow.types import device as Device
from gradflow.types import dtype as DType

FORMAT = "gradflow.checkpoint"
VERSION = 1
_HEADER = "__header__"
_ZIP_MAGIC = b"PK\x03\x04"
_ARRAY_KINDS = "biufc"  # bool, signed/unsigned int, float, complex: never object or void
_TENSOR_DTYPES = ("float32", "float64", "int64", "int32", "int16", "int8", "uint8", "bool",
                  "float16", "bfloat16")
_MAX_RATIO = 100  # compressed entries may inflate at most this many times in all...
_FREE_BYTES = 64 << 20  # ...or to this many bytes, whichever is more (zeroed buffers compress)
_CHUNK = 16 << 20  # bytes read from a zip entry at a time
_NPY_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0,
                       (2, 0): np.lib.format.read_array_header_2_0}
_READ_ERRORS = (OSError, EOFError, zipfile.BadZipFile, zlib.error)
_HOST = socket.gethostname()

PathOrFile = Union[str, "os.PathLike[str]", BinaryIO]

_SUPPORTED = (
    "tensors, NumPy arrays and scalars, None, bools, ints, floats, strings, gradflow dtypes "
    "and devices, and dicts/lists/tuples of them"
)


def _is_tensor(x: Any) -> bool:
    from gradflow.tensor import Tensor

    return isinstance(x, Tensor)


# ---------------------------------------------------------------------------- save
class _Encoder:
    def __init__(self) -> None:
        self.arrays: Dict[str, np.ndarray] = {}
        self._memo: Dict[int, str] = {}
        self._keep: List[Any] = []  # holds saved tensors so their ids stay unique

    def _store(self, obj: Any, values: np.ndarray) -> str:
        key = self._memo.get(id(obj))
        if key is None:
            key = f"a{len(self.arrays)}"
            self.arrays[key] = values
            self._memo[id(obj)] = key
            self._keep.append(obj)
        return key

    def encode(self, obj: Any, where: str) -> dict:
        if obj is None:
            return {"t": "none"}
        if isinstance(obj, bool):
            return {"t": "bool", "v": obj}
        if isinstance(obj, int):
            return {"t": "int", "v": obj}
        if isinstance(obj, float):
            return {"t": "float", "v": obj.hex()}
        if isinstance(obj, str):
            return {"t": "str", "v": obj}
        if isinstance(obj, DType):
            return {"t": "dtype", "v": obj.name}
        if isinstance(obj, Device):
            return {"t": "device", "v": str(obj)}
        if _is_tensor(obj):
            cpu = obj.detach().cpu()
            values = cpu._backend.to_numpy(cpu._data)
            node = {"t": "tensor", "device": str(obj.device),
                    "requires_grad": bool(obj.requires_grad)}
            if values.dtype == BFLOAT16_BITS:  # stored as its uint16 bits, marked bfloat16
                values, node["dtype"] = values.view(np.uint16), "bfloat16"
            return {**node, "k": self._store(obj, values)}
        if isinstance(obj, (np.ndarray, np.generic)):
            arr = np.asarray(obj)
            if arr.dtype.kind not in _ARRAY_KINDS:
                raise TypeError(f"save: cannot save a NumPy array of dtype {arr.dtype} at "
                                f"{where} (only bool, integer, float and complex arrays)")
            kind = "ndarray" if isinstance(obj, np.ndarray) else "npscalar"
            return {"t": kind, "k": self._store(obj, arr)}
        if isinstance(obj, (list, tuple)) and not hasattr(obj, "_fields"):
            kind = "list" if isinstance(obj, list) else "tuple"
            return {"t": kind, "v": [self.encode(x, f"{where}[{i}]") for i, x in enumerate(obj)]}
        if isinstance(obj, dict):
            kind = "odict" if isinstance(obj, collections.OrderedDict) else "dict"
            items = [[self.encode(k, f"{where} key {k!r}"), self.encode(v, f"{where}[{k!r}]")]
                     for k, v in obj.items()]
            return {"t": kind, "v": items}
        raise TypeError(f"save: cannot save an object of type {type(obj).__name__} at {where}; "
                        f"gradflow.save stores {_SUPPORTED} (it never pickles)")


def _write(f: BinaryIO, header: dict, arrays: Dict[str, np.ndarray]) -> None:
    blob = np.frombuffer(json.dumps(header, allow_nan=False).encode("utf-8"), np.uint8)
    np.savez(f, **{_HEADER: blob}, **arrays)


def _path(f: Any, op: str) -> str:
    """`f` as a path; anything that is neither a path nor a file is a TypeError naming op."""
    try:
        return os.fspath(f)
    except TypeError:
        raise TypeError(
            f"{op}: f must be a path or a binary file object, got {type(f).__name__}"
        ) from None


def save(obj: Any, f: PathOrFile) -> None:
    """Save `obj` (e.g. a state_dict or an optimizer state) to a path or a binary file.

    To a path it writes `.<name>.<host>.<pid>.<random>.tmp` beside the target, flushes it to
    disk and renames it over the target, so a crash or `kill -9` mid-write never damages the
    previous checkpoint. First it deletes the temporaries earlier saves of the same target
    left behind when their process died (same host, pid no longer running), so orphans never
    pile up. Raises TypeError naming the place of any object it cannot store without pickle.

    >>> import io
    >>> buffer = io.BytesIO()
    >>> gf.save({"weight": gf.ones(2), "step": 3}, buffer)
    >>> _ = buffer.seek(0)
    >>> gf.load(buffer)
    {'weight': tensor([1., 1.]), 'step': 3}
    """
    enc = _Encoder()
    header = {"format": FORMAT, "version": VERSION, "root": enc.encode(obj, "obj")}
    if hasattr(f, "write"):
        _write(f, header, enc.arrays)  # type: ignore[arg-type]
        return
    path = _path(f, "save")
    directory = os.path.dirname(os.path.abspath(path))
    base = os.path.basename(path)
    _remove_orphans(directory, base)
    tmp = os.path.join(directory, f".{base}.{_HOST}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            _write(fh, header, enc.arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(directory)


def _remove_orphans(directory: str, base: str) -> None:
    """Delete the temporaries of saves to `base` whose process (on this host) has died."""
    pattern = re.compile(re.escape(f".{base}.{_HOST}.") + r"(\d+)\.[0-9a-f]+\.tmp")
    for entry in os.listdir(directory):
        match = pattern.fullmatch(entry)
        if match and not _running(int(match.group(1))):
            try:
                os.unlink(os.path.join(directory, entry))
            except FileNotFoundError:  # another save removed it first
                pass


def _running(pid: int) -> bool:
    if os.name != "posix":
        return True  # no safe way to ask (os.kill would terminate it on Windows): keep the file
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):  # another user's process, or not a pid at all: keep it
        return True
    return True


def _fsync_dir(directory: str) -> None:
    """Make the rename itself durable (best effort: not every platform can open a directory)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------- load
class _Decoder:
    def __init__(self, zf: zipfile.ZipFile, name: str,
                 place: Callable[[np.ndarray, str, bool], Any]) -> None:
        self.zf = zf
        self.name = name
        self.place = place
        self._memo: Dict[str, Any] = {}
        self._arrays: Dict[str, np.ndarray] = {}  # each entry is read once, however often named

    def fail(self, msg: str) -> ValueError:
        return ValueError(f"load: '{self.name}' is not a valid gradflow checkpoint: {msg}")

    def field(self, node: dict, key: str, types) -> Any:
        value = node.get(key)
        if not isinstance(value, types) or (types is int and isinstance(value, bool)):
            raise self.fail(f"node {node.get('t')!r} has a bad or missing field {key!r}")
        return value

    def array(self, node: dict) -> np.ndarray:
        key = self.field(node, "k", str)
        if key == _HEADER:
            raise self.fail("a node references the header as an array")
        return self.member(key)

    def member(self, key: str) -> np.ndarray:
        if key not in self._arrays:
            try:
                info = self.zf.getinfo(f"{key}.npy")
            except KeyError:
                raise self.fail(f"the header references array {key!r}, which the file does not "
                                "contain") from None
            try:
                with self.zf.open(info) as entry:
                    self._arrays[key] = self.read_npy(key, info, entry)
            except _READ_ERRORS as e:
                raise self.fail(f"array {key!r} cannot be read ({e})") from None
        return self._arrays[key]

    def read_npy(self, key: str, info: zipfile.ZipInfo, entry: BinaryIO) -> np.ndarray:
        """The array in `entry`, allocated only once its header agrees with the entry's size."""
        magic = entry.read(len(np.lib.format.MAGIC_PREFIX) + 2)
        reader = _NPY_HEADER_READERS.get(tuple(magic[-2:]))
        if not magic.startswith(np.lib.format.MAGIC_PREFIX) or reader is None:
            raise self.fail(f"member {key!r} is not a .npy array (of version 1.0 or 2.0)")
        try:
            shape, fortran_order, dtype = reader(entry)
        except ValueError as e:
            raise self.fail(f"array {key!r} has a bad .npy header ({e})") from None
        if dtype.kind not in _ARRAY_KINDS:
            raise self.fail(f"array {key!r} has the unsupported dtype {dtype}")
        if any(n < 0 for n in shape):
            raise self.fail(f"array {key!r} has the negative shape {shape}")
        count = math.prod(shape)
        present = info.file_size - entry.tell()
        if count * dtype.itemsize != present:
            raise self.fail(f"entry {info.filename!r} declares an array of shape {shape} and "
                            f"dtype {dtype} ({count * dtype.itemsize} bytes) but holds "
                            f"{present} bytes of data")
        flat = np.empty(count, dtype)
        buf = memoryview(flat.view(np.uint8))
        done = 0
        while done < present:
            got = entry.readinto(buf[done:done + _CHUNK])
            if not got:
                raise self.fail(f"entry {info.filename!r} ends after {done} of its {present} "
                                "bytes of data")
            done += got
        try:
            return flat.reshape(shape[::-1]).T if fortran_order else flat.reshape(shape)
        except ValueError:  # an empty array of absurd dimensions
            raise self.fail(f"array {key!r} has the impossible shape {shape}") from None

    def decode(self, node: Any) -> Any:
        if not isinstance(node, dict):
            raise self.fail(f"expected a node object, found {type(node).__name__}")
        t = node.get("t")
        if t == "none":
            return None
        if t == "bool":
            return self.field(node, "v", bool)
        if t == "int":
            return self.field(node, "v", int)
        if t == "float":
            try:
                return float.fromhex(self.field(node, "v", str))
            except ValueError:
                raise self.fail(f"bad float {node['v']!r}") from None
        if t == "str":
            return self.field(node, "v", str)
        if t == "dtype":
            name = self.field(node, "v", str)
            if name not in _TENSOR_DTYPES:
                raise self.fail(f"unknown dtype {name!r}")
            from gradflow.types import as_dtype

            return as_dtype(name)
        if t == "device":
            try:
                return Device(self.field(node, "v", str))
            except ValueError as e:
                raise self.fail(str(e)) from None
        if t in ("list", "tuple"):
            items = [self.decode(x) for x in self.field(node, "v", list)]
            return items if t == "list" else tuple(items)
        if t in ("dict", "odict"):
            return self.decode_dict(node, {} if t == "dict" else collections.OrderedDict())
        if t in ("ndarray", "npscalar"):
            arr = self.array(node)
            if t == "npscalar":
                if arr.ndim != 0:
                    raise self.fail(f"scalar array {node['k']!r} has shape {arr.shape}")
                return arr[()]
            return arr
        if t == "tensor":
            return self.decode_tensor(node)
        raise self.fail(f"unknown node type {t!r}")

    def decode_dict(self, node: dict, out: dict) -> dict:
        for pair in self.field(node, "v", list):
            if not isinstance(pair, list) or len(pair) != 2:
                raise self.fail("a dict item is not a [key, value] pair")
            key = self.decode(pair[0])
            try:
                out[key] = self.decode(pair[1])
            except TypeError:
                raise self.fail(f"unhashable dict key {key!r}") from None
        return out

    def decode_tensor(self, node: dict) -> Any:
        key = self.field(node, "k", str)
        if key in self._memo:
            return self._memo[key]
        arr = self.array(node)
        if node.get("dtype") == "bfloat16":
            if arr.dtype != np.uint16:
                raise self.fail(f"bfloat16 tensor {key!r} is stored as {arr.dtype}, not uint16")
            arr = arr.view(BFLOAT16_BITS)
        elif arr.dtype.name not in _TENSOR_DTYPES:
            raise self.fail(f"tensor {key!r} has dtype {arr.dtype}, not one of "
                            f"{', '.join(_TENSOR_DTYPES)}")
        dev = self.field(node, "device", str)
        grad = self.field(node, "requires_grad", bool)
        self._memo[key] = self.place(arr, dev, grad)
        return self._memo[key]


def _placer(map_location: Any) -> Callable[[np.ndarray, str, bool], Any]:
    """(array, saved device, requires_grad) -> tensor on the device map_location picks:
    None keeps the saved device; a str or device sends everything there; a dict maps saved
    device strings to targets (unlisted devices stay)."""
    if map_location is not None and not isinstance(map_location, (str, Device, dict)):
        raise TypeError("load: map_location should be None, a str, a gradflow.device or a "
                        f"dict of device strings, got {type(map_location).__name__}")

    def place(arr: np.ndarray, saved: str, requires_grad: bool) -> Any:
        import gradflow

        if map_location is None:
            target = saved
        elif isinstance(map_location, dict):
            target = map_location.get(saved, saved)
        else:
            target = map_location
        target = Device(target)
        t = gradflow.from_numpy(np.asarray(arr, order="C"))  # keeps 0-d arrays 0-d
        if target.type != "cpu":
            try:
                t = t.to(target)
            except Exception as e:
                raise RuntimeError(
                    f"load: cannot put a tensor saved on '{saved}' on '{target}' ({e}); on a "
                    "machine without that device use map_location='cpu'"
                ) from None
        if requires_grad:
            t.requires_grad_(True)
        return t

    return place


def load(f: PathOrFile, map_location: Any = None, *, weights_only: Optional[bool] = None,
         max_bytes: Optional[int] = None) -> Any:
    """Load what `save` wrote. `map_location`: None (each tensor on the device it was saved
    from), 'cpu', 'cuda', 'cuda:1', a gradflow.device, or a dict {'cuda:0': 'cpu', …}.
    `weights_only` (None, True or False) is accepted for PyTorch's signature and changes
    nothing: gradflow's format holds only data, so every load is already "weights only".

    Nothing in the file is ever executed (no pickle; object arrays are refused). A file that is
    not a gradflow checkpoint, or is truncated, corrupted or lying about its sizes, raises
    ValueError naming it (and the entry at fault) before anything is allocated: each entry's
    bytes must lie inside the file, a stored entry must hold exactly the bytes its header
    declares, and compressed (deflated) entries may inflate at most 100 times their size in
    all (or to 64 MiB, whichever is more). `max_bytes` replaces that ratio cap by a limit on the
    total the entries inflate to, compressed or not: pass it to load a highly compressed file
    you trust, or to bound the memory an untrusted file may take.

    >>> import io
    >>> buffer = io.BytesIO()
    >>> gf.save(nn.Linear(2, 1).state_dict(), buffer)
    >>> _ = buffer.seek(0)
    >>> state = gf.load(buffer, map_location="cpu", weights_only=True)
    >>> sorted(state), state["weight"].shape
    (['bias', 'weight'], gradflow.Size([1, 2]))
    """
    if weights_only is not None and not isinstance(weights_only, bool):
        raise TypeError(f"load: weights_only must be None or a bool, got {weights_only!r}")
    place = _placer(map_location)
    if max_bytes is not None and not (isinstance(max_bytes, int) and max_bytes >= 0):
        raise ValueError(f"load: max_bytes should be None or a non-negative int, got {max_bytes!r}")
    if hasattr(f, "read"):
        return _load_file(f, getattr(f, "name", repr(f)), place, max_bytes)
    name = _path(f, "load")
    with open(name, "rb") as fh:
        return _load_file(fh, name, place, max_bytes)


def _check_entries(zf: zipfile.ZipFile, name: str, end: int, max_bytes: Optional[int]) -> None:
    """Raise ValueError naming the entry unless every declared size is backed by the file."""
    infos = zf.infolist()
    for info in infos:
        where = f"load: '{name}': entry {info.filename!r}"
        if info.flag_bits & 0x1 or info.compress_type not in (zipfile.ZIP_STORED,
                                                              zipfile.ZIP_DEFLATED):
            raise ValueError(f"{where} is encrypted or compressed with method "
                             f"{info.compress_type} (gradflow reads stored and deflated entries)")
        if info.header_offset + info.compress_size > end:
            raise ValueError(f"{where} declares {info.compress_size} bytes at offset "
                             f"{info.header_offset}, past the end of the {end}-byte file "
                             "(truncated or corrupted?)")
        if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
            raise ValueError(f"{where} is stored uncompressed in {info.compress_size} bytes but "
                             f"declares {info.file_size}")
    if max_bytes is not None:
        total = sum(i.file_size for i in infos)
        if total > max_bytes:
            big = max(infos, key=lambda i: i.file_size)
            raise ValueError(f"load: '{name}' inflates to {total} bytes, more than max_bytes="
                             f"{max_bytes} (its largest entry is {big.filename!r}, "
                             f"{big.file_size} bytes)")
        return
    deflated = [i for i in infos if i.compress_type == zipfile.ZIP_DEFLATED]
    inflated = sum(i.file_size for i in deflated)
    packed = sum(i.compress_size for i in deflated)
    if inflated > max(_MAX_RATIO * packed, _FREE_BYTES):
        big = max(deflated, key=lambda i: i.file_size)
        raise ValueError(f"load: '{name}': its compressed entries would inflate from {packed} to "
                         f"{inflated} bytes, more than {_MAX_RATIO} times (a zip bomb?); the "
                         f"largest is entry {big.filename!r}, {big.compress_size} bytes "
                         f"inflating to {big.file_size}. Pass max_bytes= to load a file you trust")


def _load_file(fh: BinaryIO, name: str, place: Callable[[np.ndarray, str, bool], Any],
               max_bytes: Optional[int]) -> Any:
    start = fh.tell()
    if fh.read(len(_ZIP_MAGIC)) != _ZIP_MAGIC:
        raise ValueError(f"load: '{name}' is not a gradflow checkpoint (no zip signature; "
                         "gradflow never reads pickle files)")
    end = fh.seek(0, os.SEEK_END)
    fh.seek(start)
    try:
        zf = zipfile.ZipFile(fh)
    except (ValueError, *_READ_ERRORS) as e:
        raise ValueError(f"load: '{name}' is not a valid gradflow checkpoint (truncated or "
                         f"corrupted?): {e}") from None
    with zf:
        _check_entries(zf, name, end, max_bytes)
        dec = _Decoder(zf, str(name), place)
        if f"{_HEADER}.npy" not in zf.namelist():
            raise dec.fail("it has no gradflow header")
        blob = dec.member(_HEADER)
        if blob.dtype != np.uint8 or blob.ndim != 1:
            raise dec.fail("the header is not a byte string")
        try:
            header = json.loads(blob.tobytes().decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as e:
            raise dec.fail(f"the header is not valid JSON ({type(e).__name__})") from None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise dec.fail("the header does not name the gradflow checkpoint format")
        if header.get("version") != VERSION:
            raise dec.fail(f"format version {header.get('version')!r} is not supported "
                           f"(this gradflow reads version {VERSION})")
        try:
            return dec.decode(header.get("root"))
        except RecursionError:
            raise dec.fail("the object tree is nested too deeply") from None


# ---------------------------------------------------------------- PyTorch's allow-list
# torch.load(weights_only=True) unpickles only the globals allowed here. gradflow never
# unpickles, so there is nothing to allow: these keep PyTorch's API, record what they are
# given (get_safe_globals answers it) and change nothing about loading.
_safe_globals: List[Any] = []


def add_safe_globals(safe_globals: List[Any]) -> None:
    """Accepted as a no-op for loading (see above); remembers the entries.

    >>> gf.serialization.add_safe_globals([nn.Linear])
    >>> gf.serialization.get_safe_globals()
    [<class 'gradflow.nn.linear.Linear'>]
    >>> gf.serialization.clear_safe_globals()
    """
    if not isinstance(safe_globals, (list, tuple)):
        raise TypeError(f"add_safe_globals: expected a list of globals, got "
                        f"{type(safe_globals).__name__}")
    _safe_globals.extend(safe_globals)


def get_safe_globals() -> List[Any]:
    """What add_safe_globals was given (it does not change loading).

    >>> gf.serialization.get_safe_globals()
    []
    """
    return list(_safe_globals)


def clear_safe_globals() -> None:
    """Forget what add_safe_globals was given (loading does not change: it never runs code).

    >>> gf.serialization.add_safe_globals([nn.Linear])
    >>> gf.serialization.clear_safe_globals()
    >>> gf.serialization.get_safe_globals()
    []
    """
    _safe_globals.clear()


class safe_globals:
    """``with safe_globals([...]):`` as PyTorch's; the entries are allowed only inside the
    block, which for gradflow changes nothing.

    >>> with gf.serialization.safe_globals([nn.Linear]):
    ...     print(gf.serialization.get_safe_globals())
    [<class 'gradflow.nn.linear.Linear'>]
    >>> gf.serialization.get_safe_globals()
    []
    """

    def __init__(self, safe_globals: List[Any]) -> None:
        self.safe_globals = list(safe_globals)

    def __enter__(self) -> None:
        self._before = get_safe_globals()
        add_safe_globals(self.safe_globals)

    def __exit__(self, *exc: Any) -> None:
        _safe_globals[:] = self._before
