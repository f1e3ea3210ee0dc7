"""Backward hooks, PyTorch's: ``Tensor.register_hook`` and a Module's full backward (pre-)hooks.

**Tensor hooks.** ``hook(grad) -> Tensor or None`` sees dL/dtensor when the walk (``engine``) has it
complete, summed over every use of the tensor:

* on a non-leaf, before it flows on into the op that made the tensor. The hooks live on that op's
  node (``node.tensor_hooks``, a :class:`NodeHooks`), per output slot, as PyTorch keeps them on
  ``grad_fn``: a hook registered before an in-place change of the tensor sees the gradient of the
  old value, one registered after sees that of the new; ``retain_grad()`` follows the tensor and
  keeps the gradient the hooks have made;
* on a leaf, before it is added into ``.grad`` (each backward's own gradient, never the
  accumulated one). The hooks live on the tensor (``tensor._hooks``).

A Tensor returned by a hook replaces the gradient; hooks run in registration order, each on the
previous one's result, with gradient recording off (as PyTorch without ``create_graph``). The
gradient a hook sees is a copy made for the hooks, so a hook that changes its argument in place
(``g.clamp_(-1, 1)``) changes what flows on, as in PyTorch, and nothing else.

**Module hooks.** :class:`BackwardHook` does what ``torch/utils/hooks.py`` does: the module's
positional Tensor inputs and its Tensor outputs (the output itself, or the Tensors directly in a
tuple it returns) pass through :class:`BackwardHookFunction`, an identity op whose backward, on the
outputs' side, calls the pre-hooks with ``grad_output`` and, on the inputs' side, the full hooks
with ``grad_input`` and ``grad_output``.

With no hook registered anywhere the walk pays one attribute check per node and one look-up per
edge into a leaf. ``tensor.py`` and ``engine.py`` import this module inside functions: it imports them.
"""
from __future__ import annotations

import itertools
import warnings
import weakref
from collections import OrderedDict

import numpy as np

from . import grad_mode
from .function import Function
from .tensor import Tensor


class HookError(RuntimeError, ValueError):
    """A hook cannot be registered, or returned a gradient that does not fit (RuntimeError, as in
    PyTorch, and ValueError, as rnnbp's bad input)."""


class RemovableHandle:
    """What registering a hook returns: ``remove()`` (or leaving a ``with`` block) takes it off.

    Shared by tensor hooks and every kind of Module hook, as PyTorch's ``torch.utils.hooks``
    handle is. ``id`` is the hook's key in the table it sits in; the table is held weakly, so a
    handle kept after its tensor or module is gone keeps nothing alive.
    """

    _next_id = itertools.count()

    def __init__(self, table: dict):
        self._table = weakref.ref(table)
        self.id = next(RemovableHandle._next_id)

    def remove(self) -> None:
        table = self._table()
        if table is not None:
            table.pop(self.id, None)

    def __enter__(self) -> "RemovableHandle":
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


def hook_name(hook) -> str:
    """How error messages name a hook: its ``__name__`` (``'<lambda>'`` for a lambda) or its type."""
    return getattr(hook, "__name__", None) or type(hook).__name__


def check_callable(hook, where: str) -> None:
    if not callable(hook):
        raise TypeError(f"{where}: a hook must be callable, got {type(hook).__name__}")


# ------------------------------------------------------------------------------------ tensor hooks
class NodeHooks:
    """What happens to the gradients of a node's outputs before its backward runs.

    ``hooks``: key -> (output index, hook), in registration order across the outputs (as PyTorch
    runs a node's tensor pre-hooks). ``retain``: output index -> the Tensor whose ``.grad`` keeps that
    gradient after the hooks (``retain_grad``). Falsy when both are empty, so the walk skips it.
    """

    __slots__ = ("hooks", "retain")

    def __init__(self):
        self.hooks, self.retain = OrderedDict(), {}

    def __bool__(self) -> bool:
        return bool(self.hooks) or bool(self.retain)


def node_hooks(node) -> NodeHooks:
    """``node.tensor_hooks``, made on first use."""
    if getattr(node, "tensor_hooks", None) is None:  # getattr: a node a traced step recorded has none set
        node.tensor_hooks = NodeHooks()
    return node.tensor_hooks


def register_tensor_hook(tensor, hook) -> RemovableHandle:
    """``Tensor.register_hook``: see the module docstring."""
    check_callable(hook, "register_hook")
    if not tensor._requires_grad:
        raise HookError(f"register_hook: cannot register a hook on a tensor that doesn't require gradient "
                        f"(shape {tuple(tensor._data.shape)}, dtype {tensor._data.dtype}); call "
                        "requires_grad_() on the leaf first")
    if tensor._node is None:
        table = getattr(tensor, "_hooks", None)
        if table is None:
            table = tensor._hooks = OrderedDict()
        handle = RemovableHandle(table)
        table[handle.id] = hook
        return handle
    table = node_hooks(tensor._node).hooks
    handle = RemovableHandle(table)
    table[handle.id] = (tensor._out_index, hook)
    return handle


def retain_grad(tensor) -> None:
    """``Tensor.retain_grad`` on a non-leaf: its node keeps the gradient in ``.grad`` after the hooks."""
    node_hooks(tensor._node).retain[tensor._out_index] = tensor


def follow_in_place(tensor, old_node, old_index: int) -> None:
    """After an in-place op gave ``tensor`` a new node: its ``retain_grad`` moves with it, as in
    PyTorch (its hooks stay with the old value)."""
    hooks = getattr(old_node, "tensor_hooks", None)
    if hooks and hooks.retain.get(old_index) is tensor:
        del hooks.retain[old_index]
        retain_grad(tensor)


def _replacement(hook, result, shape: tuple, dtype) -> np.ndarray:
    """The array of a Tensor a tensor hook returned, checked against the gradient it replaces."""
    if not isinstance(result, Tensor):
        raise TypeError(f"hook {hook_name(hook)!r} returned {type(result).__name__}; a tensor hook returns "
                        "a Tensor (the new gradient) or None")
    array = result._data
    if array.shape != shape:
        raise HookError(f"hook {hook_name(hook)!r} changed the shape of the gradient: the tensor has shape "
                        f"{shape}, the hook returned a gradient of shape {array.shape}")
    if array.dtype != dtype:
        raise HookError(f"hook {hook_name(hook)!r} changed the dtype of the gradient: the tensor is {dtype}, "
                        f"the hook returned {array.dtype}; cast it back with .to({dtype})")
    return array


def _run(hooks, grad: np.ndarray) -> np.ndarray:
    """``grad`` after ``hooks``, called in order on a Tensor over a copy made for them (see the module
    docstring); a hook's result is what the next one sees.

    The array returned is always one the walk may keep: a hook's result is copied too, so ``.grad``
    never shares memory with a Tensor the hook's author still holds.
    """
    shape, dtype = grad.shape, grad.dtype
    grad = grad.copy()
    with grad_mode.no_grad():
        for hook in hooks:
            result = hook(Tensor._make(grad))
            if result is not None:
                array = _replacement(hook, result, shape, dtype)
                grad = array if array is grad else array.copy()
    return grad


def run_leaf_hooks(tensor, grad: np.ndarray) -> np.ndarray:
    """The gradient of the leaf ``tensor`` its hooks make of ``grad`` (``grad`` itself without hooks)."""
    table = getattr(tensor, "_hooks", None)
    return _run(list(table.values()), grad) if table else grad


def run_node_hooks(hooks: NodeHooks, out_grads: list) -> None:
    """Apply a node's tensor hooks to ``out_grads`` (one gradient or None per output), in place.

    An output that got no gradient is skipped (PyTorch calls its hooks with None). The outputs take
    their turns in the order their first hooks were registered; each runs the hooks it has when its
    turn comes (as PyTorch: a hook may remove those of an output whose turn is still to come).
    """
    for index in dict.fromkeys(index for index, _ in hooks.hooks.values()):
        current = [hook for i, hook in hooks.hooks.values() if i == index]
        if current and out_grads[index] is not None:
            out_grads[index] = _run(current, out_grads[index])


# ------------------------------------------------------------------------------------ module hooks
class BackwardHookFunction(Function):
    """Identity op standing between a module and its callers (PyTorch's of the same name); its backward
    hands the gradients of the Tensors it passed through to ``on_backward``, which calls the hooks."""

    @staticmethod
    def forward(ctx, *arrays, on_backward=None):
        ctx.on_backward = on_backward
        return arrays

    @staticmethod
    def backward(ctx, *grads):
        return ctx.on_backward(grads)


_NO_INPUT_GRAD = ("Full backward hook is firing when gradients are computed with respect to module outputs "
                  "since no inputs require gradients. See "
                  "https://docs.pytorch.org/docs/main/generated/torch.nn.Module.html"
                  "#torch.nn.Module.register_full_backward_hook for more details.")


class BackwardHook:
    """One module call's full backward hooks and pre-hooks (PyTorch's ``torch.utils.hooks.BackwardHook``).

    ``setup_input_hook(args)`` passes the positional Tensor arguments that require grad through
    :class:`BackwardHookFunction` before the forward, ``setup_output_hook(output)`` the Tensors of
    the output after it (and after the forward hooks). In the backward the outputs' node runs first:
    it calls each pre-hook ``hook(module, grad_output)`` (a non-None tuple replaces grad_output) and
    keeps grad_output; the inputs' node then calls each hook ``hook(module, grad_input,
    grad_output)`` (a non-None tuple replaces grad_input). ``grad_input`` has one entry per positional
    argument: None for one that is not a Tensor, zeros for a Tensor that gets no gradient (one that
    does not require grad, or that the output does not depend on), as in PyTorch. ``grad_output`` has
    one entry per output (the output itself, or each item of the tuple it is): None for one that is
    not a Tensor (the ``(h, c)`` of an LSTM's ``(out, (h, c))``) or got no gradient. When no input
    requires grad the hooks run from the outputs' node, with ``grad_input`` all None, and must return
    None. Each hook sees copies of its own, so changes made in place count, as in PyTorch.

    The hooks are the ones the module had when it was called.
    """

    def __init__(self, module, hooks, pre_hooks):
        self.module, self.hooks, self.pre_hooks = module, list(hooks), list(pre_hooks)
        self.name = type(module).__name__
        self.grad_outputs = None
        self.n_inputs = self.n_outputs = -1
        self.input_tensors = None  # positions of the Tensor arguments; None when nothing was wrapped
        self.input_specs = self.output_specs = {}  # position -> (shape, dtype) of each Tensor
        self.input_diff = self.output_diff = ()  # positions passed through the op (requiring grad)

    def __repr__(self) -> str:  # named when a traced recurrence declines a cell with backward hooks
        return f"<the backward hooks of a {self.name}>"

    @staticmethod
    def _wrap(values: tuple, on_backward):
        """(``values`` with each Tensor that requires grad passed through the op, positions of the Tensors,
        positions of the wrapped ones), or (values, None, ()) when none requires grad or grad mode is off."""
        tensors = [i for i, v in enumerate(values) if isinstance(v, Tensor)]
        diff = [i for i in tensors if values[i]._requires_grad]
        if not diff or not grad_mode._enabled:
            return values, None, ()
        wrapped = BackwardHookFunction.apply(*(values[i] for i in diff), on_backward=on_backward)
        out = list(values)
        for i, t in zip(diff, wrapped):
            out[i] = t
        out = tuple(out) if type(values) is tuple else type(values)(*out)  # a namedtuple stays one
        return out, tensors, tuple(diff)

    def setup_input_hook(self, args: tuple) -> tuple:
        self.n_inputs = len(args)
        self.input_specs = {i: (a._data.shape, a._data.dtype) for i, a in enumerate(args) if isinstance(a, Tensor)}
        args, self.input_tensors, self.input_diff = self._wrap(args, self._input_backward)
        return args

    def setup_output_hook(self, output):
        single = not isinstance(output, tuple)
        if single and not isinstance(output, Tensor):
            warnings.warn("For backward hooks to be called, module output should be a Tensor or a tuple of "
                          f"Tensors but received {type(output)}", UserWarning, stacklevel=3)
        values = (output,) if single else output
        self.n_outputs = len(values)
        self.output_specs = {i: (v._data.shape, v._data.dtype) for i, v in enumerate(values) if isinstance(v, Tensor)}
        values, _, self.output_diff = self._wrap(values, self._output_backward)
        return values[0] if single else values

    def _call(self, pre: bool, hooks, values: tuple, grad_outputs=None) -> tuple:
        """``values`` after the hooks, and the last hook that replaced them (None if none did)."""
        what, kind = ("grad_output", "Backward pre hook") if pre else ("grad_input", "Backward hook")
        changed_by = None
        with grad_mode.no_grad():
            for hook in hooks:
                result = hook(self.module, values) if pre else hook(self.module, values, grad_outputs)
                if result is None:
                    continue
                result = tuple(result) if isinstance(result, (tuple, list)) else (result,)
                if len(result) != len(values):
                    raise HookError(f"{self.name}: {kind} {hook_name(hook)!r} returned an invalid number of {what}, "
                                    f"got {len(result)}, but expected {len(values)}")
                values, changed_by = result, hook
        return values, changed_by

    def _arrays(self, what: str, values: tuple, positions: tuple, specs: dict, hook) -> tuple:
        """The gradient arrays ``values`` gives at ``positions`` (None stays None), checked against the
        tensors there; a hook's Tensor is copied, so that ``.grad`` never shares memory with it."""
        out = []
        for i in positions:
            value = values[i]
            if value is None:
                out.append(None)
                continue
            if not isinstance(value, Tensor):
                raise TypeError(f"{self.name}: backward hook {hook_name(hook)!r} returned a {type(value).__name__} "
                                f"as {what}[{i}]; expected a Tensor or None")
            shape, dtype = specs[i]
            array = value._data
            if array.shape != shape:
                raise HookError(f"{self.name}: backward hook {hook_name(hook)!r} returned {what}[{i}] of shape "
                                f"{array.shape}, but that tensor has shape {shape}")
            out.append(array.astype(dtype, copy=True))
        return tuple(out)

    def _output_backward(self, grads: tuple) -> tuple:
        # grads: one per wrapped output, None for one that got no gradient
        grad_outputs = [None] * self.n_outputs
        for i, g in zip(self.output_diff, grads):
            grad_outputs[i] = None if g is None else Tensor._make(g.copy())
        grad_outputs, changed_by = self._call(True, self.pre_hooks, tuple(grad_outputs))
        self.grad_outputs = grad_outputs
        if self.input_tensors is None:
            warnings.warn(_NO_INPUT_GRAD, stacklevel=6)  # at the caller of backward()
            grad_inputs = (None,) * self.n_inputs
            with grad_mode.no_grad():
                for hook in self.hooks:
                    result = hook(self.module, grad_inputs, grad_outputs)
                    if result is not None and not (isinstance(result, tuple) and all(r is None for r in result)):
                        raise HookError(f"{self.name}: backward hook {hook_name(hook)!r} returned a gradient, but no "
                                        "input of the module requires grad: such a hook must return None (or None "
                                        "for every gradient)")
            self.grad_outputs = None
        if changed_by is None:
            return tuple(None if grad_outputs[i] is None else grad_outputs[i]._data for i in self.output_diff)
        return self._arrays("grad_output", grad_outputs, self.output_diff, self.output_specs, changed_by)

    def _input_backward(self, grads: tuple) -> tuple:
        # grads: one per wrapped input; None (no gradient) becomes zeros, as PyTorch materializes them
        grads = tuple(np.zeros(*self.input_specs[i]) if g is None else g for i, g in zip(self.input_diff, grads))
        if self.grad_outputs is None:
            return grads  # the gradient reached the inputs without passing the outputs: PyTorch calls nothing
        grad_inputs = [None] * self.n_inputs
        for i in self.input_tensors:
            grad_inputs[i] = Tensor._make(np.zeros(*self.input_specs[i]))
        for i, g in zip(self.input_diff, grads):
            grad_inputs[i] = Tensor._make(g.copy())
        grad_inputs, changed_by = self._call(False, self.hooks, tuple(grad_inputs), self.grad_outputs)
        self.grad_outputs = None
        if changed_by is None:
            return tuple(grad_inputs[i]._data for i in self.input_diff)
        return self._arrays("grad_input", grad_inputs, self.input_diff, self.input_specs, changed_by)
