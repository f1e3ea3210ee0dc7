"""Module: the base class of every layer, registering parameters, buffers and submodules.

Assigning a :class:`Parameter` or a ``Module`` to an attribute registers it, as in
PyTorch, so ``parameters()``, ``state_dict()`` and ``train()`` see the whole tree.
``state_dict()`` keys are PyTorch's dotted names and its values Tensors sharing the
weights' memory, as in PyTorch; weights move to PyTorch with ``{k: torch.from_numpy(v.numpy())}``.
"""
from __future__ import annotations

from collections import OrderedDict, namedtuple
from collections.abc import Mapping
from typing import Iterator

import numpy as np

from ..autograd.device import refuse_cuda
from ..autograd.hooks import BackwardHook, RemovableHandle, check_callable
from ..autograd.tensor import Tensor, parse_to_args
from .parameter import Parameter

class IncompatibleKeys(namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    """What ``load_state_dict`` returns; printed as PyTorch prints it when every key matched."""

    def __repr__(self) -> str:
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return super().__repr__()

    __str__ = __repr__


class _ForwardHooks:
    """A module's hooks, in call order: forward pre-hooks (``pre``), forward hooks (``post``) and the
    full backward hooks and pre-hooks (``backward``, ``backward_pre``; see ``autograd.hooks.BackwardHook``).
    Its ``_forward_hooks`` attribute, made on the first registration (a module without one pays a
    dict lookup per call). It travels with ``copy.deepcopy`` as PyTorch's do; ``rnnbp.save`` leaves it
    out (hooks are code, not state)."""

    def __init__(self):
        self.pre, self.post = OrderedDict(), OrderedDict()
        self.backward, self.backward_pre = OrderedDict(), OrderedDict()

    def __len__(self) -> int:
        return len(self.pre) + len(self.post) + len(self.backward) + len(self.backward_pre)

    def add(self, kind: str, hook, prepend: bool) -> RemovableHandle:
        table = getattr(self, kind)
        handle = RemovableHandle(table)
        table[handle.id] = hook
        if prepend:
            table.move_to_end(handle.id, last=False)
        return handle

    def call(self, module: "Module", args: tuple, kwargs: dict):
        for hook in list(self.pre.values()):
            result = hook(module, args)
            if result is not None:
                args = result if isinstance(result, tuple) else (result,)
        backward = BackwardHook(module, self.backward.values(), self.backward_pre.values()) if (
            self.backward or self.backward_pre) else None
        if backward is not None:
            args = backward.setup_input_hook(args)
        output = module.forward(*args, **kwargs)
        for hook in list(self.post.values()):
            result = hook(module, args, output)
            if result is not None:
                output = result
        return output if backward is None else backward.setup_output_hook(output)


# PyTorch Module methods rnnbp does not have: asking for one says so instead of a bare AttributeError.
_MODULE_METHODS_NOT_HERE = frozenset({
    "register_state_dict_pre_hook", "register_load_state_dict_post_hook", "register_module_forward_hook",
    "to_empty", "compile", "set_extra_state", "get_extra_state",
})


class Module:
    """Base class for all layers. Subclasses set attributes in ``__init__`` and define ``forward``."""

    training: bool

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} has no forward()")

    def __call__(self, *args, **kwargs):
        hooks = self.__dict__.get("_forward_hooks")
        if hooks:
            return hooks.call(self, args, kwargs)
        return self.forward(*args, **kwargs)

    # ------------------------------------------------------------------ hooks
    def register_forward_pre_hook(self, hook, *, prepend: bool = False, with_kwargs: bool = False) -> "RemovableHandle":
        """Call ``hook(module, args)`` before each forward; a non-None result replaces the positional
        arguments (a tuple, or one value). Returns a handle whose ``remove()`` takes it off."""
        return self._add_hook("pre", hook, prepend, with_kwargs)

    def register_forward_hook(self, hook, *, prepend: bool = False, with_kwargs: bool = False,
                              always_call: bool = False) -> "RemovableHandle":
        """Call ``hook(module, args, output)`` after each forward; a non-None result replaces the
        output. Returns a handle whose ``remove()`` takes it off."""
        if always_call:
            raise ValueError("register_forward_hook: always_call=True is not supported on rnnbp")
        return self._add_hook("post", hook, prepend, with_kwargs)

    def register_full_backward_pre_hook(self, hook, prepend: bool = False) -> "RemovableHandle":
        """Call ``hook(module, grad_output) -> tuple or None`` when the gradients of this module's outputs
        are computed, before they flow into the module; a non-None tuple replaces ``grad_output``.

        ``grad_output`` has one entry per output (the output, or each item of a tuple output): the
        gradient, of that output's shape, or None for an entry that is not a Tensor or got no gradient
        (an LSTM's ``(out, (h, c))`` gives ``(d out, None)``, as in PyTorch). Set up at each call in
        grad mode where an input or the output requires grad. See ``autograd.hooks.BackwardHook``.
        """
        return self._add_hook("backward_pre", hook, prepend, False)

    def register_full_backward_hook(self, hook, prepend: bool = False) -> "RemovableHandle":
        """Call ``hook(module, grad_input, grad_output) -> tuple or None`` when the gradients of this
        module's positional inputs are computed; a non-None tuple replaces ``grad_input``.

        ``grad_input`` has one entry per positional argument: the gradient (its shape), zeros for a
        Tensor that gets none, None for a non-Tensor; ``grad_output`` is as for
        :meth:`register_full_backward_pre_hook`. If no input requires grad the hook is called with
        ``grad_input`` all None once the output gradients are known (with PyTorch's warning).
        """
        return self._add_hook("backward", hook, prepend, False)

    def register_backward_hook(self, hook):
        """PyTorch's deprecated non-full backward hook: not supported (its grad_input is that of the
        module's last op, not of its inputs); use :meth:`register_full_backward_hook`."""
        raise NotImplementedError(
            f"{type(self).__name__}.register_backward_hook: the deprecated non-full backward hook (whose grad_input "
            "is that of the module's last op) is not supported on rnnbp; use register_full_backward_hook, whose "
            "grad_input is the gradient of the module's inputs")

    def _add_hook(self, kind: str, hook, prepend: bool, with_kwargs: bool) -> "RemovableHandle":
        if with_kwargs:
            raise ValueError(f"register_forward_{'pre_' if kind == 'pre' else ''}hook: with_kwargs=True is not "
                             "supported on rnnbp")
        check_callable(hook, type(self).__name__)
        hooks = self.__dict__.get("_forward_hooks")
        if hooks is None:
            hooks = _ForwardHooks()
            object.__setattr__(self, "_forward_hooks", hooks)
        return hooks.add(kind, hook, prepend)

    # ------------------------------------------------------------ registration
    def __setattr__(self, name: str, value) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"cannot assign {name!r} before Module.__init__() is called")
        params, modules, buffers = self._parameters, self._modules, self._buffers
        if isinstance(value, Parameter):
            self._discard(name, keep=params)
            params[name] = value  # a parameter assigned again keeps its place in the order, as in PyTorch
        elif isinstance(value, Module):
            self._discard(name, keep=modules)
            modules[name] = value
        elif name in params:
            if value is not None:
                raise TypeError(
                    f"cannot assign {type(value).__name__} to parameter {name!r} of "
                    f"{type(self).__name__} (a Parameter or None is required)"
                )
            params[name] = None
        elif name in modules:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} to submodule {name!r} (a Module or None is required)")
            modules[name] = None
        elif name in buffers:
            buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    def _discard(self, name: str, keep: dict | None = None) -> None:
        """Forget ``name`` everywhere but in ``keep`` (the registry about to take the new value)."""
        self.__dict__.pop(name, None)
        for registry in (self._parameters, self._modules, self._buffers):
            if registry is not keep:
                registry.pop(name, None)
        self._non_persistent.discard(name)

    def __setstate__(self, state: dict) -> None:
        """Restore the attributes ``rnnbp.load`` (or ``copy``) saved; subclasses may extend it."""
        self.__dict__.update(state)

    def __getattr__(self, name: str):
        # Only called when normal lookup fails: look in the registries.
        d = self.__dict__
        for registry in ("_parameters", "_buffers", "_modules"):
            if registry in d and name in d[registry]:
                return d[registry][name]
        if name.startswith("_") or name in _MODULE_METHODS_NOT_HERE:
            hint = "" if name.startswith("_") else (f": rnnbp's Module does not have {name} (the README's "
                                                     "'PyTorch programs on rnnbp' lists what is covered)")
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}{hint}")
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name: str) -> None:
        for registry in (self._parameters, self._buffers, self._modules):
            if name in registry:
                del registry[name]
                self._non_persistent.discard(name)
                return
        object.__delattr__(self, name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Register ``param`` (or None, for an absent optional weight such as a bias)."""
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter: {name!r} must be a Parameter or None, got {type(param).__name__}")
        self._discard(name)
        self._parameters[name] = param

    def register_buffer(self, name: str, value, persistent: bool = True) -> None:
        """Register non-learned state (an array or None); persistent buffers go in ``state_dict``."""
        self._discard(name)
        self._buffers[name] = value
        if not persistent:
            self._non_persistent.add(name)

    def add_module(self, name: str, module: "Module | None") -> None:
        """Register ``module`` (or None) as the child ``name``; a name taken again keeps its place."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module: {name!r} must be a Module or None, got {type(module).__name__}")
        if not isinstance(name, str) or not name or "." in name:
            raise KeyError(f"add_module: a module name must be a non-empty str without '.', got {name!r}")
        if hasattr(type(self), name) or (name in self.__dict__ and name not in self._modules):
            raise KeyError(f"add_module: attribute {name!r} already exists")
        self._discard(name, keep=self._modules)
        self._modules[name] = module

    register_module = add_module

    # --------------------------------------------------------------- traversal
    def named_modules(self, prefix: str = "", memo: set | None = None,
                      remove_duplicate: bool = True) -> Iterator[tuple[str, "Module"]]:
        """(dotted name, module) for this module and every submodule, depth first; a module reached
        twice once (under every name with ``remove_duplicate=False``)."""
        memo = set() if memo is None else memo
        stack = [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if remove_duplicate and id(module) in memo:
                continue
            memo.add(id(module))
            yield name, module
            children = [(f"{name}.{k}" if name else k, m) for k, m in module._modules.items() if m is not None]
            stack.extend(reversed(children))

    def modules(self) -> Iterator["Module"]:
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[tuple[str, "Module"]]:
        seen = set()
        for name, m in self._modules.items():
            if m is not None and id(m) not in seen:
                seen.add(id(m))
                yield name, m

    def children(self) -> Iterator["Module"]:
        for _, m in self.named_children():
            yield m

    def named_parameters(self, prefix: str = "", recurse: bool = True,
                         remove_duplicate: bool = True) -> Iterator[tuple[str, Parameter]]:
        """(dotted name, Parameter) pairs, each shared Parameter once (under every name it has
        with ``remove_duplicate=False``)."""
        seen = set()
        modules = self.named_modules(prefix, remove_duplicate=remove_duplicate) if recurse else [(prefix, self)]
        for mod_name, module in modules:
            for name, p in module._parameters.items():
                if p is None or (remove_duplicate and id(p) in seen):
                    continue
                seen.add(id(p))
                yield (f"{mod_name}.{name}" if mod_name else name), p

    def get_submodule(self, target: str) -> "Module":
        """The submodule at the dotted path ``target`` ("" is this module), as in PyTorch."""
        module = self
        for part in target.split(".") if target else ():
            child = module._modules.get(part)
            if child is None:
                raise AttributeError(f"{type(module).__name__} has no submodule {part!r} (looking for {target!r})")
            module = child
        return module

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True):
        modules = self.named_modules(prefix) if recurse else [(prefix, self)]
        for mod_name, module in modules:
            for name, b in module._buffers.items():
                if b is not None:
                    yield (f"{mod_name}.{name}" if mod_name else name), b

    def buffers(self, recurse: bool = True):
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def apply(self, fn) -> "Module":
        """Call ``fn(module)`` on every submodule (children first) and on self."""
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    # ------------------------------------------------------------------- modes
    def train(self, mode: bool = True) -> "Module":
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> "Module":
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.parameters():
            if set_to_none or p._grad is None:
                p._grad = None
            else:
                p._grad[...] = 0

    def to(self, *args, **kwargs) -> "Module":
        """Cast every floating parameter, gradient and buffer in place; returns self.

        Takes ``Tensor.to``'s forms: ``to(dtype)``, ``to(device)``, ``to('cpu')``,
        ``to(device, dtype)``, ``to(tensor)``, ``dtype=`` / ``device=``. The device must be the
        CPU (anything else raises ``DeviceError``); only floating dtypes are accepted.
        """
        dtype, _ = parse_to_args(args, kwargs)
        if dtype is None:
            return self
        if dtype.kind != "f":
            raise TypeError(f"Module.to: only floating dtypes are supported, got {dtype}")
        for p in self.parameters():
            p._data = p._data.astype(dtype, copy=False)
            if p._grad is not None:
                p._grad = p._grad.astype(dtype, copy=False)
        for m in self.modules():
            for name, b in m._buffers.items():
                arr = b._data if isinstance(b, Tensor) else b
                if isinstance(arr, np.ndarray) and arr.dtype.kind == "f":
                    cast = arr.astype(dtype, copy=False)
                    m._buffers[name] = Tensor(cast) if isinstance(b, Tensor) else cast
        return self

    def cpu(self) -> "Module":
        return self

    def cuda(self, device=None) -> "Module":
        raise refuse_cuda("Module.cuda()")

    def half(self) -> "Module":
        return self.to(np.float16)

    def share_memory(self) -> "Module":
        """A no-op: rnnbp runs in one process, so there is nothing to share."""
        return self

    def double(self) -> "Module":
        return self.to(np.float64)

    def float(self) -> "Module":
        return self.to(np.float32)

    # ------------------------------------------------------------- state dicts
    def state_dict(self, destination=None, prefix: str = "", keep_vars: bool = False) -> "OrderedDict[str, Tensor]":
        """Parameters and persistent buffers by dotted name, as PyTorch gives them: ``detach()``ed
        Tensors sharing memory with the module's (an in-place change to one changes the module and
        counts as a change of the parameter), or with ``keep_vars`` the Parameters themselves.
        ``destination``: a dict to fill and return."""
        out = OrderedDict() if destination is None else destination
        for mod_name, module in self.named_modules(prefix.rstrip(".")):
            head = f"{mod_name}." if mod_name else ""
            for name, p in module._parameters.items():
                if p is not None:
                    out[head + name] = p if keep_vars else p.detach()
            for name, b in module._buffers.items():
                if b is not None and name not in module._non_persistent:
                    if isinstance(b, Tensor):
                        out[head + name] = b if keep_vars else b.detach()
                    else:  # an array (shared) or a Python number (copied), left as the module holds it
                        out[head + name] = Tensor._make(np.asarray(b))
        return out

    def load_state_dict(self, state_dict, strict: bool = True) -> IncompatibleKeys:
        """Copy the values of ``state_dict`` (Tensors or arrays) into this module's parameters and buffers.

        Every problem is reported at once: missing and unexpected keys (when
        ``strict``) and every shape or dtype mismatch (always), each naming its key. All or
        nothing: every key, shape and cast is checked before the first value is written, so a
        refused state dict leaves the module as it was.
        """
        if not isinstance(state_dict, Mapping):
            hint = (" (to copy a whole model, pass other.state_dict())" if isinstance(state_dict, Module) else "")
            raise TypeError(f"{type(self).__name__}.load_state_dict: expected a dict mapping parameter and buffer "
                            f"names to Tensors or arrays (a state_dict()), got {type(state_dict).__name__}{hint}")
        targets = {}
        for mod_name, module in self.named_modules():
            head = f"{mod_name}." if mod_name else ""
            for name, p in module._parameters.items():
                if p is not None:
                    targets[head + name] = ("param", module, name)
            for name, b in module._buffers.items():
                if b is not None and name not in module._non_persistent:
                    targets[head + name] = ("buffer", module, name)
        missing = [k for k in targets if k not in state_dict]
        unexpected = [k for k in state_dict if k not in targets]
        errors = []
        ready = {}  # key -> array checked for shape and cast; nothing is written until all are
        for key, value in state_dict.items():
            if key not in targets:
                continue
            current = self._state_value(*targets[key][1:])
            try:
                value = np.asarray(value._data if isinstance(value, Tensor) else value)
            except (ValueError, TypeError) as exc:
                errors.append(f"cannot read {key} as an array ({type(value).__name__}): {exc}")
                continue
            if value.shape != current.shape:
                errors.append(
                    f"size mismatch for {key}: copying a param with shape {value.shape} from checkpoint, "
                    f"the shape in current model is {current.shape}."
                )
            elif value.dtype.kind not in "biuf" or not np.can_cast(value.dtype, current.dtype, casting="same_kind"):
                errors.append(f"dtype mismatch for {key}: cannot copy a value of dtype {value.dtype} into "
                              f"the model's {current.dtype}.")
            else:
                ready[key] = value
        if strict:
            if unexpected:
                errors.insert(0, "Unexpected key(s) in state_dict: " + ", ".join(f'"{k}"' for k in unexpected) + ".")
            if missing:
                errors.insert(0, "Missing key(s) in state_dict: " + ", ".join(f'"{k}"' for k in missing) + ".")
        if errors:
            raise RuntimeError(
                f"Error(s) in loading state_dict for {type(self).__name__}:\n\t" + "\n\t".join(errors)
            )
        for key, value in ready.items():
            kind, module, name = targets[key]
            np.copyto(self._state_value(module, name), value, casting="same_kind")
            if kind == "param":
                module._parameters[name]._version += 1
        return IncompatibleKeys(missing, unexpected)

    @staticmethod
    def _state_value(module: "Module", name: str) -> np.ndarray:
        if name in module._parameters:
            return module._parameters[name]._data
        b = module._buffers[name]
        if isinstance(b, Tensor):
            return b._data
        if not isinstance(b, np.ndarray):
            b = module._buffers[name] = np.asarray(b)
        return b

    # ----------------------------------------------------------------- display
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = [f"({name}): " + repr(m).replace("\n", "\n  ") for name, m in self._modules.items()]
        head = type(self).__name__ + "(" + self.extra_repr()
        if not lines:
            return head + ")"
        return head + "\n  " + "\n  ".join(lines) + "\n)"
