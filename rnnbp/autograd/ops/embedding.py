"""Embedding lookup: rows of a weight matrix chosen by integer indices."""
from __future__ import annotations

import numpy as np

from ..function import Function


class EmbeddingLookup(Function):
    """out[...] = weight[indices[...]]; backward scatters (and sums) rows into dW.

    The row ``padding_idx`` gets no gradient, as in PyTorch; a negative one counts from the end
    (-1 is row V-1).
    Shape: indices (*) int, weight (V, D) -> (*, D).
    """

    @staticmethod
    def forward(ctx, indices, weight, padding_idx=None):
        if indices.dtype.kind not in "iu":
            raise TypeError(f"embedding: expected integer indices, got dtype {indices.dtype}")
        if padding_idx is not None:
            n = weight.shape[0]
            if not -n <= padding_idx < n:
                raise ValueError(
                    f"embedding: padding_idx {padding_idx} must be within {-n} to {n - 1} for {n} embeddings"
                )
            padding_idx = int(padding_idx) % n
        if indices.size and (indices.min() < 0 or indices.max() >= weight.shape[0]):
            bad = indices.max() if indices.max() >= weight.shape[0] else indices.min()
            raise IndexError(f"embedding: index {int(bad)} is out of range for {weight.shape[0]} embeddings")
        ctx.indices, ctx.shape, ctx.padding_idx = indices, weight.shape, padding_idx
        return weight[indices]

    @staticmethod
    def backward(ctx, grad):
        flat_idx = ctx.indices.reshape(-1)
        flat_grad = grad.reshape(-1, ctx.shape[1])
        if ctx.padding_idx is not None:
            keep = flat_idx != ctx.padding_idx
            flat_idx, flat_grad = flat_idx[keep], flat_grad[keep]
        out = np.zeros(ctx.shape, dtype=grad.dtype)
        np.add.at(out, flat_idx, flat_grad)
        return None, out
