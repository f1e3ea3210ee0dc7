"""``torch.utils`` for rnnbp: :mod:`rnnbp.utils.data` (Dataset, DataLoader, samplers, random_split).

Not to be confused with :mod:`rnnbp.nn.utils` (gradient clipping, sequence packing) or with
:mod:`rnnbp.data` (rnnbp's own dataset loaders: spoken digits, text corpora, synthetic tasks).
"""
from . import data

__all__ = ["data"]
