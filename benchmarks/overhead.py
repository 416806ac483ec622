"""Per-op framework overhead: gradflow against PyTorch (when installed) on tiny tensors.

Cases (float32, CPU, one thread), in CASES:
  add 1 element             `a + b` on 1-element tensors (no autograd);
  mm 4x4                    `a @ b` of two 4x4 matrices (no autograd);
  conv2d 1x1x4x4 k3         `conv2d` of a 1x1x4x4 input with a 1x1x3x3 kernel (no autograd);
  (x*w+1).sum().backward()  on 1-element tensors;
  MLP SGD step              a 2-layer MLP (16 -> 32 -> relu -> 10) on a 1x16 input: forward,
                            MSE-style loss, backward, `p -= lr * p.grad` under no_grad;
  1000-op chain             building a 1 000-op elementwise chain on a 16-element tensor and
                            differentiating it.

Each library runs in its own worker process (benchmarks/harness.py); the parent alternates them
round by round (library order reversed every other round). A turn runs at least the case's
`inner` iterations and as many more as fill --min-seconds, so that both libraries' turns last
about as long: on a loaded machine the scheduler lets a short turn finish in one time slice
but preempts a long one, which would favour the faster library. By default the clock is the
worker's CPU time (one thread: the time it computes, not the time it waits for a core; --clock
wall for the wall clock). The table reports the median over rounds of µs per iteration and the
ratio gradflow / PyTorch. Results go to runs/benchmark_overhead/overhead.json.

    python benchmarks/overhead.py [--rounds 15] [--quick] [--only "mm 4x4"] [--clock wall]
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import json
import os
import platform
import statistics
import time
from typing import Callable, Dict, List, Optional, Tuple

from harness import Duel, host_timed, machine_load

LIBRARIES = {"gradflow": "gradflow", "pytorch": "torch"}  # name in the JSON -> module


def add_step(m) -> Callable[[], object]:
    a, b = m.ones(1), m.full((1,), 2.0)
    return lambda: a + b


def mm_step(m) -> Callable[[], object]:
    m.manual_seed(0)
    a, b = m.randn(4, 4), m.randn(4, 4)
    return lambda: a @ b


def conv_step(m) -> Callable[[], object]:
    m.manual_seed(0)
    x, w = m.randn(1, 1, 4, 4), m.randn(1, 1, 3, 3)
    return lambda: m.nn.functional.conv2d(x, w)


def tiny_step(m) -> Callable[[], None]:
    x = m.ones(1, requires_grad=True)
    w = m.full((1,), 2.0, requires_grad=True)

    def step() -> None:
        (x * w + 1).sum().backward()

    return step


def mlp_step(m) -> Callable[[], None]:
    m.manual_seed(0)
    x = m.randn(1, 16)
    target = m.randn(1, 10)
    params = [m.randn(16, 32) * 0.25, m.zeros(32), m.randn(32, 10) * 0.18, m.zeros(10)]
    params = [p.requires_grad_() for p in params]
    w1, b1, w2, b2 = params
    lr = 0.01

    def step() -> None:
        h = (x @ w1 + b1).relu()
        diff = h @ w2 + b2 - target
        loss = (diff * diff).mean()
        loss.backward()
        with m.no_grad():
            for p in params:
                p.sub_(p.grad * lr)
                p.grad = None

    return step


def chain_step(m, length: int = 1000) -> Callable[[], None]:
    x = m.ones(16, requires_grad=True)

    def step() -> None:
        y = x
        for i in range(length // 4):
            y = ((y * 1.001 + 0.5) - 0.5).tanh()
        y.sum().backward()
        x.grad = None

    return step


# name -> (step builder of the framework module, iterations per turn)
CASES = {
    "add 1 element": (add_step, 2000),
    "mm 4x4": (mm_step, 1000),
    "conv2d 1x1x4x4 k3": (conv_step, 1000),
    "(x*w+1).sum().backward()": (tiny_step, 200),
    "MLP SGD step": (mlp_step, 100),
    "1000-op chain": (chain_step, 2),
}


CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}


def make_runner(name: str, job: Tuple[str, str]):
    """In the worker of `name` (a key of LIBRARIES): a runner of job = (case, clock)."""
    case, clock = job
    return host_timed(CASES[case][0](importlib.import_module(LIBRARIES[name])), CLOCKS[clock])


def torch_version() -> Optional[str]:
    try:
        return importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:  # the benchmark runs without PyTorch
        return None


def measure(cases: List[str], args) -> Dict[str, Dict[str, list]]:
    """Per case, per library, µs per iteration in each round."""
    libs = {n: lib for n, lib in LIBRARIES.items() if lib != "torch" or torch_version()}
    scale = 0.1 if args.quick else 1.0
    results = {}
    with Duel(libs, max_threads=1) as duel:  # tiny tensors: threads only add overhead
        for case in cases:
            inner = max(1, int(CASES[case][1] * scale))
            duel.setup(make_runner, (case, args.clock), threads=1, warmup=max(1, inner // 4))
            seconds = duel.measure(args.rounds, inner, min_seconds=args.min_seconds * scale)
            results[case] = {n: [1e6 * t for t in ts] for n, ts in seconds.items()}
    return results


def main() -> None:
    import gradflow as gf  # in the parent only: the workers import their own library
    from gradflow.utils.cli import add_out_argument

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help="a tenth of the iterations")
    parser.add_argument("--min-seconds", type=float, default=0.05,
                        help="a turn runs as many iterations as fill this long")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="cpu",
                        help="the worker's CPU time or the wall clock")
    parser.add_argument("--only", choices=list(CASES), nargs="+", help="these cases")
    add_out_argument(parser, "benchmark_overhead")
    args = parser.parse_args()
    load_at_start = machine_load()

    results = measure(args.only or list(CASES), args)
    rows = []
    print(f"{'case':26s} {'gradflow µs':>12s} {'PyTorch µs':>11s} {'ratio':>7s}")
    for case, samples in results.items():
        g = statistics.median(samples["gradflow"])
        t = statistics.median(samples["pytorch"]) if "pytorch" in samples else None
        ratio = g / t if t else None
        rows.append({"case": case, "gradflow_us": g, "pytorch_us": t, "ratio": ratio,
                     "gradflow_samples_us": samples["gradflow"],
                     "pytorch_samples_us": samples.get("pytorch")})
        t_text = f"{t:11.1f}" if t is not None else f"{'-':>11s}"
        r_text = f"{ratio:7.2f}" if ratio is not None else f"{'-':>7s}"
        print(f"{case:26s} {g:12.1f} {t_text} {r_text}")
    print("ratio = gradflow time / PyTorch time (lower is better)")

    out_dir = args.out
    os.makedirs(out_dir, exist_ok=True)
    meta = {"python": platform.python_version(), "machine": platform.machine(),
            "gradflow": gf.__version__, "torch": torch_version(), "threads": 1,
            "processes": "one per library, interleaved round by round",
            "rounds": args.rounds, "min_seconds": args.min_seconds, "clock": args.clock,
            "quick": args.quick, "load": {"start": load_at_start, "end": machine_load()}}
    with open(os.path.join(out_dir, "overhead.json"), "w") as f:
        json.dump({"meta": meta, "results": rows}, f, indent=1)
    print(f"wrote {os.path.join(out_dir, 'overhead.json')}")


if __name__ == "__main__":
    main()
