"""Datasets with PyTorch's API: map-style and iterable, tensors, subsets, concatenation, random_split.

A map-style :class:`Dataset` answers ``dataset[i]`` and ``len(dataset)``; an
:class:`IterableDataset` is a stream (``iter(dataset)``). :class:`~.dataloader.DataLoader`
turns either into batches.
"""
from __future__ import annotations

import bisect
import itertools
import math
import numbers
import warnings
from typing import Generic, Iterable, Iterator, Sequence, TypeVar

import numpy as np

from ...autograd import random as _random

T_co = TypeVar("T_co", covariant=True)

__all__ = ["Dataset", "IterableDataset", "TensorDataset", "Subset", "ConcatDataset", "ChainDataset", "random_split"]


class Dataset(Generic[T_co]):
    """A map-style dataset: subclasses define ``__getitem__(index)`` and usually ``__len__()``.

    ``Dataset[T]`` may be written in annotations and base lists (``class Words(Dataset[str])``),
    as in PyTorch. ``a + b`` is ``ConcatDataset([a, b])``.
    """

    def __getitem__(self, index) -> T_co:
        raise NotImplementedError(f"{type(self).__name__}: subclasses of Dataset must implement __getitem__")

    def __add__(self, other: "Dataset[T_co]") -> "ConcatDataset[T_co]":
        return ConcatDataset([self, other])


class IterableDataset(Dataset[T_co]):
    """A dataset that is a stream of samples: subclasses define ``__iter__``.

    rnnbp's DataLoader reads it in the calling process, so ``get_worker_info()`` is None inside
    ``__iter__`` and the stream is read once per epoch (no per-worker sharding is needed).
    ``a + b`` is ``ChainDataset([a, b])``.
    """

    def __iter__(self) -> Iterator[T_co]:
        raise NotImplementedError(f"{type(self).__name__}: subclasses of IterableDataset must implement __iter__")

    def __add__(self, other: "IterableDataset[T_co]") -> "ChainDataset":
        return ChainDataset([self, other])


def _shape(t) -> tuple:
    shape = getattr(t, "shape", None)
    return tuple(np.shape(t) if shape is None else shape)


def _leading_size(t, i: int) -> int:
    shape = _shape(t)
    if len(shape) == 0:
        raise ValueError(f"TensorDataset: tensor {i} is 0-dimensional; every tensor needs a first dimension "
                         "that indexes the samples")
    return int(shape[0])


class TensorDataset(Dataset):
    """Samples are rows: ``dataset[i] = tuple(t[i] for t in tensors)``.

    Args:
        *tensors : Tensors (or NumPy arrays) with the same size N along dim 0.

    Shape: each tensor (N, *) -> each sample a tuple of (*)-shaped rows.
    """

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset: needs at least one tensor")
        sizes = [_leading_size(t, i) for i, t in enumerate(tensors)]
        if any(s != sizes[0] for s in sizes):
            shapes = ", ".join(str(_shape(t)) for t in tensors)
            raise ValueError(f"TensorDataset: size mismatch between tensors: every tensor needs the same size along "
                             f"dim 0 (one row per sample), got shapes {shapes}")
        self.tensors = tensors

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __len__(self) -> int:
        return _leading_size(self.tensors[0], 0)


class Subset(Dataset[T_co]):
    """The samples of ``dataset`` at ``indices``, in that order: ``subset[i] = dataset[indices[i]]``.

    Differs from PyTorch 2.13 only in being more lenient: a subclass that overrides
    ``__getitem__`` but not ``__getitems__`` works (the DataLoader then goes through
    ``__getitem__``) instead of raising NotImplementedError.
    """

    def __init__(self, dataset: Dataset[T_co], indices: Sequence[int]):
        self.dataset, self.indices = dataset, indices

    def __getitem__(self, idx):
        if isinstance(idx, list):
            return self.dataset[[self.indices[i] for i in idx]]
        return self.dataset[self.indices[idx]]

    def __getitems__(self, indices: list) -> list:
        """The samples at a batch of positions (what the DataLoader asks for)."""
        if type(self).__getitem__ is not Subset.__getitem__:  # a subclass's own indexing wins
            return [self[i] for i in indices]
        if callable(getattr(self.dataset, "__getitems__", None)):
            return self.dataset.__getitems__([self.indices[i] for i in indices])
        return [self.dataset[self.indices[i]] for i in indices]

    def __len__(self) -> int:
        return len(self.indices)


class ConcatDataset(Dataset[T_co]):
    """Map-style datasets one after another: indices 0..len(a)-1 are ``a``'s, then ``b``'s, ...

    Attributes:
        datasets : the list of datasets.
        cumulative_sizes : running totals of their lengths.
    """

    @staticmethod
    def cumsum(sequence) -> list:
        return list(itertools.accumulate(len(d) for d in sequence))

    def __init__(self, datasets: Iterable[Dataset]):
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset: datasets should not be an empty iterable")
        for i, d in enumerate(self.datasets):
            if isinstance(d, IterableDataset):
                raise TypeError(f"ConcatDataset does not support IterableDataset (dataset {i} is a "
                                f"{type(d).__name__}); chain streams with ChainDataset")
        self.cumulative_sizes = self.cumsum(self.datasets)

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, idx):
        n = len(self)
        if idx < 0:
            if -idx > n:
                raise ValueError(f"ConcatDataset: absolute value of index {idx} should not exceed dataset length {n}")
            idx = n + idx
        if idx >= n:
            raise IndexError(f"ConcatDataset: index {idx} is out of range for {n} samples")
        which = bisect.bisect_right(self.cumulative_sizes, idx)
        start = self.cumulative_sizes[which - 1] if which else 0
        return self.datasets[which][idx - start]


class ChainDataset(IterableDataset):
    """Iterable datasets one after another, chained on the fly."""

    def __init__(self, datasets: Iterable[Dataset]):
        self.datasets = datasets

    def _checked(self):
        for i, d in enumerate(self.datasets):
            if not isinstance(d, IterableDataset):
                raise TypeError(f"ChainDataset only supports IterableDataset; dataset {i} is a {type(d).__name__}")
            yield d

    def __iter__(self):
        for d in self._checked():
            yield from d

    def __len__(self) -> int:
        return sum(len(d) for d in self._checked())


def _split_lengths(n: int, lengths: Sequence) -> list:
    """Integer lengths, or fractions summing to 1 turned into counts as PyTorch does."""
    lengths = list(lengths)
    for i, length in enumerate(lengths):
        if not isinstance(length, numbers.Real) or isinstance(length, bool) or length < 0:
            raise ValueError(f"random_split: length at index {i} must be a non-negative int or a fraction, "
                             f"got {length!r}")
    total = sum(lengths)
    if math.isclose(total, 1) and total <= 1:
        for i, frac in enumerate(lengths):
            if frac > 1:
                raise ValueError(f"random_split: fraction at index {i} is not between 0 and 1, got {frac}")
        counts = [int(math.floor(n * frac)) for frac in lengths]
        for i in range(n - sum(counts)):  # the remainder, one each, round-robin
            counts[i % len(counts)] += 1
        for i, c in enumerate(counts):
            if c == 0:
                warnings.warn(f"Length of split at index {i} is 0. This might result in an empty dataset.",
                              stacklevel=3)
        return counts
    for i, length in enumerate(lengths):
        if length != int(length):
            raise ValueError(f"random_split: lengths must be integers (or fractions summing to 1), "
                             f"got {length!r} at index {i} in {lengths}")
    counts = [int(length) for length in lengths]
    if sum(counts) != n:
        raise ValueError(f"random_split: sum of input lengths {counts} is {sum(counts)}, which does not equal the "
                         f"length of the input dataset ({n}); give lengths summing to {n} or fractions summing to 1")
    return counts


def random_split(dataset: Dataset, lengths: Sequence, generator: np.random.Generator | None = None) -> list:
    """Split ``dataset`` at random into non-overlapping :class:`Subset`s of the given lengths.

    Args:
        dataset : a map-style dataset of N samples.
        lengths : ints summing to N, or fractions summing to 1 (each split then gets
            floor(N * fraction) samples and the remainder is dealt out one at a time from the
            first split on, as in PyTorch 2.x).
        generator : ``np.random.Generator`` (e.g. ``rnnbp.Generator().manual_seed(42)``) for
            the permutation; None draws from the default generator that ``rnnbp.manual_seed`` seeds.

    Returns:
        a list of Subsets, one per length, together covering each index exactly once.
    """
    counts = _split_lengths(len(dataset), lengths)
    order = _random.get_generator(generator).permutation(sum(counts)).tolist()
    return [Subset(dataset, order[end - c:end]) for end, c in zip(itertools.accumulate(counts), counts)]
