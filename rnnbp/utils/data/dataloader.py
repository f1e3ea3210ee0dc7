"""DataLoader with PyTorch's API: batches from a dataset, in the order a sampler gives.

``for x, y in DataLoader(dataset, batch_size=32, shuffle=True): ...`` reads
``dataset[i]`` for each index of a batch and merges the samples with ``collate_fn``
(:func:`~.collate.default_collate`: stacked Tensors). Everything runs in the calling process.
"""
from __future__ import annotations

import itertools
import numbers

import numpy as np

from ...autograd.tensor import Tensor
from .collate import default_collate, default_convert
from .dataset import IterableDataset, Subset, TensorDataset
from .sampler import BatchSampler, RandomSampler, Sampler, SequentialSampler, _checked_generator

__all__ = ["DataLoader", "get_worker_info"]


def get_worker_info():
    """None: rnnbp's DataLoader has no worker processes, so code runs as PyTorch's main process does."""
    return None


class _InfiniteConstantSampler(Sampler):
    """None forever: the "indices" of an IterableDataset, which is read as a stream."""

    def __iter__(self):
        while True:
            yield None


class DataLoader:
    """Batches of samples from ``dataset``, with PyTorch's arguments and checks.

    Args:
        dataset : a map-style :class:`Dataset` (``dataset[i]``, ``len``) or an :class:`IterableDataset`.
        batch_size : int > 0 samples per batch, or None for no batching (each sample goes through
            ``collate_fn``, by default :func:`default_convert`, on its own). Default 1.
        shuffle : a new random order each epoch (map-style datasets only), drawn when the epoch's
            iteration starts from ``generator`` or else from the default generator that
            ``rnnbp.manual_seed`` reseeds, so a seeded program repeats its batches exactly.
        sampler : iterable of indices (a :class:`Sampler` or any iterable); excludes ``shuffle``.
        batch_sampler : iterable of lists of indices; excludes batch_size, shuffle, sampler, drop_last.
        num_workers : int >= 0. Accepted for PyTorch programs, but there are no worker
            processes: any value loads in the calling process, in order, with the same batches as
            ``num_workers=0`` (``get_worker_info()`` is None; ``worker_init_fn`` is not called).
        collate_fn : ``fn(list of samples) -> batch``; default :func:`default_collate`.
        pin_memory, pin_memory_device : accepted and ignored (rnnbp runs on the CPU).
        drop_last : drop a last batch shorter than ``batch_size``.
        timeout, worker_init_fn, multiprocessing_context, prefetch_factor, persistent_workers,
        in_order : accepted (and checked as PyTorch checks them); without workers they change nothing.
        generator : ``np.random.Generator`` (e.g. ``rnnbp.Generator().manual_seed(0)``) for
            ``shuffle``'s RandomSampler.

    ``len(loader)`` is the number of batches (for an IterableDataset, estimated from
    ``len(dataset)`` as PyTorch does). Iterating gives a fresh pass each time.
    """

    _FIXED_AFTER_INIT = ("batch_size", "batch_sampler", "sampler", "drop_last", "dataset", "persistent_workers")

    def __init__(self, dataset, batch_size: int | None = 1, shuffle: bool | None = None, sampler=None,
                 batch_sampler=None, num_workers: int = 0, collate_fn=None, pin_memory: bool = False,
                 drop_last: bool = False, timeout: float = 0, worker_init_fn=None, multiprocessing_context=None,
                 generator: np.random.Generator | None = None, *, prefetch_factor: int | None = None,
                 persistent_workers: bool = False, pin_memory_device: str = "", in_order: bool = True):
        if not isinstance(num_workers, numbers.Integral) or isinstance(num_workers, bool) or num_workers < 0:
            raise ValueError(f"DataLoader: num_workers option should be a non-negative integer, got {num_workers!r}; "
                             "use num_workers=0 to disable multiprocessing")
        if timeout < 0:
            raise ValueError(f"DataLoader: timeout option should be non-negative, got {timeout!r}")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError("DataLoader: prefetch_factor option could only be specified in multiprocessing; "
                             "let num_workers > 0 to enable multiprocessing, otherwise set prefetch_factor to None")
        if num_workers > 0 and prefetch_factor is None:
            prefetch_factor = 2
        elif prefetch_factor is not None and prefetch_factor < 0:
            raise ValueError(f"DataLoader: prefetch_factor option should be non-negative, got {prefetch_factor!r}")
        if persistent_workers and num_workers == 0:
            raise ValueError("DataLoader: persistent_workers option needs num_workers > 0")
        self.dataset = dataset
        self.num_workers, self.prefetch_factor = int(num_workers), prefetch_factor
        self.pin_memory, self.pin_memory_device = pin_memory, pin_memory_device
        self.timeout, self.worker_init_fn = timeout, worker_init_fn
        self.multiprocessing_context, self.in_order = multiprocessing_context, in_order
        self.generator = _checked_generator(generator)

        self._iterable = isinstance(dataset, IterableDataset)
        if not self._iterable and not callable(getattr(dataset, "__getitem__", None)):
            raise TypeError(f"DataLoader: dataset must be a map-style dataset (with __getitem__ and __len__, e.g. "
                            f"a list or a TensorDataset) or an IterableDataset, got {type(dataset).__name__}")
        if self._iterable:
            if shuffle not in (False, None):
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified shuffle option, "
                                 f"but got shuffle={shuffle}")
            if sampler is not None:
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified sampler option, "
                                 f"but got sampler={sampler}")
            if batch_sampler is not None:
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified batch_sampler option, "
                                 f"but got batch_sampler={batch_sampler}")
        else:
            shuffle = bool(shuffle)
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("DataLoader: batch_sampler option is mutually exclusive with batch_size, shuffle, "
                                 "sampler, and drop_last")
            batch_size, drop_last = None, False
        elif batch_size is None and drop_last:
            raise ValueError("DataLoader: batch_size=None option disables auto-batching and is mutually exclusive "
                             "with drop_last")
        if sampler is None:
            if self._iterable:
                sampler = _InfiniteConstantSampler()
            elif shuffle:
                sampler = RandomSampler(dataset, generator=generator)
            else:
                sampler = SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)

        self.batch_size, self.drop_last = batch_size, drop_last
        self.sampler, self.batch_sampler = sampler, batch_sampler
        if collate_fn is None:
            collate_fn = default_collate if self._auto_collation else default_convert
        self.collate_fn = collate_fn
        self.persistent_workers = persistent_workers
        self._initialized = True

    def __setattr__(self, name, value) -> None:
        if self.__dict__.get("_initialized") and name in self._FIXED_AFTER_INIT:
            raise ValueError(f"{name} attribute should not be set after {type(self).__name__} is initialized")
        super().__setattr__(name, value)

    @property
    def _auto_collation(self) -> bool:
        return self.batch_sampler is not None

    @property
    def _index_sampler(self):
        return self.batch_sampler if self._auto_collation else self.sampler

    def __iter__(self) -> "_DataLoaderIter":
        return _DataLoaderIter(self)

    def __len__(self) -> int:
        if self._iterable:
            n = len(self.dataset)  # TypeError if the stream has no length, as in PyTorch
            if self.batch_size is not None:
                n = n // self.batch_size if self.drop_last else -(-n // self.batch_size)
            return n
        return len(self._index_sampler)


class _DataLoaderIter:
    """One pass over a DataLoader: ``next`` fetches the samples of the next indices and collates them."""

    def __init__(self, loader: DataLoader):
        self._loader = loader
        self._collate = loader.collate_fn
        self._auto = loader._auto_collation
        if loader._iterable:
            self._stream = iter(loader.dataset)
            self._ended = False
            self._next = self._next_from_stream
        else:
            self._indices = iter(loader._index_sampler)
            self._rows = _tensor_rows(loader)
            self._next = self._next_from_map

    def __iter__(self) -> "_DataLoaderIter":
        return self

    def __len__(self) -> int:
        return len(self._loader)

    def __next__(self):
        return self._next()

    def _next_from_map(self):
        index = next(self._indices)
        if not self._auto:
            return self._collate(self._loader.dataset[index])
        if self._rows is not None:
            return self._rows(index)
        dataset = self._loader.dataset
        getitems = getattr(dataset, "__getitems__", None)
        samples = getitems(index) if callable(getitems) else [dataset[i] for i in index]
        return self._collate(samples)

    def _next_from_stream(self):
        if self._ended:
            raise StopIteration
        if not self._auto:
            return self._collate(next(self._stream))
        size = self._loader.batch_size
        samples = list(itertools.islice(self._stream, size))
        if len(samples) < size:
            self._ended = True
        if not samples or (self._loader.drop_last and len(samples) < size):
            raise StopIteration
        return self._collate(samples)


def _tensor_rows(loader: DataLoader):
    """A fast path giving default_collate's batch of a TensorDataset with one fancy index per tensor.

    ``default_collate([ds[i] for i in idx])`` is ``[Tensor(t[idx]) for t in ds.tensors]`` when every
    tensor is a numeric array or a Tensor outside autograd; this skips B per-row Tensors and a
    stack. Subsets of a TensorDataset (what ``random_split`` gives) compose their index maps.
    None when the fast path does not apply.
    """
    if loader.collate_fn is not default_collate:
        return None
    dataset, maps = loader.dataset, []
    while type(dataset) is Subset:
        maps.append(np.asarray(dataset.indices, dtype=np.intp))
        dataset = dataset.dataset
    if type(dataset) is not TensorDataset:
        return None
    arrays = []
    for t in dataset.tensors:
        if isinstance(t, Tensor) and not t.requires_grad:
            arrays.append(t._data)
        elif type(t) is np.ndarray and t.dtype.kind in "biuf":
            arrays.append(t)
        else:
            return None

    def rows(index) -> list:
        idx = np.asarray(index, dtype=np.intp)
        for positions in maps:  # outermost Subset first
            idx = positions[idx]
        return [Tensor(a[idx]) for a in arrays]

    return rows
