"""NAdam: Adam with Nesterov momentum, the momentum coefficient warmed up by a decay schedule."""
from __future__ import annotations

import numpy as np

from ..autograd.dtypes import default_dtype
from .optimizer import Optimizer, _check_nonnegative, _lerp, _to_python, betas_tuple, check_adam_group, check_cpu_flags


def nadam_momentum(step: int, beta1: float, momentum_decay: float) -> float:
    """mu_t = beta1 * (1 - 0.5 * 0.96 ** (t * momentum_decay)), Dozat's (2016) momentum schedule."""
    return beta1 * (1.0 - 0.5 * (0.96 ** (step * momentum_decay)))


def nadam_update(
    param: np.ndarray,
    grad: np.ndarray,
    exp_avg: np.ndarray,
    exp_avg_sq: np.ndarray,
    mu_product: float,
    step: int,
    *,
    lr: float = 2e-3,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    momentum_decay: float = 4e-3,
    decoupled_weight_decay: bool = False,
    maximize: bool = False,
    mu_product_dtype=np.float64,
    out: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """One NAdam step for one parameter, as ``torch.optim.NAdam`` takes it; pure.

    Dozat (2016), "Incorporating Nesterov momentum into Adam", in the form of PyTorch's documented
    algorithm. t = ``step``, counted from 1; m, v start at zero and the product of the mu's at 1::

        g = -grad if maximize else grad
        param = param * (1 - lr * weight_decay)       if decoupled_weight_decay (NAdamW)
        g = g + weight_decay * param                   otherwise
        mu_t = beta1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))      (and mu_{t+1} alike)
        prod_t = prod_{t-1} * mu_t
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g**2
        denom = sqrt(v / (1 - beta2**t)) + eps
        param = param - lr * (1 - mu_t) / (1 - prod_t) * g / denom
        param = param - lr * mu_{t+1} / (1 - prod_t * mu_{t+1}) * m / denom

    Args:
        param : np.ndarray, the parameter's current value.
        grad : np.ndarray [same shape and dtype as param].
        exp_avg, exp_avg_sq : np.ndarray, m and v from the previous step.
        mu_product : float, prod_{t-1} (1.0 before the first step).
        step : int >= 1, the number of this step.
        lr : float >= 0. beta1, beta2 : float in [0, 1). eps : float >= 0.
        weight_decay : float >= 0. momentum_decay : float >= 0.
        decoupled_weight_decay : bool, decay the parameter (AdamW's way) instead of the gradient.
        maximize : bool, ascend instead.
        mu_product_dtype : NumPy float dtype in which prod_t is formed and kept. float64 is the
            exact rule; NAdam passes float32 because PyTorch keeps prod_t in a 0-d tensor of its
            default dtype (float32 unless set_default_dtype chose another), rounding it at every step.
        out : optional array to write the new parameter into; other inputs are left unmodified.

    Returns:
        ``(new_param, new_exp_avg, new_exp_avg_sq, new_mu_product)``; the arrays have ``param``'s
        dtype, ``new_mu_product`` is a Python float (prod_t). No input is modified.
    """
    lr, beta1, beta2, eps = float(lr), float(beta1), float(beta2), float(eps)
    weight_decay, momentum_decay = float(weight_decay), float(momentum_decay)
    if step < 1:
        raise ValueError(f"nadam_update: step counts from 1, got {step}")
    step = int(step)  # a NumPy integer here would make the coefficients float64 scalars
    bias_correction2 = 1 - beta2 ** step
    g = -grad if maximize else grad
    if weight_decay != 0:
        if decoupled_weight_decay:
            param = param * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * param
    mu = nadam_momentum(step, beta1, momentum_decay)
    mu_next = nadam_momentum(step + 1, beta1, momentum_decay)
    scalar = np.dtype(mu_product_dtype).type
    mu_product = float(scalar(mu_product) * scalar(mu))  # rounded as the dtype rounds a product
    exp_avg = _lerp(exp_avg, g, 1 - beta1)
    exp_avg_sq = exp_avg_sq * beta2 + (1 - beta2) * g * g
    denom = np.sqrt(exp_avg_sq / bias_correction2) + eps
    mu_product_next = mu_product * mu_next
    param = param + (-lr * (1.0 - mu) / (1.0 - mu_product)) * g / denom
    param = np.add(param, ((-lr * mu_next) / (1.0 - mu_product_next)) * exp_avg / denom, out=out)
    return param, exp_avg, exp_avg_sq, mu_product


class NAdam(Optimizer):
    """NAdam (Dozat, 2016), optionally NAdamW; same update as ``torch.optim.NAdam`` (see ``nadam_update``).

    As in PyTorch, the running product of the momentum coefficients (state ``mu_product``) is
    rounded to float32 at every step, whatever the parameters' dtype: PyTorch keeps it in a
    tensor of its default dtype, and rnnbp's default dtype is float32.

    Args:
        params: iterable of Parameters or of param-group dicts.
        lr : float >= 0, learning rate (default 2e-3).
        betas : (float, float), each in [0, 1) (default (0.9, 0.999)).
        eps : float >= 0, added to the denominator (default 1e-8).
        weight_decay : float >= 0 (default 0).
        momentum_decay : float >= 0, speed of the momentum warm-up (default 4e-3).
        decoupled_weight_decay : bool, NAdamW's decay of the parameter (default False).
        foreach : accepted for PyTorch's signature; rnnbp has one implementation.
        maximize : bool, maximise the objective instead (default False).
        capturable, differentiable : must be False.

    State per parameter: ``step``, ``mu_product`` (a Python float), ``exp_avg``, ``exp_avg_sq``.
    """

    def __init__(self, params, lr: float = 2e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0, momentum_decay: float = 4e-3,
                 decoupled_weight_decay: bool = False, *, foreach: bool | None = None,
                 maximize: bool = False, capturable: bool = False, differentiable: bool = False):
        check_cpu_flags("NAdam", capturable, differentiable)
        defaults = dict(lr=lr, betas=betas_tuple(type(self).__name__, betas), eps=eps, weight_decay=weight_decay,
                        momentum_decay=momentum_decay, decoupled_weight_decay=decoupled_weight_decay,
                        maximize=maximize)
        super().__init__(params, defaults)

    def _check_group(self, group):
        check_adam_group(group)
        _check_nonnegative("momentum_decay value", group["momentum_decay"])

    def _init_state(self, param, group):
        return {"step": 0, "mu_product": 1.0, "exp_avg": np.zeros_like(param._data),
                "exp_avg_sq": np.zeros_like(param._data)}

    def _update(self, param, grad, state, group):
        state["step"] += 1
        beta1, beta2 = group["betas"]
        _, state["exp_avg"], state["exp_avg_sq"], state["mu_product"] = nadam_update(
            param._data, grad, state["exp_avg"], state["exp_avg_sq"], state["mu_product"], state["step"],
            lr=group["lr"], beta1=beta1, beta2=beta2, eps=group["eps"],
            weight_decay=group["weight_decay"], momentum_decay=group["momentum_decay"],
            decoupled_weight_decay=group["decoupled_weight_decay"], maximize=group["maximize"],
            mu_product_dtype=default_dtype(), out=param._data,
        )

    def load_state_dict(self, state_dict):
        """As ``Optimizer.load_state_dict``; ``mu_product`` (a 0-d tensor in PyTorch's files) becomes a float."""
        state = {}
        for key, values in state_dict.get("state", {}).items():
            values = dict(values)
            if "mu_product" in values:
                values["mu_product"] = float(_to_python(np.asarray(values["mu_product"])))
            state[key] = values
        super().load_state_dict({**state_dict, "state": state})
