"""The fuzzer in the test suite: a fixed-seed run of random public calls, in child processes,
must end without a failure (see harness.py for what counts as one). The default run is short;
GRADFLOW_FUZZ_CALLS=30000 makes it the long one (as `python -m tests.fuzz --calls 30000`)."""

from __future__ import annotations

import os

import pytest

from . import harness, targets

CALLS = int(os.environ.get("GRADFLOW_FUZZ_CALLS", "5000"))


def test_random_public_calls_succeed_or_fail_cleanly():
    report = harness.supervise(seed=0, calls=CALLS, jobs=2)
    shown = "\n".join(o.line(0) for o in report.failures[:25])
    assert not report.failures, f"{shown}\n{report.summary()}"
    assert report.calls == CALLS
    assert report.counts.get("ok", 0) > CALLS // 4  # most cases reach the op, not just errors


def test_cases_are_reproducible():
    for case in (0, 17, 4242):
        first = [s.source() for s in targets.build(3, case, "/tmp")[1]]
        assert first == [s.source() for s in targets.build(3, case, "/tmp")[1]]


def test_crashes_and_hangs_are_recorded_and_the_run_goes_on(monkeypatch):
    monkeypatch.setenv("GRADFLOW_FUZZ_INJECT", "crash:3,hang:7")
    report = harness.supervise(seed=0, calls=12, jobs=1, timeout=3.0)
    assert report.calls == 12
    assert [(o.case, o.status) for o in report.failures if o.status in ("crash", "hang")] == [
        (3, "crash"), (7, "hang")]


@pytest.mark.parametrize("exc,names,indexing,verdict", [
    (ValueError("conv2d: stride must be >= 1"), ("conv2d",), False, None),
    (TypeError("expected a Tensor for 'weight'"), ("conv2d", "weight"), False, None),
    (ValueError("shapes (2,) and (3,) cannot be broadcast"), ("conv2d",), False,
     "unclear ValueError"),
    (AttributeError("'int' object has no attribute 'ndim'"), ("sum",), False, "AttributeError"),
    (KeyError("params"), ("SGD",), False, "KeyError"),
    (NotImplementedError("embedding: sparse"), ("embedding",), False, "NotImplementedError"),
    (IndexError("index: index 5 is out of bounds"), ("getitem", "index"), True, None),
    (ZeroDivisionError("division by zero"), ("StepLR",), False, "ZeroDivisionError"),
])
def test_judge(exc, names, indexing, verdict):
    assert harness.judge(exc, names, indexing) == verdict


def test_judge_index_errors_outside_indexing():
    def from_a_tuple():
        return ()[0]

    with pytest.raises(IndexError) as internal:
        from_a_tuple()
    assert harness.judge(internal.value, ("size",)) == "IndexError"
    import gradflow as gf

    with pytest.raises(IndexError) as deliberate:
        gf.ones(2).sum(3)  # PyTorch's "dimension out of range" IndexError, raised on purpose
    assert harness.judge(deliberate.value, ("sum",)) is None
