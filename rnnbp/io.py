"""Checkpoints: ``save`` / ``load`` like ``torch.save`` / ``torch.load``, as one ``.npz`` file, never pickling.

A checkpoint is a NumPy ``.npz`` archive holding

* every array of the object, under generated names ``a0``, ``a1``, ...;
* ``__rnnbp__``: the skeleton, a UTF-8 JSON document stored as a uint8 array::

      {"format": "rnnbp-checkpoint", "version": 2,
       "arrays": {"a0": {"dtype": "<f4", "shape": [8, 3], "path": "obj.rnn.weight_ih_l0"}, ...},
       "root": <the object, with its arrays replaced by their names>}

  ``arrays`` has one record per array, checked against the array on load (a place for
  more checks, such as a checksum). ``root`` keeps what JSON alone would lose: dict key
  types (int keys stay int), tuples vs lists, sets, bit-exact floats, NumPy scalars and
  dtypes, and which Tensors, Parameters and Modules are one object reached twice.

What can be saved (``torch.save``'s common uses): state dicts and any nesting of dicts,
lists, tuples, sets, numbers, strings, None, NumPy arrays, scalars and dtypes; Tensors and
Parameters (they load as Tensors and Parameters, ``requires_grad`` kept, gradients and
graph not saved, as in PyTorch); whole Modules, stored as their tree (class path,
``__dict__``-level attributes, parameters, buffers and submodules) and rebuilt on load
without calling ``__init__``; rnnbp's own objects and NumPy generators; classes and
functions by name. Anything else (a lambda, an open file, an object of another library)
is refused by ``save`` with its attribute path: save the ``state_dict()`` instead.

Loading never unpickles (``allow_pickle=False``) and rebuilds only rnnbp's classes and
those the program allows (:mod:`rnnbp.serialization`), so a checkpoint from an untrusted
source cannot run code. A file written by PyTorch (a pickle) is recognised and refused
with the way to convert it. Saving to a path writes a temporary file beside it, flushed,
fsynced and then ``os.replace``d over the path, so a crash mid-write leaves the old file
intact; a file object is written in place.

Round trips are exact: arrays keep dtype, shape (0-d included) and bytes; floats are
bit-exact (NaN payloads too); the same array reached twice is stored once and comes back
as one array. Containers load as their base type (a ``defaultdict`` as ``dict``, a
namedtuple as ``tuple``), except ``OrderedDict``. Version 1 files (no ``arrays`` records,
Tensors saved as bare arrays) still load.
"""
from __future__ import annotations

import contextlib
import io as _stdio
import json
import os
import secrets
import struct
import types
import zipfile
from collections import OrderedDict

import numpy as np

from . import serialization as _allow
from .autograd.tensor import Tensor
from .serialization import CheckpointError, UnsafeGlobalError

__all__ = ["save", "load", "CheckpointError", "UnsafeGlobalError"]

FORMAT = "rnnbp-checkpoint"
VERSION = 2  # 2: per-array records, Tensors, Modules and objects; version 1 files still load
_SKELETON = "__rnnbp__"
# The bit generators of numpy.random a saved generator may name.
_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")
_REGISTRIES = ("_parameters", "_buffers", "_modules")  # a Module's children: named obj.<name> in messages


def _nn():
    # rnnbp.nn imports much of rnnbp; io is imported early by rnnbp/__init__, so look it up late.
    from .nn.module import Module
    from .nn.parameter import Parameter

    return Module, Parameter


def _label(key) -> str:
    """A dict key or set item as a message shows it: repr of plain values, the type of others (a Parameter)."""
    plain = (str, int, float, bool, type(None), tuple, np.generic)
    return repr(key) if isinstance(key, plain) and len(repr(key)) <= 80 else f"<{type(key).__name__}>"


def _state_where(where: str, key, registry: bool) -> str:
    return f"{where}.{key}" if registry or (isinstance(key, str) and key.isidentifier()) else f"{where}[{key!r}]"


# ------------------------------------------------------------------- encode
class _Encoder:
    """Walks an object, moving its arrays into ``arrays`` and returning the JSON skeleton."""

    def __init__(self):
        self.arrays: dict[str, np.ndarray] = {}
        self.records: dict[str, dict] = {}
        self._keys_by_id: dict[int, str] = {}
        self._ids: dict[int, int] = {}  # id(Tensor/Module/object) -> its number in the skeleton
        self._keep: list = []  # keeps every numbered object alive, so no id() is reused meanwhile
        self._open: set[int] = set()  # containers being encoded, to catch cycles
        self.Module, self.Parameter = _nn()

    def _store(self, arr: np.ndarray, where: str, share: bool) -> str:
        if arr.dtype.hasobject:
            raise TypeError(
                f"save: {where} is an array of dtype {arr.dtype}; object arrays would need pickle, "
                "which rnnbp checkpoints do not use"
            )
        if share and id(arr) in self._keys_by_id:
            return self._keys_by_id[id(arr)]
        key = f"a{len(self.arrays)}"
        self.arrays[key] = arr
        self.records[key] = {"dtype": arr.dtype.str, "shape": list(arr.shape), "path": where}
        if share:
            self._keys_by_id[id(arr)] = key
        return key

    def _number(self, obj) -> int:
        n = self._ids[id(obj)] = len(self._ids)
        self._keep.append(obj)
        return n

    def encode(self, obj, where: str):
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
            return self._encode_container(obj, where)
        if id(obj) in self._ids:
            return {"$ref": self._ids[id(obj)]}
        if isinstance(obj, Tensor):
            return self._encode_tensor(obj, where)
        if isinstance(obj, self.Module):
            return self._encode_object(obj, where)
        if isinstance(obj, np.random.Generator):
            return self._encode_generator(obj, where)
        if isinstance(obj, type) and issubclass(obj, np.generic):
            return {"$scalar_type": _dtype_str(np.dtype(obj), where)}
        if isinstance(obj, (type, types.FunctionType, types.BuiltinFunctionType)):
            return self._encode_global(obj, where)
        if _storable_class(type(obj), self.Module):
            return self._encode_object(obj, where)
        raise TypeError(_unstorable(obj, where))

    def _encode_container(self, obj, where: str):
        if id(obj) in self._open:
            raise TypeError(f"save: {where} contains itself (a reference cycle), which cannot be saved")
        self._open.add(id(obj))
        try:
            if isinstance(obj, dict):
                return self._encode_dict(obj, where)
            if isinstance(obj, (set, frozenset)):
                try:
                    items = sorted(obj)  # a stable order, so equal sets give equal files
                except TypeError:
                    items = list(obj)
                tag = "$set" if isinstance(obj, set) else "$frozenset"
                return {tag: [self.encode(v, f"{where} item {_label(v)}") for v in items]}
            items = [self.encode(v, f"{where}[{i}]") for i, v in enumerate(obj)]
            return {"$tuple": items} if isinstance(obj, tuple) else items
        finally:
            self._open.discard(id(obj))

    def _encode_dict(self, obj: dict, where: str, item_where=None):
        item_where = item_where or (lambda k: f"{where}[{_label(k)}]")
        plain = type(obj) is not OrderedDict and all(type(k) is str and not k.startswith("$") for k in obj)
        if plain:
            return {k: self.encode(v, item_where(k)) for k, v in obj.items()}
        items = []
        for k, v in obj.items():  # keys are hashable, and so is what they decode to (a Tensor key stays one)
            items.append([self.encode(k, f"{where} key {_label(k)}"), self.encode(v, item_where(k))])
        return {"$odict" if type(obj) is OrderedDict else "$dict": items}

    def _encode_tensor(self, t: Tensor, where: str):
        if type(t) is Tensor:
            tag = "$tensor"
        elif type(t) is self.Parameter:
            tag = "$parameter"
        else:
            raise TypeError(
                f"save: cannot save {where}, a Tensor subclass {_allow.global_path(type(t))}; "
                "save t.detach() or the state_dict() instead"
            )
        n = self._number(t)
        key = self._store(t._data, where, share=True)
        return {tag: {"id": n, "array": key, "requires_grad": bool(t.requires_grad)}}

    def _encode_object(self, obj, where: str):
        cls = type(obj)
        module, qualname = cls.__module__, cls.__qualname__
        _check_findable(cls, where)
        state = _allow.object_state(obj)
        if not _allow.can_restore(obj, state):
            raise TypeError(
                f"save: cannot save {where}: {module}.{qualname}.__getstate__() returns a "
                f"{type(state).__name__} and the class has no __setstate__; save the state_dict() instead"
            )
        n = self._number(obj)
        return {"$object": {"id": n, "module": module, "qualname": qualname,
                            "state": self._encode_state(state, where, isinstance(obj, self.Module))}}

    def _encode_state(self, state, where: str, is_module: bool):
        if type(state) is dict and all(type(k) is str for k in state):
            out = {}
            for key, value in state.items():
                if is_module and key in _REGISTRIES and type(value) in (dict, OrderedDict):
                    out[key] = self._encode_dict(value, where, lambda k: _state_where(where, k, True))
                else:
                    out[key] = self.encode(value, _state_where(where, key, False))
            return {"$attrs": out}
        if isinstance(state, tuple) and len(state) == 2 and (state[0] is None or isinstance(state[0], dict)):
            return {"$attrs_slots": [self._encode_state(state[0], where, is_module) if state[0] is not None else None,
                                     self._encode_state(state[1], where, False)]}
        return self.encode(state, f"{where}.__getstate__()")

    def _encode_generator(self, g: np.random.Generator, where: str):
        cls, bit = type(g), g.bit_generator
        name = type(bit).__name__
        if name not in _BIT_GENERATORS or type(bit) is not getattr(np.random, name):
            raise TypeError(f"save: cannot save {where}: its bit generator {type(bit).__qualname__} is not one "
                            f"of numpy.random's {', '.join(_BIT_GENERATORS)}; save the state_dict() instead")
        if cls is not np.random.Generator:
            _check_findable(cls, where)
            if not _storable_class(cls, self.Module):
                raise TypeError(_unstorable(g, where))
        n = self._number(g)
        plain = cls is np.random.Generator
        module, qualname = ("numpy.random", "Generator") if plain else (cls.__module__, cls.__qualname__)
        return {"$generator": {"id": n, "module": module, "qualname": qualname, "bit_generator": name,
                               "state": self.encode(bit.state, f"{where}.bit_generator.state"),
                               "attrs": self.encode(dict(vars(g)) if hasattr(g, "__dict__") else {}, where)}}

    def _encode_global(self, obj, where: str):
        module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
        if isinstance(qualname, str) and "<lambda>" in qualname:
            raise TypeError(
                f"save: cannot save {where}, a lambda: rnnbp stores functions by name and never pickles; "
                "save the state_dict() instead (or use a function defined at module level)"
            )
        if not isinstance(module, str) or not isinstance(qualname, str):
            raise TypeError(_unstorable(obj, where))
        if not (_allow.is_allowed(module, qualname)
                or (isinstance(obj, type) and issubclass(obj, self.Module))):
            raise TypeError(_unstorable(obj, where))
        _check_findable(obj, where)
        return {"$global": {"module": module, "qualname": qualname}}


def _dtype_str(dtype: np.dtype, where: str) -> str:
    if dtype.hasobject or np.dtype(dtype.str) != dtype:
        raise TypeError(f"save: {where} is the dtype {dtype}, which has no plain name (structured or object)")
    return dtype.str


def _storable_class(cls, module_base) -> bool:
    """Modules of any class (the saving program defines them); other objects if rnnbp's or allowed."""
    if cls.__module__ == "builtins":  # bytes, complex, range, ...: their instances have no __dict__ to store
        return False
    return issubclass(cls, module_base) or _allow.is_allowed(cls.__module__, cls.__qualname__)


def _check_findable(obj, where: str) -> None:
    """A class or function must be found again under its name at load, or the file could not be read."""
    module, qualname = obj.__module__, obj.__qualname__
    if "<locals>" in qualname:
        raise TypeError(
            f"save: cannot save {where}: {module}.{qualname} is defined inside a function, so loading "
            "cannot find it by name; define it at module level, or save the state_dict() instead"
        )
    if _allow.lookup(module, qualname) is not obj:
        raise TypeError(
            f"save: cannot save {where}: {module}.{qualname} cannot be found again under that name; "
            "save the state_dict() instead"
        )


def _unstorable(obj, where: str) -> str:
    cls = type(obj)
    what = f"an object of class {cls.__module__}.{cls.__qualname__}"
    hint = ""
    if isinstance(obj, (type, types.FunctionType, types.BuiltinFunctionType)):
        module = getattr(obj, "__module__", None)
        what = f"{module}.{getattr(obj, '__qualname__', obj)!s}"
        if isinstance(module, str) and not _allow.is_blocked(module):
            name = getattr(obj, "__name__", "it")
            hint = f", or allow it first with rnnbp.serialization.add_safe_globals([{name}])"
    elif not isinstance(obj, (bytes, bytearray, complex, range, slice, _stdio.IOBase)) and hasattr(obj, "__dict__"):
        hint = f", or allow its class first with rnnbp.serialization.add_safe_globals([{cls.__name__}])"
    return (
        f"save: cannot save {where}, {what}: rnnbp stores dicts, lists, tuples, sets, numbers, strings, None, "
        "NumPy arrays, scalars and dtypes, Tensors, Modules and rnnbp's own objects, and never pickles; "
        f"save the state_dict() instead{hint}"
    )


# ------------------------------------------------------------------- decode
class _Decoder:
    """Rebuilds the object from its skeleton, the arrays and the allow-list (rnnbp.serialization)."""

    def __init__(self, arrays: dict, name: str, trust_modules: bool = False):
        self.arrays, self.name, self.trust_modules = arrays, name, trust_modules
        self.objects: dict[int, object] = {}
        self.Module, self.Parameter = _nn()

    def fail(self, where: str, message: str) -> CheckpointError:
        return CheckpointError(f"load: {self.name}: {where}: {message}")

    def array(self, key, where: str) -> np.ndarray:
        if not isinstance(key, str) or key not in self.arrays:
            raise self.fail(where, f"the skeleton refers to array {key!r}, which is missing")
        return self.arrays[key]

    def _register(self, spec, obj, where: str):
        n = spec.get("id")
        if not isinstance(n, int) or n in self.objects:
            raise self.fail(where, f"bad object number {n!r} in the skeleton")
        self.objects[n] = obj
        return obj

    def find(self, spec, where: str):
        try:
            return _allow.find_global(spec.get("module"), spec.get("qualname"), self.trust_modules)
        except UnsafeGlobalError as exc:
            raise UnsafeGlobalError(f"load: {self.name}: {where}: {exc}") from None
        except CheckpointError as exc:
            raise self.fail(where, str(exc)) from None

    def decode(self, node, where: str):
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if isinstance(node, list):
            return [self.decode(v, f"{where}[{i}]") for i, v in enumerate(node)]
        if not isinstance(node, dict):
            raise self.fail(where, f"unexpected {type(node).__name__} in the skeleton")
        if len(node) == 1:
            tag, value = next(iter(node.items()))
            if tag.startswith("$"):
                method = self._TAGS.get(tag)
                if method is None:
                    raise self.fail(where, f"unknown entry {tag!r} in the skeleton")
                return method(self, value, where)
        if any(k.startswith("$") for k in node):
            raise self.fail(where, f"unknown entry {sorted(node)} in the skeleton")
        return {k: self.decode(v, f"{where}[{k!r}]") for k, v in node.items()}

    def _array(self, key, where):
        return self.array(key, where)

    def _scalar(self, key, where):
        return self.array(key, where)[()]

    def _tuple(self, items, where):
        return tuple(self.decode(v, f"{where}[{i}]") for i, v in enumerate(items))

    def _pairs(self, items, where, item_where=None):
        item_where = item_where or (lambda k: f"{where}[{_label(k)}]")
        out = []
        for k, v in items:
            key = self.decode(k, f"{where} key")
            out.append((key, self.decode(v, item_where(key))))
        return out

    def _dict(self, items, where):
        return dict(self._pairs(items, where))

    def _odict(self, items, where):
        return OrderedDict(self._pairs(items, where))

    def _set(self, items, where):
        return {self.decode(v, where) for v in items}

    def _frozenset(self, items, where):
        return frozenset(self.decode(v, where) for v in items)

    def _float(self, hexbits, where):
        return struct.unpack(">d", bytes.fromhex(hexbits))[0]

    def _dtype(self, text, where):
        return np.dtype(text)

    def _scalar_type(self, text, where):
        return np.dtype(text).type

    def _ref(self, n, where):
        if n not in self.objects:
            raise self.fail(where, f"the skeleton refers to object {n!r} before defining it")
        return self.objects[n]

    def _tensor(self, spec, where, cls=Tensor):
        arr = self.array(spec.get("array"), where)
        if cls is Tensor:
            t = Tensor(arr)
            if spec.get("requires_grad"):
                t.requires_grad_(True)
        else:
            t = cls(arr, requires_grad=bool(spec.get("requires_grad")))
        return self._register(spec, t, where)

    def _parameter(self, spec, where):
        return self._tensor(spec, where, cls=self.Parameter)

    def _object(self, spec, where):
        cls = self.find(spec, where)
        if not isinstance(cls, type):
            raise self.fail(where, f"{_allow.global_path(cls)} is not a class")
        obj = self._register(spec, _allow.new_object(cls), where)
        state = self._state(spec.get("state"), where, issubclass(cls, self.Module))
        try:
            _allow.set_object_state(obj, state)
        except CheckpointError as exc:
            raise self.fail(where, str(exc)) from None
        except Exception as exc:  # noqa: BLE001  (a class's own __setstate__ may raise anything)
            message = f"restoring {_allow.global_path(cls)} failed ({type(exc).__name__}: {exc})"
            raise self.fail(where, message) from exc
        return obj

    def _state(self, node, where, is_module):
        if isinstance(node, dict) and len(node) == 1 and "$attrs" in node:
            out = {}
            for key, value in node["$attrs"].items():
                if is_module and key in _REGISTRIES and isinstance(value, dict) and set(value) == {"$odict"}:
                    named = lambda k: _state_where(where, k, True)  # noqa: E731
                    out[key] = OrderedDict(self._pairs(value["$odict"], where, named))
                else:
                    out[key] = self.decode(value, _state_where(where, key, False))
            return out
        if isinstance(node, dict) and len(node) == 1 and "$attrs_slots" in node:
            dict_part, slots = node["$attrs_slots"]
            return (None if dict_part is None else self._state(dict_part, where, is_module),
                    self._state(slots, where, False))
        return self.decode(node, f"{where}.__getstate__()")

    def _generator(self, spec, where):
        name = spec.get("bit_generator")
        if name not in _BIT_GENERATORS:
            raise self.fail(where, f"unknown bit generator {name!r}")
        bit = getattr(np.random, name)()
        bit.state = self.decode(spec.get("state"), f"{where}.bit_generator.state")
        if (spec.get("module"), spec.get("qualname")) == ("numpy.random", "Generator"):
            g = np.random.Generator(bit)
        else:
            cls = self.find(spec, where)
            if not (isinstance(cls, type) and issubclass(cls, np.random.Generator)):
                raise self.fail(where, f"{_allow.global_path(cls)} is not a numpy.random.Generator")
            g = cls.__new__(cls, bit)
            np.random.Generator.__init__(g, bit)
        self._register(spec, g, where)
        attrs = self.decode(spec.get("attrs"), where)
        if attrs:
            vars(g).update(attrs)
        return g

    def _global(self, spec, where):
        return self.find(spec, where)

    _TAGS = {
        "$array": _array, "$scalar": _scalar, "$tuple": _tuple, "$dict": _dict, "$odict": _odict,
        "$set": _set, "$frozenset": _frozenset, "$float": _float, "$dtype": _dtype,
        "$scalar_type": _scalar_type, "$ref": _ref, "$tensor": _tensor, "$parameter": _parameter,
        "$object": _object, "$generator": _generator, "$global": _global,
    }


# --------------------------------------------------------------------- files
def _is_path(f) -> bool:
    return isinstance(f, (str, bytes, os.PathLike))


def _file_name(f) -> str:
    name = getattr(f, "name", None)
    return name if isinstance(name, str) else f"<{type(f).__name__}>"


def _check_binary(f, op: str, method: str) -> None:
    if isinstance(f, _stdio.TextIOBase):
        mode = "'wb'" if method == "write" else "'rb'"
        raise TypeError(f"{op}: {_file_name(f)} is open in text mode; open it in binary mode ({mode})")
    if not callable(getattr(f, method, None)):
        raise TypeError(
            f"{op}: expected a path (str or os.PathLike) or a binary file object with .{method}(), "
            f"got {type(f).__name__}"
        )


def _fsync_directory(directory: str) -> None:
    """Make the rename durable; best effort (not every OS or file system allows it)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _atomic_write(path: str, write) -> None:
    """Call ``write(file)`` on a temp file beside ``path``, then move it over ``path``."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"save: cannot write {path}: directory {directory} does not exist")
    base = os.path.basename(path)
    while True:
        tmp = os.path.join(directory, f".{base}.{secrets.token_hex(6)}.tmp")
        try:
            # 0o666 lets the umask decide the permissions, as for a file opened with open().
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_directory(directory)


# --------------------------------------------------------------------- save
def save(obj, f, pickle_module=None, pickle_protocol=None, _use_new_zipfile_serialization=True,
         _disable_byteorder_record=False) -> None:
    """Write ``obj`` to ``f`` (``torch.save``): a state dict, a whole Module, Tensors, or any nesting.

    Args:
        obj: what to save, e.g. ``model``, ``model.state_dict()`` or ``{'model': model.state_dict(),
            'optimizer': opt.state_dict(), 'epoch': 3}``. What can be stored is listed in the
            module docstring; Modules may be of any class (the program's own too), other
            objects only of rnnbp's classes or of classes allowed by
            ``rnnbp.serialization.add_safe_globals``.
        f : str, os.PathLike or binary file object (``open(p, 'wb')``, ``io.BytesIO()``).
            A path is used exactly as given (no ``.npz`` suffix added; ``load`` recognises the
            file by its contents) and replaced atomically; a file object is written at its
            current position and left open.
        pickle_module, pickle_protocol, _use_new_zipfile_serialization, _disable_byteorder_record:
            PyTorch's; accepted and ignored (rnnbp never pickles).

    Raises:
        TypeError: a value cannot be saved; the message names its place, e.g.
            ``obj['param_groups'][0]['foo']`` or ``obj.decoder.act``, and says to save the
            ``state_dict()`` instead. Nothing is written then.
    """
    if not _is_path(f):
        _check_binary(f, "save", "write")
    encoder = _Encoder()
    root = encoder.encode(obj, "obj")
    skeleton = json.dumps({"format": FORMAT, "version": VERSION, "arrays": encoder.records, "root": root},
                          ensure_ascii=True, allow_nan=False).encode("ascii")
    members = {_SKELETON: np.frombuffer(skeleton, dtype=np.uint8), **encoder.arrays}
    if _is_path(f):
        # Through a file object, np.savez writes to the temp file as is (given a name it would append .npz).
        _atomic_write(os.fsdecode(f), lambda out: np.savez(out, **members))
        return
    np.savez(f, **members)
    with contextlib.suppress(AttributeError, OSError, ValueError):
        f.flush()


# --------------------------------------------------------------------- load
def _check_load_args(map_location, weights_only, mmap) -> None:
    from .autograd.device import device

    if not (map_location is None or isinstance(map_location, (str, dict, device)) or callable(map_location)):
        raise TypeError(
            "load: map_location must be None, a string, a device, a dict or a callable, "
            f"got {type(map_location).__name__}"
        )
    for name, value in (("weights_only", weights_only), ("mmap", mmap)):
        if value is not None and not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"load: {name} must be True, False or None, got {value!r}")


@contextlib.contextmanager
def _reader(f):
    """Yield ``(seekable binary file, name for messages)`` for a path or a file object."""
    if _is_path(f):
        path = os.fsdecode(f)
        with open(path, "rb") as fh:
            yield fh, path
        return
    _check_binary(f, "load", "read")
    name = _file_name(f)
    seekable = getattr(f, "seekable", None)
    if not (callable(seekable) and seekable()):
        f = _stdio.BytesIO(f.read())  # zip archives need seeking (a pipe, a socket)
    yield f, name


_TORCH_MAGIC = bytes.fromhex("8a0a6cfc9c46f9206aa85019")  # pickled long 0x1950a86a20f9469cfc6c, torch's legacy header
_TORCH_ADVICE = (
    "rnnbp never unpickles, so it cannot read it. Convert it where PyTorch is installed: "
    "sd = torch.load(path, weights_only=True)  (or model.state_dict()); "
    "numpy.savez('weights.npz', **{k: v.numpy() for k, v in sd.items()}); "
    "then in rnnbp: model.load_state_dict(dict(numpy.load('weights.npz')))"
)


def _refuse_pickle(f, name: str) -> None:
    """A Python pickle (PyTorch's legacy torch.save format among them) is named and refused, never read."""
    start = f.tell()
    head = f.read(16)
    f.seek(start)
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        if head[2:14] == _TORCH_MAGIC:
            raise CheckpointError(
                f"load: {name} was written by PyTorch's torch.save in its legacy format (a pickle); " + _TORCH_ADVICE
            )
        raise CheckpointError(f"load: {name} is a Python pickle, not an rnnbp checkpoint; " + _TORCH_ADVICE)


def _read_archive(f, name: str) -> tuple[dict, dict]:
    """The parsed skeleton and every array of the archive, read without pickle."""
    _refuse_pickle(f, name)
    try:
        npz = np.load(f, allow_pickle=False)
    except (ValueError, EOFError, OSError, zipfile.BadZipFile) as exc:
        raise CheckpointError(
            f"load: {name} is not an rnnbp checkpoint: it is truncated or not an .npz archive ({exc})"
        ) from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise CheckpointError(f"load: {name} is a single .npy array, not an rnnbp checkpoint (.npz archive)")
    with npz:
        if _SKELETON not in npz.files:
            pickles = [n for n in npz.files if n == "data.pkl" or n.endswith("/data.pkl")]
            if pickles:
                raise CheckpointError(
                    f"load: {name} was written by PyTorch's torch.save (a zip archive holding a pickle, "
                    f"{pickles[0]!r}); " + _TORCH_ADVICE
                )
            raise CheckpointError(
                f"load: {name} is an .npz archive not written by rnnbp.save "
                f"(no {_SKELETON!r} entry; it holds {sorted(npz.files)[:10]})"
            )
        arrays = {}
        for entry in npz.files:
            try:
                arrays[entry] = npz[entry]
            except ValueError as exc:
                if "pickle" in str(exc) or "Object arrays" in str(exc):
                    raise CheckpointError(
                        f"load: {name}: entry {entry!r} is an object array, which needs pickle; "
                        "rnnbp checkpoints never contain pickled data, so it is refused"
                    ) from None
                raise CheckpointError(f"load: {name}: entry {entry!r} is unreadable ({exc})") from None
            except (EOFError, OSError, zipfile.BadZipFile) as exc:
                raise CheckpointError(f"load: {name}: entry {entry!r} is truncated or corrupt ({exc})") from None
    raw = arrays.pop(_SKELETON)
    try:
        if raw.dtype != np.uint8 or raw.ndim != 1:
            raise ValueError(f"skeleton has dtype {raw.dtype} and shape {raw.shape}")
        header = json.loads(raw.tobytes().decode("utf-8"))
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise ValueError("unknown format")
    except ValueError as exc:
        raise CheckpointError(f"load: {name}: the {_SKELETON!r} entry is not an rnnbp skeleton ({exc})") from None
    version = header.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= VERSION:
        raise CheckpointError(
            f"load: {name} has format version {version!r}; this rnnbp reads versions 1 to {VERSION} "
            "(upgrade rnnbp)"
        )
    return header, arrays


def _verify_arrays(header: dict, arrays: dict, name: str) -> None:
    """Each array against its record in the skeleton (version 2 on); version 1 files have none."""
    if header["version"] < 2:
        return
    records = header.get("arrays")
    if not isinstance(records, dict):
        raise CheckpointError(f"load: {name}: the skeleton has no 'arrays' records; the file is corrupt")
    missing = sorted(set(records) - set(arrays))
    extra = sorted(set(arrays) - set(records))
    if missing or extra:
        raise CheckpointError(
            f"load: {name}: the archive's arrays do not match the skeleton (missing {missing}, unexpected {extra}); "
            "the file is corrupt"
        )
    for key, record in records.items():
        arr = arrays[key]
        ok = isinstance(record, dict) and [arr.dtype.str, list(arr.shape)] == [record.get("dtype"), record.get("shape")]
        if not ok:
            where = record.get("path") if isinstance(record, dict) else None
            raise CheckpointError(
                f"load: {name}: array {key!r} ({where}) has dtype {arr.dtype.str} and shape {arr.shape}, but the "
                f"skeleton records {record!r}; the file is corrupt"
            )


def load(f, map_location=None, pickle_module=None, *, weights_only=None, mmap=None, **pickle_load_args):
    """Read a checkpoint written by :func:`save` (``torch.load``), rebuilding the saved object.

    Args:
        f : str, os.PathLike or binary file object (``open(p, 'rb')``, ``io.BytesIO``).
        map_location: PyTorch's (None, a string, a device, a dict or a callable); accepted and
            ignored: everything loads on the CPU, where rnnbp runs (``'cuda:0'`` included).
        weights_only: None or True (PyTorch's default): classes are rebuilt only if rnnbp's own or
            allowed (:mod:`rnnbp.serialization`). False, where PyTorch would unpickle anything,
            also rebuilds ``nn.Module`` subclasses by their saved module path, importing that
            module as pickle would (``torch.load(f, weights_only=False)`` of a model saved by
            ``main.py``, in ``generate.py``); other classes stay refused, and nothing is unpickled.
        pickle_module, mmap, **pickle_load_args: PyTorch's; accepted and ignored.

    Returns:
        The saved object. Arrays come back as ``np.ndarray`` (state dicts hold arrays), Tensors
        and Parameters as Tensors and Parameters sharing the loaded arrays, Modules as
        Modules of their class with their attributes, parameters, buffers and submodules.

    Raises:
        FileNotFoundError: ``f`` is a path that does not exist.
        CheckpointError: (a ValueError) the file is truncated, corrupt, not an ``.npz``
            archive, not written by ``rnnbp.save``, holds pickled object arrays, or was
            written by PyTorch (the message says how to convert it).
        UnsafeGlobalError: (a CheckpointError and a ``pickle.UnpicklingError``) the file
            names a class that is neither rnnbp's nor allowed; the message says how to allow it.
    """
    _check_load_args(map_location, weights_only, mmap)
    with _reader(f) as (fh, name):
        header, arrays = _read_archive(fh, name)
    _verify_arrays(header, arrays, name)
    try:
        return _Decoder(arrays, name, trust_modules=weights_only is False).decode(header.get("root"), "obj")
    except CheckpointError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError, struct.error) as exc:
        raise CheckpointError(f"load: {name}: the skeleton is corrupt ({type(exc).__name__}: {exc})") from None


def _unsafe_globals(f) -> list:
    """``module.qualname`` of every class or function in checkpoint ``f`` that load would refuse."""
    with _reader(f) as (fh, name):
        header, _ = _read_archive(fh, name)
    found = []

    def walk(node):
        if isinstance(node, list):
            for v in node:
                walk(v)
        elif isinstance(node, dict):
            for tag in ("$object", "$global", "$generator"):
                spec = node.get(tag) if len(node) == 1 else None
                if isinstance(spec, dict) and all(isinstance(spec.get(k), str) for k in ("module", "qualname")):
                    path = f"{spec['module']}.{spec['qualname']}"
                    if (path != "numpy.random.Generator" and not _allow.is_allowed(spec["module"], spec["qualname"])
                            and path not in found):
                        found.append(path)
            for v in node.values():
                walk(v)

    walk(header.get("root"))
    return found
