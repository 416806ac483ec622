"""gradflow.distributed, DistributedDataParallel, SyncBatchNorm and DistributedSampler.

The MPI tests launch real jobs (tests/distributed_jobs.py under ``mpiexec -n 2`` or ``-n 3``,
from a subprocess with a timeout, one OpenMP thread per rank) and need mpi4py and an mpiexec
(``pip install "gradflow[mpi]"``); they skip without them. The rest runs anywhere.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gradflow import distributed as dist
from gradflow.distributed import run
from gradflow.utils.data import DistributedSampler

HERE = Path(__file__).resolve().parent
TIMEOUT_S = 240
MPIEXEC = run.find_mpiexec()
needs_mpi = pytest.mark.skipif(
    not dist.is_available() or MPIEXEC is None,
    reason='needs mpi4py and mpiexec: pip install "gradflow[mpi]"')


def mpi_job(nproc: int, *args: str, launcher: bool = False) -> subprocess.CompletedProcess:
    """Run `distributed_jobs.py args` on nproc ranks (through gradflow.distributed.run when
    `launcher`), killed after TIMEOUT_S."""
    script = [str(HERE / "distributed_jobs.py"), *args]
    cmd = ([sys.executable, "-m", "gradflow.distributed.run", "-n", str(nproc), *script]
           if launcher else run.command(nproc, script[0], script[1:], mpiexec=MPIEXEC))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S, env=env,
                          cwd=HERE)


def assert_ok(result: subprocess.CompletedProcess, job: str, nproc: int) -> None:
    assert result.returncode == 0, result.stdout + result.stderr
    for rank in range(nproc):
        assert f"ok {job} {rank}/{nproc}" in result.stdout, result.stdout + result.stderr


@needs_mpi
@pytest.mark.parametrize("nproc", [2, 3])
def test_collectives_match_numpy(nproc: int) -> None:
    assert_ok(mpi_job(nproc, "collectives"), "collectives", nproc)


@needs_mpi
def test_bad_arguments_raise_clear_errors() -> None:
    assert_ok(mpi_job(2, "errors"), "errors", 2)


@needs_mpi
@pytest.mark.parametrize("job", ["ddp_lenet", "ddp_no_sync", "sync_batchnorm", "ddp_options"])
def test_ddp_on_two_processes_equals_one_process_on_the_global_batch(job: str) -> None:
    assert_ok(mpi_job(2, job), job, 2)


@needs_mpi
def test_a_failing_rank_ends_the_job_with_its_error() -> None:
    result = mpi_job(2, "fail", launcher=True)
    assert result.returncode != 0
    assert "rank 1 fails on purpose" in result.stderr
    assert "aborting all ranks" in result.stderr


@needs_mpi
def test_launcher_passes_arguments_and_exit_status(tmp_path: Path) -> None:
    script = tmp_path / "exits.py"
    script.write_text("import sys, os\nimport gradflow.distributed as d\n"
                      "d.init_process_group('mpi')\n"
                      "threads = os.environ['OMP_NUM_THREADS']\n"
                      "print(f'rank {d.get_rank()} {sys.argv[1:]} {threads}', flush=True)\n"
                      "d.barrier()\n"
                      "sys.exit(3 if d.get_rank() == 1 else 0)\n")
    result = subprocess.run([sys.executable, "-m", "gradflow.distributed.run", "-n", "2",
                             str(script), "--flag", "x"], capture_output=True, text=True,
                            timeout=TIMEOUT_S, env={k: v for k, v in os.environ.items()
                                                    if k != "OMP_NUM_THREADS"})
    assert result.returncode == 3, result.stdout + result.stderr
    for rank in (0, 1):
        assert f"rank {rank} ['--flag', 'x'] 1" in result.stdout


@needs_mpi
def test_ddp_resnet_example_smoke(tmp_path: Path) -> None:
    ckpt = tmp_path / "ddp.gf"
    result = subprocess.run(
        [sys.executable, "-m", "gradflow.distributed.run", "-n", "2",
         str(HERE.parent / "examples" / "ddp_resnet.py"), "--smoke", "--sync-bn",
         "--checkpoint", str(ckpt)], capture_output=True, text=True, timeout=TIMEOUT_S)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ResNet-20 on 2 processes, 16 samples each per step (global batch 32)" \
        in result.stdout
    assert "epoch 1/1: train loss" in result.stdout and ckpt.exists()


def test_launcher_says_what_to_install_without_mpiexec(tmp_path: Path) -> None:
    env = dict(os.environ, PATH=str(tmp_path))
    code = ("import sys, gradflow.distributed.run as r\n"
            "r.find_mpiexec = lambda: None\n"
            "sys.exit(r.main(['-n', '2', 'train.py']))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, timeout=TIMEOUT_S)
    assert result.returncode == 127
    assert 'pip install "gradflow[mpi]"' in result.stderr


def test_gradflow_works_without_mpi4py() -> None:
    code = ("import sys; sys.modules['mpi4py'] = None\n"
            "import gradflow as gf, gradflow.distributed as dist\n"
            "from gradflow.nn.parallel import DistributedDataParallel\n"
            "assert not dist.is_available() and not dist.is_initialized()\n"
            "assert gf.nn.SyncBatchNorm(2)(gf.ones(3, 2)).shape == (3, 2)\n"
            "try:\n    dist.init_process_group('mpi')\n"
            "except ImportError as exc:\n    print(exc)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=TIMEOUT_S)
    assert result.returncode == 0, result.stderr
    assert 'gradflow.distributed needs mpi4py: install MPI with: pip install "gradflow[mpi]"' \
        in result.stdout


def test_init_process_group_refuses_other_backends() -> None:
    with pytest.raises(ValueError, match="backend 'nccl' is not available.*backend='mpi'"):
        dist.init_process_group("nccl")
    with pytest.raises(RuntimeError, match="has not been initialized"):
        dist.get_world_size()


# ---------------------------------------------------------------- DistributedSampler
@pytest.mark.parametrize("n, replicas", [(10, 3), (9, 3), (2, 4), (0, 2), (1, 1)])
@pytest.mark.parametrize("drop_last", [False, True])
def test_distributed_sampler_splits_one_ordering(n: int, replicas: int, drop_last: bool):
    samplers = [DistributedSampler(range(n), replicas, r, shuffle=False, drop_last=drop_last)
                for r in range(replicas)]
    parts = [list(s) for s in samplers]
    total = n // replicas * replicas if drop_last else -(-n // replicas) * replicas
    assert all(len(p) == len(s) == total // replicas for p, s in zip(parts, samplers))
    interleaved = [parts[i % replicas][i // replicas] for i in range(total)]
    padded = (list(range(n)) * (total // max(n, 1) + 1))[:total]
    assert interleaved == padded


def test_distributed_sampler_shuffles_by_seed_and_epoch():
    def orders(seed: int, epoch: int):
        out = []
        for r in range(2):
            s = DistributedSampler(range(20), 2, r, seed=seed)
            s.set_epoch(epoch)
            out.append(list(s))
        return out

    a = orders(0, 0)
    assert sorted(a[0] + a[1]) == list(range(20))  # disjoint, together everything
    assert a == orders(0, 0) and a != orders(0, 1) and a != orders(1, 0)


def test_distributed_sampler_checks_its_arguments():
    with pytest.raises(ValueError, match=r"Invalid rank 2, rank should be in the interval"):
        DistributedSampler(range(4), 2, 2)
    with pytest.raises(ValueError, match="num_replicas must be at least 1"):
        DistributedSampler(range(4), 0, 0)
    with pytest.raises(TypeError, match="shuffle must be a bool"):
        DistributedSampler(range(4), 2, 0, shuffle="yes")
    with pytest.raises(RuntimeError, match="process group is not initialized"):
        DistributedSampler(range(4))
    with pytest.raises(TypeError, match="epoch must be an int"):
        DistributedSampler(range(4), 2, 0).set_epoch(1.5)


# ---------------------------------------------------------------- SyncBatchNorm, one process
def test_convert_sync_batchnorm_shares_parameters_and_buffers():
    import gradflow.nn as nn

    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4),
                          nn.Sequential(nn.BatchNorm1d(5, affine=False)), nn.LayerNorm(2))
    model[1].eval()
    converted = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    assert converted is model
    assert isinstance(model[1], nn.SyncBatchNorm) and isinstance(model[2][0], nn.SyncBatchNorm)
    assert isinstance(model[3], nn.LayerNorm) and not model[1].training
    assert model[2][0].weight is None and model[2][0].running_mean is not None
    bn = nn.BatchNorm2d(4)
    sync = nn.SyncBatchNorm.convert_sync_batchnorm(bn)
    assert sync.weight is bn.weight and sync.running_var is bn.running_var


def test_sync_batchnorm_without_a_process_group_is_batchnorm():
    import numpy as np

    import gradflow as gf
    import gradflow.nn as nn

    x = gf.randn(4, 3, 2, 2, dtype=gf.float64)
    bn, sync = nn.BatchNorm2d(3).double(), nn.SyncBatchNorm(3).double()
    np.testing.assert_allclose(sync(x).numpy(force=True), bn(x).numpy(force=True))
    np.testing.assert_allclose(sync.running_var.numpy(), bn.running_var.numpy())
    with pytest.raises(ValueError, match="SyncBatchNorm: expected at least 2D input"):
        sync(gf.ones(3))


@needs_mpi
def test_ddp_benchmark_runs_and_reports_the_hidden_share(tmp_path):
    """benchmarks/ddp.py end to end on a tiny batch: every row's numbers are there and sane
    (timings themselves are the benchmark's business, not a test's)."""
    import json

    script = Path(__file__).resolve().parent.parent / "benchmarks" / "ddp.py"
    out = subprocess.run([sys.executable, str(script), "--procs", "1", "2", "--batch", "2",
                          "--steps", "3", "--warmup", "1", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    rows = json.loads((tmp_path / "ddp.json").read_text())["rows"]
    assert [r["procs"] for r in rows] == [1, 2]
    one, two = rows
    assert one["hidden"] is None and 0.0 <= two["hidden"] <= 1.0
    for r in rows:
        assert r["exposed"] >= 0.0 and r["allreduce_serial"] > 0.0 and r["step"] > 0.0
    assert two["bytes"] == one["bytes"] > 0
