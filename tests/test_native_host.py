"""The CUDA kernels' per-thread bodies, run on the host (no GPU needed).

Each ``tests/native/*_test.cpp`` is a C++ program that includes a kernel family's
``__host__ __device__`` index functions (``csrc/cuda/*.h``), drives them over every
(block, thread) index of a launch and compares with the CPU kernels. Its ``// link:`` lines name
the sources it needs besides itself, relative to the repository root. Each program is built here
with the host compiler under AddressSanitizer and UBSan and must exit 0.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROGRAMS = sorted((ROOT / "tests" / "native").glob("*_test.cpp"))
CXX = os.environ.get("CXX", "c++")
FLAGS = ["-std=c++17", "-O1", "-g", "-fopenmp", "-fsanitize=address,undefined",
         "-fno-sanitize-recover=all", "-fno-omit-frame-pointer", "-Wall", "-Wextra"]

pytestmark = pytest.mark.skipif(
    shutil.which(CXX) is None or not (ROOT / "csrc").is_dir() or sys.platform != "linux",
    reason="needs the source tree and a host C++ compiler")


def _links(program: Path):
    return [str(ROOT / p) for p in re.findall(r"^// link: (\S+)", program.read_text(), re.M)]


@pytest.mark.parametrize("program", PROGRAMS, ids=[p.stem for p in PROGRAMS])
def test_native_program(program, tmp_path):
    # The sanitizer run preloads the runtimes into Python; the compiler and the program must not
    # inherit that.
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "PYTHONMALLOC")}
    exe = tmp_path / program.stem
    build = subprocess.run([CXX, *FLAGS, "-I", str(ROOT / "csrc"), str(program),
                            *_links(program), "-o", str(exe)],
                           capture_output=True, text=True, env=env)
    assert build.returncode == 0, build.stderr[-4000:]
    run = subprocess.run([str(exe)], capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
