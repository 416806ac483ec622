"""The backward pass: walk the graph from the outputs to the leaves in topological order.

Traversal is iterative (no recursion limit on deep graphs). Each node's incoming gradients
are summed per output before its backward runs; leaf gradients are summed into ``.grad``.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence

from gradflow.autograd.function import Context
from gradflow.autograd.grad_mode import _GradMode


def _dependencies(roots: Sequence[Context]) -> Dict[Context, int]:
    """For each node reachable from `roots`: how many edges of reachable nodes point at it."""
    deps: Dict[Context, int] = {}
    seen = set(roots)
    stack = list(roots)
    while stack:
        node = stack.pop()
        for e in node._edges:
            if isinstance(e, tuple):
                child = e[0]
                deps[child] = deps.get(child, 0) + 1
                if child not in seen:
                    seen.add(child)
                    stack.append(child)
    return deps


def _accumulate(slot: list, i: int, g) -> None:
    slot[i] = g if slot[i] is None else slot[i] + g


def run_backward(
    tensors: Sequence,
    grad_tensors: Sequence,
    retain_graph: bool,
    create_graph: bool,
    inputs: Optional[Sequence] = None,
    allow_unused: bool = False,
) -> Optional[List]:
    """Backpropagate `grad_tensors` from `tensors`.

    With `inputs` None, gradients are summed into the leaves' ``.grad``. Otherwise nothing is
    written to ``.grad``; the gradients with respect to `inputs` are returned (autograd.grad).
    """
    from gradflow.tensor import Tensor

    capture_leaf = {id(t): i for i, t in enumerate(inputs)} if inputs is not None else None
    capture_node = {}
    if inputs is not None:
        for i, t in enumerate(inputs):
            if t._ctx is not None:
                capture_node[(t._ctx, t._output_nr)] = i
    captured: List = [None] * (len(inputs) if inputs is not None else 0)

    buffers: Dict[Context, list] = {}
    roots: List[Context] = []
    for t, g in zip(tensors, grad_tensors):
        if t._ctx is None:
            _deliver_to_leaf(t, g, capture_leaf, captured, create_graph)
            continue
        node = t._ctx
        if node not in buffers:
            buffers[node] = [None] * len(node._outputs_meta)
            roots.append(node)
        _accumulate(buffers[node], t._output_nr, g)

    deps = _dependencies(roots)
    ready = [n for n in roots if deps.get(n, 0) == 0]
    prev_mode = _GradMode.enabled
    _GradMode.enabled = create_graph
    try:
        while ready:
            node = ready.pop()
            grads = buffers.pop(node)
            if node._output_hooks is not None or capture_node or any(g is None for g in grads):
                _prepare_grads(node, grads, capture_node, captured)
            if node._saved is None:
                node.saved_tensors  # raises the 'backward a second time' error
            results = node._fn.backward(node, *grads)
            if not isinstance(results, tuple):
                results = (results,)
            if len(results) != len(node._edges):
                raise RuntimeError(
                    f"function {node._name} returned {len(results)} gradients, expected "
                    f"{len(node._edges)} (one per forward argument)"
                )
            if not retain_graph:
                node._free()
            for edge, g in zip(node._edges, results):
                if edge is None or g is None:
                    continue
                if not isinstance(g, Tensor):
                    g = Tensor._make(g, node._outputs_meta[0][2])
                if type(edge) is tuple:
                    child, idx = edge
                    if g._data.shape != child._outputs_meta[idx][0]:
                        _bad_grad_shape(node, g, child._outputs_meta[idx][0])
                    slot = buffers.get(child)
                    if slot is None:
                        slot = buffers[child] = [None] * len(child._outputs_meta)
                    _accumulate(slot, idx, g)
                    deps[child] -= 1
                    if deps[child] == 0:
                        ready.append(child)
                else:
                    if g._data.shape != edge._data.shape:
                        _bad_grad_shape(node, g, edge._data.shape)
                    _deliver_to_leaf(edge, g, capture_leaf, captured, create_graph)
    finally:
        _GradMode.enabled = prev_mode

    if inputs is None:
        return None
    for i, t in enumerate(inputs):
        if captured[i] is None and not allow_unused:
            raise RuntimeError(
                f"One of the differentiated Tensors (input {i}, shape {tuple(t.shape)}) appears "
                "to not have been used in the graph. Set allow_unused=True if this is the "
                "desired behavior."
            )
    return captured


def _prepare_grads(node: Context, grads: list, capture_node: dict, captured: list) -> None:
    """Zeros for outputs that got no gradient, then the outputs' hooks, then capture."""
    from gradflow.tensor import Tensor

    for i, g in enumerate(grads):
        if g is None:
            shape, np_dtype, backend = node._outputs_meta[i]
            grads[i] = Tensor._make(backend.full(shape, 0, np_dtype), backend)
        hooks = node._output_hooks.get(i) if node._output_hooks else None
        for hook in hooks or ():
            replaced = hook(grads[i])
            if replaced is not None:
                grads[i] = replaced
        if (node, i) in capture_node:
            captured[capture_node[(node, i)]] = grads[i]


def _bad_grad_shape(node: Context, g, shape) -> None:
    raise RuntimeError(
        f"Function {node._name} returned an invalid gradient: got shape {tuple(g.shape)} "
        f"but expected shape {tuple(shape)}"
    )


def _deliver_to_leaf(leaf, g, capture_leaf, captured, create_graph: bool) -> None:
    for hook in leaf._hooks or ():
        replaced = hook(g)
        if replaced is not None:
            g = replaced
    if capture_leaf is not None:
        i = capture_leaf.get(id(leaf))
        if i is not None:
            captured[i] = g if captured[i] is None else captured[i] + g
        return
    if not leaf.requires_grad:
        return
    if leaf.grad is None:
        # Own the memory: the same gradient array may reach several leaves.
        leaf.grad = g if create_graph else g.detach().clone()
    elif create_graph or leaf.grad.requires_grad:
        leaf.grad = leaf.grad + g
    else:
        leaf._backend.binary_("add", leaf.grad._data, g._data)
