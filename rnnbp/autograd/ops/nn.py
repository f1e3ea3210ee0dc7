"""Neural-network ops over one axis: softmax, log_softmax, logsumexp, and dropout."""
from __future__ import annotations

import numpy as np

from ..function import Function
from .reduce import expand_reduced, normalize_dims


def _axis(dim: int, ndim: int, op: str) -> int:
    if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool):
        raise TypeError(f"{op}: dim must be an int (one axis), got {dim!r}")
    if not -max(ndim, 1) <= dim < max(ndim, 1):
        raise IndexError(f"{op}: dim {dim} is out of range for a tensor with {ndim} dimensions")
    return dim % max(ndim, 1)


def log_softmax_array(x: np.ndarray, axis: int) -> np.ndarray:
    """x - logsumexp(x) along ``axis``, shifted by the max for stability."""
    shifted = x - x.max(axis=axis, keepdims=True)
    shifted -= np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
    return shifted


class Softmax(Function):
    """y = exp(x) / sum exp(x) along ``dim``. Backward: y * (g - sum(g * y))."""

    @staticmethod
    def forward(ctx, x, dim=-1):
        axis = _axis(dim, x.ndim, "softmax")
        e = np.exp(x - x.max(axis=axis, keepdims=True))
        e /= e.sum(axis=axis, keepdims=True)
        ctx.y, ctx.axis = e, axis
        return e

    @staticmethod
    def backward(ctx, grad):
        y = ctx.y
        return y * (grad - (grad * y).sum(axis=ctx.axis, keepdims=True))


class LogSoftmax(Function):
    """y = x - logsumexp(x) along ``dim``. Backward: g - softmax(x) * sum(g)."""

    @staticmethod
    def forward(ctx, x, dim=-1):
        axis = _axis(dim, x.ndim, "log_softmax")
        y = log_softmax_array(x, axis)
        ctx.y, ctx.axis = y, axis
        return y

    @staticmethod
    def backward(ctx, grad):
        return grad - np.exp(ctx.y) * grad.sum(axis=ctx.axis, keepdims=True)


class LogSumExp(Function):
    """log sum exp(x) along ``dim`` (an int or a tuple of ints). Backward: g * softmax(x)."""

    @staticmethod
    def forward(ctx, x, dim=-1, keepdim=False):
        dims = normalize_dims(dim, x.ndim, "logsumexp")  # () for a 0-d input: nothing to drop
        if x.size == 0:  # the log of an empty sum is -inf, as in PyTorch
            m = np.zeros([1 if i in dims else n for i, n in enumerate(x.shape)], dtype=x.dtype)
        else:
            m = x.max(axis=dims, keepdims=True)
            m = np.where(np.isfinite(m), m, 0)
        e = np.exp(x - m)
        s = e.sum(axis=dims, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):  # log 0 = -inf; inf / inf = nan, as in PyTorch's grad
            out = np.log(s) + m
            ctx.softmax = e / s
        ctx.in_shape, ctx.dims, ctx.keepdim = x.shape, dims, keepdim
        return out if keepdim or not dims else out.squeeze(dims)

    @staticmethod
    def backward(ctx, grad):
        return expand_reduced(grad, ctx.in_shape, ctx.dims, ctx.keepdim) * ctx.softmax


class Dropout(Function):
    """Zero each element with probability p and scale the rest by 1/(1-p) (inverted dropout)."""

    @staticmethod
    def forward(ctx, x, p, generator):
        keep = generator.random(x.shape, dtype=np.float32 if x.dtype == np.float32 else np.float64) >= p
        ctx.mask = keep * x.dtype.type(1.0 / (1.0 - p))
        return x * ctx.mask

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.mask
