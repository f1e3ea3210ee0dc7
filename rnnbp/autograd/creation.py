"""Tensor factories: ``tensor``, ``zeros``, ``ones``, ``full``, ``arange``, ``randn``, ``rand``."""
from __future__ import annotations

import numpy as np

from . import random as _random
from .tensor import DEFAULT_DTYPE, Tensor


def _dtype(dtype) -> np.dtype:
    return DEFAULT_DTYPE if dtype is None else np.dtype(dtype)


def _size(size) -> tuple:
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        return tuple(size[0])
    return tuple(size)


def tensor(data, dtype=None, requires_grad: bool = False) -> Tensor:
    """A new leaf tensor holding a copy of ``data`` (Python floats become float32)."""
    t = Tensor(data, dtype=dtype)
    t.data = np.array(t.data, copy=True)
    return t.requires_grad_(requires_grad) if requires_grad else t


def zeros(*size, dtype=None, requires_grad: bool = False) -> Tensor:
    return Tensor(np.zeros(_size(size), dtype=_dtype(dtype)), requires_grad=requires_grad)


def ones(*size, dtype=None, requires_grad: bool = False) -> Tensor:
    return Tensor(np.ones(_size(size), dtype=_dtype(dtype)), requires_grad=requires_grad)


def full(size, fill_value, dtype=None, requires_grad: bool = False) -> Tensor:
    return Tensor(np.full(tuple(size), fill_value, dtype=_dtype(dtype)), requires_grad=requires_grad)


def zeros_like(t: Tensor, dtype=None, requires_grad: bool = False) -> Tensor:
    return zeros(t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad)


def ones_like(t: Tensor, dtype=None, requires_grad: bool = False) -> Tensor:
    return ones(t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad)


def arange(start, end=None, step=1, dtype=None) -> Tensor:
    data = np.arange(start, end, step) if end is not None else np.arange(0, start, step)
    return Tensor(data if dtype is None and data.dtype.kind == "i" else data.astype(_dtype(dtype)))


def randn(*size, dtype=None, requires_grad: bool = False, generator=None) -> Tensor:
    """Standard normal samples from ``generator`` (default: the one ``manual_seed`` sets)."""
    rng = _random.get_generator(generator)
    data = rng.standard_normal(_size(size)).astype(_dtype(dtype))
    return Tensor(data, requires_grad=requires_grad)


def rand(*size, dtype=None, requires_grad: bool = False, generator=None) -> Tensor:
    """Uniform [0, 1) samples from ``generator`` (default: the one ``manual_seed`` sets)."""
    rng = _random.get_generator(generator)
    data = rng.random(_size(size)).astype(_dtype(dtype))
    return Tensor(data, requires_grad=requires_grad)
