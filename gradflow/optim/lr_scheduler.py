"""Learning-rate schedulers, as torch.optim.lr_scheduler, giving the same sequences.

A scheduler sets ``group['lr']`` for each of its optimizer's param groups. Construction
counts as step 0; each ``step()`` advances ``last_epoch`` by one. Most schedulers update the
rate recursively from the current one (``get_lr``), as PyTorch does, so they compose with
other schedulers acting on the same optimizer; ``step(epoch)`` uses the closed form where
there is one.
"""

from __future__ import annotations

import math
import numbers
import types
import warnings
from bisect import bisect_right
from collections import Counter
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from gradflow.ops.common import as_float, as_int, check_choice
from gradflow.optim.optimizer import Optimizer
from gradflow.tensor import Tensor


def _per_group(name: str, optimizer: Optimizer, value: Any, sched: str) -> List[Any]:
    """One number per param group: a list/tuple of the right length, or a number repeated."""
    if isinstance(value, (list, tuple)):
        if len(value) != len(optimizer.param_groups):
            raise ValueError(
                f"{sched}: {name} must have the same length as optimizer.param_groups. {name} "
                f"has {len(value)} values, param_groups has {len(optimizer.param_groups)}."
            )
        for v in value:
            as_float(v, sched, name)
        return list(value)
    as_float(value, sched, name)
    return [value] * len(optimizer.param_groups)


def _positive(value: Any, sched: str, arg: str, integer: bool = False) -> Any:
    """A number (an int when `integer`) > 0."""
    v = as_int(value, sched, arg) if integer else as_float(value, sched, arg)
    if not v > 0:
        raise ValueError(f"{sched}: {arg} must be positive, got {value}")
    return v


def _cosine_annealed(base: float, eta_min: float, t: float, period: float) -> float:
    """eta_min + (base - eta_min) (1 + cos(pi t / period)) / 2: base at t = 0, eta_min at
    t = period."""
    return eta_min + (base - eta_min) * (1 + math.cos(math.pi * t / period)) / 2


def _checked_optimizer(sched: str, optimizer: Any) -> Optimizer:
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"{sched}: {type(optimizer).__name__} is not an Optimizer")
    return optimizer


def _group_values(optimizer: Optimizer, key: str) -> List[Any]:
    return [group[key] for group in optimizer.param_groups]


class LRScheduler:
    """Base class: subclasses define get_lr() (recursive) and optionally
    _get_closed_form_lr().

    >>> opt = gf.optim.SGD([nn.Parameter(gf.zeros(1))], lr=1.0)
    >>> sched = gf.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    >>> isinstance(sched, gf.optim.lr_scheduler.LRScheduler), sched.get_last_lr()
    (True, [1.0])
    >>> opt.step()
    >>> sched.step()
    >>> sched.get_last_lr(), sched.state_dict()["last_epoch"]
    ([0.5], 1)
    """

    _is_initial: bool = False

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        self.optimizer = _checked_optimizer(type(self).__name__, optimizer)
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(f"param 'initial_lr' is not specified in param_groups[{i}] "
                                   "when resuming an optimizer")
        self.base_lrs: List[float] = _group_values(optimizer, "initial_lr")
        self.last_epoch = last_epoch
        self._initial_step()

    def _initial_step(self) -> None:
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def get_lr(self) -> List[float]:
        """The learning rates for the current last_epoch, one per param group (subclasses' rule)."""
        raise NotImplementedError

    def get_last_lr(self) -> List[float]:
        """The learning rates the last step() set."""
        return self._last_lr

    def step(self, epoch: Optional[int] = None) -> None:
        """Advance one epoch (or iteration) and set each group's lr; call it after
        optimizer.step()."""
        self._step_count += 1
        if epoch is not None:
            warnings.warn("The epoch parameter in `scheduler.step()` is deprecated; call "
                          "step() without it", UserWarning, stacklevel=2)
        self._update_lr(epoch)

    def _update_lr(self, epoch: Optional[int] = None) -> None:
        if epoch is None:
            self.last_epoch += 1
            values = self.get_lr()
        else:
            self.last_epoch = epoch
            closed = getattr(self, "_get_closed_form_lr", None)
            values = closed() if closed is not None else self.get_lr()
        self._set_lrs(values)

    def _set_lrs(self, values: Iterable[float]) -> None:
        """Each group's lr from `values`, and _last_lr read back from the groups."""
        for group, lr in zip(self.optimizer.param_groups, values):
            group["lr"] = lr
        self._last_lr = _group_values(self.optimizer, "lr")

    def state_dict(self) -> Dict[str, Any]:
        """The scheduler's attributes but the optimizer, for gradflow.save.

        >>> opt = gf.optim.SGD([nn.Parameter(gf.zeros(1))], lr=1.0)
        >>> sched = gf.optim.lr_scheduler.StepLR(opt, step_size=1)
        >>> state = sched.state_dict()
        >>> state["last_epoch"], "optimizer" in state
        (0, False)
        """
        return {k: v for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        """Restore what state_dict returned.

        >>> opt = gf.optim.SGD([nn.Parameter(gf.zeros(1))], lr=1.0)
        >>> sched = gf.optim.lr_scheduler.StepLR(opt, step_size=1)
        >>> sched.load_state_dict({**sched.state_dict(), "last_epoch": 7})
        >>> sched.last_epoch
        7
        """
        self.__dict__.update(state_dict)

    def _state_saving(self, key: str, saved: Any) -> Dict[str, Any]:
        """The base state_dict with attribute `key` (one that cannot be saved as is) stored as
        `saved`, last."""
        state = LRScheduler.state_dict(self)
        del state[key]
        state[key] = saved
        return state

    def _load_state_but(self, state_dict: Dict[str, Any], key: str) -> Any:
        """Load every entry but `key`, and return that one for the caller to restore."""
        state = dict(state_dict)
        saved = state.pop(key)
        self.__dict__.update(state)
        return saved


class LambdaLR(LRScheduler):
    """lr = base_lr * lr_lambda(epoch) (one function, or one per group).

    >>> opt = gf.optim.SGD([nn.Parameter(gf.zeros(1))], lr=1.0)
    >>> sched = gf.optim.lr_scheduler.LambdaLR(opt, lambda epoch: 1 / (epoch + 1))
    >>> lrs = []
    >>> for _ in range(3):
    ...     opt.step()
    ...     sched.step()
    ...     lrs.append(round(sched.get_last_lr()[0], 4))
    >>> lrs
    [0.5, 0.3333, 0.25]
    """

    def __init__(self, optimizer: Optimizer,
                 lr_lambda: Union[Callable[[int], float], Sequence[Callable[[int], float]]],
                 last_epoch: int = -1) -> None:
        self.optimizer = _checked_optimizer("LambdaLR", optimizer)
        if isinstance(lr_lambda, (list, tuple)):
            if len(lr_lambda) != len(optimizer.param_groups):
                raise ValueError(f"LambdaLR: Expected {len(optimizer.param_groups)} "
                                 f"lr_lambdas, but got {len(lr_lambda)}")
            self.lr_lambdas = list(lr_lambda)
        else:
            self.lr_lambdas = [lr_lambda] * len(optimizer.param_groups)
        for fn in self.lr_lambdas:
            if not callable(fn):
                raise TypeError(f"LambdaLR: lr_lambda must be a function of the epoch (or a "
                                f"list of them), got {type(fn).__name__}")
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> List[float]:
        return [base * self._factor(fn) for fn, base in zip(self.lr_lambdas, self.base_lrs)]

    def _factor(self, fn: Callable[[int], float]) -> float:
        factor = fn(self.last_epoch)
        if not isinstance(factor, numbers.Real):
            raise TypeError(f"LambdaLR: lr_lambda({self.last_epoch}) returned "
                            f"{type(factor).__name__}, expected a number")
        return factor

    def state_dict(self) -> Dict[str, Any]:
        """Functions are not saved; callable objects' attributes are."""
        return self._state_saving("lr_lambdas", [
            None if isinstance(fn, types.FunctionType) else dict(fn.__dict__)
            for fn in self.lr_lambdas])

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        lambdas = self._load_state_but(state_dict, "lr_lambdas")
        for fn, saved in zip(self.lr_lambdas, lambdas):
            if saved is not None:
                fn.__dict__.update(saved)


class StepLR(LRScheduler):
    """lr *= gamma every step_size epochs.

    >>> opt = gf.optim.SGD([nn.Parameter(gf.zeros(1))], lr=1.0)
    >>> sched = gf.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    >>> lrs = []
    >>> for _ in range(4):
    ...     opt.step()
    ...     sched.step()
    ...     lrs.append(sched.get_last_lr()[0])
    >>> lrs
    [1.0, 0.5, 0.5, 0.25]
    """

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1,
                 last_epoch: int = -1) -> None:
        self.step_size = _positive(step_size, "StepLR", "step_size", integer=True)
        self.gamma = as_float(gamma, "StepLR", "gamma")
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> List[float]:
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return _group_values(self.optimizer, "lr")
        return [g["lr"] * self.gamma for g in self.optimizer.param_groups]

    def _get_closed_form_lr(self) -> List[float]:
        return [b * self.gamma ** (self.last_epoch // self.step_size) for b in self.base_lrs]


class MultiStepLR(LRScheduler):
    """lr *= gamma at each milestone (repeated milestones multiply again).

    >>> opt = gf.optim.SGD([nn.Parameter(gf.zeros(1))], lr=1.0)
    >>> sched = gf.optim.lr_scheduler.MultiStepLR(opt, milestones=[1, 3], gamma=0.1)
    >>> lrs = []
    >>> for _ in range(4):
    ...     opt.step()
    ...     sched.step()
    ...     lrs.append(round(sched.get_last_lr()[0], 4))
    >>> lrs
    [0.1, 0.1, 0.01, 0.01]
    """

    def __init__(self, optimizer: Optimizer, milestones: Iterable[int], gamma: float = 0.1,
                 last_epoch: int = -1) -> None:
        if isinstance(milestones, (str, bytes, Tensor)) or not hasattr(milestones, "__iter__"):
            raise TypeError(f"MultiStepLR: milestones must be a list of ints, got "
                            f"{type(milestones).__name__}")
        self.milestones = Counter(as_int(m, "MultiStepLR", "milestones") for m in milestones)
        self.gamma = as_float(gamma, "MultiStepLR", "gamma")
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> List[float]:
        if self.last_epoch not in self.milestones:
            return _group_values(self.optimizer, "lr")
        k = self.milestones[self.last_epoch]
        return [g["lr"] * self.gamma**k for g in self.optimizer.param_groups]

    def _get_closed_form_lr(self) -> List[float]:
        milestones = sorted(self.milestones.elements())
        return [b * self.gamma ** bisect_right(milestones, self.last_epoch)
                for b in self.base_lrs]


class ExponentialLR(LRScheduler):
    """lr *= gamma every epoch.

    >>> opt = gf.optim.SGD([nn.Parameter(gf.zeros(1))], lr=1.0)
    >>> sched = gf.optim.lr_scheduler.ExponentialLR(opt, gamma=0.5)
    >>> lrs = []
    >>> for _ in range(3):
    ...     opt.step()
    ...     sched.step()
    ...     lrs.append(sched.get_last_lr()[0])
    >>> lrs
    [0.5, 0.25, 0.125]
    """

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1) -> None:
        self.gamma = as_float(gamma, "ExponentialLR", "gamma")
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> List[float]:
        if self._is_initial:
            return _group_values(self.optimizer, "lr")
        return [g["lr"] * self.gamma for g in self.optimizer.param_groups]

    def _get_closed_form_lr(self) -> List[float]:
        return [b * self.gamma**self.last_epoch for b in self.base_lrs]


class LinearLR(LRScheduler):
    """The factor on base_lr moves linearly from start_factor to end_factor over total_iters
    epochs, then stays.

    >>> opt = gf.optim.SGD([nn.Parameter(gf.zeros(1))], lr=1.0)
    >>> sched = gf.optim.lr_scheduler.LinearLR(opt, start_factor=0.25, total_iters=3)
    >>> lrs = [sched.get_last_lr()[0]]
    >>> for _ in range(4):
    ...     opt.step()
    ...     sched.step()
    ...     lrs.append(round(sched.get_last_lr()[0], 4))
    >>> lrs
    [0.25, 0.5, 0.75, 1.0, 1.0]
    """

    def __init__(self, optimizer: Optimizer, start_factor: float = 1.0 / 3,
                 end_factor: float = 1.0, total_iters: int = 5, last_epoch: int = -1) -> None:
        if not 0 < as_float(start_factor, "LinearLR", "start_factor") <= 1.0:
            raise ValueError("LinearLR: Starting multiplicative factor expected to be greater "
                             f"than 0 and less or equal to 1, got start_factor={start_factor}")
        if not 0 <= as_float(end_factor, "LinearLR", "end_factor") <= 1.0:
            raise ValueError("LinearLR: Ending multiplicative factor expected to be between 0 "
                             f"and 1, got end_factor={end_factor}")
        self.start_factor = start_factor
        self.end_factor = end_factor
        self.total_iters = _positive(total_iters, "LinearLR", "total_iters", integer=True)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> List[float]:
        if self.last_epoch == 0:
            return [g["lr"] * self.start_factor for g in self.optimizer.param_groups]
        if self._is_initial or self.last_epoch > self.total_iters:
            return _group_values(self.optimizer, "lr")
        span = self.end_factor - self.start_factor
        ratio = 1.0 + span / (self.total_iters * self.start_factor
                              + (self.last_epoch - 1) * span)
        return [g["lr"] * ratio for g in self.optimizer.param_groups]

    def _get_closed_form_lr(self) -> List[float]:
        span = self.end_factor - self.start_factor
        return [b * (self.start_factor + span * min(self.total_iters, self.last_epoch)
                     / self.total_iters) for b in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """lr = eta_min + (base_lr - eta_min) (1 + cos(pi epoch / T_max)) / 2, computed
    recursively from the current lr as PyTorch does (and periodic past T_max).

    >>> opt = gf.optim.SGD([nn.Parameter(gf.zeros(1))], lr=1.0)
    >>> sched = gf.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=4)
    >>> lrs = []
    >>> for _ in range(4):
    ...     opt.step()
    ...     sched.step()
    ...     lrs.append(round(sched.get_last_lr()[0], 4))
    >>> lrs
    [0.8536, 0.5, 0.1464, 0.0]
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0,
                 last_epoch: int = -1) -> None:
        self.T_max = _positive(T_max, "CosineAnnealingLR", "T_max")
        self.eta_min = as_float(eta_min, "CosineAnnealingLR", "eta_min")
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> List[float]:
        groups = self.optimizer.param_groups
        if self._is_initial:
            return _group_values(self.optimizer, "lr")
        if self._step_count == 1 and self.last_epoch > 0:
            return self._get_closed_form_lr()
        if (self.last_epoch - 1 - self.T_max) % (2 * self.T_max) == 0:
            return [g["lr"] + (b - self.eta_min) * (1 - math.cos(math.pi / self.T_max)) / 2
                    for b, g in zip(self.base_lrs, groups)]
        ratio = ((1 + math.cos(math.pi * self.last_epoch / self.T_max))
                 / (1 + math.cos(math.pi * (self.last_epoch - 1) / self.T_max)))
        return [ratio * (g["lr"] - self.eta_min) + self.eta_min for g in groups]

    def _get_closed_form_lr(self) -> List[float]:
        return [_cosine_annealed(b, self.eta_min, self.last_epoch, self.T_max)
                for b in self.base_lrs]


class CosineAnnealingWarmRestarts(LRScheduler):
    """SGDR: cosine annealing restarted every T_i epochs, T_0 first, each period T_mult times
    the one before: lr = eta_min + (base_lr - eta_min) (1 + cos(pi T_cur / T_i)) / 2, with
    T_cur the epochs since the last restart.

    ``step()`` advances one epoch; ``step(epoch)`` jumps to `epoch`, which may be fractional
    (``step(epoch + i / iters)`` after each batch), without the deprecation warning of the
    other schedulers, as in PyTorch.

    Example::

        >>> import gradflow as gf
        >>> opt = gf.optim.SGD([gf.zeros(1, requires_grad=True)], lr=1.0)
        >>> sched = gf.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=2)
        >>> lrs = []
        >>> for _ in range(4):
        ...     sched.step()
        ...     lrs.append(round(sched.get_last_lr()[0], 2))
        >>> lrs
        [0.5, 1.0, 0.5, 1.0]
    """

    def __init__(self, optimizer: Optimizer, T_0: int, T_mult: int = 1, eta_min: float = 0.0,
                 last_epoch: int = -1) -> None:
        op = "CosineAnnealingWarmRestarts"
        if isinstance(T_0, bool) or not isinstance(T_0, int) or T_0 <= 0:
            raise ValueError(f"{op}: Expected positive integer T_0, but got {T_0!r}")
        if isinstance(T_mult, bool) or not isinstance(T_mult, int) or T_mult < 1:
            raise ValueError(f"{op}: Expected integer T_mult >= 1, but got {T_mult!r}")
        self.T_0 = T_0
        self.T_i = T_0
        self.T_mult = T_mult
        self.eta_min = as_float(eta_min, op, "eta_min")
        self.T_cur = last_epoch
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> List[float]:
        return [_cosine_annealed(b, self.eta_min, self.T_cur, self.T_i) for b in self.base_lrs]

    def step(self, epoch: Optional[float] = None) -> None:
        """Advance one epoch, or go to `epoch` (a number >= 0, fractional allowed)."""
        self._step_count += 1
        if epoch is None and self.last_epoch < 0:
            epoch = 0
        if epoch is None:
            epoch = self.last_epoch + 1
            self.T_cur += 1
            if self.T_cur >= self.T_i:
                self.T_cur %= self.T_i
                self.T_i *= self.T_mult
        else:
            epoch = as_float(epoch, "CosineAnnealingWarmRestarts.step", "epoch")
            self._jump_to(epoch)
        self.last_epoch = math.floor(epoch)
        self._set_lrs(self.get_lr())

    def _jump_to(self, epoch: float) -> None:
        """T_cur and T_i at `epoch`: the restarts before it are at T_0 (T_mult^n - 1) /
        (T_mult - 1), n = 1, 2, ... (every T_0 epochs when T_mult is 1)."""
        if epoch < 0:
            raise ValueError(f"CosineAnnealingWarmRestarts.step: Expected non-negative epoch, "
                             f"but got {epoch}")
        if epoch < self.T_0:
            self.T_i, self.T_cur = self.T_0, epoch
        elif self.T_mult == 1:
            self.T_cur = epoch % self.T_0
        else:
            n = int(math.log(epoch / self.T_0 * (self.T_mult - 1) + 1, self.T_mult))
            self.T_cur = epoch - self.T_0 * (self.T_mult**n - 1) / (self.T_mult - 1)
            self.T_i = self.T_0 * self.T_mult**n


class CyclicLR(LRScheduler):
    """Cycles lr between base_lr and max_lr (triangular, triangular2, exp_range or a custom
    scale_fn) and, with cycle_momentum, momentum inversely between max and base momentum.
    Meant to be stepped every batch.

    >>> opt = gf.optim.SGD([nn.Parameter(gf.zeros(1))], lr=1.0, momentum=0.9)
    >>> sched = gf.optim.lr_scheduler.CyclicLR(opt, base_lr=0.1, max_lr=0.5, step_size_up=2)
    >>> lrs = [round(sched.get_last_lr()[0], 4)]
    >>> for _ in range(4):
    ...     opt.step()
    ...     sched.step()
    ...     lrs.append(round(sched.get_last_lr()[0], 4))
    >>> lrs
    [0.1, 0.3, 0.5, 0.3, 0.1]
    """

    def __init__(self, optimizer: Optimizer, base_lr: Union[float, List[float]],
                 max_lr: Union[float, List[float]], step_size_up: int = 2000,
                 step_size_down: Optional[int] = None, mode: str = "triangular",
                 gamma: float = 1.0, scale_fn: Optional[Callable[[float], float]] = None,
                 scale_mode: str = "cycle", cycle_momentum: bool = True,
                 base_momentum: float = 0.8, max_momentum: float = 0.9,
                 last_epoch: int = -1) -> None:
        self.optimizer = _checked_optimizer("CyclicLR", optimizer)
        base_lrs = _per_group("base_lr", optimizer, base_lr, "CyclicLR")
        if last_epoch == -1:
            for lr, group in zip(base_lrs, optimizer.param_groups):
                group["lr"] = lr
        self.max_lrs = _per_group("max_lr", optimizer, max_lr, "CyclicLR")
        up = float(_positive(step_size_up, "CyclicLR", "step_size_up"))
        down = up if step_size_down is None else float(
            _positive(step_size_down, "CyclicLR", "step_size_down"))
        self.total_size = up + down
        self.step_ratio = up / self.total_size
        scale_mode = _cyclic_scale_mode(mode, scale_fn, scale_mode)
        self.mode = mode
        self.gamma = gamma
        self._scale_fn_custom = scale_fn
        self.scale_mode = scale_mode
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            self.use_beta1, self.base_momentums, self.max_momentums = _start_momentum_cycle(
                "CyclicLR", optimizer, base_momentum, max_momentum, last_epoch)
        super().__init__(optimizer, last_epoch)
        self.base_lrs = base_lrs

    def scale_fn(self, x: float) -> float:
        if self._scale_fn_custom is not None:
            return self._scale_fn_custom(x)
        if self.mode == "triangular":
            return 1.0
        if self.mode == "triangular2":
            return 1 / (2.0 ** (x - 1))
        return self.gamma**x

    def get_lr(self) -> List[float]:
        cycle = math.floor(1 + self.last_epoch / self.total_size)
        x = 1.0 + self.last_epoch / self.total_size - cycle
        if x <= self.step_ratio:
            scale_factor = x / self.step_ratio
        else:
            scale_factor = (x - 1) / (self.step_ratio - 1)
        scale = self.scale_fn(cycle if self.scale_mode == "cycle" else self.last_epoch)
        lrs = [b + (m - b) * scale_factor * scale for b, m in zip(self.base_lrs, self.max_lrs)]
        if self.cycle_momentum:
            for group, m_base, m_max in zip(self.optimizer.param_groups, self.base_momentums,
                                            self.max_momentums):
                _set_momentum(group, m_max - (m_max - m_base) * scale_factor * scale,
                              self.use_beta1)
        return lrs

    def state_dict(self) -> Dict[str, Any]:
        fn = self._scale_fn_custom
        return self._state_saving("_scale_fn_custom", (
            None if fn is None or isinstance(fn, types.FunctionType) else dict(fn.__dict__)))

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        fn = self._load_state_but(state_dict, "_scale_fn_custom")
        if fn is not None:
            self._scale_fn_custom.__dict__.update(fn)


def _set_momentum(group: Dict[str, Any], momentum: float, use_beta1: bool) -> None:
    if use_beta1:
        group["betas"] = (momentum, *group["betas"][1:])
    else:
        group["momentum"] = momentum


def _cyclic_scale_mode(mode: str, scale_fn: Optional[Callable[[float], float]],
                       scale_mode: str) -> str:
    """CyclicLR's scale_mode: the one given with a custom scale_fn, else the mode's own
    ('iterations' for exp_range, 'cycle' for the triangular modes)."""
    if scale_fn is None:
        check_choice(mode, "CyclicLR", "mode (without scale_fn)",
                     ("triangular", "triangular2", "exp_range"))
        return "iterations" if mode == "exp_range" else "cycle"
    if not callable(scale_fn):
        raise TypeError(f"CyclicLR: scale_fn must be a function, got {type(scale_fn).__name__}")
    return scale_mode


def _start_momentum_cycle(sched: str, optimizer: Optimizer, base_momentum: Any,
                          max_momentum: Any, last_epoch: int) -> Tuple[bool, List, List]:
    """For cycle_momentum (CyclicLR, OneCycleLR): whether the momentum cycled is beta1 (the
    Adam family) or 'momentum', and the base and max momentum of each group; a fresh start
    (last_epoch -1) sets each group's momentum to its max and records both in the group."""
    if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
        raise ValueError(f"{sched}: optimizer must support momentum or beta1 with "
                         "`cycle_momentum` option enabled")
    use_beta1 = "betas" in optimizer.defaults
    bases = _per_group("base_momentum", optimizer, base_momentum, sched)
    maxes = _per_group("max_momentum", optimizer, max_momentum, sched)
    if last_epoch == -1:
        for m_max, m_base, group in zip(maxes, bases, optimizer.param_groups):
            _set_momentum(group, m_max, use_beta1)
            group["max_momentum"] = m_max
            group["base_momentum"] = m_base
    return use_beta1, bases, maxes


def _one_cycle_total_steps(op: str, total_steps: Optional[int], epochs: Optional[int],
                           steps_per_epoch: Optional[int]) -> int:
    if total_steps is not None:
        if not isinstance(total_steps, int) or total_steps <= 0:
            raise ValueError(f"{op}: Expected positive integer total_steps, but got "
                             f"{total_steps}")
        return total_steps
    if epochs is not None and steps_per_epoch is not None:
        if not isinstance(epochs, int) or epochs <= 0:
            raise ValueError(f"{op}: Expected positive integer epochs, but got {epochs}")
        if not isinstance(steps_per_epoch, int) or steps_per_epoch <= 0:
            raise ValueError(f"{op}: Expected positive integer steps_per_epoch, but got "
                             f"{steps_per_epoch}")
        return epochs * steps_per_epoch
    raise ValueError(f"{op}: You must define either total_steps OR (epochs AND "
                     "steps_per_epoch)")


def _one_cycle_phases(n: int, pct_start: float, three_phase: bool) -> list:
    """Each phase: (its last step, lr start key, lr end key, momentum start key, end key)."""
    if three_phase:
        return [
            (float(pct_start * n) - 1, "initial_lr", "max_lr", "max_momentum",
             "base_momentum"),
            (float(2 * pct_start * n) - 2, "max_lr", "initial_lr", "base_momentum",
             "max_momentum"),
            (n - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum"),
        ]
    return [
        (float(pct_start * n) - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
        (n - 1, "max_lr", "min_lr", "base_momentum", "max_momentum"),
    ]


class OneCycleLR(LRScheduler):
    """The 1cycle policy: lr warms from max_lr/div_factor up to max_lr over pct_start of
    total_steps, then anneals to initial_lr/final_div_factor (cos or linear); momentum moves
    the opposite way. three_phase adds a symmetric way down before the final annealing.

    >>> opt = gf.optim.SGD([nn.Parameter(gf.zeros(1))], lr=1.0, momentum=0.9)
    >>> sched = gf.optim.lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=4)
    >>> lrs = [round(sched.get_last_lr()[0], 4)]
    >>> for _ in range(3):
    ...     opt.step()
    ...     sched.step()
    ...     lrs.append(round(sched.get_last_lr()[0], 4))
    >>> lrs
    [0.04, 0.8117, 0.2831, 0.0]
    """

    def __init__(self, optimizer: Optimizer, max_lr: Union[float, List[float]],
                 total_steps: Optional[int] = None, epochs: Optional[int] = None,
                 steps_per_epoch: Optional[int] = None, pct_start: float = 0.3,
                 anneal_strategy: str = "cos", cycle_momentum: bool = True,
                 base_momentum: Union[float, List[float]] = 0.85,
                 max_momentum: Union[float, List[float]] = 0.95, div_factor: float = 25.0,
                 final_div_factor: float = 1e4, three_phase: bool = False,
                 last_epoch: int = -1) -> None:
        op = "OneCycleLR"
        self.optimizer = _checked_optimizer(op, optimizer)
        self.total_steps = _one_cycle_total_steps(op, total_steps, epochs, steps_per_epoch)
        if not isinstance(pct_start, float) or not 0 <= pct_start <= 1:
            raise ValueError(f"{op}: Expected float between 0 and 1 pct_start, but got "
                             f"{pct_start}")
        check_choice(anneal_strategy, op, "anneal_strategy", ("cos", "linear"))
        _positive(div_factor, op, "div_factor")
        _positive(final_div_factor, op, "final_div_factor")
        self.anneal_strategy = anneal_strategy
        self._phases = _one_cycle_phases(self.total_steps, pct_start, three_phase)
        max_lrs = _per_group("max_lr", optimizer, max_lr, op)
        if last_epoch == -1:
            for m, group in zip(max_lrs, optimizer.param_groups):
                group["initial_lr"] = m / div_factor
                group["max_lr"] = m
                group["min_lr"] = group["initial_lr"] / final_div_factor
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            self.use_beta1 = _start_momentum_cycle(op, optimizer, base_momentum, max_momentum,
                                                   last_epoch)[0]
        super().__init__(optimizer, last_epoch)

    def _anneal(self, start: float, end: float, pct: float) -> float:
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def get_lr(self) -> List[float]:
        step = self.last_epoch
        if step > self.total_steps:
            raise ValueError(f"OneCycleLR: Tried to step {step} times. The specified number of "
                             f"total steps is {self.total_steps}")
        lrs = []
        for group in self.optimizer.param_groups:
            start = 0.0
            for i, (end, lr0, lr1, m0, m1) in enumerate(self._phases):
                if step <= end or i == len(self._phases) - 1:
                    pct = (step - start) / (end - start)
                    lrs.append(self._anneal(group[lr0], group[lr1], pct))
                    if self.cycle_momentum:
                        _set_momentum(group, self._anneal(group[m0], group[m1], pct),
                                      self.use_beta1)
                    break
                start = end
        return lrs


class SequentialLR(LRScheduler):
    """Runs schedulers[i] between milestones[i-1] and milestones[i]; at a milestone the next
    scheduler restarts from its epoch 0.

    >>> opt = gf.optim.SGD([nn.Parameter(gf.zeros(1))], lr=1.0)
    >>> warmup = gf.optim.lr_scheduler.LinearLR(opt, start_factor=0.5, total_iters=2)
    >>> decay = gf.optim.lr_scheduler.ExponentialLR(opt, gamma=0.5)
    >>> sched = gf.optim.lr_scheduler.SequentialLR(opt, [warmup, decay], milestones=[2])
    >>> lrs = [sched.get_last_lr()[0]]
    >>> for _ in range(4):
    ...     opt.step()
    ...     sched.step()
    ...     lrs.append(round(sched.get_last_lr()[0], 4))
    >>> lrs
    [0.5, 0.75, 1.0, 0.5, 0.25]
    """

    def __init__(self, optimizer: Optimizer, schedulers: List[LRScheduler],
                 milestones: List[int], last_epoch: int = -1) -> None:
        if len(schedulers) < 1:
            raise ValueError("SequentialLR expects at least one scheduler, but got no scheduler.")
        for i, s in enumerate(schedulers):
            if isinstance(s, ReduceLROnPlateau):
                raise ValueError("SequentialLR does not support `ReduceLROnPlateau` scheduler "
                                 f"(at index {i})")
            if s.optimizer is not optimizer:
                raise ValueError("SequentialLR expects all schedulers to belong to the same "
                                 f"optimizer, but scheduler at index {i} does not")
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(
                "Sequential Schedulers expects number of schedulers provided to be one more than "
                f"the number of milestone points, but got number of schedulers "
                f"{len(schedulers)} and the number of milestones to be equal to "
                f"{len(milestones)}"
            )
        self._schedulers = schedulers
        self._milestones = milestones
        self.last_epoch = last_epoch + 1
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"]
        for s in schedulers:  # undo the initial step each scheduler took when constructed
            s.last_epoch -= 1
        idx = bisect_right(milestones, 0)
        schedulers[idx]._initial_step()
        self._last_lr = schedulers[idx].get_last_lr()

    def step(self) -> None:  # type: ignore[override]
        self.last_epoch += 1
        idx = bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[idx]
        if idx > 0 and self._milestones[idx - 1] == self.last_epoch:
            scheduler._update_lr(0)
        else:
            scheduler.step()
        self._last_lr = scheduler.get_last_lr()

    def state_dict(self) -> Dict[str, Any]:
        return self._state_saving("_schedulers", [s.state_dict() for s in self._schedulers])

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        saved = self._load_state_but(state_dict, "_schedulers")
        for s, sd in zip(self._schedulers, saved):
            s.load_state_dict(sd)


class ReduceLROnPlateau(LRScheduler):
    """Multiply lr by factor (not below min_lr) once the metric passed to step(metric) has
    not improved (by threshold, 'rel' or 'abs') for more than patience epochs; then wait
    cooldown epochs before counting again.

    >>> opt = gf.optim.SGD([nn.Parameter(gf.zeros(1))], lr=1.0)
    >>> sched = gf.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=1)
    >>> lrs = []
    >>> for val_loss in [1.0, 0.9, 0.9, 0.9, 0.9]:
    ...     opt.step()
    ...     sched.step(val_loss)
    ...     lrs.append(opt.param_groups[0]["lr"])
    >>> lrs
    [1.0, 1.0, 1.0, 0.5, 0.5]
    """

    def __init__(self, optimizer: Optimizer, mode: str = "min", factor: float = 0.1,
                 patience: int = 10, threshold: float = 1e-4, threshold_mode: str = "rel",
                 cooldown: int = 0, min_lr: Union[float, List[float]] = 0,
                 eps: float = 1e-8) -> None:
        op = "ReduceLROnPlateau"
        if as_float(factor, op, "factor") >= 1.0:
            raise ValueError(f"{op}: Factor should be < 1.0, got factor={factor}")
        _checked_optimizer(op, optimizer)
        check_choice(mode, op, "mode", ("min", "max"))
        check_choice(threshold_mode, op, "threshold_mode", ("rel", "abs"))
        for arg, v in (("patience", patience), ("cooldown", cooldown)):
            if as_int(v, op, arg) < 0:
                raise ValueError(f"{op}: {arg} must be >= 0, got {v}")
        as_float(threshold, op, "threshold")
        as_float(eps, op, "eps")
        self.factor = factor
        self.optimizer = optimizer
        if isinstance(min_lr, (list, tuple)):
            if len(min_lr) != len(optimizer.param_groups):
                raise ValueError(f"{op}: expected {len(optimizer.param_groups)} min_lrs, got "
                                 f"{len(min_lr)}")
            self.default_min_lr = None
            self.min_lrs = [as_float(v, op, "min_lr") for v in min_lr]
        else:
            as_float(min_lr, op, "min_lr")
            self.default_min_lr = min_lr
            self.min_lrs = [min_lr] * len(optimizer.param_groups)
        self.patience = patience
        self.cooldown = cooldown
        self.eps = eps
        self.last_epoch = 0
        self._last_lr = _group_values(optimizer, "lr")
        self.mode = mode
        self.threshold = threshold
        self.threshold_mode = threshold_mode
        self.mode_worse = math.inf if mode == "min" else -math.inf
        self.best = self.mode_worse
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    def _is_better(self, a: float, best: float) -> bool:
        if self.mode == "min":
            return a < (best * (1.0 - self.threshold) if self.threshold_mode == "rel"
                        else best - self.threshold)
        return a > (best * (self.threshold + 1.0) if self.threshold_mode == "rel"
                    else best + self.threshold)

    def step(self, metrics: Any, epoch: Optional[int] = None) -> None:  # type: ignore[override]
        current = as_float(metrics, "ReduceLROnPlateau.step", "metrics")
        self.last_epoch = self.last_epoch + 1 if epoch is None else epoch
        if self._is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            self._reduce_lr()
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = _group_values(self.optimizer, "lr")

    def _reduce_lr(self) -> None:
        if len(self.optimizer.param_groups) != len(self.min_lrs):
            if self.default_min_lr is None:
                raise RuntimeError("ReduceLROnPlateau: The number of param groups in the "
                                   "optimizer differs from when ReduceLROnPlateau was "
                                   "initialized; set min_lrs to match")
            self.min_lrs = [self.default_min_lr] * len(self.optimizer.param_groups)
        for i, group in enumerate(self.optimizer.param_groups):
            old = float(group["lr"])
            new = max(old * self.factor, self.min_lrs[i])
            if old - new > self.eps:
                group["lr"] = new

    @property
    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0


_LRScheduler = LRScheduler  # the pre-2.0 PyTorch name
