"""Shapes that once corrupted the heap or killed the process, each run in a subprocess so
that a crash fails its test instead of taking pytest down with it."""

import os
import subprocess
import sys
import textwrap

import pytest


def run_python(code, timeout=120):
    """Runs `code` in a fresh interpreter that imports the same gradflow as this test."""
    here = os.path.dirname(os.path.abspath(__file__))
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=here,
                          capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stdout + proc.stderr


# Small k with n past the narrow B panel once overflowed the GEMM packing buffer.
GEMM_REPRODUCERS = [
    "[gf.randn(2, 2) @ gf.randn(2, 5000) for _ in range(20)]",
    "[nn.Conv2d(1, 8, 1)(gf.randn(1, 1, 64, 64)) for _ in range(5)]",
    "nn.Linear(4, 5000)(gf.randn(32, 4))",
    "[gf.randn(144, 8) @ gf.randn(8, 40000) for _ in range(3)]",
    "[gf.randn(72, 4, dtype=gf.float64) @ gf.randn(4, 9000, dtype=gf.float64) for _ in range(3)]",
]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("line", GEMM_REPRODUCERS)
def test_gemm_reproducers_run_clean(line, threads):
    rc, out = run_python(f"""
        import gradflow as gf, gradflow.nn as nn
        gf.set_num_threads({threads})
        {line}
        print("ok")
    """)
    assert rc == 0 and out.strip().endswith("ok"), out[-2000:]


def test_big_kernel_conv_workspace_stays_under_the_cap():
    """A whole image's im2col here would be 1.1 GB; the kernels work in runs of output
    positions under the 256 MiB workspace cap instead."""
    rc, out = run_python("""
        import resource
        import gradflow as gf, gradflow.nn.functional as F
        x, w = gf.randn(2, 1, 128, 128), gf.randn(1, 1, 128, 128, requires_grad=True)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        F.conv2d(x, w, padding=64).sum().backward()
        print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
    """)
    assert rc == 0, out[-2000:]
    assert int(out.split()[-1]) < 400, out  # MB above the baseline: the cap plus small arrays


@pytest.mark.skipif("asan" in os.environ.get("LD_PRELOAD", ""),
                    reason="AddressSanitizer reserves more address space than the limit")
def test_workspace_allocation_failure_is_a_memory_error():
    rc, out = run_python("""
        import resource
        import gradflow as gf, gradflow.nn.functional as F
        x, w = gf.randn(1, 1, 128, 128), gf.randn(1, 1, 128, 128)
        F.conv2d(gf.randn(1, 1, 8, 8), gf.randn(1, 1, 3, 3))  # threads and buffers warmed up
        vm = int(next(l for l in open("/proc/self/status") if l.startswith("VmSize")).split()[1])
        limit = (vm << 10) + (128 << 20)  # 128 MiB more address space: the workspace needs 256
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        try:
            F.conv2d(x, w, padding=64)
        except MemoryError as e:
            print("MemoryError:", e)
    """)
    assert rc == 0, out[-2000:]
    assert ("MemoryError: conv2d: out of memory: could not allocate 268369920 bytes for inputs "
            "of shapes (1, 1, 128, 128), (1, 1, 128, 128)") in out, out
