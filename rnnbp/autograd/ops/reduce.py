"""Reductions over axes: sum, mean, max, min, var (and logsumexp in ``nn.py``).

``dim`` is None (all axes), an int or a tuple of ints; ``keepdim`` keeps the
reduced axes with size 1. Backward re-expands the gradient over the reduced axes.
"""
from __future__ import annotations

import numpy as np

from ..function import Function


def normalize_dims(dim, ndim: int, op: str) -> tuple:
    """``dim`` as a sorted tuple of non-negative axes, checked against ``ndim``."""
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, (int, np.integer)) else tuple(dim)
    out = []
    for d in dims:
        if not -max(ndim, 1) <= d < max(ndim, 1):
            raise IndexError(f"{op}: dim {d} is out of range for a tensor with {ndim} dimensions")
        out.append(int(d) % max(ndim, 1))
    return tuple(sorted(set(out))) if ndim else ()


def require_float(x: np.ndarray, op: str) -> None:
    """Refuse integer and bool inputs, as PyTorch does for mean and var (no dtype to guess)."""
    if x.dtype.kind not in "fc":
        raise TypeError(f"{op}: expected a floating-point input, got {x.dtype}; cast with .float()")


def check_not_empty(x: np.ndarray, axis: int, op: str) -> None:
    """Refuse a max/min/argmax over an empty dim (there is no element to pick), naming the op."""
    if x.ndim and x.shape[axis] == 0:
        raise IndexError(f"{op}: expected reduction dim {axis} to have non-zero size, got shape {x.shape}")


def expand_reduced(grad: np.ndarray, in_shape: tuple, dims: tuple, keepdim: bool) -> np.ndarray:
    """Broadcast a reduced gradient back over ``in_shape``."""
    if not keepdim:
        grad = np.expand_dims(grad, dims) if dims else grad
    return np.broadcast_to(grad, in_shape)


class Sum(Function):
    @staticmethod
    def forward(ctx, x, dim=None, keepdim=False):
        dims = normalize_dims(dim, x.ndim, "sum")
        ctx.in_shape, ctx.dims, ctx.keepdim = x.shape, dims, keepdim
        return np.asarray(x.sum(axis=dims, keepdims=keepdim))

    @staticmethod
    def backward(ctx, grad):
        return expand_reduced(grad, ctx.in_shape, ctx.dims, ctx.keepdim)


class Prod(Function):
    """Product over ``dim`` (one axis, or all elements flattened). Backward: each element's gradient
    is the product of the others, from exclusive cumulative products on both sides (right with zeros,
    where product / x would divide by zero)."""

    @staticmethod
    def forward(ctx, x, dim=None, keepdim=False):
        ctx.in_shape, ctx.dim, ctx.keepdim = x.shape, dim, keepdim
        ctx.x = x
        if dim is None:
            return np.asarray(np.prod(x))
        return np.asarray(np.prod(x, axis=dim, keepdims=keepdim))

    @staticmethod
    def backward(ctx, grad):
        x, dim = ctx.x, ctx.dim
        rows = x.reshape(1, -1) if dim is None else np.moveaxis(x, dim, -1)  # the product runs along the last axis
        ones = np.ones(rows.shape[:-1] + (1,), dtype=x.dtype)
        before = np.cumprod(np.concatenate([ones, rows[..., :-1]], axis=-1), axis=-1)
        after = np.cumprod(np.concatenate([ones, rows[..., :0:-1]], axis=-1), axis=-1)[..., ::-1]
        others = before * after
        if dim is None:
            return (grad * others).reshape(ctx.in_shape)
        g = grad if ctx.keepdim else np.expand_dims(grad, dim)
        return np.moveaxis(np.moveaxis(g, dim, -1) * others, -1, dim)


class Mean(Function):
    @staticmethod
    def forward(ctx, x, dim=None, keepdim=False):
        require_float(x, "mean")
        dims = normalize_dims(dim, x.ndim, "mean")
        ctx.in_shape, ctx.dims, ctx.keepdim = x.shape, dims, keepdim
        ctx.count = int(np.prod([x.shape[d] for d in dims])) if dims else 1
        if x.size and ctx.count:
            return np.asarray(x.mean(axis=dims, keepdims=keepdim))
        # The mean over nothing is NaN, as in PyTorch, without NumPy's "Mean of empty slice" warning.
        return np.asarray(np.full_like(x.sum(axis=dims, keepdims=keepdim), np.nan))

    @staticmethod
    def backward(ctx, grad):
        if ctx.count == 0:  # an empty input: its gradient is empty too
            return np.zeros(ctx.in_shape, dtype=grad.dtype)
        return expand_reduced(grad / ctx.count, ctx.in_shape, ctx.dims, ctx.keepdim)


class Var(Function):
    """Variance with ``correction`` (1 = unbiased, PyTorch's default; 0 = population)."""

    @staticmethod
    def forward(ctx, x, dim=None, keepdim=False, correction=1):
        require_float(x, "var")
        dims = normalize_dims(dim, x.ndim, "var")
        count = int(np.prod([x.shape[d] for d in dims])) if dims else 1
        centred = x - x.mean(axis=dims, keepdims=True)
        ctx.centred, ctx.dims, ctx.keepdim = centred, dims, keepdim
        ctx.denom = max(count - correction, 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = (centred * centred).sum(axis=dims, keepdims=keepdim) / ctx.denom
        return np.asarray(out, dtype=x.dtype)

    @staticmethod
    def backward(ctx, grad):
        g = grad if ctx.keepdim or not ctx.dims else np.expand_dims(grad, ctx.dims)
        one = ctx.centred.dtype.type
        # With N <= correction the scale is 2/0 = inf: the gradient is NaN (or +-inf), as in PyTorch.
        with np.errstate(divide="ignore", invalid="ignore"):
            return g * ctx.centred * (one(2) / one(ctx.denom))


class MaxMinAll(Function):
    """max()/min() over all elements; ties share the gradient evenly.

    A NaN anywhere makes the result NaN, and the gradient is shared among the NaNs (PyTorch's rule).
    """

    @staticmethod
    def forward(ctx, x, mode="max"):
        if x.size == 0:
            raise ValueError(f"{mode}: cannot reduce an empty tensor of shape {x.shape}")
        out = x.max() if mode == "max" else x.min()
        if ctx.needs_input_grad[0]:
            hits = np.isnan(x) if np.isnan(out) else x == out
            ctx.share = hits * (x.dtype.type(1) / x.dtype.type(np.count_nonzero(hits)))
        return np.asarray(out)

    @staticmethod
    def backward(ctx, grad):
        return (grad * ctx.share).astype(grad.dtype, copy=False)


class MaxMinDim(Function):
    """max(dim)/min(dim): values and indices; the gradient goes to the chosen index."""

    @staticmethod
    def forward(ctx, x, dim, keepdim=False, mode="max"):
        # A 0-d tensor reduces over dim 0 or -1 as if it had shape (1,), and stays 0-d (PyTorch).
        dims = normalize_dims(dim, x.ndim, mode)  # () for a 0-d tensor
        axis = dims[0] if dims else 0
        check_not_empty(x, axis, mode)
        ctx.in_shape = x.shape
        x = x.reshape(x.shape or (1,))
        idx = np.expand_dims(x.argmax(axis=axis) if mode == "max" else x.argmin(axis=axis), axis)
        values = np.take_along_axis(x, idx, axis=axis)
        ctx.work_shape, ctx.axis, ctx.idx = x.shape, axis, idx
        ctx.keepdim = keepdim and bool(ctx.in_shape)
        if not ctx.keepdim:
            values, idx = values.squeeze(axis), idx.squeeze(axis)
        return values, idx

    @staticmethod
    def backward(ctx, grad, _grad_idx=None):
        g = grad if ctx.keepdim else np.expand_dims(grad, ctx.axis)
        out = np.zeros(ctx.work_shape, dtype=grad.dtype)
        np.put_along_axis(out, ctx.idx, g, axis=ctx.axis)
        return out.reshape(ctx.in_shape)
