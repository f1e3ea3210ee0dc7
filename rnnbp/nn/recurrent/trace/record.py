"""Recording one step of a cell: which autograd ops it runs, on what, with which arguments.

The cell runs once, on stand-in inputs, while :func:`recording` routes every
``Function.apply`` of this thread to a :class:`Recorder`. The recorder runs each
op's forward as ``apply`` would, hands the cell Tensors that behave like the
tape's (same values, same ``requires_grad``), and writes down a :class:`Node`
per op: the op class, which values it read (value ids), its keyword arguments
and which inputs the tape would have differentiated (``needs_input_grad``).

Values are numbered as they appear: the step input x (kind ``"x"``), the state
tensors (``"state"``), every Tensor the step reads that the recording did not
make (``"leaf"``: parameters, buffers, tensors from outside, kept as objects so
a later run reads their current data), plain arrays and numbers handed to an op
(``"const"``), and each op's outputs (``"op"``).

(Non-differentiable results such as comparisons, made by ``constant_result``
rather than an op, are routed through the recorder too, to keep their mark.)

What cannot be recorded makes the recording fail with :class:`Untraceable`,
naming the reason:

* a Python decision on a value that depends on x or the state (``bool``,
  ``float``, ``int``, ``.item()``, ``.tolist()`` on it): the recorded step would
  be one branch of the cell, not the cell;
* an array computed from such a value outside the autograd ops (comparisons,
  ``x._data * 2``, ...) and fed back into an op: the recording cannot replay it;
* writing into such a value in place without recording it (``h.data.mul_(2)``):
  the recorded arrays are read-only while the cell runs.

Arrays derived from x or the state are a subclass of ndarray (:class:`TracedArray`)
that flags these uses; values from parameters only (``self.weight.abs().max()``)
may be turned into Python numbers, since they are fixed for a whole sequence.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from ....autograd import grad_mode
from ....autograd.function import Function
from ....autograd.ops import functions as _functions
from ....autograd.ops import promotion as _promotion
from ....autograd.tensor import Tensor


class Untraceable(Exception):
    """The step cannot be recorded as a fixed sequence of ops; the message says why."""


class TracedArray(np.ndarray):
    """An array computed from the recorded step's input or state.

    ``_dyn`` says whether it depends on x or the state (True) or only on
    parameters and constants (False). Turning a dependent array into a Python
    value raises :class:`Untraceable`; arithmetic keeps the subclass and the flag.
    """

    _dyn = False

    def __array_finalize__(self, obj):
        self._dyn = getattr(obj, "_dyn", False)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        dyn = False
        args = []
        for a in inputs:
            if isinstance(a, TracedArray):
                dyn = dyn or a._dyn
                args.append(a.view(np.ndarray))
            else:
                args.append(a)
        outs = kwargs.get("out")
        if outs:
            kwargs["out"] = tuple(o.view(np.ndarray) if isinstance(o, TracedArray) else o for o in outs)
        result = getattr(ufunc, method)(*args, **kwargs)
        if outs:
            return outs[0] if len(outs) == 1 else outs
        if isinstance(result, tuple):
            return tuple(_traced(r, dyn) for r in result)
        return _traced(result, dyn)

    def _refuse(self, what: str):
        if self._dyn:
            _flag(f"the step turns a value computed from its input or state into a Python {what} "
                  f"(data-dependent control flow or a Python number taken from the sequence)")

    def __bool__(self):
        self._refuse("bool")
        return bool(self.view(np.ndarray))

    def __float__(self):
        self._refuse("float")
        return float(self.view(np.ndarray))

    def __int__(self):
        self._refuse("int")
        return int(self.view(np.ndarray))

    def __index__(self):
        self._refuse("index")
        return self.view(np.ndarray).__index__()

    def item(self, *args):
        self._refuse("number (.item())")
        return self.view(np.ndarray).item(*args)

    def tolist(self):
        self._refuse("list (.tolist())")
        return self.view(np.ndarray).tolist()


def _traced(result, dyn: bool):
    if isinstance(result, np.ndarray):
        out = result.view(TracedArray)
    elif isinstance(result, np.generic):
        out = np.asarray(result).view(TracedArray)
    else:
        return result
    out._dyn = dyn
    return out


_local = threading.local()


def _flag(reason: str):
    """Remember why the running recording is invalid (the cell may swallow the exception) and raise."""
    recorder = getattr(_local, "recorder", None)
    if recorder is not None and recorder.failure is None:
        recorder.failure = reason
    raise Untraceable(reason)


@dataclass
class Value:
    """One value of the step. ``shape`` as recorded; ``data`` for a constant; ``dyn``: depends on x or state."""

    kind: str              # "x", "state", "leaf", "const", "op"
    shape: tuple
    dtype: object
    dyn: bool
    index: int = 0         # state index, leaf index, or output index of the op node
    node: int = -1         # the op node making it (kind "op")
    data: object = None    # the constant itself (kind "const")


@dataclass
class Node:
    """One recorded op call: ``op.forward(ctx, *values[inputs], **kwargs)``."""

    op: type
    inputs: tuple          # value ids
    kwargs: dict
    needs: tuple           # needs_input_grad as the tape recorded it
    outputs: tuple         # value ids
    recorded: bool         # whether the tape would have made a graph node (some input needed grad, grad mode on)


@dataclass
class StepTrace:
    """The recorded step at one batch size. ``outputs``: value id of each new state tensor (h first);
    ``output_needs``: whether each returned Tensor requires grad (False for a detached state)."""

    batch: int
    values: list = field(default_factory=list)
    nodes: list = field(default_factory=list)
    leaves: list = field(default_factory=list)   # the Tensors of the "leaf" values, in leaf-index order
    outputs: tuple = ()
    output_needs: tuple = ()


class Recorder:
    """Runs ops as ``Function.apply`` does and records them into a :class:`StepTrace`."""

    def __init__(self, batch: int):
        self.trace = StepTrace(batch)
        self.by_array = {}     # id(array) -> value id, for arrays the recording made (kept alive in _arrays)
        self.by_leaf = {}      # id(Tensor) -> value id
        self._arrays = []
        self.failure = None
        self.generators = {}   # id -> (generator, state before the recording)

    # ------------------------------------------------------------------ values
    def _add(self, value: Value) -> int:
        self.trace.values.append(value)
        return len(self.trace.values) - 1

    def register(self, array: np.ndarray, kind: str, dyn: bool, index: int = 0, node: int = -1) -> TracedArray:
        """A read-only TracedArray view of ``array``, registered as a new value."""
        view = np.asarray(array).view(TracedArray)
        view._dyn = dyn
        view.flags.writeable = False
        vid = self._add(Value(kind, view.shape, view.dtype, dyn, index=index, node=node))
        self.by_array[id(view)] = vid
        self._arrays.append(view)
        return view

    def _input(self, x):
        """(array for the forward, value id, whether the tape would differentiate it)."""
        if isinstance(x, Tensor):
            a = x._data
            vid = self.by_array.get(id(a))
            if vid is None:
                if isinstance(a, TracedArray):
                    _flag("the step wraps an array computed outside the autograd ops from its input or state "
                          "into a Tensor")
                vid = self.by_leaf.get(id(x))
                if vid is None:
                    vid = self._add(Value("leaf", a.shape, a.dtype, False, index=len(self.trace.leaves)))
                    self.trace.leaves.append(x)
                    self.by_leaf[id(x)] = vid
            return a, vid, x._requires_grad
        if isinstance(x, np.ndarray):
            vid = self.by_array.get(id(x))
            if vid is not None:
                return x, vid, False
            if isinstance(x, TracedArray) and x._dyn:
                _flag("an op of the step receives an array computed outside the autograd ops from the step's "
                      "input or state (e.g. a comparison x > 0 used as a mask)")
            x = np.asarray(x).view(np.ndarray)
        vid = self._add(Value("const", np.shape(x), getattr(x, "dtype", None), False, data=x))
        return x, vid, False

    # --------------------------------------------------------------------- ops
    def apply(self, cls, inputs, kwargs):
        for value in kwargs.values():
            if isinstance(value, np.random.Generator) and id(value) not in self.generators:
                self.generators[id(value)] = (value, value.bit_generator.state)
            if isinstance(value, TracedArray) and value._dyn:
                _flag(f"{cls.__name__} receives an argument computed from the step's input or state")
        arrays, vids, needs = [], [], []
        for x in inputs:
            a, vid, need = self._input(x)
            arrays.append(a)
            vids.append(vid)
            needs.append(need)
        ctx = cls.__new__(cls)
        ctx.needs_input_grad = tuple(needs)
        with np.errstate(all="ignore"):
            out = cls.forward(ctx, *arrays, **kwargs)
        multi = type(out) is tuple
        outs = out if multi else (out,)
        recorded = any(needs) and grad_mode._enabled
        dyn = any(self.trace.values[v].dyn for v in vids)
        node_id = len(self.trace.nodes)
        views, out_ids = [], []
        for i, o in enumerate(outs):
            view = self.register(o, "op", dyn, index=i, node=node_id)
            views.append(view)
            out_ids.append(self.by_array[id(view)])
        self.trace.nodes.append(Node(cls, tuple(vids), dict(kwargs), tuple(needs), tuple(out_ids), recorded))
        if recorded:
            ctx.parents = ()
            tensors = tuple(Tensor._make(v, ctx, i) for i, v in enumerate(views))
        else:
            tensors = tuple(Tensor._make(v) for v in views)
            if grad_mode._enabled:
                nondiff = next((x._nondiff_op for x in inputs if isinstance(x, Tensor) and x._nondiff_op), None)
                for t in tensors:
                    t._nondiff_op = nondiff
        return tensors if multi else tensors[0]

    def restore_generators(self) -> None:
        """Put every generator an op drew from back where it was: recording must not consume randomness."""
        for generator, state in self.generators.values():
            generator.bit_generator.state = state


class _Source(Function):
    """Stands for whatever made the step's input and state on the tape (never run)."""


_install_lock = threading.Lock()
_installed = 0
_original_apply = Function.__dict__["apply"]
_original_constant = _promotion.constant_result


def _hooked_apply(cls, *inputs, **kwargs):
    recorder = getattr(_local, "recorder", None)
    if recorder is None:
        return _original_apply.__func__(cls, *inputs, **kwargs)
    return recorder.apply(cls, inputs, kwargs)


def _hooked_constant(data, op):
    """``constant_result`` keeping the mark of data computed from the step's input or state (a
    comparison, argmax, ...): NumPy's ``asarray`` inside drops the subclass, and with it the check
    on a later ``bool()`` or on the array being fed back into an op."""
    t = _original_constant(data, op)
    if isinstance(data, TracedArray) and data._dyn and getattr(_local, "recorder", None) is not None:
        t._data = _traced(t._data, True)
    return t


@contextmanager
def recording(recorder: Recorder):
    """Route this thread's ``Function.apply`` calls to ``recorder`` for the block (other threads are unaffected)."""
    global _installed
    with _install_lock:
        if _installed == 0:
            Function.apply = classmethod(_hooked_apply)
            _promotion.constant_result = _functions.constant_result = _hooked_constant
        _installed += 1
    outer = getattr(_local, "recorder", None)  # a cell holding an nn.Recurrent records inside a recording
    _local.recorder = recorder
    try:
        yield recorder
    finally:
        _local.recorder = outer
        with _install_lock:
            _installed -= 1
            if _installed == 0:
                Function.apply = _original_apply
                _promotion.constant_result = _functions.constant_result = _original_constant


def record_step(step, x_shape: tuple, state_shapes: tuple, dtype, batch: int, seed: int = 0) -> StepTrace:
    """Run ``step(x_t, state) -> new state tuple`` once on random stand-ins of ``batch`` rows and record it.

    Shapes exclude the batch axis: x_t is (batch, *x_shape), state i (batch, *state_shapes[i]).
    Raises :class:`Untraceable` with the reason when the step cannot be recorded.
    """
    from ....autograd import random as _random

    rng = np.random.default_rng(seed)
    recorder = Recorder(batch)
    default = _random.default_generator()
    default_state = default.bit_generator.state
    x = recorder.register(rng.standard_normal((batch,) + tuple(x_shape)).astype(dtype), "x", True)
    states = tuple(recorder.register(rng.standard_normal((batch,) + tuple(s)).astype(dtype), "state", True, index=i)
                   for i, s in enumerate(state_shapes))
    # Non-leaf Tensors, as x[t] and the carried state are on the tape (so in-place ops on them record).
    source = _Source.__new__(_Source)
    x_t = Tensor._make(x, source, 0)
    state = [Tensor._make(s, source, 0) for s in states]
    try:
        with recording(recorder), grad_mode.enable_grad(), np.errstate(all="ignore"):
            try:
                out = step(x_t, tuple(state))
            except Untraceable:
                raise
            except Exception as exc:
                if recorder.failure is not None:
                    raise Untraceable(recorder.failure) from None
                raise Untraceable(f"the step raised {type(exc).__name__} while being recorded: {exc}") from exc
    finally:
        recorder.restore_generators()
        if _random.default_generator() is default:
            default.bit_generator.state = default_state
    if recorder.failure is not None:
        raise Untraceable(recorder.failure)
    trace = recorder.trace
    if not isinstance(out, (tuple, list)) or len(out) != len(state_shapes):
        raise Untraceable(f"the step returned {type(out).__name__}, not {len(state_shapes)} state tensor(s)")
    outputs, output_needs = [], []
    for t in out:
        if not isinstance(t, Tensor):
            raise Untraceable(f"the step returned a {type(t).__name__} as a state, not a Tensor")
        vid = recorder.by_array.get(id(t._data))
        if vid is None:
            raise Untraceable("the step returned a state tensor that its input or state did not make "
                              "through autograd ops")
        outputs.append(vid)
        output_needs.append(t._requires_grad)
    trace.outputs, trace.output_needs = tuple(outputs), tuple(output_needs)
    return trace
