"""Which classes and functions a checkpoint may name: PyTorch's allow-list API, and finding globals by name.

A file names its classes, so loading must not trust them blindly: :func:`rnnbp.load` rebuilds only

* rnnbp's own classes and functions (module ``rnnbp`` or ``rnnbp.*``), and
* those the program allows with PyTorch's API, for classes it trusts (its own models)::

      rnnbp.serialization.add_safe_globals([RNNModel])      # for the rest of the program
      with rnnbp.serialization.safe_globals([RNNModel]):    # for one block
          model = rnnbp.load("model.pt")

Any other class is refused by name, before its module is imported: a file cannot make
``load`` import or run code outside rnnbp. As in PyTorch, an entry may also be
``(cls, "old.module.Name")`` for a class that has moved since the file was written, and
the modules ``os``, ``sys``, ``subprocess``, ... can never be allowed.

Differs from PyTorch: ``weights_only`` changes nothing (the rule above always holds, except that
``weights_only=False`` also rebuilds ``nn.Module`` subclasses by their module path), and a class
defined in ``__main__`` by the saving script is found in whichever module the loading script took
it from, as long as that object is allowed.
"""
from __future__ import annotations

import importlib
import sys

from .errors import CheckpointError, UnsafeGlobalError

__all__ = [
    "add_safe_globals", "get_safe_globals", "clear_safe_globals", "safe_globals",
    "is_allowed", "is_blocked", "is_rnnbp", "lookup", "global_path", "find_global",
]

# The program's allow-list, in the order added. Process-wide, as PyTorch's is.
_safe: list = []

# Modules whose functions would hand a file the whole machine; never allowed (PyTorch blocks the first four).
_BLOCKED_MODULES = frozenset({"sys", "os", "posix", "nt", "subprocess", "shutil", "importlib", "runpy",
                              "pickle", "marshal", "ctypes", "builtins", "io", "socket"})
# Builtin types a module may keep as a plain attribute (``self.dtype = float``): harmless by name.
_SAFE_BUILTINS = {t.__name__: t for t in (int, float, bool, str, complex, bytes, tuple, list, dict, set, frozenset)}


# Modules that moved, old path -> new: whole-module checkpoints written before the move name their
# classes by the old path (the recurrent family moved into nn/recurrent/ and nn/recursive/).
MOVED_MODULES = {
    "rnnbp.nn.rnn": "rnnbp.nn.recurrent.layers",
    "rnnbp.nn.rnn_cells": "rnnbp.nn.recurrent.cells",
    "rnnbp.nn.layernorm_lstm": "rnnbp.nn.recurrent.layernorm_lstm",
    "rnnbp.nn.recurrent": "rnnbp.nn.recurrent.custom",
    "rnnbp.nn.tree": "rnnbp.nn.recursive.tree",
    "rnnbp.nn.fixed_point": "rnnbp.nn.recursive.fixed_point",
}


# ------------------------------------------------------------------ the allow-list
def _entry_path(entry, op: str) -> str:
    """The ``module.qualname`` an allow-list entry stands for; refuses malformed and blocked entries."""
    if isinstance(entry, tuple):
        if len(entry) != 2 or not isinstance(entry[1], str):
            raise TypeError(
                f"{op}: a tuple entry must be (class_or_function, 'module.QualName'), got {entry!r}"
            )
        obj, path = entry
    else:
        obj, path = entry, None
    if not callable(obj):
        raise TypeError(f"{op}: expected classes or functions, got {obj!r} of type {type(obj).__name__}")
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str):
        raise TypeError(f"{op}: {obj!r} has no __module__ / __qualname__, so a checkpoint cannot name it")
    if is_blocked(module) and not (module == "builtins" and qualname in _SAFE_BUILTINS):
        raise ValueError(f"{op}: {module}.{qualname} comes from module {module!r}, which is never allowed")
    return path if path is not None else f"{module}.{qualname}"


def _as_entries(safe_globals, op: str) -> list:
    if not isinstance(safe_globals, (list, tuple, set, frozenset)):
        raise TypeError(
            f"{op}: expected a list of classes or functions, e.g. {op}([MyModel]), got {type(safe_globals).__name__}"
        )
    entries = list(safe_globals)
    for entry in entries:
        _entry_path(entry, op)
    return entries


def add_safe_globals(safe_globals: list) -> None:
    """Allow ``rnnbp.load`` to rebuild these classes (and name these functions) from now on.

    Args:
        safe_globals: list of classes or functions, or ``(obj, "module.QualName")`` tuples naming
            the path a file written before a rename uses.

    Raises:
        TypeError: not a list, or an entry is neither a class nor a function.
        ValueError: an entry comes from a module that is never allowed (``os``, ``sys``, ...).
    """
    for entry in _as_entries(safe_globals, "add_safe_globals"):
        if entry not in _safe:
            _safe.append(entry)


def get_safe_globals() -> list:
    """The classes and functions the program has allowed (a copy, in the order added)."""
    return list(_safe)


def clear_safe_globals() -> None:
    """Forget every allowed class and function (rnnbp's own stay allowed)."""
    _safe.clear()


class safe_globals:
    """Context manager: allow these classes and functions inside the ``with`` block only.

    ``with rnnbp.serialization.safe_globals([RNNModel]): model = rnnbp.load(f)``. On exit the
    entries this block added are removed again (entries that were allowed before stay).
    """

    def __init__(self, safe_globals: list):
        self.safe_globals = _as_entries(safe_globals, "safe_globals")
        self._added: list = []

    def __enter__(self) -> "safe_globals":
        self._added = [e for e in self.safe_globals if e not in _safe]
        _safe.extend(self._added)
        return self

    def __exit__(self, *exc) -> None:
        for entry in self._added:
            if entry in _safe:
                _safe.remove(entry)
        self._added = []


def _allowed_by_path() -> dict:
    out = {}
    for entry in _safe:
        out[_entry_path(entry, "safe_globals")] = entry[0] if isinstance(entry, tuple) else entry
    return out


def is_blocked(module: str) -> bool:
    """Whether ``module`` is one whose classes and functions can never be allowed (``os``, ``sys``, ...)."""
    return module.partition(".")[0] in _BLOCKED_MODULES


def is_rnnbp(module: str) -> bool:
    """Whether ``module`` is rnnbp itself or one of its submodules."""
    return module == "rnnbp" or module.startswith("rnnbp.")


def is_allowed(module: str, qualname: str) -> bool:
    """Whether ``load`` would rebuild ``module.qualname``, judged by name only (nothing is imported)."""
    if is_rnnbp(module) or (module == "builtins" and qualname in _SAFE_BUILTINS):
        return True
    if f"{module}.{qualname}" in _allowed_by_path():
        return True
    found = lookup(module, qualname)
    return found is not None and any(found is a for a in _allowed_by_path().values())


# ------------------------------------------------------------------ finding globals
def _walk(root, qualname: str):
    """Follow ``qualname`` from ``root`` through ``__dict__`` entries only, so no ``__getattr__`` runs
    (a lazy module's would import submodules); a class or function is always in the ``__dict__`` of
    the module or class that defines it."""
    obj = root
    for part in qualname.split("."):
        try:
            obj = vars(obj)[part]
        except (TypeError, KeyError):
            return None
    return obj


def lookup(module: str, qualname: str):
    """The object named ``module.qualname`` among the modules already imported, or None (imports nothing)."""
    mod = sys.modules.get(module)
    return None if mod is None else _walk(mod, qualname)


def global_path(obj) -> str:
    """``module.qualname`` of a class or function, the name a checkpoint stores it under."""
    return f"{obj.__module__}.{obj.__qualname__}"


def _trusted_module_class(module: str, qualname: str):
    """The ``nn.Module`` subclass at ``module.qualname``, importing the module if needed, or None."""
    from ..nn import Module

    if not all(p.isidentifier() for p in module.split(".")):
        return None
    try:
        mod = sys.modules.get(module) or importlib.import_module(module)
    except ImportError:
        return None
    obj = _walk(mod, qualname)
    if isinstance(obj, type) and issubclass(obj, Module) and obj.__module__ == module and obj.__qualname__ == qualname:
        return obj
    return None


def find_global(module: str, qualname: str, trust_modules: bool = False):
    """The class or function a checkpoint names, if rnnbp or the program allows it.

    With ``trust_modules`` (``load(..., weights_only=False)``, where PyTorch would unpickle
    anything) a Module subclass is also rebuilt from its module, which is imported if the program
    has not imported it yet, as pickle would; anything that is not a Module stays refused.

    rnnbp's own modules are imported when needed; any other module only if already imported
    (an allowed class has been, since the program holds it). The object must really live at
    that path (its ``__module__`` and ``__qualname__`` agree), so a path cannot reach through
    a module's imports (``rnnbp.serialization.files.os.system``) to something else.

    Raises:
        UnsafeGlobalError: the class or function is not allowed; the message says how to allow it.
        CheckpointError: an rnnbp path that does not exist in this version of rnnbp.
    """
    if not isinstance(module, str) or not isinstance(qualname, str):
        raise CheckpointError(f"the skeleton names a class with a non-string path {module!r}, {qualname!r}")
    path = f"{module}.{qualname}"
    user = _allowed_by_path()
    if path in user:
        return user[path]
    if module == "builtins" and qualname in _SAFE_BUILTINS:
        return _SAFE_BUILTINS[qualname]
    if is_rnnbp(module):
        module = MOVED_MODULES.get(module, module)
        path = f"{module}.{qualname}"
        parts = module.split(".")
        if not all(p.isidentifier() and p != "__main__" for p in parts):
            raise UnsafeGlobalError(f"{path} is not a valid rnnbp class path")
        try:
            mod = importlib.import_module(module)
        except ImportError:
            raise CheckpointError(
                f"{path} does not exist in this version of rnnbp (no module {module!r}); "
                "the file was written by another version: load it there and save its state_dict()"
            ) from None
        obj = _walk(mod, qualname)
        if obj is None:
            raise CheckpointError(
                f"{path} does not exist in this version of rnnbp; the file was written by another version: "
                "load it there and save its state_dict()"
            )
        if getattr(obj, "__module__", None) != module or getattr(obj, "__qualname__", None) != qualname:
            raise UnsafeGlobalError(f"{path} is not a class or function defined in rnnbp (it names {obj!r})")
        return obj
    found = lookup(module, qualname)
    if found is not None and any(found is a for a in user.values()):
        return found
    if trust_modules:
        module_class = _trusted_module_class(module, qualname)
        if module_class is not None:
            return module_class
    name = qualname.rpartition(".")[2] or qualname
    raise UnsafeGlobalError(
        f"{path} is not allowed: rnnbp rebuilds only its own classes and those the program allows; "
        f"if you trust this file, call rnnbp.serialization.add_safe_globals([{name}]) first (or load inside "
        f"`with rnnbp.serialization.safe_globals([{name}]):`), or save and load the state_dict() instead"
    )
