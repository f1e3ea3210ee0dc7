"""Dropout: regularisation by zeroing random activations while training."""
from __future__ import annotations

from . import functional as F
from .module import Module


class Dropout(Module):
    """Zero each element with probability ``p`` in training mode, scaling the rest by 1/(1-p).

    Identity in eval mode. ``generator`` (optional) makes the masks reproducible on
    their own; otherwise they come from the generator ``rnnbp.manual_seed`` seeds.
    """

    def __init__(self, p: float = 0.5, generator=None):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: probability has to be between 0 and 1, but got {p}")
        self.p, self.generator = p, generator

    def forward(self, x):
        return F.dropout(x, self.p, self.training, generator=self.generator)

    def extra_repr(self) -> str:
        return f"p={self.p}"
