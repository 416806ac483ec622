"""gradflow.nn.functional: the stateless forms of the layers, with torch.nn.functional's names
and signatures. Most are re-exported from ``gradflow.ops``; the few defined here are thin
compositions of Tensor ops."""

from __future__ import annotations

import numbers
import warnings
from typing import Callable, Optional

from gradflow.autograd import Function, no_grad
from gradflow.ops import elementwise as _ew
from gradflow.ops.common import (
    allocating,
    as_bool,
    as_float,
    as_int,
    broadcast_shapes,
    check_tensor,
    wrap_dim,
)
from gradflow.ops.conv import conv1d, conv2d, conv_transpose2d, fold, unfold  # noqa: F401
from gradflow.ops.dropout import dropout, dropout2d  # noqa: F401
from gradflow.ops.inplace import apply_
from gradflow.ops.linalg import linear  # noqa: F401
from gradflow.ops.loss import (  # noqa: F401
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    huber_loss,
    kl_div,
    l1_loss,
    mse_loss,
    nll_loss,
    smooth_l1_loss,
)
from gradflow.ops.norm import batch_norm, group_norm, instance_norm, layer_norm  # noqa: F401
from gradflow.ops.pool import (  # noqa: F401
    adaptive_avg_pool2d,
    adaptive_max_pool2d,
    avg_pool2d,
    interpolate,
    max_pool2d,
    max_unpool2d,
)
from gradflow.ops.reduce import log_softmax as _log_softmax
from gradflow.ops.reduce import softmax as _softmax
from gradflow.ops.shape import pad  # noqa: F401
from gradflow.tensor import Tensor, arange, ones_like, zeros
from gradflow.types import bool_, int32, int64


# ---------------------------------------------------------------- linear
# ---------------------------------------------------------------- activations
def _maybe_inplace(op: str, input: Tensor, fn: Callable[[Tensor], Tensor],
                   inplace: bool) -> Tensor:
    """fn(input), written into input's storage when inplace (refused, naming the op, for a
    leaf that requires grad)."""
    check_tensor(input, op)
    if not as_bool(inplace, op, "inplace"):
        return fn(input)
    return apply_(input, fn, op)  # fn reads a copy when recording: its node may save it


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    """max(0, x); `inplace=True` overwrites the input.

    >>> F.relu(gf.tensor([-1.0, 2.0]))
    tensor([0., 2.])
    """
    return _maybe_inplace("relu", input, _ew.relu, inplace)


def relu_(input: Tensor) -> Tensor:
    """relu in place: overwrites the input and returns it.

    >>> x = gf.tensor([-1.0, 2.0])
    >>> F.relu_(x) is x, x
    (True, tensor([0., 2.]))
    """
    return _maybe_inplace("relu_", input, _ew.relu, True)


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    """min(max(0, x), 6).

    >>> F.relu6(gf.tensor([-1.0, 7.0]))
    tensor([0., 6.])
    """
    return _maybe_inplace("relu6", input, lambda x: _ew.clamp(x, 0.0, 6.0), inplace)


def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0,
             inplace: bool = False) -> Tensor:
    """x clamped to [min_val, max_val].

    >>> F.hardtanh(gf.tensor([-3.0, 0.5, 3.0]))
    tensor([-1.0000,  0.5000,  1.0000])
    """
    lo, hi = as_float(min_val, "hardtanh", "min_val"), as_float(max_val, "hardtanh", "max_val")
    return _maybe_inplace("hardtanh", input, lambda x: _ew.clamp(x, lo, hi), inplace)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """x for x > 0, negative_slope * x otherwise.

    >>> F.leaky_relu(gf.tensor([-1.0, 2.0]), 0.1)
    tensor([-0.1000,  2.0000])
    """
    return _maybe_inplace("leaky_relu", input,
                          lambda x: _ew.leaky_relu(x, negative_slope), inplace)


def prelu(input: Tensor, weight: Tensor) -> Tensor:
    """max(0, x) + weight * min(0, x), one weight per channel (dim 1) or one shared.

    >>> F.prelu(gf.tensor([[-1.0], [2.0]]), gf.tensor([0.25]))
    tensor([[-0.2500],
            [ 2.0000]])
    """
    check_tensor(input, "prelu")
    check_tensor(weight, "prelu", "weight")
    channels = input.shape[1] if input.ndim >= 2 else 1
    if weight.numel() not in (1, channels) or weight.ndim > 1:
        raise ValueError(f"prelu: weight must hold 1 or {channels} (the input's channels) "
                         f"values, got shape {tuple(weight.shape)} for input "
                         f"{tuple(input.shape)}")
    if weight.numel() != 1 and input.ndim >= 2:
        weight = weight.reshape((1, -1) + (1,) * (input.ndim - 2))
    return _ew.where(input > 0, input, input * weight)


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x for x > 0, alpha * (exp(x) - 1) otherwise.

    >>> F.elu(gf.tensor([-1.0, 2.0]))
    tensor([-0.6321,  2.0000])
    """
    return _maybe_inplace("elu", input, lambda x: _ew.elu(x, alpha), inplace)


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """x * Phi(x), Phi the standard normal CDF; approximate="tanh" uses the tanh form.

    >>> F.gelu(gf.tensor([-1.0, 1.0]))
    tensor([-0.1587,  0.8413])
    """
    return _ew.gelu(input, approximate)


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    """x * sigmoid(x).

    >>> F.silu(gf.tensor([-1.0, 1.0]))
    tensor([-0.2689,  0.7311])
    """
    return _maybe_inplace("silu", input, _ew.silu, inplace)


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + exp(beta x)) / beta, and x itself where beta x > threshold.

    >>> F.softplus(gf.tensor([0.0, 30.0]))
    tensor([ 0.6931, 30.0000])
    """
    return _ew.softplus(input, beta, threshold)


def logsigmoid(input: Tensor) -> Tensor:
    """log(sigmoid(x)) = -softplus(-x).

    >>> F.logsigmoid(gf.tensor([0.0]))
    tensor([-0.6931])
    """
    return -_ew.softplus(-_ew.float_input("logsigmoid", input))


def sigmoid(input: Tensor) -> Tensor:
    """1 / (1 + exp(-x)).

    >>> F.sigmoid(gf.tensor([0.0]))
    tensor([0.5000])
    """
    return _ew.sigmoid(input)


def tanh(input: Tensor) -> Tensor:
    """tanh(x), elementwise.

    >>> F.tanh(gf.tensor([0.0]))
    tensor([0.])
    """
    return _ew.tanh(input)


def _softmax_dim(ndim: int, name: str) -> int:
    warnings.warn(f"Implicit dimension choice for {name} has been deprecated. Change the call "
                  "to include dim=X as an argument.", stacklevel=3)
    return 0 if ndim in (0, 1, 3) else 1


def softmax(input: Tensor, dim: Optional[int] = None, _stacklevel: int = 3,
            dtype=None) -> Tensor:
    """exp(x_i) / sum_j exp(x_j) along dim (computed in `dtype` when given).

    >>> F.softmax(gf.tensor([[0.0, 0.0], [0.0, 1.0]]), dim=1)
    tensor([[0.5000, 0.5000],
            [0.2689, 0.7311]])
    """
    check_tensor(input, "softmax")
    if dim is None:
        dim = _softmax_dim(input.ndim, "softmax")
    return _softmax(input, dim, dtype=dtype)


def log_softmax(input: Tensor, dim: Optional[int] = None, _stacklevel: int = 3,
                dtype=None) -> Tensor:
    """x_i - logsumexp(x) along dim, computed stably (in `dtype` when given).

    >>> F.log_softmax(gf.tensor([0.0, 0.0]), dim=0)
    tensor([-0.6931, -0.6931])
    """
    check_tensor(input, "log_softmax")
    if dim is None:
        dim = _softmax_dim(input.ndim, "log_softmax")
    return _log_softmax(input, dim, dtype=dtype)


# ---------------------------------------------------------------- misc
def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12) -> Tensor:
    """x / max(||x||_p along dim, eps).

    >>> F.normalize(gf.tensor([[3.0, 4.0]]))
    tensor([[0.6000, 0.8000]])
    """
    op = "normalize"
    check_tensor(input, op)
    if not input.is_floating_point():
        raise TypeError(f"{op}: expected a floating-point input, got {input.dtype}")
    if not isinstance(p, (numbers.Real, str)):
        raise TypeError(f"{op}: argument 'p' must be a number, not {type(p).__name__}")
    dim = wrap_dim(dim, input.ndim, op)
    eps = as_float(eps, op, "eps")
    return input / input.norm(p, dim, keepdim=True).clamp(min=eps).expand_as(input)


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """int64 (*, num_classes) with a 1 at each index (num_classes=-1: max index + 1).

    >>> F.one_hot(gf.tensor([0, 2]), 3)
    tensor([[1, 0, 0],
            [0, 0, 1]])
    """
    op = "one_hot"
    check_tensor(tensor, op, "tensor")
    if tensor.dtype is not int64:
        raise RuntimeError(f"{op} is only applicable to index tensor of dtype int64, got "
                           f"{tensor.dtype}")
    num_classes = as_int(num_classes, op, "num_classes")
    if num_classes < -1:
        raise ValueError(f"{op}: num_classes must be -1 (infer) or >= 0, got {num_classes}")
    if num_classes == -1:
        num_classes = int(tensor.max().item()) + 1 if tensor.numel() else 0
    if tensor.numel() and (bool((tensor < 0).any()) or bool((tensor >= num_classes).any())):
        raise RuntimeError("one_hot: Class values must be non-negative and smaller than "
                           f"num_classes ({num_classes}).")
    with allocating(op, tuple(tensor.shape) + (num_classes,), int64.itemsize):
        classes = arange(num_classes, device=tensor.device)
        return (tensor.unsqueeze(-1) == classes).long()


class _Embedding(Function):
    """out[...] = weight[index[...]]; the gradient of a row is the sum of the gradients of the
    positions that picked it, except padding_idx's row, which gets none. With
    scale_grad_by_freq each position's gradient is divided by how often its index occurs."""

    @staticmethod
    def forward(ctx, weight: Tensor, index: Tensor, padding_idx: Optional[int],
                scale_grad_by_freq: bool):
        ctx.save_for_backward(index)
        ctx.num_rows, ctx.padding_idx = weight.shape[0], padding_idx
        ctx.scale_grad_by_freq = scale_grad_by_freq
        flat = weight.index_select(0, index.reshape(-1))
        return flat.reshape(tuple(index.shape) + (weight.shape[1],))

    @staticmethod
    def backward(ctx, g: Tensor):
        (index,) = ctx.saved_tensors
        flat_idx = index.reshape(-1)
        g2 = g.reshape(flat_idx.shape[0], g.shape[-1])
        if ctx.padding_idx is not None:
            g2 = g2 * (flat_idx != ctx.padding_idx).unsqueeze(1).to(g.dtype)
        if ctx.scale_grad_by_freq:
            ones = ones_like(flat_idx, dtype=g.dtype)
            counts = zeros(ctx.num_rows, dtype=g.dtype, device=g.device).index_add(0, flat_idx,
                                                                                  ones)
            g2 = g2 / counts[flat_idx].unsqueeze(1)
        rows = zeros(ctx.num_rows, g2.shape[1], dtype=g.dtype, device=g.device)
        return rows.index_add(0, flat_idx, g2), None, None, None


def _renorm_rows_(weight: Tensor, index: Tensor, max_norm: float, norm_type: float) -> None:
    """Scale the rows of weight that index picks so their norm is at most max_norm."""
    with no_grad():
        rows = index.reshape(-1)
        picked = weight.index_select(0, rows)
        norms = picked.norm(norm_type, 1, keepdim=True)
        scale = _ew.where(norms > max_norm, max_norm / (norms + 1e-7), 1.0)
        weight[rows] = picked * scale


def embedding(input: Tensor, weight: Tensor, padding_idx: Optional[int] = None,
              max_norm: Optional[float] = None, norm_type: float = 2.0,
              scale_grad_by_freq: bool = False, sparse: bool = False) -> Tensor:
    """Rows of weight (num_embeddings, dim) picked by the integer tensor input.

    >>> weight = gf.arange(6.0).reshape(3, 2)
    >>> F.embedding(gf.tensor([[2, 0]]), weight)
    tensor([[[4., 5.],
             [0., 1.]]])
    """
    op = "embedding"
    check_tensor(input, op)
    check_tensor(weight, op, "weight")
    if input.dtype not in (int64, int32):  # PyTorch's Long or Int indices
        raise RuntimeError(f"{op}: expected indices of dtype int64 or int32, got {input.dtype}")
    input = input.long()
    if weight.ndim != 2:
        raise ValueError(f"{op}: weight must be 2-D (num_embeddings, embedding_dim), got shape "
                         f"{tuple(weight.shape)}")
    scale_grad_by_freq = as_bool(scale_grad_by_freq, op, "scale_grad_by_freq")
    if as_bool(sparse, op, "sparse"):
        raise RuntimeError(f"{op}: sparse=True needs sparse gradients, which gradflow does not "
                           "have; use sparse=False")
    n = weight.shape[0]
    if padding_idx is not None:
        padding_idx = as_int(padding_idx, op, "padding_idx")
        if not -n <= padding_idx < n:
            raise ValueError(f"{op}: padding_idx ({padding_idx}) must be within num_embeddings "
                             f"({n})")
        padding_idx %= n
    if input.numel() and (bool((input < 0).any()) or bool((input >= n).any())):
        raise IndexError(f"embedding: index out of range in self (num_embeddings={n})")
    if max_norm is not None:
        if not weight.is_floating_point():
            raise TypeError(f"{op}: max_norm needs a floating-point weight, got {weight.dtype}")
        _renorm_rows_(weight, input, as_float(max_norm, op, "max_norm"),
                      as_float(norm_type, op, "norm_type"))
    return _Embedding.apply(weight, input, padding_idx, scale_grad_by_freq)


# ---------------------------------------------------------------- pixel shuffle
def _shuffle_factor(input: Tensor, factor: int, op: str, arg: str) -> int:
    check_tensor(input, op)
    factor = as_int(factor, op, arg)
    if factor <= 0:
        raise ValueError(f"{op}: {arg} must be greater than 0, got {factor}")
    if input.ndim < 3:
        raise ValueError(f"{op}: expected an input of at least 3 dims (*, C, H, W), got shape "
                         f"{tuple(input.shape)}")
    return factor


def pixel_shuffle(input: Tensor, upscale_factor: int) -> Tensor:
    """(*, C r^2, H, W) -> (*, C, H r, W r):
    out[c, h r + i, w r + j] = in[c r^2 + i r + j, h, w].

    >>> F.pixel_shuffle(gf.arange(4.0).reshape(1, 4, 1, 1), 2)
    tensor([[[[0., 1.],
              [2., 3.]]]])
    """
    op = "pixel_shuffle"
    r = _shuffle_factor(input, upscale_factor, op, "upscale_factor")
    *batch, c, h, w = input.shape
    if c % (r * r):
        raise ValueError(f"{op}: the channels of input {tuple(input.shape)} must be divisible "
                         f"by upscale_factor squared ({r * r})")
    n = len(batch)
    x = input.reshape(*batch, c // (r * r), r, r, h, w)
    x = x.permute(*range(n), n, n + 3, n + 1, n + 4, n + 2)  # (*, C, H, r, W, r)
    return x.reshape(*batch, c // (r * r), h * r, w * r)


def pixel_unshuffle(input: Tensor, downscale_factor: int) -> Tensor:
    """(*, C, H r, W r) -> (*, C r^2, H, W), the inverse of pixel_shuffle.

    >>> x = gf.arange(16.0).reshape(1, 1, 4, 4)
    >>> F.pixel_unshuffle(x, 2).shape, gf.equal(F.pixel_shuffle(F.pixel_unshuffle(x, 2), 2), x)
    (gradflow.Size([1, 4, 2, 2]), True)
    """
    op = "pixel_unshuffle"
    r = _shuffle_factor(input, downscale_factor, op, "downscale_factor")
    *batch, c, h, w = input.shape
    if h % r or w % r:
        raise ValueError(f"{op}: the height and width of input {tuple(input.shape)} must be "
                         f"divisible by downscale_factor ({r})")
    n = len(batch)
    x = input.reshape(*batch, c, h // r, r, w // r, r)
    x = x.permute(*range(n), n, n + 2, n + 4, n + 1, n + 3)  # (*, C, r, r, H, W)
    return x.reshape(*batch, c * r * r, h // r, w // r)


# ---------------------------------------------------------------- attention
def _attention_bias(mask: Optional[Tensor], like: Tensor, op: str, arg: str,
                    allowed_when: bool) -> Optional[Tensor]:
    """A mask as an additive float bias in `like`'s dtype: a bool mask gives 0 where it equals
    `allowed_when` and -inf elsewhere; a float mask is added as it is."""
    if mask is None:
        return None
    check_tensor(mask, op, arg)
    if mask.dtype is bool_:
        allowed = mask if allowed_when else ~mask
        return zeros(tuple(mask.shape), dtype=like.dtype, device=like.device).masked_fill(
            ~allowed, float("-inf"))
    if not mask.is_floating_point():
        raise TypeError(f"{op}: {arg} must be a bool or floating-point tensor, got {mask.dtype}")
    return mask.to(like.dtype)


def _causal_bias(length: int, source: int, dtype=None, device=None) -> Tensor:
    """(L, S): 0 where key position s <= query position l (the top-left-aligned lower
    triangle), -inf above it."""
    rows = arange(length, device=device).unsqueeze(-1)
    cols = arange(source, device=device)
    return zeros(length, source, dtype=dtype, device=device).masked_fill(cols > rows,
                                                                         float("-inf"))


def _repeat_heads(t: Tensor, groups: int) -> Tensor:
    """(*, H_kv, S, E) -> (*, H_kv * groups, S, E), each head repeated `groups` times in a row
    (repeat_interleave along the heads)."""
    *batch, heads, s, e = t.shape
    return t.unsqueeze(-3).expand(*batch, heads, groups, s, e).reshape(*batch, heads * groups, s,
                                                                      e)


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor,
                                 attn_mask: Optional[Tensor] = None, dropout_p: float = 0.0,
                                 is_causal: bool = False, scale: Optional[float] = None,
                                 enable_gqa: bool = False) -> Tensor:
    """softmax(Q K^T * scale + bias) V over (*, L, E) queries and (*, S, E) keys / (*, S, Ev)
    values; scale defaults to 1/sqrt(E). attn_mask broadcasts to (*, L, S): a bool mask says
    True where a query may attend (False becomes -inf), a float mask is added. is_causal
    masks keys after the query's position. enable_gqa lets H_q be a multiple of the key and
    value heads (dim -3), each shared by H_q / H_kv query heads.

    >>> q = k = gf.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    >>> v = gf.tensor([[[1.0, 2.0], [3.0, 4.0]]])
    >>> F.scaled_dot_product_attention(q, k, v, is_causal=True)
    tensor([[[1.0000, 2.0000],
             [2.3395, 3.3395]]])
    """
    op = "scaled_dot_product_attention"
    for arg, t in (("query", query), ("key", key), ("value", value)):
        check_tensor(t, op, arg)
        if t.ndim < 2 or not t.is_floating_point():
            raise ValueError(f"{op}: {arg} must be a floating-point tensor of at least 2 dims, "
                             f"got {t.dtype} of shape {tuple(t.shape)}")
    if query.shape[-1] != key.shape[-1] or key.shape[-2] != value.shape[-2]:
        raise ValueError(f"{op}: expected query (*, L, E), key (*, S, E) and value (*, S, Ev), "
                         f"got {tuple(query.shape)}, {tuple(key.shape)}, {tuple(value.shape)}")
    if as_bool(is_causal, op, "is_causal") and attn_mask is not None:
        raise ValueError(f"{op}: pass either attn_mask or is_causal=True, not both")
    if as_bool(enable_gqa, op, "enable_gqa") and key.ndim >= 3 and key.shape[-3] != query.shape[-3]:
        if query.shape[-3] % key.shape[-3]:
            raise ValueError(f"{op}: the query heads ({query.shape[-3]}) must be a multiple of "
                             f"the key/value heads ({key.shape[-3]})")
        key = _repeat_heads(key, query.shape[-3] // key.shape[-3])
        value = _repeat_heads(value, query.shape[-3] // value.shape[-3])
    scale = 1.0 / query.shape[-1] ** 0.5 if scale is None else as_float(scale, op, "scale")
    scores = (query @ key.transpose(-2, -1)) * scale
    bias = (_causal_bias(query.shape[-2], key.shape[-2], query.dtype, query.device) if is_causal
            else _attention_bias(attn_mask, query, op, "attn_mask", allowed_when=True))
    if bias is not None:
        scores = scores + bias
    weights = _softmax(scores, -1)
    if dropout_p:
        weights = dropout(weights, as_float(dropout_p, op, "dropout_p"), True)
    return weights @ value


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """Cosine of the angle between x1 and x2 along dim, after broadcasting them, as
    torch.nn.functional.cosine_similarity: sum(x1/max(||x1||, eps) * x2/max(||x2||, eps)).
    As PyTorch's, the gradient flows through each norm as if it were not clamped.

    >>> import gradflow
    >>> gradflow.nn.functional.cosine_similarity(gradflow.tensor([[1., 0.]]),
    ...                                          gradflow.tensor([[1., 1.]]))
    tensor([0.7071])
    """
    op = "cosine_similarity"
    check_tensor(x1, op, "x1")
    check_tensor(x2, op, "x2")
    if not (x1.is_floating_point() and x2.is_floating_point()):
        raise TypeError(f"{op}: expected floating-point inputs, got {x1.dtype} and {x2.dtype}")
    both = broadcast_shapes(op, x1.shape, x2.shape)
    x1, x2 = x1.expand(both), x2.expand(both)
    dim = wrap_dim(dim, x1.ndim, op)
    eps = as_float(eps, op, "eps")

    def unit(x: Tensor) -> Tensor:
        norm = x.norm(2, dim, keepdim=True)
        return x / (norm + (norm.detach().clamp(min=eps) - norm.detach()))

    return (unit(x1) * unit(x2)).sum(dim)
