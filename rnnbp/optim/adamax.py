"""Adamax: Adam with the second moment replaced by an exponentially weighted infinity norm."""
from __future__ import annotations

import numpy as np

from .optimizer import Optimizer, _lerp, betas_tuple, check_adam_group, check_cpu_flags


def adamax_update(
    param: np.ndarray,
    grad: np.ndarray,
    exp_avg: np.ndarray,
    exp_inf: np.ndarray,
    step: int,
    *,
    lr: float = 2e-3,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    maximize: bool = False,
    out: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One Adamax step for one parameter, as ``torch.optim.Adamax`` takes it; pure.

    Kingma & Ba (2015), section 7.1 (algorithm 2), with eps inside the max as PyTorch has it.
    t = ``step``, counted from 1; m and u start at zero::

        g = -grad if maximize else grad
        g = g + weight_decay * param
        m = beta1 * m + (1 - beta1) * g
        u = max(beta2 * u, |g| + eps)
        param = param - lr / (1 - beta1**t) * m / u

    Args:
        param : np.ndarray, the parameter's current value.
        grad : np.ndarray [same shape and dtype as param].
        exp_avg : np.ndarray, m from the previous step.
        exp_inf : np.ndarray, u from the previous step.
        step : int >= 1, the number of this step.
        lr : float >= 0. beta1, beta2 : float in [0, 1). eps : float >= 0.
        weight_decay : float >= 0, L2 penalty. maximize : bool, ascend instead.
        out : optional array to write the new parameter into; other inputs are left unmodified.

    Returns:
        ``(new_param, new_exp_avg, new_exp_inf)`` of ``param``'s dtype; no input is modified.
    """
    lr, beta1, beta2 = float(lr), float(beta1), float(beta2)
    eps, weight_decay = float(eps), float(weight_decay)
    if step < 1:
        raise ValueError(f"adamax_update: step counts from 1, got {step}")
    step = int(step)  # a NumPy integer here would make the bias correction a float64 scalar
    g = -grad if maximize else grad
    if weight_decay != 0:
        g = g + weight_decay * param
    exp_avg = _lerp(exp_avg, g, 1 - beta1)
    exp_inf = np.maximum(exp_inf * beta2, np.abs(g) + eps)
    clr = lr / (1 - beta1 ** step)
    return np.add(param, (-clr) * exp_avg / exp_inf, out=out), exp_avg, exp_inf


class Adamax(Optimizer):
    """Adamax (Kingma & Ba, 2015, sec. 7.1); same update as ``torch.optim.Adamax`` (see ``adamax_update``).

    Args:
        params: iterable of Parameters or of param-group dicts.
        lr : float >= 0, learning rate (default 2e-3).
        betas : (float, float), each in [0, 1) (default (0.9, 0.999)).
        eps : float >= 0, floor of the infinity norm (default 1e-8).
        weight_decay : float >= 0, L2 penalty (default 0).
        foreach : accepted for PyTorch's signature; rnnbp has one implementation.
        maximize : bool, maximise the objective instead (default False).
        differentiable, capturable : must be False.

    State per parameter: ``step``, ``exp_avg``, ``exp_inf``.
    """

    def __init__(self, params, lr: float = 2e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0, foreach: bool | None = None, *,
                 maximize: bool = False, differentiable: bool = False, capturable: bool = False):
        check_cpu_flags("Adamax", capturable, differentiable)
        defaults = dict(lr=lr, betas=betas_tuple(type(self).__name__, betas), eps=eps, weight_decay=weight_decay,
                        maximize=maximize)
        super().__init__(params, defaults)

    def _check_group(self, group):
        check_adam_group(group)

    def _init_state(self, param, group):
        return {"step": 0, "exp_avg": np.zeros_like(param._data), "exp_inf": np.zeros_like(param._data)}

    def _update(self, param, grad, state, group):
        state["step"] += 1
        beta1, beta2 = group["betas"]
        _, state["exp_avg"], state["exp_inf"] = adamax_update(
            param._data, grad, state["exp_avg"], state["exp_inf"], state["step"],
            lr=group["lr"], beta1=beta1, beta2=beta2, eps=group["eps"],
            weight_decay=group["weight_decay"], maximize=group["maximize"], out=param._data,
        )
