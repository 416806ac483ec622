"""DistributedDataParallel on one host: ResNet-20 (CIFAR, 3x32x32) at a fixed batch per
process, for 1, 2, ... MPI processes with one OpenMP thread each.

For each process count the driver runs this file under mpiexec (``--worker``). Each step
is a training step with DDP (forward, cross-entropy, backward with the bucketed all-reduces,
SGD-momentum update), and, interleaved with it so that background load hits all alike, the
same backward under no_sync (compute only) and the same buckets all-reduced one after the
other once backward is done (communication only). From the medians:

  exposed    = the all-reduce time not hidden behind backward: DDP's wait for the buckets
               after the last gradient, on the rank that finished computing last (the
               others also wait for its compute), median over the steps
  hidden     = 1 - exposed / serial all-reduce time (the share overlapped with backward)
  DDP cost   = backward with DDP - backward without communication (median of the per-step
               differences): the hooks, bucket copies and exposed communication together
  bytes/step = the gradient bytes all-reduced per step; a ring all-reduce moves
               2 (N - 1) / N of them in and out of each process

It prints a table (step ms, samples/s, speed-up over 1 process, backward with and without
communication, serial all-reduce, hidden share, MB/step), then, on paper, the step time
on N hosts with 10 and 100 Gb/s links from the measured compute time and bytes per step
(ring all-reduce 2 (N - 1) / N * bytes / bandwidth, hidden behind backward as far as the
backward lasts). JSON to runs/benchmark_ddp/ddp.json (or --out DIR).

    python benchmarks/ddp.py [--procs 1 2] [--batch 32] [--steps 20] [--bucket-cap-mb 25]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
LINKS_GBPS = (10, 100)
HOSTS = (2, 4, 8, 16, 64)


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def worker(args: argparse.Namespace) -> None:
    """Measure on every rank; rank 0 prints one JSON line with the medians (per step, the
    slowest rank's time)."""
    sys.path.insert(0, str(EXAMPLES))
    from cifar_resnet import BasicBlock, CifarResNet

    import gradflow as gf
    import gradflow.distributed as dist
    from gradflow.nn.parallel import DistributedDataParallel as DDP

    dist.init_process_group("mpi")
    gf.manual_seed(0)
    model = DDP(CifarResNet(BasicBlock), bucket_cap_mb=args.bucket_cap_mb)
    opt = gf.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = gf.randn(args.batch, 3, 32, 32)
    y = gf.randint(0, 10, (args.batch,))
    times: Dict[str, List[float]] = {k: [] for k in
                                     ("step", "forward", "backward", "backward_local",
                                      "allreduce_serial", "exposed")}
    for step in range(args.warmup + args.steps):
        row = _measure_step(model, opt, x, y)
        slowest = gf.tensor([row[k] for k in times if k != "exposed"], dtype=gf.float64)
        dist.all_reduce(slowest, dist.ReduceOp.MAX)
        # the last rank to finish its backward compute waits the least: only for the network
        exposed = gf.tensor([row["exposed"]], dtype=gf.float64)
        dist.all_reduce(exposed, dist.ReduceOp.MIN)
        if step >= args.warmup:
            for k, v in zip(times, slowest.tolist() + exposed.tolist()):
                times[k].append(v)
    if dist.get_rank() == 0:
        medians = {k: statistics.median(v) for k, v in times.items()}
        # Paired per step (measured moments apart), so that slow drifts in load cancel.
        medians["ddp_cost"] = statistics.median(
            b - loc for b, loc in zip(times["backward"], times["backward_local"]))
        nbytes = sum(b.flat.numel() * b.flat.element_size() for b in model._buckets)
        print("RESULT " + json.dumps({"procs": dist.get_world_size(), "batch": args.batch,
                                      "buckets": len(model._buckets), "bytes": nbytes,
                                      **medians}), flush=True)
    dist.destroy_process_group()


def _measure_step(model, opt, x, y) -> Dict[str, float]:
    """One DDP training step (forward, backward, update), then the same backward under
    no_sync, then the buckets all-reduced one after the other: seconds for each part."""
    import gradflow.distributed as dist
    import gradflow.nn.functional as F

    dist.barrier()
    start = time.perf_counter()
    opt.zero_grad()
    loss = F.cross_entropy(model(x), y)
    row = {"forward": time.perf_counter() - start}
    dist.barrier()  # the ranks start backward together: a slower forward is not "exposed"
    row["backward"] = _timed(loss.backward)
    row["exposed"] = model._last_comm_wait_s
    opt.step()
    row["step"] = time.perf_counter() - start
    dist.barrier()
    opt.zero_grad()
    loss = F.cross_entropy(model(x), y)
    dist.barrier()
    with model.no_sync():
        row["backward_local"] = _timed(loss.backward)
    dist.barrier()
    row["allreduce_serial"] = _timed(lambda: _allreduce_one_by_one(model))
    return row


def _allreduce_one_by_one(model) -> None:
    import gradflow.distributed as dist

    for bucket in model._buckets:
        dist.all_reduce(bucket.flat, dist.ReduceOp.AVG)


def run(procs: int, args: argparse.Namespace) -> dict:
    from gradflow.distributed.run import command

    cmd = command(procs, __file__, ["--worker", "--batch", str(args.batch), "--steps",
                                    str(args.steps), "--warmup", str(args.warmup),
                                    "--bucket-cap-mb", str(args.bucket_cap_mb)])
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
    if out.returncode != 0 or not lines:
        raise RuntimeError(f"{procs} processes failed:\n{out.stdout}\n{out.stderr}")
    return json.loads(lines[0][len("RESULT "):])


def derived(row: dict, base: dict) -> dict:
    """Samples/s, speed-up over `base` (1 process) and the hidden share of the all-reduce."""
    samples = row["procs"] * row["batch"] / row["step"]
    return {"samples_per_s": samples,
            "speedup": samples / (base["batch"] / base["step"]),
            "hidden": (1.0 - min(row["exposed"] / row["allreduce_serial"], 1.0))
            if row["procs"] > 1 else None}


def on_paper(base: dict) -> List[dict]:
    """Step time on N hosts (one process each) from 1 process's compute and the bytes."""
    compute, backward = base["step"], base["backward_local"]
    rows = []
    for gbps in LINKS_GBPS:
        for n in HOSTS:
            comm = 2 * (n - 1) / n * base["bytes"] / (gbps * 1e9 / 8)
            step = compute + max(comm - backward, 0.0)
            rows.append({"gbps": gbps, "hosts": n, "allreduce_ms": comm * 1e3,
                         "step_ms": step * 1e3, "efficiency": compute / step,
                         "no_overlap_efficiency": compute / (compute + comm)})
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--procs", type=int, nargs="+", default=[1, 2])
    p.add_argument("--batch", type=int, default=32, help="samples per process per step")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--bucket-cap-mb", type=float, default=25)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    # The parent imports no gradflow (its workers set their threads first): the --out option of
    # gradflow.utils.cli, spelled out.
    p.add_argument("--out", metavar="DIR", default="runs/benchmark_ddp",
                   help="folder for the JSON results (created if missing)")
    args = p.parse_args()
    if args.worker:
        worker(args)
        return
    rows = [run(n, args) for n in args.procs]
    base = next((r for r in rows if r["procs"] == 1), rows[0])
    print(f"ResNet-20, batch {args.batch} per process, 1 thread per process, "
          f"bucket_cap_mb={args.bucket_cap_mb} ({rows[0]['buckets']} buckets), "
          f"{rows[0]['bytes'] / 1e6:.2f} MB of gradients per step")
    print(f"{'procs':>5} {'step ms':>8} {'samples/s':>9} {'speed-up':>8} {'fwd ms':>7} "
          f"{'bwd ms':>7} {'bwd local':>9} {'DDP cost':>8} {'ar serial':>9} {'exposed':>8} "
          f"{'hidden':>7}")
    for r in rows:
        r.update(derived(r, base))
        hidden = "-" if r["hidden"] is None else f"{100 * r['hidden']:.0f} %"
        print(f"{r['procs']:>5} {1e3 * r['step']:>8.1f} {r['samples_per_s']:>9.1f} "
              f"{r['speedup']:>7.2f}x {1e3 * r['forward']:>7.1f} {1e3 * r['backward']:>7.1f} "
              f"{1e3 * r['backward_local']:>9.1f} {1e3 * r['ddp_cost']:>8.2f} "
              f"{1e3 * r['allreduce_serial']:>9.2f} "
              f"{1e3 * r['exposed']:>8.2f} {hidden:>7}")
    print("(exposed: the all-reduce time left after the last gradient, on the rank that "
          "finished computing last; DDP cost: backward with DDP minus without communication)")
    paper = on_paper(base)
    print("\non paper, N hosts x 1 process, ring all-reduce of the same bytes, hidden behind "
          "backward as far as it lasts:")
    print(f"{'Gb/s':>5} {'hosts':>5} {'all-reduce ms':>13} {'step ms':>8} {'efficiency':>10} "
          f"{'no overlap':>10}")
    for r in paper:
        print(f"{r['gbps']:>5} {r['hosts']:>5} {r['allreduce_ms']:>13.3f} {r['step_ms']:>8.1f} "
              f"{100 * r['efficiency']:>9.1f}% {100 * r['no_overlap_efficiency']:>9.1f}%")
    results = Path(args.out)
    results.mkdir(parents=True, exist_ok=True)
    meta = {"model": "ResNet-20", "batch_per_process": args.batch, "steps": args.steps,
            "bucket_cap_mb": args.bucket_cap_mb, "cpus": os.cpu_count()}
    (results / "ddp.json").write_text(json.dumps({"meta": meta, "rows": rows,
                                                  "on_paper": paper}, indent=1))
    print(f"wrote {results / 'ddp.json'}")


if __name__ == "__main__":
    main()
