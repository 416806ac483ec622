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


# ------------------------------------------------------------------ losses
def test_cross_entropy_float_class_indices_says_so():
    x = gf.randn(4, 3)
    with pytest.raises(RuntimeError, match=r"cross_entropy: target of shape \(4,\) has the shape "
                       r"of class indices .* dtype is gradflow.float32; class indices must be "
                       r"int64 \(use target.long\(\)\)"):
        gf.nn.functional.cross_entropy(x, gf.tensor([0.0, 1.0, 2.0, 1.0]))
    with pytest.raises(ValueError, match=r"cross_entropy: expected target of class indices of "
                       r"shape \(4,\) \(int64\) or of class probabilities of the input's shape "
                       r"\(4, 3\), got \(4, 2\)"):
        gf.nn.functional.cross_entropy(x, gf.zeros(4, 2))


@pytest.mark.parametrize("name", ["mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss",
                                  "kl_div", "binary_cross_entropy_with_logits", "cross_entropy",
                                  "nll_loss", "binary_cross_entropy"])
def test_losses_check_their_arguments_first(name):
    fn = getattr(gf.nn.functional, name)
    x = gf.rand(2, 3)
    with pytest.raises(TypeError, match=f"{name}: argument 'target' must be a Tensor, not int"):
        fn(x, 3)
    with pytest.raises(TypeError, match=f"{name}: argument 'input' must be a Tensor, not list"):
        fn([1.0], x)
    with pytest.raises(ValueError, match=f"{name}: 'avg' is not a valid value for reduction"):
        fn(x, gf.zeros(2, dtype=gf.int64) if name in ("cross_entropy", "nll_loss") else x,
           reduction="avg")


def test_elementwise_losses_name_the_op_on_shape_mismatch():
    with pytest.raises(ValueError, match=r"mse_loss: target: shapes \(2, 3\) and \(4,\) cannot "
                       "be broadcast together"):
        gf.nn.functional.mse_loss(gf.zeros(2, 3), gf.zeros(4))
    with pytest.raises(ValueError, match=r"kl_div: target: shapes \(0, 4\) and \(0,\)"):
        gf.nn.KLDivLoss()(gf.zeros(0, 4), gf.zeros(0))
    with pytest.raises(TypeError, match="l1_loss: expected a floating-point input, got "
                       "gradflow.int64"):
        gf.nn.functional.l1_loss(gf.zeros(2, dtype=gf.int64), gf.zeros(2))
