"""Reordering ops for variable-length batches: both are permutations, so backward is a gather too."""
from __future__ import annotations

import numpy as np

from ....autograd.function import Function


class PermuteAxis(Function):
    """``np.take(x, order, axis)`` for a permutation ``order``; backward takes the inverse one."""

    @staticmethod
    def forward(ctx, x, order, axis):
        ctx.inverse, ctx.axis = np.argsort(order), axis
        return np.take(x, order, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        return np.take(grad, ctx.inverse, axis=ctx.axis)


def reversal_index(lengths: np.ndarray, T: int) -> np.ndarray:
    """Time index (T, B) that reverses each column's first ``lengths[b]`` steps and keeps the rest.

    It is its own inverse, so the same index undoes the reversal.
    """
    t = np.arange(T)[:, None]
    return np.where(t < lengths[None, :], lengths[None, :] - 1 - t, t)


class ReverseWithinLengths(Function):
    """Reverse each sequence of a (T, B, F) batch within its own length (padding stays put).

    The reverse direction of a bidirectional layer reads each sequence from its
    own last step, not from the end of the padded batch.
    """

    @staticmethod
    def forward(ctx, x, index):
        ctx.index = index
        return np.take_along_axis(x, index[:, :, None], axis=0)

    @staticmethod
    def backward(ctx, grad):
        return np.take_along_axis(grad, ctx.index[:, :, None], axis=0)
