"""Negative log-likelihood losses of distributions with a predicted parameter: ``gaussian_nll_loss``
and ``poisson_nll_loss``, fused ops with PyTorch's arguments, broadcasting and dtypes.

They sit beside the losses of :mod:`.loss` (whose reduction helpers they share), in their own
module because that one is already long. Each is one :class:`Function` with a hand-written
backward; input, target and variance broadcast together as PyTorch's composite versions do, and
each gradient is summed back to its operand's shape (``unbroadcast``). Operands meet in one dtype
by PyTorch's promotion rule (float32 input and a float64 target Tensor give float64; a Python
number or an array never promotes a float32 input); integer operands give float32.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from ..function import Function, unbroadcast
from ..tensor import Tensor
from .loss import _check_reduction, _reduce, _scale
from .promotion import common

__all__ = ["gaussian_nll_loss", "poisson_nll_loss"]

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def _legacy_reduction(op: str, size_average, reduce, reduction: str) -> str:
    """PyTorch's rule for the deprecated ``size_average`` / ``reduce`` arguments, which override
    ``reduction`` when either is given."""
    if size_average is None and reduce is None:
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    result = "none" if not reduce else ("mean" if size_average else "sum")
    warnings.warn(f"{op}: size_average and reduce are deprecated; use reduction={result!r} instead",
                  DeprecationWarning, stacklevel=3)
    return result


def _grad_scale(grad: np.ndarray, reduction: str, shape: tuple, dtype) -> np.ndarray:
    """dL/d(per-element loss), broadcastable to the loss's ``shape``."""
    size = int(np.prod(shape, dtype=np.int64))
    return _scale(grad, reduction, size, dtype).reshape(shape if reduction == "none" else ())


def _sum_to(g: np.ndarray, loss_shape: tuple, shape: tuple) -> np.ndarray:
    """A gradient of (or broadcastable to) the loss's shape, summed to an operand's ``shape``."""
    if g.shape != loss_shape:
        g = np.broadcast_to(g, loss_shape)
    g = unbroadcast(g, shape)
    return g if g.flags.writeable else g.copy()  # never hand a read-only broadcast view to the engine


# ------------------------------------------------------------------ Gaussian
class GaussianNLL(Function):
    """Gaussian negative log-likelihood with mean x and variance v (clamped to ``eps``), d = x - t::

        loss     = 0.5 (log max(v, eps) + d^2 / max(v, eps))  [+ 0.5 log(2 pi) if full]
        dloss/dx = d / max(v, eps);    dloss/dt = -dloss/dx
        dloss/dv = 0.5 (1 / max(v, eps) - d^2 / max(v, eps)^2)

    The clamp is outside autograd in PyTorch (``var.clamp_`` under ``no_grad``), so a variance
    below ``eps`` still gets the gradient taken at ``eps``; so it does here.
    Shape: x, t, v broadcast together to the loss's shape.
    """

    @staticmethod
    def forward(ctx, x, t, v, full, eps, reduction):
        dtype = x.dtype
        vc = np.maximum(v, dtype.type(eps))
        d = x - t
        with np.errstate(divide="ignore", invalid="ignore"):
            loss = dtype.type(0.5) * (np.log(vc) + d * d / vc)
        if full:
            loss = loss + dtype.type(_HALF_LOG_2PI)
        ctx.d, ctx.vc, ctx.reduction, ctx.shapes = d, vc, reduction, (x.shape, t.shape, v.shape)
        return _reduce(loss, reduction, loss.size, loss.shape, dtype)

    @staticmethod
    def backward(ctx, grad):
        d, vc = ctx.d, ctx.vc
        dtype = d.dtype
        x_shape, t_shape, v_shape = ctx.shapes
        loss_shape = np.broadcast_shapes(d.shape, vc.shape)
        s = _grad_scale(grad, ctx.reduction, loss_shape, dtype)
        need_x, need_t, need_v = ctx.needs_input_grad
        gx = gt = gv = None
        with np.errstate(divide="ignore", invalid="ignore"):
            if need_x or need_t:
                g = s * d / vc
                gx = _sum_to(g, loss_shape, x_shape) if need_x else None
                gt = _sum_to(-g, loss_shape, t_shape) if need_t else None
            if need_v:
                gv = _sum_to(s * dtype.type(0.5) * (1 / vc - d * d / (vc * vc)), loss_shape, v_shape)
        return gx, gt, gv


def _gaussian_var(op: str, var, input_shape: tuple):
    """``var`` checked as PyTorch checks it, and reshaped for broadcasting (a Tensor, array or number)."""
    if isinstance(var, (bool, np.bool_)):
        raise TypeError(f"{op}: var must be a Tensor or a number, got {var!r}")
    if isinstance(var, (int, float, np.integer, np.floating)):
        if var < 0:
            raise ValueError(f"{op}: var has negative entry/entries: got {var}")
        return float(var)
    data = var._data if isinstance(var, Tensor) else np.asarray(var)
    if data.dtype.kind not in "biuf":
        raise TypeError(f"{op}: var must be numeric, got dtype {data.dtype}")
    if (data < 0).any():
        raise ValueError(
            f"{op}: var has negative entry/entries (smallest {data.min()}); variances must be >= 0"
        )
    shape = tuple(data.shape)
    if shape == input_shape:
        return var
    if shape == input_shape[:-1]:  # one variance per row (homoscedastic over the last dim)
        return var.unsqueeze(-1) if isinstance(var, Tensor) else data[..., None]
    if len(shape) == len(input_shape) and sum(v for i, v in zip(input_shape, shape) if i != v) == 1:
        return var  # one dim of size 1 where the input's differs (PyTorch's rule): broadcasts
    raise ValueError(
        f"{op}: var is of incorrect size: got shape {shape} for input of shape {input_shape}; expected "
        f"{input_shape}, {input_shape[:-1]}, or {input_shape} with one dim set to 1"
    )


def gaussian_nll_loss(input, target, var, full: bool = False, eps: float = 1e-6, reduction: str = "mean") -> Tensor:
    """Gaussian negative log-likelihood of ``target`` under N(``input``, ``var``) (``F.gaussian_nll_loss``).

    For regression that predicts its own uncertainty: ``0.5 (log var + (input - target)^2 / var)``,
    plus ``0.5 log(2 pi)`` if ``full``, with ``var`` clamped to at least ``eps`` for stability (the
    clamp passes gradients through, as PyTorch's does).

    Args:
        input : Tensor [shape=(N, *) or (*)], the predicted means.
        target : broadcastable to ``input`` (a Tensor that requires grad gets a gradient).
        var : Tensor of non-negative variances of ``input``'s shape (heteroscedastic), of its shape
            without the last dim, or with one dim of size 1 (homoscedastic there); or a number >= 0.
        full : bool, add the constant term.
        eps : float, the smallest variance used.
        reduction : 'none' | 'mean' | 'sum'; 'mean' averages over every element of the loss.

    Returns:
        Tensor: a scalar, or for 'none' the broadcast shape of input, target and var.
    """
    op = "gaussian_nll_loss"
    x = input if isinstance(input, Tensor) else Tensor(input)
    v = _gaussian_var(op, var, tuple(x.shape))
    _check_reduction(op, reduction)
    x, t, v = common(x, target, v, floating=True)
    try:
        np.broadcast_shapes(x.shape, np.shape(t), np.shape(v))
    except ValueError:
        raise ValueError(f"{op}: input of shape {x.shape} and target of shape {np.shape(t)} do not broadcast "
                         f"(var of shape {np.shape(v)})") from None
    return GaussianNLL.apply(x, t, v, full=bool(full), eps=float(eps), reduction=reduction)


# ------------------------------------------------------------------- Poisson
class PoissonNLL(Function):
    """Poisson negative log-likelihood of counts t with rate exp(x) (``log_input``) or x::

        log_input:  loss = exp(x) - t x               dloss/dx = exp(x) - t          dloss/dt = -x
        otherwise:  loss = x - t log(x + eps)         dloss/dx = 1 - t / (x + eps)   dloss/dt = -log(x + eps)
        full:       + t log t - t + 0.5 log(2 pi t)   where t > 1 (Stirling's log t!), with
                    dloss/dt += log t + 1 / (2 t) there.

    Shape: x and t broadcast together to the loss's shape.
    """

    @staticmethod
    def forward(ctx, x, t, log_input, full, eps, reduction):
        dtype = x.dtype
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if log_input:
                rate = np.exp(x)
                loss = rate - t * x
                ctx.rate = rate
            else:
                log_rate = np.log(x + dtype.type(eps))
                loss = x - t * log_rate
                ctx.log_rate = log_rate
            big = None
            if full:
                big = t > 1
                safe = np.where(big, t, dtype.type(2))
                stirling = safe * np.log(safe) - safe + dtype.type(0.5) * np.log(dtype.type(2 * math.pi) * safe)
                loss = loss + np.where(big, stirling, dtype.type(0))
        ctx.x, ctx.t, ctx.big, ctx.log_input, ctx.eps, ctx.reduction = x, t, big, log_input, eps, reduction
        return _reduce(loss, reduction, loss.size, loss.shape, dtype)

    @staticmethod
    def backward(ctx, grad):
        x, t, big = ctx.x, ctx.t, ctx.big
        dtype = x.dtype
        loss_shape = np.broadcast_shapes(x.shape, t.shape)
        s = _grad_scale(grad, ctx.reduction, loss_shape, dtype)
        need_x, need_t = ctx.needs_input_grad
        gx = gt = None
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if need_x:
                local = ctx.rate - t if ctx.log_input else 1 - t / (x + dtype.type(ctx.eps))
                gx = _sum_to(s * local, loss_shape, x.shape)
            if need_t:
                local = -x if ctx.log_input else -ctx.log_rate
                if big is not None:
                    safe = np.where(big, t, dtype.type(2))
                    local = local + np.where(big, np.log(safe) + dtype.type(0.5) / safe, dtype.type(0))
                gt = _sum_to(s * local, loss_shape, t.shape)
        return gx, gt


def poisson_nll_loss(input, target, log_input: bool = True, full: bool = False, size_average=None,
                     eps: float = 1e-8, reduce=None, reduction: str = "mean") -> Tensor:
    """Poisson negative log-likelihood of counts ``target`` (``F.poisson_nll_loss``).

    For count regression: ``exp(input) - target * input`` when ``input`` is the log-rate
    (``log_input=True``), else ``input - target * log(input + eps)``; with ``full``, Stirling's
    approximation of ``log(target!)`` is added where ``target > 1``.

    Args:
        input : Tensor [shape=(*)], the log-rate (``log_input``) or the rate.
        target : broadcastable to ``input``; counts (a Tensor that requires grad gets a gradient).
        log_input : bool, see above.
        full : bool, add the Stirling term.
        size_average, reduce : deprecated (PyTorch's legacy reduction arguments; they override
            ``reduction`` when given).
        eps : float, keeps ``log(input + eps)`` finite at rate 0 (``log_input=False`` only).
        reduction : 'none' | 'mean' | 'sum'; 'mean' averages over every element of the loss.

    Returns:
        Tensor: a scalar, or the broadcast shape of input and target for 'none'.
    """
    op = "poisson_nll_loss"
    reduction = _legacy_reduction(op, size_average, reduce, reduction)
    _check_reduction(op, reduction)
    x = input if isinstance(input, Tensor) else Tensor(input)
    x, t = common(x, target, floating=True)
    try:
        np.broadcast_shapes(x.shape, np.shape(t))
    except ValueError:
        raise ValueError(f"{op}: input of shape {x.shape} and target of shape {np.shape(t)} do not broadcast") from None
    return PoissonNLL.apply(x, t, log_input=bool(log_input), full=bool(full), eps=float(eps), reduction=reduction)
