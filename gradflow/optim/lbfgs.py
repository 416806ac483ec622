"""L-BFGS (Nocedal & Wright, Numerical Optimization, algorithms 7.4 and 3.5/3.6), as
torch.optim.LBFGS: every parameter is one flat vector x; each step(closure) runs up to
max_iter quasi-Newton iterations, each along d = -H g, where H, the inverse-Hessian estimate,
is applied by the two-loop recursion over the last history_size pairs s = x_{k+1} - x_k,
y = g_{k+1} - g_k (pairs with y.s <= 1e-10 are skipped), scaled by y.s / y.y. The step
along d is lr (the first iteration min(1, 1 / |g|_1) lr), or found by a line search meeting
the strong Wolfe conditions (line_search_fn='strong_wolfe'): bracketing, then zooming with
safeguarded cubic interpolation.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterable, List, NamedTuple, Optional, Tuple

from gradflow.autograd import enable_grad, no_grad
from gradflow.ops.shape import cat
from gradflow.ops.update import add_, detached_copy
from gradflow.optim.optimizer import Optimizer, check_option
from gradflow.tensor import Tensor, zeros_like


class _Point(NamedTuple):
    """A trial step t along d: the loss f and flat gradient g there, and gtd = g.d."""
    t: float
    f: float
    g: Tensor
    gtd: float


def _cubic_interpolate(x1: float, f1: float, g1: float, x2: float, f2: float, g2: float,
                       bounds: Optional[Tuple[float, float]] = None) -> float:
    """The minimiser of the cubic through (x1, f1) and (x2, f2) with slopes g1, g2, clipped
    to bounds (default: between x1 and x2); the bounds' midpoint when the cubic has none."""
    lo, hi = bounds if bounds is not None else (min(x1, x2), max(x1, x2))
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1 * d1 - g1 * g2
    if d2_square < 0:
        return (lo + hi) / 2.0
    d2 = math.sqrt(d2_square)
    if x1 <= x2:
        t = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
    else:
        t = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
    return min(max(t, lo), hi)


class _LineSearch:
    """One strong-Wolfe search from x along d: f(x + t d) <= f + c1 t g.d (sufficient
    decrease) and |g(x + t d).d| <= c2 |g.d| (curvature)."""

    def __init__(self, evaluate: Callable[[float], Tuple[float, Tensor]], d: Tensor,
                 start: _Point, c1: float = 1e-4, c2: float = 0.9,
                 tolerance_change: float = 1e-9, max_ls: int = 25) -> None:
        self._evaluate, self.d, self.start = evaluate, d, start
        self.c1, self.c2, self.tolerance_change, self.max_ls = c1, c2, tolerance_change, max_ls
        self.evals = 0
        self.iters = 0

    def point(self, t: float) -> _Point:
        f, g = self._evaluate(t)
        self.evals += 1
        return _Point(t, f, g, float(g.dot(self.d)))

    def _decreases(self, p: _Point) -> bool:
        return p.f <= self.start.f + self.c1 * p.t * self.start.gtd

    def _flat_enough(self, p: _Point) -> bool:
        return abs(p.gtd) <= -self.c2 * self.start.gtd

    def bracket(self, t: float) -> Tuple[List[_Point], bool]:
        """Grow t until [previous, t] brackets acceptable steps; ([t], True) when t itself
        meets both conditions."""
        prev, new = self.start._replace(t=0.0), self.point(t)
        while self.iters < self.max_ls:
            if not self._decreases(new) or (self.iters > 1 and new.f >= prev.f):
                return [prev, new], False
            if self._flat_enough(new):
                return [new], True
            if new.gtd >= 0:
                return [prev, new], False
            bounds = (new.t + 0.01 * (new.t - prev.t), new.t * 10)
            t = _cubic_interpolate(prev.t, prev.f, prev.gtd, new.t, new.f, new.gtd, bounds)
            prev, new = new, self.point(t)
            self.iters += 1
        return [self.start._replace(t=0.0), new], False

    def zoom(self, bracket: List[_Point]) -> _Point:
        """Shrink the bracket by safeguarded cubic steps until a point meets both conditions
        (or the bracket or the evaluations run out); the best end."""
        low, high = (0, 1) if bracket[0].f <= bracket[1].f else (1, 0)
        insufficient = False
        d_norm = float(self.d.abs().max())
        while self.iters < self.max_ls:
            if abs(bracket[1].t - bracket[0].t) * d_norm < self.tolerance_change:
                break
            a, b = bracket
            t = _cubic_interpolate(a.t, a.f, a.gtd, b.t, b.f, b.gtd)
            t, insufficient = _away_from_ends(t, a.t, b.t, insufficient)
            new = self.point(t)
            self.iters += 1
            if not self._decreases(new) or new.f >= bracket[low].f:
                bracket[high] = new
                low, high = (0, 1) if bracket[0].f <= bracket[1].f else (1, 0)
                continue
            done = self._flat_enough(new)
            if not done and new.gtd * (bracket[high].t - bracket[low].t) >= 0:
                bracket[high] = bracket[low]
            bracket[low] = new
            if done:
                break
        return bracket[low]

    def run(self, t: float) -> _Point:
        bracket, done = self.bracket(t)
        if done or len(bracket) == 1:
            return bracket[0]
        if self.iters == self.max_ls:  # out of evaluations while bracketing: the better end
            return bracket[0] if bracket[0].f <= bracket[1].f else bracket[1]
        return self.zoom(bracket)


def _away_from_ends(t: float, a: float, b: float, insufficient: bool) -> Tuple[float, bool]:
    """Keep t at least a tenth of the bracket away from its ends once progress stalls (or t
    falls outside); returns t and whether the last step was too close to an end."""
    lo, hi = min(a, b), max(a, b)
    eps = 0.1 * (hi - lo)
    if min(hi - t, t - lo) >= eps:
        return t, False
    if not (insufficient or t >= hi or t <= lo):
        return t, True
    return (hi - eps if abs(t - hi) < abs(t - lo) else lo + eps), False


class LBFGS(Optimizer):
    """L-BFGS over all the parameters as one vector (one parameter group only); step(closure)
    needs a closure that zeroes the gradients, computes the loss, calls backward and returns
    the loss, and returns the closure's first loss. Its state (the history, the direction,
    the step and counts func_evals, n_iter) lives under the first parameter, as PyTorch's."""

    def __init__(self, params: Iterable, lr: float = 1, max_iter: int = 20,
                 max_eval: Optional[int] = None, tolerance_grad: float = 1e-7,
                 tolerance_change: float = 1e-9, history_size: int = 100,
                 line_search_fn: Optional[str] = None) -> None:
        lr = check_option("LBFGS", "lr", lr, "learning rate")
        if not isinstance(max_iter, int) or max_iter < 1:
            raise ValueError(f"LBFGS: max_iter must be an int >= 1, got {max_iter!r}")
        max_eval = max_iter * 5 // 4 if max_eval is None else max_eval
        if not isinstance(history_size, int) or history_size < 1:
            raise ValueError(f"LBFGS: history_size must be an int >= 1, got {history_size!r}")
        if line_search_fn not in (None, "strong_wolfe"):
            raise ValueError(f"LBFGS: only 'strong_wolfe' is supported as line_search_fn, "
                             f"got {line_search_fn!r}")
        super().__init__(params, dict(lr=lr, max_iter=max_iter, max_eval=max_eval,
                                      tolerance_grad=tolerance_grad,
                                      tolerance_change=tolerance_change,
                                      history_size=history_size, line_search_fn=line_search_fn))
        if len(self.param_groups) != 1:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")
        self._params: List[Tensor] = self.param_groups[0]["params"]

    def _flat_grad(self) -> Tensor:
        """Every parameter's gradient (zeros where None) as one new vector."""
        views = [zeros_like(p).reshape(-1) if p.grad is None else p.grad.reshape(-1)
                 for p in self._params]
        return cat(views) if len(views) > 1 else detached_copy(views[0])

    def _add_grad(self, step: float, direction: Tensor) -> None:
        """x += step * direction, spread over the parameters."""
        offset = 0
        for p in self._params:
            n = p.numel()
            add_(p, direction[offset:offset + n].reshape(p.shape), alpha=step)
            offset += n

    def _evaluate_at(self, closure: Callable[[], Any], x: List[Tensor],
                     direction: Tensor) -> Callable[[float], Tuple[float, Tensor]]:
        """t -> (loss, flat gradient) at x + t direction; the parameters are put back to x."""
        def evaluate(t: float) -> Tuple[float, Tensor]:
            self._add_grad(t, direction)
            with enable_grad():
                loss = float(closure())
            grad = self._flat_grad()
            for p, saved in zip(self._params, x):
                p.copy_(saved)
            return loss, grad
        return evaluate

    def _direction(self, state: dict, g: Tensor, history_size: int) -> Tensor:
        """-H g by the two-loop recursion, after adding the last (s, y) pair to the history."""
        y = g - state["prev_flat_grad"]
        s = state["d"] * state["t"]
        ys = float(y.dot(s))
        if ys > 1e-10:
            for key in ("old_dirs", "old_stps", "ro"):
                if len(state[key]) == history_size:
                    state[key].pop(0)
            state["old_dirs"].append(y)
            state["old_stps"].append(s)
            state["ro"].append(1.0 / ys)
            state["H_diag"] = ys / float(y.dot(y))
        dirs, stps, ro = state["old_dirs"], state["old_stps"], state["ro"]
        al = state.setdefault("al", [None] * history_size)
        q = -g
        for i in range(len(dirs) - 1, -1, -1):
            al[i] = float(stps[i].dot(q)) * ro[i]
            q = q.add(dirs[i], alpha=-al[i])
        r = q * state["H_diag"]
        for i in range(len(dirs)):
            be_i = float(dirs[i].dot(r)) * ro[i]
            r = r.add(stps[i], alpha=al[i] - be_i)
        return r

    def _move(self, closure: Callable[[], Any], state: dict, g: Tensor, loss: float,
              last: bool, evals_left: int) -> Tuple[float, Tensor, int]:
        """Step x by t along state['d'] (by the strong-Wolfe search, or by t itself): the
        loss and gradient at the new x (re-evaluated unless `last`), and the closure calls.
        As PyTorch's, the search may take evals_left more steps, and stops shrinking its
        bracket at the default tolerance_change whatever the group's."""
        d, t = state["d"], state["t"]
        if self.param_groups[0]["line_search_fn"] is None:
            self._add_grad(t, d)
            if last:
                return loss, g, 0
            with enable_grad():
                loss = float(closure())
            return loss, self._flat_grad(), 1
        x = [detached_copy(p) for p in self._params]
        search = _LineSearch(self._evaluate_at(closure, x, d), d,
                             _Point(0.0, loss, g, float(g.dot(d))), max_ls=evals_left)
        found = search.run(t)
        state["t"] = found.t
        self._add_grad(found.t, d)
        return found.f, found.g, search.evals

    @no_grad()
    def step(self, closure: Callable[[], Any]) -> Any:  # type: ignore[override]
        """Up to max_iter iterations; stops early when the gradient's largest entry is at most
        tolerance_grad, or the step or the loss change is below tolerance_change, or after
        max_eval closure calls."""
        if closure is None:
            raise RuntimeError("LBFGS: step() needs a closure that reevaluates the model and "
                               "returns the loss")
        group = self.param_groups[0]
        lr, tol_change = group["lr"], group["tolerance_change"]
        state = self.state[self._params[0]]
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)
        with enable_grad():
            orig_loss = closure()
        loss, evals = float(orig_loss), 1
        state["func_evals"] += 1
        g = self._flat_grad()
        if float(g.abs().max()) <= group["tolerance_grad"]:
            return orig_loss
        for n_iter in range(1, group["max_iter"] + 1):
            state["n_iter"] += 1
            if state["n_iter"] == 1:
                state.update(d=-g, old_dirs=[], old_stps=[], ro=[], H_diag=1.0)
            else:
                state["d"] = self._direction(state, g, group["history_size"])
            state["prev_flat_grad"], state["prev_loss"] = detached_copy(g), loss
            first = state["n_iter"] == 1
            state["t"] = min(1.0, 1.0 / float(g.abs().sum())) * lr if first else lr
            if float(g.dot(state["d"])) > -tol_change:  # not a descent direction
                break
            last = n_iter == group["max_iter"]
            loss, g, calls = self._move(closure, state, g, loss, last,
                                        group["max_eval"] - evals)
            evals += calls
            state["func_evals"] += calls
            if last or evals >= group["max_eval"]:
                break
            if calls and float(g.abs().max()) <= group["tolerance_grad"]:
                break
            if float((state["d"] * state["t"]).abs().max()) <= tol_change:
                break
            if abs(loss - state["prev_loss"]) < tol_change:
                break
        return orig_loss
