"""L-BFGS: a quasi-Newton method from the last few gradient differences, with an optional
strong-Wolfe line search (Nocedal & Wright, Numerical Optimization, algorithms 7.4 and 3.5-3.6).

All parameters are handled as one flat vector x (their values concatenated in order); the
gradient g is flattened the same way. Scalars (dot products, step sizes, losses) are Python
floats; the vectors are Tensors of the parameters' dtype and device.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, List, NamedTuple, Optional, Tuple

import gradflow
from gradflow.autograd import no_grad
from gradflow.ops.common import as_int
from gradflow.ops.update import add_
from gradflow.optim.optimizer import Optimizer, check_option
from gradflow.tensor import Tensor

Closure = Callable[[], Any]


def _abs_max(v: Tensor) -> float:
    return v.abs().max().item()


def _dot(a: Tensor, b: Tensor) -> float:
    return a.dot(b).item()


def _cubic_interpolate(x1: float, f1: float, g1: float, x2: float, f2: float, g2: float,
                       bounds: Optional[Tuple[float, float]] = None) -> float:
    """The minimiser of the cubic through (x1, f1) and (x2, f2) with slopes g1 and g2, clamped
    to `bounds` (default: between x1 and x2); their midpoint when the cubic has no minimum:
    d1 = g1 + g2 - 3 (f1 - f2) / (x1 - x2), d2 = sqrt(d1^2 - g1 g2),
    x = x2 - (x2 - x1) (g2 + d2 - d1) / (g2 - g1 + 2 d2) (for x1 <= x2)."""
    lo, hi = bounds if bounds is not None else (min(x1, x2), max(x1, x2))
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1**2 - g1 * g2
    if d2_square < 0:
        return (lo + hi) / 2.0
    d2 = d2_square**0.5
    if x1 <= x2:
        min_pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
    else:
        min_pos = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
    return min(max(min_pos, lo), hi)


class _Point(NamedTuple):
    """The objective along the search direction at step t: f(x + t d), its gradient g and the
    directional derivative gtd = g . d."""
    t: float
    f: float
    g: Tensor
    gtd: float


class _StrongWolfe:
    """Find a step t along d satisfying the strong Wolfe conditions
    f(x + t d) <= f(x) + c1 t g.d (sufficient decrease) and |g(x + t d).d| <= c2 |g.d|
    (curvature): first bracket such a step, growing t by cubic extrapolation, then zoom in on
    it by safeguarded cubic interpolation. At most max_ls evaluations after the first."""

    def __init__(self, evaluate: Callable[[float], _Point], start: _Point, d: Tensor,
                 c1: float = 1e-4, c2: float = 0.9, tolerance_change: float = 1e-9,
                 max_ls: int = 25) -> None:
        self.evaluate, self.start, self.c1, self.c2 = evaluate, start, c1, c2
        self.tolerance_change, self.max_ls = tolerance_change, max_ls
        self.d_norm = _abs_max(d)
        self.evals = 0
        self.iters = 0

    def _at(self, t: float) -> _Point:
        self.evals += 1
        return self.evaluate(t)

    def _too_high(self, p: _Point) -> bool:
        """Sufficient decrease fails (written so that a NaN loss does not fail it, as in
        PyTorch: the curvature test then decides)."""
        return p.f > self.start.f + self.c1 * p.t * self.start.gtd

    def _curvature_ok(self, p: _Point) -> bool:
        return abs(p.gtd) <= -self.c2 * self.start.gtd

    def search(self, t: float) -> _Point:
        """The accepted point (the best one found when no step satisfies the conditions)."""
        bracket, done = self._bracket(t)
        low = 0 if bracket[0].f <= bracket[-1].f else 1
        if not done:
            low = self._zoom(bracket, low)
        return bracket[low]

    def _bracket(self, t: float) -> Tuple[List[_Point], bool]:
        """An interval [prev, new] known to contain an acceptable step, or [new] when `new`
        is acceptable itself (done)."""
        prev, new = self.start._replace(t=0.0), self._at(t)
        while self.iters < self.max_ls:
            if self._too_high(new) or (self.iters > 1 and new.f >= prev.f):
                return [prev, new], False
            if self._curvature_ok(new):
                return [new], True
            if new.gtd >= 0:
                return [prev, new], False
            t = _cubic_interpolate(prev.t, prev.f, prev.gtd, new.t, new.f, new.gtd,
                                   bounds=(new.t + 0.01 * (new.t - prev.t), new.t * 10))
            prev, new = new, self._at(t)
            self.iters += 1
        return [self.start._replace(t=0.0), new], False

    def _zoom(self, bracket: List[_Point], low: int) -> int:
        """Shrink the bracket around an acceptable step; returns the index of its best end."""
        insufficient_progress = False
        while self.iters < self.max_ls:
            a, b = bracket
            if abs(b.t - a.t) * self.d_norm < self.tolerance_change:
                break
            t = _cubic_interpolate(a.t, a.f, a.gtd, b.t, b.f, b.gtd)
            t, insufficient_progress = _safeguard(t, a.t, b.t, insufficient_progress)
            new = self._at(t)
            self.iters += 1
            high = 1 - low
            if self._too_high(new) or new.f >= bracket[low].f:
                bracket[high] = new
                low = 0 if bracket[0].f <= bracket[1].f else 1
                continue
            done = self._curvature_ok(new)
            if not done and new.gtd * (bracket[high].t - bracket[low].t) >= 0:
                bracket[high] = bracket[low]
            bracket[low] = new
            if done:
                break
        return low


def _safeguard(t: float, a: float, b: float, insufficient_progress: bool) -> Tuple[float, bool]:
    """Keep an interpolated step away from the ends of [a, b]: within 10% of the width of an
    end it moves to that distance, if the previous step also made too little progress or t
    is at or past the end."""
    lo, hi = min(a, b), max(a, b)
    eps = 0.1 * (hi - lo)
    if min(hi - t, t - lo) >= eps:
        return t, False
    if insufficient_progress or t >= hi or t <= lo:
        return (hi - eps if abs(t - hi) < abs(t - lo) else lo + eps), False
    return t, True


class LBFGS(Optimizer):
    """Implements L-BFGS, as torch.optim.LBFGS (after minFunc).

    Each ``step(closure)`` runs up to `max_iter` iterations (at most `max_eval` evaluations
    of `closure`, default ``max_iter * 5 // 4``): the direction d = -H g from the last
    `history_size` pairs (s = step taken, y = change of gradient) by the two-loop recursion,
    then a step t along d: lr (``min(1, 1 / sum|g|) * lr`` on the very first iteration), or
    the strong-Wolfe line search with ``line_search_fn="strong_wolfe"``. It stops when
    max|g| <= tolerance_grad, or a step or the change of the loss is below tolerance_change.

    Only one parameter group, as in PyTorch; the parameters are real and on one device.
    `closure` must clear the gradients, compute the loss, call ``backward()`` and return the
    loss; step returns the loss of its first evaluation.

    Example::

        >>> import gradflow as gf
        >>> w = gf.nn.Parameter(gf.tensor([3.0, -2.0], dtype="float64"))
        >>> opt = gf.optim.LBFGS([w], line_search_fn="strong_wolfe")
        >>> def closure():
        ...     opt.zero_grad()
        ...     loss = ((w - 1) ** 2).sum()
        ...     loss.backward()
        ...     return loss
        >>> float(opt.step(closure))
        13.0
        >>> [round(v, 6) for v in w.tolist()]
        [1.0, 1.0]
    """

    def __init__(self, params: Iterable, lr: float = 1, max_iter: int = 20,
                 max_eval: Optional[int] = None, tolerance_grad: float = 1e-7,
                 tolerance_change: float = 1e-9, history_size: int = 100,
                 line_search_fn: Optional[str] = None) -> None:
        lr = check_option("LBFGS", "lr", lr, "learning rate")
        max_iter = _positive_int("max_iter", max_iter)
        max_eval = max_iter * 5 // 4 if max_eval is None else _positive_int("max_eval",
                                                                             max_eval)
        tolerance_grad = check_option("LBFGS", "tolerance_grad", tolerance_grad,
                                      "tolerance_grad value")
        tolerance_change = check_option("LBFGS", "tolerance_change", tolerance_change,
                                        "tolerance_change value")
        history_size = _positive_int("history_size", history_size)
        if line_search_fn not in (None, "strong_wolfe"):
            raise ValueError(f"LBFGS: line_search_fn must be None or 'strong_wolfe', got "
                             f"{line_search_fn!r}")
        super().__init__(params, dict(lr=lr, max_iter=max_iter, max_eval=max_eval,
                                      tolerance_grad=tolerance_grad,
                                      tolerance_change=tolerance_change,
                                      history_size=history_size, line_search_fn=line_search_fn))
        if len(self.param_groups) != 1:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")
        self._params: List[Tensor] = self.param_groups[0]["params"]

    def add_param_group(self, param_group: dict) -> None:
        if self.param_groups:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")
        super().add_param_group(param_group)

    # ---------------------------------------------------------------- the flat vector
    def _gather_flat_grad(self) -> Tensor:
        """g: the gradients concatenated (zeros for a parameter without one), a new tensor."""
        return gradflow.cat([p.grad.reshape(-1) if p.grad is not None
                             else gradflow.zeros(p.numel(), dtype=p.dtype, device=p.device)
                             for p in self._params])

    def _add_grad(self, t: float, d: Tensor) -> None:
        """x += t d."""
        offset = 0
        for p in self._params:
            n = p.numel()
            add_(p, d[offset:offset + n].reshape(p.shape), alpha=t)
            offset += n

    def _evaluate(self, closure: Closure) -> Any:
        loss = self._run_closure(closure)
        if loss is None:
            raise TypeError("LBFGS.step: the closure must return the loss, got None")
        return loss

    def _directional_evaluate(self, closure: Closure, x: List[Tensor], t: float,
                              d: Tensor) -> _Point:
        """The objective at x + t d (x: the parameters' values to come back to)."""
        self._add_grad(t, d)
        loss = float(self._evaluate(closure))
        g = self._gather_flat_grad()
        for p, saved in zip(self._params, x):
            p.copy_(saved)
        return _Point(t, loss, g, _dot(g, d))

    # ---------------------------------------------------------------- the algorithm
    def _direction(self, state: dict, g: Tensor, history_size: int) -> Tensor:
        """d = -H g by the two-loop recursion over the stored pairs (s_i, y_i),
        rho_i = 1 / (y_i . s_i), with H_0 = (y . s) / (y . y) of the newest pair; the pair of
        the last step joins the history if y . s > 1e-10 (the curvature condition)."""
        if state["n_iter"] == 1:
            state.update(old_dirs=[], old_stps=[], ro=[], H_diag=1.0)
            return -g
        y = g - state["prev_flat_grad"]
        s = state["d"] * state["t"]
        ys = _dot(y, s)
        old_dirs, old_stps, ro = state["old_dirs"], state["old_stps"], state["ro"]
        if ys > 1e-10:
            if len(old_dirs) == history_size:
                for history in (old_dirs, old_stps, ro):
                    history.pop(0)
            old_dirs.append(y)
            old_stps.append(s)
            ro.append(1.0 / ys)
            state["H_diag"] = ys / _dot(y, y)
        al = state.setdefault("al", [None] * history_size)
        q = -g
        for i in reversed(range(len(old_dirs))):
            al[i] = _dot(old_stps[i], q) * ro[i]
            q = q.add(old_dirs[i], alpha=-al[i])
        r = q * state["H_diag"]
        for i in range(len(old_dirs)):
            be_i = _dot(old_dirs[i], r) * ro[i]
            r = r.add(old_stps[i], alpha=al[i] - be_i)
        return r

    def _move(self, closure: Closure, start: _Point, d: Tensor, evals_left: int,
              last: bool) -> Tuple[_Point, int]:
        """Take the step along d (start.t: the initial step size); returns the new point and
        the number of closure evaluations it took."""
        group = self.param_groups[0]
        if group["line_search_fn"] == "strong_wolfe":
            x = [p.clone() for p in self._params]
            # PyTorch's line search keeps its own tolerance_change (1e-9), not the group's
            search = _StrongWolfe(lambda t: self._directional_evaluate(closure, x, t, d),
                                  start, d, max_ls=evals_left)
            found = search.search(start.t)
            self._add_grad(found.t, d)
            return found, search.evals
        self._add_grad(start.t, d)
        if last:  # the loss and gradient at the new point are not needed
            return start, 0
        loss = float(self._evaluate(closure))  # (gtd: computed with the next direction)
        return _Point(start.t, loss, self._gather_flat_grad(), 0.0), 1

    @no_grad()
    def step(self, closure: Closure) -> Any:  # type: ignore[override]
        """Run up to max_iter L-BFGS iterations; `closure` reevaluates the model and returns
        the loss. Returns the loss before the step."""
        if not callable(closure):
            raise TypeError("LBFGS.step: a closure that reevaluates the model and returns the "
                            f"loss is required, got {type(closure).__name__}")
        group = self.param_groups[0]
        state = self.state[self._params[0]]
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)
        orig_loss = self._evaluate(closure)
        state["func_evals"] += 1
        point = _Point(0.0, float(orig_loss), self._gather_flat_grad(), 0.0)
        if _abs_max(point.g) <= group["tolerance_grad"]:
            return orig_loss
        evals, tol = 1, group["tolerance_change"]
        for n_iter in range(1, group["max_iter"] + 1):
            state["n_iter"] += 1
            d = state["d"] = self._direction(state, point.g, group["history_size"])
            state["prev_flat_grad"], state["prev_loss"] = point.g, point.f
            t = group["lr"]
            if state["n_iter"] == 1:
                t *= min(1.0, 1.0 / point.g.abs().sum().item())
            state["t"] = t
            gtd = _dot(point.g, d)
            if gtd > -tol:
                break
            point, used = self._move(closure, _Point(t, point.f, point.g, gtd), d,
                                     group["max_eval"] - evals, n_iter == group["max_iter"])
            state["t"] = point.t
            evals += used
            state["func_evals"] += used
            if (n_iter == group["max_iter"] or evals >= group["max_eval"]
                    or _abs_max(point.g) <= group["tolerance_grad"]
                    or _abs_max(d) * abs(point.t) <= tol
                    or abs(point.f - state["prev_loss"]) < tol):
                break
        return orig_loss


def _positive_int(name: str, value: Any) -> int:
    v = as_int(value, "LBFGS", name)
    if v <= 0:
        raise ValueError(f"LBFGS: {name} must be a positive integer, got {value!r}")
    return v
