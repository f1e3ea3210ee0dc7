"""Any cell at near-fused speed: record one step, then replay it over the sequence as one autograd node.

``nn.Recurrent`` (with ``fused=True``, the default) runs each layer and direction
through :func:`run_traced`. The cell's step is recorded on small random stand-ins
(``trace.record``), at two batch sizes to tell which shapes follow the batch
(``trace.graph``). The plan (``trace.plan``) hoists the products computed from the
input alone out of the time loop (``x W^T + b`` for all steps is one matrix
product) and, with backend 'numba', compiles each run of elementwise ops of the
step into one loop over rows (``trace.fuse``, ``trace.codegen``). The replay
(``trace.replay``) runs the step's ops on bare arrays, each with its own
``forward`` and ``backward`` (or the compiled pair), no Tensor and no graph node
per op, and forms the weight gradients of the per-step products as one matrix
product over all steps. The results are the tape's, op for op, up to the order of
additions in the batched products and of the compiled loops' sums (last bits).

Every forward records the step once more (a few milliseconds of Python, about one
step of the tape) and looks the recording up among the cached plans, so that a
replaced parameter, a switch between train and eval, or a branch on a parameter's
value or a module attribute is seen; a new kind of step is recorded a second time
and planned.

When the step is not a fixed sequence of ops the layer runs on the tape instead
(``tape.run_on_tape``), with one warning per cell class and reason:

* Python control flow on values of the sequence (``if x.sum() > 0``), or Python
  numbers taken from them (``.item()``);
* arrays computed from them outside the autograd ops (``h > 0`` used as a mask,
  ``Tensor(x._data * 2)``) or written in place behind autograd's back;
* constants that change from call to call (``randn_like(h)``: use ``F.dropout``,
  whose draws the replay repeats in the tape's order) or that depend on the batch
  size other than as a fill (``zeros_like(h)`` is fine);
* shapes that are not (batch, ...) or fixed, a state that is not (batch, size);
* an exception the cell raises on the stand-ins but not on the data.

An exception the cell raises on the data too is its own: the tape shows it and
nothing is remembered. PyTorch has no equivalent switch for a user's cell: the
closest are TorchScript and ``torch.compile`` applied by hand to a loop over it.
"""
from __future__ import annotations

import sys
import warnings
import weakref
from collections import OrderedDict

import numpy as np

from ...autograd.tensor import Tensor
from .kernels.common import Workspace
from .trace import fuse
from .trace.graph import TRACE_BATCHES, signature, symbolize
from .trace.plan import build_plan
from .trace.record import Untraceable, record_step
from .trace.replay import TracedRecurrence

MAX_PLANS = 8  # plans kept per cell (one per kind of step seen: train/eval, dtypes, ...)

_caches: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_warned: set = set()


class _CellCache:
    def __init__(self):
        self.plans: OrderedDict = OrderedDict()  # signature -> Plan
        self.failures: dict = {}                 # context -> reason
        self.workspace = Workspace()             # the replays' packed buffers, reused from call to call


def _context(cell, x, state) -> tuple:
    return (str(x.dtype), tuple(x.shape[2:]), tuple(tuple(s.shape[1:]) for s in state),
            tuple(m.training for m in cell.modules()))


def _buffer_snapshot(cell) -> list:
    """(module, name, buffer object, copy of its array) for every buffer of ``cell``."""
    snapshot = []
    for module in cell.modules():
        for name, b in module._buffers.items():
            if b is not None:
                array = b._data if isinstance(b, Tensor) else np.asarray(b)
                snapshot.append((module, name, b, array.copy()))
    return snapshot


def _record_leaving_buffers(cell, snapshot, record):
    """``record()``, then, if the recording changed a buffer (BatchNorm's running statistics, say),
    every buffer put back and Untraceable: the stand-ins' values must not reach the module, and the
    replay would not update the buffers from the data."""
    try:
        return record()
    finally:
        changed = False
        for module, name, b, saved in snapshot:
            now = module._buffers.get(name)
            array = now._data if isinstance(now, Tensor) else np.asarray(now) if now is not None else None
            if now is not b or array is None or array.shape != saved.shape or \
                    not np.array_equal(array, saved, equal_nan=saved.dtype.kind in "fc"):
                changed = True
                module._buffers[name] = b
                if isinstance(b, Tensor):
                    b._data = saved.copy()
                else:
                    np.copyto(b, saved)
        if changed and sys.exc_info()[0] is None:
            raise Untraceable("the step updates its module buffers (BatchNorm's running statistics, say), "
                              "which a replay would not")


def plan_for(cell, step, x, state, backend: str = "auto"):
    """(plan, leaves, workspace) for running ``step`` over ``x`` from ``state``; raises Untraceable."""
    cache = _caches.get(cell)
    if cache is None:
        cache = _caches[cell] = _CellCache()
    reason = cache.failures.get(_context(cell, x, state))
    if reason is not None:
        raise Untraceable(reason)
    x_shape, state_shapes = tuple(x.shape[2:]), tuple(tuple(s.shape[1:]) for s in state)
    snapshot = _buffer_snapshot(cell)
    first = _record_leaving_buffers(
        cell, snapshot, lambda: record_step(step, x_shape, state_shapes, x.dtype, TRACE_BATCHES[0]))
    fused = fuse.enabled(backend, x.dtype)
    key = (fused, signature(first))
    plan = cache.plans.get(key)
    if plan is None:
        second = _record_leaving_buffers(
            cell, snapshot, lambda: record_step(step, x_shape, state_shapes, x.dtype, TRACE_BATCHES[1]))
        plan = build_plan(symbolize(first, second), fused)
        cache.plans[key] = plan
        while len(cache.plans) > MAX_PLANS:
            cache.plans.popitem(last=False)
    else:
        cache.plans.move_to_end(key)
    return plan, [first.leaves[i] for i in plan.graph.leaf_slots], cache.workspace


def run_traced(cell, step, x, state: tuple, batch_sizes=None, record=None, backend: str = "auto"):
    """``run_on_tape``'s contract, replayed: (outputs (T, B, H), final state tuple); or, when the step
    cannot be recorded, the :class:`Untraceable` saying why (the caller runs the tape, then calls
    :func:`fell_back`). ``backend``: 'auto', 'numba' or 'numpy' (see ``trace.fuse``)."""
    try:
        plan, leaves, workspace = plan_for(cell, step, x, state, backend)
    except Untraceable as exc:
        return exc
    try:
        outs = TracedRecurrence.apply(x, *state, *leaves, plan=plan, batch_sizes=batch_sizes, record=record,
                                      workspace=workspace)
    except fuse.FuseError:
        if backend != "auto":
            raise
        # Compiling failed (warned once; 'auto' compiles nothing more in this process): replay op by op.
        plan, leaves, workspace = plan_for(cell, step, x, state, backend)
        outs = TracedRecurrence.apply(x, *state, *leaves, plan=plan, batch_sizes=batch_sizes, record=record,
                                      workspace=workspace)
    return outs[0], tuple(outs[1:])


def fell_back(cell, x, state, reason: Untraceable) -> None:
    """The tape ran ``cell`` because of ``reason``: warn once per cell class and reason, and skip the
    recording from now on for this cell, dtype, shapes and train/eval modes.

    Called after the tape succeeded, so that a step that raises (a wrong input shape, say) shows its
    own error, not this warning, and is tried again next time.
    """
    cache = _caches.get(cell)
    if cache is None:
        cache = _caches[cell] = _CellCache()
    cache.failures[_context(cell, x, state)] = str(reason)
    key = (type(cell), str(reason))
    if key not in _warned:
        _warned.add(key)
        warnings.warn(f"nn.Recurrent: {type(cell).__name__} runs step by step on the autograd tape (slower) "
                      f"because {reason}. Write the step from rnnbp ops without Python decisions on the "
                      f"sequence's values, or pass fused=False to use the tape and silence this warning.",
                      UserWarning, stacklevel=3)
