"""What a saved object is made of (its state) and how a loaded one is rebuilt from it, as pickle does.

An object is stored as its class path and its state: ``__getstate__()`` where the class
defines one, else its ``__dict__`` (and its ``__slots__``). Loading makes an instance with
``cls.__new__(cls)`` (no ``__init__``) and restores the state with ``__setstate__`` or by
updating the instance's dicts.
"""
from __future__ import annotations

from .allowlist import global_path
from .errors import CheckpointError

__all__ = ["object_state", "new_object", "set_object_state", "can_restore"]


def object_state(obj):
    """What to store for ``obj``: ``__getstate__()`` where the class defines one, else its ``__dict__``.

    Objects with ``__slots__`` give ``(dict_or_None, {slot: value})``, as pickle's default does.
    """
    default = getattr(object, "__getstate__", None)  # Python 3.11+
    custom = getattr(type(obj), "__getstate__", None)
    if custom is not None and custom is not default:
        return obj.__getstate__()
    state = dict(vars(obj)) if hasattr(obj, "__dict__") else None
    slots = {}
    for cls in type(obj).__mro__:
        names = getattr(cls, "__slots__", ())
        for name in (names,) if isinstance(names, str) else names:
            if name not in ("__dict__", "__weakref__") and hasattr(obj, name):
                slots[name] = getattr(obj, name)
    return (state, slots) if slots else state


def new_object(cls):
    """An uninitialised instance of ``cls`` (``__init__`` is not called), as pickle makes one."""
    try:
        return cls.__new__(cls)
    except TypeError as exc:
        raise CheckpointError(
            f"cannot rebuild {global_path(cls)}: {cls.__qualname__}.__new__ needs arguments ({exc})"
        ) from None


def set_object_state(obj, state) -> None:
    """Restore what :func:`object_state` returned: ``__setstate__`` if the class has one, else the dicts."""
    setstate = getattr(type(obj), "__setstate__", None)
    if setstate is not None:
        obj.__setstate__(state)
        return
    slots = None
    if isinstance(state, tuple) and len(state) == 2:
        state, slots = state
    if state is not None:
        if not isinstance(state, dict):
            raise CheckpointError(
                f"cannot restore {global_path(type(obj))} from a state of type {type(state).__name__}"
            )
        vars(obj).update(state)
    for name, value in (slots or {}).items():
        object.__setattr__(obj, name, value)


def can_restore(obj, state) -> bool:
    """Whether :func:`set_object_state` can put ``state`` back without a ``__setstate__``."""
    if getattr(type(obj), "__setstate__", None) is not None:
        return True
    if isinstance(state, tuple) and len(state) == 2:
        state, slots = state
        if not isinstance(slots, dict):
            return False
    return state is None or (isinstance(state, dict) and hasattr(obj, "__dict__"))
