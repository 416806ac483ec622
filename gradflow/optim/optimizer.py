"""Optimizer: the base class (parameter groups, per-parameter state, state_dict).

The algorithms (sgd.py, adam.py, ...) share what is common here: their options are checked
by check_hyperparameters (one table of ranges and messages), Optimizer.step runs the closure
and calls the algorithm's _update_group for each group, and _stepped (or grads) gives each
parameter with a gradient, its descent direction (weight decay applied) and its state. Each
file keeps only its update rule, written with the in-place functions of ``gradflow.ops.update``,
which build no graph and allocate only the temporaries a formula needs.
"""

from __future__ import annotations

import copy
import functools
import math
from collections import defaultdict
from itertools import chain
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple

from gradflow.autograd import enable_grad, no_grad
from gradflow.nn.module import RemovableHandle
from gradflow.ops import update
from gradflow.ops.common import as_bool, as_float
from gradflow.tensor import Tensor, tensor


class _Required:
    def __repr__(self) -> str:
        return "<required parameter>"


required = _Required()


def step_counter() -> Tensor:
    """The per-parameter step count: a float32 CPU scalar, as PyTorch keeps it."""
    return tensor(0.0)


def grads(group: Dict[str, Any]) -> Iterator[Tuple[Tensor, Tensor]]:
    """(p, g) for each parameter p of `group` that has a gradient, g the direction a step
    descends along: -grad when maximizing, plus weight_decay * p; with the group's
    decoupled_weight_decay (AdamW) the decay shrinks p instead, p *= 1 - lr * weight_decay."""
    maximize, wd = group["maximize"], group["weight_decay"]
    shrink = 1 - group["lr"] * wd if group.get("decoupled_weight_decay") else None
    for p in group["params"]:
        if p.grad is None:
            continue
        g = -p.grad if maximize else p.grad
        if wd != 0:
            if shrink is None:
                g = g.add(p, alpha=wd)
            else:
                update.mul_(p, shrink)
        yield p, g


def check_option(opt: str, name: str, value: Any, what: str, low: float = 0.0,
                 high: Optional[float] = None, high_open: bool = False) -> Any:
    """A numeric option, returned as given: a number in [low, high] ([low, high) with
    high_open), else a TypeError or ValueError naming the optimizer, the option and the range."""
    v = as_float(value, opt, name)
    if isinstance(value, Tensor) and (not value.is_floating_point() or value.requires_grad):
        raise TypeError(f"{opt}: {name} must be a float (or a float tensor that does not "
                        f"require grad), got a {value.dtype} tensor")
    if v >= low and (high is None or v < high or (v == high and not high_open)):
        return v if isinstance(value, Tensor) else value  # a one-element tensor: its value
    span = f">= {low}" if high is None else f"in [{low}, {high}{')' if high_open else ']'}"
    raise ValueError(f"{opt}: Invalid {what}: {value} ({name} must be {span})")


# The numeric options of the optimizers, in the order they are checked (PyTorch's, except that
# it checks Adagrad's eps last): what the error message calls the option, and its range
# (low, high, high_open) as in check_option.
_HYPERPARAMETERS: Dict[str, Tuple[str, float, Optional[float], bool]] = {
    "lr": ("learning rate", 0.0, None, False),
    "lr_decay": ("lr_decay value", 0.0, None, False),
    "rho": ("rho value", 0.0, 1.0, False),
    "eps": ("epsilon value", 0.0, None, False),
    "betas": ("beta parameter", 0.0, 1.0, True),  # each of the pair (check_betas)
    "momentum": ("momentum value", 0.0, None, False),
    "dampening": ("dampening value", -math.inf, None, False),
    "weight_decay": ("weight_decay value", 0.0, None, False),
    "initial_accumulator_value": ("initial_accumulator_value value", 0.0, None, False),
    "alpha": ("alpha value", 0.0, None, False),
    "momentum_decay": ("momentum_decay value", 0.0, None, False),
}


def check_betas(opt: str, betas: Any) -> Tuple[Any, Any]:
    """Two coefficients in [0, 1), as (beta1, beta2)."""
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise ValueError(f"{opt}: betas must be a pair (beta1, beta2), got {betas!r}")
    what, *span = _HYPERPARAMETERS["betas"]
    return tuple(check_option(opt, "betas", b, f"{what} at index {i}", *span)
                 for i, b in enumerate(betas))


def check_hyperparameters(opt: str, **options: Any) -> Dict[str, Any]:
    """The numeric options of optimizer `opt`, checked in PyTorch's order (_HYPERPARAMETERS)
    and returned in the order given (the order of the param groups' keys)."""
    checked = {name: check_betas(opt, options[name]) if name == "betas"
               else check_option(opt, name, options[name], *_HYPERPARAMETERS[name])
               for name in _HYPERPARAMETERS if name in options}
    return {name: checked[name] for name in options}


def _with_step_hooks(step: Callable) -> Callable:
    """`step` with the optimizer's step pre-hooks run before it and post-hooks after it;
    once per call, also when a subclass's step() calls its parent's."""

    @functools.wraps(step)
    def step_with_hooks(self: "Optimizer", *args: Any, **kwargs: Any) -> Any:
        if self._in_step:
            return step(self, *args, **kwargs)
        for hook in list(self.__dict__.get("_step_pre_hooks", {}).values()):
            changed = hook(self, args, kwargs)
            if changed is not None:
                args, kwargs = changed
        self._in_step = True
        try:
            out = step(self, *args, **kwargs)
        finally:
            self._in_step = False
        for hook in list(self.__dict__.get("_step_post_hooks", {}).values()):
            hook(self, args, kwargs)
        return out

    return step_with_hooks


# ---------------------------------------------------------------- the base class
class Optimizer:
    """Holds param_groups (dicts: 'params' plus every option, defaults filled in) and
    state (per parameter). Subclasses implement _update_group(group), the update rule that
    step() applies to each group (or step() itself).

    >>> model = nn.Linear(2, 1)
    >>> groups = [{"params": [model.weight]}, {"params": [model.bias], "lr": 0.5}]
    >>> opt = gf.optim.SGD(groups, lr=0.1)
    >>> isinstance(opt, gf.optim.Optimizer), [group["lr"] for group in opt.param_groups]
    (True, [0.1, 0.5])
    >>> model(gf.ones(1, 2)).sum().backward()
    >>> opt.step()
    >>> opt.zero_grad()
    >>> model.weight.grad is None, sorted(opt.state_dict())
    (True, ['param_groups', 'state'])
    """

    _in_step = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "step" in vars(cls):
            cls.step = _with_step_hooks(vars(cls)["step"])

    def __init__(self, params: Iterable, defaults: Dict[str, Any]) -> None:
        self.defaults = defaults
        self.state: Dict[Tensor, Dict[str, Any]] = defaultdict(dict)
        self.param_groups: List[Dict[str, Any]] = []
        name = type(self).__name__
        if isinstance(params, (Tensor, str, dict)) or not hasattr(params, "__iter__"):
            raise TypeError(f"{name}: params argument given to the optimizer should be an "
                            f"iterable of Tensors or dicts, but got {type(params).__name__}")
        groups = list(params)
        if not groups:
            raise ValueError(f"{name}: optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, param_group: Dict[str, Any]) -> None:
        """Add a group of parameters with its own options (missing ones from defaults)."""
        op = f"{type(self).__name__}.add_param_group"
        if not isinstance(param_group, dict):
            raise TypeError(f"{op}: param_group must be a dict, but got "
                            f"{type(param_group).__name__}")
        if "params" not in param_group:
            raise ValueError(f"{op}: param_group must have a 'params' entry, got keys "
                             f"{sorted(map(str, param_group))}")
        params = param_group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError(f"{op}: optimizer parameters need to be organized in ordered "
                            "collections, but the ordering of tensors in sets will change "
                            "between runs. Please use a list instead.")
        elif isinstance(params, (str, dict)) or not hasattr(params, "__iter__"):
            raise TypeError(f"{op}: 'params' must be a Tensor or an iterable of Tensors, got "
                            f"{type(params).__name__}")
        else:
            params = list(params)
        group = dict(param_group)
        if params and isinstance(params[0], tuple):
            group["param_names"] = [name for name, _ in params]
            params = [p for _, p in params]
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"{op}: optimizer can only optimize Tensors, but one of the "
                                f"params is {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError(f"{op}: can't optimize a non-leaf Tensor")
        group["params"] = params
        for name, default in self.defaults.items():
            if default is required and name not in group:
                raise ValueError(f"{op}: parameter group didn't specify a value of required "
                                 f"optimization parameter {name}")
            group.setdefault(name, default)
        existing = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in existing for p in params):
            raise ValueError(f"{op}: some parameters appear in more than one parameter group")
        self.param_groups.append(group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the .grad of every parameter in param_groups: to None (the default) or to zeros.

        >>> w = nn.Parameter(gf.ones(2))
        >>> opt = gf.optim.SGD([w], lr=0.1)
        >>> (w * w).sum().backward()
        >>> opt.zero_grad(set_to_none=False)
        >>> w.grad
        tensor([0., 0.])
        """
        set_to_none = as_bool(set_to_none, f"{type(self).__name__}.zero_grad", "set_to_none")
        update.zero_grad((p for g in self.param_groups for p in g["params"]), set_to_none)

    @_with_step_hooks
    @no_grad()
    def step(self, closure: Optional[Callable[[], Any]] = None) -> Any:
        """One update of every parameter from its .grad, group by group; `closure`, run first
        (with grad enabled), re-evaluates the model and returns the loss, which step returns.

        >>> w = nn.Parameter(gf.tensor([1.0, -2.0]))
        >>> opt = gf.optim.SGD([w], lr=0.1)
        >>> def closure():
        ...     opt.zero_grad()
        ...     loss = (w * w).sum()
        ...     loss.backward()
        ...     return loss
        >>> opt.step(closure).item(), w.tolist()
        (5.0, [0.800000011920929, -1.600000023841858])
        """
        loss = self._run_closure(closure)
        for group in self.param_groups:
            self._update_group(group)
        return loss

    def _update_group(self, group: Dict[str, Any]) -> None:
        """The algorithm's update of the parameters of one group (under no_grad)."""
        raise NotImplementedError

    def register_step_pre_hook(self, hook: Callable) -> RemovableHandle:
        """hook(optimizer, args, kwargs) runs before every step(); it may return new
        (args, kwargs) for the step. ``handle.remove()`` unregisters it."""
        return self._add_step_hook("_step_pre_hooks", hook)

    def register_step_post_hook(self, hook: Callable) -> RemovableHandle:
        """hook(optimizer, args, kwargs) runs after every step()."""
        return self._add_step_hook("_step_post_hooks", hook)

    def _add_step_hook(self, kind: str, hook: Callable) -> RemovableHandle:
        if not callable(hook):
            raise TypeError(f"{type(self).__name__}.register_{kind[1:-1]}: hook must be "
                            f"callable, got {type(hook).__name__}")
        hooks = self.__dict__.setdefault(kind, {})
        handle = RemovableHandle(hooks)
        hooks[handle.id] = hook
        return handle

    def _fresh_state(self, p: Tensor, buffers: Iterable[str], fill: float = 0.0) -> Dict[str, Any]:
        """p's state before its first step: a step counter at 0 and a buffer shaped like p
        per name in `buffers`, filled with `fill`."""
        state = self.state[p]
        state["step"] = step_counter()
        for name in buffers:
            state[name] = update.zeros_state(p, fill)
        return state

    def _counted_state(self, p: Tensor, buffers: Iterable[str],
                       fill: float = 0.0) -> Dict[str, Any]:
        """p's state with this step counted, made by _fresh_state on p's first step."""
        state = self.state[p]
        if not state:
            state = self._fresh_state(p, buffers, fill)
        state["step"].add_(1)
        return state

    def _stepped(self, group: Dict[str, Any], buffers: Iterable[str] = (),
                 fill: float = 0.0) -> Iterator[Tuple[Tensor, Tensor, Dict[str, Any]]]:
        """(p, g, state) for each parameter of `group` that has a gradient: (p, g) as
        grads(group) gives them, state p's _counted_state."""
        for p, g in grads(group):
            yield p, g, self._counted_state(p, buffers, fill)

    @staticmethod
    def _run_closure(closure: Optional[Callable[[], Any]]) -> Any:
        if closure is None:
            return None
        with enable_grad():
            return closure()

    # ---------------------------------------------------------------- checkpoints
    def state_dict(self) -> Dict[str, Any]:
        """{'state': {index: per-param state}, 'param_groups': [{options, 'params': [index]}]}
        with parameters numbered in group order, as PyTorch's."""
        index: Dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            for p in group["params"]:
                index.setdefault(id(p), len(index))
            packed["params"] = [index[id(p)] for p in group["params"]]
            groups.append(packed)
        state = {index[id(p)]: s for p, s in self.state.items() if id(p) in index}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        """Restore options and state; tensors are copied and cast to their parameter's dtype
        and device (the step counters excepted)."""
        op = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state_dict, dict) or not {"state", "param_groups"} <= set(state_dict):
            raise ValueError(f"{op}: expected a dict with 'state' and 'param_groups' (from "
                             f"state_dict()), got {type(state_dict).__name__}"
                             + (f" with keys {sorted(map(str, state_dict))}"
                                if isinstance(state_dict, dict) else ""))
        saved_groups = copy.deepcopy(state_dict["param_groups"])
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"{op}: loaded state dict has a different number of parameter "
                             "groups")
        for ours, theirs in zip(self.param_groups, saved_groups):
            if not isinstance(theirs, dict) or len(ours["params"]) != len(theirs.get("params",
                                                                                     ())):
                raise ValueError(f"{op}: loaded state dict contains a parameter group that "
                                 "doesn't match the size of optimizer's group")
        id_map = dict(zip(chain.from_iterable(g["params"] for g in saved_groups),
                          chain.from_iterable(g["params"] for g in self.param_groups)))

        def cast(p: Tensor, key: Any, value: Any) -> Any:
            if isinstance(value, Tensor):
                if key == "step":
                    return update.clone_state(value)
                out = value.to(device=p.device, dtype=p.dtype if value.is_floating_point()
                               else None)
                return update.clone_state(out)
            if isinstance(value, dict):
                return {k: cast(p, k, v) for k, v in value.items()}
            return copy.deepcopy(value)

        self.state = defaultdict(dict)
        for k, v in state_dict["state"].items():
            if k in id_map:
                p = id_map[k]
                self.state[p] = cast(p, None, v)
        for ours, theirs in zip(self.param_groups, saved_groups):
            theirs["params"] = ours["params"]
            ours.clear()
            ours.update(theirs)

    def __repr__(self) -> str:
        s = type(self).__name__ + " ("
        for i, group in enumerate(self.param_groups):
            s += f"\nParameter Group {i}\n"
            for key in sorted(group):
                if key != "params":
                    s += f"    {key}: {group[key]}\n"
        return s + ")"
