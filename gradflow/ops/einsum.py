"""einsum: Einstein summation, composed of differentiable ops.

Each operand first loses its repeated labels (a diagonal, taken by indexing) and the labels
no other term needs (a sum). Then the operands are contracted left to right, two at a time,
as one batched matmul: labels shared and still needed are the batch, labels shared and no
longer needed are summed by the product, and the rest are the rows and columns. The gradient
of each operand is therefore made of the same ops (for two operands, another einsum), so it
is differentiable again. Labels are letters; the dims an ellipsis covers get the labels
'.0', '.1', ... counted from the right, so that they broadcast as PyTorch's do.
"""

from __future__ import annotations

import math
import string
from typing import AbstractSet, Dict, List, Sequence, Tuple, Union, cast

import numpy as np

from gradflow.ops import index, linalg, reduce, shape
from gradflow.ops.common import check_same_device, check_tensor
from gradflow.tensor import Tensor
from gradflow.types import bool_, promote_types

Labels = List[str]
_LETTERS = set(string.ascii_letters)


def _term_labels(term: str, ndim: int, n_ellipsis: int, where: str) -> Labels:
    """The labels of one term ('ij', 'b...k'); an ellipsis stands for the dims left over."""
    head, dots, tail = term.partition("...")
    if "." in head or "." in tail:
        raise ValueError(f"einsum: {where} '{term}' has a '.' that is not part of one '...'")
    for c in head + tail:
        if c not in _LETTERS:
            raise ValueError(f"einsum: invalid subscript '{c}' in {where} '{term}': subscripts "
                             "must be letters [a-zA-Z]")
    covered = ndim - len(head) - len(tail)
    if covered < 0 or (covered > 0 and not dots):
        raise ValueError(f"einsum: {where} '{term}' has {len(head) + len(tail)} subscripts "
                         f"for a tensor of {ndim} dims")
    middle = [f".{i}" for i in range(n_ellipsis - covered, n_ellipsis)] if dots else []
    return list(head) + middle + list(tail)


def _parse(equation: str, ndims: Sequence[int]) -> Tuple[List[Labels], Labels]:
    """The labels of each input term and of the output (implicit: the ellipsis dims, then
    the labels that appear once, in alphabetical order, as PyTorch)."""
    equation = equation.replace(" ", "")
    lhs, arrow, rhs = equation.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(ndims):
        raise ValueError(f"einsum: the equation '{equation}' has {len(terms)} input terms for "
                         f"{len(ndims)} operands")
    n_ellipsis = max((nd - len(t.replace("...", "")) for t, nd in zip(terms, ndims)
                      if "..." in t), default=0)
    inputs = [_term_labels(t, nd, n_ellipsis, f"term {i}")
              for i, (t, nd) in enumerate(zip(terms, ndims))]
    seen = [label for labels in inputs for label in labels]
    dims = [f".{i}" for i in range(n_ellipsis)] if "..." in lhs else []
    if not arrow:
        return inputs, dims + sorted(c for c in set(seen) if c[0] != "." and seen.count(c) == 1)
    ndim = len(rhs.replace("...", "")) + (n_ellipsis if "..." in rhs else 0)
    output = _term_labels(rhs, ndim, n_ellipsis, "the output")
    for label in output:
        if output.count(label) > 1 or label not in seen:
            why = "appears more than once" if output.count(label) > 1 else "is not in any input"
            raise ValueError(f"einsum: output subscript '{label}' {why}")
    return inputs, output


def _diagonal(x: Tensor, labels: Labels) -> Tuple[Tensor, Labels]:
    """x with each repeated label kept once: x[..., i, ..., i, ...] -> x[..., i, ...]."""
    while len(set(labels)) < len(labels):
        label = next(c for c in labels if labels.count(c) > 1)
        first, second = (i for i, c in enumerate(labels) if c == label)
        if x.shape[first] != x.shape[second]:
            raise ValueError(f"einsum: subscript '{label}' is repeated for dims of sizes "
                             f"{x.shape[first]} and {x.shape[second]}")
        rest = [i for i in range(x.ndim) if i not in (first, second)]
        x = shape.permute(x, [first, second] + rest)
        steps = Tensor._make(x._backend.from_numpy(np.arange(x.shape[0], dtype=np.int64)),
                             x._backend)
        x = index.getitem(x, (steps, steps))  # the diagonal, then the other dims
        labels = [label] + [labels[i] for i in rest]
    return x, labels


def _sum_out(x: Tensor, labels: Labels, keep: AbstractSet[str]) -> Tuple[Tensor, Labels]:
    """x summed over the labels not in `keep`."""
    axes = tuple(i for i, c in enumerate(labels) if c not in keep)
    if not axes:
        return x, labels
    return reduce.sum(x, axes), [c for c in labels if c in keep]


def _expand_to(x: Tensor, labels: Labels, sizes: Dict[str, int]) -> Tensor:
    """x with its size-1 dims broadcast to the operands' common size of their label."""
    target = tuple(sizes[c] for c in labels)
    return x if tuple(x.shape) == target else shape.expand(x, target)


def _contract(a: Tensor, la: Labels, b: Tensor, lb: Labels, keep: AbstractSet[str],
              sizes: Dict[str, int]) -> Tuple[Tensor, Labels]:
    """The product of two terms summed over their shared labels not in `keep`, as one
    batched matmul (B, rows, shared) @ (B, shared, cols)."""
    a, b = _expand_to(a, la, sizes), _expand_to(b, lb, sizes)
    batch = [c for c in la if c in lb and c in keep]
    summed = [c for c in la if c in lb and c not in keep]
    rows = [c for c in la if c not in lb]
    cols = [c for c in lb if c not in la]

    def matrices(x: Tensor, labels: Labels, order: Labels, split: int) -> Tensor:
        x = shape.permute(x, [labels.index(c) for c in order])
        groups = (batch, order[len(batch):split], order[split:])
        return shape.reshape(x, tuple(math.prod(sizes[c] for c in g) for g in groups))

    left = matrices(a, la, batch + rows + summed, len(batch) + len(rows))
    right = matrices(b, lb, batch + summed + cols, len(batch) + len(summed))
    out = linalg.matmul(left, right)
    labels = batch + rows + cols
    return shape.reshape(out, tuple(sizes[c] for c in labels)), labels


def _label_sizes(operands: Sequence[Tensor], inputs: List[Labels]) -> Dict[str, int]:
    """Each label's size; a size-1 dim broadcasts against the others, as in PyTorch."""
    sizes: Dict[str, int] = {}
    for x, labels in zip(operands, inputs):
        for c, n in zip(labels, x.shape):
            known = sizes.get(c, 1)
            if n != 1 and known != 1 and n != known:
                name = "an ellipsis dim" if c[0] == "." else f"subscript '{c}'"
                raise ValueError(f"einsum: {name} has sizes {known} and {n}, which do not "
                                 f"broadcast (operand shapes "
                                 f"{', '.join(str(tuple(o.shape)) for o in operands)})")
            sizes[c] = n if n != 1 else known
    return sizes


def _check_operands(given: Sequence[Union[Tensor, Sequence[Tensor]]]) -> Tuple[Tensor, ...]:
    """The operands as one list of tensors of the promoted dtype on one device."""
    if len(given) == 1 and isinstance(given[0], (list, tuple)):
        given = tuple(given[0])
    if not given:
        raise ValueError("einsum: expected at least one operand")
    for i, x in enumerate(given):
        check_tensor(x, "einsum", f"operands[{i}]")
    operands = cast(Tuple[Tensor, ...], tuple(given))  # each checked to be a Tensor above
    for x in operands:
        check_same_device("einsum", operands[0], x)
    dt = operands[0].dtype
    for x in operands[1:]:
        dt = promote_types(dt, x.dtype)
    if dt is bool_:
        raise TypeError("einsum: bool operands are not supported")
    return tuple(shape.to_dtype(x, dt) for x in operands)


def einsum(equation: str, *operands: Union[Tensor, Sequence[Tensor]]) -> Tensor:
    """Sums the products of the operands' elements over the indices the equation names.

    As ``torch.einsum``: implicit (``'ij,jk'``) and explicit (``'ij,jk->ik'``) output,
    repeated subscripts (``'ii->i'``, a diagonal), ``...`` for broadcast dims, and size-1
    dims broadcasting; the operands may also be passed as one list. Differentiable in every
    operand, to any order.

    >>> import gradflow as gf
    >>> a, b = gf.tensor([[1., 2.], [3., 4.]]), gf.tensor([[1., 0.], [1., 1.]])
    >>> gf.einsum("ij,jk->ik", a, b)
    tensor([[3., 2.],
            [7., 4.]])
    >>> gf.einsum("ii", a)
    tensor(5.)
    """
    if not isinstance(equation, str):
        raise TypeError(f"einsum: argument 'equation' must be str, not "
                        f"{type(equation).__name__}")
    operands = _check_operands(operands)
    inputs, output = _parse(equation, [x.ndim for x in operands])
    sizes = _label_sizes(operands, inputs)
    terms = [_diagonal(x, labels) for x, labels in zip(operands, inputs)]
    for i, (x, labels) in enumerate(terms):  # sum early what no other term needs
        others = {c for j, (_, ls) in enumerate(terms) if j != i for c in ls}
        terms[i] = _sum_out(x, labels, others | set(output))
    result, labels = terms[0]
    for i, (x, lx) in enumerate(terms[1:], start=1):
        keep = set(output).union(*(ls for _, ls in terms[i + 1:]))
        result, labels = _contract(result, labels, x, lx, keep, sizes)
    result = _expand_to(result, labels, sizes)
    return shape.permute(result, [labels.index(c) for c in output])
