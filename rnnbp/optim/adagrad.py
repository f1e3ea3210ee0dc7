"""Adagrad: per-coordinate learning rates from the running sum of squared gradients."""
from __future__ import annotations

import numpy as np

from .optimizer import Optimizer, _check_nonnegative, check_cpu_flags


def adagrad_update(
    param: np.ndarray,
    grad: np.ndarray,
    state_sum: np.ndarray,
    step: int,
    *,
    lr: float,
    lr_decay: float = 0.0,
    weight_decay: float = 0.0,
    eps: float = 1e-10,
    maximize: bool = False,
    out: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One Adagrad step for one parameter, as ``torch.optim.Adagrad`` takes it; pure.

    Equations (t = ``step``, counted from 1; the sum starts at ``initial_accumulator_value``)::

        g = -grad if maximize else grad
        clr = lr / (1 + (t - 1) * lr_decay)
        g = g + weight_decay * param
        sum = sum + g**2
        param = param - clr * g / (sqrt(sum) + eps)

    Args:
        param : np.ndarray. grad : np.ndarray [same shape and dtype as param].
        state_sum : np.ndarray, the sum from the previous step.
        step : int >= 1, the number of this step.
        lr : float >= 0. lr_decay : float >= 0. weight_decay : float >= 0. eps : float >= 0.
        maximize : bool, ascend instead.
        out : optional array to write the new parameter into (the parameter itself, for an
            in-place step without a copy); every other input is left unmodified.

    Returns:
        ``(new_param, new_state_sum)`` of ``param``'s dtype; no input is modified.
    """
    lr, lr_decay, weight_decay, eps = float(lr), float(lr_decay), float(weight_decay), float(eps)
    if step < 1:
        raise ValueError(f"adagrad_update: step counts from 1, got {step}")
    step = int(step)  # a NumPy integer here would make the bias corrections float64 scalars
    g = -grad if maximize else grad
    if weight_decay != 0:
        g = g + weight_decay * param
    clr = lr / (1 + (step - 1) * lr_decay)
    state_sum = state_sum + 1.0 * g * g
    std = np.sqrt(state_sum) + eps
    return np.add(param, (-clr) * g / std, out=out), state_sum


class Adagrad(Optimizer):
    """Adagrad (Duchi, Hazan & Singer, 2011); same update as ``torch.optim.Adagrad``.

    See ``adagrad_update`` for the equations. As in torch, the state (``step`` = 0 and ``sum``
    filled with ``initial_accumulator_value``) is created for every parameter at construction.

    Args:
        params: iterable of Parameters or of param-group dicts.
        lr : float >= 0, learning rate (default 1e-2).
        lr_decay : float >= 0, the learning rate at step t is lr / (1 + (t-1) lr_decay) (default 0).
        weight_decay : float >= 0, L2 penalty (default 0).
        initial_accumulator_value : float >= 0, start value of the squared-gradient sum (default 0).
        eps : float >= 0, added to the denominator (default 1e-10).
        maximize : bool, maximise the objective instead (default False).

    State per parameter: ``step``, ``sum``.
    """

    def __init__(self, params, lr: float = 1e-2, lr_decay: float = 0, weight_decay: float = 0,
                 initial_accumulator_value: float = 0, eps: float = 1e-10, foreach=None, *, maximize: bool = False,
                 differentiable: bool = False, fused=None):
        check_cpu_flags("Adagrad", False, differentiable)
        defaults = dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, maximize=maximize)
        super().__init__(params, defaults)

    def add_param_group(self, param_group):
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        for p in group["params"]:  # eager state, as torch: state_dict lists every parameter
            self.state[p] = self._init_state(p, group)

    def _check_group(self, group):
        _check_nonnegative("learning rate", group["lr"])
        _check_nonnegative("lr_decay value", group["lr_decay"])
        _check_nonnegative("weight_decay value", group["weight_decay"])
        _check_nonnegative("initial_accumulator_value value", group["initial_accumulator_value"])
        _check_nonnegative("epsilon value", group["eps"])

    def _init_state(self, param, group):
        return {"step": 0, "sum": np.full_like(param._data, float(group["initial_accumulator_value"]))}

    def _update(self, param, grad, state, group):
        state["step"] += 1
        new_param, state_sum = adagrad_update(
            param._data, grad, state["sum"], state["step"],
            lr=group["lr"], lr_decay=group["lr_decay"], weight_decay=group["weight_decay"],
            eps=group["eps"], maximize=group["maximize"], out=param._data,
        )
        state["sum"] = state_sum
