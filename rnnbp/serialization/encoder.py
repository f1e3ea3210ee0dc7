"""Saving: an object becomes its skeleton (a JSON tree) and its arrays, walked without recursion.

The tree keeps what JSON alone would lose: dict key types (int keys stay int), tuples vs lists,
sets, bit-exact floats, NumPy scalars and dtypes, and which Tensors, Parameters and Modules
are one object reached twice. Its tags, one-key dicts, are listed in :mod:`.decoder`.
"""
from __future__ import annotations

import io
import math
import struct
import types
from collections import OrderedDict

import numpy as np

from . import allowlist
from .objects import can_restore, object_state
from .skeleton import MAX_DEPTH
from .walk import Trampoline, Where

__all__ = ["Encoder", "BIT_GENERATORS", "REGISTRIES", "state_where", "nn_classes"]

# The bit generators of numpy.random a saved generator may name.
BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")
REGISTRIES = ("_parameters", "_buffers", "_modules")  # a Module's children: named obj.<name> in messages


def nn_classes():
    """``(Module, Parameter)``, looked up late: rnnbp.nn imports much of rnnbp, which imports this package early."""
    from ..nn.module import Module
    from ..nn.parameter import Parameter

    return Module, Parameter


def _is_atom(value) -> bool:
    """Whether ``value`` is its own JSON (str, int, bool, None, a finite float): copied without a walk step."""
    kind = type(value)
    return kind is str or kind is int or kind is bool or value is None or (kind is float and math.isfinite(value))


def state_where(where: Where, key, registry: bool) -> Where:
    """The place of a Module's attribute or child: ``obj.rnn`` (registries, identifiers) or ``obj['a b']``."""
    return where.attr(key) if registry or (isinstance(key, str) and key.isidentifier()) else where.key(key)


class Encoder:
    """Walks an object, moving its arrays into ``arrays`` (with a record each) and returning the JSON tree.

    ``encode_root(obj)`` is the entry point. Internally ``encode(value, where)`` returns a
    leaf's JSON value directly, or, for containers and objects, a generator that the
    :class:`~.walk.Trampoline` runs: it yields its children's work and gets their results back.
    """

    def __init__(self):
        from ..autograd.tensor import Tensor

        self.arrays: dict[str, np.ndarray] = {}
        self.records: dict[str, dict] = {}
        self._keys_by_id: dict[int, str] = {}
        self._ids: dict[int, int] = {}  # id(Tensor/Module/object) -> its number in the skeleton
        self._keep: list = []  # keeps every numbered object alive, so no id() is reused meanwhile
        self._open: set[int] = set()  # containers being encoded, to catch cycles
        self._walk = Trampoline()
        self.Tensor = Tensor
        self.Module, self.Parameter = nn_classes()

    def encode_root(self, obj):
        """The JSON tree of ``obj`` (its arrays collected in ``arrays`` and ``records``)."""
        return self._walk.run(self.encode(obj, Where.root("obj")))

    def _store(self, arr: np.ndarray, where: Where, share: bool) -> str:
        if arr.dtype.hasobject:
            raise TypeError(
                f"save: {where} is an array of dtype {arr.dtype}; object arrays would need pickle, "
                "which rnnbp checkpoints do not use"
            )
        if share and id(arr) in self._keys_by_id:
            return self._keys_by_id[id(arr)]
        key = f"a{len(self.arrays)}"
        self.arrays[key] = arr
        self.records[key] = {"dtype": arr.dtype.str, "shape": list(arr.shape), "path": str(where)}
        if share:
            self._keys_by_id[id(arr)] = key
        return key

    def _number(self, obj) -> int:
        n = self._ids[id(obj)] = len(self._ids)
        self._keep.append(obj)
        return n

    def _nested(self, work, where: Where):
        """``work`` (a generator one level further down), unless the object is nested too deep to load back."""
        if self._walk.depth >= MAX_DEPTH // 2:
            work.close()
            raise ValueError(
                f"save: {where} is nested more than {MAX_DEPTH // 2} containers and objects deep; "
                "rnnbp checkpoints hold less: flatten the structure or save it in parts"
            )
        return work

    def encode(self, obj, where: Where):
        if isinstance(obj, np.generic):  # before float and str: np.float64 and np.str_ subclass them
            return {"$scalar": self._store(np.asarray(obj), where, share=False)}
        if obj is None or type(obj) is bool:
            return obj
        if isinstance(obj, str):
            return str(obj)
        if isinstance(obj, int):
            return int(obj)
        if isinstance(obj, float):
            obj = float(obj)
            if obj == obj and obj not in (float("inf"), float("-inf")):
                return obj  # json writes repr(obj), which parses back to the same bits
            return {"$float": struct.pack(">d", obj).hex()}
        if isinstance(obj, np.ndarray):
            return {"$array": self._store(obj, where, share=True)}
        if isinstance(obj, np.dtype):
            return {"$dtype": _dtype_str(obj, where)}
        if isinstance(obj, (tuple, list, dict, set, frozenset)):
            return self._nested(self._encode_container(obj, where), where)
        if id(obj) in self._ids:
            return {"$ref": self._ids[id(obj)]}
        if isinstance(obj, self.Tensor):
            return self._encode_tensor(obj, where)
        if isinstance(obj, self.Module):
            return self._nested(self._encode_object(obj, where), where)
        if isinstance(obj, np.random.Generator):
            return self._nested(self._encode_generator(obj, where), where)
        if isinstance(obj, type) and issubclass(obj, np.generic):
            return {"$scalar_type": _dtype_str(np.dtype(obj), where)}
        if isinstance(obj, (type, types.FunctionType, types.BuiltinFunctionType)):
            return self._encode_global(obj, where)
        if _storable_class(type(obj), self.Module):
            return self._nested(self._encode_object(obj, where), where)
        raise TypeError(_unstorable(obj, where))

    # ------------------------------------------------------------ containers
    def _encode_container(self, obj, where: Where):
        if id(obj) in self._open:
            raise TypeError(f"save: {where} contains itself (a reference cycle), which cannot be saved")
        self._open.add(id(obj))
        try:
            if isinstance(obj, dict):
                return (yield from self._encode_dict(obj, where))
            if isinstance(obj, (set, frozenset)):
                try:
                    items = sorted(obj)  # a stable order, so equal sets give equal files
                except (TypeError, RecursionError):
                    items = list(obj)
                out = []
                for v in items:
                    out.append(v if _is_atom(v) else (yield self.encode(v, where.labelled(" item ", v))))
                return {"$set" if isinstance(obj, set) else "$frozenset": out}
            out = []
            for i, v in enumerate(obj):
                out.append(v if _is_atom(v) else (yield self.encode(v, where.key(i))))
            return {"$tuple": out} if isinstance(obj, tuple) else out
        finally:
            self._open.discard(id(obj))

    def _encode_dict(self, obj: dict, where: Where, registry: bool = False):
        def item_where(k):
            return state_where(where, k, True) if registry else where.key(k)

        if type(obj) is not OrderedDict and all(type(k) is str and not k.startswith("$") for k in obj):
            out = {}
            for k, v in obj.items():
                out[k] = v if _is_atom(v) else (yield self.encode(v, item_where(k)))
            return out
        items = []
        for k, v in obj.items():  # keys are hashable, and so is what they decode to (a Tensor key stays one)
            key = yield self.encode(k, where.labelled(" key ", k))
            items.append([key, (yield self.encode(v, item_where(k)))])
        return {"$odict" if type(obj) is OrderedDict else "$dict": items}

    # ------------------------------------------------------------ Tensors, objects, generators, globals
    def _encode_tensor(self, t, where: Where):
        if type(t) is self.Tensor:
            tag = "$tensor"
        elif type(t) is self.Parameter:
            tag = "$parameter"
        else:
            raise TypeError(
                f"save: cannot save {where}, a Tensor subclass {allowlist.global_path(type(t))}; "
                "save t.detach() or the state_dict() instead"
            )
        n = self._number(t)
        key = self._store(t._data, where, share=True)
        return {tag: {"id": n, "array": key, "requires_grad": bool(t.requires_grad)}}

    def _encode_object(self, obj, where: Where):
        cls = type(obj)
        module, qualname = cls.__module__, cls.__qualname__
        _check_findable(cls, where)
        state = object_state(obj)
        if not can_restore(obj, state):
            raise TypeError(
                f"save: cannot save {where}: {module}.{qualname}.__getstate__() returns a "
                f"{type(state).__name__} and the class has no __setstate__; save the state_dict() instead"
            )
        n = self._number(obj)
        encoded = yield from self._encode_state(state, where, isinstance(obj, self.Module))
        return {"$object": {"id": n, "module": module, "qualname": qualname, "state": encoded}}

    def _encode_state(self, state, where: Where, is_module: bool):
        if type(state) is dict and all(type(k) is str for k in state):
            out = {}
            for key, value in state.items():
                if is_module and key == "_forward_hooks":
                    continue  # hooks are code (often lambdas), not state: a loaded module has none
                if is_module and key in REGISTRIES and type(value) in (dict, OrderedDict):
                    out[key] = yield from self._encode_dict(value, where, registry=True)
                else:
                    out[key] = yield self.encode(value, state_where(where, key, False))
            return {"$attrs": out}
        if isinstance(state, tuple) and len(state) == 2 and (state[0] is None or isinstance(state[0], dict)):
            # (dict, slots) from object_state: each part is a dict, so this goes one level down at most.
            attrs = None if state[0] is None else (yield from self._encode_state(state[0], where, is_module))
            slots = yield from self._encode_state(state[1], where, False)
            return {"$attrs_slots": [attrs, slots]}
        return (yield self.encode(state, where.text(".__getstate__()")))

    def _encode_generator(self, g: np.random.Generator, where: Where):
        cls, bit = type(g), g.bit_generator
        name = type(bit).__name__
        if name not in BIT_GENERATORS or type(bit) is not getattr(np.random, name):
            raise TypeError(f"save: cannot save {where}: its bit generator {type(bit).__qualname__} is not one "
                            f"of numpy.random's {', '.join(BIT_GENERATORS)}; save the state_dict() instead")
        if cls is not np.random.Generator:
            _check_findable(cls, where)
            if not _storable_class(cls, self.Module):
                raise TypeError(_unstorable(g, where))
        n = self._number(g)
        plain = cls is np.random.Generator
        module, qualname = ("numpy.random", "Generator") if plain else (cls.__module__, cls.__qualname__)
        state = yield self.encode(bit.state, where.text(".bit_generator.state"))
        attrs = yield self.encode(dict(vars(g)) if hasattr(g, "__dict__") else {}, where)
        return {"$generator": {"id": n, "module": module, "qualname": qualname, "bit_generator": name,
                               "state": state, "attrs": attrs}}

    def _encode_global(self, obj, where: Where):
        module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
        if isinstance(qualname, str) and "<lambda>" in qualname:
            raise TypeError(
                f"save: cannot save {where}, a lambda: rnnbp stores functions by name and never pickles; "
                "save the state_dict() instead (or use a function defined at module level)"
            )
        if not isinstance(module, str) or not isinstance(qualname, str):
            raise TypeError(_unstorable(obj, where))
        if not (allowlist.is_allowed(module, qualname)
                or (isinstance(obj, type) and issubclass(obj, self.Module))):
            raise TypeError(_unstorable(obj, where))
        _check_findable(obj, where)
        return {"$global": {"module": module, "qualname": qualname}}


def _dtype_str(dtype: np.dtype, where: Where) -> str:
    if dtype.hasobject or np.dtype(dtype.str) != dtype:
        raise TypeError(f"save: {where} is the dtype {dtype}, which has no plain name (structured or object)")
    return dtype.str


def _storable_class(cls, module_base) -> bool:
    """Modules of any class (the saving program defines them); other objects if rnnbp's or allowed."""
    if cls.__module__ == "builtins":  # bytes, complex, range, ...: their instances have no __dict__ to store
        return False
    return issubclass(cls, module_base) or allowlist.is_allowed(cls.__module__, cls.__qualname__)


def _check_findable(obj, where: Where) -> None:
    """A class or function must be found again under its name at load, or the file could not be read."""
    module, qualname = obj.__module__, obj.__qualname__
    if "<locals>" in qualname:
        raise TypeError(
            f"save: cannot save {where}: {module}.{qualname} is defined inside a function, so loading "
            "cannot find it by name; define it at module level, or save the state_dict() instead"
        )
    if allowlist.lookup(module, qualname) is not obj:
        raise TypeError(
            f"save: cannot save {where}: {module}.{qualname} cannot be found again under that name; "
            "save the state_dict() instead"
        )


def _unstorable(obj, where: Where) -> str:
    cls = type(obj)
    what = f"an object of class {cls.__module__}.{cls.__qualname__}"
    hint = ""
    if isinstance(obj, (type, types.FunctionType, types.BuiltinFunctionType)):
        module = getattr(obj, "__module__", None)
        what = f"{module}.{getattr(obj, '__qualname__', obj)!s}"
        if isinstance(module, str) and not allowlist.is_blocked(module):
            name = getattr(obj, "__name__", "it")
            hint = f", or allow it first with rnnbp.serialization.add_safe_globals([{name}])"
    elif not isinstance(obj, (bytes, bytearray, complex, range, slice, io.IOBase)) and hasattr(obj, "__dict__"):
        hint = f", or allow its class first with rnnbp.serialization.add_safe_globals([{cls.__name__}])"
    return (
        f"save: cannot save {where}, {what}: rnnbp stores dicts, lists, tuples, sets, numbers, strings, None, "
        "NumPy arrays, scalars and dtypes, Tensors, Modules and rnnbp's own objects, and never pickles; "
        f"save the state_dict() instead{hint}"
    )
