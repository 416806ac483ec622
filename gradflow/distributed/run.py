"""Launch a training script on N processes of this machine through MPI:

    python -m gradflow.distributed.run -n 4 train.py --epochs 3
    python -m gradflow.distributed.run -n 2 -m examples.ddp_resnet

is ``mpiexec -n 4 <this python> train.py --epochs 3``, using the mpiexec installed next to
this Python (the ``mpich`` package's) or else the first one on PATH. Each process gets one
OpenMP thread unless OMP_NUM_THREADS is set. The exit status is mpiexec's: non-zero when a
rank fails.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from typing import List, Optional

_INSTALL = ('no mpiexec found next to this Python or on PATH; install MPI with: '
            'pip install "gradflow[mpi]" (mpi4py and mpich)')


def find_mpiexec() -> Optional[str]:
    """The mpiexec beside this interpreter (a venv's bin/), else the first one on PATH.

    >>> from gradflow.distributed.run import find_mpiexec
    >>> path = find_mpiexec()
    >>> path is None or path.endswith("mpiexec")
    True
    """
    beside = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    if os.path.isfile(beside) and os.access(beside, os.X_OK):
        return beside
    return shutil.which("mpiexec")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m gradflow.distributed.run",
                                description="Run a script on N MPI processes of this machine.")
    p.add_argument("-n", "--nproc", type=int, default=1, help="number of processes")
    p.add_argument("--mpiexec", default=None, help="the mpiexec to use (default: found)")
    p.add_argument("-m", dest="module", action="store_true",
                   help="run the target as a module (python -m target)")
    p.add_argument("target", help="the script (or, with -m, the module) to run")
    p.add_argument("args", nargs=argparse.REMAINDER, help="the target's arguments")
    return p


def command(nproc: int, target: str, args: List[str], module: bool = False,
            mpiexec: Optional[str] = None) -> List[str]:
    """The mpiexec command line for `target` on `nproc` processes.

    >>> from gradflow.distributed.run import command
    >>> command(2, "train.py", ["--epochs", "1"], mpiexec="mpiexec")[:3]
    ['mpiexec', '-n', '2']
    """
    mpiexec = mpiexec or find_mpiexec()
    if mpiexec is None:
        raise FileNotFoundError(_INSTALL)
    run = [sys.executable, "-m", target] if module else [sys.executable, target]
    return [mpiexec, "-n", str(nproc)] + run + list(args)


def main(argv: Optional[List[str]] = None) -> int:
    """``python -m gradflow.distributed.run -n N script.py args``: runs the script under
    mpiexec and returns its exit status.

    >>> from gradflow.distributed.run import main
    >>> main(["-n", "2", "train.py"])  # doctest: +SKIP
    0
    """
    opts = _parser().parse_args(argv)
    if opts.nproc < 1:
        _parser().error(f"-n must be at least 1, got {opts.nproc}")
    try:
        cmd = command(opts.nproc, opts.target, opts.args, opts.module, opts.mpiexec)
    except FileNotFoundError as exc:
        print(f"gradflow.distributed.run: {exc}", file=sys.stderr)
        return 127
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    return subprocess.call(cmd, env=env)


if __name__ == "__main__":
    sys.exit(main())
