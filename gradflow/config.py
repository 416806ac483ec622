"""Build and runtime configuration: threads, SIMD level, CUDA status."""

from __future__ import annotations

import os
import sys

import numpy as np

try:
    from gradflow import _C
except ImportError as exc:  # most often: a source checkout in the working directory
    raise ImportError(
        f"gradflow's native module gradflow._C cannot be imported from "
        f"{os.path.dirname(os.path.abspath(__file__))} ({exc}). If that is a source checkout, "
        "it hides the installed package: run from another folder, or build it in place "
        "(README, 'For development')."
    ) from exc


def set_num_threads(n: int) -> None:
    """Threads used by the native CPU kernels (OpenMP).

    >>> old = gf.get_num_threads()
    >>> gf.set_num_threads(1)
    >>> gf.get_num_threads()
    1
    >>> gf.set_num_threads(old)
    """
    from gradflow.ops.common import as_int

    n = as_int(n, "set_num_threads", "n")
    if n < 1:
        raise ValueError(f"set_num_threads: n must be at least 1, got {n}")
    _C.set_num_threads(n)


def get_num_threads() -> int:
    """Threads the native CPU kernels use (OpenMP), as set by set_num_threads.

    >>> gf.get_num_threads() >= 1
    True
    """
    return _C.get_num_threads()


def cuda_build_status() -> str:
    """What the build chose for the CUDA module and why, as CMake recorded it (GRADFLOW_CUDA:
    AUTO builds it for the visible GPU's architecture only, ON for every architecture).

    >>> isinstance(gf.config.cuda_build_status(), str)
    True
    """
    try:
        from gradflow._build_config import cuda
    except ImportError:
        return "not recorded (gradflow/_build_config.py is missing: rebuild to write it)"
    return cuda


def config_lines() -> list:
    """show_config's lines: gradflow's version, Python and NumPy, compiler, threads, SIMD, CUDA.

    >>> gf.config.config_lines()[0] == f"gradflow {gf.__version__}"
    True
    """
    from gradflow import __version__, cuda

    lines = [
        f"gradflow {__version__}",
        f"  Python {sys.version.split()[0]}, NumPy {np.__version__}",
        f"  C++ compiler: {_C.compiler}",
        f"  OpenMP: {'yes' if _C.openmp_enabled() else 'no'}, threads: {_C.get_num_threads()}",
        f"  SIMD (detected at run time): {_C.simd_level()}",
    ]
    lines.append(f"  CUDA build: {cuda_build_status()}")
    if not cuda.is_built():
        lines.append("  CUDA: not built")
    elif cuda.is_available():
        names = ", ".join(cuda.get_device_name(i) for i in range(cuda.device_count()))
        lines.append(f"  CUDA: built, available: {cuda.device_count()} device(s): {names}")
    else:
        lines.append(f"  CUDA: built, not available: {cuda.unavailable_reason()}")
    return lines


def show_config() -> None:
    """Print how gradflow was built and what it found on this machine.

    >>> gf.show_config()  # doctest: +ELLIPSIS
    gradflow ...
      Python ..., NumPy ...
      C++ compiler: ...
    """
    print("\n".join(config_lines()))
