"""Training diagnostics: look inside a training run, layer by layer and step by step.

    monitor = Monitor(model, optimizer)      # one line; the training loop stays as it is
    ...                                      # train
    monitor.plot("runs/mine/monitor.png")    # one panel per statistic, one line per layer

For every watched layer (by default each module without children) and every optimizer step
the monitor records, from the layer's output in the last training-mode forward before the
step (the "activation" a):

- ``act_mean``: the mean of a over all its elements (the whole batch);
- ``act_std``: its standard deviation, ddof = 0;
- ``act_zero_fraction``: the fraction of elements exactly 0 (dead ReLUs show as 1);

and, for a layer that has parameters w (its own and its children's):

- ``grad_norm``: ‖∇w‖₂, the gradient the step uses, over all the layer's parameters;
- ``update_ratio``: ‖Δw‖₂ / ‖w‖₂ with Δw what ``optimizer.step()`` changed (about 1e-3 is
  the classic healthy value; far below, the layer barely learns; far above, it thrashes).

Values are plain floats, NaN where a step has none (no forward in training mode, no
gradient, or a layer without parameters). The statistics are computed on host copies, in
the tensors' own dtype; watching every layer of LeNet-5 adds about 1 % to a training step
on a batch of 64 (benchmarks/monitor.py), and ``every`` records one step in that many to
make a long run cheaper still.
"""

from __future__ import annotations

import math
from typing import Any, Dict, Iterable, List, Optional, Sequence, Union

import numpy as np

from gradflow.nn.module import Module
from gradflow.optim.optimizer import Optimizer
from gradflow.tensor import Tensor

ACTIVATION_STATS = ("act_mean", "act_std", "act_zero_fraction")
PARAMETER_STATS = ("grad_norm", "update_ratio")
STATS = ACTIVATION_STATS + PARAMETER_STATS
TITLES = {
    "act_mean": "activation mean",
    "act_std": "activation std",
    "act_zero_fraction": "fraction of exact zeros",
    "grad_norm": "gradient norm ‖∇w‖",
    "update_ratio": "update / weight ‖Δw‖ / ‖w‖",
}


def _host(t: Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


def activation_stats(output: Tensor) -> Dict[str, float]:
    """act_mean, act_std (ddof 0, from the centred values) and act_zero_fraction of one layer
    output, in the output's own dtype: one pairwise sum and one dot product."""
    a = _host(output).ravel()
    if a.size == 0:
        return dict.fromkeys(ACTIVATION_STATS, math.nan)
    mean = a.mean()
    centred = a - mean
    return {"act_mean": float(mean),
            "act_std": math.sqrt(float(np.dot(centred, centred)) / a.size),
            "act_zero_fraction": np.count_nonzero(a == 0) / a.size}


def _norm(arrays: Iterable[np.ndarray]) -> float:
    """The 2-norm of all `arrays` taken as one vector."""
    return math.sqrt(sum(float(np.dot(x.ravel(), x.ravel())) for x in arrays))


class Monitor:
    """Records per-layer activation, gradient and update statistics at every optimizer step
    (see the module docstring); ``history[stat][layer]`` is a list with one float per entry of
    ``steps``.

    Args:
        model: the network; its forward hooks see the activations.
        optimizer: the optimizer that trains it; its step hooks see gradients and updates.
        layers: the modules to watch: modules of `model`, their qualified names, or module
            classes (every submodule of that class); default: each module without children.
        every: record one optimizer step in `every` (the first, then every `every`-th).

    >>> gf.manual_seed(0)
    >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    >>> opt = gf.optim.SGD(model.parameters(), lr=0.1)
    >>> monitor = gf.utils.Monitor(model, opt)
    >>> for _ in range(3):
    ...     opt.zero_grad()
    ...     model(gf.randn(16, 4)).pow(2).mean().backward()
    ...     opt.step()
    >>> monitor.steps, sorted(monitor.history)[:3]
    ([0, 1, 2], ['act_mean', 'act_std', 'act_zero_fraction'])
    >>> monitor.remove()
    """

    def __init__(self, model: Module, optimizer: Optimizer,
                 layers: Optional[Iterable[Union[Module, str, type]]] = None,
                 every: int = 1) -> None:
        if not isinstance(model, Module):
            raise TypeError(f"Monitor: model must be a gradflow.nn.Module, got "
                            f"{type(model).__name__}")
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"Monitor: optimizer must be a gradflow.optim.Optimizer, got "
                            f"{type(optimizer).__name__}")
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"Monitor: every must be a positive int, got {every!r}")
        self.every = every
        self.layers: Dict[str, Module] = _select_layers(model, layers)
        self.steps: List[int] = []
        self.history: Dict[str, Dict[str, List[float]]] = {s: {} for s in STATS}
        for name, layer in self.layers.items():
            for stat in ACTIVATION_STATS:
                self.history[stat][name] = []
            if _has_parameters(layer):
                for stat in PARAMETER_STATS:
                    self.history[stat][name] = []
        self._step = 0  # optimizer steps seen
        self._activations: Dict[str, Dict[str, float]] = {}
        self._grad_norms: Dict[str, float] = {}
        self._before: Dict[str, List[np.ndarray]] = {}
        self._handles = [layer.register_forward_hook(self._forward_hook(name))
                         for name, layer in self.layers.items()]
        self._handles += [optimizer.register_step_pre_hook(self._before_step),
                          optimizer.register_step_post_hook(self._after_step)]

    # ---------------------------------------------------------------- hooks
    def _recording(self) -> bool:
        return self._step % self.every == 0

    def _forward_hook(self, name: str):
        def hook(module: Module, inputs: Any, output: Any) -> None:
            if module.training and self._recording() and isinstance(output, Tensor):
                self._activations[name] = activation_stats(output)
        return hook

    def _before_step(self, optimizer: Optimizer, args: Any, kwargs: Any) -> None:
        if not self._recording():
            return
        for name in self.history["grad_norm"]:
            params = list(self.layers[name].parameters())
            grads = [_host(p.grad) for p in params if p.grad is not None]
            self._grad_norms[name] = _norm(grads) if grads else math.nan
            self._before[name] = [_host(p).copy() for p in params]

    def _after_step(self, optimizer: Optimizer, args: Any, kwargs: Any) -> None:
        if self._recording():
            self.steps.append(self._step)
            for name in self.layers:
                acts = self._activations.get(name, {})
                for stat in ACTIVATION_STATS:
                    self.history[stat][name].append(acts.get(stat, math.nan))
            for name, before in self._before.items():
                after = [_host(p) for p in self.layers[name].parameters()]
                weight = _norm(before)
                change = _norm(a - b for a, b in zip(after, before))
                self.history["grad_norm"][name].append(self._grad_norms[name])
                self.history["update_ratio"][name].append(change / weight if weight
                                                          else math.nan)
        self._activations, self._grad_norms, self._before = {}, {}, {}
        self._step += 1

    def remove(self) -> None:
        """Detach the monitor from the model and the optimizer; the history stays."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def __enter__(self) -> "Monitor":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.remove()

    # ---------------------------------------------------------------- reading
    def last(self) -> Dict[str, Dict[str, float]]:
        """{layer: {stat: value}} at the last recorded step (empty before the first)."""
        if not self.steps:
            return {}
        return {name: {stat: self.history[stat][name][-1] for stat in STATS
                       if name in self.history[stat]} for name in self.layers}

    def table(self) -> str:
        """The last recorded step as a text table, one row per layer."""
        head = f"{'layer':<28}" + "".join(f"{s:>18}" for s in STATS)
        rows = [head, "-" * len(head)]
        for name, values in self.last().items():
            cells = "".join(f"{values[s]:>18.4g}" if s in values else f"{'':>18}"
                            for s in STATS)
            rows.append(f"{self.label(name)[:28]:<28}{cells}")
        return "\n".join(rows)

    def label(self, name: str) -> str:
        """The legend label of a layer: its name and class, e.g. "0 (Linear)"."""
        return f"{name} ({type(self.layers[name]).__name__})"

    def plot(self, path: str, title: Optional[str] = None) -> Any:
        """Write a figure to `path`: one panel per statistic against the step, one line per
        layer (darker = deeper); returns the matplotlib Figure. Needs matplotlib."""
        try:
            from matplotlib.figure import Figure
        except ImportError as exc:
            raise ImportError("Monitor.plot needs matplotlib: pip install 'gradflow[plot]'"
                              ) from exc
        fig = Figure(figsize=(4.2 * len(STATS), 3.8), layout="constrained")
        axes = fig.subplots(1, len(STATS))
        plot_panels(axes, self)
        handles, labels = axes[0].get_legend_handles_labels()  # every layer has activations
        axes[-1].legend(handles, labels, fontsize="x-small", loc="center left",
                        bbox_to_anchor=(1.02, 0.5))
        if title:
            fig.suptitle(title)
        fig.savefig(path, dpi=100)
        return fig


def plot_panels(axes: Sequence[Any], monitor: Monitor) -> None:
    """Draw `monitor`'s statistics into `axes` (one matplotlib Axes per entry of STATS)."""
    from matplotlib import colormaps

    colors = colormaps["viridis"](np.linspace(0.0, 0.85, max(len(monitor.layers), 1)))
    for ax, stat in zip(axes, STATS):
        for color, name in zip(colors, monitor.layers):
            values = monitor.history[stat].get(name)
            if values is not None:
                ax.plot(monitor.steps, values, color=color, label=monitor.label(name))
        ax.set(title=TITLES[stat], xlabel="step")
        if stat in PARAMETER_STATS:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)


def _has_parameters(layer: Module) -> bool:
    return next(iter(layer.parameters()), None) is not None


def _select_layers(model: Module, layers: Optional[Iterable[Union[Module, str, type]]]
                   ) -> Dict[str, Module]:
    """{qualified name: module} of the layers to watch, in the model's order."""
    named = [(name or type(model).__name__, m) for name, m in model.named_modules()]
    if layers is None:
        return {name: m for name, m in named if next(iter(m.children()), None) is None}
    wanted = list(layers) if not isinstance(layers, (Module, str, type)) else [layers]
    chosen: Dict[str, Module] = {}
    for item in wanted:
        if isinstance(item, type):
            matches = [(n, m) for n, m in named if isinstance(m, item)]
        elif isinstance(item, str):
            matches = [(n, m) for n, m in named if n == item]
        elif isinstance(item, Module):
            matches = [(n, m) for n, m in named if m is item]
        else:
            raise TypeError(f"Monitor: layers must hold modules, module names or module "
                            f"classes, got {type(item).__name__}")
        if not matches:
            raise ValueError(f"Monitor: {item!r} is not a module of the model")
        chosen.update(matches)
    return chosen
