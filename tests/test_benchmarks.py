"""The benchmarks' harness (benchmarks/harness.py) and each benchmark script in its quickest mode
on tiny cases: the JSON has its keys and finite ratios. Speed itself is never asserted; PyTorch
columns are checked only where PyTorch is installed."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
import time

import pytest

BENCHMARKS = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "benchmarks")
sys.path.insert(0, BENCHMARKS)

from harness import Duel, host_timed  # noqa: E402

HAS_TORCH = importlib.util.find_spec("torch") is not None


# ------------------------------------------------------------------ the harness
# Factories run in the workers; they live at module level so that they can be pickled.
class Loaded:
    """A runner that sleeps `case` seconds per iteration; info() names the libraries loaded
    in its worker and the thread variables it started with."""

    def __init__(self, case: float) -> None:
        self.run = host_timed(lambda: time.sleep(case))

    def __call__(self, inner: int) -> float:
        return self.run(inner)

    def info(self) -> dict:
        return {"modules": sorted(m for m in ("gradflow", "torch") if m in sys.modules),
                "omp": os.environ.get("OMP_NUM_THREADS")}


def loaded_factory(name: str, case: float):
    if name == "gradflow":
        import gradflow  # noqa: F401
    return None if name == "absent" else Loaded(case)


def failing_factory(name: str, case: float):
    raise ValueError(f"no case {case} for {name}")


def test_duel_isolates_workers_and_interleaves():
    parent_omp = os.environ.get("OMP_NUM_THREADS")
    with Duel({"gradflow": "gradflow", "numpy": "numpy", "absent": "numpy"}, 2) as duel:
        assert os.environ.get("OMP_NUM_THREADS") == parent_omp  # set for the workers only
        assert duel.setup(loaded_factory, 0.002, threads=1) == ["gradflow", "numpy"]
        seconds = duel.measure(rounds=3, inner=2, min_seconds=0.01)
        assert set(seconds) == {"gradflow", "numpy"}
        for samples in seconds.values():
            assert len(samples) == 3 and all(0.0015 < s < 0.1 for s in samples)
        info = duel.info()
    assert info["gradflow"] == {"modules": ["gradflow"], "omp": "2"}
    assert info["numpy"] == {"modules": [], "omp": "2"}  # its own process: no gradflow


def test_duel_reports_a_worker_error_with_its_traceback():
    with Duel({"numpy": "numpy"}) as duel:
        with pytest.raises(RuntimeError, match=r"numpy worker(.|\n)*ValueError: no case 0.5"):
            duel.setup(failing_factory, 0.5)


# ------------------------------------------------------------------ the scripts
# Each script in its quickest mode on a tiny case; all four run at once (most of their time is
# importing PyTorch in a worker), then each one's JSON is checked.
SCRIPTS = {
    "train": ["--quick", "--only", "mlp", "--threads", "1", "--steps", "2",
              "--min-seconds", "0.001"],
    "conv": ["--quick", "--device", "cpu", "--threads", "1", "--repeats", "1",
             "--only", "conv (32, 64, 8, 8"],
    "gemm": ["--sizes", "32", "--no-conv", "--threads", "1", "--repeat", "1",
             "--min-seconds", "0.001"],
    "overhead": ["--quick", "--rounds", "1", "--only", "add 1 element", "mm 4x4",
                 "conv2d 1x1x4x4 k3"],
}


def finite(x) -> bool:
    return isinstance(x, float) and math.isfinite(x) and x > 0


def check_train(data: dict) -> None:
    (row,) = data["rows"]
    assert row["name"] == "MLP 784-256-10 b64" and row["threads"] == 1
    assert finite(row["ms"]["gradflow"]) and finite(row["images_per_s"]["gradflow"])
    if HAS_TORCH:
        assert finite(row["torch_over_gradflow"])


def check_conv(data: dict) -> None:
    assert [(r["case"], r["mode"]) for r in data["rows"]] == [
        ("conv (32, 64, 8, 8, 64, 3, 1, 1)", "fwd"), ("conv (32, 64, 8, 8, 64, 3, 1, 1)", "f+b")]
    for row in data["rows"]:
        assert finite(row["ms"]["gradflow"]) and finite(row["gflops"]["gradflow"])
        assert finite(row["ratio_vs_gradflow"]["numpy"])
        if HAS_TORCH:
            assert finite(row["ratio_vs_gradflow"]["torch"])
    if HAS_TORCH:
        assert finite(data["summary"]["conv2d_fb_torch_over_gradflow_1t"]["median"])


def check_gemm(data: dict) -> None:
    (row,) = data["rows"]
    assert row["case"] == "32x32x32" and data["meta"]["reference"] == "numpy"
    assert finite(row["ratio"]) and finite(row["percent_peak"])
    assert set(row["gflops"]) == {"numpy", "gradflow"} | ({"torch"} if HAS_TORCH else set())


def check_overhead(data: dict) -> None:
    assert [r["case"] for r in data["results"]] == SCRIPTS["overhead"][-3:]
    for row in data["results"]:
        assert finite(row["gradflow_us"])
        if HAS_TORCH:
            assert finite(row["pytorch_us"]) and finite(row["ratio"])


def test_scripts_in_their_quickest_mode(tmp_path):
    runs = {name: subprocess.Popen(
        [sys.executable, os.path.join(BENCHMARKS, f"{name}.py"), *args,
         "--out", str(tmp_path / name)], cwd=tmp_path, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True) for name, args in SCRIPTS.items()}
    for name, process in runs.items():
        output, _ = process.communicate(timeout=300)
        assert process.returncode == 0, f"benchmarks/{name}.py failed:\n{output}"
    checks = {"train": check_train, "conv": check_conv, "gemm": check_gemm,
              "overhead": check_overhead}
    for name, check in checks.items():
        data = json.loads((tmp_path / name / f"{name}.json").read_text())
        check(data)
        assert data["meta"]["load"]["end"]["cpus"] >= 1, name  # how loaded the machine was


def test_overhead_names_the_issue_cases():
    from overhead import CASES

    assert list(CASES) == ["add 1 element", "mm 4x4", "conv2d 1x1x4x4 k3",
                           "(x*w+1).sum().backward()", "MLP SGD step", "1000-op chain"]


@pytest.mark.parametrize("key, depth", [("resnet8", 8), ("resnet20_b32", 20), ("resnet20", 20)])
def test_train_resnets_have_their_depth(key, depth):
    """ResNet-(6n+2): the 3x3 convolutions and the fc layer, 1x1 shortcuts not counted."""
    from train import MODELS

    import gradflow as gf

    name, build, shape = MODELS[key]
    layers = list(build(gf).modules())
    convs = [m for m in layers if isinstance(m, gf.nn.Conv2d) and m.kernel_size in (3, (3, 3))]
    fcs = [m for m in layers if isinstance(m, gf.nn.Linear)]
    assert len(convs) + len(fcs) == depth and name == f"ResNet-{depth}"
    assert shape == ((128,) if key == "resnet20" else (32,)) + (3, 32, 32)


# ------------------------------------------------------------------ the GPU runners, without a GPU
class StandInCuda:
    """What the GPU runners use of gradflow.cuda / torch.cuda, recording the calls."""

    def __init__(self) -> None:
        self.calls = []
        outer = self

        class Event:
            def __init__(self, enable_timing: bool) -> None:
                assert enable_timing

            def record(self) -> None:
                outer.calls.append("record")

            def synchronize(self) -> None:
                outer.calls.append("event sync")

            def elapsed_time(self, end) -> float:
                return 250.0  # ms

        self.Event = Event

    def synchronize(self) -> None:
        self.calls.append("sync")

    def reset_peak_memory_stats(self) -> None:
        self.calls.append("reset")

    def max_memory_allocated(self) -> int:
        return 3 * 2**20


def test_gpu_runners_time_inner_steps_between_synchronisations():
    from conv import EventTimed
    from train import CudaSteps

    cuda = StandInCuda()
    assert EventTimed(cuda.Event, lambda: cuda.calls.append("step"))(2) == 0.25
    assert cuda.calls == ["record", "step", "step", "record", "event sync"]

    cuda.calls.clear()
    runner = CudaSteps(type("m", (), {"cuda": cuda}), lambda: cuda.calls.append("step"))
    assert runner(2) >= 0 and runner.info() == {"peak_mib": 3.0}
    assert cuda.calls == ["sync", "reset", "step", "step", "sync"]
