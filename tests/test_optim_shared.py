"""What the optimizers share through the base class (gradflow/optim/optimizer.py): the option
checks (one table, PyTorch's order and messages), the default options and their order in the
param groups, the step hooks around the inherited step(), the per-parameter state made once
and counted, and the custom optimizers a user writes either way (step or _update_group)."""

import importlib.util

import numpy as np
import pytest

import gradflow as gf
import gradflow.nn as nn
from gradflow import optim

HAS_TORCH = importlib.util.find_spec("torch") is not None

# optimizer -> {option: (what the message calls it, an invalid value, the range it names)}
INVALID = {
    "SGD": {"lr": ("learning rate", -0.1, ">= 0.0"),
            "momentum": ("momentum value", -0.5, ">= 0.0"),
            "weight_decay": ("weight_decay value", -1e-4, ">= 0.0")},
    "Adagrad": {"lr": ("learning rate", -0.1, ">= 0.0"),
                "lr_decay": ("lr_decay value", -0.1, ">= 0.0"),
                "weight_decay": ("weight_decay value", -0.1, ">= 0.0"),
                "initial_accumulator_value": ("initial_accumulator_value value", -0.1,
                                              ">= 0.0"),
                "eps": ("epsilon value", -1e-10, ">= 0.0")},
    "RMSprop": {"lr": ("learning rate", -0.1, ">= 0.0"),
                "eps": ("epsilon value", -1e-8, ">= 0.0"),
                "momentum": ("momentum value", -0.9, ">= 0.0"),
                "weight_decay": ("weight_decay value", -0.1, ">= 0.0"),
                "alpha": ("alpha value", -0.99, ">= 0.0")},
    "Adadelta": {"lr": ("learning rate", -1.0, ">= 0.0"),
                 "rho": ("rho value", 1.5, r"in \[0.0, 1.0\]"),
                 "eps": ("epsilon value", -1e-6, ">= 0.0"),
                 "weight_decay": ("weight_decay value", -0.1, ">= 0.0")},
    "NAdam": {"momentum_decay": ("momentum_decay value", -4e-3, ">= 0.0")},
}
ADAM_FAMILY = ("Adam", "AdamW", "Adamax", "NAdam", "RAdam")
for _name in ADAM_FAMILY:
    INVALID.setdefault(_name, {}).update(
        lr=("learning rate", -1e-3, ">= 0.0"), eps=("epsilon value", -1e-8, ">= 0.0"),
        weight_decay=("weight_decay value", -0.1, ">= 0.0"))

CASES = [(name, option) for name, options in INVALID.items() for option in options]
ALL = ("SGD", "Adagrad", "RMSprop", "Adadelta") + ADAM_FAMILY


def _param():
    return nn.Parameter(gf.tensor([1.0, -2.0]))


@pytest.mark.parametrize("name,option", CASES)
def test_each_invalid_option_names_the_optimizer_the_option_and_its_range(name, option):
    what, value, span = INVALID[name][option]
    with pytest.raises(ValueError, match=rf"^{name}: Invalid {what}: {value} \({option} must "
                                         rf"be {span}\)$"):
        getattr(optim, name)([_param()], **{option: value})
    if HAS_TORCH:  # PyTorch refuses the same value
        import torch

        with pytest.raises(ValueError):
            getattr(torch.optim, name)([torch.zeros(2, requires_grad=True)], **{option: value})


@pytest.mark.parametrize("name", ADAM_FAMILY)
def test_betas_are_a_pair_in_zero_one(name):
    with pytest.raises(ValueError, match=rf"^{name}: Invalid beta parameter at index 1: 1.0 "
                                         r"\(betas must be in \[0.0, 1.0\)\)$"):
        getattr(optim, name)([_param()], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match=f"{name}: betas must be a pair"):
        getattr(optim, name)([_param()], betas=(0.9,))


def test_options_are_checked_in_pytorchs_order():
    """Two invalid options: the error names the one PyTorch checks first (lr first, then
    eps before betas and weight_decay in the Adam family; SGD's momentum before
    weight_decay; RMSprop's alpha last)."""
    with pytest.raises(ValueError, match="learning rate"):
        optim.Adam([_param()], lr=-1, eps=-1)
    with pytest.raises(ValueError, match="epsilon"):
        optim.Adam([_param()], eps=-1, betas=(2.0, 0.9), weight_decay=-1)
    with pytest.raises(ValueError, match="momentum value"):
        optim.SGD([_param()], momentum=-1, weight_decay=-1)
    with pytest.raises(ValueError, match="weight_decay"):
        optim.RMSprop([_param()], weight_decay=-1, alpha=-1)


@pytest.mark.skipif(not HAS_TORCH, reason="needs torch")
@pytest.mark.parametrize("name", ALL)
def test_defaults_match_pytorchs(name):
    import torch

    ours = getattr(optim, name)([_param()]).param_groups[0]
    theirs = getattr(torch.optim, name)([torch.zeros(2, requires_grad=True)]).param_groups[0]
    for key, value in ours.items():
        if key != "params":
            assert key in theirs and theirs[key] == value, key


def test_param_group_keys_keep_their_order():
    """The layout of a param group (and so of state_dict()['param_groups']) is the
    signature's order of the options, whatever order they are checked in."""
    keys = {name: [k for k in getattr(optim, name)([_param()]).param_groups[0] if k != "params"]
            for name in ("Adagrad", "RMSprop", "Adam", "SGD")}
    assert keys["Adagrad"] == ["lr", "lr_decay", "eps", "weight_decay",
                               "initial_accumulator_value", "maximize"]
    assert keys["RMSprop"] == ["lr", "alpha", "eps", "weight_decay", "momentum", "centered",
                               "maximize"]
    assert keys["Adam"] == ["lr", "betas", "eps", "weight_decay", "amsgrad", "maximize",
                            "decoupled_weight_decay"]
    assert keys["SGD"] == ["lr", "momentum", "dampening", "weight_decay", "nesterov",
                           "maximize"]


@pytest.mark.parametrize("name", ALL)
def test_inherited_step_runs_the_hooks_once_and_returns_the_closures_loss(name):
    w = _param()
    opt = getattr(optim, name)([w], lr=0.1)
    calls = []
    opt.register_step_pre_hook(lambda o, args, kwargs: calls.append("pre"))
    opt.register_step_post_hook(lambda o, args, kwargs: calls.append("post"))

    def closure():
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    assert opt.step(closure).item() == 5.0
    assert calls == ["pre", "post"]
    assert w.grad_fn is None and w.is_leaf


@pytest.mark.parametrize("name", ALL)
def test_state_is_made_on_the_first_step_and_counted(name):
    w, frozen = _param(), _param()
    opt = getattr(optim, name)([w, frozen], lr=0.1)
    for _ in range(3):
        w.grad = gf.ones(2)
        opt.step()
    if name == "SGD":  # no momentum: no state
        assert not opt.state[w]
    else:
        assert opt.state[w]["step"].item() == 3
    assert not opt.state.get(frozen) or name == "Adagrad"  # Adagrad's is made at construction
    np.testing.assert_array_equal(frozen.detach().numpy(), [1.0, -2.0])


def test_adagrad_state_at_construction_and_for_a_group_added_later():
    w, later = _param(), _param()
    opt = optim.Adagrad([w], initial_accumulator_value=0.5)
    assert opt.state[w]["step"].item() == 0
    np.testing.assert_array_equal(opt.state[w]["sum"].numpy(), [0.5, 0.5])
    opt.add_param_group({"params": [later], "initial_accumulator_value": 0.25})
    assert later not in opt.state
    later.grad = gf.ones(2)
    opt.step()
    assert opt.state[later]["step"].item() == 1
    np.testing.assert_allclose(opt.state[later]["sum"].numpy(), [1.25, 1.25])


def test_decoupled_weight_decay_shrinks_the_weights_without_a_gradient_signal():
    w = _param()
    opt = optim.AdamW([w], lr=0.1, weight_decay=0.5)
    w.grad = gf.zeros(2)
    opt.step()
    np.testing.assert_allclose(w.detach().numpy(), [0.95, -1.9], rtol=1e-6)


def test_custom_optimizers_written_either_way():
    class HalfStep(optim.Optimizer):  # the gradflow way: one group's update rule
        def __init__(self, params, lr=0.1):
            super().__init__(params, dict(lr=lr, maximize=False, weight_decay=0))

        def _update_group(self, group):
            for p, g in optim.optimizer.grads(group):
                p.sub_(g * (group["lr"] / 2))

    class PlainStep(optim.Optimizer):  # the PyTorch way: step() itself
        def __init__(self, params, lr=0.1):
            super().__init__(params, dict(lr=lr))

        @gf.no_grad()
        def step(self, closure=None):
            for group in self.param_groups:
                for p in group["params"]:
                    p.sub_(p.grad * group["lr"])

    for cls, expected in ((HalfStep, [0.8, -1.6]), (PlainStep, [0.6, -1.2])):
        w = _param()
        opt = cls([w], lr=0.2)
        calls = []
        opt.register_step_pre_hook(lambda o, args, kwargs: calls.append(1))
        (w * w).sum().backward()
        opt.step()
        np.testing.assert_allclose(w.detach().numpy(), expected, rtol=1e-6)
        assert calls == [1]
    with pytest.raises(NotImplementedError):
        optim.Optimizer([_param()], {}).step()
