"""The reverse-mode graph walk behind ``Tensor.backward``.

The graph is sorted iteratively (no recursion, so a 10,000-step unroll works),
then walked from the output back to the leaves, each node's backward called
once with the sum of the gradients its outputs received. Leaf gradients are
accumulated into ``.grad``. Unless ``retain_graph`` is set, each node's saved
arrays are dropped as soon as its backward has run.
"""
from __future__ import annotations

import numpy as np


class GraphFreedError(RuntimeError):
    """Backward reached a node whose saved arrays were already freed."""


def _toposort(root):
    """Nodes reachable from ``root``, each after every node that consumes it."""
    order = []
    visited = set()
    stack = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if node in visited:
            continue
        visited.add(node)
        stack.append((node, True))
        for parent in node.parents:
            if parent is not None and parent._node is not None and parent._node not in visited:
                stack.append((parent._node, False))
    order.reverse()
    return order


def _accumulate_leaf(tensor, grad, owned_ids):
    """Add ``grad`` into ``tensor.grad`` without ever sharing one buffer between leaves.

    ``owned_ids`` holds the arrays leaves took over during this walk; they may still be
    queued as another node's incoming gradient, so they are never written in place.
    """
    if tensor.grad is None:
        # The same array (or a view of one) may reach several leaves; .grad must
        # be a buffer of its own so that in-place updates touch only this leaf.
        if grad.base is not None or id(grad) in owned_ids or not grad.flags.writeable:
            grad = grad.copy()
        owned_ids.add(id(grad))
        tensor.grad = grad
    elif id(tensor.grad) in owned_ids:
        # Taken over earlier in this walk without a copy: the same array may still be
        # waiting in another node's slot, and adding in place would corrupt that gradient.
        tensor.grad = tensor.grad + grad
    else:
        tensor.grad += grad


def backward(root, gradient: np.ndarray, retain_graph: bool = False) -> None:
    """Backpropagate ``gradient`` (dL/droot) from the tensor ``root`` to every leaf."""
    root_node = root._node
    order = _toposort(root_node)
    grads = {root_node: [None] * root_node.n_outputs}
    grads[root_node][root._out_index] = gradient
    owned_ids = set()
    for node in order:
        if node.freed:
            raise GraphFreedError(
                f"backward: the graph through {node.name} was already freed by an earlier "
                "backward; call backward(retain_graph=True) the first time to backpropagate twice"
            )
        out_grads = grads.pop(node, None)
        if out_grads is None:
            continue
        if node.retained:
            for index, tensor in node.retained.items():
                if out_grads[index] is not None:
                    _accumulate_leaf(tensor, out_grads[index], owned_ids)
        parents = node.parents
        for parent, version in zip(parents, node.versions):
            if parent is not None and parent._version != version:
                raise RuntimeError(
                    f"backward: an input of {node.name} (shape {parent.data.shape}) was modified in place "
                    f"after the forward pass (version {parent._version}, saved at version {version}), "
                    "e.g. by optimizer.step() before this backward; run the forward again after updating"
                )
        in_grads = type(node).backward(node, *out_grads)
        if type(in_grads) is not tuple:
            in_grads = (in_grads,)
        if len(in_grads) != len(parents):
            raise RuntimeError(f"{node.name}.backward returned {len(in_grads)} gradients for {len(parents)} inputs")
        if not retain_graph:
            # Free what the node saved and its links to the inputs, so that an output kept
            # after backward (e.g. a loss in a list) does not keep every activation alive.
            node.__dict__.clear()
            node.parents = ()
            node.freed = True
        for parent, g in zip(parents, in_grads):
            if parent is None or g is None:
                continue
            if g.shape != parent.data.shape or g.dtype != parent.data.dtype:
                # A wrong dtype is a bug in the op, not something to cast away: a float64
                # gradient flowing into float32 layers silently doubles their cost.
                raise RuntimeError(
                    f"{node.name}.backward returned a gradient of shape {g.shape} and dtype {g.dtype} "
                    f"for an input of shape {parent.data.shape} and dtype {parent.data.dtype}"
                )
            parent_node = parent._node
            if parent_node is None:
                _accumulate_leaf(parent, g, owned_ids)
                continue
            slots = grads.get(parent_node)
            if slots is None:
                slots = grads[parent_node] = [None] * parent_node.n_outputs
            i = parent._out_index
            slots[i] = g if slots[i] is None else slots[i] + g


def grad_like(array: np.ndarray) -> np.ndarray:
    """The implicit dL/dL = 1 for a one-element output."""
    return np.ones_like(array)
