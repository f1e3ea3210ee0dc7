"""The step's graph with the batch size left open: two recordings, at two batch sizes, made into one.

A replay runs the recorded step on any number of rows (the running rows of a
ragged batch shrink step by step, and the ops hoisted out of the loop run on
all steps' rows at once), so every shape and argument that depends on the
batch size must be known as such. :func:`symbolize` compares a recording at
``TRACE_BATCHES[0]`` rows with one at ``TRACE_BATCHES[1]`` rows:

* a value whose leading size follows the batch is a *row* value (one row per
  sequence: x, the state and most of what the step computes); every other value
  has the same shape in both (parameters, constants, reductions over the batch);
* a keyword argument that differs only where it holds the batch size (``reshape(b, 4, H)``)
  keeps :data:`BATCH` there, replaced by the running rows when replayed;
* a constant made inside the step must be equal in both, or filled with one value
  along a batch-sized leading axis (``zeros_like(h)``, kept as a fill);
* anything else that differs (another op, a shape that is not ``(batch, ...)``, a
  different random constant) makes the step :class:`~.record.Untraceable`.

:func:`signature` is the cache key of one recording: two recordings with equal
signatures replay the same way (only the leaf Tensors they read may differ).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ....autograd.tensor import Tensor
from .record import StepTrace, Untraceable

TRACE_BATCHES = (5, 7)  # unusual sizes, so that a fixed size equal to both by chance is unlikely


class _Batch:
    """The running batch size, where a keyword argument holds it."""

    def __repr__(self) -> str:
        return "BATCH"


BATCH = _Batch()


@dataclass
class GValue:
    """A value of the step graph. ``shape`` is the full shape for a fixed value and the shape after
    the batch axis for a row value; ``data`` a constant's array (a fill's scalar when ``fill``)."""

    kind: str          # "x", "state", "leaf", "const", "op"
    row: bool          # leading axis is the batch
    shape: tuple
    dtype: object
    dyn: bool          # depends on x or the state
    index: int = 0
    node: int = -1
    data: object = None
    fill: bool = False  # a batch-shaped constant filled with the scalar ``data``


@dataclass
class GNode:
    op: type
    inputs: tuple
    kwargs: dict       # may hold BATCH
    batched: bool      # kwargs hold BATCH
    needs: tuple
    outputs: tuple
    recorded: bool

    @property
    def name(self) -> str:
        return self.op.__name__


@dataclass
class StepGraph:
    values: list
    nodes: list
    outputs: tuple
    output_needs: tuple
    leaf_slots: tuple  # for each leaf value (in leaf-index order): its index in a recording's ``leaves``


# --------------------------------------------------------------------------- comparing two recordings
def _same(a, b) -> bool:
    if a is b:
        return True
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
    if type(a) is not type(b):
        return False
    if isinstance(a, (int, float, str, bytes, bool, complex, np.generic, type(None), type(Ellipsis), np.dtype, type)):
        return bool(a == b) or (a != a and b != b)
    return False


def symbolize_kwargs(a, b, batches=TRACE_BATCHES):
    """``a`` with BATCH where it and ``b`` differ by holding the two batch sizes; raises Untraceable otherwise."""
    if isinstance(a, dict):
        if not isinstance(b, dict) or a.keys() != b.keys():
            raise Untraceable("an op's keyword arguments change with the batch size")
        return {k: symbolize_kwargs(a[k], b[k], batches) for k in a}
    if isinstance(a, (tuple, list)) and type(a) is type(b):
        if len(a) != len(b):
            raise Untraceable("an op's arguments change with the batch size")
        return type(a)(symbolize_kwargs(x, y, batches) for x, y in zip(a, b))
    if isinstance(a, slice) and isinstance(b, slice):
        return slice(*(symbolize_kwargs(x, y, batches) for x, y in ((a.start, b.start), (a.stop, b.stop),
                                                                    (a.step, b.step))))
    if _same(a, b):
        return a
    if isinstance(a, (int, np.integer)) and not isinstance(a, bool) and (int(a), int(b)) == batches:
        return BATCH
    raise Untraceable(f"an op's argument {a!r} changes with the batch size ({b!r} at another batch size) "
                      f"in a way a replay cannot follow")


def holds_batch(kwargs) -> bool:
    if kwargs is BATCH:
        return True
    if isinstance(kwargs, dict):
        return any(holds_batch(v) for v in kwargs.values())
    if isinstance(kwargs, (tuple, list)):
        return any(holds_batch(v) for v in kwargs)
    if isinstance(kwargs, slice):
        return any(v is BATCH for v in (kwargs.start, kwargs.stop, kwargs.step))
    return False


def substitute(kwargs, rows: int):
    """``kwargs`` with every BATCH replaced by ``rows``."""
    if kwargs is BATCH:
        return rows
    if isinstance(kwargs, dict):
        return {k: substitute(v, rows) for k, v in kwargs.items()}
    if isinstance(kwargs, (tuple, list)):
        return type(kwargs)(substitute(v, rows) for v in kwargs)
    if isinstance(kwargs, slice):
        return slice(*(rows if v is BATCH else v for v in (kwargs.start, kwargs.stop, kwargs.step)))
    return kwargs


def _uniform(a: np.ndarray):
    """The one value every element of ``a`` holds, or None."""
    flat = a.reshape(-1)
    if flat.size == 0:
        return None
    first = flat[0]
    return first if np.all(flat == first) else None


def _const(va, vb, batches) -> GValue:
    """A constant (or a leaf made inside the step) from both recordings, fixed or a batch-sized fill."""
    da, db = va.data, vb.data
    if _same(da, db):
        shape = np.shape(da)
        return GValue("const", False, shape, getattr(da, "dtype", None), False, data=da)
    if isinstance(da, np.ndarray) and isinstance(db, np.ndarray) and da.ndim and da.dtype == db.dtype \
            and (da.shape[0], db.shape[0]) == batches and da.shape[1:] == db.shape[1:]:
        fa, fb = _uniform(da), _uniform(db)
        if fa is not None and fb is not None and _same(fa, fb):
            return GValue("const", True, da.shape[1:], da.dtype, False, data=fa, fill=True)
    raise Untraceable("the step makes a constant that differs between calls (random numbers, or values that "
                      "depend on the batch size other than a fill such as zeros_like(h))")


def symbolize(a: StepTrace, b: StepTrace) -> StepGraph:
    """One :class:`StepGraph` from recordings at batch sizes ``TRACE_BATCHES``; raises Untraceable."""
    batches = (a.batch, b.batch)
    if len(a.nodes) != len(b.nodes) or len(a.values) != len(b.values):
        raise Untraceable("the step runs different ops at different batch sizes or on different data "
                          "(Python control flow on values or shapes)")
    values = []
    leaf_slots = []
    for va, vb in zip(a.values, b.values):
        if va.kind != vb.kind:
            raise Untraceable("the step runs different ops at different batch sizes or on different data")
        if va.kind == "const":
            values.append(_const(va, vb, batches))
            continue
        if va.kind == "leaf":
            ta, tb = a.leaves[va.index], b.leaves[vb.index]
            if ta is not tb:
                if ta._requires_grad or tb._requires_grad:
                    raise Untraceable("the step creates a tensor that requires grad on every call")
                values.append(_const(_as_const(ta), _as_const(tb), batches))
                continue
            values.append(GValue("leaf", False, va.shape, va.dtype, False, index=len(leaf_slots)))
            leaf_slots.append(va.index)
            continue
        if va.dtype != vb.dtype:
            raise Untraceable("a value of the step changes dtype with the batch size")
        if va.shape == vb.shape and not (va.kind in ("x", "state")):
            values.append(GValue(va.kind, False, va.shape, va.dtype, va.dyn, va.index, va.node))
        elif len(va.shape) and (va.shape[0], vb.shape[0]) == batches and va.shape[1:] == vb.shape[1:]:
            values.append(GValue(va.kind, True, va.shape[1:], va.dtype, va.dyn, va.index, va.node))
        else:
            raise Untraceable(f"a value of the step has shape {va.shape} at batch size {batches[0]} and "
                              f"{vb.shape} at {batches[1]}: only (batch, ...) or fixed shapes can be replayed")
    nodes = []
    for na, nb in zip(a.nodes, b.nodes):
        if na.op is not nb.op or na.inputs != nb.inputs or na.needs != nb.needs or na.outputs != nb.outputs \
                or na.recorded != nb.recorded:
            raise Untraceable("the step runs different ops at different batch sizes or on different data "
                              "(Python control flow on values or shapes)")
        kwargs = symbolize_kwargs(na.kwargs, nb.kwargs, batches)
        nodes.append(GNode(na.op, na.inputs, kwargs, holds_batch(kwargs), na.needs, na.outputs, na.recorded))
    if a.outputs != b.outputs or a.output_needs != b.output_needs:
        raise Untraceable("the step returns different values at different batch sizes")
    for vid in a.outputs:
        if not values[vid].row:
            raise Untraceable("a state the step returns is not of shape (batch, ...)")
    return StepGraph(values, nodes, a.outputs, a.output_needs, tuple(leaf_slots))


class _ConstView:
    def __init__(self, data):
        self.data = data


def _as_const(t: Tensor):
    return _ConstView(np.asarray(t._data).view(np.ndarray))


# --------------------------------------------------------------------------- cache keys
def _key(obj):
    """A hashable stand-in for a keyword argument or constant (arrays by content, other objects by identity)."""
    if isinstance(obj, np.ndarray):
        return ("nd", obj.shape, obj.dtype.str, obj.tobytes())
    if isinstance(obj, dict):
        return ("dict",) + tuple((k, _key(v)) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0])))
    if isinstance(obj, (tuple, list)):
        return (type(obj).__name__,) + tuple(_key(v) for v in obj)
    if isinstance(obj, slice):
        return ("slice", _key(obj.start), _key(obj.stop), _key(obj.step))
    if isinstance(obj, np.generic):
        return ("np", obj.dtype.str, obj.tobytes())
    if isinstance(obj, (int, float, str, bytes, bool, type(None), type(Ellipsis), type, np.dtype)):
        return (type(obj).__name__, obj)
    return ("id", id(obj))


def _leaf_key(t: Tensor):
    """A Tensor that needs no gradient may be a constant made inside the step: small ones by content."""
    return _key(np.asarray(t._data)) if t._data.size <= 4096 else ("id", id(t))


def signature(trace: StepTrace) -> tuple:
    """What must match for a recording to replay with a plan built for another one (the cache key).

    Leaf tensors enter by shape, dtype and ``requires_grad`` (a plan reads their data when it runs); a
    Tensor made inside the step enters by content, since a plan may have kept it as a constant.
    """
    values = tuple((v.kind, v.shape, str(v.dtype), v.index, v.node, _key(v.data) if v.kind == "const" else None)
                   for v in trace.values)
    nodes = tuple((n.op, n.inputs, _key(n.kwargs), n.needs, n.outputs, n.recorded) for n in trace.nodes)
    leaves = tuple((t.shape, str(t.dtype), t._requires_grad, None if t._requires_grad else _leaf_key(t))
                   for t in trace.leaves)
    return (trace.batch, values, nodes, trace.outputs, trace.output_needs, leaves)
