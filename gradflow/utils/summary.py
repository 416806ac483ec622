"""summary(model, input_size): a per-layer table of output shapes, parameters, FLOPs and memory.

One forward pass on random input (in eval mode, without grad) with a forward hook on every
leaf module records what each layer produced; the FLOPs come from the layer's settings and
the shapes it saw, by the rules below, not from timing.

FLOPs count a multiply-add as two operations (FLOPs = 2 x MACs); bias additions are not
counted. Per layer:

- Conv2d: 2 * output elements * (in_channels / groups) * kh * kw
- ConvTranspose2d: 2 * input elements * (out_channels / groups) * kh * kw
- Linear: 2 * output elements * in_features
- MaxPool2d / AvgPool2d: output elements * kh * kw (one comparison or addition per tap)
- AdaptiveAvgPool2d / AdaptiveMaxPool2d: input elements (approximate: each read once)
- BatchNorm, InstanceNorm, LayerNorm, GroupNorm: 2 * output elements (scale and shift)
- Softmax / LogSoftmax: 3 * output elements (exp, sum, divide; approximate)
- other activations: one per output element
- everything else (Flatten, Dropout, Embedding, …): 0
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Sequence, Tuple, Union

import numpy as np

from gradflow import nn
from gradflow.autograd import no_grad
from gradflow.tensor import Tensor, from_numpy
from gradflow.types import as_dtype, get_default_dtype
from gradflow.types import device as Device

Shape = Tuple[int, ...]
InputSize = Union[Sequence[int], Sequence[Sequence[int]]]


@dataclass
class LayerSummary:
    """One leaf module's call: dotted name, class name, output shape(s) (a list of shapes when
    it returned several tensors), parameter count, FLOPs and bytes of its output(s).

    >>> row = gf.utils.summary(nn.Sequential(nn.Linear(3, 2)), (3,)).rows[0]
    >>> row.name, row.type, row.output_shape, row.params, row.flops
    ('0', 'Linear', (1, 2), 8, 12)
    """

    name: str
    type: str
    output_shape: Union[Shape, List[Shape]]
    params: int
    flops: int
    output_bytes: int


def _pair(v: Any) -> Tuple[int, int]:
    return (int(v[0]), int(v[1])) if isinstance(v, (tuple, list)) else (int(v), int(v))


def _conv_flops(m: nn.Conv2d, inputs: tuple, out: Tensor) -> int:
    kh, kw = m.kernel_size
    return 2 * out.numel() * (m.in_channels // m.groups) * kh * kw


def _conv_transpose_flops(m: nn.ConvTranspose2d, inputs: tuple, out: Tensor) -> int:
    kh, kw = m.kernel_size
    return 2 * inputs[0].numel() * (m.out_channels // m.groups) * kh * kw


def _linear_flops(m: nn.Linear, inputs: tuple, out: Tensor) -> int:
    return 2 * out.numel() * m.in_features


def _pool_flops(m: nn.Module, inputs: tuple, out: Tensor) -> int:
    kh, kw = _pair(m.kernel_size)
    return out.numel() * kh * kw


_FLOP_RULES: Dict[type, Callable[[Any, tuple, Tensor], int]] = {
    nn.Conv2d: _conv_flops,
    nn.ConvTranspose2d: _conv_transpose_flops,
    nn.Linear: _linear_flops,
    nn.MaxPool2d: _pool_flops,
    nn.AvgPool2d: _pool_flops,
    nn.AdaptiveAvgPool2d: lambda m, inputs, out: inputs[0].numel(),
    nn.AdaptiveMaxPool2d: lambda m, inputs, out: inputs[0].numel(),
    nn.Softmax: lambda m, inputs, out: 3 * out.numel(),
    nn.LogSoftmax: lambda m, inputs, out: 3 * out.numel(),
}
for _norm in (nn.BatchNorm1d, nn.BatchNorm2d, nn.InstanceNorm2d, nn.LayerNorm, nn.GroupNorm):
    _FLOP_RULES[_norm] = lambda m, inputs, out: 2 * out.numel()
for _act in (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Sigmoid,
             nn.Tanh, nn.Softplus):
    _FLOP_RULES[_act] = lambda m, inputs, out: out.numel()


def layer_flops(module: nn.Module, inputs: tuple, output: Any) -> int:
    """FLOPs of one call of `module` (rules in the module docstring; 0 for unknown layers)."""
    out = output[0] if isinstance(output, (tuple, list)) else output
    if not isinstance(out, Tensor):
        return 0
    for cls in type(module).__mro__:
        rule = _FLOP_RULES.get(cls)
        if rule is not None:
            return int(rule(module, inputs, out))
    return 0


def _scaled(n: float, base: int, units: Sequence[str]) -> str:
    """n in the largest unit that keeps it >= 1: _scaled(1536, 1024, ["B", "KiB"]) = 1.50 KiB."""
    i = 0
    while abs(n) >= base and i < len(units) - 1:
        n /= base
        i += 1
    return f"{n:.0f} {units[0]}" if i == 0 else f"{n:.2f} {units[i]}"


def _si(n: float, unit: str = "") -> str:
    return _scaled(n, 1000, [unit] + [p + unit for p in ("k", "M", "G", "T")]).strip()


def _bytes(n: float) -> str:
    return _scaled(n, 1024, ["B", "KiB", "MiB", "GiB"])


class ModelSummary:
    """What summary() measured: `.rows` (one LayerSummary per leaf-module call, in call order)
    and the totals; `str()` is the table.

    >>> report = gf.utils.summary(nn.Sequential(nn.Linear(3, 2)), (3,), batch_size=4)
    >>> report.total_params, report.trainable_params, report.total_flops
    (8, 8, 48)
    """

    def __init__(self, model_name: str, rows: List[LayerSummary], total_params: int,
                 trainable_params: int, param_bytes: int, input_bytes: int) -> None:
        self.model_name = model_name
        self.rows = rows
        self.total_params = total_params
        self.trainable_params = trainable_params
        self.param_bytes = param_bytes
        self.input_bytes = input_bytes
        self.total_flops = sum(r.flops for r in rows)
        self.activation_bytes = sum(r.output_bytes for r in rows)

    def __str__(self) -> str:
        header = ("Layer (type)", "Output shape", "Params", "FLOPs", "Output memory")
        body = [
            (f"{r.name or self.model_name} ({r.type})",
             str(list(r.output_shape)) if isinstance(r.output_shape, tuple)
             else ", ".join(str(list(s)) for s in r.output_shape),
             f"{r.params:,}", _si(r.flops), _bytes(r.output_bytes))
            for r in self.rows
        ]
        widths = [max(len(row[i]) for row in [header] + body) for i in range(len(header))]

        def line(cells: Sequence[str]) -> str:
            first = cells[0].ljust(widths[0])
            rest = "  ".join(c.rjust(w) for c, w in zip(cells[1:], widths[1:]))
            return f"{first}  {rest}"

        rule = "=" * len(line(header))
        totals = [
            f"Total params: {self.total_params:,}",
            f"Trainable params: {self.trainable_params:,}",
            f"Non-trainable params: {self.total_params - self.trainable_params:,}",
            f"Total FLOPs: {_si(self.total_flops, 'FLOPs')} (a multiply-add counts as 2)",
            f"Input size: {_bytes(self.input_bytes)}",
            f"Activation memory (layer outputs): {_bytes(self.activation_bytes)}",
            f"Params size: {_bytes(self.param_bytes)}",
        ]
        return "\n".join([rule, line(header), rule] + [line(r) for r in body] + [rule] + totals
                         + [rule])

    def __repr__(self) -> str:
        return str(self)


def _shapes(input_size: InputSize) -> List[Shape]:
    """One shape per model input: `(3, 32, 32)` gives one, `[(3, 32, 32), (10,)]` two."""
    sizes = list(input_size)
    if sizes and all(isinstance(s, (tuple, list)) for s in sizes):
        return [tuple(int(d) for d in s) for s in sizes]
    if all(isinstance(s, (int, np.integer)) for s in sizes):
        return [tuple(int(d) for d in sizes)]
    raise TypeError(f"summary: input_size should be a shape like (3, 224, 224) or a list of "
                    f"such shapes, got {input_size!r}")


def _random_inputs(model: nn.Module, input_size: InputSize, batch_size: int,
                   device: Union[str, Device, None], dtype: Any) -> List[Tensor]:
    """Uniform random inputs from a private generator, on the model's device and dtype
    unless given."""
    first = next(model.parameters(), None)
    device = Device(device) if device is not None else (
        first.device if first is not None else Device("cpu"))
    dtype = as_dtype(dtype) if dtype is not None else (
        first.dtype if first is not None and first.is_floating_point() else get_default_dtype())
    rng = np.random.default_rng(0)
    return [from_numpy(rng.random((batch_size,) + s).astype(dtype.np)).to(device)
            for s in _shapes(input_size)]


def _leaf_rows(model: nn.Module, inputs: List[Tensor]) -> List[LayerSummary]:
    """One row per leaf module call in an eval-mode, no_grad forward; training flags are
    restored afterwards."""
    rows: List[LayerSummary] = []
    counted: set = set()

    def record(name: str) -> Callable:
        def hook(module: nn.Module, args: tuple, output: Any) -> None:
            outs = [o for o in (output if isinstance(output, (tuple, list)) else (output,))
                    if isinstance(o, Tensor)]
            params = 0 if id(module) in counted else sum(p.numel() for p in module.parameters())
            counted.add(id(module))
            shapes = [tuple(o.shape) for o in outs]
            rows.append(LayerSummary(
                name=name, type=type(module).__name__,
                output_shape=shapes[0] if len(shapes) == 1 else shapes,
                params=params, flops=layer_flops(module, args, output),
                output_bytes=sum(o.numel() * o.element_size() for o in outs)))
        return hook

    modes = {m: m.training for m in model.modules()}
    handles = [m.register_forward_hook(record(name)) for name, m in model.named_modules()
               if next(m.children(), None) is None]
    try:
        model.eval()
        with no_grad():
            model(*inputs)
    finally:
        for h in handles:
            h.remove()
        for m, mode in modes.items():
            m.training = mode
    return rows


def summary(model: nn.Module, input_size: InputSize, *, batch_size: int = 1,
            device: Union[str, Device, None] = None, dtype: Any = None) -> ModelSummary:
    """Run `model` once on uniform random input of shape (batch_size, *input_size) and tabulate
    every leaf module's output shape, parameters, FLOPs and output memory.

    `input_size` leaves out the batch dimension, as in torchsummary; pass a list of shapes
    for a model whose forward takes several tensors. `device` and `dtype` default to those
    of the model's first parameter (else CPU and the default dtype). The model runs in eval
    mode under no_grad, its training flags are restored afterwards, and the input comes from
    a private generator, so gradflow's global random state is left untouched. Parameter
    totals come from `model.parameters()`; a module called several times is listed per call
    with its parameters counted at the first.

    >>> model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 10))
    >>> report = gf.utils.summary(model, (1, 8, 8))
    >>> report.total_params, [row.output_shape for row in report.rows]
    (1490, [(1, 4, 6, 6), (1, 4, 6, 6), (1, 144), (1, 10)])
    """
    inputs = _random_inputs(model, input_size, batch_size, device, dtype)
    rows = _leaf_rows(model, inputs)
    params = list(model.parameters())
    return ModelSummary(
        model_name=type(model).__name__,
        rows=rows,
        total_params=sum(p.numel() for p in params),
        trainable_params=sum(p.numel() for p in params if p.requires_grad),
        param_bytes=sum(p.numel() * p.element_size() for p in params),
        input_bytes=sum(x.numel() * x.element_size() for x in inputs),
    )
