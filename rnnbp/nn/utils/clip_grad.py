"""Gradient clipping by global norm or by value, in place, as ``torch.nn.utils.clip_grad``.

Clipping keeps one exploding step (common when backpropagating through many time steps) from
throwing the parameters far away; the pre-clip norm it returns is worth logging.
"""
from __future__ import annotations

import math
from typing import Iterable

import numpy as np

from ...autograd.dtypes import default_dtype
from ...autograd.tensor import Tensor
from ...validation import ArgumentTypeError


def _grads(parameters: Tensor | Iterable[Tensor], op: str) -> list[np.ndarray]:
    """The gradient arrays of ``parameters`` (one Tensor or an iterable), skipping those that are None."""
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    try:
        parameters = list(parameters)
    except TypeError:
        raise TypeError(f"{op}: parameters must be a Tensor or an iterable of Tensors (model.parameters()), "
                        f"got {type(parameters).__name__}") from None
    grads = []
    for i, p in enumerate(parameters):
        if not isinstance(p, Tensor):
            raise TypeError(f"{op}: parameters[{i}] is {type(p).__name__}, not a Tensor")
        if p._grad is not None:
            grads.append(p._grad)
    return grads


def _as_number(op: str, name: str, value, what: str) -> float:
    """``float(value)`` as torch takes it (so '2' and 'inf' pass), or an error naming the argument."""
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ArgumentTypeError(f"{op}: {name} must be a number{what}; got {type(value).__name__} "
                                f"{value!r:.60}") from None


def clip_grad_norm_(
    parameters: Tensor | Iterable[Tensor],
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
    foreach: bool | None = None,
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
        foreach : accepted for PyTorch's signature; NumPy has one implementation.

    Returns:
        Tensor [shape=()], the total norm before clipping, in the gradients' dtype (float32
        gradients give a float32 norm); 0.0 when no parameter has a gradient.

    Unlike PyTorch, finite gradients never give an infinite norm: the norm is computed without
    overflow (see :func:`_total_norm`), so ``[3e38, 3e38]`` in float32 is clipped to norm
    ``max_norm`` rather than zeroed. Only when the norm itself is too large for the gradients'
    dtype (4.2e38 here) is it returned in float64 instead; it is inf only if a gradient is, or
    past float64's range (1.8e308), and even then the gradients are scaled right.
    """
    norm_type = _as_number("clip_grad_norm_", "norm_type", norm_type, ", the p of the global p-norm: 2.0 for the Euclidean norm "
                           "('fro' of a vector), math.inf for the largest absolute entry")
    max_norm = _as_number("clip_grad_norm_", "max_norm", max_norm, ", the largest allowed norm")
    if not max_norm >= 0:
        raise ValueError(f"clip_grad_norm_: max_norm must be >= 0, got {max_norm}")
    grads = _grads(parameters, "clip_grad_norm_")
    if not grads:
        return Tensor(np.zeros((), dtype=default_dtype()))
    dtype = np.result_type(*grads)
    scale, ratio = _total_norm(grads, norm_type)
    with np.errstate(over="ignore"):
        total64 = scale * ratio  # inf only if a gradient is, or (float64) past 1.8e308
    finite_grads = math.isfinite(scale)
    fits = not (finite_grads and total64 > float(np.finfo(dtype).max))  # a Python float: no cast warning
    total = np.asarray(total64, dtype=dtype if fits else np.float64)
    if error_if_nonfinite and not finite_grads:
        raise RuntimeError(
            f"The total norm of order {norm_type} for gradients from `parameters` is non-finite "
            f"({float(total)}), so it cannot be clipped. To disable this error and scale the "
            "gradients by the non-finite norm anyway, set `error_if_nonfinite=False`"
        )
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        coef = np.asarray(max_norm, dtype=dtype) / (total.astype(dtype) + np.asarray(1e-6, dtype=dtype))
    # ``not coef >= 1`` also catches nan, which torch's clamp passes on to the gradients.
    if not coef >= 1:
        for g in grads:
            if finite_grads and scale > 0 and not (fits and float(coef) >= float(np.finfo(g.dtype).tiny)):
                # The norm or the factor does not fit the dtype (max_norm / 4.2e38 is subnormal in
                # float32): scale by the largest entry first, in float64, then cast back.
                g[...] = (g.astype(np.float64) / scale) * (max_norm / (ratio + 1e-6 / scale))
            else:
                with np.errstate(invalid="ignore"):  # inf * 0 gives nan, as in torch; no warning
                    g *= coef.astype(g.dtype)
    return Tensor(total)


def _total_norm(grads: list[np.ndarray], norm_type: float) -> tuple[float, float]:
    """The global ``norm_type``-norm of ``grads`` as ``(scale, ratio)``, the norm being ``scale * ratio``.

    For p > 0 the entries are divided by ``scale``, the largest absolute entry, before they are
    raised to the power p, in float64: nothing overflows (1e308 squared would) or underflows
    (1e-200 squared would), and ``ratio`` lies in [1, n^(1/p)]. A NaN or Inf gradient gives a
    NaN or Inf ``scale`` and the norm PyTorch gives (inf, or nan if any entry is nan). For
    p = inf the norm is the largest entry; p <= 0 keeps PyTorch's norm of per-tensor norms.

    Args:
        grads : list of np.ndarray, any shapes and floating dtypes.
        norm_type : float, the p of the p-norm.

    Returns:
        (scale, ratio) : Python floats (float64).
    """
    arrays = [g for g in grads if g.size > 0]
    if not arrays:
        return 0.0, 0.0
    if norm_type <= 0 or math.isnan(norm_type):
        with np.errstate(divide="ignore"):  # a zero entry under a negative p: torch gives 0 silently
            norms = [np.linalg.norm(g.ravel().astype(np.float64), ord=norm_type) for g in arrays]
            return float(np.linalg.norm(np.asarray(norms), ord=norm_type)), 1.0
    # np.max, not max(): it propagates NaN whatever the order (inf if an entry is inf and none NaN).
    scale = float(np.max([np.max(np.abs(g)).astype(np.float64) for g in arrays]))
    if math.isinf(norm_type) or scale == 0 or not math.isfinite(scale):
        return scale, 1.0
    acc = 0.0
    for g in arrays:
        r = g.ravel().astype(np.float64) / scale
        acc += float(r @ r) if norm_type == 2.0 else float(np.sum(np.abs(r) ** norm_type))
    return scale, acc ** (1.0 / norm_type)


def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float, foreach: bool | None = None) -> None:
    """Clamp every gradient entry, in place, into ``[-clip_value, clip_value]``.

    Args:
        parameters : Tensor or iterable of Tensors; those whose ``.grad`` is None are skipped.
        clip_value : float >= 0.
        foreach : accepted for PyTorch's signature; NumPy has one implementation.
    """
    clip_value = _as_number("clip_grad_value_", "clip_value", clip_value, ", the largest allowed |gradient|")
    if not clip_value >= 0 or math.isnan(clip_value):
        raise ValueError(f"clip_grad_value_: clip_value must be >= 0, got {clip_value}")
    for g in _grads(parameters, "clip_grad_value_"):
        np.clip(g, -clip_value, clip_value, out=g)
