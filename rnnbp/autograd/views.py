"""Views: what basic indexing (``x[i]``, ``x[1:, 0]``, views of views), reshaping and permuting
(``x.view(6)``, ``x.t()``: :class:`Arrangement`) and split's pieces give, kept as PyTorch's are.

A view always shows its base's values, and an in-place change of it reaches the base. NumPy
gives the shared memory; what needs care is the graph, where rnnbp's in-place ops do not write
into memory: inside a recorded graph ``y.mul_(w)`` gives ``y`` a new array (the old one stays
intact for the ops that saved it). So:

* a view records ``_view = (parent, index, parent_shape, made_without_grad)`` and holds its parent;
  the parent holds weak references to its views in ``_views`` (:func:`register`);
* when a tensor takes a new array, its live views (and theirs) are re-pointed at it
  (:func:`refresh`): inside the graph with a fresh ``GetItem`` node from the new value, where the
  change may touch them; outside it (a private copy made before a write, :func:`own_array`) the
  array only;
* an in-place change of a view recorded in the graph is written back into its parent, up to the
  root, as ``parent[index] = view`` (:func:`write_back`), and the root then re-points its views;
* a view of a leaf that requires grad may not change in the graph (:func:`viewed_leaf`), and a view
  made under ``no_grad`` whose base then changes in the graph may no longer be used (PyTorch's rule:
  :class:`ModifiedNoGradView`);
* when nothing else holds a graph tensor's array (:func:`sole_owner`), ``x[i] = v`` and a view's
  write-back go into that array instead of a copy of it (a loop filling ``out[t] = h`` is O(T), as in
  PyTorch); the aliases that nodes keep as gradient parents hold a :func:`placeholder` of their shape
  once the op has run (:func:`release`), so that they do not count as holders.

``index`` is a basic index as ``ops.index_arrays`` returns it, or an :class:`Arrangement` (all of the
parent's elements reshaped or permuted: a change of such a view replaces its whole parent, and chains
of reshapes, or of permutations, are registered one link deep); ``parent_shape`` lets a parent change
shape in place (``unsqueeze_``) and keep its views. Everything here walks chains of views with
loops, not recursion: ``for ...: buf = buf[1:]`` may make thousands.
"""
from __future__ import annotations

import sys
import weakref

import numpy as np

from . import grad_mode

_PRUNE_FROM = 16  # a tensor's list of view references is pruned of dead ones once it has this many


class ViewRefs(list):
    """A tensor's weak references to its views; pruned of dead ones when it doubles (``limit``)."""

    __slots__ = ("limit",)

    def __init__(self, refs=()):
        super().__init__(refs)
        self.limit = _PRUNE_FROM


class Arrangement:
    """The ``index`` of a view of all of its parent's elements arranged anew: reshaped to ``shape``
    (reshape, view, flatten, squeeze, unsqueeze) or with its axes in the order ``dims`` (permute,
    transpose, t, T). A change of such a view replaces its whole parent (``undo``)."""

    __slots__ = ("shape", "dims")

    def __init__(self, shape: tuple, dims: tuple | None):
        self.shape, self.dims = shape, dims  # shape: the view's; dims: None for a reshape

    def array(self, parent: np.ndarray) -> np.ndarray:
        """The view's array from its parent's (a view of it, unless a reshape of this layout must copy)."""
        return parent.reshape(self.shape) if self.dims is None else parent.transpose(self.dims)

    def record(self, source):
        """The view's value from its parent's value ``source``, recorded in the graph."""
        from .ops.shape import Permute, Reshape

        return Reshape.apply(source, shape=self.shape) if self.dims is None else Permute.apply(source, dims=self.dims)

    def then(self, other: "Arrangement") -> "Arrangement | None":
        """This arrangement followed by ``other`` as one, when both reshape or both permute; else None."""
        if self.dims is None and other.dims is None:
            return Arrangement(other.shape, None)
        if self.dims is not None and other.dims is not None:
            return Arrangement(other.shape, tuple(self.dims[d] for d in other.dims))
        return None

    def undo(self, value, parent_shape: tuple):
        """The parent's value from the view's ``value``, recorded in the graph (``Tensor._take_value`` keeps
        the parent's layout)."""
        from .ops.shape import Permute, Reshape

        if self.dims is None:
            return Reshape.apply(value, shape=parent_shape)
        return Permute.apply(value, dims=tuple(int(d) for d in np.argsort(self.dims)))


def shares_memory(out, x) -> bool:
    """Whether ``out``'s array is a NumPy view into the memory of ``x``'s array (what an op made of it)."""
    array, owner = out._data, x._data
    return array.base is not None and array.base is (owner if owner.base is None else owner.base)


def register(base, view, index) -> None:
    """Make ``view`` (``base[index]``, sharing its memory) a view of ``base``."""
    root = getattr(base, "_base", None)
    view._base = weakref.ref(base) if root is None else root
    view._view = (base, index, base._data.shape, not grad_mode._enabled)
    refs = getattr(base, "_views", None)
    if refs is None:
        base._views = ViewRefs((weakref.ref(view),))
        return
    refs.append(weakref.ref(view))
    if len(refs) >= refs.limit:
        refs[:] = [ref for ref in refs if ref() is not None]
        refs.limit = max(_PRUNE_FROM, 2 * len(refs))


def register_arranged(base, view, arrangement: Arrangement) -> None:
    """``register`` for a reshaped or permuted view: a view of such a view of the same kind is registered
    on the first tensor of the chain, so that ``y = y.view(...)`` in a loop stays one link deep."""
    link = getattr(base, "_view", None)
    if (link is not None and type(link[1]) is Arrangement and link[3] == (not grad_mode._enabled)
            and link[0]._data.shape == link[2]):
        composed = link[1].then(arrangement)
        if composed is not None:
            base, arrangement = link[0], composed
    register(base, view, arrangement)


def index_view(array: np.ndarray, index, shape: tuple | None = None) -> np.ndarray:
    """``array[index]`` as a view (a 0-d one for an integer per dim), seen as ``shape`` if given."""
    if type(index) is Arrangement:
        out = index.array(array)
        return out if shape is None or out.shape == shape else out.reshape(shape)
    out = array[index]
    if not isinstance(out, np.ndarray):
        out = array[(index if type(index) is tuple else (index,)) + (Ellipsis,)]
    return out if shape is None or out.shape == shape else out.reshape(shape)


def root_of(t):
    """The tensor at the top of ``t``'s chain of views (``t`` itself if it is no view)."""
    view = getattr(t, "_view", None)
    while view is not None:
        t = view[0]
        view = getattr(t, "_view", None)
    return t


def made_without_grad(t) -> bool:
    """Whether ``t`` is a view made under ``no_grad``, or a view of (a view of ...) one."""
    view = getattr(t, "_view", None)
    while view is not None:
        if view[3]:
            return True
        view = getattr(view[0], "_view", None)
    return False


def viewed_leaf(t) -> bool:
    """Whether ``t`` is a view (of a view ...) of a leaf that requires grad."""
    view = getattr(t, "_view", None)
    while view is not None:
        parent = view[0]
        if parent._requires_grad and parent._node is None:
            return True
        view = getattr(parent, "_view", None)
    return False


def own_array(t) -> np.ndarray:
    """The array to write into directly for ``t``: the root of its views makes a private copy first if
    an op of the graph may have saved its array (unless nothing else holds it), and re-points its views
    (``t`` among them) at it."""
    root = root_of(t)
    if root._node is not None and not (root is t and sole_owner(t)):
        root._data = root._data.copy(order="K")  # the layout kept: its reshaped views stay views
        refresh(root, record=False)
    return t._data


def refresh(t, record: bool, changed: np.ndarray | None = None) -> None:
    """After ``t._data`` was replaced: re-point the live views of ``t`` (and theirs) at the new array.

    ``record``: ``t`` took a new value in the graph; a view the change may touch (its memory meets
    ``changed``, the part of ``t``'s old array that was written; None: all of it) takes a fresh
    ``GetItem`` node from the new value, the others only the array. Without ``record`` (a private copy
    made before a write outside the graph) every view keeps its node. Versions stay: the ops that used
    a view hold its old array, untouched, and an edge to its old value (``Function.apply``).
    """
    from .ops.shape import GetItem, Reshape
    from .tensor import Tensor

    pending = [(t, record, changed)]
    while pending:
        base, record_nodes, changed = pending.pop()
        refs = getattr(base, "_views", None)
        if not refs:
            continue
        live = []
        source = None
        for ref in refs:
            view = ref()
            if view is None:
                continue
            _, index, shape, made_without_grad = view._view
            # touched: the change may reach it, or it still shows an array its base no longer has (the
            # view written to, whose own views must follow its new value)
            touched = record_nodes and (changed is None or np.may_share_memory(view._data, changed)
                                        or not np.may_share_memory(view._data, base._data))
            if not touched:
                view._data = index_view(base._data if base._data.shape == shape else base._data.reshape(shape),
                                        index, view._data.shape)
            elif made_without_grad:
                view._data = index_view(base._data.reshape(shape), index, view._data.shape)
                view._base = MODIFIED_NO_GRAD_VIEW
            else:
                if source is None:
                    source = Tensor._make(base._data, base._node, base._out_index)
                parent = source if source._data.shape == shape else Reshape.apply(source, shape=shape)
                fresh = index.record(parent) if type(index) is Arrangement else GetItem.apply(parent, index=index)
                if fresh._data.shape != view._data.shape:
                    fresh = Reshape.apply(fresh, shape=view._data.shape)
                view._data, view._node, view._out_index = fresh._data, fresh._node, fresh._out_index
                view._requires_grad = True
            if type(index) is Arrangement and not np.may_share_memory(view._data, base._data):
                # the base's new array has a layout this reshape must copy: the view keeps its values
                # and is no longer one (as a reshape that copies gives none)
                view._view = view._base = None
            else:
                live.append(ref)
            pending.append((view, touched, None))
        refs[:] = live


def write_back(t) -> None:
    """After the view ``t`` took a new value in the graph: ``parent[index] = t`` (recorded) for each
    parent up to the root, then the root re-points its views (``t`` among them) at its new value."""
    from .ops import functions as F
    from .tensor import Tensor

    changed = None
    while (view := getattr(t, "_view", None)) is not None:
        parent, index, shape, _ = view
        if type(index) is Arrangement:  # all of the parent's elements: its new value is the view's, rearranged
            value = Tensor._make(t._data, t._node, t._out_index)
            if value._data.shape != index.shape:  # t changed shape in place (unsqueeze_)
                value = F.reshape(value, index.shape)
            result = index.undo(value, shape)
            if parent._data.shape != shape:
                result = F.reshape(result, parent._data.shape)
            parent._take_value(result)
            changed, t = None, parent
            continue
        # nothing else holds the parent's array (the ops that read the view kept no values): write into it
        sole = parent._node is not None and parent._data.shape == shape and sole_owner(parent)
        old = parent._data
        changed = index_view(old if old.shape == shape else old.reshape(shape), index)  # what is written
        base = Tensor._make(placeholder(old) if sole else old, parent._node, parent._out_index)
        base._requires_grad = parent._requires_grad
        if old.shape != shape:
            base = F.reshape(base, shape)
        # the value enters through an alias: a later in-place change of t must not move it
        value = Tensor._make(t._data, t._node, t._out_index)
        if value._data.shape != changed.shape:  # t changed shape in place (unsqueeze_)
            value = F.reshape(value, changed.shape)
        result = F.setitem(base, index, value, into=old if sole else None)
        release(base)
        if old.shape != shape:
            result = F.reshape(result, old.shape)
        parent._take_value(result)
        t = parent
    refresh(t, record=True, changed=changed)


def orphan(t) -> None:
    """``t.data = new``: its views keep the old array and are no longer views of ``t`` (PyTorch's too)."""
    refs = getattr(t, "_views", None)
    if refs:
        for ref in refs:
            view = ref()
            if view is not None:
                view._view = None
    t._views = None


def holds_view(t, value, index) -> bool:
    """Whether ``value`` is ``t``'s own view ``t[index]``, showing its current array (``x[i] op= v``:
    Python's assignment after the view already wrote its new value into ``x``)."""
    view = getattr(value, "_view", None)
    if view is None or view[0] is not t or view[2] != t._data.shape:
        return False
    from .ops.functions import index_arrays

    if not same_index(view[1], index_arrays(index)):
        return False
    root = t._data if t._data.base is None else t._data.base
    return value._data.base is root


def same_index(a, b) -> bool:
    """Whether two basic indices (ints, slices, Ellipsis, None, tuples of them) certainly pick the same elements."""
    if a is b:
        return True
    if type(a) is tuple and type(b) is tuple:
        return len(a) == len(b) and all(same_index(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and type(a) in (int, slice) and a == b


def _references(array) -> int:
    return sys.getrefcount(array)


class _Holder:
    __slots__ = ("_data",)


_PROBE = _Holder()
_PROBE._data = np.empty(1)  # an array one slot holds, and nothing else


def _observed() -> bool:
    """Whether a tracer, profiler or monitoring tool runs: one may hold snapshots of frames' locals
    (``f_locals``), which makes reference counts say nothing about who holds an array."""
    if sys.gettrace() is not None or sys.getprofile() is not None:
        return True
    monitoring = getattr(sys, "monitoring", None)
    return monitoring is not None and any(monitoring.get_tool(tool) is not None for tool in range(6))


def sole_owner(t) -> bool:
    """Whether ``t`` alone holds its array (no op saved it, no view, alias or NumPy view of it lives, it
    is no view itself): then an in-place write into it is one nobody else can see. Its references are
    counted against those of an array one slot holds, counted the same way at the same moment (the
    count differs between Python versions), and never while a tracer could hold extra ones."""
    array = t._data
    if array.base is not None or not array.flags.writeable or _observed():
        return False
    return _references(t._data) == _references(_PROBE._data) + 1  # + 1: ``array`` here


_placeholders: dict = {}


def release(alias) -> None:
    """After the op that read ``alias`` (an internal copy of a tensor's handle) has run: if the alias is an
    edge of the graph, keep only a placeholder of its shape (the engine reads its shape and dtype; what
    the op needs of its values, it saved), so that the alias holds no array from its owner. A constant
    keeps its values: a traced cell's recording reads the constants it met."""
    if alias._requires_grad:
        alias._data = placeholder(alias._data)


def placeholder(array: np.ndarray) -> np.ndarray:
    """A read-only array of ``array``'s shape and dtype that holds no memory, shared: what the graph keeps
    of a value it needs the shape of only (an alias in a node's parents, once the op has run), so that
    the alias does not keep the array from its owner (``sole_owner``)."""
    key = (array.shape, array.dtype)
    held = _placeholders.get(key)
    if held is None:
        if len(_placeholders) >= 4096:
            _placeholders.clear()
        held = _placeholders[key] = np.broadcast_to(np.empty((), array.dtype), array.shape)
    return held


class ModifiedNoGradView:
    """The ``_base`` of a view made under ``no_grad`` whose base then changed in place in a recorded
    graph: using the view in an op (which reads ``_base``) raises PyTorch's error, since what its
    gradient should be is ambiguous."""

    __slots__ = ()

    def __call__(self):
        raise RuntimeError(
            "A view was created in no_grad mode and its base or another view of its base has been modified "
            "inplace with grad mode enabled. Given that this use case is ambiguous and error-prone, it is "
            "forbidden. You can clarify your code by moving both the view and the inplace either both inside "
            "the no_grad block (if you don't want the inplace to be tracked) or both outside (if you want the "
            "inplace to be tracked)."
        )


MODIFIED_NO_GRAD_VIEW = ModifiedNoGradView()
