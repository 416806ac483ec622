"""gradflow.cuda: is a GPU there, which one, and its memory, as in ``torch.cuda``.

Every function answers without raising on a machine with no GPU, no driver, or a gradflow
built without CUDA: ``is_available()`` is then False and ``device_count()`` 0.
"""

from __future__ import annotations

import importlib.util
from typing import Optional

_import_error: Optional[str] = None
if importlib.util.find_spec("gradflow._cuda") is None:
    _cuda = None
    _import_error = "gradflow was built without CUDA (no gradflow._cuda module)"
else:
    try:
        from gradflow import _cuda
    except ImportError as exc:  # the module is there but cannot load (e.g. a missing library)
        _cuda = None
        _import_error = f"gradflow._cuda failed to load: {exc}"


def is_built() -> bool:
    """True when gradflow was compiled with its CUDA module.

    >>> gf.cuda.is_available() <= gf.cuda.is_built()
    True
    """
    return _cuda is not None


def is_available() -> bool:
    """True when gradflow._cuda was built and sees at least one GPU.

    >>> device = "cuda" if gf.cuda.is_available() else "cpu"
    >>> gf.ones(2, device=device).sum().item()
    2.0
    """
    return device_count() > 0


def device_count() -> int:
    """How many CUDA GPUs gradflow sees (0 without the CUDA module or a GPU).

    >>> gf.cuda.device_count() >= int(gf.cuda.is_available())
    True
    """
    return _cuda.device_count() if _cuda is not None else 0


def unavailable_reason() -> str:
    """Why ``is_available()`` is False (empty string when a GPU is there).

    >>> gf.cuda.is_available() or gf.cuda.unavailable_reason() != ""
    True
    """
    if _cuda is None:
        return _import_error or ""
    reason = _cuda.unavailable_reason()
    # Without a GPU (no driver loaded) the runtime reports "driver version is insufficient";
    # say first that no device was found, and keep the runtime's words for the other cases.
    return f"no CUDA device found (CUDA runtime: {reason})" if reason else ""


def no_device_error(op: str) -> RuntimeError:
    """The error for using CUDA where is_available() is False, naming the op.

    >>> error = gf.cuda.no_device_error("my_op")
    >>> isinstance(error, RuntimeError), str(error).startswith("my_op: no CUDA device")
    (True, True)
    """
    return RuntimeError(
        f"{op}: no CUDA device: gradflow.cuda.is_available() is False ({unavailable_reason()})"
    )


def _require(op: str) -> None:
    if not is_available():
        raise no_device_error(op)


def get_device_name(device: int = 0) -> str:
    """The GPU's name, as the driver reports it (RuntimeError without a GPU).

    >>> name = gf.cuda.get_device_name() if gf.cuda.is_available() else "no GPU"
    >>> isinstance(name, str)
    True
    """
    _require("get_device_name")
    return _cuda.get_device_name(device)


def get_device_capability(device: int = 0) -> tuple:
    """The GPU's compute capability (major, minor), e.g. (9, 0) (RuntimeError without a GPU).

    >>> major, minor = gf.cuda.get_device_capability() if gf.cuda.is_available() else (0, 0)
    >>> major >= 0 and minor >= 0
    True
    """
    _require("get_device_capability")
    return tuple(_cuda.get_device_capability(device))


def synchronize() -> None:
    """Wait until every queued kernel and copy has finished.

    >>> gf.cuda.synchronize()
    """
    if is_available():
        _cuda.synchronize()


class Event:
    """A point in gradflow's CUDA stream, for timing, as ``torch.cuda.Event(enable_timing=True)``:
    ``start.record()``, queue work, ``end.record()``, ``end.synchronize()``, then
    ``start.elapsed_time(end)`` is the GPU time between them in milliseconds.

    >>> if gf.cuda.is_available():
    ...     start, end = gf.cuda.Event(), gf.cuda.Event()
    ...     start.record()
    ...     y = gf.ones(256, 256, device="cuda") @ gf.ones(256, 256, device="cuda")
    ...     end.record()
    ...     end.synchronize()
    ...     print(start.elapsed_time(end) >= 0)
    ... else:
    ...     print(True)
    True
    """

    def __init__(self, enable_timing: bool = True) -> None:
        _require("Event")
        self._event = _cuda.Event()

    def record(self) -> None:
        self._event.record()

    def synchronize(self) -> None:
        self._event.synchronize()

    def elapsed_time(self, end: "Event") -> float:
        return self._event.elapsed_time(end._event)


def memory_allocated() -> int:
    """Bytes held by live device arrays (rounded up to the allocator's block sizes).

    >>> before = gf.cuda.memory_allocated()
    >>> if gf.cuda.is_available():
    ...     x = gf.empty(1024, device="cuda")
    >>> gf.cuda.memory_allocated() - before >= (4096 if gf.cuda.is_available() else 0)
    True
    """
    return _cuda.memory_allocated() if _cuda is not None else 0


def max_memory_allocated() -> int:
    """Peak of ``memory_allocated()`` since start or the last ``reset_peak_memory_stats()``.

    >>> gf.cuda.reset_peak_memory_stats()
    >>> gf.cuda.max_memory_allocated() == gf.cuda.memory_allocated()
    True
    """
    return _cuda.max_memory_allocated() if _cuda is not None else 0


def memory_reserved() -> int:
    """Bytes taken from the driver: live blocks plus blocks cached for reuse.

    >>> gf.cuda.memory_reserved() >= gf.cuda.memory_allocated()
    True
    """
    return _cuda.memory_reserved() if _cuda is not None else 0


def reset_peak_memory_stats() -> None:
    """Start max_memory_allocated() afresh from the bytes allocated now.

    >>> gf.cuda.reset_peak_memory_stats()
    >>> gf.cuda.max_memory_allocated() == gf.cuda.memory_allocated()
    True
    """
    if _cuda is not None:
        _cuda.reset_peak_memory_stats()


def empty_cache() -> None:
    """Return cached (unused) blocks to the driver; live arrays are untouched.

    >>> gf.cuda.empty_cache()
    >>> gf.cuda.memory_reserved() >= gf.cuda.memory_allocated()
    True
    """
    if is_available():
        _cuda.empty_cache()


def manual_seed(seed: int) -> None:
    """Seed the GPU's Philox generator (a no-op without a GPU, like PyTorch).

    >>> gf.cuda.manual_seed(0)
    """
    if _cuda is not None:
        _cuda.manual_seed(int(seed) & 0xFFFFFFFFFFFFFFFF)


manual_seed_all = manual_seed
