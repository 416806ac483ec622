"""Bad calls get a clear Python error naming the op and the argument (the fuzzer in
tests/fuzz/ finds the calls that do not; each one fixed is pinned down here)."""

from __future__ import annotations

import pytest

import gradflow as gf


class _NoGPU:
    """gradflow._cuda as it is on a machine with the module built but no GPU (no driver)."""

    @staticmethod
    def device_count() -> int:
        return 0

    @staticmethod
    def unavailable_reason() -> str:
        return "CUDA driver version is insufficient for CUDA runtime version"


@pytest.mark.parametrize("built", [False, True])
def test_cuda_without_a_device_says_so(monkeypatch, built):
    if gf.cuda.is_available():
        pytest.skip("a GPU is present")
    if built:
        monkeypatch.setattr(gf.cuda, "_cuda", _NoGPU())
    else:
        monkeypatch.setattr(gf.cuda, "_cuda", None)
        monkeypatch.setattr(gf.cuda, "_import_error", "gradflow was built without CUDA")
    no_device = r"no CUDA device: gradflow\.cuda\.is_available\(\) is False"
    with pytest.raises(RuntimeError, match=r"cannot use device cuda:0: " + no_device):
        gf.ones(2).to("cuda")
    with pytest.raises(RuntimeError, match=no_device):
        gf.zeros(2, device="cuda")
    with pytest.raises(RuntimeError, match="get_device_name: " + no_device):
        gf.cuda.get_device_name()
    reason = gf.cuda.unavailable_reason()
    assert reason.startswith("no CUDA device found (CUDA runtime: ") if built else reason
