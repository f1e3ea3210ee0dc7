"""Which function converts which built-in module class: filled by ``layers`` and ``recurrent``."""
from __future__ import annotations

# module class -> converter(module, g, *inputs, **kwinputs) returning the forward's outputs as Values
CONVERTERS: dict[type, object] = {}


def converts(*classes):
    """Register the decorated function as the converter of each of ``classes``."""
    def register(fn):
        for cls in classes:
            CONVERTERS[cls] = fn
        return fn
    return register


def lookup(module):
    """(converter or None, the built-in class it is registered for or None).

    A subclass of a built-in class is converted as that class only if it keeps its ``forward``:
    one that overrides it computes something else, and gets no converter (the caller says why).
    """
    for cls in type(module).__mro__:
        if cls in CONVERTERS:
            if type(module).forward is cls.forward:
                return CONVERTERS[cls], cls
            return None, cls
    return None, None


def supported_names() -> list[str]:
    return sorted(cls.__name__ for cls in CONVERTERS)
