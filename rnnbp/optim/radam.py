"""RAdam: Adam whose adaptive step is switched on only once the variance of its estimate is bounded."""
from __future__ import annotations

import numpy as np

from .optimizer import Optimizer, _lerp, betas_tuple, check_adam_group, check_cpu_flags


def radam_update(
    param: np.ndarray,
    grad: np.ndarray,
    exp_avg: np.ndarray,
    exp_avg_sq: np.ndarray,
    step: int,
    *,
    lr: float = 1e-3,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    decoupled_weight_decay: bool = False,
    maximize: bool = False,
    out: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One RAdam step for one parameter, as ``torch.optim.RAdam`` takes it; pure.

    Liu et al. (2019), "On the variance of the adaptive learning rate and beyond", algorithm 2,
    with eps added to sqrt(v) as PyTorch does. t = ``step``, counted from 1; m, v start at zero::

        g = -grad if maximize else grad
        param = param * (1 - lr * weight_decay)       if decoupled_weight_decay
        g = g + weight_decay * param                   otherwise
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g**2
        m_hat = m / (1 - beta1**t)
        rho_inf = 2 / (1 - beta2) - 1
        rho_t = rho_inf - 2 t beta2**t / (1 - beta2**t)
        if rho_t > 5:
            r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))
            param = param - lr * m_hat * sqrt(1 - beta2**t) / (sqrt(v) + eps) * r_t
        else:
            param = param - lr * m_hat                 (SGD with momentum while rho_t is small)

    Args:
        param : np.ndarray, the parameter's current value.
        grad : np.ndarray [same shape and dtype as param].
        exp_avg, exp_avg_sq : np.ndarray, m and v from the previous step.
        step : int >= 1, the number of this step.
        lr : float >= 0. beta1, beta2 : float in [0, 1). eps : float >= 0.
        weight_decay : float >= 0.
        decoupled_weight_decay : bool, decay the parameter (AdamW's way) instead of the gradient.
        maximize : bool, ascend instead.
        out : optional array to write the new parameter into; other inputs are left unmodified.

    Returns:
        ``(new_param, new_exp_avg, new_exp_avg_sq)`` of ``param``'s dtype; no input is modified.
    """
    lr, beta1, beta2 = float(lr), float(beta1), float(beta2)
    eps, weight_decay = float(eps), float(weight_decay)
    if step < 1:
        raise ValueError(f"radam_update: step counts from 1, got {step}")
    step = int(step)  # a NumPy integer here would make the coefficients float64 scalars
    g = -grad if maximize else grad
    if weight_decay != 0:
        if decoupled_weight_decay:
            param = param * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * param
    exp_avg = _lerp(exp_avg, g, 1 - beta1)
    exp_avg_sq = exp_avg_sq * beta2 + (1 - beta2) * g * g
    bias_correction1 = 1 - beta1 ** step
    bias_correction2 = 1 - beta2 ** step
    m_hat = exp_avg / bias_correction1
    rho_inf = 2 / (1 - beta2) - 1
    rho_t = rho_inf - 2 * step * (beta2 ** step) / bias_correction2
    if rho_t > 5.0:
        rect = ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
        adaptive_lr = (bias_correction2 ** 0.5) / (np.sqrt(exp_avg_sq) + eps)
        update = m_hat * lr * adaptive_lr * rect
    else:
        update = m_hat * lr
    return np.subtract(param, update, out=out), exp_avg, exp_avg_sq


class RAdam(Optimizer):
    """RAdam (Liu et al., 2019), optionally with decoupled weight decay; as ``torch.optim.RAdam``.

    See ``radam_update`` for the equations. For the default beta2 = 0.999 the first five steps
    are momentum SGD steps (rho_t <= 5); the adaptive step starts at the sixth.

    Args:
        params: iterable of Parameters or of param-group dicts.
        lr : float >= 0, learning rate (default 1e-3).
        betas : (float, float), each in [0, 1) (default (0.9, 0.999)).
        eps : float >= 0, added to the denominator (default 1e-8).
        weight_decay : float >= 0 (default 0).
        decoupled_weight_decay : bool, decay the parameter (AdamW's way) instead (default False).
        foreach : accepted for PyTorch's signature; rnnbp has one implementation.
        maximize : bool, maximise the objective instead (default False).
        capturable, differentiable : must be False.

    State per parameter: ``step``, ``exp_avg``, ``exp_avg_sq``.
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0, decoupled_weight_decay: bool = False, *,
                 foreach: bool | None = None, maximize: bool = False, capturable: bool = False,
                 differentiable: bool = False):
        check_cpu_flags("RAdam", capturable, differentiable)
        defaults = dict(lr=lr, betas=betas_tuple(type(self).__name__, betas), eps=eps, weight_decay=weight_decay,
                        decoupled_weight_decay=decoupled_weight_decay, maximize=maximize)
        super().__init__(params, defaults)

    def _check_group(self, group):
        check_adam_group(group)

    def _init_state(self, param, group):
        return {"step": 0, "exp_avg": np.zeros_like(param._data), "exp_avg_sq": np.zeros_like(param._data)}

    def _update(self, param, grad, state, group):
        state["step"] += 1
        beta1, beta2 = group["betas"]
        _, state["exp_avg"], state["exp_avg_sq"] = radam_update(
            param._data, grad, state["exp_avg"], state["exp_avg_sq"], state["step"],
            lr=group["lr"], beta1=beta1, beta2=beta2, eps=group["eps"],
            weight_decay=group["weight_decay"], decoupled_weight_decay=group["decoupled_weight_decay"],
            maximize=group["maximize"], out=param._data,
        )
