"""Dropout: regularisation by zeroing random activations (or whole channels) while training."""
from __future__ import annotations

import numbers
import warnings

import numpy as np

from ..autograd.dtypes import default_dtype
from ..autograd import random as _random
from ..autograd.ops import dropout
from ..autograd.tensor import Tensor
from ..validation import ArgumentTypeError
from .module import Module


def _check_p(owner: str, p) -> float:
    """``p`` as given, or an error: a type error for a non-number, torch's words for one out of [0, 1]."""
    if not isinstance(p, numbers.Real) or isinstance(p, bool):
        raise ArgumentTypeError(f"{owner}: p (the dropout probability) must be a number in [0, 1], "
                                f"got {type(p).__name__} {p!r}")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{owner}: dropout probability has to be between 0 and 1, but got {p!r}")
    return p


def _channel_dropout(x, p: float, generator, batched: bool = True):
    """x times a mask of shape (N, C, 1, ...) ((C, 1, ...) if not ``batched``): each channel kept with
    probability 1 - p and scaled by 1/(1-p), or zeroed whole. Gradients flow through the kept
    channels, scaled alike."""
    lead = 2 if batched else 1
    mask_shape = tuple(x.shape[:lead]) + (1,) * (x.ndim - lead)
    dtype = x._data.dtype if x._data.dtype.kind == "f" else default_dtype()
    if p == 1.0:
        mask = np.zeros(mask_shape, dtype=dtype)
    else:
        rng = _random.get_generator(generator)
        keep = rng.random(mask_shape, dtype=np.float32 if dtype == np.float32 else np.float64) >= p
        mask = keep * dtype.type(1.0 / (1.0 - p))
    return x * Tensor(mask)


def dropout1d(input, p: float = 0.5, training: bool = True, inplace: bool = False,
              generator: np.random.Generator | None = None):
    """Zero whole channels at random: each ``input[n, c, :]`` is dropped with probability ``p``,
    the rest scaled by 1/(1-p); identity when not training.

    Shape: (N, C, L) or unbatched (C, L) -> same.
    ``inplace`` is accepted for PyTorch programs; the result is always a new tensor.
    """
    _check_p("dropout1d", p)
    if input.ndim not in (2, 3):
        raise ValueError(f"dropout1d: expected input of shape (N, C, L) or (C, L) (2D or 3D), got shape "
                         f"{tuple(input.shape)} ({input.ndim}D); dropout1d drops whole channels of 1-D signals")
    if not training or p == 0.0:
        return input
    return _channel_dropout(input, p, generator, batched=input.ndim == 3)


def dropout2d(input, p: float = 0.5, training: bool = True, inplace: bool = False,
              generator: np.random.Generator | None = None):
    """Zero whole channels at random: each ``input[n, c, :, :]`` is dropped with probability ``p``,
    the rest scaled by 1/(1-p); identity when not training.

    Shape: (N, C, H, W) -> same. A 3-D input is read as (N, C, L) and its channels ``input[n, c, :]``
    dropped, with PyTorch's warning (PyTorch 2.x does the same; it plans to read it as (C, H, W)).
    ``inplace`` is accepted for PyTorch programs; the result is always a new tensor.
    """
    _check_p("dropout2d", p)
    if input.ndim not in (3, 4):
        raise ValueError(f"dropout2d: expected input of shape (N, C, H, W) (4D; 3D is read as (N, C, L)), got shape "
                         f"{tuple(input.shape)} ({input.ndim}D); use dropout for other shapes")
    if input.ndim == 3:
        warnings.warn("dropout2d: Received a 3D input to dropout2d and assuming that channel-wise 1D dropout "
                      "behavior is desired - input is interpreted as shape (N, C, L), where C is the channel dim. "
                      "This behavior will change in a future release to interpret the input as one without a "
                      "batch dimension, i.e. shape (C, H, W). To maintain the 1D channel-wise dropout behavior, "
                      "please switch to using dropout1d instead.", stacklevel=3)
    if not training or p == 0.0:
        return input
    return _channel_dropout(input, p, generator)


class _DropoutNd(Module):
    """Shared arguments: ``p`` in [0, 1], ``inplace`` (accepted; results are new tensors), and an
    optional ``generator`` making the masks reproducible on their own; otherwise they come from
    the generator ``rnnbp.manual_seed`` seeds. Identity in eval mode."""

    def __init__(self, p: float = 0.5, inplace: bool = False, generator=None):
        super().__init__()
        self.p = _check_p(type(self).__name__, p)
        self.inplace, self.generator = inplace, generator

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class Dropout(_DropoutNd):
    """Zero each element with probability ``p`` in training mode, scaling the rest by 1/(1-p).

    Identity in eval mode. Shape: any -> same.
    """

    def forward(self, x):
        return dropout(x, self.p, self.training, generator=self.generator)


class Dropout1d(_DropoutNd):
    """Zero whole channels with probability ``p`` in training mode, scaling the rest by 1/(1-p).

    For 1-D feature maps (Tompson et al. 2015): neighbouring steps of a channel are correlated, so
    dropping single elements regularises little. Identity in eval mode.
    Shape: (N, C, L) or (C, L) -> same; the mask is (N, C, 1) (or (C, 1)).
    """

    def forward(self, x):
        return dropout1d(x, self.p, self.training, generator=self.generator)


class Dropout2d(_DropoutNd):
    """Zero whole channels with probability ``p`` in training mode, scaling the rest by 1/(1-p).

    Identity in eval mode. Shape: (N, C, H, W) -> same, the mask (N, C, 1, 1). A 3-D input is
    read as (N, C, L), with a warning, as PyTorch 2.x does.
    """

    def forward(self, x):
        return dropout2d(x, self.p, self.training, generator=self.generator)
