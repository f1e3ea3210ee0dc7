"""Adadelta: step sizes from the ratio of running RMS of past updates to running RMS of gradients."""
from __future__ import annotations

import numpy as np

from .optimizer import Optimizer, _check_nonnegative, check_cpu_flags


def adadelta_update(
    param: np.ndarray,
    grad: np.ndarray,
    square_avg: np.ndarray,
    acc_delta: np.ndarray,
    *,
    lr: float = 1.0,
    rho: float = 0.9,
    eps: float = 1e-6,
    weight_decay: float = 0.0,
    maximize: bool = False,
    out: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One Adadelta step for one parameter, as ``torch.optim.Adadelta`` takes it; pure.

    Zeiler (2012), algorithm 1, with PyTorch's learning rate on the update (lr = 1 is the paper).
    E[g^2] and E[dx^2] start at zero::

        g = -grad if maximize else grad
        g = g + weight_decay * param
        E[g^2] = rho * E[g^2] + (1 - rho) * g**2
        dx = sqrt(E[dx^2] + eps) / sqrt(E[g^2] + eps) * g
        E[dx^2] = rho * E[dx^2] + (1 - rho) * dx**2
        param = param - lr * dx

    Args:
        param : np.ndarray, the parameter's current value.
        grad : np.ndarray [same shape and dtype as param].
        square_avg : np.ndarray, E[g^2] from the previous step.
        acc_delta : np.ndarray, E[dx^2] from the previous step.
        lr : float >= 0. rho : float in [0, 1], decay of both averages. eps : float >= 0.
        weight_decay : float >= 0, L2 penalty. maximize : bool, ascend instead.
        out : optional array to write the new parameter into (the parameter itself, for an
            in-place step without a copy); every other input is left unmodified.

    Returns:
        ``(new_param, new_square_avg, new_acc_delta)`` of ``param``'s dtype; no input is modified.
    """
    lr, rho, eps, weight_decay = float(lr), float(rho), float(eps), float(weight_decay)
    g = -grad if maximize else grad
    if weight_decay != 0:
        g = g + weight_decay * param
    square_avg = square_avg * rho + (1 - rho) * g * g
    std = np.sqrt(square_avg + eps)
    delta = np.sqrt(acc_delta + eps) / std * g
    acc_delta = acc_delta * rho + (1 - rho) * delta * delta
    return np.add(param, (-lr) * delta, out=out), square_avg, acc_delta


class Adadelta(Optimizer):
    """Adadelta (Zeiler, 2012); same update as ``torch.optim.Adadelta`` (see ``adadelta_update``).

    Args:
        params: iterable of Parameters or of param-group dicts.
        lr : float >= 0, scales the update (default 1.0, the paper's rule).
        rho : float in [0, 1], decay of the running averages (default 0.9).
        eps : float >= 0, inside both square roots (default 1e-6).
        weight_decay : float >= 0, L2 penalty (default 0).
        foreach : accepted for PyTorch's signature; rnnbp has one implementation.
        capturable, differentiable : must be False (CUDA graphs, autograd through the step).
        maximize : bool, maximise the objective instead (default False).

    State per parameter: ``step``, ``square_avg``, ``acc_delta``.
    """

    def __init__(self, params, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6,
                 weight_decay: float = 0, foreach: bool | None = None, *, capturable: bool = False,
                 maximize: bool = False, differentiable: bool = False):
        check_cpu_flags("Adadelta", capturable, differentiable)
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize)
        super().__init__(params, defaults)

    def _check_group(self, group):
        _check_nonnegative("learning rate", group["lr"])
        if not 0.0 <= group["rho"] <= 1.0:
            raise ValueError(f"Invalid rho value: {group['rho']}")
        _check_nonnegative("epsilon value", group["eps"])
        _check_nonnegative("weight_decay value", group["weight_decay"])

    def _init_state(self, param, group):
        return {"step": 0, "square_avg": np.zeros_like(param._data), "acc_delta": np.zeros_like(param._data)}

    def _update(self, param, grad, state, group):
        state["step"] += 1
        _, state["square_avg"], state["acc_delta"] = adadelta_update(
            param._data, grad, state["square_avg"], state["acc_delta"],
            lr=group["lr"], rho=group["rho"], eps=group["eps"], weight_decay=group["weight_decay"],
            maximize=group["maximize"], out=param._data,
        )
