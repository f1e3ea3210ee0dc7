"""Embedding: a lookup table of learned vectors, one per token id."""
from __future__ import annotations

import numpy as np

from ..autograd.tensor import DEFAULT_DTYPE
from ..validation import check_int
from . import functional as F
from . import init
from .module import Module
from .parameter import Parameter


class Embedding(Module):
    """Maps integer ids to learned vectors.

    Args:
        num_embeddings : int > 0, the vocabulary size V.
        embedding_dim : int > 0, the vector size D.
        padding_idx : optional id whose vector starts at zero and never gets a gradient.

    Shape: input (*) integer -> output (*, D); ``weight`` (V, D), initialised N(0, 1).
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None,
                 dtype=None, generator=None):
        super().__init__()
        num_embeddings = check_int("Embedding", "num_embeddings", num_embeddings)
        embedding_dim = check_int("Embedding", "embedding_dim", embedding_dim)
        if padding_idx is not None:
            padding_idx = check_int("Embedding", "padding_idx", padding_idx, minimum=-num_embeddings,
                                    maximum=num_embeddings - 1) % num_embeddings
        self.num_embeddings, self.embedding_dim, self.padding_idx = num_embeddings, embedding_dim, padding_idx
        self.weight = Parameter(np.empty((num_embeddings, embedding_dim), dtype=np.dtype(dtype or DEFAULT_DTYPE)))
        init.normal_(self.weight, generator=generator)
        if padding_idx is not None:
            self.weight._data[padding_idx] = 0

    def forward(self, indices):
        return F.embedding(indices, self.weight, self.padding_idx)

    def extra_repr(self) -> str:
        extra = f", padding_idx={self.padding_idx}" if self.padding_idx is not None else ""
        return f"{self.num_embeddings}, {self.embedding_dim}{extra}"
