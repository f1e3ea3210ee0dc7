"""Adam and AdamW: adaptive moment estimation, with L2 or decoupled weight decay.

Both call one pure function, ``adam_update``; AdamW is Adam with ``decoupled=True``.
"""
from __future__ import annotations

import numpy as np

from .optimizer import Optimizer, _lerp, betas_tuple, check_adam_group, check_cpu_flags


def adam_update(
    param: np.ndarray,
    grad: np.ndarray,
    exp_avg: np.ndarray,
    exp_avg_sq: np.ndarray,
    step: int,
    *,
    lr: float,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    amsgrad: bool = False,
    max_exp_avg_sq: np.ndarray | None = None,
    decoupled: bool = False,
    maximize: bool = False,
    out: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """One Adam (or AdamW) step for one parameter, as ``torch.optim.Adam`` takes it; pure.

    Equations (t = ``step``, counted from 1; m, v, v_max start at zero)::

        g = -grad if maximize else grad
        param = param * (1 - lr * weight_decay)     if decoupled (AdamW)
        g = g + weight_decay * param                 otherwise (Adam's L2 penalty)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g**2
        v_max = max(v_max, v)  and use v_max for v   if amsgrad
        param = param - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

    Args:
        param : np.ndarray, the parameter's current value.
        grad : np.ndarray [same shape and dtype as param].
        exp_avg, exp_avg_sq : np.ndarray, m and v from the previous step (zeros before the first).
        step : int >= 1, the number of this step (the state's ``step`` after incrementing).
        lr : float >= 0. beta1, beta2 : float in [0, 1). eps : float >= 0.
        weight_decay : float >= 0. amsgrad : bool.
        max_exp_avg_sq : np.ndarray or None, v_max from the previous step (amsgrad only;
            None means zeros).
        decoupled : bool, AdamW's weight decay (applied to the parameter, not the gradient).
        maximize : bool, ascend instead.
        out : optional array to write the new parameter into (the parameter itself, for an
            in-place step without a copy); every other input is left unmodified.

    Returns:
        ``(new_param, new_exp_avg, new_exp_avg_sq, new_max_exp_avg_sq)``, all of ``param``'s
        dtype; the last is None unless ``amsgrad``. No input is modified.
    """
    lr, beta1, beta2 = float(lr), float(beta1), float(beta2)
    eps, weight_decay = float(eps), float(weight_decay)
    if step < 1:
        raise ValueError(f"adam_update: step counts from 1, got {step}")
    step = int(step)  # a NumPy integer here would make the bias corrections float64 scalars
    g = -grad if maximize else grad
    if weight_decay != 0:
        if decoupled:
            param = param * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * param
    exp_avg = _lerp(exp_avg, g, 1 - beta1)
    exp_avg_sq = exp_avg_sq * beta2 + (1 - beta2) * g * g
    step_size = lr / (1 - beta1 ** step)
    bias_correction2_sqrt = (1 - beta2 ** step) ** 0.5
    if amsgrad:
        if max_exp_avg_sq is None:
            max_exp_avg_sq = np.zeros_like(exp_avg_sq)
        max_exp_avg_sq = np.maximum(max_exp_avg_sq, exp_avg_sq)
        denom = np.sqrt(max_exp_avg_sq) / bias_correction2_sqrt + eps
    else:
        max_exp_avg_sq = None
        denom = np.sqrt(exp_avg_sq) / bias_correction2_sqrt + eps
    return np.add(param, (-step_size) * exp_avg / denom, out=out), exp_avg, exp_avg_sq, max_exp_avg_sq


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015), optionally AMSGrad; same update as ``torch.optim.Adam``.

    See ``adam_update`` for the equations.

    Args:
        params: iterable of Parameters or of param-group dicts.
        lr : float >= 0, learning rate (default 1e-3).
        betas : (float, float), each in [0, 1): decay rates of the moment averages (default (0.9, 0.999)).
        eps : float >= 0, added to the denominator (default 1e-8).
        weight_decay : float >= 0 (default 0): an L2 penalty added to the gradient, or, with
            ``decoupled_weight_decay=True``, AdamW's decay of the parameter.
        amsgrad : bool, use the running maximum of the second moment (default False).
        maximize : bool, maximise the objective instead (default False).
        decoupled_weight_decay : bool, behave as AdamW (default False).

    State per parameter: ``step``, ``exp_avg``, ``exp_avg_sq`` and, with amsgrad, ``max_exp_avg_sq``.
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0, amsgrad: bool = False, *,
                 maximize: bool = False, decoupled_weight_decay: bool = False, foreach=None,
                 capturable: bool = False, differentiable: bool = False, fused=None):
        check_cpu_flags(type(self).__name__, capturable, differentiable)
        defaults = dict(lr=lr, betas=betas_tuple(type(self).__name__, betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                        maximize=maximize, decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    def _check_group(self, group):
        check_adam_group(group)

    def _init_state(self, param, group):
        state = {
            "step": 0,
            "exp_avg": np.zeros_like(param._data),
            "exp_avg_sq": np.zeros_like(param._data),
        }
        if group["amsgrad"]:
            state["max_exp_avg_sq"] = np.zeros_like(param._data)
        return state

    def _update(self, param, grad, state, group):
        state["step"] += 1
        beta1, beta2 = group["betas"]
        amsgrad = group["amsgrad"]
        if amsgrad and "max_exp_avg_sq" not in state:  # amsgrad switched on after some steps
            state["max_exp_avg_sq"] = np.zeros_like(param._data)
        new_param, exp_avg, exp_avg_sq, max_exp_avg_sq = adam_update(
            param._data, grad, state["exp_avg"], state["exp_avg_sq"], state["step"],
            lr=group["lr"], beta1=beta1, beta2=beta2, eps=group["eps"],
            weight_decay=group["weight_decay"], amsgrad=amsgrad,
            max_exp_avg_sq=state.get("max_exp_avg_sq"), decoupled=group["decoupled_weight_decay"],
            maximize=group["maximize"], out=param._data,
        )
        state["exp_avg"], state["exp_avg_sq"] = exp_avg, exp_avg_sq
        if amsgrad:
            state["max_exp_avg_sq"] = max_exp_avg_sq


class AdamW(Adam):
    """AdamW (Loshchilov & Hutter, 2019): Adam with decoupled weight decay; as ``torch.optim.AdamW``.

    Each step first shrinks the parameter, ``param *= 1 - lr * weight_decay``, so the decay does
    not pass through the moment averages. Arguments as for ``Adam``, but ``weight_decay``
    defaults to 1e-2.
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False, *,
                 maximize: bool = False, foreach=None, capturable: bool = False, differentiable: bool = False,
                 fused=None):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         decoupled_weight_decay=True, capturable=capturable, differentiable=differentiable)

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        for group in self.param_groups:  # AdamW is always decoupled, whatever the file says
            group["decoupled_weight_decay"] = True
