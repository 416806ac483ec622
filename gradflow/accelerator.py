"""gradflow.accelerator: the device-neutral questions of ``torch.accelerator``, answered from
the CUDA backend (gradflow's only accelerator). On a machine without a GPU, or a gradflow
built without CUDA, ``is_available()`` is False and ``current_accelerator()`` None."""

from __future__ import annotations

from typing import Optional

from gradflow import cuda
from gradflow.types import device as Device


def is_available() -> bool:
    """True when an accelerator (a CUDA GPU) can be used.

    >>> gf.accelerator.is_available() == gf.cuda.is_available()
    True
    """
    return cuda.is_available()


def device_count() -> int:
    """How many accelerator devices there are (0 without one).

    >>> gf.accelerator.device_count() == gf.cuda.device_count()
    True
    """
    return cuda.device_count()


def current_accelerator(check_available: bool = False) -> Optional[Device]:
    """device('cuda') when gradflow has an accelerator, else None. As PyTorch, without
    check_available a build with CUDA answers device('cuda') even where no GPU is present.

    >>> acc = gf.accelerator.current_accelerator(check_available=True)
    >>> device = acc if acc is not None else gf.device("cpu")
    >>> device.type in ("cpu", "cuda")
    True
    """
    if check_available:
        return Device("cuda") if cuda.is_available() else None
    return Device("cuda") if cuda.is_built() else None


def current_device_index() -> int:
    """The index of the accelerator device in use: gradflow uses device 0 (-1 without one).

    >>> gf.accelerator.current_device_index() == (0 if gf.accelerator.is_available() else -1)
    True
    """
    return 0 if cuda.is_available() else -1


current_device_idx = current_device_index


def synchronize(device=None) -> None:
    """Wait for the accelerator's queued work to finish (nothing to wait for without one);
    `device` is accepted for PyTorch's signature: gradflow uses one device.

    >>> gf.accelerator.synchronize()
    """
    if cuda.is_available():
        cuda.synchronize()
