"""Containers: Sequential (a pipeline), ModuleList and ModuleDict (submodules by index or name),
ParameterList and ParameterDict (parameters by index or name)."""
from __future__ import annotations

from collections import OrderedDict

import operator

from .module import Module
from .parameter import Parameter


def _check_index(container: Module, index) -> int:
    """``index`` as an int in range for ``container``, or an IndexError/TypeError naming the container."""
    name = type(container).__name__
    try:
        i = operator.index(index)
    except TypeError:
        raise TypeError(f"{name}: indices must be integers or slices, got {type(index).__name__}") from None
    n = len(container)
    if not -n <= i < n:
        raise IndexError(f"{name}: index {i} is out of range for {n} modules")
    return i


class Sequential(Module):
    """Calls its modules in order, each on the previous one's output.

    ``Sequential(a, b, c)`` or ``Sequential(OrderedDict(name=module, ...))``; names are
    "0", "1", ... in the first form, as in PyTorch (so state_dict keys match).
    """

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, m in modules[0].items():
                self.add_module(name, m)
        else:
            for i, m in enumerate(modules):
                self.add_module(str(i), m)

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x

    def append(self, module: Module) -> "Sequential":
        self.add_module(str(len(self._modules)), module)
        return self

    def __getitem__(self, index):
        items = list(self._modules.items())
        if isinstance(index, slice):
            return Sequential(OrderedDict(items[index]))
        return items[_check_index(self, index)][1]

    def __setitem__(self, index: int, module: Module) -> None:
        """Replace the module at ``index`` (its name, and so its state_dict keys, stay)."""
        name = list(self._modules)[_check_index(self, index)]
        setattr(self, name, module)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())


class ModuleList(Module):
    """A list of submodules, registered so their parameters are seen; names "0", "1", ..."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def _renumber(self, modules) -> None:
        self._modules.clear()
        for i, m in enumerate(modules):
            self.add_module(str(i), m)

    def append(self, module: Module) -> "ModuleList":
        self.add_module(str(len(self._modules)), module)
        return self

    def extend(self, modules) -> "ModuleList":
        for m in modules:
            self.append(m)
        return self

    def insert(self, index: int, module: Module) -> None:
        modules = list(self._modules.values())
        modules.insert(index, module)
        self._renumber(modules)

    def __getitem__(self, index):
        modules = list(self._modules.values())
        if isinstance(index, slice):
            return ModuleList(modules[index])
        return modules[_check_index(self, index)]

    def __setitem__(self, index: int, module: Module) -> None:
        modules = list(self._modules.values())
        modules[index] = module
        self._renumber(modules)

    def __delitem__(self, index) -> None:
        modules = list(self._modules.values())
        del modules[index]
        self._renumber(modules)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ModuleList has no forward(); iterate over it and call its modules")


class _ByName(Module):
    """A dict over one of the module's registries (``_registry``: "_modules" or "_parameters"), names
    in insertion order; a subclass says what ``__setitem__`` takes."""

    _registry = ""
    _kind = ""  # "module" or "parameter", for messages

    def __init__(self, entries=None):
        super().__init__()
        if entries is not None:
            self.update(entries)

    def _entries(self) -> OrderedDict:
        return self.__dict__[self._registry]

    def __getitem__(self, key: str):
        entries = self._entries()
        if key not in entries:
            raise KeyError(f"{type(self).__name__} has no {self._kind} {key!r} (it has {list(entries)})")
        return entries[key]

    def __delitem__(self, key: str) -> None:
        del self._entries()[key]

    def __len__(self) -> int:
        return len(self._entries())

    def __iter__(self):
        return iter(self._entries())

    def __contains__(self, key) -> bool:
        return key in self._entries()

    def keys(self):
        return self._entries().keys()

    def values(self):
        return self._entries().values()

    def items(self):
        return self._entries().items()

    def update(self, entries) -> None:
        """Add (name, value) pairs from a mapping or an iterable of pairs."""
        pairs = entries.items() if hasattr(entries, "items") else entries
        for i, pair in enumerate(pairs):
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise TypeError(f"{type(self).__name__}.update: element {i} should be a (name, {self._kind}) pair, "
                                f"got {pair!r}")
            self[pair[0]] = pair[1]

    def pop(self, key: str):
        value = self[key]
        del self[key]
        return value

    def clear(self) -> None:
        self._entries().clear()

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} has no forward(); index it")


class ModuleDict(_ByName):
    """Submodules by name, in insertion order, registered so their parameters are seen (``nn.ModuleDict``)."""

    _registry, _kind = "_modules", "module"

    def __setitem__(self, key: str, module: Module) -> None:
        self.add_module(key, module)  # a name taken again keeps its place, as in PyTorch


def _as_parameter(value) -> Parameter:
    """A Parameter as it is; a Tensor or array made one (``nn.ParameterList`` does so in PyTorch)."""
    return value if isinstance(value, Parameter) else Parameter(value)


class ParameterList(Module):
    """Parameters in a list, registered as "0", "1", ... so the optimizer and state_dict see them."""

    def __init__(self, values=None):
        super().__init__()
        for value in values or ():
            self.append(value)

    def append(self, value) -> "ParameterList":
        setattr(self, str(len(self._parameters)), _as_parameter(value))
        return self

    def extend(self, values) -> "ParameterList":
        for value in values:
            self.append(value)
        return self

    def __getitem__(self, index):
        params = list(self._parameters.values())
        if isinstance(index, slice):
            return ParameterList(params[index])
        return params[_check_index(self, index)]

    def __setitem__(self, index: int, value) -> None:
        setattr(self, str(_check_index(self, index) % len(self)), _as_parameter(value))

    def __len__(self) -> int:
        return len(self._parameters)

    def __iter__(self):
        return iter(self._parameters.values())

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ParameterList has no forward(); index it or iterate over it")


class ParameterDict(_ByName):
    """Parameters by name, in insertion order, registered so the optimizer and state_dict see them."""

    _registry, _kind = "_parameters", "parameter"

    def __setitem__(self, key: str, value) -> None:
        if not isinstance(key, str):
            raise TypeError(f"ParameterDict: keys are str, got {type(key).__name__}")
        setattr(self, key, _as_parameter(value))
