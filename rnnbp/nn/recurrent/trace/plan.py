"""Where each op of the step runs: once per sequence, once over all steps' rows, or at every step.

Given the :class:`~.graph.StepGraph`, every value gets a *place*:

``x``      the step input, all steps' running rows packed into one (N, ...) array
``state``  the carried state (the previous step's outputs)
``fixed``  one array for the whole sequence: leaves, constants, and the outputs of
           *static* ops (those that read only fixed values: a weight's transform)
``fill``   a batch-shaped constant (``zeros_like(h)``), sliced to the running rows
``hoist``  an (N, ...) array over all steps' rows, from a *hoisted* op
``step``   computed at every step

An op is hoisted when it reads no state, draws no random numbers and works row by
row (:func:`rowwise`): then running it once on the rows of all steps, packed
(N, ...), equals running it on each step's rows. ``x W^T + b`` for every step is
one matrix product this way, and so is its weight gradient; without compiled
loops, so is everything else computed from the input alone (a layer norm of
x W^T, the gate split). With them (``fused``), elementwise ops stay in the step,
where they cost the same arithmetic inside the step's compiled loop but write no
(N, ...) array to be read back. Ops that draw random numbers (dropout inside a
cell) always run at every step, in the order the tape runs them, so they draw the
same numbers.

At every step, a ``Linear`` or ``matmul`` of a row value by a fixed weight is a
:class:`StepLinear`: its input rows are kept in one (N, in) buffer and its output
gradients in one (N, out) buffer, so the weight gradient is one product over all
steps after the loop, as in the fused kernels.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ....autograd.ops import elementwise as E
from ....autograd.ops import linalg as L
from ....autograd.ops import nn as N
from ....autograd.ops import reduce as R
from ....autograd.ops import shape as S
from . import fuse
from .graph import GNode, StepGraph
from .record import Untraceable

UNARY = (E.Neg, E.Exp, E.Log, E.Sqrt, E.Sin, E.Cos, E.Abs, E.Tanh, E.Sigmoid, E.ReLU, E.LeakyReLU, E.Softplus,
         E.GELU, E.Cast, S.Clone)
BROADCASTING = (E.Add, E.Sub, E.Mul, E.Div, E.Pow, E.Maximum, E.Minimum, E.Where, E.Clamp)


def _stochastic(kwargs) -> bool:
    if isinstance(kwargs, np.random.Generator):
        return True
    if isinstance(kwargs, dict):
        return any(_stochastic(v) for v in kwargs.values())
    if isinstance(kwargs, (tuple, list)):
        return any(_stochastic(v) for v in kwargs)
    return False


def _axis(dim, ndim: int):
    try:
        return int(dim) % max(ndim, 1)
    except (TypeError, ValueError):
        return None


def rowwise(node: GNode, graph: StepGraph) -> bool:
    """Whether ``node`` acts on each row of its row inputs separately, so that it may run on all steps'
    rows at once. Row inputs have the batch axis first; fixed inputs must not reach that axis."""
    values = graph.values
    ins = [values[v] for v in node.inputs]
    outs = [values[v] for v in node.outputs]
    if not all(o.row for o in outs):
        return False
    ndim = len(outs[0].shape) + 1
    op, kw = node.op, node.kwargs

    def fixed_ok(v) -> bool:  # a fixed operand broadcasts against rows without touching the batch axis
        return v.row or len(v.shape) < ndim or v.shape[0] == 1

    if op in UNARY:
        return ins[0].row
    if op in BROADCASTING:
        return any(v.row for v in ins) and all(fixed_ok(v) for v in ins) and \
            all(len(v.shape) + 1 == ndim for v in ins if v.row)
    if op is L.Linear:
        return ins[0].row and not any(v.row for v in ins[1:])
    if op is L.MatMul:
        return ins[0].row and len(ins[0].shape) == 1 and not ins[1].row and len(ins[1].shape) == 2
    x = ins[0]
    if not x.row:
        return False
    xdim = len(x.shape) + 1
    if op in (R.Sum, R.Mean, R.Var, N.LogSumExp):
        dim = kw.get("dim")
        if dim is None:
            return False
        dims = (dim,) if isinstance(dim, (int, np.integer)) else tuple(dim)
        return all(_axis(d, xdim) not in (None, 0) for d in dims)
    if op in (N.Softmax, N.LogSoftmax):
        return _axis(kw.get("dim", -1), xdim) not in (None, 0)
    if op is S.Split:
        return _axis(kw.get("dim", 0), xdim) not in (None, 0)
    if op is S.Cat:
        return all(v.row for v in ins) and _axis(kw.get("dim", 0), xdim) not in (None, 0)
    if op is S.Stack:
        return all(v.row for v in ins) and _axis(kw.get("dim", 0), xdim + 1) not in (None, 0)
    if op is S.Permute:
        dims = kw.get("dims", ())
        return len(dims) > 0 and _axis(dims[0], xdim) == 0
    if op in (S.Reshape, S.Expand):
        return True  # the input's and output's leading axes both follow the batch: rows stay rows
    if op is S.GetItem:
        index = kw.get("index")
        if not isinstance(index, tuple) or not index:
            return False
        first = index[0]
        if isinstance(first, slice) and first == slice(None):
            return not any(i is None for i in index)
        return first is Ellipsis and len(index) == 2 and isinstance(index[1], (slice, int)) and \
            not isinstance(index[1], bool)
    return False


@dataclass
class StepLinear:
    """A per-step ``x W^T (+ b)`` (Linear) or ``x W`` (MatMul) of a row value by a fixed weight."""

    node: int
    transposed: bool     # Linear: W is (out, in) and used transposed
    bias: int | None     # value id of the bias


@dataclass
class Plan:
    """How a recorded step runs over a sequence (built by :func:`build_plan`, run by ``replay.Run``)."""

    graph: StepGraph
    place: list            # per value: "x", "state", "fixed", "fill", "hoist", "step"
    static: list           # node ids, run once per sequence
    hoisted: list          # node ids, run once over all rows
    step: list             # node ids, run at every step
    linear: dict = field(default_factory=dict)   # node id -> StepLinear, for per-step products by a fixed weight
    x_vid: int = -1
    state_vids: tuple = ()
    step_reads: tuple = ()  # hoist and fill values the step ops (or the outputs) read
    fused: bool = False
    hoisted_items: list = None  # ``hoisted`` and ``step``, with runs of elementwise ops as FusedGroups when fused
    step_items: list = None
    _flows: dict = field(default_factory=dict)

    def flows(self, need_x: bool, need_states: tuple, need_leaves: tuple):
        """(per-node needs_input_grad, per-value requires_grad) for inputs needing these gradients.

        The state's requirement is a fixed point: the carried state needs grad at every step
        if the initial state does or if what the step makes from it does."""
        key = (need_x, need_states, need_leaves)
        cached = self._flows.get(key)
        if cached is not None:
            return cached
        graph = self.graph
        rg = [False] * len(graph.values)
        for vid, v in enumerate(graph.values):
            if v.kind == "x":
                rg[vid] = need_x
            elif v.kind == "state":
                rg[vid] = need_states[v.index]
            elif v.kind == "leaf":
                rg[vid] = need_leaves[v.index]
        while True:
            needs = []
            for node in graph.nodes:
                n = tuple(bool(t and rg[v]) for v, t in zip(node.inputs, node.needs))
                needs.append(n)
                out = node.recorded and any(n)
                for o in node.outputs:
                    rg[o] = out
            changed = False
            for i, vid in enumerate(graph.outputs):
                s = self.state_vids[i]
                if graph.output_needs[i] and rg[vid] and not rg[s]:
                    rg[s] = changed = True
            if not changed:
                break
        self._flows[key] = (needs, rg)
        return needs, rg


def build_plan(graph: StepGraph, fused: bool = False) -> Plan:
    """Assign places to values and phases to ops (see the module docstring).

    ``fused``: runs of elementwise ops will be compiled (``fuse``). Then an elementwise op is not
    hoisted (unless a hoisted op needs it): run inside the step's compiled loop it costs the same
    arithmetic without writing an (N, ...) array and reading it back, which for a layer norm of
    ``x W^T`` is most of the time. The step's ops are also reordered (dependencies and the order of
    random draws kept) so that products come first and the elementwise ops form one long run.
    """
    values = graph.values
    place = [None] * len(values)
    x_vid, state_vids = -1, [None] * sum(v.kind == "state" for v in values)
    for vid, v in enumerate(values):
        if v.kind == "x":
            place[vid], x_vid = "x", vid
        elif v.kind == "state":
            place[vid] = "state"
            state_vids[v.index] = vid
        elif v.kind == "leaf":
            place[vid] = "fixed"
        elif v.kind == "const":
            place[vid] = "fill" if v.fill else "fixed"
    for vid in state_vids:
        if len(values[vid].shape) != 1:
            raise Untraceable(f"a state of shape (batch, {', '.join(map(str, values[vid].shape))}) is not "
                              f"(batch, size)")
    static, hoisted, step = [], [], []
    random = set()
    for nid, node in enumerate(graph.nodes):
        ins = [place[v] for v in node.inputs]
        if _stochastic(node.kwargs):
            random.add(nid)
        outs_row = [values[o].row for o in node.outputs]
        if nid not in random and all(p == "fixed" for p in ins) and not node.batched and not any(outs_row):
            static.append(nid)
            where = "fixed"
        elif nid not in random and not any(p in ("state", "step") for p in ins) and rowwise(node, graph):
            hoisted.append(nid)
            where = "hoist"
        else:
            step.append(nid)
            where = "step"
        for o in node.outputs:
            place[o] = where
    for i, vid in enumerate(graph.outputs):
        if place[vid] == "fixed":
            raise Untraceable("a state the step returns does not depend on its input or state")
    dtype = values[x_vid].dtype
    fused = fused and dtype in (np.dtype(np.float32), np.dtype(np.float64))
    fusible = {nid for nid in hoisted + step if nid not in random and fuse.fusible(graph.nodes[nid], graph, dtype, place)}
    if fused:
        readers = {}
        for nid, node in enumerate(graph.nodes):
            for v in node.inputs:
                readers.setdefault(v, set()).add(nid)
        sunk = set()
        in_step = set(step)
        for nid in reversed(hoisted):
            if nid in fusible and all(r in in_step or r in sunk for o in graph.nodes[nid].outputs
                                      for r in readers.get(o, ())):
                sunk.add(nid)
        hoisted = [nid for nid in hoisted if nid not in sunk]
        for nid in sunk:
            for o in graph.nodes[nid].outputs:
                place[o] = "step"
        step = _products_first(sorted(sunk | in_step), graph, fusible, random)
    linear = {}
    for nid in step:
        node = graph.nodes[nid]
        if node.op is L.Linear or node.op is L.MatMul:
            xin, w = node.inputs[0], node.inputs[1]
            vx, vw = values[xin], values[w]
            if vx.row and len(vx.shape) == 1 and place[w] == "fixed" and len(vw.shape) == 2 and \
                    (len(node.inputs) < 3 or place[node.inputs[2]] == "fixed"):
                linear[nid] = StepLinear(nid, node.op is L.Linear, node.inputs[2] if len(node.inputs) > 2 else None)
    reads = set()
    for nid in step:
        reads.update(v for v in graph.nodes[nid].inputs if place[v] in ("hoist", "fill"))
    reads.update(v for v in graph.outputs if place[v] in ("hoist", "fill"))
    plan = Plan(graph, place, static, hoisted, step, linear, x_vid, tuple(state_vids), tuple(sorted(reads)))
    plan.fused = fused
    if fused:
        plan.hoisted_items = fuse.schedule(hoisted, graph, dtype, extra_outside=reads, place=place)
        plan.step_items = fuse.schedule(step, graph, dtype, exclude=set(linear), place=place)
    else:
        plan.hoisted_items, plan.step_items = list(hoisted), list(step)
    return plan


def _products_first(nids, graph, fusible, random):
    """``nids`` in an order that keeps every dependency and the relative order of random ops, taking
    whatever is not fusible as soon as it is ready, so that the fusible ops between form long runs."""
    made = {}
    for nid in nids:
        for o in graph.nodes[nid].outputs:
            made[o] = nid
    deps = {nid: {made[v] for v in graph.nodes[nid].inputs if v in made} for nid in nids}
    previous = None
    for nid in nids:
        if nid in random:
            if previous is not None:
                deps[nid].add(previous)
            previous = nid
    done, order, remaining = set(), [], list(nids)
    while remaining:
        ready = [nid for nid in remaining if deps[nid] <= done]
        pick = next((nid for nid in ready if nid not in fusible), ready[0])
        order.append(pick)
        done.add(pick)
        remaining.remove(pick)
    return order


__all__ = ["Plan", "StepLinear", "build_plan", "rowwise"]
