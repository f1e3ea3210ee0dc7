"""Seeded synthetic sequence tasks that test how long a recurrent net can remember.

Every task is time-major (L, N, ...) like ``nn.RNN``'s default input, returns float32
inputs, and draws from ``generator`` or else from the default generator that
``rnnbp.manual_seed`` seeds. The usual protocol draws a fresh batch per training step
(``adding_problem(batch_size, L)``) and a fixed validation set once, from its own
generator. Each task comes with the loss of the best memoryless predictor, the level a
model must beat to have remembered anything.
"""
from __future__ import annotations

import math

import numpy as np

from ..autograd import random as _random
from ..validation import check_int, check_int_range

__all__ = [
    "IGNORE_INDEX", "ADDING_BASELINE_MSE",
    "adding_problem", "copy_memory", "copy_memory_baseline", "delayed_recall", "delayed_recall_baseline",
]

IGNORE_INDEX = -100  # CrossEntropyLoss's default ignore_index: steps with this target add nothing

ADDING_BASELINE_MSE = 1.0 / 6.0
"""MSE of always answering 1.0, the mean of a sum of two U(0, 1): Var = 2 * 1/12 = 1/6 ~ 0.167.

(Le et al. 2015 quote 0.1767 for this baseline; the expectation is 1/6.)"""


def _one_hot(ids: np.ndarray, n_classes: int) -> np.ndarray:
    return np.eye(n_classes, dtype=np.float32)[ids]  # (..., n_classes)


# ------------------------------------------------------------------ adding
def _lag_range(length: int, lag) -> tuple[int, int]:
    lo, hi = check_int_range("adding_problem", "lag", lag)
    if not 2 <= lo <= hi <= length:
        raise ValueError(f"adding_problem: lag must be an int or (low, high) with 2 <= low <= high <= "
                         f"length={length}, got {lag!r}")
    return int(lo), int(hi)


def adding_problem(n: int, length: int, generator: np.random.Generator | None = None, *,
                   lag: int | tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The adding problem (Hochreiter & Schmidhuber 1997), in the form of Le et al. 2015 and Arjovsky et al. 2016.

    Each sequence has two channels: values drawn from U(0, 1), and a marker that is 1 at
    exactly two steps t1 < t2 and 0 elsewhere. The target, read after the last step, is
    the sum of the two marked values. Predicting the mean 1.0 scores
    :data:`ADDING_BASELINE_MSE` = 1/6 ~ 0.167; a model below that has remembered.

    Marker positions:

    * ``lag=None`` (the standard task): t1 uniform in the first half ``[0, L//2)``,
      t2 uniform in the second half ``[L//2, L)``.
    * ``lag=d`` or ``lag=(low, high)``: the *dependency length* ``L - t1`` (steps from
      the first marker to the end, both included) is exactly ``d``, or uniform in
      ``[low, high]``; t2 is uniform in ``(t1, L)``. A truncated backward pass reaching
      k2 steps back from the last step (steps ``L-k2 .. L-1``) sees the first marker
      exactly when ``k2 >= L - t1``. That alone does not make k2 < lag unlearnable: t2
      often lies inside the window, and a storing rule learnt there also acts at t1
      (``demos/long_memory.py`` keeps t2 out of the window to show the limit). The
      standard task has lags in ``[L - L//2 + 1, L]``.

    Args:
        n : int > 0. Sequences (the batch size N).
        length : int >= 2. Steps per sequence (L).
        generator : np.random.Generator or None (the default generator).
        lag : None, int, or (int, int) with 2 <= low <= high <= length.

    Returns:
        inputs : np.ndarray [shape=(L, N, 2), dtype=float32]; channel 0 the values,
            channel 1 the markers.
        targets : np.ndarray [shape=(N,), dtype=float32].
    """
    n = check_int("adding_problem", "n", n, 1)
    length = check_int("adding_problem", "length", length, 2)
    rng = _random.get_generator(generator)
    values = rng.random((length, n), dtype=np.float32)  # (L, N)
    if lag is None:
        t1 = rng.integers(0, length // 2, size=n)
        t2 = rng.integers(length // 2, length, size=n)
    else:
        lo, hi = _lag_range(length, lag)
        t1 = length - rng.integers(lo, hi + 1, size=n)
        t2 = rng.integers(t1 + 1, length)  # per-sequence bounds: uniform in (t1, L)
    cols = np.arange(n)
    markers = np.zeros((length, n), dtype=np.float32)
    markers[t1, cols] = 1.0
    markers[t2, cols] = 1.0
    targets = values[t1, cols] + values[t2, cols]  # (N,), float32
    return np.stack([values, markers], axis=-1), targets


# -------------------------------------------------------------------- copy
def copy_memory(n: int, delay: int, n_symbols: int = 8, length: int = 10,
                generator: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The copy-memory task (Hochreiter & Schmidhuber 1997; layout of Arjovsky et al. 2016).

    Class ids: 0 blank, 1..n_symbols data symbols, n_symbols + 1 the delimiter. With
    T = delay + 2 * length steps::

        input : s_1 .. s_length | 0 x (delay - 1) | delimiter | 0 x length
        target: 0 x (delay + length)                          | s_1 .. s_length

    The symbols are uniform over 1..n_symbols; the model must reproduce them after the
    delimiter, ``delay + length`` steps after it first saw each one. Targets never hold
    the delimiter, so ``n_symbols + 1`` output classes suffice (``n_symbols + 2``, the
    input size, also works). The memoryless baseline is :func:`copy_memory_baseline`.

    Args:
        n : int > 0. Sequences (N).
        delay : int > 0. Arjovsky et al.'s T: blanks between the symbols and the
            delimiter, plus one.
        n_symbols : int > 0.
        length : int > 0. Symbols to copy.
        generator : np.random.Generator or None (the default generator).

    Returns:
        inputs : np.ndarray [shape=(T, N, n_symbols + 2), dtype=float32], one-hot.
        targets : np.ndarray [shape=(T, N), dtype=int64], class ids in 0..n_symbols.
    """
    n = check_int("copy_memory", "n", n, 1)
    delay = check_int("copy_memory", "delay", delay, 1)
    n_symbols = check_int("copy_memory", "n_symbols", n_symbols, 1)
    length = check_int("copy_memory", "length", length, 1)
    steps = delay + 2 * length
    symbols = _random.get_generator(generator).integers(1, n_symbols + 1, size=(length, n))  # (length, N)
    ids = np.zeros((steps, n), dtype=np.int64)
    ids[:length] = symbols
    ids[length + delay - 1] = n_symbols + 1
    targets = np.zeros((steps, n), dtype=np.int64)
    targets[delay + length:] = symbols
    return _one_hot(ids, n_symbols + 2), targets


def copy_memory_baseline(delay: int, n_symbols: int = 8, length: int = 10) -> float:
    """Mean cross-entropy per step (nats) of the best memoryless strategy on :func:`copy_memory`.

    It outputs blank for the first ``delay + length`` steps (loss 0) and a uniform guess
    over the symbols for the last ``length``: ``length * log(n_symbols) / (delay + 2 * length)``.
    """
    delay = check_int("copy_memory_baseline", "delay", delay, 1)
    n_symbols = check_int("copy_memory_baseline", "n_symbols", n_symbols, 1)
    length = check_int("copy_memory_baseline", "length", length, 1)
    return length * math.log(n_symbols) / (delay + 2 * length)


# ---------------------------------------------------------------- recall
def delayed_recall(n: int, length: int, delay: int, n_symbols: int,
                   generator: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Output at every step the symbol seen ``delay`` steps earlier: a memory of fixed span.

    Unlike the copy task, every step after the first ``delay`` is scored, so the
    gradient signal is dense and the required span is exactly ``delay`` (``delay=0``
    is plain classification of the current input). The first ``delay`` targets are
    :data:`IGNORE_INDEX` (-100), which ``nn.CrossEntropyLoss`` skips by default.
    Memoryless baseline: :func:`delayed_recall_baseline`.

    Args:
        n : int > 0. Sequences (N).
        length : int > delay. Steps per sequence (L).
        delay : int >= 0.
        n_symbols : int >= 2. Symbols, uniform over 0..n_symbols - 1.
        generator : np.random.Generator or None (the default generator).

    Returns:
        inputs : np.ndarray [shape=(L, N, n_symbols), dtype=float32], one-hot.
        targets : np.ndarray [shape=(L, N), dtype=int64]; ``targets[t] = symbol[t - delay]``
            for t >= delay, else -100.
    """
    n = check_int("delayed_recall", "n", n, 1)
    delay = check_int("delayed_recall", "delay", delay, 0)
    length = check_int("delayed_recall", "length", length, delay + 1)
    n_symbols = check_int("delayed_recall", "n_symbols", n_symbols, 2)
    symbols = _random.get_generator(generator).integers(0, n_symbols, size=(length, n))  # (L, N)
    targets = np.full((length, n), IGNORE_INDEX, dtype=np.int64)
    targets[delay:] = symbols[:length - delay]
    return _one_hot(symbols, n_symbols), targets


def delayed_recall_baseline(n_symbols: int) -> float:
    """Mean cross-entropy (nats) over the scored steps of :func:`delayed_recall` without memory: ``log(n_symbols)``.

    Holds for ``delay >= 1``; at ``delay=0`` the task needs no memory and can reach 0.
    """
    return math.log(check_int("delayed_recall_baseline", "n_symbols", n_symbols, 2))
