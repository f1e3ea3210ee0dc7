"""Per-element sequence losses, the form the engine masks by length and averages."""
from __future__ import annotations

from ..nn import functional as F


def sequence_cross_entropy(logits, targets):
    """Cross-entropy at every step and row. Shape: logits (n, N, C), targets (n, N) ints -> (n, N).

    Targets equal to -100 (``ignore_index``) give 0; mask them out with the engine's ``loss_mask``
    so that they do not count in the mean either.
    """
    n, N, C = logits.shape
    return F.cross_entropy(logits.reshape(n * N, C), targets.reshape(n * N), reduction="none").reshape(n, N)


def sequence_mse(outputs, targets):
    """Squared error at every step and row, summed over trailing feature axes. Shape: (n, N, ...) -> (n, N)."""
    err = (outputs - targets) ** 2
    return err.reshape(err.shape[0], err.shape[1], -1).sum(dim=2)
