"""Learning-rate schedulers with PyTorch's semantics (``torch.optim.lr_scheduler``).

A scheduler rewrites ``group["lr"]`` of its optimizer's param groups. Constructing one records
each group's ``initial_lr`` (the base lr) and takes the initial step (``last_epoch`` becomes 0);
call ``step()`` once per epoch (or iteration) *after* ``optimizer.step()``. Where torch computes
the next lr recursively from the current one (so that several schedulers can be chained), so do
these, and the trajectories agree with torch's.

Unlike torch, ``step()`` takes no ``epoch`` argument (deprecated in torch since 1.4), except in
``CosineAnnealingWarmRestarts``, where fractional epochs are the documented use; and no warning
is given when ``scheduler.step()`` is called before ``optimizer.step()``.
"""
from __future__ import annotations

import copy
import math
import numbers
import types
from bisect import bisect_right
from collections import Counter
from collections.abc import Mapping
from typing import Any, Callable, Iterable

import numpy as np

from ..autograd.tensor import Tensor
from ..validation import ArgumentTypeError, check_int, check_number
from .optimizer import Optimizer


def _check_optimizer(name: str, optimizer) -> None:
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"{name}: expected an rnnbp.optim.Optimizer, got {type(optimizer).__name__}")


def _as_float(value):
    """A number, or a Tensor/array holding one, as a float; None for anything else (a str, a bool)."""
    if isinstance(value, Tensor):
        value = value._data
    if isinstance(value, np.ndarray):
        if value.size != 1 or value.dtype.kind not in "iuf":
            return None
        value = value.reshape(()).item()
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, np.number)):
        return None
    return float(value)


def _metric_value(metrics) -> float:
    """``ReduceLROnPlateau.step``'s metric as a float, or an error saying what came instead."""
    value = _as_float(metrics)
    if value is None:
        shape = getattr(metrics, "shape", None)
        got = (f"a {type(metrics).__name__} of shape {tuple(shape)}" if shape is not None and len(shape)
               else f"{type(metrics).__name__} {metrics!r:.60}")
        raise ArgumentTypeError(
            f"ReduceLROnPlateau.step: metrics must be one number, the monitored value (e.g. the validation "
            f"loss as loss.item()), got {got}")
    return value


# torch's schedulers keep one attribute that rnnbp's do not; a state dict made by torch may hold it.
_TORCH_ONLY_KEYS = frozenset({"_get_lr_called_within_step"})
# The key under which ``state_dict`` records the scheduler class, so that one is not loaded into another.
_CLASS_KEY = "_scheduler_class"


class LRScheduler:
    """Base class: subclasses implement ``get_lr()``, the lrs for the new ``last_epoch``.

    Args:
        optimizer : Optimizer whose param groups' ``lr`` this scheduler sets.
        last_epoch : int, index of the last epoch seen; -1 (default) starts afresh. Give another
            value only when resuming, and then every group must already have ``initial_lr``.

    Attributes:
        base_lrs : list of float, each group's ``initial_lr``.
        last_epoch : int, the number of ``step()`` calls since construction (0 right after it).
    """

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1):
        _check_optimizer(type(self).__name__, optimizer)
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            missing = [i for i, g in enumerate(optimizer.param_groups) if "initial_lr" not in g]
            if missing:
                raise KeyError(
                    f"{type(self).__name__}: param 'initial_lr' is not specified in param_groups {missing} "
                    f"when resuming with last_epoch={last_epoch}; load the optimizer's state first"
                )
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._initial_step()

    def _initial_step(self) -> None:
        """Reset the step count and take the step that construction takes."""
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def get_lr(self) -> list[float]:
        """The lrs for the current ``last_epoch`` (called by ``step``; use ``get_last_lr`` to read)."""
        raise NotImplementedError

    def get_last_lr(self) -> list[float]:
        """The lrs this scheduler last set, one per param group."""
        return list(self._last_lr)

    def step(self) -> None:
        """Advance one epoch and set every group's lr. Call after ``optimizer.step()``."""
        self._step_count += 1
        try:
            self._update_lr()
        except Exception:
            self._step_count -= 1
            raise

    def _update_lr(self, epoch: int | None = None) -> None:
        """Advance ``last_epoch`` (or jump to ``epoch``) and set the new lrs; on an error nothing changes."""
        previous = self.last_epoch
        try:
            if epoch is None:
                self.last_epoch += 1
                values = self.get_lr()
            else:  # jump to ``epoch``: closed form where there is one (SequentialLR uses this)
                self.last_epoch = epoch
                closed_form = getattr(self, "_get_closed_form_lr", None)
                values = closed_form() if closed_form is not None else self.get_lr()
            self._check_lrs(values)
        except Exception:
            self.last_epoch = previous
            raise
        for group, lr in zip(self.optimizer.param_groups, values):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def _check_lrs(self, values) -> None:
        """Refuse a NaN, infinite or negative lr (torch sets it, and the optimizer then diverges or ascends)."""
        for i, lr in enumerate(values):
            value = _as_float(lr)
            if value is None or not (math.isfinite(value) and value >= 0):
                raise ValueError(
                    f"{type(self).__name__}: the learning rate of param group {i} at epoch {self.last_epoch} "
                    f"would be {lr!r}; a learning rate must be a finite number >= 0 (check the scheduler's "
                    "arguments)")

    def _current_lrs(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]

    def _scheduler_class(self) -> str:
        """The name of the rnnbp scheduler this is (a user subclass of StepLR is a StepLR)."""
        for cls in type(self).__mro__:
            if cls.__module__ == __name__:
                return cls.__name__
        return type(self).__name__

    def state_dict(self) -> dict[str, Any]:
        """Every attribute but the optimizer, as torch's ``state_dict`` (copies, not references),
        and the scheduler's class name under ``"_scheduler_class"``."""
        state = {k: copy.deepcopy(v) for k, v in self.__dict__.items() if k != "optimizer"}
        state[_CLASS_KEY] = self._scheduler_class()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore attributes saved by ``state_dict``; refuses the state of another scheduler class."""
        self._check_state_dict(state_dict)
        self._restore(state_dict)

    def _restore(self, state_dict: dict[str, Any]) -> None:
        state = {k: v for k, v in state_dict.items() if k != _CLASS_KEY and k not in _TORCH_ONLY_KEYS}
        self.__dict__.update(copy.deepcopy(state))

    def _check_state_dict(self, state_dict) -> None:
        """Raise unless ``state_dict`` was made by a scheduler of this class (by its recorded class,
        or, for a state dict made by torch or before the class was recorded, by its entries)."""
        mine = self._scheduler_class()
        where = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"{where}: expected a dict made by {mine}.state_dict(), got {type(state_dict).__name__}")
        saved = state_dict.get(_CLASS_KEY)
        if saved is not None and saved != mine:
            raise ValueError(f"{where}: this state dict was saved from a {saved}, not a {mine}; load it into "
                             f"a {saved}, or build a fresh {mine}")
        expected = set(self.state_dict()) - {_CLASS_KEY}
        given = set(state_dict) - {_CLASS_KEY} - _TORCH_ONLY_KEYS
        if given != expected:
            raise ValueError(
                f"{where}: this state dict is not a {mine}'s: it has entries {sorted(map(str, given - expected))} "
                f"a {mine} does not and lacks {sorted(expected - given)} (saved from another scheduler?)")


class _LambdaScheduler(LRScheduler):
    """What LambdaLR and MultiplicativeLR share: one callable per param group, each factor checked."""

    def __init__(self, optimizer: Optimizer, lr_lambda: Callable[[int], float] | list, last_epoch: int = -1):
        name = type(self).__name__
        _check_optimizer(name, optimizer)
        self.optimizer = optimizer
        if isinstance(lr_lambda, (list, tuple)):
            if len(lr_lambda) != len(optimizer.param_groups):
                raise ValueError(
                    f"{name}: expected {len(optimizer.param_groups)} lr_lambdas, but got {len(lr_lambda)}"
                )
            self.lr_lambdas = list(lr_lambda)
        else:
            self.lr_lambdas = [lr_lambda] * len(optimizer.param_groups)
        for i, fn in enumerate(self.lr_lambdas):
            if not callable(fn):
                raise TypeError(f"{name}: lr_lambda[{i}] must be callable, got {type(fn).__name__}")
        super().__init__(optimizer, last_epoch)

    def _factor(self, i: int, of: str) -> float:
        """``lr_lambdas[i](last_epoch)``, refused unless a finite number >= 0 (torch would set the
        negative or NaN lr it gives, and the optimizer would then ascend or fill with NaN)."""
        value = self.lr_lambdas[i](self.last_epoch)
        factor = _as_float(value)
        if factor is None or not (math.isfinite(factor) and factor >= 0):
            raise ValueError(
                f"{type(self).__name__}: lr_lambda returned {value!r} at epoch {self.last_epoch} (param group {i}); "
                f"it must return a finite number >= 0, the factor that multiplies {of}")
        return factor

    def state_dict(self):
        """As the base, but the lambdas are saved only when they are callable objects (their
        ``__dict__``), never functions or lambdas, as torch does."""
        state = {k: copy.deepcopy(v) for k, v in self.__dict__.items() if k not in ("optimizer", "lr_lambdas")}
        state["lr_lambdas"] = [
            None if isinstance(fn, types.FunctionType) else copy.deepcopy(fn.__dict__) for fn in self.lr_lambdas
        ]
        state[_CLASS_KEY] = self._scheduler_class()
        return state

    def load_state_dict(self, state_dict):
        self._check_state_dict(state_dict)
        state_dict = dict(state_dict)
        lr_lambdas = state_dict.pop("lr_lambdas")
        self._restore(state_dict)
        for fn, saved in zip(self.lr_lambdas, lr_lambdas):
            if saved is not None:
                fn.__dict__.update(saved)


class LambdaLR(_LambdaScheduler):
    """lr = base_lr * lr_lambda(epoch).

    Args:
        optimizer : Optimizer.
        lr_lambda : callable int -> float >= 0, or a list of them, one per param group. A factor
            that is negative, NaN, infinite or not a number raises ValueError naming the epoch.
        last_epoch : int (default -1).
    """

    def get_lr(self):
        return [base_lr * self._factor(i, f"the base lr {base_lr}") for i, base_lr in enumerate(self.base_lrs)]


class MultiplicativeLR(_LambdaScheduler):
    """lr = lr * lr_lambda(epoch) at every step after construction (the factors compound).

    Args:
        optimizer : Optimizer.
        lr_lambda : callable int -> float >= 0, or a list of them, one per param group. A factor
            that is negative, NaN, infinite or not a number raises ValueError naming the epoch.
        last_epoch : int (default -1).
    """

    def get_lr(self):
        if self._is_initial:
            return self._current_lrs()
        return [lr * self._factor(i, f"the current lr {lr}") for i, lr in enumerate(self._current_lrs())]


class StepLR(LRScheduler):
    """Multiply the lr by ``gamma`` every ``step_size`` epochs: lr = base_lr * gamma ** (epoch // step_size).

    Args:
        optimizer : Optimizer. step_size : int > 0. gamma : float (default 0.1). last_epoch : int.
    """

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1):
        self.step_size = check_int("StepLR", "step_size", step_size)
        self.gamma = check_number(type(self).__name__, "gamma", gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self._current_lrs()
        return [lr * self.gamma for lr in self._current_lrs()]

    def _get_closed_form_lr(self):
        return [base_lr * self.gamma ** (self.last_epoch // self.step_size) for base_lr in self.base_lrs]


class MultiStepLR(LRScheduler):
    """Multiply the lr by ``gamma`` at each milestone: lr = base_lr * gamma ** (milestones passed).

    Args:
        optimizer : Optimizer. milestones : iterable of int (a repeated milestone decays twice).
        gamma : float (default 0.1). last_epoch : int.
    """

    def __init__(self, optimizer: Optimizer, milestones: Iterable[int], gamma: float = 0.1, last_epoch: int = -1):
        self.milestones = Counter(milestones)
        self.gamma = check_number(type(self).__name__, "gamma", gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self.last_epoch not in self.milestones:
            return self._current_lrs()
        return [lr * self.gamma ** self.milestones[self.last_epoch] for lr in self._current_lrs()]

    def _get_closed_form_lr(self):
        milestones = sorted(self.milestones.elements())
        return [base_lr * self.gamma ** bisect_right(milestones, self.last_epoch) for base_lr in self.base_lrs]

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        # A state dict that went through rnnbp.save/load holds a plain dict of counts.
        self.milestones = Counter({int(k): int(v) for k, v in self.milestones.items()})


class ExponentialLR(LRScheduler):
    """Multiply the lr by ``gamma`` every epoch: lr = base_lr * gamma ** epoch.

    Args:
        optimizer : Optimizer. gamma : float. last_epoch : int.
    """

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1):
        self.gamma = check_number(type(self).__name__, "gamma", gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self._is_initial:
            return self._current_lrs()
        return [lr * self.gamma for lr in self._current_lrs()]

    def _get_closed_form_lr(self):
        return [base_lr * self.gamma ** self.last_epoch for base_lr in self.base_lrs]


class LinearLR(LRScheduler):
    """Linear warm-up (or decay) of the lr's factor from ``start_factor`` to ``end_factor``.

    lr = base_lr * (start_factor + (end_factor - start_factor) * min(epoch, total_iters) / total_iters)

    Args:
        optimizer : Optimizer.
        start_factor : float in (0, 1] (default 1/3). end_factor : float in [0, 1] (default 1).
        total_iters : int > 0, epochs to reach ``end_factor`` (default 5). last_epoch : int.
    """

    def __init__(self, optimizer: Optimizer, start_factor: float = 1.0 / 3, end_factor: float = 1.0,
                 total_iters: int = 5, last_epoch: int = -1):
        start_factor = check_number("LinearLR", "start_factor", start_factor)
        end_factor = check_number("LinearLR", "end_factor", end_factor)
        if start_factor > 1.0 or start_factor <= 0:
            raise ValueError(
                f"LinearLR: start_factor expected to be greater than 0 and less or equal to 1, got {start_factor}"
            )
        if end_factor > 1.0 or end_factor < 0:
            raise ValueError(f"LinearLR: end_factor expected to be between 0 and 1, got {end_factor}")
        self.start_factor = start_factor
        self.end_factor = end_factor
        self.total_iters = check_int("LinearLR", "total_iters", total_iters)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self.last_epoch == 0:
            return [lr * self.start_factor for lr in self._current_lrs()]
        if self._is_initial or self.last_epoch > self.total_iters:
            return self._current_lrs()
        delta = self.end_factor - self.start_factor
        ratio = 1.0 + delta / (self.total_iters * self.start_factor + (self.last_epoch - 1) * delta)
        return [lr * ratio for lr in self._current_lrs()]

    def _get_closed_form_lr(self):
        frac = min(self.total_iters, self.last_epoch) / self.total_iters
        return [base_lr * (self.start_factor + (self.end_factor - self.start_factor) * frac)
                for base_lr in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """Cosine annealing from base_lr down to ``eta_min`` over ``T_max`` epochs (SGDR without restarts).

    Closed form: lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2. Like torch,
    the lr is computed recursively from the current one, so other schedulers' changes carry
    through; past T_max the cosine continues (the lr rises again over the next T_max epochs).

    Args:
        optimizer : Optimizer. T_max : int > 0, half-period in epochs.
        eta_min : float, the minimum lr (default 0). last_epoch : int.
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1):
        self.T_max = check_int("CosineAnnealingLR", "T_max", T_max)
        self.eta_min = check_number(type(self).__name__, "eta_min", eta_min)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        t, T = self.last_epoch, self.T_max
        if self._is_initial:
            return self._current_lrs()
        if self._step_count == 1 and t > 0:  # resumed at last_epoch > 0
            return [self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(t * math.pi / T)) / 2
                    for base_lr in self.base_lrs]
        if (t - 1 - T) % (2 * T) == 0:  # leaving the minimum, where the recursion would divide by 0
            return [lr + (base_lr - self.eta_min) * (1 - math.cos(math.pi / T)) / 2
                    for base_lr, lr in zip(self.base_lrs, self._current_lrs())]
        return [(1 + math.cos(math.pi * t / T)) / (1 + math.cos(math.pi * (t - 1) / T)) * (lr - self.eta_min)
                + self.eta_min for lr in self._current_lrs()]

    def _get_closed_form_lr(self):
        return [self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
                for base_lr in self.base_lrs]


class CosineAnnealingWarmRestarts(LRScheduler):
    """Cosine annealing with warm restarts (SGDR, Loshchilov & Hutter 2017).

    lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * T_cur / T_i)) / 2, where T_cur counts epochs
    since the last restart and the i-th period lasts T_i = T_0 * T_mult**i epochs.

    Args:
        optimizer : Optimizer. T_0 : int > 0, the first period. T_mult : int >= 1, period growth
            factor (default 1). eta_min : float (default 0). last_epoch : int.
    """

    def __init__(self, optimizer: Optimizer, T_0: int, T_mult: int = 1, eta_min: float = 0.0, last_epoch: int = -1):
        if isinstance(T_0, bool) or not isinstance(T_0, int) or T_0 <= 0:
            raise ValueError(f"CosineAnnealingWarmRestarts: expected positive integer T_0, but got {T_0!r}")
        if isinstance(T_mult, bool) or not isinstance(T_mult, int) or T_mult < 1:
            raise ValueError(f"CosineAnnealingWarmRestarts: expected integer T_mult >= 1, but got {T_mult!r}")
        if not isinstance(eta_min, (float, int)):
            raise ValueError(
                f"CosineAnnealingWarmRestarts: expected float or int eta_min, but got {eta_min!r} "
                f"of type {type(eta_min).__name__}"
            )
        self.T_0 = T_0
        self.T_i = T_0
        self.T_mult = T_mult
        self.eta_min = check_number(type(self).__name__, "eta_min", eta_min)
        self.T_cur = last_epoch
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return [self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * self.T_cur / self.T_i)) / 2
                for base_lr in self.base_lrs]

    def step(self, epoch: float | None = None) -> None:
        """Advance one epoch, or jump to ``epoch`` (may be fractional: ``step(epoch + i / iters)``)."""
        self._step_count += 1
        if epoch is None and self.last_epoch < 0:
            epoch = 0
        if epoch is None:
            epoch = self.last_epoch + 1
            self.T_cur = self.T_cur + 1
            if self.T_cur >= self.T_i:
                self.T_cur = self.T_cur % self.T_i
                self.T_i = self.T_i * self.T_mult
        else:
            if epoch < 0:
                raise ValueError(f"CosineAnnealingWarmRestarts.step: expected non-negative epoch, but got {epoch}")
            if epoch >= self.T_0:
                if self.T_mult == 1:
                    self.T_cur = epoch % self.T_0
                else:
                    n = int(math.log(epoch / self.T_0 * (self.T_mult - 1) + 1, self.T_mult))
                    self.T_cur = epoch - self.T_0 * (self.T_mult ** n - 1) / (self.T_mult - 1)
                    self.T_i = self.T_0 * self.T_mult ** n
            else:
                self.T_i = self.T_0
                self.T_cur = epoch
        self.last_epoch = math.floor(epoch)
        values = self.get_lr()
        self._check_lrs(values)
        for group, lr in zip(self.optimizer.param_groups, values):
            group["lr"] = lr
        self._last_lr = self._current_lrs()


class SequentialLR(LRScheduler):
    """Run schedulers one after another, switching at the milestones (e.g. warm-up, then cosine).

    At milestone ``milestones[i-1]`` scheduler ``i`` restarts from its epoch 0.

    Args:
        optimizer : Optimizer, the one all ``schedulers`` drive.
        schedulers : list of LRScheduler, at least one (not ReduceLROnPlateau).
        milestones : list of int, one fewer than the schedulers, increasing.
        last_epoch : int (default -1).

    Example::

        warmup = LinearLR(opt, start_factor=0.1, total_iters=5)
        cosine = CosineAnnealingLR(opt, T_max=95)
        sched = SequentialLR(opt, [warmup, cosine], milestones=[5])
    """

    def __init__(self, optimizer: Optimizer, schedulers: list, milestones: list[int], last_epoch: int = -1):
        _check_optimizer("SequentialLR", optimizer)
        if len(schedulers) < 1:
            raise ValueError("SequentialLR expects at least one scheduler, but got no scheduler.")
        for i, scheduler in enumerate(schedulers):
            if isinstance(scheduler, ReduceLROnPlateau):
                raise ValueError(
                    "SequentialLR does not support ReduceLROnPlateau, whose step needs a metric, "
                    f"but got one at index {i} in the given schedulers sequence."
                )
            if not isinstance(scheduler, LRScheduler):
                raise TypeError(f"SequentialLR: schedulers[{i}] is a {type(scheduler).__name__}, not an LRScheduler")
            if scheduler.optimizer is not optimizer:
                raise ValueError(
                    f"SequentialLR expects all schedulers to belong to the same optimizer, but "
                    f"schedulers[{i}] ({type(scheduler).__name__}) has a different one"
                )
        milestones = list(milestones)
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(
                "SequentialLR expects number of schedulers provided to be one more than the number of "
                f"milestone points, but got number of schedulers {len(schedulers)} and the number of "
                f"milestones to be equal to {len(milestones)}"
            )
        if any(b <= a for a, b in zip(milestones, milestones[1:])):
            raise ValueError(f"SequentialLR: milestones must be increasing, got {milestones}")
        self._schedulers = list(schedulers)
        self._milestones = milestones
        self.last_epoch = last_epoch + 1
        self.optimizer = optimizer
        # Each scheduler took its initial step when built; undo those, then take only the
        # first scheduler's, as torch does.
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"]
        self._recursive_undo(self)
        idx = bisect_right(self._milestones, 0)
        self._schedulers[idx]._initial_step()
        self._last_lr = self._schedulers[idx].get_last_lr()

    def _recursive_undo(self, sched) -> None:
        if hasattr(sched, "_schedulers"):
            for s in sched._schedulers:
                self._recursive_undo(s)
        else:
            sched.last_epoch -= 1

    def step(self) -> None:
        self.last_epoch += 1
        idx = bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[idx]
        if idx > 0 and self._milestones[idx - 1] == self.last_epoch:
            scheduler._update_lr(0)
        else:
            scheduler.step()
        self._last_lr = scheduler.get_last_lr()

    def state_dict(self):
        state = {k: copy.deepcopy(v) for k, v in self.__dict__.items() if k not in ("optimizer", "_schedulers")}
        state["_schedulers"] = [s.state_dict() for s in self._schedulers]
        state[_CLASS_KEY] = self._scheduler_class()
        return state

    def load_state_dict(self, state_dict):
        self._check_state_dict(state_dict)
        state_dict = dict(state_dict)
        schedulers = state_dict.pop("_schedulers")
        if len(schedulers) != len(self._schedulers):
            raise ValueError(f"SequentialLR.load_state_dict: the state dict holds {len(schedulers)} schedulers, "
                             f"this SequentialLR {len(self._schedulers)}")
        for s, saved in zip(self._schedulers, schedulers):  # check them all before anything is written
            s._check_state_dict(saved)
        self._restore(state_dict)
        for s, saved in zip(self._schedulers, schedulers):
            s.load_state_dict(saved)


class ReduceLROnPlateau(LRScheduler):
    """Multiply the lr by ``factor`` when a metric has stopped improving for ``patience`` epochs.

    Call ``step(metric)`` once per epoch. A metric is an improvement when it beats the best so far
    by the threshold: mode "min", threshold_mode "rel": metric < best * (1 - threshold);
    "min"/"abs": metric < best - threshold; "max"/"rel": metric > best * (1 + threshold);
    "max"/"abs": metric > best + threshold. After more than ``patience`` bad epochs in a row,
    lr = max(lr * factor, min_lr) (skipped if the change is at most ``eps``), then ``cooldown``
    epochs pass during which bad epochs are not counted.

    Args:
        optimizer : Optimizer. mode : "min" or "max" (default "min"). factor : float < 1 (default 0.1).
        patience : int >= 0 (default 10). threshold : float (default 1e-4).
        threshold_mode : "rel" or "abs" (default "rel"). cooldown : int >= 0 (default 0).
        min_lr : float or list of float, one per group (default 0). eps : float (default 1e-8).
    """

    def __init__(self, optimizer: Optimizer, mode: str = "min", factor: float = 0.1, patience: int = 10,
                 threshold: float = 1e-4, threshold_mode: str = "rel", cooldown: int = 0,
                 min_lr: float | list[float] = 0, eps: float = 1e-8):
        _check_optimizer("ReduceLROnPlateau", optimizer)
        # torch refuses only factor >= 1; a factor <= 0 would set every lr to min_lr at the first plateau.
        factor = check_number("ReduceLROnPlateau", "factor", factor, 0.0, 1.0, low_open=True, high_open=True)
        patience = check_int("ReduceLROnPlateau", "patience", patience, minimum=0)
        cooldown = check_int("ReduceLROnPlateau", "cooldown", cooldown, minimum=0)
        self.factor = factor
        self.optimizer = optimizer
        if isinstance(min_lr, (list, tuple)):
            if len(min_lr) != len(optimizer.param_groups):
                raise ValueError(
                    f"ReduceLROnPlateau: expected {len(optimizer.param_groups)} min_lrs, got {len(min_lr)}"
                )
            self.default_min_lr = None
            self.min_lrs = list(min_lr)
        else:
            self.default_min_lr = min_lr
            self.min_lrs = [min_lr] * len(optimizer.param_groups)
        self.patience = patience
        self.cooldown = cooldown
        self.eps = eps
        self.last_epoch = 0
        self._last_lr = self._current_lrs()
        self._init_is_better(mode, threshold, threshold_mode)
        self._reset()

    def _reset(self) -> None:
        self.best = self.mode_worse
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    def _init_is_better(self, mode: str, threshold: float, threshold_mode: str) -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"ReduceLROnPlateau: mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"ReduceLROnPlateau: threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}")
        self.mode_worse = math.inf if mode == "min" else -math.inf
        self.mode = mode
        self.threshold = threshold
        self.threshold_mode = threshold_mode

    def _is_better(self, a: float, best: float) -> bool:
        if self.mode == "min" and self.threshold_mode == "rel":
            return a < best * (1.0 - self.threshold)
        if self.mode == "min":
            return a < best - self.threshold
        if self.threshold_mode == "rel":
            return a > best * (self.threshold + 1.0)
        return a > best + self.threshold

    @property
    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def step(self, metrics) -> None:  # type: ignore[override]
        """Record this epoch's metric (a number or 0-d array/Tensor) and reduce the lr if it is time.

        A NaN metric counts as a bad epoch, as in torch.
        """
        current = _metric_value(metrics)
        self.last_epoch += 1
        if self._is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs in cooldown do not count
        if self.num_bad_epochs > self.patience:
            self._reduce_lr()
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = self._current_lrs()

    def _reduce_lr(self) -> None:
        if len(self.optimizer.param_groups) != len(self.min_lrs):
            if self.default_min_lr is None:
                raise RuntimeError(
                    f"ReduceLROnPlateau: the optimizer has {len(self.optimizer.param_groups)} param groups but "
                    f"{len(self.min_lrs)} min_lrs were given (a group was added?); set min_lrs to match"
                )
            self.min_lrs = [self.default_min_lr] * len(self.optimizer.param_groups)
        for group, min_lr in zip(self.optimizer.param_groups, self.min_lrs):
            old_lr = float(group["lr"])
            new_lr = max(old_lr * self.factor, min_lr)
            if old_lr - new_lr > self.eps:
                group["lr"] = new_lr

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        self._init_is_better(self.mode, self.threshold, self.threshold_mode)


__all__ = [
    "LRScheduler", "LambdaLR", "MultiplicativeLR", "StepLR", "MultiStepLR", "ExponentialLR", "LinearLR", "CosineAnnealingLR",
    "CosineAnnealingWarmRestarts", "SequentialLR", "ReduceLROnPlateau",
]
