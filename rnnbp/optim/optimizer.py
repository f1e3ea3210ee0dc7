"""Optimizer: the base class of every optimiser, with PyTorch's API and state-dict format.

A subclass gives its defaults, checks its hyperparameters, and says how to update one parameter
from its gradient and state; the update maths itself lives in a pure function over arrays
(``sgd_update``, ``adam_update``, ...) that the subclass calls, so it can be tested on its own.
"""
from __future__ import annotations

import copy
import inspect
import numbers
from typing import Any, Callable

import numpy as np

from ..autograd.grad_mode import enable_grad
from ..autograd.tensor import Tensor
from ..validation import ArgumentTypeError


def _check_nonnegative(label: str, value) -> None:
    """Raise ``ValueError("Invalid <label>: <value>")`` unless ``0 <= value``, as torch.optim does."""
    if not 0.0 <= value:
        raise ValueError(f"Invalid {label}: {value}")


def check_cpu_flags(owner: str, capturable: bool, differentiable: bool) -> None:
    """Refuse the torch.optim flags that have no meaning for rnnbp's NumPy optimisers.

    ``foreach`` needs no check: rnnbp has one implementation and any value gives the same numbers.
    """
    if capturable:
        raise ValueError(
            f"{owner}: capturable=True is for CUDA graph capture; rnnbp runs on the CPU, "
            "leave capturable=False"
        )
    if differentiable:
        raise ValueError(
            f"{owner}: differentiable=True (autograd through the optimizer step) is not supported "
            "by rnnbp; leave differentiable=False"
        )


def betas_tuple(owner: str, betas) -> tuple:
    """``betas`` as a tuple, refusing a string or a single number before it is taken apart."""
    if isinstance(betas, (str, bytes)) or not isinstance(betas, (tuple, list, np.ndarray)):
        raise ArgumentTypeError(f"{owner}: betas must be a pair of numbers (beta1, beta2), got {_got(betas)}")
    return tuple(betas)


def check_betas(betas) -> None:
    """Raise ``ValueError`` unless ``betas`` is two numbers in [0, 1), phrased as torch.optim does."""
    if len(betas) != 2:
        raise ValueError(f"Invalid betas: expected two values (beta1, beta2), got {betas}")
    for i, beta in enumerate(betas):
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"Invalid beta parameter at index {i}: {beta}")


def _is_number(value) -> bool:
    """A real number (not a bool, not a str), or a one-element Tensor as torch accepts for ``lr``."""
    if isinstance(value, Tensor):
        return value.numel() == 1 and value._data.dtype.kind in "iuf"
    return isinstance(value, (numbers.Real, np.number)) and not isinstance(value, (bool, np.bool_))


def _numeric_hyperparameters(cls) -> dict[str, int | None]:
    """The hyperparameters of ``cls`` whose constructor default is a number (-> None) or a tuple of
    n numbers (-> n), read from its signature; ``lr`` always counts as a number."""
    kinds: dict[str, int | None] = {"lr": None}
    try:
        params = inspect.signature(cls.__init__).parameters.values()
    except (TypeError, ValueError):
        return kinds
    for p in params:
        d = p.default
        if d is inspect.Parameter.empty or isinstance(d, bool):
            continue
        if isinstance(d, numbers.Real):
            kinds[p.name] = None
        elif isinstance(d, tuple) and d and all(isinstance(x, numbers.Real) and not isinstance(x, bool) for x in d):
            kinds[p.name] = len(d)
    return kinds


def _got(value) -> str:
    return f"{type(value).__name__} {value!r:.60}"


def check_hyperparameter_types(owner: str, cls, group: dict[str, Any]) -> None:
    """Raise ``ArgumentTypeError`` naming ``owner`` and the entry when a numeric hyperparameter of
    ``group`` is not a number (``SGD(lr='0.1')``, ``Adam(betas=('0.9', '0.999'))``), before the
    range checks compare it with a number and fail with a bare ``TypeError``."""
    for name, size in _numeric_hyperparameters(cls).items():
        if name not in group:
            continue
        value = group[name]
        if size is None:
            if not _is_number(value):
                raise ArgumentTypeError(f"{owner}: {name} must be a number, got {_got(value)}")
            continue
        if isinstance(value, (str, bytes)) or not isinstance(value, (tuple, list, np.ndarray)):
            raise ArgumentTypeError(f"{owner}: {name} must be a tuple of {size} numbers, got {_got(value)}")
        for i, item in enumerate(value):
            if not _is_number(item):
                raise ArgumentTypeError(f"{owner}: {name}[{i}] must be a number, got {_got(item)}")


# torch.optim's implementation flags: in torch's param groups, no hyperparameter of the maths.
_TORCH_FLAGS = frozenset({"foreach", "fused", "capturable", "differentiable"})


def _hyperparameter_names(cls) -> frozenset[str]:
    """The constructor arguments of ``cls`` that are hyperparameters (not ``params``, not torch's flags)."""
    try:
        params = inspect.signature(cls.__init__).parameters.values()
    except (TypeError, ValueError):
        return frozenset()
    return frozenset(p.name for p in params if p.name not in ("self", "params") and p.name not in _TORCH_FLAGS
                     and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD))


def _rnnbp_optimizers() -> list[type]:
    """Every Optimizer subclass defined in rnnbp.optim (SGD, Adam, ...)."""
    found, todo = [], [Optimizer]
    while todo:
        for sub in todo.pop().__subclasses__():
            todo.append(sub)
            if sub.__module__.startswith("rnnbp.optim."):
                found.append(sub)
    return found


def foreign_optimizer(optimizer: "Optimizer", saved_groups) -> str | None:
    """Why ``saved_groups`` (a state dict's ``param_groups``) come from another optimizer class, or None.

    torch loads an Adam state into SGD without a word: SGD takes Adam's lr, betas and all and
    ignores ``exp_avg``. Here a saved group holding hyperparameters that this class does not take
    but another rnnbp optimizer does (``betas`` in SGD, ``momentum`` in Adam) is refused, naming
    the likely source. Keys no rnnbp optimizer takes (a user's own, ``initial_lr``) are let through.
    """
    classes = _rnnbp_optimizers()
    known = frozenset().union(*(_hyperparameter_names(c) for c in classes))
    mine = _hyperparameter_names(type(optimizer)) | set(optimizer.defaults)
    saved_keys = {k for g in saved_groups if isinstance(g, dict) for k in g}
    foreign = sorted(k for k in saved_keys if k in known and k not in mine)
    if not foreign:
        return None
    fits = [c for c in classes if set(foreign) <= _hyperparameter_names(c)]
    # The class whose hyperparameters the saved groups match best (most shared, fewest missing).
    guess = max(fits, key=lambda c: (len(_hyperparameter_names(c) & saved_keys),
                                     -len(_hyperparameter_names(c) - saved_keys)), default=None)
    source = f"an optimizer such as {guess.__name__}" if guess is not None else "another optimizer"
    ours = type(optimizer).__name__
    return (f"this state dict was saved from {source}, not {ours}: its param_groups hold {foreign}, which "
            f"{ours} does not take. Optimizer state does not carry over between classes: load it into "
            f"{guess.__name__ if guess is not None else 'the optimizer that saved it'}, or start {ours} afresh")


def check_adam_group(group: dict) -> None:
    """The hyperparameters the Adam family shares (lr, eps, betas, weight_decay), checked as torch.optim does."""
    _check_nonnegative("learning rate", group["lr"])
    _check_nonnegative("epsilon value", group["eps"])
    check_betas(group["betas"])
    _check_nonnegative("weight_decay value", group["weight_decay"])


def _to_python(value):
    """NumPy scalars and 0-d arrays (say, from a loaded .npz) become Python numbers."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value.item()
    if isinstance(value, np.generic):
        return value.item()
    return value


class Optimizer:
    """Base class: holds parameter groups and per-parameter state; subclasses define the update.

    Args:
        params: iterable of Parameters (Tensors), or of dicts each with a ``"params"`` entry and
            optional per-group hyperparameters that override ``defaults``.
        defaults: dict of hyperparameters used where a group does not set its own.

    Attributes:
        param_groups: list of dicts, each with ``"params"`` (list of Tensors) and hyperparameters.
        state: dict mapping each Parameter to its state dict (``step``, ``exp_avg``, ...);
            arrays are NumPy arrays of the parameter's dtype, ``step`` a Python number.

    Subclasses implement ``_check_group(group)`` (raise ``ValueError`` on a bad hyperparameter)
    and ``_update(param, grad, state, group)`` (update ``param._data`` in place and ``state``).
    """

    def __init__(self, params, defaults: dict[str, Any]):
        if isinstance(params, Tensor):
            raise TypeError(
                "params argument given to the optimizer should be an iterable of Tensors or dicts, "
                f"but got {type(params).__name__}"
            )
        if isinstance(params, (set, frozenset)):
            raise TypeError(
                "optimizer parameters need to be organized in ordered collections, but the ordering "
                "of tensors in sets will change between runs. Please use a list instead."
            )
        check_hyperparameter_types(type(self).__name__, type(self), defaults)
        self._check_group(defaults)
        self.defaults = defaults
        self.state: dict[Tensor, dict[str, Any]] = {}
        self.param_groups: list[dict[str, Any]] = []
        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for group in param_groups:
            self.add_param_group(group)

    # ------------------------------------------------------------------ hooks for subclasses
    def _check_group(self, group: dict[str, Any]) -> None:
        """Raise ValueError naming any invalid hyperparameter in ``group``."""

    def _init_state(self, param: Tensor, group: dict[str, Any]) -> dict[str, Any]:
        """The state of a parameter before its first step (empty by default)."""
        return {}

    def _update(self, param: Tensor, grad: np.ndarray, state: dict[str, Any], group: dict[str, Any]) -> None:
        raise NotImplementedError

    def _stateless_update(self, group: dict[str, Any]) -> Callable[[np.ndarray, np.ndarray], None] | None:
        """An in-place ``update(param_array, grad)`` for every parameter of ``group``, or None.

        A subclass returns one when, with ``group``'s hyperparameters, the update reads and keeps
        no per-parameter state (plain SGD): ``step`` then skips the state bookkeeping and
        ``_update`` for each parameter. None (the default) means ``_update`` as usual.
        """
        return None

    # ------------------------------------------------------------------ public API
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters, with its own hyperparameters, to ``param_groups``.

        Useful when fine-tuning: frozen layers can be made trainable and added as training goes.
        Missing hyperparameters are filled from ``defaults``.
        """
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        if "params" not in param_group:
            raise ValueError("param_group must have a 'params' entry (a list of Tensors)")
        params = param_group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError(
                "optimizer parameters need to be organized in ordered collections, but the ordering "
                "of tensors in sets will change between runs. Please use a list instead."
            )
        else:
            params = list(params)
        named = [isinstance(p, tuple) and len(p) == 2 and isinstance(p[1], Tensor) for p in params]
        if any(named):
            # model.named_parameters(), as PyTorch 2.x takes it: the names are kept in the group
            if not all(named):
                raise ValueError("optimizer: some param names are missing: give (name, param) pairs for every "
                                 "parameter of a group, or none")
            param_group = {**param_group, "param_names": [name for name, _ in params]}
            params = [p for _, p in params]
        if self.param_groups and ("param_names" in self.param_groups[0]) != ("param_names" in param_group):
            raise ValueError("optimizer: all param groups should be with names or all without")
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, but params[{i}] is {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError(f"can't optimize a non-leaf Tensor (params[{i}])")
        if len({id(p) for p in params}) != len(params):
            raise ValueError("optimizer got a parameter group with duplicate parameters; each would be stepped twice")
        group = dict(param_group)
        group["params"] = params
        for name, default in self.defaults.items():
            group.setdefault(name, default)
        check_hyperparameter_types(type(self).__name__, type(self), group)
        self._check_group(group)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of all parameters: to None (default) or to zeros in place."""
        for group in self.param_groups:
            for p in group["params"]:
                if p._grad is None:
                    continue
                if set_to_none:
                    p._grad = None
                else:
                    p._grad[...] = 0

    def step(self, closure: Callable[[], Any] | None = None):
        """Update every parameter that has a gradient; parameters whose ``.grad`` is None are skipped.

        Args:
            closure: optional callable that re-evaluates the model and returns the loss
                (run with grad mode on).

        Returns:
            The closure's loss, or None.
        """
        loss = None
        if closure is not None:
            if not callable(closure):
                raise TypeError(f"{type(self).__name__}.step: closure must be callable (it re-evaluates the model "
                                f"and returns the loss) or None, got {type(closure).__name__}")
            with enable_grad():
                loss = closure()
        states, update = self.state, self._update
        for group in self.param_groups:
            stateless = self._stateless_update(group)
            for index, p in enumerate(group["params"]):
                grad = p._grad
                if grad is None:
                    continue
                data = p._data
                if grad.shape != data.shape:
                    raise ValueError(
                        f"{type(self).__name__}.step: params[{index}] has shape {data.shape} but its "
                        f"grad has shape {grad.shape}"
                    )
                if grad.dtype != data.dtype:
                    # Cast at the boundary: a float64 grad must not promote a float32 parameter.
                    grad = np.asarray(grad, dtype=data.dtype)
                if stateless is not None:
                    stateless(data, grad)
                else:
                    state = states.get(p)
                    if state is None:
                        state = self._init_state(p, group)
                    update(p, grad, state, group)
                    if state:  # SGD without momentum keeps no state, as in torch
                        states[p] = state
                p._version += 1  # p._data changed in place: graphs saved before this step are stale
        return loss

    def state_dict(self) -> dict[str, Any]:
        """The optimiser's state in PyTorch's format, with parameters replaced by integer indices.

        Returns:
            ``{"state": {index: {"step": ..., "exp_avg": ndarray, ...}},
            "param_groups": [{hyperparameters..., "params": [indices]}]}``. Indices number the
            parameters in group order. Arrays are copies, so later steps do not change the result.
        """
        index_of: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: copy.deepcopy(v) for k, v in group.items() if k != "params"}
            for p in group["params"]:
                index_of.setdefault(id(p), len(index_of))
            packed["params"] = [index_of[id(p)] for p in group["params"]]
            groups.append(packed)
        state = {
            index_of[id(p)]: {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in s.items()}
            for p, s in self.state.items()
        }
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state dict made by ``state_dict()`` (here or by PyTorch, tensors turned to arrays).

        Arrays are copied and cast to their parameter's dtype; ``step`` becomes a Python number.
        Every mismatch (group count, group sizes, state shapes) is reported at once.
        """
        name = type(self).__name__
        if not isinstance(state_dict, dict):
            raise TypeError(f"{name}.load_state_dict: expected a dict made by an optimizer's state_dict(), got "
                            f"{type(state_dict).__name__}")
        missing = [k for k in ("state", "param_groups") if k not in state_dict]
        if missing:
            raise ValueError(f"{name}.load_state_dict: state dict lacks the key(s) {missing} (got keys "
                             f"{sorted(map(str, state_dict))[:6]}; an optimizer's state_dict() has 'state' and "
                             "'param_groups')")
        saved_groups = state_dict["param_groups"]
        foreign = foreign_optimizer(self, saved_groups)
        if foreign:
            raise ValueError(f"{name}.load_state_dict: {foreign}")
        problems = []
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"load_state_dict: loaded state dict has {len(saved_groups)} parameter groups, "
                f"the optimizer has {len(self.param_groups)}"
            )
        for i, (group, saved) in enumerate(zip(self.param_groups, saved_groups)):
            if len(group["params"]) != len(saved["params"]):
                problems.append(
                    f"param_groups[{i}] has {len(saved['params'])} params in the state dict, "
                    f"{len(group['params'])} in the optimizer"
                )
        if problems:
            raise ValueError("load_state_dict: " + "; ".join(problems))
        id_map = {}
        for group, saved in zip(self.param_groups, saved_groups):
            for saved_id, p in zip(saved["params"], group["params"]):
                id_map[_to_python(saved_id)] = p
        new_state: dict[Tensor, dict[str, Any]] = {}
        for key, values in state_dict["state"].items():
            key = _to_python(key)
            if key not in id_map:
                problems.append(f"state has an entry for parameter {key}, which no group lists")
                continue
            p = id_map[key]
            entry = {}
            for name, value in values.items():
                if name == "step":
                    value = _to_python(value)
                    if isinstance(value, float) and value.is_integer():
                        value = int(value)
                elif isinstance(value, np.ndarray) or hasattr(value, "__array__"):
                    value = np.array(value, dtype=p._data.dtype)
                    if value.shape != p._data.shape:
                        problems.append(
                            f"state[{key}][{name!r}] has shape {value.shape}, the parameter has shape {p._data.shape}"
                        )
                entry[name] = value
            new_state[p] = entry
        if problems:
            raise ValueError("load_state_dict: " + "; ".join(problems))
        new_groups = []
        for group, saved in zip(self.param_groups, saved_groups):
            loaded = {}
            for k, v in saved.items():
                if k == "params":
                    continue
                v = copy.deepcopy(_to_python(v))
                if k == "betas":
                    v = tuple(float(b) for b in np.asarray(v).ravel())
                loaded[k] = v
            for name, default in self.defaults.items():  # a file from an older version may lack one
                loaded.setdefault(name, default)
            if "param_names" in group and "param_names" not in loaded:  # an unnamed state keeps our names
                loaded["param_names"] = list(group["param_names"])
            loaded["params"] = group["params"]
            self._check_group(loaded)
            new_groups.append(loaded)
        self.param_groups = new_groups
        self.state = new_state

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines.extend(f"    {k}: {group[k]}" for k in sorted(group) if k != "params")
        lines.append(")")
        return "\n".join(lines)


def _lerp(start: np.ndarray, end: np.ndarray, weight: float) -> np.ndarray:
    """``start + weight * (end - start)``, rounded as ``torch.lerp`` rounds it."""
    if weight < 0.5:
        return start + weight * (end - start)
    return end - (end - start) * (1.0 - weight)


__all__ = ["Optimizer"]
