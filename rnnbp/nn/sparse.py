"""Embedding: a lookup table of learned vectors, one per token id."""
from __future__ import annotations

import numpy as np

from ..autograd.device import as_device
from ..autograd.tensor import Tensor
from ..autograd.dtypes import default_dtype
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
        max_norm, norm_type, scale_grad_by_freq, sparse : PyTorch's; only their defaults are
            supported (another value is refused by name).
        _weight : an initial (V, D) weight to use instead of N(0, 1) (``from_pretrained``);
            ``_freeze`` keeps it out of training.

    Shape: input (*) integer -> output (*, D); ``weight`` (V, D), initialised N(0, 1).
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None,
                 max_norm: float | None = None, norm_type: float = 2.0, scale_grad_by_freq: bool = False,
                 sparse: bool = False, _weight=None, _freeze: bool = False, device=None, dtype=None, generator=None):
        super().__init__()
        as_device(device)
        for name, value, default in (("max_norm", max_norm, None), ("scale_grad_by_freq", scale_grad_by_freq, False),
                                     ("sparse", sparse, False)):
            if value != default:
                raise ValueError(f"Embedding: {name}={value!r} is not supported on rnnbp (only {name}={default!r})")
        num_embeddings = check_int("Embedding", "num_embeddings", num_embeddings)
        embedding_dim = check_int("Embedding", "embedding_dim", embedding_dim)
        if padding_idx is not None:
            padding_idx = check_int("Embedding", "padding_idx", padding_idx, minimum=-num_embeddings,
                                    maximum=num_embeddings - 1) % num_embeddings
        self.num_embeddings, self.embedding_dim, self.padding_idx = num_embeddings, embedding_dim, padding_idx
        if _weight is not None:
            weight = np.asarray(_weight._data if isinstance(_weight, Tensor) else _weight)  # shared, as PyTorch
            if weight.shape != (num_embeddings, embedding_dim):
                raise ValueError(f"Embedding: _weight of shape {weight.shape} does not match "
                                 f"({num_embeddings}, {embedding_dim})")
            self.weight = Parameter(weight, requires_grad=not _freeze)
            return
        self.weight = Parameter(np.empty((num_embeddings, embedding_dim), dtype=np.dtype(dtype or default_dtype())))
        init.normal_(self.weight, generator=generator)
        if padding_idx is not None:
            self.weight._data[padding_idx] = 0

    @classmethod
    def from_pretrained(cls, embeddings, freeze: bool = True, padding_idx: int | None = None,
                        max_norm: float | None = None, norm_type: float = 2.0, scale_grad_by_freq: bool = False,
                        sparse: bool = False) -> "Embedding":
        """An Embedding whose weight is ``embeddings`` (V, D) (a Tensor or array; its memory, as in
        PyTorch); ``freeze``: no gradient."""
        shape = tuple(np.shape(embeddings._data if isinstance(embeddings, Tensor) else embeddings))
        if len(shape) != 2:
            raise ValueError(f"Embedding.from_pretrained: embeddings must be 2-D (V, D), got shape {shape}")
        return cls(shape[0], shape[1], padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse,
                   _weight=embeddings, _freeze=freeze)

    def forward(self, indices):
        return F.embedding(indices, self.weight, self.padding_idx)

    def extra_repr(self) -> str:
        extra = f", padding_idx={self.padding_idx}" if self.padding_idx is not None else ""
        return f"{self.num_embeddings}, {self.embedding_dim}{extra}"
