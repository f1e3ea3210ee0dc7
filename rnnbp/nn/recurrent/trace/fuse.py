"""Runs of elementwise ops compiled into one loop over rows (numba), forward and backward.

NumPy runs each op of a step as its own pass over (b, n) arrays, and a
layer-normalised LSTM step has about thirty of them. A :class:`FusedGroup` takes a
run of consecutive ops of the plan that are elementwise (with NumPy broadcasting
of per-row columns, per-feature vectors and scalars), reductions over the last
axis with ``keepdim`` (a layer norm's mean and variance), splits and column slices
along the last axis and concatenations, and generates two numba functions:

* forward: for each row, each op's loop over the row's columns (the row stays in
  the cache), storing only what leaves the group and what backward reads;
* backward: for each row, the ops' derivatives in reverse, gradients of values made
  inside the group in scratch rows, parameter gradients (per-feature vectors such as
  a layer norm's gain) summed into one accumulator over all rows and steps.

The derivative of each op is the formula of its ``Function.backward`` in
``autograd/ops``, written per element; float64 results match the op-by-op replay
to rounding. tanh and sigmoid are ``kernels.fast_math``'s (vectorised in float32,
libm in float64), sums over a row are vectorised (reassociated) loops.

Value classes inside a group, for a block of ``rows`` rows:

``R``  a row value (rows, n), n > 1
``C``  a per-row column (rows, 1) (a layer norm's mean)
``V``  a fixed per-feature vector (n,) or (1, n) (a gain, a bias)
``S``  a fixed scalar: shape (), (1,) or (1, 1) (a constant such as 1 in 1 - z)

Kernels are generated per group, dtype and gradient pattern and cached by their
source, so all layers and directions of one cell share them; compiling costs a
few seconds, once: the machine code is cached on disk (``compiled``). With backend 'numpy', or 'auto' without numba (or after
a compile failure, with one warning), the plan runs the same ops one by one with NumPy.
"""
from __future__ import annotations

import importlib.util
import warnings

import numpy as np

from ....autograd.ops import elementwise as E
from ....autograd.ops import shape as Sh
from .codegen import BINARY, REDUCE, UNARY, Gen
from .compiled import compile_source

MIN_GROUP = 2  # ops a run needs to be compiled
_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

_REDUCE = REDUCE


def available() -> bool:
    return importlib.util.find_spec("numba") is not None


# --------------------------------------------------------------------------- which ops fuse
def value_class(v, dtype):
    """'R', 'C', 'V' or 'S' for a graph value (see the module docstring), or None."""
    if v.dtype != dtype:
        return None
    if v.row:
        if len(v.shape) != 1:
            return None
        return "C" if v.shape[0] == 1 else "R"
    shape = tuple(v.shape)
    if v.kind == "const" and not isinstance(v.data, np.ndarray):
        return None
    if int(np.prod(shape)) == 1 and len(shape) <= 2:
        return "S"
    if len(shape) == 1 or (len(shape) == 2 and shape[0] == 1):
        return "V"
    return None


def width(v) -> int:
    return int(v.shape[-1]) if v.shape else 1


def _last_axis(dim) -> bool:
    if isinstance(dim, (tuple, list)):
        return len(dim) == 1 and _last_axis(dim[0])
    return isinstance(dim, (int, np.integer)) and int(dim) in (1, -1)


def _col_slice(index, n: int):
    """(start, stop) for an index ``(slice(None), slice(a, b))`` of a (rows, n) value, else None."""
    if not isinstance(index, tuple) or len(index) != 2 or index[0] != slice(None):
        return None
    s = index[1]
    if not isinstance(s, slice) or s.step not in (None, 1):
        return None
    start, stop, _ = s.indices(n)
    return (start, stop) if stop > start else None


def fusible(node, graph, dtype, place=None) -> bool:
    """Whether ``node`` can join a fused group (its op, operand classes and arguments are supported).

    ``place``: the plan's place of every value. A compiled run reads a 'V' or 'S' operand once per
    sequence, so one that changes from step to step (a mean over the batch of a step's value, say)
    keeps its op out of the run; without ``place`` every 'V' and 'S' operand is taken as fixed.
    """
    values = graph.values
    if node.batched:
        return False
    ins = [values[v] for v in node.inputs]
    outs = [values[v] for v in node.outputs]
    cin = [value_class(v, dtype) for v in ins]
    cout = [value_class(v, dtype) for v in outs]
    if any(c is None for c in cin) or any(c not in ("R", "C") for c in cout):
        return False
    if place is not None and any(c in ("V", "S") and place[vid] not in ("fixed", "fill")
                                 for c, vid in zip(cin, node.inputs)):
        return False
    op, kw = node.op, node.kwargs
    if op in UNARY or op is E.LeakyReLU:
        return len(ins) == 1 and cin[0] == cout[0]
    if op in BINARY:
        if len(ins) != 2:
            return False
        n = width(outs[0])
        return all(width(v) == n for v, c in zip(ins, cin) if c in ("R", "V")) and \
            cout[0] == ("R" if any(c in ("R", "V") for c in cin) else "C")
    if op is E.Pow:
        return len(ins) == 2 and cin[0] in ("R", "C") and cin[1] == "S" and ins[1].kind == "const" and \
            cout[0] == cin[0]
    if op in _REDUCE:
        return cin[0] == "R" and cout[0] == "C" and kw.get("keepdim") is True and _last_axis(kw.get("dim"))
    if op is Sh.Split:
        return cin[0] == "R" and _last_axis(kw.get("dim", 0))
    if op is Sh.GetItem:
        return cin[0] == "R" and _col_slice(kw.get("index"), width(ins[0])) is not None
    if op is Sh.Cat:
        return all(c == "R" for c in cin) and cout[0] == "R" and _last_axis(kw.get("dim", 0))
    return False


# --------------------------------------------------------------------------- compiling
_failed = None  # the exception of a compile that failed: backend 'auto' compiles nothing more


# --------------------------------------------------------------------------- runtime
class FuseError(RuntimeError):
    """Compiling a fused group failed (fusion is then off for the process; the caller replans)."""


class FusedGroup:
    """A run of fusible ops of a plan (node ids in order), compiled per gradient pattern on first use.

    ``inputs``: values the run reads that are made elsewhere; ``outputs``: values it makes that
    are read elsewhere (later ops, the step's new state, the next phase).
    """

    def __init__(self, nodes, graph, needed_outside):
        self.nodes = tuple(nodes)
        made = set()
        inputs = []
        for nid in self.nodes:
            node = graph.nodes[nid]
            for v in node.inputs:
                if v not in made and v not in inputs:
                    inputs.append(v)
            made.update(node.outputs)
        self.inputs = tuple(inputs)
        self.outputs = tuple(v for v in sorted(made) if v in needed_outside)
        self._kernels = {}

    def kernels(self, graph, dtype, node_needs, rg, training):
        key = (np.dtype(dtype).str, tuple(node_needs[n] for n in self.nodes),
               tuple(rg[v] for v in self.inputs + self.outputs), tuple(rg[o] for n in self.nodes
                                                                     for o in graph.nodes[n].outputs), training)
        k = self._kernels.get(key)
        if k is None:
            gen = Gen(self, graph, dtype, node_needs, rg, training, value_class, width, _col_slice)
            gen.build()
            try:
                fwd = compile_source(gen.forward_source, "forward", dtype)
                bwd = compile_source(gen.backward_source, "backward", dtype) if training else None
                k = _Kernels(gen, fwd, bwd)
                k.warm(np.dtype(dtype))
            except Exception as exc:  # a broken or incompatible numba must not break training
                note_failure(exc)
                raise FuseError(f"{type(exc).__name__}: {exc}") from exc
            self._kernels[key] = k
        return k


class _Kernels:
    """A group's compiled pair for one gradient pattern and what their arguments are."""

    def __init__(self, gen, fwd, bwd):
        self.fwd, self.bwd = fwd, bwd
        self.forward_source, self.backward_source = gen.forward_source, gen.backward_source
        self.inputs, self.cls, self.n, self.alias = gen.inputs, gen.cls, gen.n, gen.alias
        self.stored, self.outputs, self.seeds = gen.stored, gen.group.outputs, gen.seeds
        self.bwd_inputs, self.grad_rows, self.grad_acc = gen.bwd_inputs, gen.grad_rows, gen.grad_acc

    def warm(self, dtype):
        """Compile both functions now (numba compiles on the first call), on zero rows: a failure
        shows in the forward, where the caller can still replan without fusion, not in backward."""
        def row(v):
            return np.zeros((0, self.n[v]), dtype)

        def arg(v):
            c = self.cls[v]
            return row(v) if c in ("R", "C") else np.zeros(self.n[v] if c == "V" else 1, dtype)

        self.fwd(0, *[arg(v) for v in self.inputs], *[row(v) for v in self.stored])
        if self.bwd is not None:
            self.bwd(0, *[row(v) for v in self.seeds], *[arg(v) for v in self.bwd_inputs],
                     *[row(v) for v in self.stored], *[row(v) for v in self.grad_rows],
                     *[np.zeros(self.n[v] if self.cls[v] == "V" else 1, dtype) for v in self.grad_acc])

    def prepare(self, v, a):
        """An input array as the kernels take it: R (rows, n) and C (rows, 1) as they are,
        V as (n,), S as (1,)."""
        c = self.cls[v]
        if c == "V":
            return np.ascontiguousarray(a).reshape(-1)
        if c == "S":
            return np.asarray(a).reshape(1)
        return a


def note_failure(exc: Exception) -> None:
    """After a compile failure backend 'auto' compiles nothing more in this process (one warning)."""
    global _failed
    if _failed is None:
        _failed = exc
        warnings.warn(f"nn.Recurrent: compiling a traced cell's elementwise ops failed ({type(exc).__name__}: "
                      f"{exc}); replaying them one by one with NumPy instead", RuntimeWarning, stacklevel=3)


def enabled(backend: str, dtype) -> bool:
    """Whether a replay with ``backend`` ('auto', 'numba', 'numpy') of arrays of ``dtype`` compiles its
    runs of elementwise ops ('numba' is checked to be installed where the module is made)."""
    if backend == "numpy" or np.dtype(dtype) not in _DTYPES:
        return False
    return backend == "numba" or (_failed is None and available())


def schedule(nids, graph, dtype, exclude=(), extra_outside=(), place=None):
    """``nids`` (one phase of a plan, in order) as a list of node ids and FusedGroups: each maximal run of
    consecutive fusible ops (not in ``exclude``) of at least MIN_GROUP ops becomes one group.
    ``extra_outside``: values read after the phase (the step's outputs, the next phase's reads);
    ``place``: the plan's places (see :func:`fusible`)."""
    readers = {}
    for nid, node in enumerate(graph.nodes):
        for v in node.inputs:
            readers.setdefault(v, set()).add(nid)
    outside = set(extra_outside) | set(graph.outputs)
    items, run = [], []

    def close():
        if len(run) >= MIN_GROUP:
            members = set(run)
            needed = {v for nid in run for v in graph.nodes[nid].outputs
                      if v in outside or any(r not in members for r in readers.get(v, ()))}
            items.append(FusedGroup(run, graph, needed))
        else:
            items.extend(run)
        run.clear()

    for nid in nids:
        if nid not in exclude and fusible(graph.nodes[nid], graph, dtype, place):
            run.append(nid)
        else:
            close()
            items.append(nid)
    close()
    return items
