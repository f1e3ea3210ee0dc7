"""Loading: the skeleton's tree and the checked arrays become the saved object again, walked without recursion.

Plain JSON values stand for themselves (dicts with str keys, lists, str, int, float, bool,
None). A one-key dict whose key starts with ``$`` is a tag:

======================  ==============================================================
``$array``, ``$scalar``  an array (or NumPy scalar) by its key in the archive
``$tuple``, ``$set``,    containers JSON lacks; ``$dict`` / ``$odict`` hold ``[key, value]``
``$frozenset``, ``$dict``  pairs, for keys that are not plain strings and for OrderedDicts
``$odict``
``$float``               a float JSON cannot write (inf, nan with its payload), as hex bits
``$dtype``,              a NumPy dtype, a NumPy scalar type
``$scalar_type``
``$tensor``,             a Tensor or Parameter: ``{id, array, requires_grad}``
``$parameter``
``$object``              an object: ``{id, module, qualname, state}``, its class allowed by :mod:`.allowlist`
``$generator``           a ``numpy.random.Generator``: bit generator name and state
``$global``              a class or function by ``{module, qualname}``
``$ref``                 the Tensor, Module or object numbered ``id`` earlier (one object reached twice)
======================  ==============================================================
"""
from __future__ import annotations

import struct
from collections import OrderedDict

import numpy as np

from . import allowlist
from .encoder import BIT_GENERATORS, REGISTRIES, nn_classes, state_where
from .errors import CheckpointError, UnsafeGlobalError
from .objects import new_object, set_object_state
from .walk import Trampoline, Where

__all__ = ["Decoder"]

_ATOMS = (str, int, float, bool, type(None))  # parsed JSON values that stand for themselves


class Decoder:
    """Rebuilds the saved object from its skeleton tree and its arrays, using the allow-list for classes.

    ``decode_root(tree)`` is the entry point. As in :class:`~.encoder.Encoder`, ``decode``
    returns a leaf's value directly and a generator for containers and objects, run by a
    :class:`~.walk.Trampoline`: a skeleton's depth costs heap, never Python's recursion limit.
    """

    def __init__(self, arrays: dict, name: str, trust_modules: bool = False):
        from ..autograd.tensor import Tensor

        self.arrays, self.name, self.trust_modules = arrays, name, trust_modules
        self.objects: dict[int, object] = {}
        self.Tensor = Tensor
        self.Module, self.Parameter = nn_classes()

    def decode_root(self, tree):
        return Trampoline().run(self.decode(tree, Where.root("obj")))

    def fail(self, where: Where, message: str) -> CheckpointError:
        return CheckpointError(f"load: {self.name}: {where}: {message}")

    def array(self, key, where: Where) -> np.ndarray:
        if not isinstance(key, str) or key not in self.arrays:
            raise self.fail(where, f"the skeleton refers to array {key!r:.80}, which is missing")
        return self.arrays[key]

    def _register(self, spec, obj, where: Where):
        n = spec.get("id")
        if type(n) is not int or n in self.objects:
            raise self.fail(where, f"bad object number {n!r:.80} in the skeleton")
        self.objects[n] = obj
        return obj

    def _expect(self, value, kind: type, where: Where, what: str):
        if not isinstance(value, kind):
            raise self.fail(where, f"{what} should be a {kind.__name__} in the skeleton, got {type(value).__name__}")
        return value

    def find(self, spec, where: Where):
        try:
            return allowlist.find_global(spec.get("module"), spec.get("qualname"), self.trust_modules)
        except UnsafeGlobalError as exc:
            raise UnsafeGlobalError(f"load: {self.name}: {where}: {exc}") from None
        except CheckpointError as exc:
            raise self.fail(where, str(exc)) from None

    def decode(self, node, where: Where):
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if isinstance(node, list):
            return self._list(node, where)
        if not isinstance(node, dict):
            raise self.fail(where, f"unexpected {type(node).__name__} in the skeleton")
        if len(node) == 1:
            tag, value = next(iter(node.items()))
            if tag.startswith("$"):
                method = self._TAGS.get(tag)
                if method is None:
                    raise self.fail(where, f"unknown entry {tag!r:.80} in the skeleton")
                return method(self, value, where)
        if any(k.startswith("$") for k in node):
            raise self.fail(where, f"unknown entry {sorted(node)!r:.80} in the skeleton")
        return self._plain_dict(node, where)

    # ------------------------------------------------------------ containers (generators)
    def _list(self, items, where):
        out = []
        for i, v in enumerate(items):
            out.append(v if type(v) in _ATOMS else (yield self.decode(v, where.key(i))))
        return out

    def _plain_dict(self, node, where):
        out = {}
        for k, v in node.items():
            out[k] = v if type(v) in _ATOMS else (yield self.decode(v, where.key(k)))
        return out

    def _tuple(self, items, where):
        return tuple((yield from self._list(self._expect(items, list, where, "a tuple's items"), where)))

    def _pairs(self, items, where, registry=False):
        out = []
        for pair in self._expect(items, list, where, "a dict's items"):
            if not (isinstance(pair, list) and len(pair) == 2):
                raise self.fail(where, "a dict's item should be a [key, value] pair in the skeleton")
            key = yield self.decode(pair[0], where.text(" key"))
            value_where = state_where(where, key, True) if registry else where.key(key)
            out.append((key, (yield self.decode(pair[1], value_where))))
        return out

    def _dict(self, items, where):
        return dict((yield from self._pairs(items, where)))

    def _odict(self, items, where):
        return OrderedDict((yield from self._pairs(items, where)))

    def _items(self, items, where):
        out = []
        for v in self._expect(items, list, where, "a set's items"):
            out.append((yield self.decode(v, where)))
        return out

    def _set(self, items, where):
        return set((yield from self._items(items, where)))

    def _frozenset(self, items, where):
        return frozenset((yield from self._items(items, where)))

    # ------------------------------------------------------------ leaves
    def _array(self, key, where):
        return self.array(key, where)

    def _scalar(self, key, where):
        return self.array(key, where)[()]

    def _float(self, hexbits, where):
        return struct.unpack(">d", bytes.fromhex(hexbits))[0]

    def _dtype(self, text, where):
        return np.dtype(self._expect(text, str, where, "a dtype"))

    def _scalar_type(self, text, where):
        return np.dtype(self._expect(text, str, where, "a scalar type")).type

    def _ref(self, n, where):
        if type(n) is not int or n not in self.objects:
            raise self.fail(where, f"the skeleton refers to object {n!r:.80} before defining it")
        return self.objects[n]

    def _tensor(self, spec, where, cls=None):
        cls = cls or self.Tensor
        arr = self.array(spec.get("array"), where)
        if cls is self.Tensor:
            t = self.Tensor(arr)
            if spec.get("requires_grad"):
                t.requires_grad_(True)
        else:
            t = cls(arr, requires_grad=bool(spec.get("requires_grad")))
        return self._register(spec, t, where)

    def _parameter(self, spec, where):
        return self._tensor(spec, where, cls=self.Parameter)

    def _global(self, spec, where):
        return self.find(self._expect(spec, dict, where, "a global"), where)

    # ------------------------------------------------------------ objects (generators)
    def _object(self, spec, where):
        cls = self.find(self._expect(spec, dict, where, "an object"), where)
        if not isinstance(cls, type):
            raise self.fail(where, f"{allowlist.global_path(cls)} is not a class")
        obj = self._register(spec, new_object(cls), where)
        state = yield self._state(spec.get("state"), where, issubclass(cls, self.Module))
        try:
            set_object_state(obj, state)
        except CheckpointError as exc:
            raise self.fail(where, str(exc)) from None
        except Exception as exc:  # noqa: BLE001  (a class's own __setstate__ may raise anything)
            message = f"restoring {allowlist.global_path(cls)} failed ({type(exc).__name__}: {exc})"
            raise self.fail(where, message) from exc
        return obj

    def _state(self, node, where, is_module):
        if isinstance(node, dict) and len(node) == 1 and "$attrs" in node:
            out = {}
            for key, value in self._expect(node["$attrs"], dict, where, "an object's attributes").items():
                if is_module and key in REGISTRIES and isinstance(value, dict) and set(value) == {"$odict"}:
                    out[key] = OrderedDict((yield from self._pairs(value["$odict"], where, registry=True)))
                else:
                    out[key] = yield self.decode(value, state_where(where, key, False))
            return out
        if isinstance(node, dict) and len(node) == 1 and "$attrs_slots" in node:
            parts = self._expect(node["$attrs_slots"], list, where, "an object's attributes and slots")
            if len(parts) != 2:
                raise self.fail(where, "an object's attributes and slots should be a pair in the skeleton")
            # Each part through the trampoline: a forged skeleton may nest them without end.
            attrs = None if parts[0] is None else (yield self._state(parts[0], where, is_module))
            return attrs, (yield self._state(parts[1], where, False))
        return (yield self.decode(node, where.text(".__getstate__()")))

    def _generator(self, spec, where):
        spec = self._expect(spec, dict, where, "a generator")
        name = spec.get("bit_generator")
        if name not in BIT_GENERATORS:
            raise self.fail(where, f"unknown bit generator {name!r:.80}")
        bit = getattr(np.random, name)()
        bit.state = yield self.decode(spec.get("state"), where.text(".bit_generator.state"))
        if (spec.get("module"), spec.get("qualname")) == ("numpy.random", "Generator"):
            g = np.random.Generator(bit)
        else:
            cls = self.find(spec, where)
            if not (isinstance(cls, type) and issubclass(cls, np.random.Generator)):
                raise self.fail(where, f"{allowlist.global_path(cls)} is not a numpy.random.Generator")
            g = cls.__new__(cls, bit)
            np.random.Generator.__init__(g, bit)
        self._register(spec, g, where)
        attrs = yield self.decode(spec.get("attrs"), where)
        if attrs:
            vars(g).update(attrs)
        return g

    _TAGS = {
        "$array": _array, "$scalar": _scalar, "$tuple": _tuple, "$dict": _dict, "$odict": _odict,
        "$set": _set, "$frozenset": _frozenset, "$float": _float, "$dtype": _dtype,
        "$scalar_type": _scalar_type, "$ref": _ref, "$tensor": _tensor, "$parameter": _parameter,
        "$object": _object, "$generator": _generator, "$global": _global,
    }
