"""python -m tests.fuzz [--calls N] [--seed S] [--jobs J] [--case I]; exit status 1 on any
failure. Every failure is printed with a one-line reproducer."""

from __future__ import annotations

import argparse
import json
import sys

from . import harness


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__)
    p.add_argument("--calls", type=int, default=3000, help="how many cases to run")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--first", type=int, default=0, help="index of the first case")
    p.add_argument("--jobs", type=int, default=2, help="child processes running cases")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds one case may take")
    p.add_argument("--memory-gib", type=float, default=8.0, help="address-space cap per child")
    p.add_argument("--json", help="also write the failures to this file, one JSON per line")
    p.add_argument("--case", type=int, help="run this one case here, in this process")
    p.add_argument("--show", action="store_true", help="with --case: print its code only")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--start", type=int, help=argparse.SUPPRESS)
    p.add_argument("--stop", type=int, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        harness.child_main(a.seed, a.start, a.stop, a.memory_gib)
        return 0
    if a.case is not None:
        return harness.run_one(a.seed, a.case, show_only=a.show)
    report = harness.supervise(a.seed, a.calls, a.jobs, a.timeout, a.memory_gib, a.first)
    for o in report.failures + report.known[:3]:
        print(o.line(a.seed))
    if a.json:
        with open(a.json, "w") as f:
            f.writelines(json.dumps(o.__dict__) + "\n" for o in report.failures + report.known)
    print(report.summary())
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
