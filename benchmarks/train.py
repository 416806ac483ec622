"""Whole training steps: gradflow against PyTorch, on the CPU and on a CUDA GPU.

One step = forward, cross-entropy loss, backward and an SGD-momentum update on a fixed batch.
Each model is defined once, by a function of the framework module (`build(m)` uses only
names gradflow shares with torch), so both libraries run exactly the same network:

  mlp           MLP 784-256-10, batch 64 of 28x28 inputs
  lenet         LeNet-5 (ReLU, max-pooling), batch 64 of 1x32x32; lenet256: at batch 256
  resnet8       ResNet-8 (CIFAR, He et al. 2016): conv-BN-ReLU stem, three stages of
                16/32/64 channels with one BasicBlock each (1x1-conv shortcuts where the shape
                changes), average pool, fc; batch 32 of 3x32x32
  resnet20_b32  ResNet-20: the same with three BasicBlocks per stage, batch 32;
  resnet20      at batch 128 (the GPU target)

Each library runs in its own worker process (benchmarks/harness.py); for each device
(--device cpu,cuda) the parent alternates them round by round (interleaved, so background load
hits both alike), on the CPU at each thread count. A round runs as many steps as fill
--min-seconds (at least one). The table reports the median over rounds of ms per step,
images/s, the ratio PyTorch-time / gradflow-time (> 1: gradflow is faster) and, on CUDA, the
peak GPU memory of a step for each library and gradflow's speed-up over its own CPU run. CUDA
steps are timed from a synchronised start to the synchronised end of a round's steps, after
warm-up. JSON to runs/benchmark_train/train.json (or --out DIR) and a PNG when matplotlib is
installed.

    python benchmarks/train.py [--device cpu,cuda] [--threads 1 2] [--steps 30] [--quick]
                               [--only lenet256 resnet20]
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import json
import statistics
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
from harness import Duel, host_timed, machine_load

LIBRARIES = ("gradflow", "torch")
DEFAULT_MODELS = ["resnet20_b32", "resnet8", "lenet", "lenet256", "mlp"]


def mlp(m):
    nn = m.nn
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))


def lenet(m):
    nn = m.nn
    return nn.Sequential(
        nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, 10),
    )


def cifar_resnet(m, blocks: int):
    """ResNet-(6*blocks+2) for 3x32x32 inputs, 10 classes."""
    nn = m.nn

    class BasicBlock(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.relu = nn.ReLU()
            self.shortcut = nn.Sequential()
            if stride != 1 or cin != cout:
                self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False),
                                              nn.BatchNorm2d(cout))

        def forward(self, x):
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            out += self.shortcut(x)
            return self.relu(out)

    layers = [nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU()]
    cin = 16
    for cout, stride in ((16, 1), (32, 2), (64, 2)):
        for i in range(blocks):
            layers.append(BasicBlock(cin, cout, stride if i == 0 else 1))
            cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10)]
    return nn.Sequential(*layers)


def resnet8(m):
    return cifar_resnet(m, 1)


def resnet20(m):
    return cifar_resnet(m, 3)


# key -> (name in the table, builder, input shape of one batch)
MODELS: Dict[str, Tuple[str, Callable, Tuple[int, ...]]] = {
    "mlp": ("MLP 784-256-10", mlp, (64, 1, 28, 28)),
    "lenet": ("LeNet-5", lenet, (64, 1, 32, 32)),
    "lenet256": ("LeNet-5", lenet, (256, 1, 32, 32)),
    "resnet8": ("ResNet-8", resnet8, (32, 3, 32, 32)),
    "resnet20_b32": ("ResNet-20", resnet20, (32, 3, 32, 32)),
    "resnet20": ("ResNet-20", resnet20, (128, 3, 32, 32)),
}


def make_step(m, build: Callable, shape: Tuple[int, ...], device: str) -> Callable[[], None]:
    """One training step of `build(m)` on a fixed random batch on `device`, for framework
    module m."""
    rng = np.random.default_rng(0)
    x = m.from_numpy(rng.standard_normal(shape).astype(np.float32)).to(device)
    y = m.from_numpy(rng.integers(0, 10, shape[0])).to(device)
    m.manual_seed(0)
    model = build(m).to(device)
    opt = m.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = m.nn.CrossEntropyLoss()

    def step() -> None:
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()

    return step


class CudaSteps:
    """A runner of CUDA training steps for gradflow.cuda or torch.cuda (same names): times
    `inner` steps from a synchronised start to a synchronised end; info() gives the peak
    memory of the last call."""

    def __init__(self, m, step: Callable[[], None]) -> None:
        self.cuda, self.step = m.cuda, step

    def __call__(self, inner: int) -> float:
        self.cuda.synchronize()
        self.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        for _ in range(inner):
            self.step()
        self.cuda.synchronize()
        return time.perf_counter() - start

    def info(self) -> dict:
        return {"peak_mib": self.cuda.max_memory_allocated() / 2**20}


def make_runner(library: str, case: Tuple[str, str]):
    """In the worker of `library`: a runner of training steps of the model `case[0]` on the
    device `case[1]`."""
    key, device = case
    m = importlib.import_module(library)
    _, build, shape = MODELS[key]
    step = make_step(m, build, shape, device)
    return CudaSteps(m, step) if device == "cuda" else host_timed(step)


def measure_one(duel: Duel, key: str, device: str, threads: int, args) -> dict:
    name, _, shape = MODELS[key]
    duel.setup(make_runner, (key, device), threads, warmup=3)
    seconds = duel.measure(args.steps, min_seconds=args.min_seconds,
                           settle_s=0.01 if threads > 1 else 0.0)
    ms = {lib: 1e3 * statistics.median(ts) for lib, ts in seconds.items()}
    row = {"model": key, "name": f"{name} b{shape[0]}", "batch": shape[0], "device": device,
           "threads": threads if device == "cpu" else None, "ms": ms,
           "images_per_s": {lib: 1e3 * shape[0] / v for lib, v in ms.items()}}
    if "torch" in ms:
        row["torch_over_gradflow"] = ms["torch"] / ms["gradflow"]
    if device == "cuda":
        row["peak_mib"] = {lib: info["peak_mib"] for lib, info in duel.info().items()}
    return row


def print_row(row: dict) -> None:
    ms, ratio = row["ms"], row.get("torch_over_gradflow")
    torch_ms = f"{ms['torch']:9.2f}" if "torch" in ms else f"{'-':>9}"
    peak = row.get("peak_mib", {})
    mem = (f"{peak['gradflow']:8.1f} " + (f"{peak['torch']:8.1f}" if "torch" in peak else
                                           f"{'-':>8}")) if peak else f"{'-':>8} {'-':>8}"
    speedup = f"{row['gpu_over_cpu']:8.1f}" if "gpu_over_cpu" in row else f"{'-':>8}"
    threads = row["threads"] if row["threads"] is not None else "-"
    print(f"{row['name']:19s} {row['device']:5s} {threads:>4} "
          f"{ms['gradflow']:11.2f} {torch_ms} {row['images_per_s']['gradflow']:10.0f} "
          + (f"{ratio:9.2f}" if ratio else f"{'-':>9}") + f" {mem} {speedup}", flush=True)


def measure(duel: Duel, keys: List[str], devices: List[str], args) -> List[dict]:
    rows = []
    for key in keys:
        cpu_ms = None
        for device in devices:
            for threads in args.threads if device == "cpu" else [max(args.threads)]:
                row = measure_one(duel, key, device, threads, args)
                if device == "cpu":
                    cpu_ms = min(row["ms"]["gradflow"], cpu_ms or float("inf"))
                elif cpu_ms is not None:
                    row["gpu_over_cpu"] = cpu_ms / row["ms"]["gradflow"]
                print_row(row)
                rows.append(row)
    return rows


def plot(rows: List[dict], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(7, 4))
    labels = [f"{r['name']}\n{r['device']} {r['threads'] or ''}" for r in rows]
    libs = list(rows[0]["ms"])
    width = 0.8 / len(libs)
    for i, lib in enumerate(libs):
        ax.bar([x + i * width for x in range(len(rows))], [r["images_per_s"][lib] for r in rows],
               width, label=lib)
    ax.set_xticks([x + 0.4 - width / 2 for x in range(len(rows))], labels, fontsize=8)
    ax.set_ylabel("training images / s")
    ax.set_title("One SGD step: forward, loss, backward, update")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return True


def parse_args(gf) -> argparse.Namespace:
    from gradflow.utils.cli import add_out_argument

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu",
                        help="comma-separated devices: cpu, cuda or cpu,cuda")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                        help="CPU thread counts")
    parser.add_argument("--steps", type=int, default=None,
                        help="timed rounds per library (default 30, 5 with --quick)")
    parser.add_argument("--min-seconds", type=float, default=0.1,
                        help="a round runs as many steps as fill this long")
    parser.add_argument("--quick", action="store_true", help="5 rounds of at least 0.05 s")
    parser.add_argument("--only", choices=sorted(MODELS), nargs="+",
                        help=f"these models (default: {' '.join(DEFAULT_MODELS)})")
    add_out_argument(parser, "benchmark_train")
    args = parser.parse_args()
    args.steps = args.steps or (5 if args.quick else 30)
    if args.quick:
        args.min_seconds = min(args.min_seconds, 0.05)
    args.device = [d.strip() for d in args.device.split(",") if d.strip()]
    if not args.device or any(d not in ("cpu", "cuda") for d in args.device):
        parser.error(f"--device takes cpu, cuda or cpu,cuda, got {','.join(args.device)!r}")
    if "cuda" in args.device and not gf.cuda.is_available():
        parser.error(f"--device cuda: {gf.cuda.unavailable_reason()}")
    return args


def torch_version() -> Optional[str]:
    try:
        return importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:  # the benchmark runs without PyTorch
        return None


def main() -> None:
    import gradflow as gf  # in the parent only: the workers import their own library

    args = parse_args(gf)
    load_at_start = machine_load()
    libraries = [lib for lib in LIBRARIES if lib != "torch" or torch_version()]
    print(f"{'model':19s} {'dev':5s} {'thr':>4s} {'gradflow ms':>11s} "
          f"{'torch ms':>9s} {'gf img/s':>10s} {'torch/gf':>9s} {'gf MiB':>8s} {'th MiB':>8s} "
          f"{'cpu/gpu':>8s}")
    with Duel({lib: lib for lib in libraries}, max(args.threads)) as duel:
        rows = measure(duel, args.only or DEFAULT_MODELS, args.device, args)
    results = Path(args.out)
    results.mkdir(parents=True, exist_ok=True)
    meta = {"gradflow": gf.__version__, "torch": torch_version(), "steps": args.steps,
            "min_seconds": args.min_seconds, "devices": args.device,
            "processes": "one per library, interleaved round by round",
            "load": {"start": load_at_start, "end": machine_load()}}
    (results / "train.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    if plot(rows, results / "train.png"):
        print(f"wrote {results / 'train.json'} and train.png")
    else:
        print(f"wrote {results / 'train.json'}")


if __name__ == "__main__":
    main()
