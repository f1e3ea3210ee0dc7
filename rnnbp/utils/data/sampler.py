"""Samplers with PyTorch's API: the order in which a DataLoader visits a map-style dataset.

A sampler is an iterable of indices (:class:`BatchSampler`: of lists of indices). The random
ones draw, when iteration starts, from their ``generator`` (an ``np.random.Generator`` such as
``rnnbp.Generator().manual_seed(0)``) or else from the default generator that
``rnnbp.manual_seed`` reseeds, so each epoch has a new order and a seeded run repeats exactly.
The streams are NumPy's, not PyTorch's: the same seed gives a different (equally random) order.
"""
from __future__ import annotations

import itertools
import numbers
from typing import Generic, Iterable, Iterator, Sequence, Sized, TypeVar

import numpy as np

from ...autograd import random as _random

T_co = TypeVar("T_co", covariant=True)

__all__ = ["Sampler", "SequentialSampler", "RandomSampler", "SubsetRandomSampler", "WeightedRandomSampler",
           "BatchSampler"]


def _positive_int(owner: str, name: str, value) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{owner}: {name} should be a positive integer value, but got {name}={value!r}")
    return int(value)


def _boolean(owner: str, name: str, value, error=ValueError) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise error(f"{owner}: {name} should be a boolean value, but got {name}={value!r}")
    return bool(value)


def _checked_generator(generator):
    """``generator`` if it is None or an ``np.random.Generator`` (refused by type otherwise, at once)."""
    if generator is not None:
        _random.get_generator(generator)
    return generator


class Sampler(Generic[T_co]):
    """Base class: subclasses define ``__iter__`` (indices) and, where they can, ``__len__``.

    ``data_source`` is accepted for compatibility and not used, as in PyTorch.
    """

    def __init__(self, data_source: Sized | None = None):
        pass

    def __iter__(self) -> Iterator[T_co]:
        raise NotImplementedError(f"{type(self).__name__}: subclasses of Sampler must implement __iter__")


class SequentialSampler(Sampler[int]):
    """0, 1, ..., len(data_source) - 1, in order."""

    def __init__(self, data_source: Sized):
        self.data_source = data_source

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        return len(self.data_source)


class RandomSampler(Sampler[int]):
    """Indices in random order: a fresh permutation each epoch, or draws with replacement.

    Args:
        data_source : the dataset (only its length is used).
        replacement : bool. False: permutations (``num_samples`` > N continues with a new
            permutation); True: ``num_samples`` independent uniform draws.
        num_samples : int > 0, how many indices per epoch (default N).
        generator : optional ``np.random.Generator``; default: the one ``rnnbp.manual_seed`` seeds.
    """

    def __init__(self, data_source: Sized, replacement: bool = False, num_samples: int | None = None,
                 generator: np.random.Generator | None = None):
        self.data_source = data_source
        self.replacement = _boolean("RandomSampler", "replacement", replacement, TypeError)
        self._num_samples = num_samples
        self.generator = _checked_generator(generator)
        _positive_int("RandomSampler", "num_samples", self.num_samples)

    @property
    def num_samples(self) -> int:
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self) -> Iterator[int]:
        n, k = len(self.data_source), self.num_samples
        if n == 0:
            raise ValueError("RandomSampler: cannot draw indices from an empty data_source")
        rng = _random.get_generator(self.generator)  # looked up now: manual_seed replaces the default
        if self.replacement:
            yield from rng.integers(0, n, size=k).tolist()
            return
        for _ in range(k // n):
            yield from rng.permutation(n).tolist()
        if k % n:
            yield from rng.permutation(n)[: k % n].tolist()

    def __len__(self) -> int:
        return self.num_samples


class SubsetRandomSampler(Sampler[int]):
    """The given ``indices`` in a random order (a new one each epoch), without replacement."""

    def __init__(self, indices: Sequence[int], generator: np.random.Generator | None = None):
        self.indices = indices
        self.generator = _checked_generator(generator)

    def __iter__(self) -> Iterator[int]:
        for i in _random.get_generator(self.generator).permutation(len(self.indices)).tolist():
            yield self.indices[i]

    def __len__(self) -> int:
        return len(self.indices)


class WeightedRandomSampler(Sampler[int]):
    """``num_samples`` indices from 0..len(weights)-1, index i with probability weights[i] / sum(weights).

    Args:
        weights : 1-D sequence of non-negative finite weights (need not sum to 1).
        num_samples : int > 0.
        replacement : True: independent draws; False: no index twice (each draw from the
            remaining weights, renormalised), so num_samples <= the number of positive weights.
        generator : optional ``np.random.Generator``.
    """

    def __init__(self, weights: Sequence[float], num_samples: int, replacement: bool = True,
                 generator: np.random.Generator | None = None):
        self.num_samples = _positive_int("WeightedRandomSampler", "num_samples", num_samples)
        self.replacement = _boolean("WeightedRandomSampler", "replacement", replacement)
        w = np.asarray(getattr(weights, "_data", weights), dtype=np.float64)
        if w.ndim != 1:
            raise ValueError(f"WeightedRandomSampler: weights should be a 1d sequence but given weights have "
                             f"shape {w.shape}")
        if not np.all(np.isfinite(w)) or np.any(w < 0) or not w.sum() > 0:
            raise ValueError("WeightedRandomSampler: weights must be finite and non-negative with a positive sum, "
                             f"got {w.tolist() if w.size <= 10 else w}")
        if not self.replacement and self.num_samples > np.count_nonzero(w):
            raise ValueError(f"WeightedRandomSampler: cannot draw {self.num_samples} samples without replacement "
                             f"from {np.count_nonzero(w)} positive weights")
        self.weights = w
        self.generator = _checked_generator(generator)

    def __iter__(self) -> Iterator[int]:
        rng = _random.get_generator(self.generator)
        p = self.weights / self.weights.sum()
        yield from rng.choice(len(p), size=self.num_samples, replace=self.replacement, p=p).tolist()

    def __len__(self) -> int:
        return self.num_samples


class BatchSampler(Sampler[list]):
    """Groups the indices of ``sampler`` (any iterable of indices) into lists of ``batch_size``.

    ``drop_last``: drop a last, shorter batch. ``list(BatchSampler(range(10), 3, False))`` is
    ``[[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]``.
    """

    def __init__(self, sampler: Sampler[int] | Iterable[int], batch_size: int, drop_last: bool):
        self.batch_size = _positive_int("BatchSampler", "batch_size", batch_size)
        self.drop_last = _boolean("BatchSampler", "drop_last", drop_last)
        self.sampler = sampler

    def __iter__(self) -> Iterator[list]:
        it = iter(self.sampler)
        while True:
            batch = list(itertools.islice(it, self.batch_size))
            if not batch or (self.drop_last and len(batch) < self.batch_size):
                return
            yield batch

    def __len__(self) -> int:
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
