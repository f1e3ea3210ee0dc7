"""Mini-batches over aligned arrays, in a seeded order."""
from __future__ import annotations

from typing import Iterator

import numpy as np

from ..autograd import random as _random
from ..validation import check_int


def batches(*arrays: np.ndarray, batch_size: int, shuffle: bool = True, drop_last: bool = False,
            generator: np.random.Generator | None = None) -> Iterator[tuple[np.ndarray, ...]]:
    """Yield tuples of aligned slices of ``arrays`` (all of the same length N).

    Args:
        *arrays : np.ndarray [shape=(N, ...)], indexed together.
        batch_size : int > 0.
        shuffle : visit the items in a random order drawn from ``generator``
            (default: the generator ``rnnbp.manual_seed`` seeds).
        drop_last : skip the last batch when it is smaller than ``batch_size``.
    """
    if not arrays:
        raise ValueError("batches: expected at least one array")
    n = len(arrays[0])
    lengths = [len(a) for a in arrays]
    if any(m != n for m in lengths):
        raise ValueError(f"batches: all arrays must have the same length, got {lengths}")
    check_int("batches", "batch_size", batch_size)
    order = _random.get_generator(generator).permutation(n) if shuffle else np.arange(n)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        idx = order[start:start + batch_size]
        yield tuple(a[idx] for a in arrays)
