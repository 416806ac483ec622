"""Recurrent layers: RNNCell, LSTMCell, GRUCell (one step) and RNN, LSTM, GRU (whole
sequences, multi-layer, bidirectional), composed of Tensor ops so autograd differentiates them.

Parameters, their names, shapes, order and initialisation are PyTorch's, so state dicts load
both ways. With G gates (RNN 1, GRU 3, LSTM 4) and hidden size H:
    weight_ih (G H, input), weight_hh (G H, H), bias_ih (G H), bias_hh (G H)
stacked in PyTorch's gate order: LSTM (i, f, g, o), GRU (r, z, n). The step functions take
the input's contribution x W_ih^T + b_ih already computed (for a whole sequence at once).
"""

from __future__ import annotations

import math
from typing import List, Optional, Tuple

from gradflow.nn import functional as F
from gradflow.nn import init
from gradflow.nn.module import Module
from gradflow.nn.parameter import Parameter, layer_tensor
from gradflow.ops.common import as_bool, as_float, as_size, check_tensor
from gradflow.ops.shape import cat, stack
from gradflow.tensor import Tensor, zeros

__all__ = ["GRU", "GRUCell", "LSTM", "LSTMCell", "RNN", "RNNBase", "RNNCell", "RNNCellBase"]

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


# ---------------------------------------------------------------- one time step
def _rnn_step(xw: Tensor, h: Tensor, w_hh: Tensor, b_hh: Optional[Tensor],
              mode: str) -> Tensor:
    """h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh), act tanh or relu."""
    pre = xw + F.linear(h, w_hh, b_hh)
    return pre.tanh() if mode == "RNN_TANH" else pre.relu()


def _lstm_step(xw: Tensor, h: Tensor, c: Tensor, w_hh: Tensor, b_hh: Optional[Tensor],
               w_hr: Optional[Tensor]) -> Tuple[Tensor, Tensor]:
    """c' = sigmoid(f) c + sigmoid(i) tanh(g), h' = sigmoid(o) tanh(c') (projected by W_hr
    when proj_size > 0), with (i, f, g, o) = x W_ih^T + b_ih + h W_hh^T + b_hh."""
    i, f, g, o = (xw + F.linear(h, w_hh, b_hh)).chunk(4, -1)
    c = f.sigmoid() * c + i.sigmoid() * g.tanh()
    h = o.sigmoid() * c.tanh()
    return (h if w_hr is None else F.linear(h, w_hr)), c


def _gru_step(xw: Tensor, h: Tensor, w_hh: Tensor, b_hh: Optional[Tensor]) -> Tensor:
    """r, z = sigmoid(x_r + h_r), sigmoid(x_z + h_z); n = tanh(x_n + r h_n);
    h' = (1 - z) n + z h, where x_* = x W_i*^T + b_i* and h_* = h W_h*^T + b_h*."""
    x_r, x_z, x_n = xw.chunk(3, -1)
    h_r, h_z, h_n = F.linear(h, w_hh, b_hh).chunk(3, -1)
    r = (x_r + h_r).sigmoid()
    z = (x_z + h_z).sigmoid()
    n = (x_n + r * h_n).tanh()
    return n + z * (h - n)


# ---------------------------------------------------------------- cells
class RNNCellBase(Module):
    """The parameters every cell has; `gates` weights stacked along dim 0.

    >>> cell = nn.GRUCell(3, 4)
    >>> isinstance(cell, nn.RNNCellBase), cell.weight_ih.shape, cell.weight_hh.shape
    (True, gradflow.Size([12, 3]), gradflow.Size([12, 4]))
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool, gates: int,
                 device=None, dtype=None) -> None:
        super().__init__()
        name = type(self).__name__
        self.input_size = as_size(input_size, name, "input_size")
        self.hidden_size = as_size(hidden_size, name, "hidden_size", minimum=1)
        self.bias = as_bool(bias, name, "bias")
        rows = gates * self.hidden_size
        self.weight_ih = layer_tensor(name, (rows, self.input_size), device, dtype)
        self.weight_hh = layer_tensor(name, (rows, self.hidden_size), device, dtype)
        if self.bias:
            self.bias_ih = layer_tensor(name, (rows,), device, dtype)
            self.bias_hh = layer_tensor(name, (rows,), device, dtype)
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Every weight and bias ~ U(-1/sqrt(H), 1/sqrt(H)), as PyTorch's."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    def _batched(self, input: Tensor) -> Tuple[Tensor, bool]:
        """The input as (N, input_size), and whether the call was unbatched (1-D input), so
        that the result drops the batch dim again."""
        name = type(self).__name__
        check_tensor(input, name)
        if input.ndim not in (1, 2) or input.shape[-1] != self.input_size:
            raise ValueError(f"{name}: expected input of shape (N, {self.input_size}) or "
                             f"({self.input_size},), got {tuple(input.shape)}")
        return (input.unsqueeze(0), True) if input.ndim == 1 else (input, False)

    def _state(self, hx: Optional[Tensor], input: Tensor, unbatched: bool, arg: str) -> Tensor:
        """A hidden or cell state as (N, H), zeros when hx is None."""
        name = type(self).__name__
        check_tensor(hx, name, arg, optional=True)
        want = (input.shape[0], self.hidden_size)
        if hx is None:
            return zeros(*want, dtype=input.dtype, device=input.device)
        if tuple(hx.shape) != want[unbatched:]:
            raise ValueError(f"{name}: {arg} must have shape {want[unbatched:]} for input "
                             f"{tuple(input.shape[unbatched:])}, got {tuple(hx.shape)}")
        return hx.unsqueeze(0) if unbatched else hx

    def _input_part(self, input: Tensor) -> Tensor:
        return F.linear(input, self.weight_ih, self.bias_ih)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            s += ", bias=False"
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            s += f", nonlinearity={self.nonlinearity!r}"
        return s


class RNNCell(RNNCellBase):
    """h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh) (or relu); input (N, I) or (I,).

    >>> nn.RNNCell(4, 8)(gf.ones(3, 4)).shape
    gradflow.Size([3, 8])
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", device=None, dtype=None) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNNCell: unknown nonlinearity {nonlinearity!r} (tanh or relu)")
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, bias, 1, device, dtype)

    def forward(self, input: Tensor, hx: Optional[Tensor] = None) -> Tensor:
        input, unbatched = self._batched(input)
        hx = self._state(hx, input, unbatched, "hx")
        mode = "RNN_TANH" if self.nonlinearity == "tanh" else "RNN_RELU"
        h = _rnn_step(self._input_part(input), hx, self.weight_hh, self.bias_hh, mode)
        return h.squeeze(0) if unbatched else h


class LSTMCell(RNNCellBase):
    """One LSTM step: (h', c') from input (N, I) and hx = (h, c), each (N, H) (zeros when
    hx is None).

    >>> h, c = nn.LSTMCell(4, 8)(gf.ones(3, 4))
    >>> h.shape, c.shape
    (gradflow.Size([3, 8]), gradflow.Size([3, 8]))
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 device=None, dtype=None) -> None:
        super().__init__(input_size, hidden_size, bias, 4, device, dtype)

    def forward(self, input: Tensor,
                hx: Optional[Tuple[Tensor, Tensor]] = None) -> Tuple[Tensor, Tensor]:
        if hx is not None and (not isinstance(hx, (tuple, list)) or len(hx) != 2):
            raise TypeError("LSTMCell: hx must be a tuple (h_0, c_0) or None")
        input, unbatched = self._batched(input)
        h0, c0 = (None, None) if hx is None else hx
        h = self._state(h0, input, unbatched, "h_0")
        c = self._state(c0, input, unbatched, "c_0")
        h, c = _lstm_step(self._input_part(input), h, c, self.weight_hh, self.bias_hh, None)
        return (h.squeeze(0), c.squeeze(0)) if unbatched else (h, c)


class GRUCell(RNNCellBase):
    """One GRU step: h' from input (N, I) and hx (N, H) (zeros when None).

    >>> nn.GRUCell(4, 8)(gf.ones(3, 4)).shape
    gradflow.Size([3, 8])
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 device=None, dtype=None) -> None:
        super().__init__(input_size, hidden_size, bias, 3, device, dtype)

    def forward(self, input: Tensor, hx: Optional[Tensor] = None) -> Tensor:
        input, unbatched = self._batched(input)
        hx = self._state(hx, input, unbatched, "hx")
        h = _gru_step(self._input_part(input), hx, self.weight_hh, self.bias_hh)
        return h.squeeze(0) if unbatched else h


# ---------------------------------------------------------------- whole sequences
class RNNBase(Module):
    """A stack of `num_layers` recurrent layers, each one or two directions (bidirectional),
    run over a whole sequence (L, N, input_size), or (N, L, input_size) with batch_first, or
    unbatched (L, input_size). Layer k > 0 reads the previous layer's outputs (both
    directions concatenated), with dropout between layers while training. Parameters
    per layer k and direction: weight_ih_l{k}, weight_hh_l{k}, bias_ih_l{k}, bias_hh_l{k}
    (and weight_hr_l{k} for an LSTM with proj_size > 0), '_reverse' appended for the
    backward direction.

    >>> lstm = nn.LSTM(3, 4, num_layers=2, bidirectional=True)
    >>> isinstance(lstm, nn.RNNBase), [name for name, _ in lstm.named_parameters()][:5]
    (True, ['weight_ih_l0', 'weight_hh_l0', 'bias_ih_l0', 'bias_hh_l0', 'weight_ih_l0_reverse'])
    """

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, device=None,
                 dtype=None) -> None:
        super().__init__()
        name = type(self).__name__
        self.mode = mode
        self.input_size = as_size(input_size, name, "input_size")
        self.hidden_size = as_size(hidden_size, name, "hidden_size", minimum=1)
        self.num_layers = as_size(num_layers, name, "num_layers", minimum=1)
        self.bias = as_bool(bias, name, "bias")
        self.batch_first = as_bool(batch_first, name, "batch_first")
        self.dropout = as_float(dropout, name, "dropout")
        self.bidirectional = as_bool(bidirectional, name, "bidirectional")
        self.proj_size = as_size(proj_size, name, "proj_size")
        if not 0 <= self.dropout <= 1:
            raise ValueError(f"{name}: dropout must be a probability in [0, 1], got {dropout}")
        if self.proj_size and mode != "LSTM":
            raise ValueError(f"{name}: proj_size is only for LSTM")
        if self.proj_size >= self.hidden_size:
            raise ValueError(f"{name}: proj_size ({proj_size}) must be smaller than "
                             f"hidden_size ({hidden_size})")
        self._flat_weights_names: List[str] = []
        for layer in range(self.num_layers):
            for suffix in ("", "_reverse")[:self.num_directions]:
                self._add_layer_weights(layer, suffix, device, dtype)
        self.reset_parameters()

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def output_size(self) -> int:
        """The size of each direction's hidden state h (proj_size when projecting)."""
        return self.proj_size or self.hidden_size

    def _add_layer_weights(self, layer: int, suffix: str, device, dtype) -> None:
        name, rows = type(self).__name__, _GATES[self.mode] * self.hidden_size
        width = self.input_size if layer == 0 else self.output_size * self.num_directions
        shapes = {"weight_ih": (rows, width), "weight_hh": (rows, self.output_size)}
        if self.bias:
            shapes.update(bias_ih=(rows,), bias_hh=(rows,))
        if self.proj_size:
            shapes["weight_hr"] = (self.proj_size, self.hidden_size)
        for kind, shape in shapes.items():
            key = f"{kind}_l{layer}{suffix}"
            setattr(self, key, layer_tensor(name, shape, device, dtype))
            self._flat_weights_names.append(key)

    def reset_parameters(self) -> None:
        """Every weight and bias ~ U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    @property
    def all_weights(self) -> List[List[Parameter]]:
        """Each layer-direction's parameters, in registration order."""
        per = len(self._flat_weights_names) // (self.num_layers * self.num_directions)
        flat = [getattr(self, n) for n in self._flat_weights_names]
        return [flat[i:i + per] for i in range(0, len(flat), per)]

    def _weights(self, layer: int, reverse: bool) -> Tuple[Optional[Tensor], ...]:
        suffix = f"_l{layer}" + ("_reverse" if reverse else "")
        return tuple(self.__dict__["_parameters"].get(kind + suffix)
                     for kind in ("weight_ih", "bias_ih", "weight_hh", "bias_hh", "weight_hr"))

    def _check_input(self, input: Tensor) -> Tuple[Tensor, bool]:
        """The input as (L, N, input_size), and whether it was unbatched."""
        name = type(self).__name__
        check_tensor(input, name)
        if input.ndim not in (2, 3) or input.shape[-1] != self.input_size:
            raise ValueError(f"{name}: expected input of shape (L, N, {self.input_size}) "
                             f"(batch_first: (N, L, {self.input_size})) or unbatched "
                             f"(L, {self.input_size}), got {tuple(input.shape)}")
        if input.ndim == 2:
            return input.unsqueeze(1), True
        return (input.transpose(0, 1) if self.batch_first else input), False

    def _initial(self, hx: Optional[Tensor], input: Tensor, unbatched: bool, size: int,
                 arg: str) -> Tensor:
        """An initial state as (layers * directions, N, size), zeros when hx is None."""
        name = type(self).__name__
        check_tensor(hx, name, arg, optional=True)
        want = (self.num_layers * self.num_directions, input.shape[1], size)
        if hx is None:
            return zeros(*want, dtype=input.dtype, device=input.device)
        shown = (want[0], want[2]) if unbatched else want
        if tuple(hx.shape) != shown:
            raise ValueError(f"{name}: expected {arg} of shape {shown}, got {tuple(hx.shape)}")
        return hx.unsqueeze(1) if unbatched else hx

    def _direction(self, input: Tensor, h: Tensor, c: Optional[Tensor], layer: int,
                   reverse: bool) -> Tuple[Tensor, Tensor, Optional[Tensor]]:
        """One layer in one direction over the sequence: its outputs (L, N, output_size) and
        its last h (and c)."""
        w_ih, b_ih, w_hh, b_hh, w_hr = self._weights(layer, reverse)
        xw = F.linear(input, w_ih, b_ih)  # every step's input part in one product
        steps = range(input.shape[0] - 1, -1, -1) if reverse else range(input.shape[0])
        outputs: List[Optional[Tensor]] = [None] * input.shape[0]
        for t in steps:
            if self.mode == "LSTM":
                h, c = _lstm_step(xw[t], h, c, w_hh, b_hh, w_hr)
            elif self.mode == "GRU":
                h = _gru_step(xw[t], h, w_hh, b_hh)
            else:
                h = _rnn_step(xw[t], h, w_hh, b_hh, self.mode)
            outputs[t] = h
        return stack(outputs), h, c

    def _run(self, input: Tensor, h0: Tensor,
             c0: Optional[Tensor]) -> Tuple[Tensor, Tensor, Optional[Tensor]]:
        """Every layer over (L, N, input_size): the last layer's outputs and the stacked last
        states (layers * directions, N, ·)."""
        if input.shape[0] == 0:
            raise ValueError(f"{type(self).__name__}: expected a sequence of at least one step, "
                             f"got input of shape {tuple(input.shape)}")
        h_n, c_n = [], []
        for layer in range(self.num_layers):
            outs = []
            for d in range(self.num_directions):
                k = layer * self.num_directions + d
                out, h, c = self._direction(input, h0[k], None if c0 is None else c0[k],
                                            layer, d == 1)
                outs.append(out)
                h_n.append(h)
                c_n.append(c)
            input = outs[0] if len(outs) == 1 else cat(outs, -1)
            if self.dropout and self.training and layer < self.num_layers - 1:
                input = F.dropout(input, self.dropout, True)
        return input, stack(h_n), (stack(c_n) if c0 is not None else None)

    def _finish(self, output: Tensor, state: Tensor, unbatched: bool) -> Tuple[Tensor, Tensor]:
        if unbatched:
            return output.squeeze(1), state.squeeze(1)
        return (output.transpose(0, 1) if self.batch_first else output), state

    def forward(self, input: Tensor, hx: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """(output, h_n): output (L, N, D * H) holds the last layer's h at every step, h_n
        (num_layers * D, N, H) every layer's last h."""
        input, unbatched = self._check_input(input)
        h0 = self._initial(hx, input, unbatched, self.hidden_size, "hx")
        output, h_n, _ = self._run(input, h0, None)
        return self._finish(output, h_n, unbatched)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        defaults = {"proj_size": 0, "num_layers": 1, "bias": True, "batch_first": False,
                    "dropout": 0.0, "bidirectional": False}
        for key, default in defaults.items():
            if getattr(self, key) != default:
                s += f", {key}={getattr(self, key)}"
        return s


class RNN(RNNBase):
    """Elman RNN: h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh) (nonlinearity='relu'
    for relu), stacked and optionally bidirectional (see RNNBase).

    >>> rnn = nn.RNN(4, 8, num_layers=2, batch_first=True)
    >>> out, h_n = rnn(gf.ones(3, 5, 4))
    >>> out.shape, h_n.shape
    (gradflow.Size([3, 5, 8]), gradflow.Size([2, 3, 8]))
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, device=None,
                 dtype=None) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: unknown nonlinearity {nonlinearity!r} (tanh or relu)")
        self.nonlinearity = nonlinearity
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size,
                         hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         0, device, dtype)

    def extra_repr(self) -> str:
        s = super().extra_repr()
        return s if self.nonlinearity == "tanh" else s + f", nonlinearity={self.nonlinearity!r}"


class LSTM(RNNBase):
    """Long short-term memory (see _lstm_step), stacked and optionally bidirectional;
    forward(input, (h_0, c_0)) -> (output, (h_n, c_n)). With proj_size > 0, h is projected
    to proj_size by weight_hr_l{k}.

    >>> lstm = nn.LSTM(4, 8, bidirectional=True)
    >>> out, (h_n, c_n) = lstm(gf.ones(5, 3, 4))
    >>> out.shape, h_n.shape, c_n.shape
    (gradflow.Size([5, 3, 16]), gradflow.Size([2, 3, 8]), gradflow.Size([2, 3, 8]))
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, device=None,
                 dtype=None) -> None:
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, proj_size, device, dtype)

    def forward(self, input: Tensor, hx: Optional[Tuple[Tensor, Tensor]] = None
                ) -> Tuple[Tensor, Tuple[Tensor, Tensor]]:
        if hx is not None and (not isinstance(hx, (tuple, list)) or len(hx) != 2):
            raise TypeError("LSTM: hx must be a tuple (h_0, c_0) or None")
        input, unbatched = self._check_input(input)
        h0, c0 = (None, None) if hx is None else hx
        h0 = self._initial(h0, input, unbatched, self.output_size, "h_0")
        c0 = self._initial(c0, input, unbatched, self.hidden_size, "c_0")
        output, h_n, c_n = self._run(input, h0, c0)
        output, h_n = self._finish(output, h_n, unbatched)
        return output, (h_n, c_n.squeeze(1) if unbatched else c_n)


class GRU(RNNBase):
    """Gated recurrent unit (see _gru_step), stacked and optionally bidirectional.

    >>> gru = nn.GRU(4, 8)
    >>> out, h_n = gru(gf.ones(5, 3, 4))
    >>> out.shape, h_n.shape, sorted(gru.state_dict())[:2]
    (gradflow.Size([5, 3, 8]), gradflow.Size([1, 3, 8]), ['bias_hh_l0', 'bias_ih_l0'])
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, device=None, dtype=None) -> None:
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, 0, device, dtype)
