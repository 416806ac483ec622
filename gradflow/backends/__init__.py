"""Backends by device: the CPU one always, the CUDA one when gradflow._cuda finds a GPU."""

from __future__ import annotations

from typing import Dict, List

from gradflow.backends.base import Backend
from gradflow.backends.cpu import CPUBackend
from gradflow.types import device as Device

cpu = CPUBackend()
cpu.device = Device("cpu")
_backends: Dict[Device, Backend] = {cpu.device: cpu}
default_seed = 0  # the last gradflow.manual_seed; seeds backends created later


def get_backend(dev) -> Backend:
    """The backend serving `dev` (a device, or a string like 'cuda:0')."""
    dev = dev if isinstance(dev, Device) else Device(dev)
    found = _backends.get(dev)
    if found is None:
        from gradflow import cuda

        if dev.type != "cuda":
            raise ValueError(f"unknown device {dev}")
        if not cuda.is_available():
            raise cuda.no_device_error(f"cannot use device {dev}")
        if dev.index >= cuda.device_count():
            raise RuntimeError(
                f"cannot use device {dev}: only {cuda.device_count()} CUDA device(s) present"
            )
        from gradflow.backends.cuda import CUDABackend

        found = CUDABackend(dev.index)
        found.device = dev
        found.manual_seed(default_seed)
        _backends[dev] = found
    return found


def active_backends() -> List[Backend]:
    return list(_backends.values())
