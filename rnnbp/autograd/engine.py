"""The reverse-mode graph walk behind ``Tensor.backward`` and :func:`grad`.

The graph is sorted iteratively (no recursion, so a 10,000-step unroll works),
then walked from the outputs back to the leaves, each node's backward called
once with the sum of the gradients its outputs received. ``Tensor.backward``
accumulates leaf gradients into ``.grad``; :func:`grad` runs the same walk in a
*capture* mode that hands back the gradients of chosen tensors (leaves or
intermediate) and touches no ``.grad``. Unless ``retain_graph`` is set, each
node's saved arrays are dropped as soon as its backward has run.
"""
from __future__ import annotations

import numpy as np


class GraphFreedError(RuntimeError):
    """Backward reached a node whose saved arrays were already freed."""


def _toposort(roots):
    """Nodes reachable from ``roots``, each after every node that consumes it."""
    order = []
    visited = set()
    stack = [(root, False) for root in roots]
    push, pop, seen = stack.append, stack.pop, visited.add
    while stack:
        node, expanded = pop()
        if expanded:
            order.append(node)
            continue
        if node in visited:
            continue
        seen(node)
        push((node, True))
        for parent in node.parents:
            if parent is not None:
                parent_node = parent._node
                if parent_node is not None and parent_node not in visited:
                    push((parent_node, False))
    order.reverse()
    return order


def _accumulate_leaf(tensor, grad, owned_ids):
    """Add ``grad`` into ``tensor._grad`` without ever sharing one buffer between leaves.

    ``owned_ids`` holds the arrays leaves took over during this walk; they may still be
    queued as another node's incoming gradient, so they are never written in place.
    """
    if tensor._grad is None:
        # The same array (or a view of one) may reach several leaves; .grad must
        # be a buffer of its own so that in-place updates touch only this leaf.
        if grad.base is not None or id(grad) in owned_ids or not grad.flags.writeable:
            grad = grad.copy()
        owned_ids.add(id(grad))
        tensor._grad = grad
    elif id(tensor._grad) in owned_ids:
        # Taken over earlier in this walk without a copy: the same array may still be
        # waiting in another node's slot, and adding in place would corrupt that gradient.
        tensor._grad = tensor._grad + grad
    else:
        tensor._grad += grad


class _Capture:
    """What :func:`grad` asks of the walk: the gradients of ``inputs``, not leaf accumulation.

    Leaves are captured where the walk would accumulate into ``.grad``; an intermediate
    tensor when its node is reached, from the summed gradient of its output slot. Only
    nodes with a captured input upstream run their backward, and each is told (through
    ``needs_input_grad``) which of its inputs lead somewhere, so no gradient is computed
    that nobody asked for, as PyTorch's engine does for ``torch.autograd.grad``.
    """

    def __init__(self, inputs):
        self.leaves = {id(t): t for t in inputs if t._node is None}
        self.slots = {}  # node -> {output index: tensor}
        for t in inputs:
            if t._node is not None:
                self.slots.setdefault(t._node, {})[t._out_index] = t
        self.found = {}  # id(tensor) -> gradient summed so far

    def add(self, tensor, g) -> None:
        key = id(tensor)
        self.found[key] = g if key not in self.found else self.found[key] + g

    def plan(self, order) -> None:
        """Mark the nodes whose backward must run: those with a captured input upstream.

        A freed node counts as needed, so that walking it raises GraphFreedError instead
        of reporting the inputs behind it as unused.
        """
        self.propagate = set()
        for node in reversed(order):  # producers before consumers
            if node.freed or any(self._leads_on(p) for p in node.parents):
                self.propagate.add(node)

    def _leads_on(self, parent) -> bool:
        if parent is None:
            return False
        node = parent._node
        if node is None:
            return id(parent) in self.leaves
        return node in self.slots or node in self.propagate

    def visits(self, node) -> bool:
        return node in self.propagate or node in self.slots

    def needs(self, node) -> tuple:
        return tuple(n and self._leads_on(p) for n, p in zip(node.needs_input_grad, node.parents))


def _modified_in_place(node, tensor, version: int) -> RuntimeError:
    return RuntimeError(
        f"backward: an input of {node.name} (shape {tuple(tensor.shape)}) was modified in place "
        f"after the forward pass (version {tensor._version}, saved at version {version}), "
        "e.g. by optimizer.step() before this backward; run the forward again after updating"
    )


def _walk(seeds, retain_graph: bool, capture: _Capture | None = None) -> None:
    """Backpropagate from ``seeds``, (tensor with a node, dL/dtensor) pairs, to the leaves.

    Without ``capture`` leaf gradients accumulate into ``.grad`` (``Tensor.backward``);
    with it they are collected in ``capture.found`` instead (:func:`grad`).
    """
    order = _toposort([t._node for t, _ in seeds])
    grads = {}
    for t, g in seeds:
        slots = grads.setdefault(t._node, [None] * t._node.n_outputs)
        i = t._out_index
        slots[i] = g if slots[i] is None else slots[i] + g
    if capture is not None:
        capture.plan(order)
    owned_ids = set()
    plain = capture is None  # Tensor.backward: the common case, kept to the fewest steps
    for node in order:
        if not plain and not capture.visits(node):
            continue
        if node.freed:
            raise GraphFreedError(
                f"backward: the graph through {node.name} was already freed by an earlier "
                "backward; call backward(retain_graph=True) the first time to backpropagate twice"
            )
        out_grads = grads.pop(node, None)
        if out_grads is None:
            continue
        if not plain:
            for index, tensor in capture.slots.get(node, {}).items():
                if out_grads[index] is not None:
                    capture.add(tensor, out_grads[index])
            if node not in capture.propagate:
                continue
        elif node.retained:
            for index, tensor in node.retained.items():
                if out_grads[index] is not None:
                    _accumulate_leaf(tensor, out_grads[index], owned_ids)
        parents = node.parents
        for parent, version in zip(parents, node.versions):
            if parent is not None and parent._version != version:
                raise _modified_in_place(node, parent, version)
        for constant, version in node.constants:
            if constant._version != version:
                raise _modified_in_place(node, constant, version)
        if plain:
            in_grads = type(node).backward(node, *out_grads)
        else:
            recorded = node.needs_input_grad
            node.needs_input_grad = capture.needs(node)
            try:
                in_grads = type(node).backward(node, *out_grads)
            finally:
                node.needs_input_grad = recorded
        if type(in_grads) is not tuple:
            in_grads = (in_grads,)
        if len(in_grads) != len(parents):
            raise RuntimeError(f"{node.name}.backward returned {len(in_grads)} gradients for {len(parents)} inputs")
        if not retain_graph:
            # Free what the node saved and its links to the inputs, so that an output kept
            # after backward (e.g. a loss in a list) does not keep every activation alive.
            node.__dict__.clear()
            node.parents = ()
            node.constants = ()
            node.freed = True
        for parent, g in zip(parents, in_grads):
            if parent is None or g is None:
                continue
            data = parent._data
            if g.shape != data.shape or g.dtype != data.dtype:
                # A wrong dtype is a bug in the op, not something to cast away: a float64
                # gradient flowing into float32 layers silently doubles their cost.
                raise RuntimeError(
                    f"{node.name}.backward returned a gradient of shape {g.shape} and dtype {g.dtype} "
                    f"for an input of shape {data.shape} and dtype {data.dtype}"
                )
            parent_node = parent._node
            if parent_node is None:
                if plain:
                    _accumulate_leaf(parent, g, owned_ids)
                elif id(parent) in capture.leaves:
                    capture.add(parent, g)
                continue
            if not plain and not capture.visits(parent_node):
                continue
            slots = grads.get(parent_node)
            if slots is None:
                if parent_node.n_outputs == 1:  # most nodes: nothing to sum into yet
                    grads[parent_node] = [g]
                    continue
                slots = grads[parent_node] = [None] * parent_node.n_outputs
            i = parent._out_index
            slots[i] = g if slots[i] is None else slots[i] + g


def backward(root, gradient: np.ndarray, retain_graph: bool = False) -> None:
    """Backpropagate ``gradient`` (dL/droot) from the tensor ``root`` to every leaf."""
    _walk([(root, gradient)], retain_graph)


def grad(outputs, inputs, grad_outputs=None, retain_graph: bool | None = None, create_graph: bool = False,
         allow_unused: bool = False) -> tuple:
    """``torch.autograd.grad``: :func:`grad_arrays`'s gradients as Tensors (None for an unused input
    when allowed), each with its own memory. ``create_graph=True`` is not supported."""
    from .tensor import Tensor  # tensor.py imports this module first

    if create_graph:
        raise NotImplementedError("grad: create_graph=True (higher-order gradients) is not supported on rnnbp")
    found = grad_arrays(outputs, inputs, grad_outputs, retain_graph, allow_unused)
    return tuple(None if g is None else Tensor._make(g) for g in found)


def grad_arrays(outputs, inputs, grad_outputs=None, retain_graph: bool | None = None,
                allow_unused: bool = False) -> tuple:
    """Gradients of ``outputs`` with respect to ``inputs``, touching no ``.grad``, as arrays.

    ``torch.autograd.grad`` without ``create_graph``: computes the vector-Jacobian
    product sum_k grad_outputs[k]^T d outputs[k] / d inputs[i] for every i by the
    same walk as ``backward``, but returns the gradients instead of accumulating
    them into the leaves' ``.grad`` (which stay as they are, as do those of every
    other leaf). Inputs may be leaves or intermediate tensors of the graph.

    Args:
        outputs: a Tensor or a sequence of Tensors, each requiring grad.
        inputs: a Tensor or a sequence of Tensors requiring grad (leaves or not).
        grad_outputs: dL/doutputs, one per output (arrays or Tensors of each output's
            shape, cast to its dtype); None, or a None entry, means ones and is only
            allowed for one-element outputs.
        retain_graph: keep the graph's saved arrays so it can be walked again;
            None means False.
        allow_unused: return None for an input the outputs do not depend on,
            instead of raising.

    Returns:
        A tuple with one ``np.ndarray`` per input, of the input's shape and dtype, or None for
        an unused input when allowed (``grad`` gives them as Tensors).

    Unlike PyTorch, a graph holding a node freed by an earlier backward raises
    :class:`GraphFreedError` even when that branch does not lead to the inputs: a
    freed node has dropped its links, so what lies behind it cannot be known, and
    skipping it could return an incomplete gradient.
    """
    from .tensor import Tensor  # tensor.py imports this module first

    outputs = (outputs,) if isinstance(outputs, Tensor) else tuple(outputs)
    inputs = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
    if not outputs or not inputs:
        raise ValueError(f"grad: got {len(outputs)} outputs and {len(inputs)} inputs; both must be non-empty")
    for kind, tensors in (("outputs", outputs), ("inputs", inputs)):
        for i, t in enumerate(tensors):
            if not isinstance(t, Tensor):
                raise TypeError(f"grad: {kind}[{i}] must be a Tensor, got {type(t).__name__}")
    if grad_outputs is None or isinstance(grad_outputs, (Tensor, np.ndarray)):
        grad_outputs = (grad_outputs,) * len(outputs) if grad_outputs is None else (grad_outputs,)
    grad_outputs = tuple(grad_outputs)
    if len(grad_outputs) != len(outputs):
        raise ValueError(f"grad: got {len(grad_outputs)} grad_outputs for {len(outputs)} outputs")
    for i, t in enumerate(inputs):
        if not t.requires_grad:
            raise RuntimeError(f"grad: inputs[{i}] (shape {t.shape}) does not require grad")

    capture = _Capture(inputs)
    seeds = []
    for i, (out, g) in enumerate(zip(outputs, grad_outputs)):
        if not out.requires_grad:
            raise RuntimeError(f"grad: outputs[{i}] (shape {out.shape}) does not require grad and has no grad_fn")
        if g is None:
            if out._data.size != 1:
                raise RuntimeError(
                    f"grad: grad can be implicitly created only for one-element outputs, outputs[{i}] has "
                    f"shape {out.shape}; pass grad_outputs"
                )
            g = grad_like(out._data)
        else:
            g = np.array(g._data if isinstance(g, Tensor) else g, dtype=out._data.dtype)
            if g.shape != out._data.shape:
                raise ValueError(f"grad: grad_outputs[{i}] has shape {g.shape} but outputs[{i}] has shape {out.shape}")
        if out._node is None:
            if id(out) in capture.leaves:  # d out / d out = I
                capture.add(out, g)
        else:
            seeds.append((out, g))
    if seeds:
        _walk(seeds, bool(retain_graph), capture)

    result, handed_out = [], set()
    for i, t in enumerate(inputs):
        g = capture.found.get(id(t))
        if g is None:
            if not allow_unused:
                raise RuntimeError(
                    f"grad: inputs[{i}] (shape {t.shape}) was not used to compute the outputs; "
                    "pass allow_unused=True to get None for it"
                )
        elif id(g) in handed_out or g.base is not None or not g.flags.writeable:
            # One array may be the gradient of two inputs (x + y); each caller gets its own.
            g = g.copy()
        if g is not None:
            handed_out.add(id(g))
        result.append(g)
    return tuple(result)


def grad_like(array: np.ndarray) -> np.ndarray:
    """The implicit dL/dL = 1 for a one-element output."""
    return np.ones_like(array)
