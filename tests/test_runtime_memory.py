"""The native module's malloc setting (csrc/cpu/runtime.h keep_freed_memory): once gradflow is
imported, memory that training frees and allocates again is reused without page faults, and
GRADFLOW_KEEP_FREED_MEMORY=0 keeps glibc's defaults. Each case runs in a fresh interpreter, as
the setting is made once, when the module loads."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

pytestmark = [
    pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                       reason="a glibc malloc setting"),
    pytest.mark.skipif("asan" in os.environ.get("LD_PRELOAD", ""),
                       reason="AddressSanitizer's allocator replaces glibc's malloc"),
]

# Arrays of 1-5 MiB allocated and freed as a training step does, then the page faults of 20
# more such steps, per step.
PROGRAM = """
import resource
import numpy as np
import gradflow

def step():
    arrays = [np.ones((1 << 18) * (i % 5 + 1), np.float32) for i in range(20)]
    del arrays

step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    step()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 20)
"""


def faults_per_step(keep: str | None) -> float:
    env = dict(os.environ)
    env.pop("GRADFLOW_KEEP_FREED_MEMORY", None)
    if keep is not None:
        env["GRADFLOW_KEEP_FREED_MEMORY"] = keep
    out = subprocess.run([sys.executable, "-c", PROGRAM], env=env, capture_output=True,
                         text=True, check=True)
    return float(out.stdout.split()[-1])


def test_freed_memory_is_reused_without_page_faults():
    kept, default = faults_per_step(None), faults_per_step("0")
    assert kept < 50  # about 0: every step reuses the pages the last one faulted in
    assert default > 20 * max(kept, 50)  # glibc's defaults return them to the kernel
