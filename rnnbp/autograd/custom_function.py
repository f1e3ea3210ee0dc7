"""PyTorch's custom-Function protocol, for programs that write ``torch.autograd.Function`` subclasses.

rnnbp's own ops subclass :class:`~.function.Function`, whose forward and backward take and return
NumPy arrays. A PyTorch program's Function takes and returns Tensors and keeps what backward needs
with ``ctx.save_for_backward``::

    class Square(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return 2 * x * grad

Under ``python -m rnnbp.torch`` ``torch.autograd.Function`` is this :class:`Function`: ``apply``
runs the user's forward on detached Tensors with gradients off, records one node whose backward
calls the user's backward (also with gradients off, as PyTorch without ``create_graph``), and
turns the Tensors back into arrays at the boundary. ``ctx`` offers ``save_for_backward``,
``saved_tensors``, ``needs_input_grad``, ``mark_non_differentiable`` and
``set_materialize_grads``; ``ctx.attr = value`` keeps anything else.
"""
from __future__ import annotations

import inspect

import numpy as np

from . import grad_mode
from .function import Function as ArrayFunction, unbroadcast
from .tensor import Tensor


class FunctionCtx:
    """The ``ctx`` a PyTorch-style Function's forward and backward receive."""

    def __init__(self, needs_input_grad: tuple):
        self.needs_input_grad = needs_input_grad
        self.saved_tensors = ()
        self.non_differentiable = ()
        self.materialize_grads = True

    def save_for_backward(self, *tensors) -> None:
        """Keep Tensors (or None) for backward, as ``ctx.saved_tensors``."""
        for t in tensors:
            if t is not None and not isinstance(t, Tensor):
                raise TypeError(f"save_for_backward: expects Tensors or None, got {type(t).__name__}")
        self.saved_tensors = tuple(tensors)

    def mark_non_differentiable(self, *outputs) -> None:
        """Outputs that get no gradient (their backward input is then zeros)."""
        self.non_differentiable = tuple(id(t) for t in outputs)

    def set_materialize_grads(self, value: bool) -> None:
        """With False, backward receives None (not zeros) for outputs that got no gradient."""
        self.materialize_grads = bool(value)

    def mark_dirty(self, *tensors) -> None:
        """Accepted so that PyTorch's programs run, but not honoured: an input the forward changed in
        place is not given a new version (rnnbp's forward sees detached handles of the inputs)."""


def _tensor_or_none(value):
    return None if value is None else (value if isinstance(value, Tensor) else Tensor(value))


class _Bridge(ArrayFunction):
    """The graph node of one call: arrays at the engine's side, Tensors at the user's."""

    @staticmethod
    def forward(ctx, *arrays, user=None, tensor_positions=()):
        args = [Tensor._make(a) if i in tensor_positions else a for i, a in enumerate(arrays)]
        user_ctx = FunctionCtx(ctx.needs_input_grad)
        with grad_mode.no_grad():
            out = user.forward(user_ctx, *args)
        outs = out if isinstance(out, tuple) else (out,)
        for i, o in enumerate(outs):
            if not isinstance(o, Tensor):
                raise TypeError(f"{user.__name__}.forward: output {i} is a {type(o).__name__}; a custom Function "
                                "returns Tensors (or a tuple of Tensors)")
        ctx.user, ctx.user_ctx, ctx.shapes = user, user_ctx, [(o._data.shape, o._data.dtype) for o in outs]
        ctx.n_inputs, ctx.inputs = len(arrays), [(np.shape(a), getattr(a, 'dtype', None)) for a in arrays]
        ctx.non_diff = [id(o) in user_ctx.non_differentiable for o in outs]
        arrays_out = tuple(o._data for o in outs)
        return arrays_out if isinstance(out, tuple) else arrays_out[0]

    @staticmethod
    def backward(ctx, *grads):
        user, user_ctx = ctx.user, ctx.user_ctx
        tensors = []
        for g, (shape, dtype), non_diff in zip(grads, ctx.shapes, ctx.non_diff):
            if g is None or non_diff:
                tensors.append(Tensor(np.zeros(shape, dtype)) if user_ctx.materialize_grads else None)
            else:
                tensors.append(Tensor._make(g))
        with grad_mode.no_grad():
            result = user.backward(user_ctx, *tensors)
        result = result if isinstance(result, tuple) else (result,)
        if len(result) < ctx.n_inputs or any(r is not None for r in result[ctx.n_inputs:]):
            raise ValueError(f"{user.__name__}.backward returned {len(result)} gradients for "
                             f"{ctx.n_inputs} inputs of forward")
        out = []
        for r, needed, (shape, dtype) in zip(result, ctx.needs_input_grad, ctx.inputs):
            if r is None or not needed:
                out.append(None)
                continue
            array = _tensor_or_none(r)._data
            if array.shape != shape:  # a broadcast input's gradient, summed back to its shape as PyTorch does
                try:
                    array = unbroadcast(array, shape)
                except ValueError:
                    raise ValueError(f"{user.__name__}.backward returned a gradient of shape {array.shape} for an "
                                     f"input of shape {shape}") from None
                if array.shape != shape:
                    raise ValueError(f"{user.__name__}.backward returned a gradient of shape {array.shape} for an "
                                     f"input of shape {shape}")
            out.append(array.astype(dtype, copy=False))
        return tuple(out)


class Function:
    """Base class of a PyTorch-style custom op: static ``forward(ctx, *args)`` and ``backward(ctx,
    *grads)`` on Tensors; call it with ``apply``. See the module docstring."""

    @staticmethod
    def forward(ctx, *args, **kwargs):  # pragma: no cover - abstract
        raise NotImplementedError

    @staticmethod
    def backward(ctx, *grads):  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def apply(cls, *args, **kwargs):
        if kwargs:  # keyword arguments take their places in forward's signature, Tensors included
            bound = inspect.signature(cls.forward).bind(None, *args, **kwargs)
            bound.apply_defaults()
            args = tuple(bound.args[1:])
        positions = tuple(i for i, a in enumerate(args) if isinstance(a, Tensor))
        out = _Bridge.apply(*args, user=cls, tensor_positions=positions)
        outs = out if isinstance(out, tuple) else (out,)
        node = next((o._node for o in outs if o._node is not None), None)
        if node is None:
            return out
        # Outputs marked non-differentiable, and integer ones, get no gradient: cut from the node.
        kept = tuple(Tensor._make(o._data) if non_diff or o._data.dtype.kind not in "fc" else o
                     for o, non_diff in zip(outs, node.non_diff))
        return kept if isinstance(out, tuple) else kept[0]
