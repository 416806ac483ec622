"""The Transformer of "Attention Is All You Need", with PyTorch's modules, parameter names and
arguments: TransformerEncoderLayer / TransformerEncoder, TransformerDecoderLayer /
TransformerDecoder, and Transformer (an encoder and a decoder, each ending in a LayerNorm).

A layer is residual blocks around self-attention (and, in the decoder, attention to the
encoder's output `memory`) and a feed-forward block linear2(dropout(act(linear1(x)))):
post-norm x = norm(x + block(x)) by default, pre-norm x = x + block(norm(x)) with
norm_first=True. Sequences are (L, N, E), or (N, L, E) with batch_first, or unbatched (L, E).
"""

from __future__ import annotations

import copy
from typing import Callable, Optional, Union

from gradflow.nn import functional as F
from gradflow.nn import init
from gradflow.nn.attention import MultiheadAttention
from gradflow.nn.containers import ModuleList
from gradflow.nn.dropout import Dropout
from gradflow.nn.linear import Linear
from gradflow.nn.module import Module
from gradflow.nn.normalization import LayerNorm
from gradflow.ops.common import as_bool, as_size
from gradflow.tensor import Tensor

__all__ = [
    "Transformer", "TransformerDecoder", "TransformerDecoderLayer", "TransformerEncoder",
    "TransformerEncoderLayer"
]

Activation = Union[str, Callable[[Tensor], Tensor]]


def _activation(activation: Activation, layer: str) -> Callable[[Tensor], Tensor]:
    if activation == "relu":
        return F.relu
    if activation == "gelu":
        return F.gelu
    if callable(activation):
        return activation
    raise RuntimeError(f"{layer}: activation should be relu/gelu, not {activation!r}")


def generate_square_subsequent_mask(sz: int, device=None, dtype=None) -> Tensor:
    """(sz, sz) float mask: 0 where column <= row (a position may attend to itself and
    earlier ones), -inf above the diagonal."""
    sz = as_size(sz, "generate_square_subsequent_mask", "sz")
    return F._causal_bias(sz, sz, dtype, device)


class _Layer(Module):
    """What both layer kinds share: the constructor (PyTorch's signature, and its order of
    children, which is state_dict's order), the feed-forward block and the attention call.
    `_blocks` residual blocks: 2 in the encoder layer, 3 in the decoder layer, whose second
    block (multihead_attn) attends to the encoder's output."""

    _blocks: int

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048,
                 dropout: float = 0.1, activation: Activation = "relu",
                 layer_norm_eps: float = 1e-5, batch_first: bool = False,
                 norm_first: bool = False, bias: bool = True, device=None, dtype=None) -> None:
        super().__init__()
        name = type(self).__name__
        factory = dict(device=device, dtype=dtype)
        attention = dict(dropout=dropout, bias=bias, batch_first=batch_first, **factory)
        self.self_attn = MultiheadAttention(d_model, nhead, **attention)
        if self._blocks == 3:
            self.multihead_attn = MultiheadAttention(d_model, nhead, **attention)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, **factory)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, **factory)
        self.norm_first = as_bool(norm_first, name, "norm_first")
        for i in range(1, self._blocks + 1):
            setattr(self, f"norm{i}", LayerNorm(d_model, layer_norm_eps, bias=bias, **factory))
        for i in range(1, self._blocks + 1):
            setattr(self, f"dropout{i}", Dropout(dropout))
        # A Module activation is registered as a child (after the others, as PyTorch).
        self.activation = _activation(activation, name)

    def _ff_block(self, x: Tensor) -> Tensor:
        return self.linear2(self.dropout(self.activation(self.linear1(x))))

    @staticmethod
    def _attend(attention: MultiheadAttention, x: Tensor, source: Tensor,
                mask: Optional[Tensor], padding: Optional[Tensor], is_causal: bool) -> Tensor:
        return attention(x, source, source, attn_mask=mask, key_padding_mask=padding,
                         need_weights=False, is_causal=is_causal)[0]


class TransformerEncoderLayer(_Layer):
    """Self-attention then feed-forward, each a residual block (see the module doc).

    >>> layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, batch_first=True)
    >>> layer(gf.ones(3, 5, 8)).shape
    gradflow.Size([3, 5, 8])
    """

    _blocks = 2

    def _sa_block(self, x: Tensor, mask, padding, is_causal: bool) -> Tensor:
        return self.dropout1(self._attend(self.self_attn, x, x, mask, padding, is_causal))

    def forward(self, src: Tensor, src_mask: Optional[Tensor] = None,
                src_key_padding_mask: Optional[Tensor] = None, is_causal: bool = False) -> Tensor:
        x = src
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            return x + self.dropout2(self._ff_block(self.norm2(x)))
        x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
        return self.norm2(x + self.dropout2(self._ff_block(x)))


class TransformerDecoderLayer(_Layer):
    """Self-attention over the target, attention to `memory`, then feed-forward, each a
    residual block (see the module doc).

    >>> layer = nn.TransformerDecoderLayer(8, 2, dim_feedforward=16)
    >>> layer(gf.ones(4, 3, 8), gf.ones(5, 3, 8)).shape
    gradflow.Size([4, 3, 8])
    """

    _blocks = 3

    def forward(self, tgt: Tensor, memory: Tensor, tgt_mask: Optional[Tensor] = None,
                memory_mask: Optional[Tensor] = None,
                tgt_key_padding_mask: Optional[Tensor] = None,
                memory_key_padding_mask: Optional[Tensor] = None, tgt_is_causal: bool = False,
                memory_is_causal: bool = False) -> Tensor:
        def sa(x):
            return self.dropout1(self._attend(self.self_attn, x, x, tgt_mask,
                                              tgt_key_padding_mask, tgt_is_causal))

        def mha(x):
            return self.dropout2(self._attend(self.multihead_attn, x, memory, memory_mask,
                                              memory_key_padding_mask, memory_is_causal))

        x = tgt
        if self.norm_first:
            x = x + sa(self.norm1(x))
            x = x + mha(self.norm2(x))
            return x + self.dropout3(self._ff_block(self.norm3(x)))
        x = self.norm1(x + sa(x))
        x = self.norm2(x + mha(x))
        return self.norm3(x + self.dropout3(self._ff_block(x)))


def _clones(layer: Module, n: int, owner: str) -> ModuleList:
    return ModuleList([copy.deepcopy(layer) for _ in range(as_size(n, owner, "num_layers"))])


class TransformerEncoder(Module):
    """num_layers deep copies of encoder_layer applied in turn, then `norm` if given.

    >>> layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16)
    >>> encoder = nn.TransformerEncoder(layer, num_layers=2)
    >>> encoder(gf.ones(5, 3, 8)).shape, len(encoder.layers)
    (gradflow.Size([5, 3, 8]), 2)
    """

    def __init__(self, encoder_layer: TransformerEncoderLayer, num_layers: int,
                 norm: Optional[Module] = None, enable_nested_tensor: bool = True,
                 mask_check: bool = True) -> None:
        super().__init__()
        self.layers = _clones(encoder_layer, num_layers, "TransformerEncoder")
        self.num_layers = num_layers
        self.norm = norm
        self.enable_nested_tensor = enable_nested_tensor  # accepted; no nested tensors here
        self.mask_check = mask_check

    def forward(self, src: Tensor, mask: Optional[Tensor] = None,
                src_key_padding_mask: Optional[Tensor] = None,
                is_causal: Optional[bool] = None) -> Tensor:
        x = src
        for layer in self.layers:
            x = layer(x, src_mask=mask, src_key_padding_mask=src_key_padding_mask,
                      is_causal=bool(is_causal))
        return x if self.norm is None else self.norm(x)


class TransformerDecoder(Module):
    """num_layers deep copies of decoder_layer applied in turn, then `norm` if given.

    >>> decoder = nn.TransformerDecoder(nn.TransformerDecoderLayer(8, 2, 16), num_layers=2)
    >>> decoder(gf.ones(4, 3, 8), gf.ones(5, 3, 8)).shape
    gradflow.Size([4, 3, 8])
    """

    def __init__(self, decoder_layer: TransformerDecoderLayer, num_layers: int,
                 norm: Optional[Module] = None) -> None:
        super().__init__()
        self.layers = _clones(decoder_layer, num_layers, "TransformerDecoder")
        self.num_layers = num_layers
        self.norm = norm

    def forward(self, tgt: Tensor, memory: Tensor, tgt_mask: Optional[Tensor] = None,
                memory_mask: Optional[Tensor] = None,
                tgt_key_padding_mask: Optional[Tensor] = None,
                memory_key_padding_mask: Optional[Tensor] = None,
                tgt_is_causal: Optional[bool] = None, memory_is_causal: bool = False) -> Tensor:
        x = tgt
        for layer in self.layers:
            x = layer(x, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                      tgt_key_padding_mask=tgt_key_padding_mask,
                      memory_key_padding_mask=memory_key_padding_mask,
                      tgt_is_causal=bool(tgt_is_causal), memory_is_causal=memory_is_causal)
        return x if self.norm is None else self.norm(x)


class Transformer(Module):
    """An encoder over `src` and a decoder over `tgt` attending to the encoder's output.
    Weights of 2 or more dims are Xavier-uniform initialised, as PyTorch's.

    >>> model = nn.Transformer(8, 2, num_encoder_layers=1, num_decoder_layers=1, dim_feedforward=16)
    >>> model(gf.ones(5, 3, 8), gf.ones(4, 3, 8)).shape
    gradflow.Size([4, 3, 8])
    """

    def __init__(self, d_model: int = 512, nhead: int = 8, num_encoder_layers: int = 6,
                 num_decoder_layers: int = 6, dim_feedforward: int = 2048,
                 dropout: float = 0.1, activation: Activation = "relu",
                 custom_encoder: Optional[Module] = None,
                 custom_decoder: Optional[Module] = None, layer_norm_eps: float = 1e-5,
                 batch_first: bool = False, norm_first: bool = False, bias: bool = True,
                 device=None, dtype=None) -> None:
        super().__init__()
        layer_args = dict(d_model=d_model, nhead=nhead, dim_feedforward=dim_feedforward,
                          dropout=dropout, activation=activation, layer_norm_eps=layer_norm_eps,
                          batch_first=batch_first, norm_first=norm_first, bias=bias,
                          device=device, dtype=dtype)
        norm_args = dict(eps=layer_norm_eps, bias=bias, device=device, dtype=dtype)
        if custom_encoder is None:
            custom_encoder = TransformerEncoder(TransformerEncoderLayer(**layer_args),
                                                num_encoder_layers, LayerNorm(d_model, **norm_args))
        if custom_decoder is None:
            custom_decoder = TransformerDecoder(TransformerDecoderLayer(**layer_args),
                                                num_decoder_layers, LayerNorm(d_model, **norm_args))
        self.encoder = custom_encoder
        self.decoder = custom_decoder
        self._reset_parameters()
        self.d_model = d_model
        self.nhead = nhead
        self.batch_first = batch_first

    def _reset_parameters(self) -> None:
        for p in self.parameters():
            if p.dim() > 1:
                init.xavier_uniform_(p)

    generate_square_subsequent_mask = staticmethod(generate_square_subsequent_mask)

    def forward(self, src: Tensor, tgt: Tensor, src_mask: Optional[Tensor] = None,
                tgt_mask: Optional[Tensor] = None, memory_mask: Optional[Tensor] = None,
                src_key_padding_mask: Optional[Tensor] = None,
                tgt_key_padding_mask: Optional[Tensor] = None,
                memory_key_padding_mask: Optional[Tensor] = None,
                src_is_causal: Optional[bool] = None, tgt_is_causal: Optional[bool] = None,
                memory_is_causal: bool = False) -> Tensor:
        batch_dim = 0 if self.batch_first else 1
        if src.ndim == 3 and src.shape[batch_dim] != tgt.shape[batch_dim]:
            raise RuntimeError(f"Transformer: the batch number of src {tuple(src.shape)} and "
                               f"tgt {tuple(tgt.shape)} must be equal")
        if src.shape[-1] != self.d_model or tgt.shape[-1] != self.d_model:
            raise RuntimeError(f"Transformer: the feature number of src {tuple(src.shape)} and "
                               f"tgt {tuple(tgt.shape)} must be equal to d_model "
                               f"({self.d_model})")
        memory = self.encoder(src, mask=src_mask, src_key_padding_mask=src_key_padding_mask,
                              is_causal=src_is_causal)
        return self.decoder(tgt, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                            tgt_key_padding_mask=tgt_key_padding_mask,
                            memory_key_padding_mask=memory_key_padding_mask,
                            tgt_is_causal=tgt_is_causal, memory_is_causal=memory_is_causal)
