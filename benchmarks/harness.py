"""Side-by-side timing with each library in its own process.

Two libraries timed in one process disturb each other: PyTorch's bundled OpenMP and gradflow's
both keep idle threads spinning, which steal the cores the other computes on and skew the ratio
by 30 % or more. A `Duel` therefore starts one worker process per competitor ("spawn": a fresh
interpreter that imports only its own library) and still compares them side by side: the parent
asks the workers in turn, round after round, the order reversed every other round, so that load
from other processes hits all of them alike; medians over rounds are what the scripts report.

A benchmark script supplies a *factory*: a module-level function `factory(name, case)`, called in
the worker of competitor `name`, that imports that competitor's library and returns a *runner*
for `case`, a callable `runner(inner) -> seconds` running `inner` iterations (`host_timed(step)`
makes one from a zero-argument step; GPU runners time themselves with CUDA events), or None when
the competitor cannot run the case. A runner may have an `info()` method returning a dict (peak
memory, ...). Scripts import the libraries inside functions only, because a spawned worker
re-imports the script's module.

    with Duel({"gradflow": "gradflow", "torch": "torch"}, max_threads=2) as duel:
        duel.setup(make_runner, case, threads=2, warmup=3)
        seconds = duel.measure(rounds=15, min_seconds=0.1)  # name -> [s per iteration]
"""

from __future__ import annotations

import ctypes
import glob
import importlib
import math
import multiprocessing
import os
import time
import traceback
from typing import Any, Callable, Dict, List, Optional

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def host_timed(step: Callable[[], Any],
               clock: Callable[[], float] = time.perf_counter) -> Callable[[int], float]:
    """A runner timing `inner` calls of `step` with the host's wall clock or, for one-thread
    work on a loaded machine, `time.process_time`: the CPU time of the worker, which leaves
    out the time it waits for a core."""
    def run(inner: int) -> float:
        start = clock()
        for _ in range(inner):
            step()
        return clock() - start

    return run


def machine_load() -> dict:
    """The 1-minute load average and the core count, for a results file: with more runnable
    processes than cores, multi-thread timings mostly measure the scheduler."""
    return {"load_average_1min": round(os.getloadavg()[0], 2), "cpus": os.cpu_count()}


def openblas_set_threads() -> Optional[Callable[[int], None]]:
    """NumPy's bundled OpenBLAS thread setter (no threadpoolctl needed), or None."""
    import numpy as np

    folder = os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs")
    for path in glob.glob(os.path.join(folder, "*openblas*")):
        lib = ctypes.CDLL(path)
        for name in ("scipy_openblas_set_num_threads64_", "openblas_set_num_threads64_",
                     "openblas_set_num_threads"):
            if hasattr(lib, name):
                return getattr(lib, name)
    return None


def set_threads(library: str, threads: int) -> None:
    """Set the thread count of `library` (gradflow, torch or numpy) in this process."""
    if library != "numpy":
        importlib.import_module(library).set_num_threads(threads)
    elif (setter := openblas_set_threads()) is not None:
        setter(threads)


def _serve(conn, name: str, library: str) -> None:
    """A worker's loop: answer ("ok", value) or ("error", traceback) to each request."""
    importlib.import_module(library)  # while the other workers import theirs
    runner = None
    while True:
        request, *args = conn.recv()
        if request == "stop":
            return
        try:
            if request == "setup":  # -> warm-up seconds per iteration, None: cannot run it
                factory, case, threads, warmup = args
                runner = None
                set_threads(library, threads)
                runner = factory(name, case)
                value = None if runner is None else runner(warmup) / warmup
            elif request == "time":  # -> seconds per iteration
                value = runner(args[0]) / args[0]
            else:  # "info"
                value = runner.info() if hasattr(runner, "info") else {}
            conn.send(("ok", value))
        except NotImplementedError:  # e.g. a device without that kernel
            runner = None
            conn.send(("ok", None))
        except Exception:  # noqa: BLE001 - the parent re-raises it with the traceback
            conn.send(("error", traceback.format_exc()))


class Duel:
    """One worker process per competitor (`competitors`: name -> library to set threads of),
    started with every thread variable at `max_threads`."""

    def __init__(self, competitors: Dict[str, str], max_threads: int = 1) -> None:
        context = multiprocessing.get_context("spawn")
        saved = {k: os.environ.get(k) for k in THREAD_VARIABLES}
        os.environ.update({k: str(max_threads) for k in THREAD_VARIABLES})  # read at import
        self.workers = {}
        try:
            for name, library in competitors.items():
                conn, child_conn = context.Pipe()
                process = context.Process(target=_serve, args=(child_conn, name, library),
                                          daemon=True, name=f"duel-{name}")
                process.start()
                child_conn.close()
                self.workers[name] = (process, conn)
        finally:
            for k, v in saved.items():
                if v is None:
                    del os.environ[k]
                else:
                    os.environ[k] = v
        self.warm: Dict[str, float] = {}  # running competitor -> warm-up s per iteration

    def _receive(self, name: str) -> Any:
        process, conn = self.workers[name]
        try:
            status, value = conn.recv()
        except EOFError:
            process.join(1)
            raise RuntimeError(f"the {name} worker died (exit code {process.exitcode})") from None
        if status == "error":
            raise RuntimeError(f"in the {name} worker:\n{value}")
        return value

    def setup(self, factory: Callable, case: Any, threads: int = 1, warmup: int = 1,
              names: Optional[List[str]] = None) -> List[str]:
        """Build `case` in the workers `names` (default all), at `threads` threads, and run
        `warmup` untimed iterations, one worker after the other (so that cuDNN's algorithm
        search, for one, runs undisturbed); returns who can run it."""
        self.warm = {}
        for name in list(self.workers) if names is None else names:
            self.workers[name][1].send(("setup", factory, case, threads, warmup))
            seconds = self._receive(name)
            if seconds is not None:
                self.warm[name] = seconds
        return list(self.warm)

    def measure(self, rounds: int, inner: int = 1, min_seconds: float = 0.0,
                budget_s: float = math.inf, settle_s: float = 0.0) -> Dict[str, List[float]]:
        """Seconds per iteration in each round, per competitor set up. A turn runs `inner`
        iterations, or more to last about `min_seconds`; after three rounds, stops once
        `budget_s` is spent. Sleeps `settle_s` before each turn, so that the last worker's
        idle threads stop spinning before the next one starts."""
        counts = {n: max(inner, math.ceil(min_seconds / max(t, 1e-9)))
                  for n, t in self.warm.items()}
        samples: Dict[str, List[float]] = {name: [] for name in counts}
        start = time.perf_counter()
        for r in range(rounds):
            for name in list(counts)[::1 if r % 2 == 0 else -1]:
                time.sleep(settle_s)
                self.workers[name][1].send(("time", counts[name]))
                samples[name].append(self._receive(name))
            if r >= 2 and time.perf_counter() - start > budget_s:
                break
        return samples

    def info(self) -> Dict[str, dict]:
        """The `info()` of each running competitor's runner."""
        for name in self.warm:
            self.workers[name][1].send(("info",))
        return {name: self._receive(name) for name in self.warm}

    def close(self) -> None:
        for process, conn in self.workers.values():
            try:
                conn.send(("stop",))
            except OSError:  # already gone
                pass
        for process, _ in self.workers.values():
            process.join(5)
            if process.is_alive():
                process.terminate()

    def __enter__(self) -> "Duel":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
