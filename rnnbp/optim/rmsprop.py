"""RMSprop: divide the gradient by a running root-mean-square of recent gradients."""
from __future__ import annotations

import numpy as np

from .optimizer import Optimizer, _check_nonnegative, _lerp, check_cpu_flags


def rmsprop_update(
    param: np.ndarray,
    grad: np.ndarray,
    square_avg: np.ndarray,
    *,
    lr: float,
    alpha: float = 0.99,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    momentum: float = 0.0,
    centered: bool = False,
    momentum_buffer: np.ndarray | None = None,
    grad_avg: np.ndarray | None = None,
    maximize: bool = False,
    out: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """One RMSprop step for one parameter, as ``torch.optim.RMSprop`` takes it; pure.

    Equations (v, g_ave and b start at zero)::

        g = -grad if maximize else grad
        g = g + weight_decay * param
        v = alpha * v + (1 - alpha) * g**2
        g_ave = alpha * g_ave + (1 - alpha) * g ;  avg = sqrt(v - g_ave**2) + eps   if centered
        avg = sqrt(v) + eps                                                           otherwise
        b = momentum * b + g / avg ;  param = param - lr * b                          if momentum > 0
        param = param - lr * g / avg                                                  otherwise

    Args:
        param : np.ndarray. grad : np.ndarray [same shape and dtype as param].
        square_avg : np.ndarray, v from the previous step.
        lr : float >= 0. alpha : float >= 0, smoothing constant. eps : float >= 0.
        weight_decay : float >= 0. momentum : float >= 0. centered : bool.
        momentum_buffer : np.ndarray or None, b (momentum > 0 only; None means zeros).
        grad_avg : np.ndarray or None, g_ave (centered only; None means zeros).
        maximize : bool, ascend instead.
        out : optional array to write the new parameter into (the parameter itself, for an
            in-place step without a copy); every other input is left unmodified.

    Returns:
        ``(new_param, new_square_avg, new_momentum_buffer, new_grad_avg)``; the buffer is None
        unless ``momentum > 0``, the gradient average None unless ``centered``.
    """
    lr, alpha, eps = float(lr), float(alpha), float(eps)
    weight_decay, momentum = float(weight_decay), float(momentum)
    g = -grad if maximize else grad
    if weight_decay != 0:
        g = g + weight_decay * param
    square_avg = square_avg * alpha + (1 - alpha) * g * g
    if centered:
        grad_avg = _lerp(np.zeros_like(g) if grad_avg is None else grad_avg, g, 1 - alpha)
        avg = np.sqrt(square_avg + (-1.0) * grad_avg * grad_avg) + eps
    else:
        grad_avg = None
        avg = np.sqrt(square_avg) + eps
    if momentum > 0:
        buf = np.zeros_like(g) if momentum_buffer is None else momentum_buffer
        buf = buf * momentum + g / avg
        return np.add(param, (-lr) * buf, out=out), square_avg, buf, grad_avg
    return np.add(param, (-lr) * g / avg, out=out), square_avg, None, grad_avg


class RMSprop(Optimizer):
    """RMSprop (Hinton's lecture notes; centered form from Graves, 2013); as ``torch.optim.RMSprop``.

    The square root is taken before eps is added (TensorFlow adds eps inside). See
    ``rmsprop_update`` for the equations.

    Args:
        params: iterable of Parameters or of param-group dicts.
        lr : float >= 0, learning rate (default 1e-2).
        alpha : float >= 0, smoothing constant of the squared-gradient average (default 0.99).
        eps : float >= 0, added to the denominator (default 1e-8).
        weight_decay : float >= 0, L2 penalty (default 0).
        momentum : float >= 0 (default 0).
        centered : bool, normalise by the estimated variance of the gradient (default False).
        maximize : bool, maximise the objective instead (default False).

    State per parameter: ``step``, ``square_avg``, ``momentum_buffer`` (momentum > 0),
    ``grad_avg`` (centered).
    """

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0, momentum: float = 0, centered: bool = False, *,
                 maximize: bool = False, foreach=None, capturable: bool = False, differentiable: bool = False):
        check_cpu_flags("RMSprop", capturable, differentiable)
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                        centered=centered, maximize=maximize)
        super().__init__(params, defaults)

    def _check_group(self, group):
        _check_nonnegative("learning rate", group["lr"])
        _check_nonnegative("epsilon value", group["eps"])
        _check_nonnegative("momentum value", group["momentum"])
        _check_nonnegative("weight_decay value", group["weight_decay"])
        _check_nonnegative("alpha value", group["alpha"])

    def _init_state(self, param, group):
        state = {"step": 0, "square_avg": np.zeros_like(param._data)}
        if group["momentum"] > 0:
            state["momentum_buffer"] = np.zeros_like(param._data)
        if group["centered"]:
            state["grad_avg"] = np.zeros_like(param._data)
        return state

    def _update(self, param, grad, state, group):
        state["step"] += 1
        new_param, square_avg, buf, grad_avg = rmsprop_update(
            param._data, grad, state["square_avg"],
            lr=group["lr"], alpha=group["alpha"], eps=group["eps"], weight_decay=group["weight_decay"],
            momentum=group["momentum"], centered=group["centered"],
            momentum_buffer=state.get("momentum_buffer"), grad_avg=state.get("grad_avg"),
            maximize=group["maximize"], out=param._data,
        )
        state["square_avg"] = square_avg
        if buf is not None:
            state["momentum_buffer"] = buf
        if grad_avg is not None:
            state["grad_avg"] = grad_avg
