"""Per-op framework overhead: gradflow against PyTorch (when installed) on tiny tensors.

Cases (float32, CPU):
  single ops without autograd (issue 15's per-op list): `a + b` on 1-element tensors, `mm` of
     two 4x4 matrices, `conv2d` of a 1x1x4x4 input with a 1x1x3x3 kernel;
  a) `(x * w + 1).sum().backward()` on 1-element tensors;
  b) one SGD step of a 2-layer MLP (16 -> 32 -> relu -> 10) on a 1x16 input: forward, MSE-style
     loss, backward, `p -= lr * p.grad` under no_grad, grads reset;
  c) building a 1 000-op elementwise chain on a 16-element tensor and differentiating it.

The libraries run interleaved in one process (library order alternates per round), each round
timing `inner` iterations; the table reports the median over rounds of µs per iteration and the
ratio gradflow / PyTorch. Results go to runs/benchmark_overhead/overhead.json.

    python benchmarks/overhead.py [--rounds 15] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from typing import Callable, Dict, List

import gradflow as gf
from gradflow.utils.cli import add_out_argument

try:
    import torch
except ImportError:
    torch = None


def add_step(m) -> Callable[[], None]:
    a, b = m.ones(1), m.ones(1)

    def step() -> None:
        a + b

    return step


def mm_step(m) -> Callable[[], None]:
    a, b = m.ones(4, 4), m.ones(4, 4)

    def step() -> None:
        m.mm(a, b)

    return step


def conv_step(m) -> Callable[[], None]:
    x, w = m.ones(1, 1, 4, 4), m.ones(1, 1, 3, 3)
    conv2d = m.nn.functional.conv2d

    def step() -> None:
        conv2d(x, w)

    return step


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


CASES = {
    "a + b, 1 element": (add_step, 2000),
    "mm 4x4": (mm_step, 2000),
    "conv2d 1x1x4x4, 3x3 kernel": (conv_step, 1000),
    "a: (x*w+1).sum().backward(), 1 element": (tiny_step, 200),
    "b: MLP 16-32-10 SGD step, batch 1": (mlp_step, 100),
    "c: 1000-op elementwise chain fwd+bwd": (chain_step, 2),
}


def measure(rounds: int, inner_scale: float) -> Dict[str, Dict[str, List[float]]]:
    libs = {"gradflow": gf}
    if torch is not None:
        torch.set_num_threads(1)  # tiny tensors: threads only add overhead for both
        libs["pytorch"] = torch
    results: Dict[str, Dict[str, List[float]]] = {}
    for case, (make, inner) in CASES.items():
        inner = max(1, int(inner * inner_scale))
        steps = {name: make(m) for name, m in libs.items()}
        for fn in steps.values():  # warm-up
            for _ in range(max(1, inner // 4)):
                fn()
        samples: Dict[str, List[float]] = {name: [] for name in libs}
        for r in range(rounds):
            order = list(steps) if r % 2 == 0 else list(reversed(steps))
            for name in order:
                fn = steps[name]
                t0 = time.perf_counter()
                for _ in range(inner):
                    fn()
                samples[name].append((time.perf_counter() - t0) / inner * 1e6)
        results[case] = samples
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help="a tenth of the iterations")
    add_out_argument(parser, "benchmark_overhead")
    args = parser.parse_args()

    results = measure(args.rounds, 0.1 if args.quick else 1.0)
    rows = []
    print(f"{'case':42s} {'gradflow µs':>12s} {'PyTorch µs':>11s} {'ratio':>7s}")
    for case, samples in results.items():
        g = statistics.median(samples["gradflow"])
        t = statistics.median(samples["pytorch"]) if "pytorch" in samples else None
        ratio = g / t if t else None
        rows.append({"case": case, "gradflow_us": g, "pytorch_us": t, "ratio": ratio,
                     "gradflow_samples_us": samples["gradflow"],
                     "pytorch_samples_us": samples.get("pytorch")})
        t_text = f"{t:11.1f}" if t is not None else f"{'-':>11s}"
        r_text = f"{ratio:7.2f}" if ratio is not None else f"{'-':>7s}"
        print(f"{case:42s} {g:12.1f} {t_text} {r_text}")
    print("ratio = gradflow time / PyTorch time (lower is better; target <= 0.5 for a and b)")

    out_dir = args.out
    os.makedirs(out_dir, exist_ok=True)
    meta = {"python": platform.python_version(), "machine": platform.machine(),
            "gradflow": gf.__version__, "torch": torch.__version__ if torch else None,
            "rounds": args.rounds, "quick": args.quick}
    with open(os.path.join(out_dir, "overhead.json"), "w") as f:
        json.dump({"meta": meta, "results": rows}, f, indent=1)
    print(f"wrote {os.path.join(out_dir, 'overhead.json')}")


if __name__ == "__main__":
    main()
