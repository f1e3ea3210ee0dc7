"""Variable-length sequences: a ragged set, bucketing by length, zero-padding into time-major arrays.

:class:`Features` holds N sequences of shapes (T_i, F) as one array of frames plus offsets.

Padding a batch to its longest sequence wastes the steps of the shorter ones; sorting the
whole set by length would make every epoch's batches the same. Bucketing does both halves
(torchtext's ``BucketIterator``, AllenNLP's ``BucketBatchSampler``): one epoch is::

    order   = generator.permutation(N)                           # shuffle
    pools   = order cut into pools of pool_batches * batch_size  # the last may be shorter
    batches = [pool sorted by length (stable), cut into batch_size] for every pool
    batches = batches in an order drawn from generator           # shuffle again

so a batch holds sequences of similar lengths, different ones each epoch. Every item is in
exactly one batch (unless ``drop_last`` drops the one short batch). A batch is padded with
zeros into ``x`` of shape (T, B, F), T its longest length, and ``lengths`` (B,): feed both to a
recurrent layer, ``nn.LSTM(...)(x, lengths=lengths)``, whose padded steps then change nothing.
"""
from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np

from ..autograd import random as _random

__all__ = ["Features", "bucket_batches", "pad_sequences", "padded_batches"]


# ------------------------------------------------------------ ragged sets
def _as_index(index, n: int, where: str) -> np.ndarray:
    """A 1-D int64 index array into n items, from indices, a boolean mask or a slice."""
    if isinstance(index, slice):
        return np.arange(n, dtype=np.int64)[index]
    idx = np.asarray(index)
    if idx.dtype == bool:
        if idx.shape != (n,):
            raise ValueError(f"{where}: a boolean mask must have shape ({n},), got {idx.shape}")
        return np.flatnonzero(idx).astype(np.int64)
    if idx.size == 0:
        return np.zeros(0, dtype=np.int64)
    if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(f"{where}: expected a 1-D array of integer indices, got shape {idx.shape} "
                         f"and dtype {idx.dtype}")
    if idx.min() < -n or idx.max() >= n:
        raise ValueError(f"{where}: indices must be in [-{n}, {n}), got values from {idx.min()} to {idx.max()}")
    return np.where(idx < 0, idx + n, idx).astype(np.int64)


class Features:
    """A ragged set of N utterances' features, stored as one array of frames and offsets.

    Utterance ``i`` is ``frames[offsets[i]:offsets[i + 1]]``, of shape (T_i, F). This
    layout needs no pickle (``np.savez`` stores it) and indexing many utterances is one
    gather, not a Python loop.

    Args:
        frames : np.ndarray [shape=(sum T_i, F)]. Cast to float32.
        offsets : np.ndarray [shape=(N + 1,)], integers, starting at 0, non-decreasing,
            ending at ``len(frames)``.
    """

    def __init__(self, frames: np.ndarray, offsets: np.ndarray):
        frames = np.asarray(frames)
        offsets = np.asarray(offsets)
        if frames.ndim != 2:
            raise ValueError(f"Features: frames must be 2-D (sum of T_i, F), got shape {frames.shape}")
        if offsets.ndim != 1 or len(offsets) < 1 or (offsets.size and not np.issubdtype(offsets.dtype, np.integer)):
            raise ValueError(f"Features: offsets must be a 1-D integer array of N + 1 entries, "
                             f"got shape {offsets.shape} and dtype {offsets.dtype}")
        if offsets[0] != 0 or offsets[-1] != len(frames) or np.any(np.diff(offsets) < 0):
            raise ValueError(f"Features: offsets must start at 0, never decrease and end at len(frames)="
                             f"{len(frames)}; got {offsets[0]} ... {offsets[-1]}")
        self.frames = np.ascontiguousarray(frames, dtype=np.float32)
        self.offsets = offsets.astype(np.int64)

    @classmethod
    def from_arrays(cls, arrays: Sequence[np.ndarray], n_features: int | None = None) -> "Features":
        """Concatenate utterances of shapes (T_i, F) (F the same for all).

        Args:
            n_features : F, needed only when ``arrays`` is empty.
        """
        arrays = [np.asarray(a) for a in arrays]
        bad = [(i, a.shape) for i, a in enumerate(arrays) if a.ndim != 2]
        if bad:
            raise ValueError(f"Features.from_arrays: every utterance must be 2-D (T_i, F); got {bad[:5]}")
        widths = sorted({a.shape[1] for a in arrays})
        if len(widths) > 1:
            raise ValueError(f"Features.from_arrays: utterances have different feature sizes {widths}")
        if not arrays:
            if n_features is None:
                raise ValueError("Features.from_arrays: got no utterances; pass n_features for an empty set")
            return cls(np.zeros((0, n_features), np.float32), np.zeros(1, np.int64))
        offsets = np.concatenate([[0], np.cumsum([len(a) for a in arrays])]).astype(np.int64)
        return cls(np.concatenate(arrays, axis=0), offsets)

    @property
    def lengths(self) -> np.ndarray:
        """T_i of every utterance: np.ndarray [shape=(N,), dtype=int64]."""
        return np.diff(self.offsets)

    @property
    def n_features(self) -> int:
        """F."""
        return self.frames.shape[1]

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> np.ndarray:
        """Utterance ``i`` as a (T_i, F) view."""
        if not isinstance(i, (int, np.integer)):
            raise TypeError(f"Features: feats[i] takes one integer index, got {type(i).__name__}; "
                            "use feats.subset(index) for several")
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"Features: index {i} is out of range for {n} utterances")
        i = int(i) % n
        return self.frames[self.offsets[i]:self.offsets[i + 1]]

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __repr__(self) -> str:
        lengths = self.lengths
        span = f", T from {lengths.min()} to {lengths.max()}" if len(lengths) else ""
        return f"Features({len(self)} utterances, F={self.n_features}{span})"

    def to_list(self) -> list[np.ndarray]:
        """The utterances as a list of (T_i, F) views."""
        return list(self)

    def subset(self, index) -> "Features":
        """The utterances at ``index`` (integer indices, a boolean mask or a slice), in that order, copied."""
        idx = _as_index(index, len(self), "Features.subset")
        lengths = self.lengths[idx]
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        src = np.repeat(self.offsets[idx] - offsets[:-1], lengths) + np.arange(offsets[-1])  # frame rows to gather
        return Features(self.frames[src], offsets)


# -------------------------------------------------------------- bucketing
def _check_positive(name: str, value, where: str) -> None:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{where}: {name} must be an int > 0, got {value!r}")


def bucket_batches(lengths, batch_size: int, *, pool_batches: int | None = 10, shuffle: bool = True,
                   drop_last: bool = False, generator: np.random.Generator | None = None) -> list[np.ndarray]:
    """The batches of one epoch as index arrays, each holding sequences of similar lengths.

    Args:
        lengths : array-like [shape=(N,)], integers >= 0. The sequences' lengths.
        batch_size : int > 0.
        pool_batches : int > 0 or None. Batches per pool sorted by length: larger pools pad
            less but vary less between epochs. None: one pool of all N (the least padding;
            for evaluation). On FSDD's frame counts with batches of 32, real steps are 51 %
            of the padded ones for pool_batches=1 (random batches), 84 % for 10, 94 % for 50
            and 97 % for None.
        shuffle : bool. Shuffle items before pooling and the batch order after. False keeps
            the given order of items and pools (no randomness).
        drop_last : bool. Drop the one batch smaller than ``batch_size``, if any.
        generator : np.random.Generator or None (the generator ``rnnbp.manual_seed`` seeds).

    Returns:
        list of np.ndarray [dtype=int64], indices into ``lengths``; within a batch sorted
        by length, longest last. Without ``drop_last`` their union is ``range(N)``, each once.
    """
    lengths = np.asarray(lengths)
    if lengths.ndim != 1 or (lengths.size and not np.issubdtype(lengths.dtype, np.integer)):
        raise ValueError(f"bucket_batches: lengths must be a 1-D integer array, got shape {lengths.shape} "
                         f"and dtype {lengths.dtype}")
    if lengths.size and lengths.min() < 0:
        raise ValueError(f"bucket_batches: lengths must be >= 0, got {lengths.min()}")
    _check_positive("batch_size", batch_size, "bucket_batches")
    if pool_batches is not None:
        _check_positive("pool_batches", pool_batches, "bucket_batches")
    n = len(lengths)
    rng = _random.get_generator(generator) if shuffle else None
    order = rng.permutation(n) if shuffle else np.arange(n)
    pool = n if pool_batches is None else pool_batches * batch_size
    batches = []
    for start in range(0, n, max(pool, 1)):
        members = order[start:start + pool]
        members = members[np.argsort(lengths[members], kind="stable")]  # ties keep the shuffled order
        batches.extend(members[i:i + batch_size].astype(np.int64) for i in range(0, len(members), batch_size))
    if drop_last and batches and len(batches[-1]) < batch_size:
        batches.pop()  # pools are whole batches, so only the very last can be short
    if shuffle:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


# ---------------------------------------------------------------- padding
def pad_sequences(sequences, index=None, *, dtype=np.float32) -> tuple[np.ndarray, np.ndarray]:
    """Zero-pad sequences of different lengths into one time-major array.

    Args:
        sequences : Features, or a sequence of arrays [shape=(T_i, F)].
        index : integer indices, a boolean mask or a slice choosing the sequences (in that
            order); None for all.
        dtype : the output's dtype (float32).

    Returns:
        x : np.ndarray [shape=(T, B, F)], T = max T_i (0 for no or only empty sequences);
            ``x[t, b] = sequences[index[b]][t]`` for t < T_b, zero after.
        lengths : np.ndarray [shape=(B,), dtype=int64].
    """
    feats = sequences if isinstance(sequences, Features) else Features.from_arrays(list(sequences))
    idx = np.arange(len(feats), dtype=np.int64) if index is None else _as_index(index, len(feats), "pad_sequences")
    lengths = feats.lengths[idx]
    steps = int(lengths.max(initial=0))
    x = np.zeros((steps, len(idx), feats.n_features), dtype=dtype)
    t = np.arange(steps)[:, None]
    valid = t < lengths[None, :]  # (T, B)
    x[valid] = feats.frames[(feats.offsets[idx][None, :] + t)[valid]]  # one gather, no loop over items
    return x, lengths


def padded_batches(features, *arrays: np.ndarray, batch_size: int, pool_batches: int | None = 10,
                   shuffle: bool = True, drop_last: bool = False,
                   generator: np.random.Generator | None = None) -> Iterator[tuple[np.ndarray, ...]]:
    """One epoch of bucketed, padded batches: ``(x, lengths, *aligned slices of arrays)``.

    The batches are drawn (and ``generator`` advanced) when this is called, not at the
    first ``next()``; see :func:`bucket_batches` for the order and :func:`pad_sequences`
    for the padding.

    Args:
        features : Features or a sequence of arrays [shape=(T_i, F)], N of them.
        *arrays : np.ndarray [shape=(N, ...)], e.g. the labels, indexed with each batch.
        batch_size, pool_batches, shuffle, drop_last, generator : as for :func:`bucket_batches`.

    Yields:
        x : np.ndarray [shape=(T, B, F), dtype=float32], zero after each sequence's end.
        lengths : np.ndarray [shape=(B,), dtype=int64].
        then ``a[idx]`` for each of ``arrays``.
    """
    feats = features if isinstance(features, Features) else Features.from_arrays(list(features))
    arrays = tuple(np.asarray(a) for a in arrays)
    sizes = [len(a) if a.ndim else None for a in arrays]
    if any(s != len(feats) for s in sizes):
        raise ValueError(f"padded_batches: every array must have the {len(feats)} items of features, "
                         f"got lengths {sizes}")
    batches = bucket_batches(feats.lengths, batch_size, pool_batches=pool_batches, shuffle=shuffle,
                             drop_last=drop_last, generator=generator)
    return ((*pad_sequences(feats, idx), *(a[idx] for a in arrays)) for idx in batches)
