"""Stopping at the first NaN or Inf, with a message that says where it appeared."""
from __future__ import annotations

import numpy as np


class NonFiniteError(FloatingPointError):
    """NaN or Inf in a loss, an output, a gradient or a parameter during training.

    Attributes: ``tensor`` (what held it: 'loss', 'output', 'target', a parameter's name, ...),
    ``step`` (the time step in the sequence, or None when it is not tied to one),
    ``chunk`` (the index of the truncation chunk, i.e. of the update).
    """

    def __init__(self, message: str, tensor: str, step: int | None, chunk: int):
        super().__init__(message)
        self.tensor, self.step, self.chunk = tensor, step, chunk


def first_nonfinite_step(values: np.ndarray, valid: np.ndarray | None = None) -> tuple[int, int] | None:
    """(step, row) of the first non-finite entry of ``values`` (T, N, ...), or None.

    Only positions where ``valid`` (T, N) is true count.
    """
    bad = ~np.isfinite(values)
    if bad.ndim > 2:
        bad = bad.reshape(bad.shape[0], bad.shape[1], -1).any(axis=2)
    if valid is not None:
        bad &= valid.astype(bool)
    if not bad.any():
        return None
    t, row = np.argwhere(bad)[0]
    return int(t), int(row)


def nonfinite_arrays(named: dict[str, np.ndarray]) -> list[str]:
    """Names of the arrays in ``named`` that hold a NaN or Inf, in order."""
    return [name for name, a in named.items() if a is not None and not np.all(np.isfinite(a))]
