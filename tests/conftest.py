"""Shared test setup: the hypothesis profiles, the `cuda` marker's skip, and a header and a
closing summary that say what this machine lacks and which tests skip for it."""

from __future__ import annotations

import collections
import importlib.util
import os
import sys

import pytest
from hypothesis import HealthCheck, settings

import gradflow as gf
from gradflow import _C

sys.path.insert(0, os.path.dirname(__file__))  # `import strategies` from any test file

settings.register_profile(
    "gradflow",
    deadline=None,
    max_examples=30,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("thorough", parent=settings.get_profile("gradflow"), max_examples=300)
# CI (CI=true): the same examples on every run, and no example database carried over.
settings.register_profile("ci", parent=settings.get_profile("gradflow"), derandomize=True,
                          database=None)
PROFILE = os.environ.get("GRADFLOW_HYPOTHESIS_PROFILE",
                         "ci" if os.environ.get("CI") else "gradflow")
settings.load_profile(PROFILE)


def _version_or_absence(module: str) -> str:
    if importlib.util.find_spec(module) is None:
        return f"{module} not installed"
    return f"{module} {getattr(importlib.import_module(module), '__version__', '')}".strip()


def pytest_report_header(config):
    cuda = ("available" if gf.cuda.is_available()
            else f"tests marked cuda skip: {gf.cuda.unavailable_reason()}")
    return [f"gradflow {gf.__version__} from {os.path.dirname(gf.__file__)}",
            f"CUDA: {cuda}",
            f"PyTorch reference: {_version_or_absence('torch')}",
            f"MPI: {_version_or_absence('mpi4py')}",
            f"hypothesis profile: {PROFILE}"]


def pytest_terminal_summary(terminalreporter):
    """Why tests were skipped, one line per reason with its count (pytest -q shows none)."""
    reasons = collections.Counter()
    for report in terminalreporter.stats.get("skipped", []):
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        reasons[reason.removeprefix("Skipped: ")] += 1
    if reasons:
        terminalreporter.write_sep("-", "skipped tests, by reason")
        for reason, count in reasons.most_common():
            terminalreporter.write_line(f"{count:5d}  {reason}")


def pytest_collection_modifyitems(config, items):
    if gf.cuda.is_available():
        return
    skip = pytest.mark.skip(reason=f"no CUDA GPU: {gf.cuda.unavailable_reason()}")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _restore_global_state():
    """Tests may change the default dtype or the grad mode; put them back afterwards."""
    default = gf.get_default_dtype()
    yield
    gf.set_default_dtype(default)
    gf.set_grad_enabled(True)


@pytest.fixture(params=_C.simd_levels())
def simd(request):
    """Runs the test at each SIMD level this CPU runs (portable C++, AVX2+FMA, AVX-512): the
    native kernels use no higher level until it ends."""
    _C.cap_simd(request.param)
    yield request.param
    _C.cap_simd(_C.simd_levels()[-1])
