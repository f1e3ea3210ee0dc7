"""Gradient clipping by global norm or by value, in place, as ``torch.nn.utils.clip_grad``.

Clipping keeps one exploding step (common when backpropagating through many time steps) from
throwing the parameters far away; the pre-clip norm it returns is worth logging.
"""
from __future__ import annotations

import math
from typing import Iterable

import numpy as np

from ...autograd.tensor import Tensor


def _grads(parameters: Tensor | Iterable[Tensor]) -> list[np.ndarray]:
    """The gradient arrays of ``parameters`` (one Tensor or an iterable), skipping those that are None."""
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    grads = []
    for p in parameters:
        if p._grad is not None:
            grads.append(p._grad)
    return grads


def clip_grad_norm_(
    parameters: Tensor | Iterable[Tensor],
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
) -> Tensor:
    """Scale all gradients together, in place, so that their global norm is at most ``max_norm``.

    The global norm is the ``norm_type``-norm of the vector of every gradient entry (equivalently,
    of the per-parameter norms). Gradients are multiplied by ``max_norm / (total_norm + 1e-6)``
    only when that factor is below 1, as torch clamps it.

    Args:
        parameters : Tensor or iterable of Tensors; those whose ``.grad`` is None are skipped.
        max_norm : float >= 0, the largest allowed norm.
        norm_type : float, the p of the p-norm; ``math.inf`` for the largest absolute entry
            (default 2.0).
        error_if_nonfinite : bool, raise RuntimeError if the total norm is nan or inf instead of
            scaling by it (default False).

    Returns:
        Tensor [shape=()], the total norm before clipping, in the gradients' dtype (float32
        gradients give a float32 norm); 0.0 when no parameter has a gradient.
    """
    norm_type = float(norm_type)
    max_norm = float(max_norm)
    if not max_norm >= 0:
        raise ValueError(f"clip_grad_norm_: max_norm must be >= 0, got {max_norm}")
    grads = _grads(parameters)
    if not grads:
        return Tensor(np.zeros((), dtype=np.float32))
    dtype = np.result_type(*grads)
    # One norm per gradient, then the norm of those: equal to the norm over all entries.
    norms = [np.linalg.norm(g.ravel(), ord=norm_type) for g in grads if g.size > 0]
    total = np.linalg.norm(np.asarray(norms, dtype=dtype), ord=norm_type) if norms else 0.0
    total = np.asarray(total, dtype=dtype)
    if error_if_nonfinite and not np.isfinite(total):
        raise RuntimeError(
            f"The total norm of order {norm_type} for gradients from `parameters` is non-finite "
            f"({float(total)}), so it cannot be clipped. To disable this error and scale the "
            "gradients by the non-finite norm anyway, set `error_if_nonfinite=False`"
        )
    with np.errstate(invalid="ignore", divide="ignore"):
        coef = np.asarray(max_norm, dtype=dtype) / (total + np.asarray(1e-6, dtype=dtype))
    # ``not coef >= 1`` also catches nan, which torch's clamp passes on to the gradients.
    if not coef >= 1:
        with np.errstate(invalid="ignore"):  # inf * 0 gives nan, as in torch; no warning
            for g in grads:
                g *= coef.astype(g.dtype)
    return Tensor(total)


def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float) -> None:
    """Clamp every gradient entry, in place, into ``[-clip_value, clip_value]``.

    Args:
        parameters : Tensor or iterable of Tensors; those whose ``.grad`` is None are skipped.
        clip_value : float >= 0.
    """
    clip_value = float(clip_value)
    if not clip_value >= 0 or math.isnan(clip_value):
        raise ValueError(f"clip_grad_value_: clip_value must be >= 0, got {clip_value}")
    for g in _grads(parameters):
        np.clip(g, -clip_value, clip_value, out=g)
