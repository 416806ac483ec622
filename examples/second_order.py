"""Second-order information from double backward: Newton's method, and the curvature that
limits the learning rate.

1. Newton against gradient descent on L2-regularised logistic regression (the bundled
   Digits, 64 pixels + a bias, "is it 5 or more?"; float64). The loss
       f(w) = mean(softplus(x.w) - y x.w) + lambda / 2 |w|^2
   is convex; its Hessian H = X^T diag(s (1 - s)) X / n + lambda I comes from differentiating
   the gradient again (autograd.grad with create_graph=True, one row per weight). Newton
   steps w <- w - H^-1 g converge quadratically: a handful of iterations. Gradient descent
   with the safe step 1 / L, L the largest eigenvalue of H at w = 0 (the curvature is
   largest there, since s (1 - s) <= 1/4), needs hundreds to thousands to reach the same
   gradient norm.

2. The sharpness of a small network's loss: the largest eigenvalue lambda_max of the Hessian
   of a 64-16-10 tanh MLP's cross-entropy on 256 digits, found by power iteration on
   Hessian-vector products Hv = d(g.v)/dw (double backward, never forming H). On a quadratic,
   gradient descent is stable exactly when lr < 2 / lambda_max. Full-batch gradient descent at
   0.9 times that bound descends from the first step; at 1.1 times it the loss first climbs,
   until the run has left for flatter ground where the bound is looser (a network's
   curvature changes as it trains: the "catapult" of Lewkowycz et al., 2020), and only then
   descends.

--out gets second_order.png and results.json.

    python examples/second_order.py
"""

from __future__ import annotations

import copy
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import common
import numpy as np

import gradflow as gf
import gradflow.nn as nn
import gradflow.nn.functional as F
from gradflow.utils.cli import write_json

Loss = Callable[[], gf.Tensor]


# ---------------------------------------------------------------- logistic regression

def logistic_data(limit: Optional[int] = None) -> Tuple[gf.Tensor, gf.Tensor]:
    """(X, y) in float64: standardised Digits pixels plus a constant 1 (the bias), and
    y = 1 for the digits 5-9."""
    images, labels = common.stack(common.mnist(None, 8)[0], limit)
    x = images.flatten(1).double()
    x = (x - x.mean(0)) / (x.std(0) + 1e-8)
    x = gf.cat([x, gf.ones(x.shape[0], 1, dtype=gf.float64)], dim=1)
    return x, (labels >= 5).double()


def logistic_loss(w: gf.Tensor, x: gf.Tensor, y: gf.Tensor, l2: float) -> gf.Tensor:
    z = x @ w
    return F.binary_cross_entropy_with_logits(z, y) + 0.5 * l2 * (w * w).sum()


def gradient(f: Callable[[gf.Tensor], gf.Tensor], w: gf.Tensor,
             create_graph: bool = False) -> gf.Tensor:
    (g,) = gf.autograd.grad(f(w), w, create_graph=create_graph)
    return g


def hessian(f: Callable[[gf.Tensor], gf.Tensor], w: gf.Tensor) -> gf.Tensor:
    """The Hessian of scalar f at the vector w by double backward: row i is the gradient
    of g_i, where g = grad f is built with create_graph=True."""
    g = gradient(f, w, create_graph=True)
    rows = [gf.autograd.grad(g[i], w, retain_graph=True)[0] for i in range(w.numel())]
    return gf.stack(rows)


def newton(f: Callable[[gf.Tensor], gf.Tensor], w0: gf.Tensor, tol: float,
           max_iters: int = 50) -> List[float]:
    """Newton's method from w0 until |grad| < tol; the loss at every iterate."""
    w = w0.detach().clone().requires_grad_()
    losses = [f(w).item()]
    for _ in range(max_iters):
        g = gradient(f, w)
        if g.norm().item() < tol:
            break
        step = np.linalg.solve(hessian(f, w).numpy(), g.numpy())  # H d = g
        w = (w.detach() - gf.tensor(step)).requires_grad_()
        losses.append(f(w).item())
    return losses


def gradient_descent(f: Callable[[gf.Tensor], gf.Tensor], w0: gf.Tensor, lr: float,
                     tol: float, max_iters: int) -> List[float]:
    """w <- w - lr grad f(w) from w0 until |grad| < tol; the loss at every iterate."""
    w = w0.detach().clone().requires_grad_()
    losses = [f(w).item()]
    for _ in range(max_iters):
        g = gradient(f, w)
        if g.norm().item() < tol:
            break
        w = (w.detach() - lr * g).requires_grad_()
        losses.append(f(w).item())
    return losses


# ---------------------------------------------------------------- sharpness of a network

def hvp(loss_fn: Loss, params: Sequence[gf.Tensor], v: Sequence[gf.Tensor]) -> List[gf.Tensor]:
    """The Hessian-vector product H v of loss_fn at params: d(g . v)/dw, double backward."""
    grads = gf.autograd.grad(loss_fn(), params, create_graph=True)
    dot = sum((g * vi).sum() for g, vi in zip(grads, v))
    return list(gf.autograd.grad(dot, params))


def top_eigenvalue(loss_fn: Loss, params: Sequence[gf.Tensor], iters: int
                   ) -> Tuple[float, List[float]]:
    """Power iteration v <- Hv / |Hv| from a random v: (the last Rayleigh quotient v.Hv,
    every iteration's estimate). It converges to the eigenvalue of largest magnitude."""
    v = [gf.randn(*p.shape, dtype=p.dtype) for p in params]
    estimates: List[float] = []
    for _ in range(iters):
        norm = sum((vi * vi).sum() for vi in v).sqrt()
        v = [vi / norm for vi in v]
        hv = hvp(loss_fn, params, v)
        estimates.append(sum((a * b).sum() for a, b in zip(v, hv)).item())
        v = [h.detach() for h in hv]
    return estimates[-1], estimates


def small_net() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.Tanh(), nn.Linear(16, 10)).double()


def full_batch_gd(net: nn.Module, loss_of: Callable[[nn.Module], gf.Tensor], lr: float,
                  steps: int) -> List[float]:
    """Full-batch gradient descent on a copy of `net`; the loss before every step."""
    net = copy.deepcopy(net)
    optimizer = gf.optim.SGD(net.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        loss = loss_of(net)
        losses.append(loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return losses


def network_data(n: int) -> Tuple[gf.Tensor, gf.Tensor]:
    images, labels = common.stack(common.mnist(None, 8)[0], n)
    return images.double(), labels


# ---------------------------------------------------------------- the script

def compare_newton_and_gd(args) -> Dict[str, object]:
    x, y = logistic_data(64 if args.smoke else None)

    def f(w: gf.Tensor) -> gf.Tensor:
        return logistic_loss(w, x, y, args.l2)

    w0 = gf.zeros(x.shape[1], dtype=gf.float64, requires_grad=True)
    smoothness = float(np.linalg.eigvalsh(hessian(f, w0).numpy())[-1])  # L at w = 0
    newton_losses = newton(f, w0, args.tol)
    gd_losses = gradient_descent(f, w0, 1.0 / smoothness, args.tol, args.max_iters)
    print(f"logistic regression, {x.shape[1]} weights, lambda = {args.l2:g}: "
          f"L = lambda_max(H(0)) = {smoothness:.4g}")
    print(f"  Newton:           {len(newton_losses) - 1:5d} iterations to |grad| < "
          f"{args.tol:g}, loss {newton_losses[-1]:.10f}")
    reached = "" if len(gd_losses) <= args.max_iters else f" (stopped at {args.max_iters})"
    print(f"  gradient descent: {len(gd_losses) - 1:5d} iterations{reached} with lr = 1/L, "
          f"loss {gd_losses[-1]:.10f}")
    return {"L": smoothness, "newton": newton_losses, "gd": gd_losses}


def sharpness(args) -> Dict[str, object]:
    images, labels = network_data(64 if args.smoke else 256)
    net = small_net()

    def loss_of(model: nn.Module) -> gf.Tensor:
        return F.cross_entropy(model(images), labels)

    params = list(net.parameters())
    lam, estimates = top_eigenvalue(lambda: loss_of(net), params, args.power_iters)
    bound = 2.0 / lam
    print(f"64-16-10 tanh MLP ({sum(p.numel() for p in params):,} weights), "
          f"{len(labels)} digits: lambda_max = {lam:.5g} after {args.power_iters} power "
          f"iterations; stability bound 2 / lambda_max = {bound:.4g}")
    runs = {}
    for factor in (0.9, 1.1):
        runs[factor] = full_batch_gd(net, loss_of, factor * bound, args.gd_steps)
        print(f"  full-batch GD at lr = {factor} x 2/lambda_max: loss {runs[factor][0]:.4f} "
              f"-> {runs[factor][-1]:.4g} after {args.gd_steps} steps")
    return {"lambda_max": lam, "bound": bound, "estimates": estimates, "runs": runs}


def plot(logistic: Dict, network: Dict, out: str) -> None:
    plt = common.pyplot()
    if plt is None:
        return
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(15, 4.2), layout="constrained")
    best = min(logistic["newton"][-1], logistic["gd"][-1])
    for name in ("newton", "gd"):
        gaps = [max(v - best, 1e-16) for v in logistic[name]]
        ax1.plot(gaps, "o-" if name == "newton" else "-",
                 label="Newton" if name == "newton" else "gradient descent, lr = 1/L")
    ax1.set(xscale="symlog", yscale="log", xlabel="iteration", ylabel="f(w) - f*",
            title="logistic regression")
    ax2.plot(range(1, len(network["estimates"]) + 1), network["estimates"])
    ax2.axhline(network["lambda_max"], color="gray", linestyle="--")
    ax2.set(xlabel="power iteration", ylabel="v.Hv", title="largest Hessian eigenvalue")
    for factor, losses in network["runs"].items():
        ax3.plot(losses, label=f"lr = {factor} x 2/lambda_max")
    ax3.set(yscale="log", xlabel="step", ylabel="training loss",
            title="full-batch gradient descent near the bound")
    for ax in (ax1, ax2, ax3):
        ax.grid(alpha=0.3)
    ax1.legend()
    ax3.legend()
    common.save_figure(fig, out, "second_order.png")


def main(argv: Optional[List[str]] = None) -> Dict[str, float]:
    p = common.parser(__doc__, "second_order", epochs=1, batch_size=256, lr=None,
                      checkpoint=False)
    p.add_argument("--l2", type=float, default=1e-3, help="L2 coefficient lambda")
    p.add_argument("--tol", type=float, default=1e-8, help="stop once |grad| < tol")
    p.add_argument("--max-iters", type=int, default=20_000, help="gradient descent's cap")
    p.add_argument("--power-iters", type=int, default=100, help="power iterations")
    p.add_argument("--gd-steps", type=int, default=100, help="full-batch GD steps per lr")
    args = p.parse_args(argv)
    common.setup(args)
    if args.smoke:
        args.max_iters, args.power_iters, args.gd_steps = 50, 10, 5
    logistic = compare_newton_and_gd(args)
    network = sharpness(args)
    plot(logistic, network, args.out)
    results = {"newton_iterations": len(logistic["newton"]) - 1,
               "gd_iterations": len(logistic["gd"]) - 1, "L": logistic["L"],
               "lambda_max": network["lambda_max"], "lr_bound": network["bound"]}
    write_json(args.out, "results.json", {**results, "args": vars(args)})
    return results


if __name__ == "__main__":
    main()
