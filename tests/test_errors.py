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
    with pytest.raises(RuntimeError, match="Event: " + no_device):
        gf.cuda.Event(enable_timing=True)
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


# ------------------------------------------------------------------ optimizers, schedulers
def _params():
    return gf.nn.Linear(3, 2).parameters()


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "Adagrad", "Adadelta", "RMSprop"])
def test_optimizers_name_themselves_and_the_option(name):
    cls = getattr(gf.optim, name)
    with pytest.raises(ValueError, match=f"{name}: Invalid learning rate: -1.0 \\(lr must be "):
        cls(_params(), lr=-1.0)
    with pytest.raises(TypeError, match=f"{name}: argument 'lr' must be a number, not str"):
        cls(_params(), lr="fast")
    with pytest.raises(TypeError, match=f"{name}: params argument .* got NoneType"):
        cls(None)
    with pytest.raises(ValueError, match=f"{name}: optimizer got an empty parameter list"):
        cls([])
    opt = cls(_params())
    with pytest.raises(ValueError, match=f"{name}.add_param_group: param_group must have a "
                       "'params' entry"):
        opt.add_param_group({"lr": 1.0})
    with pytest.raises(ValueError, match=f"{name}.load_state_dict: expected a dict with 'state' "
                       "and 'param_groups'"):
        opt.load_state_dict({"state": {}})


def test_adam_betas_must_be_a_pair_in_range():
    with pytest.raises(ValueError, match=r"Adam: betas must be a pair \(beta1, beta2\), got "
                       r"\(0.9,\)"):
        gf.optim.Adam(_params(), betas=(0.9,))
    with pytest.raises(ValueError, match=r"AdamW: Invalid beta parameter at index 0: 2.0"):
        gf.optim.AdamW(_params(), betas=(2.0, 0.9))


def test_schedulers_check_what_would_divide_by_zero_or_call_a_non_function():
    sched = gf.optim.lr_scheduler
    opt = gf.optim.SGD(_params(), lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match="CosineAnnealingLR: T_max must be positive, got 0"):
        sched.CosineAnnealingLR(opt, T_max=0)
    with pytest.raises(ValueError, match="StepLR: step_size must be positive, got 0"):
        sched.StepLR(opt, step_size=0)
    with pytest.raises(ValueError, match="CyclicLR: step_size_up must be positive, got 0"):
        sched.CyclicLR(opt, 0.01, 0.1, step_size_up=0)
    with pytest.raises(ValueError, match="CyclicLR: 'bad' is not a valid value for mode"):
        sched.CyclicLR(opt, 0.01, 0.1, mode="bad")
    with pytest.raises(TypeError, match="LambdaLR: lr_lambda must be a function"):
        sched.LambdaLR(opt, lr_lambda=3)
    with pytest.raises(TypeError, match=r"LambdaLR: lr_lambda\(0\) returned NoneType"):
        sched.LambdaLR(opt, lr_lambda=lambda epoch: None)
    with pytest.raises(TypeError, match="MultiStepLR: milestones must be a list of ints"):
        sched.MultiStepLR(opt, milestones=3)
    plateau = sched.ReduceLROnPlateau(opt)
    with pytest.raises(TypeError, match=r"ReduceLROnPlateau.step: argument 'metrics' must be a "
                       "number, not str"):
        plateau.step("a")


# ------------------------------------------------------------------ elementwise, linalg
def test_elementwise_errors_name_the_op():
    b = gf.tensor([True, False])
    with pytest.raises(RuntimeError, match="neg: negation, the `-` operator, on a bool tensor"):
        -b
    assert gf.sign(b).dtype is gf.bool and gf.floor(b).tolist() == [True, False]
    with pytest.raises(TypeError, match="remainder: not supported for bool tensors"):
        gf.remainder(b, True)
    with pytest.raises(ValueError, match="pow: integers to negative integer powers"):
        gf.tensor([2, 3]) ** -1
    with pytest.raises(TypeError, match="add: argument 'alpha' must be a number, not NoneType"):
        gf.add(gf.ones(2), gf.ones(2), alpha=None)
    with pytest.raises(TypeError, match="leaky_relu: argument 'negative_slope' must be a number"):
        gf.nn.functional.leaky_relu(gf.ones(2), "x")
    with pytest.raises(TypeError, match="clamp: argument 'min' must be a number or a Tensor"):
        gf.clamp(gf.ones(2), [0.0])
    with pytest.raises(TypeError, match="allclose: argument 'other' must be a Tensor, not float"):
        gf.allclose(gf.ones(2), 1.0)
    with pytest.raises(RuntimeError, match="mul_: a leaf Variable that requires grad is being "
                       "used in an in-place operation"):
        gf.ones(2, requires_grad=True).mul_(2)


def test_matrix_products_name_themselves():
    with pytest.raises(TypeError, match=r"mm: expected floating-point or integer tensors, got "
                       r"gradflow.int64 and gradflow.bool"):
        gf.mm(gf.ones(2, 1, dtype=gf.int64), gf.ones(1, 2, dtype=gf.bool))
    with pytest.raises(ValueError, match=r"dot: expected two 1-D tensors of equal size"):
        gf.dot(gf.ones(2), gf.ones(3))
    with pytest.raises(TypeError, match="bmm: argument 'other' must be a Tensor, not NoneType"):
        gf.bmm(gf.ones(1, 1, 1), None)
    assert gf.nn.functional.linear(gf.ones(0, 3, 0), gf.ones(2, 0)).shape == (0, 3, 2)


# ------------------------------------------------------------------ modules
def test_module_registration_errors_name_the_method():
    m = gf.nn.Sequential(gf.nn.Linear(3, 2))
    with pytest.raises(ValueError, match=r'parameter name can\'t be empty or contain ".", got '
                       '"a.b"'):
        m.register_parameter("a.b", None)
    with pytest.raises(TypeError, match="register_buffer: cannot assign 'int' object"):
        m.register_buffer("buf", 3)
    with pytest.raises(TypeError, match="apply: fn must be a function of a Module, got int"):
        m.apply(3)
    with pytest.raises(TypeError, match="get_submodule: target must be a str, got int"):
        m.get_submodule(3)
    # Module.to parses its arguments as Tensor.to does: a string that names no dtype is a device
    with pytest.raises(ValueError, match="device type must be 'cpu' or 'cuda', got 'tpu'"):
        m.to("tpu")
    with pytest.raises(TypeError, match=r"expected a dtype \(gradflow.float32, float64, an "
                       r"integer type or bool\), got 1.5"):
        m.to(1.5)
    with pytest.raises(RuntimeError, match="Parameter: only Tensors of floating point dtype can "
                       "require gradients, got gradflow.int64"):
        gf.nn.Parameter(gf.zeros(2, dtype=gf.int64))


def test_layers_check_their_sizes_and_name_themselves():
    nn = gf.nn
    with pytest.raises(TypeError, match="Linear: argument 'in_features' must be int, not str"):
        nn.Linear("3", 2)
    with pytest.raises(ValueError, match="BatchNorm2d: num_features must be at least 0, got -5"):
        nn.BatchNorm2d(-5)
    with pytest.raises(ValueError, match="GroupNorm: num_groups must be at least 1, got 0"):
        nn.GroupNorm(0, 4)
    with pytest.raises(ValueError, match="Conv2d: kernel_size must be >= 1, got"):
        nn.Conv2d(1, 1, 0)
    with pytest.raises(TypeError, match="LayerNorm: argument 'eps' must be a number, not NoneType"):
        nn.LayerNorm(3, eps=None)
    with pytest.raises(MemoryError, match="Linear: .*cannot allocate"):
        nn.Linear(2**20, 2**20)
    with pytest.raises(TypeError, match=r"Linear: expected a dtype"):
        nn.Linear(2, 2, dtype="tpu")
    with pytest.raises(ValueError, match="BatchNorm1d: expected 2D or 3D input"):
        nn.BatchNorm1d(2)(gf.zeros(1, 2, 3, 4))


def test_functional_norms_and_friends():
    F = gf.nn.functional
    with pytest.raises(TypeError, match="batch_norm: argument 'training' must be bool, not float"):
        F.batch_norm(gf.ones(2, 1), gf.zeros(1), gf.ones(1), training=0.0)
    assert F.batch_norm(gf.ones(0, 1, 1, 1), gf.zeros(1), gf.ones(1)).shape == (0, 1, 1, 1)
    with pytest.raises(ValueError, match="group_norm: input .* has a zero-size dimension"):
        F.group_norm(gf.ones(0, 1, 1, 3), 1)
    with pytest.raises(IndexError, match="normalize: dimension out of range"):
        F.normalize(gf.ones(1, 1), dim=5)
    with pytest.raises(TypeError, match="normalize: expected a floating-point input"):
        F.normalize(gf.ones(2, 2, dtype=gf.int64))
    with pytest.raises(MemoryError, match=r"one_hot: cannot allocate \d+ bytes"):
        F.one_hot(gf.tensor([1]), 2**40)
    with pytest.raises(ValueError, match="one_hot: num_classes must be -1"):
        F.one_hot(gf.tensor([1]), -2)
    with pytest.raises(RuntimeError, match="embedding: sparse=True needs sparse gradients"):
        F.embedding(gf.tensor([0]), gf.ones(2, 2), sparse=True)
    with pytest.raises(ValueError, match=r"prelu: weight must hold 1 or 3"):
        F.prelu(gf.ones(2, 3), gf.ones(2))
    with pytest.raises(RuntimeError, match="dropout: a leaf Variable that requires grad"):
        F.dropout(gf.ones(3, requires_grad=True), inplace=True)
    with pytest.raises(RuntimeError, match="relu: a leaf Variable that requires grad"):
        F.relu(gf.ones(3, requires_grad=True), inplace=True)


def test_init_and_autograd_name_the_function():
    init = gf.nn.init
    with pytest.raises(ValueError, match="xavier_uniform_: Fan in and fan out can not be computed"):
        init.xavier_uniform_(gf.ones(3))
    assert init.xavier_normal_(gf.ones(0, 3)).shape == (0, 3)
    with pytest.raises(TypeError, match="ones_: argument 'tensor' must be a Tensor, not int"):
        init.ones_(3)
    with pytest.raises(ValueError, match="kaiming_uniform_: 'bad' is not a valid value for mode"):
        init.kaiming_uniform_(gf.ones(2, 2), mode="bad")
    y = gf.ones(2, requires_grad=True) * 2
    with pytest.raises(RuntimeError, match="backward: grad can be implicitly created only for "
                       "scalar outputs"):
        y.backward()
    with pytest.raises(TypeError, match="backward: gradient must be a Tensor or a sequence of "
                       "Tensors, got float"):
        y.backward(1.0)
    with pytest.raises(TypeError, match="autograd.grad: inputs must be a Tensor or a sequence of "
                       "Tensors, got int"):
        gf.autograd.grad(y.sum(), 3)


# ------------------------------------------------------------------ creation, devices, dtypes
def test_creation_arguments_name_the_function():
    with pytest.raises(ValueError, match=r"tensor\(\): data must have a regular shape"):
        gf.tensor([[1.0, 2.0], [3.0]])
    with pytest.raises(ValueError, match=r"tensor\(\): the value 9223372036854775808 does not "
                       "fit in int64"):
        gf.tensor([2**63])
    with pytest.raises(RuntimeError, match="requires_grad=True: only Tensors of floating point"):
        gf.tensor([1, 2], requires_grad=True)
    with pytest.raises(TypeError, match="zeros: argument 'requires_grad' must be bool"):
        gf.zeros(2, requires_grad="yes")
    with pytest.raises(TypeError, match="device: expected a device, a string like 'cpu'"):
        gf.zeros(2, device=1.5)
    with pytest.raises(TypeError, match="ones_like: argument 'input' must be a Tensor, not str"):
        gf.ones_like("abc")
    with pytest.raises(TypeError, match="arange: argument 'end' must be a number, not str"):
        gf.arange(0, "5")
    with pytest.raises(TypeError, match="randint: argument 'high' must be int, not tuple"):
        gf.randint(0, (1, 2), (3,))
    with pytest.raises(TypeError, match="manual_seed: argument 'seed' must be int, not str"):
        gf.manual_seed("a")
    gf.manual_seed(-1)  # as PyTorch: modulo 2**64
    with pytest.raises(ValueError, match="set_num_threads: n must be at least 1, got 0"):
        gf.set_num_threads(0)
    with pytest.raises(TypeError, match="promote_types: expected two dtypes, got dtype and int"):
        gf.promote_types(gf.float32, 0)
    with pytest.raises(IndexError, match="size: dimension specified as 0 but tensor has no "
                       "dimensions"):
        gf.tensor(1.0).size(-1)


# ------------------------------------------------------------------ reductions, shapes, indexing
def test_reductions_shapes_and_indexing_name_the_op():
    with pytest.raises(TypeError, match="amin: argument 'input' must be a Tensor, not int"):
        gf.amin(3, 0)
    with pytest.raises(TypeError, match="sum: argument 'keepdim' must be bool, not str"):
        gf.ones(2).sum(0, keepdim="no")
    with pytest.raises(RuntimeError, match="std: only supports floating point dtypes"):
        gf.ones(3, dtype=gf.int64).std()
    with pytest.raises(IndexError, match=r"min\(\): Expected reduction dim to be specified"):
        gf.ones(0).min()
    assert gf.tensor(True).argmin(-1).item() == 0 and gf.tensor(2.0).max(0).indices.item() == 0
    with pytest.raises(ValueError, match="norm: p must be a number or 'fro', got 'bad'"):
        gf.ones(2).norm("bad")
    with pytest.raises(TypeError, match="reshape: argument 'shape' must be int, not object"):
        gf.reshape(gf.ones(2), object())
    with pytest.raises(TypeError, match=r"cat: argument 'tensors\[1\]' must be a Tensor, not int"):
        gf.cat([gf.ones(2), 3])
    with pytest.raises(TypeError, match="expand_as: argument 'other' must be a Tensor, not str"):
        gf.ones(2).expand_as("abc")
    with pytest.raises(TypeError, match="pad: argument 'value' must be a number, not str"):
        gf.nn.functional.pad(gf.ones(2), (1, 1), value="abc")
    with pytest.raises(TypeError, match="lerp: argument 'end' must be a Tensor or a number"):
        gf.ones(2).lerp("abc", 0.5)
    with pytest.raises(ValueError, match="index: slice step cannot be zero"):
        gf.ones(3)[::0]
    with pytest.raises(TypeError, match="index assignment: cannot assign a str value"):
        gf.ones(3)[0] = "a"
    with pytest.raises(TypeError, match="scatter_add: argument 'src' must be a Tensor, not "
                       "NoneType"):
        gf.ones(2).scatter_add(0, gf.tensor([0]), None)
    with pytest.raises(TypeError, match="Sequential indices must be integers or slices, not str"):
        gf.nn.Sequential(gf.nn.ReLU())["a"]


def test_scalars_flags_and_bounds():
    with pytest.raises(ValueError, match="logical_or: the Python int 9223372036854775808 does not "
                       "fit in gradflow.int64"):
        gf.ones(2, dtype=gf.int64) | 2**63
    assert (gf.ones(2) * 2**63).dtype is gf.float32
    with pytest.raises(ValueError, match="add_: the Python int"):
        gf.ones(2, dtype=gf.int64).add_(2**63)
    with pytest.raises(ValueError, match=r"clamp: shapes \(2, 1\) and \(0, 1\) cannot be"):
        gf.clamp(gf.ones(2, 1), gf.ones(0, 1))
    with pytest.raises(ValueError, match="gelu: approximate must be 'none' or 'tanh'"):
        gf.nn.functional.gelu(gf.ones(2), approximate=3)
    with pytest.raises(TypeError, match="max_pool2d: argument 'return_indices' must be bool"):
        gf.nn.functional.max_pool2d(gf.ones(1, 1, 2, 2), 2, return_indices=gf.ones(2))
    assert gf.nn.functional.pad(gf.tensor(2.0), ()).item() == 2.0
    with pytest.raises(ValueError, match="arange: start, end and step must be finite"):
        gf.arange(float("-inf"), 5, 0.5)
    with pytest.raises(TypeError, match=r"expected a dtype"):
        gf.zeros_like(gf.ones(2), dtype=[1, 2])
    with pytest.raises(TypeError, match="addcmul_: argument 'tensor1' must be a Tensor"):
        gf.ones(2).addcmul_({"a": 1}, gf.ones(2))


def test_last_fuzz_findings():
    F = gf.nn.functional
    with pytest.raises(RuntimeError, match=r"diag: a tensor of shape \(4611686018427387905, "):
        gf.ones(1, dtype=gf.bool).diag(2**62)  # seed 1
    with pytest.raises(ValueError, match="clamp: the Python int 9223372036854775808 does not "
                       "fit in gradflow.bool"):
        gf.zeros(1, 0, 1, dtype=gf.bool).clamp_(2**63, None)  # seed 3
    with pytest.raises(ValueError, match="clamp: the Python int -9223372036854775809 does not "
                       "fit in gradflow.int64"):
        gf.zeros(2, dtype=gf.int64).clamp(None, -2**63 - 1)
    assert gf.zeros(2).clamp(2**70).tolist() == [2.0**70] * 2  # past int64 on a float tensor
    with pytest.raises(ValueError, match="full: the Python int 9223372036854775808 does not fit"):
        gf.full((), 2**63, dtype=gf.bool)
    with pytest.raises(TypeError, match="linspace|expected a dtype"):
        gf.linspace(0, 1, 3, dtype=[1, 2])
    with pytest.raises(ValueError, match=r"conv_transpose2d: dilation \(9223372036854775808, "
                       r"9223372036854775808\) does not fit in int64"):
        F.conv_transpose2d(gf.ones(1, 1, 2, 2), gf.ones(1, 1, 1, 1), dilation=2**63)
    with pytest.raises(TypeError, match="pad: argument 'pad' must be int, not Tensor"):
        F.pad(gf.ones(2), gf.tensor(1.0))
    with pytest.raises(MemoryError, match="chunk: cannot make"):
        gf.ones(0).chunk(2**62)
    with pytest.raises(ValueError, match="cross_entropy: input of shape .* has no classes"):
        F.cross_entropy(gf.ones(0), gf.tensor(0), ignore_index=0)
    with pytest.raises(ValueError, match="interpolate: scale_factor must be positive"):
        F.interpolate(gf.ones(1, 1, 2, 2), scale_factor=float("inf"))
    with pytest.raises(TypeError, match="Tensor: argument 'requires_grad' must be bool"):
        gf.Tensor((1, 2), requires_grad=[1])
    x = gf.zeros(4, 0, 4, dtype=gf.bool)
    with pytest.raises((TypeError, ValueError), match="index assignment into tensor of shape"):
        x[gf.zeros(4, 0, 4, dtype=gf.bool)] = gf.zeros(1, 0, dtype=gf.bool)
