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
