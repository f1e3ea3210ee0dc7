"""``torch.utils.data`` for rnnbp: datasets, samplers, collation and the DataLoader.

PyTorch's names, arguments and rules, on rnnbp Tensors; a program written for
``torch.utils.data`` runs unchanged. Differences: loading always happens in the calling
process (``num_workers`` is accepted; ``get_worker_info()`` is None), ``pin_memory`` is ignored,
and random orders come from NumPy generators (``rnnbp.manual_seed`` or ``generator=``), so a
seed gives the same batches on every rnnbp run but not the ones PyTorch would draw.

Also reachable under PyTorch's file names (``torch.utils.data.dataloader.default_collate``,
``torch.utils.data.sampler.BatchSampler``, ...) through the stand-in, which maps those modules here.
"""
from .collate import collate, default_collate, default_collate_fn_map, default_convert
from .dataloader import DataLoader, get_worker_info
from .dataset import ChainDataset, ConcatDataset, Dataset, IterableDataset, Subset, TensorDataset, random_split
from .sampler import (
    BatchSampler, RandomSampler, Sampler, SequentialSampler, SubsetRandomSampler, WeightedRandomSampler,
)

__all__ = [
    "Dataset", "IterableDataset", "TensorDataset", "Subset", "ConcatDataset", "ChainDataset", "random_split",
    "Sampler", "SequentialSampler", "RandomSampler", "SubsetRandomSampler", "WeightedRandomSampler", "BatchSampler",
    "DataLoader", "get_worker_info", "default_collate", "default_convert", "collate", "default_collate_fn_map",
]
