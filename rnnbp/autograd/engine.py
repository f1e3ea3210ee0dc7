"""The reverse-mode graph walk behind ``Tensor.backward`` and :func:`grad`.

The graph is sorted iteratively (no recursion, so a 10,000-step unroll works),
then walked from the outputs back to the leaves, each node's backward called
once with the sum of the gradients its outputs received. ``Tensor.backward``
accumulates leaf gradients into ``.grad``; :func:`grad` runs the same walk in a
*capture* mode that hands back the gradients of chosen tensors (leaves or
intermediate) and touches no ``.grad``. Unless ``retain_graph`` is set, each
node's saved arrays are dropped as soon as its backward has run.

Backward hooks (``hooks.py``) run where PyTorch runs them: a node's tensor hooks (and
``retain_grad``) on the summed gradients of its outputs just before its backward; a leaf's
hooks on its gradient summed over all its uses, as soon as the last node feeding it has run,
before ``.grad`` (or :func:`grad`) gets it. Without hooks this costs one attribute check per
node and one look-up per edge into a leaf.
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
        + ("e.g. by optimizer.step() before this backward; run the forward again after updating"
           if tensor._node is None else
           "e.g. by an in-place op or an indexed assignment after the tensor was used (x[:, 0] -= 5, "
           "x[0] = ..., x.div_(...)); rnnbp refuses this even where PyTorch's op needs no saved values: "
           "write it out of place (x = x - ..., torch.where, x.masked_fill) or clone() before the change")
    )


class _HeldLeaves:
    """Gradients of leaves with hooks, held until the last node of the walk that feeds them has run.

    PyTorch calls a leaf's hooks once per backward, on its gradient summed over all its uses, and
    then accumulates; the walk adds a leaf's gradient edge by edge, so a leaf with hooks waits here.
    Made at the first such leaf the walk meets (at ``start`` in ``order``), so a walk without leaf
    hooks never builds it. ``sink(tensor, grad)`` takes a released gradient.
    """

    def __init__(self, order: list, start: int, sink):
        self.last = {}  # id(leaf) -> position in order of the last node that has it as an input
        for position in range(start, len(order)):
            for parent in order[position].parents:
                if parent is not None and parent._node is None and getattr(parent, "_hooks", None):
                    self.last[id(parent)] = position
        self.waiting = {}  # id(leaf) -> [leaf, gradient summed so far, last position]
        self.sink = sink

    def add(self, tensor, g) -> None:
        entry = self.waiting.get(id(tensor))
        if entry is None:
            self.waiting[id(tensor)] = [tensor, g, self.last.get(id(tensor), -1)]
        else:
            entry[1] = entry[1] + g

    def release(self, position: int) -> None:
        """Run the hooks of, and hand on, every leaf no node from ``position`` on feeds."""
        from .hooks import run_leaf_hooks

        for key in [k for k, entry in self.waiting.items() if entry[2] < position]:
            tensor, g, _ = self.waiting.pop(key)
            self.sink(tensor, run_leaf_hooks(tensor, g))


def _run_node_hooks(node, out_grads: list, owned_ids: set, share: bool) -> None:
    """A node's tensor hooks on ``out_grads`` (in place), then ``retain_grad``'s ``.grad``.

    ``share``: whether a retained ``.grad`` may take over the array (not when :func:`grad` may
    also hand the same array back to its caller).
    """
    from .hooks import run_node_hooks

    hooks = node.tensor_hooks
    if hooks.hooks:
        run_node_hooks(hooks, out_grads)
    for index, tensor in hooks.retain.items():
        g = out_grads[index]
        if g is not None:
            if not share:
                owned_ids.add(id(g))
            _accumulate_leaf(tensor, g, owned_ids)


def _walk(seeds, retain_graph: bool, capture: _Capture | None = None) -> None:
    """Backpropagate from ``seeds``, (tensor, dL/dtensor) pairs, to the leaves.

    Without ``capture`` leaf gradients accumulate into ``.grad`` (``Tensor.backward``);
    with it they are collected in ``capture.found`` instead (:func:`grad`). A seed may be
    a leaf (``leaf.backward()``, ``grad(x, x)``): it gets its hooks like any other leaf.
    """
    order = _toposort([t._node for t, _ in seeds if t._node is not None])
    grads = {}
    owned_ids = set()
    plain = capture is None  # Tensor.backward: the common case, kept to the fewest steps
    if plain:
        def sink(tensor, g):
            _accumulate_leaf(tensor, g, owned_ids)
    else:
        sink = capture.add
    held = None  # _HeldLeaves, made when the first leaf gradient that must wait (or a leaf seed) comes
    for t, g in seeds:
        if t._node is None:
            if plain or id(t) in capture.leaves:
                held = held or _HeldLeaves(order, 0, sink)
                held.add(t, g)
            continue
        slots = grads.setdefault(t._node, [None] * t._node.n_outputs)
        i = t._out_index
        slots[i] = g if slots[i] is None else slots[i] + g
    if capture is not None:
        capture.plan(order)
    for position, node in enumerate(order):
        if held is not None and held.waiting:
            held.release(position)
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
        if plain:
            if node.tensor_hooks:
                _run_node_hooks(node, out_grads, owned_ids, True)
        else:
            # PyTorch's order: a captured tensor whose node must run anyway is captured before its
            # hooks run, one whose node runs only to be captured after (engine.cpp, evaluate_function).
            needed = node in capture.propagate
            captured = capture.slots.get(node)
            if captured and needed:
                for index, tensor in captured.items():
                    if out_grads[index] is not None:
                        capture.add(tensor, out_grads[index])
            if node.tensor_hooks:
                _run_node_hooks(node, out_grads, owned_ids, False)
            if not needed:
                for index, tensor in captured.items():
                    if out_grads[index] is not None:
                        capture.add(tensor, out_grads[index])
                continue
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
                    if not getattr(parent, "_hooks", None):
                        _accumulate_leaf(parent, g, owned_ids)
                        continue
                elif id(parent) not in capture.leaves:
                    continue
                elif not getattr(parent, "_hooks", None):
                    capture.add(parent, g)
                    continue
                held = held or _HeldLeaves(order, position, sink)  # a leaf with hooks waits for its total
                held.add(parent, g)
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
    if held is not None:
        held.release(len(order))


def backward(root, gradient: np.ndarray, retain_graph: bool = False) -> None:
    """Backpropagate ``gradient`` (dL/droot) from the tensor ``root`` to every leaf (``root`` may be one)."""
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

    Backward hooks run as in PyTorch: those on the tensors the walk reaches, leaves included (a
    captured leaf's gradient is the hooked one); a captured non-leaf is captured after its hooks,
    unless its node must run for another input, when it is captured before them (PyTorch's engine
    does the same); ``retain_grad()`` tensors the walk reaches get their ``.grad``.

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
        seeds.append((out, g))  # a leaf output is its own gradient (d out / d out = I) if it is an input
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
