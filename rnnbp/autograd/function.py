"""Function: one differentiable op, its forward and its backward side by side.

An op subclasses :class:`Function` and writes two static methods::

    class Exp(Function):
        @staticmethod
        def forward(ctx, x):            # arrays in, array out
            y = np.exp(x)
            ctx.y = y                   # whatever backward needs, stored on ctx
            return y

        @staticmethod
        def backward(ctx, grad):        # dL/dy in, one dL/dinput per input out
            return grad * ctx.y

``Exp.apply(t)`` runs the forward on the tensors' arrays and, when grad mode is
on and some input requires grad, records ``ctx`` as the node that made the
output. The node *is* the ctx: an instance of the op's class, so its name is the
op's name in every error message.

Rules for ``backward`` (the engine relies on them):

* return one gradient per input (a tuple, or a bare array for one input), with
  ``None`` where ``ctx.needs_input_grad[i]`` is false or the input is a constant;
* never modify ``grad`` in place: the same array may be handed to other nodes;
* return arrays of the input's shape; :func:`unbroadcast` undoes broadcasting.

An op with several outputs returns a tuple from ``forward``; its ``backward``
then receives one gradient per output, ``None`` for outputs that got none.
"""
from __future__ import annotations

import numpy as np

from . import grad_mode, views


class Function:
    """Base class of every differentiable op; an instance is a graph node."""

    # Structural fields live in slots; everything an op saves for backward goes
    # in the instance __dict__, which the engine clears to free the graph.
    # tensor_hooks: None, or the hooks.NodeHooks of this node's outputs (register_hook, retain_grad).
    __slots__ = ("parents", "versions", "constants", "needs_input_grad", "n_outputs", "freed", "tensor_hooks",
                 "__dict__")

    @staticmethod
    def forward(ctx, *args, **kwargs):  # pragma: no cover - abstract
        raise NotImplementedError

    @staticmethod
    def backward(ctx, *grads):  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs, **kwargs):
        """Run the op on ``inputs`` (Tensors or arrays) and record it if needed."""
        # One pass over the inputs collects everything the node needs (this runs once per op,
        # so it is written for speed): the arrays for forward, which inputs want a gradient,
        # the parents (None for an input that gets none) with their versions, and the constant
        # tensors, whose versions are checked too: the op may have saved their values.
        arrays = []
        needs = []
        parents = []
        versions = []
        constants = []
        aliases = None
        record = False
        for x in inputs:
            if isinstance(x, Tensor):
                arrays.append(x._data)
                if x._requires_grad:
                    needs.append(True)
                    if x._node is not None and getattr(x, "_view", None) is not None:
                        # A view: the edge goes to its value now. A later change of its base re-points
                        # the view at the base's new value, which this op's gradient must not follow.
                        # Its memory changes only if the base has no node (else the base copies first).
                        root = x._base()
                        if root is not None and root._node is None:
                            constants.append((root, root._version))
                        x = Tensor._make(x._data, x._node, x._out_index)
                        aliases = (aliases or []) + [x]
                    parents.append(x)
                    versions.append(x._version)
                    record = True
                else:
                    needs.append(False)
                    parents.append(None)
                    versions.append(0)
                    constants.append((x, x._version))
                    base = getattr(x, "_base", None)
                    if base is not None and (root := base()) is not None:
                        # a view or detached tensor: a write through what it shares memory with counts
                        constants.append((root, root._version))
            else:
                arrays.append(x)
                needs.append(False)
                parents.append(None)
                versions.append(0)
        record = record and grad_mode._enabled
        ctx = cls.__new__(cls)
        ctx.needs_input_grad = tuple(needs)
        out = cls.forward(ctx, *arrays, **kwargs)
        if not record:
            ctx.__dict__.clear()
            outs = tuple(Tensor._make(o) for o in out) if type(out) is tuple else (Tensor._make(out),)
            if grad_mode._enabled:
                # Carry the name of a non-differentiable op (argmax, x > 0, ...) downstream,
                # so that a backward from e.g. (x > 0).sum() says where the gradient stopped.
                nondiff = next((x._nondiff_op for x in inputs if isinstance(x, Tensor) and x._nondiff_op), None)
                for t in outs:
                    t._nondiff_op = nondiff
            return outs if type(out) is tuple else outs[0]
        if aliases is not None:
            for alias in aliases:
                views.release(alias)
        ctx.parents = tuple(parents)
        ctx.versions = tuple(versions)
        ctx.constants = tuple(constants)
        ctx.freed = False
        ctx.tensor_hooks = None
        if type(out) is tuple:
            ctx.n_outputs = len(out)
            return tuple(Tensor._make(o, ctx, i) for i, o in enumerate(out))
        ctx.n_outputs = 1
        return Tensor._make(out, ctx, 0)

    @property
    def name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        return f"<{self.name}Backward>"


def unbroadcast(grad: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum ``grad`` over the axes that broadcasting added or stretched, to ``shape``.

    The one place broadcasting is undone: every binary op's backward calls it.
    """
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad


from .tensor import Tensor  # noqa: E402  (tensor.py imports this module first)
