"""MultiheadAttention, with PyTorch's parameters, arguments and masks.

With E = embed_dim split into H heads of E / H: the query, key and value are projected
(in_proj_weight (3E, E) when key and value have E features, else q/k/v_proj_weight), split
into heads, attended as softmax(Q K^T / sqrt(E / H) + bias) V, and the heads concatenated
and projected by out_proj. Masks follow PyTorch: in attn_mask (L, S) or (N H, L, S) and in
key_padding_mask (N, S), a bool True means "may NOT attend"; a float mask is added.
"""

from __future__ import annotations

from typing import Optional, Tuple

from gradflow.nn import functional as F
from gradflow.nn import init
from gradflow.nn.linear import Linear
from gradflow.nn.module import Module
from gradflow.nn.parameter import layer_tensor
from gradflow.ops.common import as_bool, as_float, as_size, check_tensor
from gradflow.ops.reduce import softmax
from gradflow.ops.shape import cat
from gradflow.tensor import Tensor, zeros

__all__ = ["MultiheadAttention"]


class NonDynamicallyQuantizableLinear(Linear):
    """A Linear; PyTorch names MultiheadAttention.out_proj's class so, and checkpoints that
    name classes by path find it here too."""


class MultiheadAttention(Module):
    """Attention from (L, N, E) queries to (S, N, kdim) keys and (S, N, vdim) values
    ((N, L, E) with batch_first, or unbatched (L, E)); forward returns (output,
    weights), the weights (N, L, S) averaged over heads (or (N, H, L, S)) when need_weights.

    >>> mha = nn.MultiheadAttention(8, 2, batch_first=True)
    >>> x = gf.ones(3, 5, 8)
    >>> out, weights = mha(x, x, x)
    >>> out.shape, weights.shape
    (gradflow.Size([3, 5, 8]), gradflow.Size([3, 5, 5]))
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 add_bias_kv: bool = False, add_zero_attn: bool = False,
                 kdim: Optional[int] = None, vdim: Optional[int] = None,
                 batch_first: bool = False, device=None, dtype=None) -> None:
        super().__init__()
        name = "MultiheadAttention"
        self.embed_dim = as_size(embed_dim, name, "embed_dim", minimum=1)
        self.num_heads = as_size(num_heads, name, "num_heads", minimum=1)
        if self.embed_dim % self.num_heads:
            raise ValueError(f"{name}: embed_dim ({embed_dim}) must be divisible by num_heads "
                             f"({num_heads})")
        self.head_dim = self.embed_dim // self.num_heads
        self.kdim = self.embed_dim if kdim is None else as_size(kdim, name, "kdim", 1)
        self.vdim = self.embed_dim if vdim is None else as_size(vdim, name, "vdim", 1)
        self._qkv_same_embed_dim = self.kdim == self.embed_dim and self.vdim == self.embed_dim
        self.dropout = as_float(dropout, name, "dropout")
        self.batch_first = as_bool(batch_first, name, "batch_first")
        self.add_zero_attn = as_bool(add_zero_attn, name, "add_zero_attn")
        e = self.embed_dim
        if self._qkv_same_embed_dim:
            self.in_proj_weight = layer_tensor(name, (3 * e, e), device, dtype)
            for proj in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
                self.register_parameter(proj, None)
        else:
            self.q_proj_weight = layer_tensor(name, (e, e), device, dtype)
            self.k_proj_weight = layer_tensor(name, (e, self.kdim), device, dtype)
            self.v_proj_weight = layer_tensor(name, (e, self.vdim), device, dtype)
            self.register_parameter("in_proj_weight", None)
        if as_bool(bias, name, "bias"):
            self.in_proj_bias = layer_tensor(name, (3 * e,), device, dtype)
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = NonDynamicallyQuantizableLinear(e, e, bias=bias, device=device,
                                                        dtype=dtype)
        if as_bool(add_bias_kv, name, "add_bias_kv"):
            self.bias_k = layer_tensor(name, (1, 1, e), device, dtype)
            self.bias_v = layer_tensor(name, (1, 1, e), device, dtype)
        else:
            self.bias_k = self.bias_v = None
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        """Projections Xavier-uniform, biases zero, bias_k / bias_v Xavier-normal (PyTorch's)."""
        for w in (self.in_proj_weight, self.q_proj_weight, self.k_proj_weight,
                  self.v_proj_weight):
            if w is not None:
                init.xavier_uniform_(w)
        if self.in_proj_bias is not None:
            init.zeros_(self.in_proj_bias)
            init.zeros_(self.out_proj.bias)
        for b in (self.bias_k, self.bias_v):
            if b is not None:
                init.xavier_normal_(b)

    def _project(self, query: Tensor, key: Tensor, value: Tensor) -> Tuple[Tensor, ...]:
        """q, k, v = x W^T + b for each of the three inputs (rows of in_proj_weight)."""
        e = self.embed_dim
        b = self.in_proj_bias
        bq, bk, bv = (None,) * 3 if b is None else (b[:e], b[e:2 * e], b[2 * e:])
        if self._qkv_same_embed_dim:
            w = self.in_proj_weight
            wq, wk, wv = w[:e], w[e:2 * e], w[2 * e:]
        else:
            wq, wk, wv = self.q_proj_weight, self.k_proj_weight, self.v_proj_weight
        return F.linear(query, wq, bq), F.linear(key, wk, bk), F.linear(value, wv, bv)

    def _batched(self, query: Tensor, key: Tensor, value: Tensor) -> Tuple[Tuple[Tensor, ...],
                                                                           bool]:
        """The inputs as (L, N, ·) sequences first, and whether they were unbatched."""
        name = "MultiheadAttention"
        for arg, t, width in (("query", query, self.embed_dim), ("key", key, self.kdim),
                              ("value", value, self.vdim)):
            check_tensor(t, name, arg)
            if t.ndim != query.ndim or t.ndim not in (2, 3) or t.shape[-1] != width:
                raise ValueError(f"{name}: expected {arg} with {width} features, of the "
                                 f"query's rank (2-D unbatched or 3-D), got shape "
                                 f"{tuple(t.shape)} for query {tuple(query.shape)}")
        if key.shape[:-1] != value.shape[:-1]:
            raise ValueError(f"{name}: key {tuple(key.shape)} and value {tuple(value.shape)} "
                             "must have the same sequence and batch sizes")
        if query.ndim == 2:
            return tuple(t.unsqueeze(1) for t in (query, key, value)), True
        if self.batch_first:
            return tuple(t.transpose(0, 1) for t in (query, key, value)), False
        return (query, key, value), False

    def _mask_bias(self, attn_mask: Optional[Tensor], key_padding_mask: Optional[Tensor],
                   like: Tensor, n: int, length: int,
                   source: int) -> Optional[Tensor]:
        """attn_mask and key_padding_mask merged into one additive bias that broadcasts to
        (N H, L, S)."""
        name = "MultiheadAttention"
        bias = F._attention_bias(attn_mask, like, name, "attn_mask", allowed_when=False)
        if bias is not None and tuple(bias.shape) not in ((length, source),
                                                         (n * self.num_heads, length, source)):
            raise ValueError(f"{name}: attn_mask must have shape {(length, source)} or "
                             f"{(n * self.num_heads, length, source)}, got "
                             f"{tuple(bias.shape)}")
        padding = F._attention_bias(key_padding_mask, like, name, "key_padding_mask",
                                    allowed_when=False)
        if padding is not None:
            if tuple(padding.shape) != (n, source):
                raise ValueError(f"{name}: key_padding_mask must have shape {(n, source)}, "
                                 f"got {tuple(padding.shape)}")
            padding = padding.reshape(n, 1, 1, source).expand(n, self.num_heads, 1, source)
            padding = padding.reshape(n * self.num_heads, 1, source)
            bias = padding if bias is None else bias + padding
        return bias

    def _extra_keys(self, k: Tensor, v: Tensor, n: int, bias: Optional[Tensor]):
        """add_bias_kv appends bias_k / bias_v as one more key and value, add_zero_attn one
        more of zeros, to the (S, N H, d) heads; the mask bias gains a 0 column for each."""
        appended = []
        if self.bias_k is not None:
            appended.append(tuple(b.expand(1, n, self.embed_dim).reshape(1, k.shape[1], -1)
                                  for b in (self.bias_k, self.bias_v)))
        if self.add_zero_attn:
            empty = zeros(1, k.shape[1], self.head_dim, dtype=k.dtype, device=k.device)
            appended.append((empty, empty))
        for extra_k, extra_v in appended:
            k, v = cat([k, extra_k]), cat([v, extra_v])
            if bias is not None:
                bias = F.pad(bias, (0, 1))
        return k, v, bias

    def forward(self, query: Tensor, key: Tensor, value: Tensor,
                key_padding_mask: Optional[Tensor] = None, need_weights: bool = True,
                attn_mask: Optional[Tensor] = None, average_attn_weights: bool = True,
                is_causal: bool = False) -> Tuple[Tensor, Optional[Tensor]]:
        name = "MultiheadAttention"
        if as_bool(is_causal, name, "is_causal") and attn_mask is None:
            raise RuntimeError(f"{name}: is_causal is a hint that attn_mask is the causal mask; "
                               "pass that mask too")
        (query, key, value), unbatched = self._batched(query, key, value)
        length, n, e = query.shape
        source = key.shape[0]
        bias = self._mask_bias(attn_mask, key_padding_mask, query, n, length, source)
        q, k, v = self._project(query, key, value)
        heads = n * self.num_heads
        # (L, N, E) -> (L, N H, d): head h of batch b is column block b H + h
        q = q.reshape(length, heads, self.head_dim)
        k, v = k.reshape(source, heads, self.head_dim), v.reshape(source, heads, self.head_dim)
        k, v, bias = self._extra_keys(k, v, n, bias)
        q, k, v = q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1)  # (N H, ·, d)
        scores = (q * self.head_dim ** -0.5) @ k.transpose(1, 2)
        weights = softmax(scores if bias is None else scores + bias, -1)
        if self.dropout and self.training:
            weights = F.dropout(weights, self.dropout, True)
        out = (weights @ v).transpose(0, 1).reshape(length, n, e)
        out = self.out_proj(out)
        out = out.squeeze(1) if unbatched else out.transpose(0, 1) if self.batch_first else out
        if not as_bool(need_weights, name, "need_weights"):
            return out, None
        weights = weights.reshape(n, self.num_heads, length, weights.shape[-1])
        if as_bool(average_attn_weights, name, "average_attn_weights"):
            weights = weights.mean(1)
        return out, (weights.squeeze(0) if unbatched else weights)
