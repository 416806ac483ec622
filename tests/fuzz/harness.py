"""Run fuzz cases and judge how each one ended.

A case ends in one of:
  ok     every step returned;
  clean  a step raised TypeError, ValueError, RuntimeError or MemoryError (IndexError from
         an indexing op, or one that gradflow raises on purpose, as PyTorch does for a dim
         out of range) whose message names the op or one of the arguments it was given;
  fail   anything else: another exception type (AttributeError, ZeroDivisionError, KeyError,
         OverflowError, NotImplementedError, NumPy's AxisError, ...), or an allowed type
         whose message does not say which call failed;
  known  a fail listed in KNOWN: its fix belongs to another change in progress;
  crash  the process died (segfault, abort) while the case ran;
  hang   the case ran longer than the per-case timeout.

`run_cases` runs cases in this process (the child side); `supervise` runs them in child
processes, so crashes and hangs are caught and the remaining cases still run.
"""

from __future__ import annotations

import json
import linecache
import os
import re
import selectors
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, TextIO

from . import targets

_ALLOWED = (TypeError, ValueError, RuntimeError, MemoryError)

# Failures whose fix belongs to a change another engineer has in progress, as (op names,
# message fragment, why): they are counted and listed apart ("known") and do not fail a run.
# Delete an entry when its fix lands (the summary counts each entry's calls, zero included).
KNOWN: tuple = (
)
_GRADFLOW_DIR = os.sep + "gradflow" + os.sep


@dataclass
class Outcome:
    case: int
    status: str  # ok | clean | fail | crash | hang
    kind: str = ""  # the exception type, or what is wrong with it
    message: str = ""
    step: str = ""  # the step that raised
    repro: str = ""
    target: str = ""

    def line(self, seed: int) -> str:
        return (f"[{self.status} {self.kind}] case {self.case} ({self.target}): "
                f"{self.message[:300]}\n    python -c \"from tests.fuzz.values import *; "
                f"{self.repro}\"\n    python -m tests.fuzz --seed {seed} --case {self.case}")


def judge(exc: BaseException, names: Iterable[str], indexing: bool = False,
          extra_ok: tuple = ()) -> Optional[str]:
    """None when `exc` is a clean error for a call with these names, else what is wrong."""
    kind, message = type(exc).__name__, str(exc)
    allowed = _ALLOWED + extra_ok
    if indexing or _raised_by_gradflow(exc):
        allowed += (IndexError,)
    ours = type(exc).__module__.startswith("gradflow") and isinstance(exc, allowed)
    if isinstance(exc, NotImplementedError) or not (type(exc) in allowed or ours
                                                    or isinstance(exc, extra_ok)):
        return kind
    if isinstance(exc, extra_ok):
        return None  # an OSError from a save/load: its message names the file
    if not any(_mentions(message, n) for n in names):
        return f"unclear {kind}"
    return None


def _raised_by_gradflow(exc: BaseException) -> bool:
    """True when a `raise` statement in gradflow's own code raised `exc` (as PyTorch, some
    argument checks outside indexing raise IndexError: a dim out of range, a class index out
    of bounds); an IndexError from subscripting a tuple or an array deep inside is not."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None or _GRADFLOW_DIR not in os.path.abspath(tb.tb_frame.f_code.co_filename):
        return False
    return linecache.getline(tb.tb_frame.f_code.co_filename, tb.tb_lineno).lstrip().startswith(
        "raise")


def _mentions(message: str, name: str) -> bool:
    edge = r"\b" if re.match(r"\w", name) else ""
    tail = r"\b" if re.match(r"\w", name[-1]) else ""
    return re.search(edge + re.escape(name) + tail, message, re.IGNORECASE) is not None


def _known(names, message: str) -> str:
    return "known" if any(set(ops) & set(names) and fragment in message
                          for ops, fragment, _ in KNOWN) else ""


def _reset(gf) -> None:
    gf.set_default_dtype(gf.float32)
    gf.set_grad_enabled(True)


def run_case(seed: int, case: int, tmpdir: str) -> Outcome:
    """Build case `case` of `seed` and run its steps until one raises."""
    import gradflow as gf

    _reset(gf)
    gf.manual_seed(case)
    try:
        name, steps = targets.build(seed, case, tmpdir)
    except Exception as exc:  # noqa: BLE001  (a bug in the harness is reported, not fatal)
        return Outcome(case, "fail", "harness error", _one_line(exc), target="?")
    repro = "; ".join(s.source() for s in steps)
    env: Dict[str, object] = {}
    for step in steps:
        try:
            step.run(env)
        except Exception as exc:  # noqa: BLE001  (judging every exception is the point)
            wrong = judge(exc, step.accepted_names(env), step.indexing, step.extra_ok)
            status = "clean" if wrong is None else _known(step.names, str(exc)) or "fail"
            return Outcome(case, status, wrong or type(exc).__name__, _one_line(exc),
                           step.code, repro, name)
        finally:
            _reset(gf)
    return Outcome(case, "ok", repro=repro, target=name)


def _one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".replace("\n", " ")


def run_cases(seed: int, start: int, stop: int, out: TextIO) -> None:
    """Child side: run cases [start, stop) and write one JSON line per case to `out`, a
    'begin' line before each so the parent knows which case crashed or hung."""
    warnings.simplefilter("ignore")
    inject = _injected()
    with tempfile.TemporaryDirectory(prefix="gradflow-fuzz-") as tmpdir:
        os.chdir(tmpdir)  # a junk relative path given to save() lands here, not in the checkout
        for case in range(start, stop):
            out.write(json.dumps({"begin": case}) + "\n")
            out.flush()
            if case in inject:
                inject[case]()
            o = run_case(seed, case, tmpdir)
            out.write(json.dumps(o.__dict__) + "\n")
            out.flush()


def _injected() -> Dict[int, object]:
    """Faults to inject, for testing the harness itself: GRADFLOW_FUZZ_INJECT='crash:5,hang:9'
    aborts the child at case 5 and hangs it at case 9."""
    faults = {"crash": os.abort, "hang": lambda: time.sleep(3600)}
    spec = os.environ.get("GRADFLOW_FUZZ_INJECT", "")
    return {int(case): faults[kind] for kind, case in
            (item.split(":") for item in spec.split(",") if item)}


def child_main(seed: int, start: int, stop: int, memory_gib: float) -> None:
    """Run cases [start, stop), reporting on the real stdout; whatever the library prints
    goes to stderr, so it cannot garble the reports."""
    report = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    limit_memory(memory_gib)
    run_cases(seed, start, stop, report)


def run_one(seed: int, case: int, show_only: bool = False) -> int:
    """Print case `case` and run it here, letting any exception show its traceback."""
    import gradflow as gf

    with tempfile.TemporaryDirectory(prefix="gradflow-fuzz-") as tmpdir:
        name, steps = targets.build(seed, case, tmpdir)
        os.chdir(tmpdir)
        print(f"# case {case} ({name})")
        for s in steps:
            print(s.source())
        if show_only:
            return 0
        gf.manual_seed(case)
        env: Dict[str, object] = {}
        for s in steps:
            s.run(env)
    print("# ok")
    return 0


def limit_memory(gib: float) -> None:
    """Cap this process's address space, so a call that really tries to allocate huge
    memory fails fast (as a MemoryError the judge flags) instead of swapping."""
    import resource

    if "asan" in os.environ.get("LD_PRELOAD", ""):
        return  # AddressSanitizer maps terabytes of shadow; .ci/sanitize caps its allocations
    limit = int(gib * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


@dataclass
class Report:
    seed: int
    calls: int = 0
    counts: Dict[str, int] = field(default_factory=dict)
    failures: List[Outcome] = field(default_factory=list)
    known: List[Outcome] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, o: Outcome) -> None:
        self.calls += 1
        key = o.status if o.status == "ok" else f"{o.status} {o.kind}"
        self.counts[key] = self.counts.get(key, 0) + 1
        if o.status == "known":
            self.known.append(o)
        elif o.status not in ("ok", "clean"):
            self.failures.append(o)

    def summary(self) -> str:
        ok = self.counts.get("ok", 0)
        clean = sum(n for k, n in self.counts.items() if k.startswith("clean"))
        lines = [f"{self.calls} calls (seed {self.seed}) in {self.seconds:.1f} s: {ok} ok, "
                 f"{clean} clean errors, {len(self.failures)} failures, {len(self.known)} known "
                 f"failures"]
        for k in sorted(self.counts, key=lambda k: -self.counts[k]):
            if not k.startswith("ok"):
                lines.append(f"  {self.counts[k]:6d}  {k}")
        for ops, fragment, why in KNOWN:
            n = sum(fragment in o.message for o in self.known)
            lines.append(f"  known ({n} calls): {'/'.join(ops)}: {fragment!r}: {why}")
        return "\n".join(lines)


def supervise(seed: int, calls: int, jobs: int = 2, timeout: float = 10.0,
              memory_gib: float = 8.0, first: int = 0) -> Report:
    """Run cases [first, first + calls) in `jobs` child processes and collect the outcomes;
    a child that crashes or hangs is recorded against its case and replaced."""
    report = Report(seed)
    lock = threading.Lock()
    t0 = time.monotonic()
    bounds = [first + calls * j // jobs for j in range(jobs + 1)]

    def work(lo: int, hi: int) -> None:
        for o in _child_outcomes(seed, lo, hi, timeout, memory_gib):
            with lock:
                report.add(o)

    threads = [threading.Thread(target=work, args=(bounds[j], bounds[j + 1]))
               for j in range(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    report.failures.sort(key=lambda o: o.case)
    report.known.sort(key=lambda o: o.case)
    report.seconds = time.monotonic() - t0
    return report


def _child_command(seed: int, start: int, stop: int, memory_gib: float) -> List[str]:
    return [sys.executable, "-X", "faulthandler", "-m", __package__, "--child",
            "--seed", str(seed), "--start", str(start), "--stop", str(stop),
            "--memory-gib", str(memory_gib)]


def _package_root() -> Path:
    """The folder to run `python -m <package>` from (repo root for tests.fuzz)."""
    return Path(__file__).resolve().parents[len(__package__.split("."))]


def _child_outcomes(seed: int, start: int, stop: int, timeout: float, memory_gib: float):
    """Outcomes of cases [start, stop), restarting the child after a crash or hang."""
    while start < stop:
        with tempfile.TemporaryFile() as err:
            proc = subprocess.Popen(_child_command(seed, start, stop, memory_gib),
                                    cwd=_package_root(), stdout=subprocess.PIPE, stderr=err)
            running = None
            try:
                for msg in _lines(proc, startup=120.0, timeout=timeout):
                    if "begin" in msg:
                        running = msg["begin"]
                        continue
                    running = None
                    start = msg["case"] + 1
                    yield Outcome(**msg)
            except TimeoutError:
                proc.kill()
                if running is None:
                    raise RuntimeError(f"fuzz child did not start: {_tail(err)}") from None
                yield _lost(seed, running, "hang", f"no result after {timeout:.0f} s")
                start = running + 1
                continue
            finally:
                proc.stdout.close()
                proc.wait()
            if start < stop:  # the child died mid-case
                case = start if running is None else running
                yield _lost(seed, case, "crash",
                            f"child exited with {proc.returncode}: {_tail(err)}")
                start = case + 1


def _lost(seed: int, case: int, status: str, message: str) -> Outcome:
    with tempfile.TemporaryDirectory(prefix="gradflow-fuzz-") as tmpdir:
        name, steps = targets.build(seed, case, tmpdir)
    return Outcome(case, status, status, message, repro="; ".join(s.source() for s in steps),
                   target=name)


def _tail(err) -> str:
    err.seek(0)
    return err.read()[-800:].decode(errors="replace").replace("\n", " | ")


def _lines(proc: subprocess.Popen, startup: float, timeout: float):
    """The child's JSON lines; TimeoutError when one is late (the first may take `startup`)."""
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    fd, buf, wait = proc.stdout.fileno(), b"", startup
    while True:
        if not sel.select(wait):
            raise TimeoutError
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return
        buf += chunk
        *done, buf = buf.split(b"\n")
        for line in done:
            wait = timeout
            yield json.loads(line)
