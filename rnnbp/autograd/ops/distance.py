"""Pairwise distances between two sets of row vectors: ``cdist``, with PyTorch's arguments and gradients.

``cdist(x1, x2, p)[..., i, j] = ||x1[..., i, :] - x2[..., j, :]||_p`` for every pair (i, j), as one
``Function``. The p = 2 distance has two forward routes, as in PyTorch:

* the differences themselves, ``sqrt(sum((x1_i - x2_j)^2))`` (exact, (*, P, R, M) memory);
* matrix products, ``sqrt(max(|x1_i|^2 - 2 x1_i.x2_j + |x2_j|^2, 0))`` (one BLAS call, (*, P, R)
  memory, less exact for nearly equal rows), taken by default when P > 25 or R > 25.

Every p has PyTorch's backward (``_cdist_backward``), including its conventions where the norm
is not differentiable: a pair at distance 0 sends no gradient (p > 0); p = 0 (the number of
differing coordinates) has a zero gradient; p = inf sends the full gradient to every coordinate
that attains the maximum; for p < 1 a coordinate with no difference gets none.
"""
from __future__ import annotations

import math

import numpy as np

from ..function import Function, unbroadcast
from ..tensor import Tensor

__all__ = ["cdist"]

_COMPUTE_MODES = {"use_mm_for_euclid_dist_if_necessary": 0, "use_mm_for_euclid_dist": 1,
                  "donot_use_mm_for_euclid_dist": 2}


def _distances(diff: np.ndarray, p: float) -> np.ndarray:
    """The p-norms of ``diff`` (*, P, R, M) over its last axis -> (*, P, R)."""
    a = np.abs(diff)
    if p == 0:
        return (diff != 0).sum(axis=-1).astype(diff.dtype)
    if p == 1:
        return a.sum(axis=-1)
    if p == 2:
        return np.sqrt((diff * diff).sum(axis=-1))
    if p == math.inf:
        return a.max(axis=-1)
    return (a ** diff.dtype.type(p)).sum(axis=-1) ** diff.dtype.type(1 / p)


def _pair_grads(diff: np.ndarray, dist: np.ndarray, grad: np.ndarray, p: float) -> np.ndarray:
    """dL/d(x1_i - x2_j) for every pair: (*, P, R, M), from the distances (*, P, R) and their grads."""
    d, g = dist[..., None], grad[..., None]
    dtype = diff.dtype
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if p == 1:
            return g * np.sign(diff)
        if p == math.inf:  # every coordinate at the maximum gets the whole gradient, as in PyTorch
            return g * np.sign(diff) * (np.abs(diff) == d)
        if p == 2:
            return np.where(d == 0, dtype.type(0), g * diff / d)
        if p < 2:
            dead = (d == 0) | ((diff == 0) & (p < 1))
            power = dtype.type(p - 1)
            return np.where(dead, dtype.type(0), np.sign(diff) * np.abs(diff) ** power * g / d ** power)
        return np.where(d == 0, dtype.type(0),
                        diff * np.abs(diff) ** dtype.type(p - 2) * g / d ** dtype.type(p - 1))


class CDist(Function):
    """``out[..., i, j] = ||x1[..., i, :] - x2[..., j, :]||_p``; batch dims broadcast.

    Shapes: x1 (*B1, P, M), x2 (*B2, R, M) -> (*B, P, R) with B the broadcast of B1 and B2.
    ``mm``: p = 2 through matrix products; its backward is
    ``dx1 = x1 * rowsum(r) - r @ x2``, ``dx2 = x2 * colsum(r) - r^T @ x1`` with ``r = g / d``
    (0 where d = 0). The other routes form the differences again in backward.
    """

    @staticmethod
    def forward(ctx, x1, x2, p, mm):
        ctx.x1, ctx.x2, ctx.p, ctx.mm = x1, x2, p, mm
        if mm:
            sq1 = (x1 * x1).sum(axis=-1)[..., :, None]                 # (*, P, 1)
            sq2 = (x2 * x2).sum(axis=-1)[..., None, :]                 # (*, 1, R)
            d2 = (x1 * x1.dtype.type(-2)) @ np.swapaxes(x2, -1, -2) + sq1 + sq2   # (*, P, R)
            out = np.sqrt(np.maximum(d2, 0))
        elif x1.shape[-1] == 0:
            shape = np.broadcast_shapes(x1.shape[:-2], x2.shape[:-2]) + (x1.shape[-2], x2.shape[-2])
            out = np.zeros(shape, dtype=x1.dtype)
        else:
            out = _distances(x1[..., :, None, :] - x2[..., None, :, :], p)   # (*, P, R, M) -> (*, P, R)
        ctx.out = out
        return out

    @staticmethod
    def backward(ctx, grad):
        x1, x2, p, out = ctx.x1, ctx.x2, ctx.p, ctx.out
        if p == 0 or grad.size == 0 or x1.shape[-1] == 0:
            g1, g2 = np.zeros(x1.shape, grad.dtype), np.zeros(x2.shape, grad.dtype)
        elif ctx.mm:
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.where(out == 0, grad.dtype.type(0), grad / out)   # (*, P, R)
            g1 = x1 * ratio.sum(axis=-1)[..., None] - ratio @ x2
            g2 = x2 * ratio.sum(axis=-2)[..., None] - np.swapaxes(ratio, -1, -2) @ x1
        else:
            pair = _pair_grads(x1[..., :, None, :] - x2[..., None, :, :], out, grad, p)   # (*, P, R, M)
            g1, g2 = pair.sum(axis=-2), -pair.sum(axis=-3)
        need1, need2 = ctx.needs_input_grad[:2]
        return (unbroadcast(g1, x1.shape) if need1 else None), (unbroadcast(g2, x2.shape) if need2 else None)


def _as_tensor(x) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


def cdist(x1, x2, p: float = 2.0, compute_mode: str = "use_mm_for_euclid_dist_if_necessary") -> Tensor:
    """The p-norm distance between each row of ``x1`` and each row of ``x2`` (``torch.cdist``).

    Args:
        x1 : Tensor [shape=(*B1, P, M)], floating (float32 or float64, as in PyTorch).
        x2 : Tensor [shape=(*B2, R, M)] of x1's dtype; the batch dims B1, B2 broadcast.
        p : float >= 0 or ``math.inf``. p = 0 counts the coordinates that differ; p = inf is the
            largest coordinate difference.
        compute_mode : for p = 2, ``'use_mm_for_euclid_dist_if_necessary'`` (matrix products when
            P > 25 or R > 25), ``'use_mm_for_euclid_dist'`` (always) or
            ``'donot_use_mm_for_euclid_dist'`` (never: exact differences).

    Returns:
        Tensor [shape=(*B, P, R)] of x1's dtype, differentiable in both inputs. At distance 0 (p > 0)
        a pair sends no gradient, as in PyTorch.
    """
    op = "cdist"
    x1, x2 = _as_tensor(x1), _as_tensor(x2)
    for name, t in (("x1", x1), ("x2", x2)):
        if t.ndim < 2:
            raise ValueError(f"{op}: {name} must have at least 2 dims (*, points, features), got shape {t.shape}")
        if t.dtype not in (np.float32, np.float64):
            raise TypeError(f"{op}: {name} must be float32 or float64 (as in PyTorch), got {t.dtype}")
    if x1.dtype != x2.dtype:
        raise TypeError(f"{op}: x1 and x2 must have the same dtype, got {x1.dtype} and {x2.dtype}")
    if x1.shape[-1] != x2.shape[-1]:
        raise ValueError(
            f"{op}: x1 of shape {x1.shape} and x2 of shape {x2.shape} must have the same number of "
            f"columns M (last dim): {x1.shape[-1]} and {x2.shape[-1]} differ"
        )
    try:
        np.broadcast_shapes(x1.shape[:-2], x2.shape[:-2])
    except ValueError:
        raise ValueError(
            f"{op}: the batch dims of x1 {x1.shape[:-2]} and x2 {x2.shape[:-2]} do not broadcast "
            f"(x1 of shape {x1.shape}, x2 of shape {x2.shape})"
        ) from None
    if isinstance(p, bool) or not isinstance(p, (int, float, np.integer, np.floating)):
        raise TypeError(f"{op}: p must be a number, got {p!r}")
    p = float(p)
    if not p >= 0:  # NaN too
        raise ValueError(f"{op}: p must be >= 0 (0, a positive number or inf), got {p}")
    if compute_mode not in _COMPUTE_MODES:
        raise ValueError(f"{op}: compute_mode must be one of {sorted(_COMPUTE_MODES)}, got {compute_mode!r}")
    mode = _COMPUTE_MODES[compute_mode]
    P, R = x1.shape[-2], x2.shape[-2]
    nonempty = x1._data.size > 0 and x2._data.size > 0
    mm = nonempty and p == 2 and (mode == 1 or (mode == 0 and (P > 25 or R > 25)))
    return CDist.apply(x1, x2, p=p, mm=mm)
