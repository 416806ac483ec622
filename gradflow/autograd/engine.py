"""The backward pass: walk the graph from the outputs to the leaves in topological order.

Traversal is iterative (no recursion limit on deep graphs). Each node's incoming gradients
are summed per output before its backward runs; likewise each leaf's contributions are summed
before its hooks run and the sum reaches ``.grad``, so a hook fires once per backward with
the whole gradient (as PyTorch's AccumulateGrad node); its post-accumulate hooks run after.
"""

from __future__ import annotations

import sys
from typing import Dict, List, Optional, Sequence, Tuple

from gradflow.autograd.function import Context, _tensor_class
from gradflow.autograd.grad_mode import _GradMode


def _dependencies(roots: Sequence[Context]) -> Tuple[Dict[Context, int], Dict[int, int]]:
    """How many edges of nodes reachable from `roots` point at each node, and at each leaf
    (keyed by id: Tensor's == is elementwise)."""
    deps: Dict[Context, int] = {}
    leaf_deps: Dict[int, int] = {}
    seen = set(roots)
    stack = list(roots)
    while stack:
        node = stack.pop()
        for e in node._edges:
            if e is None:
                continue
            if isinstance(e, tuple):
                child = e[0]
                deps[child] = deps.get(child, 0) + 1
                if child not in seen:
                    seen.add(child)
                    stack.append(child)
            else:
                leaf_deps[id(e)] = leaf_deps.get(id(e), 0) + 1
    return deps, leaf_deps


class _Sum:
    """A running sum of three or more gradients, which the backward owns: the first sum is a
    new tensor, and later gradients are added into it in place (no copy per gradient), unless
    the sum is recorded (create_graph) or needs another dtype. The gradients themselves are
    never written: one tensor may reach several slots (add's backward sends g to both inputs)."""

    __slots__ = ("total",)

    def __init__(self, a, b) -> None:
        self.total = a + b

    def add(self, g) -> None:
        t = self.total
        if _GradMode.enabled or t.requires_grad or g.requires_grad or g.dtype is not t.dtype:
            self.total = t + g
        else:
            t._backend.binary_("add", t._data, g._data)


def _accumulate(slot: list, i: int, g) -> None:
    """slot[i] += g: the first gradient as it is, a second makes a _Sum, later ones join it."""
    cur = slot[i]
    if cur is None:
        slot[i] = g
    elif type(cur) is _Sum:
        cur.add(g)
    else:
        slot[i] = _Sum(cur, g)


def _value(g):
    """A slot's gradient: the tensor, or the total of its _Sum."""
    return g.total if type(g) is _Sum else g


def _positions(tensors: Sequence, key) -> dict:
    """key(t) -> the positions of t in `tensors` (a tensor may be listed twice)."""
    out: dict = {}
    for i, t in enumerate(tensors):
        k = key(t)
        if k is not None:
            out.setdefault(k, []).append(i)
    return out


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
    capture_leaf = capture_node = None
    captured: List = []
    if inputs is not None:
        capture_leaf = _positions(inputs, lambda t: id(t) if t._ctx is None else None)
        capture_node = _positions(inputs, lambda t: (t._ctx, t._output_nr) if t._ctx is not None
                                  else None)
        captured = [None] * len(inputs)

    buffers, leaf_sums, roots = _seed(tensors, grad_tensors)
    prev_mode = _GradMode.enabled
    _GradMode.enabled = create_graph
    try:
        _walk(roots, buffers, leaf_sums, capture_leaf, capture_node, captured, retain_graph,
              create_graph)
    finally:
        _GradMode.enabled = prev_mode

    if inputs is None:
        return None
    for i, t in enumerate(inputs):
        if captured[i] is None and not allow_unused:
            raise RuntimeError(
                f"autograd.grad: One of the differentiated Tensors (input {i}, shape "
                f"{tuple(t.shape)}) appears "
                "to not have been used in the graph. Set allow_unused=True if this is the "
                "desired behavior."
            )
    return captured


def _seed(tensors: Sequence, grad_tensors: Sequence
          ) -> Tuple[Dict[Context, list], Dict[int, list], List[Context]]:
    """The starting gradients: per node a slot per output, per leaf its running sum
    (id(leaf) -> [leaf, gradient summed so far]), and the nodes the walk starts from."""
    buffers: Dict[Context, list] = {}
    leaf_sums: Dict[int, list] = {}
    roots: List[Context] = []
    for t, g in zip(tensors, grad_tensors):
        if t._ctx is None:
            _accumulate(leaf_sums.setdefault(id(t), [t, None]), 1, g)
            continue
        node = t._ctx
        if node not in buffers:
            buffers[node] = [None] * len(node._outputs_meta)
            roots.append(node)
        _accumulate(buffers[node], t._output_nr, g)
    return buffers, leaf_sums, roots


def _walk(roots: List[Context], buffers: Dict[Context, list], leaf_sums: Dict[int, list],
          capture_leaf, capture_node, captured: list, retain_graph: bool,
          create_graph: bool) -> None:
    """Run every node reachable from `roots` once all the nodes feeding it have run, summing
    the gradients it sends into its children's slots and the leaves' sums; a leaf's sum is
    delivered once every edge into it has been followed (after the node's gradients are all
    sent: then the leaf's entry holds the engine's only reference to it, see _own_or_copy)."""
    deps, leaf_deps = _dependencies(roots)
    for key in [k for k in leaf_sums if k not in leaf_deps]:  # roots reached by no node
        _deliver_to_leaf(leaf_sums.pop(key), capture_leaf, captured, create_graph)
    ready = [n for n in roots if deps.get(n, 0) == 0]
    while ready:
        node = ready.pop()
        results = _run_node(node, buffers.pop(node, None), capture_node, captured,
                            retain_graph)
        complete = _send(node, results, buffers, leaf_sums, deps, leaf_deps, ready)
        del results  # (the engine's last reference to the node's gradients but the sums')
        for key in complete:
            _deliver_to_leaf(leaf_sums.pop(key), capture_leaf, captured, create_graph)


def _send(node: Context, results: tuple, buffers: Dict[Context, list],
          leaf_sums: Dict[int, list], deps: Dict[Context, int], leaf_deps: Dict[int, int],
          ready: List[Context]) -> List[int]:
    """Sum `node`'s gradients into its children's slots (a child whose last parent this was
    becomes ready) and into its leaves' sums; the keys of the leaves whose sums are complete."""
    Tensor = _tensor_class()
    complete = []
    for edge, g in zip(node._edges, results):
        if edge is None:
            continue
        if g is not None and not isinstance(g, Tensor):
            g = Tensor._make(g, node._outputs_meta[0][2])
        if type(edge) is tuple:
            child, idx = edge
            if g is not None:
                if g._data.shape != child._outputs_meta[idx][0]:
                    _bad_grad_shape(node, g, child._outputs_meta[idx][0])
                slot = buffers.get(child)
                if slot is None:
                    slot = buffers[child] = [None] * len(child._outputs_meta)
                _accumulate(slot, idx, g)
            deps[child] -= 1
            if deps[child] == 0:
                ready.append(child)
            continue
        key = id(edge)
        if g is not None:
            if g._data.shape != edge._data.shape:
                _bad_grad_shape(node, g, edge._data.shape)
            _accumulate(leaf_sums.setdefault(key, [edge, None]), 1, g)
        leaf_deps[key] -= 1
        if leaf_deps[key] == 0 and key in leaf_sums:
            complete.append(key)
    return complete


def _run_node(node: Context, grads: Optional[list], capture_node, captured: list,
              retain_graph: bool) -> tuple:
    """The gradients `node` sends to its inputs. A node that received no gradient at all
    sends none (as PyTorch's undefined gradients), so its leaves' .grad stay unset."""
    if grads is None:
        return (None,) * len(node._edges)
    missing = False  # an output without a gradient (it gets zeros)
    for i, g in enumerate(grads):
        if g is None:
            missing = True
        elif type(g) is _Sum:
            grads[i] = g.total
    if missing and all(g is None for g in grads):
        return (None,) * len(node._edges)
    if (missing or node._output_hooks is not None or node._retained is not None
            or capture_node):
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
    return results


def _prepare_grads(node: Context, grads: list, capture_node, captured: list) -> None:
    """Zeros for outputs that got no gradient, then the outputs' hooks, then retain_grad
    (which sees what the hooks returned, as in PyTorch), then capture."""
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
        retained = node._retained.get(i) if node._retained else None
        t = retained() if retained is not None else None
        if t is not None:
            t.grad = grads[i] if t.grad is None else t.grad + grads[i]
        for j in capture_node.get((node, i), ()) if capture_node else ():
            captured[j] = grads[i]


def _bad_grad_shape(node: Context, g, shape) -> None:
    raise RuntimeError(
        f"Function {node._name} returned an invalid gradient: got shape {tuple(g.shape)} "
        f"but expected shape {tuple(shape)}"
    )


def _deliver_to_leaf(entry: list, capture_leaf, captured, create_graph: bool) -> None:
    """The leaf's whole gradient of this backward, entry = [leaf, gradient or its _Sum]: its
    hooks, then capture or .grad. The gradient stays in entry[1], never in a local, so that
    _own_or_copy can tell from its reference count whether the engine holds it alone."""
    leaf = entry[0]
    entry[1] = _value(entry[1])
    for hook in leaf._hooks or ():
        replaced = hook(entry[1])
        if replaced is not None:
            entry[1] = replaced
    if capture_leaf is not None:
        for i in capture_leaf.get(id(leaf), ()):
            captured[i] = entry[1]
        return
    if not leaf.requires_grad:
        return
    if leaf.grad is None:
        leaf.grad = entry[1] if create_graph else _own_or_copy(entry)
    elif create_graph or leaf.grad.requires_grad:
        leaf.grad = leaf.grad + entry[1]
    else:
        leaf._backend.binary_("add", leaf.grad._data, entry[1]._data)
    run_post_accumulate_hooks(leaf)


class _Held:
    __slots__ = ("_data",)  # a stand-in for Tensor, whose array is a slot too


def _alone_counts() -> Tuple[int, int]:
    """What _own_or_copy reads for a tensor and an array that only the entry holds: the
    holder's reference plus getrefcount's argument, measured once through the same expressions
    (how a temporary is counted differs between Python versions)."""
    entry: list = [None, _Held()]
    entry[1]._data = bytearray(1)
    return sys.getrefcount(entry[1]), sys.getrefcount(entry[1]._data)


_ALONE = _alone_counts()


def _own_or_copy(entry: list):
    """A leaf's first .grad: the gradient entry[1] itself when no one else can see its
    memory, else a copy (the same gradient may reach two leaves, be a view of another, be the
    user's, or be kept by a hook). No one else can see it when the entry holds the only
    reference to the tensor, the tensor the only one to its array, and the array owns its
    memory (PyTorch's AccumulateGrad steals a gradient on the same condition). The counts are
    read through the expressions _ALONE was measured with, never locals."""
    be = entry[1]._backend
    if (sys.getrefcount(entry[1]) == _ALONE[0] and sys.getrefcount(entry[1]._data) == _ALONE[1]
            and be.owns_memory(entry[1]._data)):
        return _tensor_class()._make(entry[1]._data, be)
    return _tensor_class()._make(be.copy(entry[1]._data), be)


def run_post_accumulate_hooks(leaf) -> None:
    """The hooks that run once a backward has summed into the leaf's .grad."""
    for hook in leaf._post_accumulate_hooks or ():
        hook(leaf)
