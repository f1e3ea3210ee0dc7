"""SGD: stochastic gradient descent with optional (Nesterov) momentum and weight decay."""
from __future__ import annotations

import numpy as np

from .optimizer import Optimizer, _check_nonnegative, check_cpu_flags


def sgd_update(
    param: np.ndarray,
    grad: np.ndarray,
    momentum_buffer: np.ndarray | None,
    *,
    lr: float,
    momentum: float = 0.0,
    dampening: float = 0.0,
    weight_decay: float = 0.0,
    nesterov: bool = False,
    maximize: bool = False,
    out: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """One SGD step for one parameter, as ``torch.optim.SGD`` takes it; inputs are not modified.

    Equations (t counts steps; b is the momentum buffer, None before the first step)::

        g = -grad if maximize else grad
        g = g + weight_decay * param
        b = g                                      if b is None  (first step)
        b = momentum * b + (1 - dampening) * g     otherwise
        g = g + momentum * b  if nesterov  else  b              (only when momentum != 0)
        param = param - lr * g

    Args:
        param : np.ndarray, the parameter's current value.
        grad : np.ndarray [same shape and dtype as param].
        momentum_buffer : np.ndarray or None, the buffer from the previous step.
        lr : float >= 0. momentum : float >= 0. dampening : float. weight_decay : float >= 0.
        nesterov : bool, needs momentum > 0 and dampening == 0. maximize : bool, ascend instead.
        out : optional array to write the new parameter into (the parameter itself, for an
            in-place step without a copy); every other input is left unmodified.

    Returns:
        ``(new_param, new_momentum_buffer)``; the buffer is None when ``momentum == 0``.
        Arrays keep ``param``'s dtype.
    """
    lr, momentum, dampening, weight_decay = float(lr), float(momentum), float(dampening), float(weight_decay)
    g = -grad if maximize else grad
    if weight_decay != 0:
        g = g + weight_decay * param
    buf = None
    if momentum != 0:
        buf = g.copy() if momentum_buffer is None else momentum_buffer * momentum + (1 - dampening) * g
        g = g + momentum * buf if nesterov else buf
    return np.add(param, (-lr) * g, out=out), buf


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with momentum, Nesterov momentum and weight decay.

    Same update as ``torch.optim.SGD``, step for step (see ``sgd_update`` for the equations).

    Args:
        params: iterable of Parameters or of param-group dicts.
        lr : float >= 0, learning rate (default 1e-3).
        momentum : float >= 0 (default 0).
        dampening : float, dampening of the momentum (default 0).
        weight_decay : float >= 0, L2 penalty added to the gradient (default 0).
        nesterov : bool, Nesterov momentum; needs momentum > 0 and dampening == 0 (default False).
        maximize : bool, maximise the objective instead (default False).

    State per parameter: ``momentum_buffer`` (only when momentum != 0).
    """

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0, dampening: float = 0,
                 weight_decay: float = 0, nesterov: bool = False, *, maximize: bool = False, foreach=None,
                 differentiable: bool = False, fused=None):
        check_cpu_flags("SGD", False, differentiable)
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize)
        super().__init__(params, defaults)

    def _check_group(self, group):
        _check_nonnegative("learning rate", group["lr"])
        _check_nonnegative("momentum value", group["momentum"])
        _check_nonnegative("weight_decay value", group["weight_decay"])
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(
                "Nesterov momentum requires a momentum and zero dampening, got "
                f"momentum={group['momentum']}, dampening={group['dampening']}"
            )

    def _stateless_update(self, group):
        if group["momentum"] or group["weight_decay"] or group["maximize"] or type(self)._update is not SGD._update:
            return None  # a subclass that changes the update gets _update for every parameter
        lr = float(group["lr"])

        def plain_sgd(param, grad):
            # param -= lr * grad: sgd_update's arithmetic without momentum (the same numbers), in place.
            np.subtract(param, lr * grad, out=param)

        return plain_sgd

    def _update(self, param, grad, state, group):
        new_param, buf = sgd_update(
            param._data, grad, state.get("momentum_buffer"),
            lr=group["lr"], momentum=group["momentum"], dampening=group["dampening"],
            weight_decay=group["weight_decay"], nesterov=group["nesterov"], maximize=group["maximize"],
            out=param._data,
        )
        if buf is not None:
            state["momentum_buffer"] = buf
