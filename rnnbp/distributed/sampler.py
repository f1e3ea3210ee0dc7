"""DistributedSampler with PyTorch's API: each rank reads its own share of a map-style dataset."""
from __future__ import annotations

import math
import numbers
from typing import Iterator, Sized

import numpy as np

from ..utils.data.sampler import Sampler, _boolean
from . import mpi

__all__ = ["DistributedSampler"]


class DistributedSampler(Sampler[int]):
    """The indices of rank ``rank``'s shard of ``dataset``: every ``num_replicas``-th of one order.

    Every rank draws the same order (a permutation from ``(seed, epoch)`` when ``shuffle``), pads
    it (or cuts it, ``drop_last``) to a multiple of ``num_replicas``, and takes the positions
    ``rank, rank + num_replicas, ...``. The shards are disjoint (apart from the padding), cover the
    dataset, and have the same length, so every rank makes the same number of batches. With a
    DataLoader of ``batch_size=b`` on each of K ranks, batch ``i`` of all ranks together holds
    exactly the items of batch ``i`` of one process reading the same order with ``batch_size=K*b``.

    Call ``set_epoch(epoch)`` before each epoch: the order depends on it, as in PyTorch. The
    order is NumPy's (``np.random.default_rng([seed, epoch])``), not PyTorch's.

    Args:
        dataset : anything with ``len`` (only its length is used).
        num_replicas : int > 0, the number of ranks; default ``rnnbp.distributed.get_world_size()``.
        rank : int in [0, num_replicas); default ``rnnbp.distributed.get_rank()``.
        shuffle : bool, a new permutation each epoch (default True); False keeps 0, 1, 2, ...
        seed : int, the same on every rank (default 0).
        drop_last : bool. False (default): repeat the first items to pad the order to a multiple
            of num_replicas. True: drop its tail instead (no item read twice in an epoch).

    Example::

        sampler = DistributedSampler(train_set, shuffle=True, seed=0)
        loader = DataLoader(train_set, batch_size=16, sampler=sampler)
        for epoch in range(epochs):
            sampler.set_epoch(epoch)
            for x, y in loader:
                ...
    """

    def __init__(self, dataset: Sized, num_replicas: int | None = None, rank: int | None = None,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False):
        if num_replicas is None:
            num_replicas = mpi.get_world_size()
        if rank is None:
            rank = mpi.get_rank()
        if not isinstance(num_replicas, numbers.Integral) or isinstance(num_replicas, bool) or num_replicas <= 0:
            raise ValueError(f"DistributedSampler: num_replicas should be a positive integer, got {num_replicas!r}")
        if not isinstance(rank, numbers.Integral) or isinstance(rank, bool) or not 0 <= rank < num_replicas:
            raise ValueError(f"DistributedSampler: Invalid rank {rank!r}, rank should be in the interval "
                             f"[0, {num_replicas - 1}]")
        if not isinstance(seed, numbers.Integral) or isinstance(seed, bool) or seed < 0:
            raise ValueError(f"DistributedSampler: seed should be an integer >= 0, got {seed!r}")
        try:
            n = len(dataset)
        except TypeError:
            raise TypeError(f"DistributedSampler: dataset must have a length (a map-style dataset), got "
                            f"{type(dataset).__name__}") from None
        self.dataset = dataset
        self.num_replicas, self.rank, self.seed = int(num_replicas), int(rank), int(seed)
        self.shuffle = _boolean("DistributedSampler", "shuffle", shuffle)
        self.drop_last = _boolean("DistributedSampler", "drop_last", drop_last)
        self.epoch = 0
        if self.drop_last and n % self.num_replicas != 0:
            self.num_samples = n // self.num_replicas  # the tail beyond a multiple of num_replicas is dropped
        else:
            self.num_samples = math.ceil(n / self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def __iter__(self) -> Iterator[int]:
        n = len(self.dataset)
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(n)
        else:
            order = np.arange(n)
        if not self.drop_last:
            pad = self.total_size - n
            if pad > 0 and n == 0:
                raise ValueError("DistributedSampler: cannot pad an empty dataset")
            if pad > 0:
                order = np.concatenate([order, np.resize(order, pad)])  # repeat the order from its start
        else:
            order = order[:self.total_size]
        return iter(order[self.rank:self.total_size:self.num_replicas].tolist())

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch, which (with ``seed``) decides the order when ``shuffle`` is True."""
        if not isinstance(epoch, numbers.Integral) or isinstance(epoch, bool) or epoch < 0:
            raise ValueError(f"DistributedSampler.set_epoch: epoch should be an integer >= 0, got {epoch!r}")
        self.epoch = int(epoch)
