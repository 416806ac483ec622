"""The cost of gradflow.utils.diagnostics.Monitor on a LeNet-5 training step.

Two copies of LeNet-5 (the demo's) train on the same batch of 64 1x32x32 digits with Adam,
one watched by a Monitor (every leaf module: activation statistics, gradient norms, update
ratios, every step), one not. The steps alternate (interleaved, so background load hits
both alike); it reports the median wall-clock and CPU time (all threads) of a step of each
and the overheads monitored / plain - 1. The CPU-time figure is the one to trust on a
loaded machine. JSON to runs/benchmark_monitor/monitor.json.

    python benchmarks/monitor.py [--steps 60] [--batch-size 64]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Callable, Dict, List

import gradflow as gf
from gradflow import nn, optim
from gradflow.demo import LeNet5
from gradflow.utils.cli import add_out_argument
from gradflow.utils.diagnostics import Monitor


def make_step(model: nn.Module, optimizer: optim.Optimizer, images: gf.Tensor,
              labels: gf.Tensor) -> Callable[[], None]:
    criterion = nn.CrossEntropyLoss()

    def step() -> None:
        optimizer.zero_grad()
        criterion(model(images), labels).backward()
        optimizer.step()

    return step


def measure(steps: int, batch_size: int) -> Dict[str, Dict[str, List[float]]]:
    """{"wall" | "cpu": {"plain" | "monitored": seconds of each timed step}}."""
    gf.manual_seed(0)
    images, labels = gf.randn(batch_size, 1, 32, 32), gf.randint(0, 10, (batch_size,))
    runs = {}
    for name in ("plain", "monitored"):
        model = LeNet5()
        optimizer = optim.Adam(model.parameters(), lr=1e-3)
        if name == "monitored":
            runs["monitor"] = Monitor(model, optimizer)
        runs[name] = make_step(model, optimizer, images, labels)
    times: Dict[str, Dict[str, List[float]]] = {
        clock: {"plain": [], "monitored": []} for clock in ("wall", "cpu")}
    for i in range(steps + 5):
        for name in ("plain", "monitored") if i % 2 else ("monitored", "plain"):
            wall, cpu = time.perf_counter(), time.process_time()
            runs[name]()
            if i >= 5:  # the first steps warm up the allocator and the caches
                times["wall"][name].append(time.perf_counter() - wall)
                times["cpu"][name].append(time.process_time() - cpu)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=60, help="timed steps per variant")
    parser.add_argument("--batch-size", type=int, default=64)
    add_out_argument(parser, "benchmark_monitor")
    args = parser.parse_args()
    times = measure(args.steps, args.batch_size)
    summary = {}
    for clock, samples in times.items():
        plain, monitored = (statistics.median(samples[k]) for k in ("plain", "monitored"))
        summary[clock] = {"plain_s": plain, "monitored_s": monitored,
                          "overhead": monitored / plain - 1}
        print(f"LeNet-5 step, batch {args.batch_size}, {clock} time: plain {1e3 * plain:.2f} "
              f"ms, monitored {1e3 * monitored:.2f} ms (medians of {args.steps}): overhead "
              f"{monitored / plain - 1:+.1%}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "monitor.json").write_text(json.dumps({**summary, "args": vars(args),
                                                  "samples_s": times}, indent=1))
    print(f"wrote {out / 'monitor.json'}")


if __name__ == "__main__":
    main()
