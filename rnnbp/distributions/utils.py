"""Helpers the distributions share: broadcasting parameters, probs <-> logits, lazy parameters, and
the vectorised categorical sampler (``torch.distributions.utils``'s names where PyTorch has them)."""
from __future__ import annotations

import functools
import math

import numpy as np

from ..autograd import ops
from ..autograd.grad_mode import enable_grad
from ..autograd.tensor import Size, Tensor
from ..autograd.dtypes import default_dtype

__all__ = ["broadcast_all", "logits_to_probs", "clamp_probs", "probs_to_logits", "lazy_property", "euler_constant"]

euler_constant = 0.57721566490153286060  # Euler-Mascheroni constant

# What PyTorch counts as a number parameter (a NumPy float64 is a float, so it counts too).
NUMBER_TYPES = (bool, int, float)


def broadcast_all(*values) -> tuple:
    """Tensors and numbers as Tensors of one broadcast shape, as ``torch.distributions.utils.broadcast_all``.

    A number takes the dtype of the first Tensor among ``values`` (float32 when there is none);
    Tensors keep their own dtypes (PyTorch's ``broadcast_tensors`` does not promote) and are
    expanded, not copied, so gradients flow back to the originals.

    Args:
        values: Tensors, or Python numbers (bool, int, float).

    Returns:
        tuple of Tensors, all of the broadcast shape of ``values``.

    Raises:
        ValueError: a value is neither a Tensor nor a number, or the shapes do not broadcast.
    """
    bad = [type(v).__name__ for v in values if not isinstance(v, (Tensor, *NUMBER_TYPES))]
    if bad:
        raise ValueError(f"Input arguments must all be instances of Number or Tensor, got {', '.join(bad)} "
                         "(wrap arrays and lists with torch.tensor(...))")
    dtype = next((v.dtype for v in values if isinstance(v, Tensor)), default_dtype())
    tensors = [v if isinstance(v, Tensor) else Tensor(np.asarray(v, dtype=dtype)) for v in values]
    try:
        shape = np.broadcast_shapes(*(t.shape for t in tensors))
    except ValueError:
        shapes = ", ".join(str(tuple(t.shape)) for t in tensors)
        raise ValueError(f"broadcast_all: the parameters' shapes {shapes} do not broadcast together") from None
    return tuple(t if t.shape == shape else ops.expand(t, shape) for t in tensors)


def as_size(shape, what: str = "sample_shape") -> Size:
    """``shape`` (a tuple, list or Size of ints) as a ``Size``; an int or other object is refused."""
    if isinstance(shape, Size):
        return shape
    if not isinstance(shape, (tuple, list)) or not all(isinstance(d, (int, np.integer)) for d in shape):
        raise TypeError(f"{what} must be a tuple of ints such as (n,) or torch.Size([n]), "
                        f"got {type(shape).__name__} {shape!r}")
    return Size(int(d) for d in shape)


def logits_to_probs(logits: Tensor, is_binary: bool = False) -> Tensor:
    """Probabilities from logits: the sigmoid of log-odds (``is_binary``) or the softmax over the last dim."""
    if is_binary:
        return ops.sigmoid(logits)
    return ops.softmax(logits, -1)


def clamp_probs(probs: Tensor) -> Tensor:
    """``probs`` clamped to [eps, 1 - eps] (eps of its dtype), so that their logs are finite."""
    eps = float(np.finfo(probs.dtype).eps)
    return ops.clamp(probs, min=eps, max=1 - eps)


def probs_to_logits(probs: Tensor, is_binary: bool = False) -> Tensor:
    """Logits from probabilities: log-odds (``is_binary``) or the log of each probability (clamped first)."""
    clamped = clamp_probs(probs)
    if is_binary:
        return ops.log(clamped) - ops.log1p(-clamped)
    return ops.log(clamped)


def softplus_exact(x: Tensor) -> Tensor:
    """log(1 + e^x) everywhere (no linear cut-off at x > 20), d/dx = sigmoid(x).

    The Bernoulli log-density is -(1 - y) x - softplus(-x); with ``F.softplus``'s cut-off it would be
    off by up to 2e-9 for large |x|, where PyTorch's ``binary_cross_entropy_with_logits`` is exact.
    """
    return ops.softplus(x, 1.0, math.inf)


def sum_rightmost(value: Tensor, dim: int) -> Tensor:
    """``value`` summed over its ``dim`` rightmost dims (none when ``dim`` is 0)."""
    if dim == 0:
        return value
    return value.reshape(tuple(value.shape[:-dim]) + (-1,)).sum(-1)


class lazy_property:
    """A parameter computed on first read and then stored on the instance (``Categorical.probs``
    from ``logits``, and the other way round); computed with grad enabled, so it stays in the graph."""

    def __init__(self, wrapped):
        self.wrapped = wrapped
        functools.update_wrapper(self, wrapped)

    def __get__(self, instance, owner=None):
        if instance is None:
            return self
        with enable_grad():
            value = self.wrapped(instance)
        setattr(instance, self.wrapped.__name__, value)
        return value


def check_probability_rows(probs_2d: np.ndarray, op: str) -> None:
    """Refuse weights a categorical draw cannot use (what ``torch.multinomial`` refuses)."""
    if not np.all(np.isfinite(probs_2d)) or np.any(probs_2d < 0):
        raise ValueError(f"{op}: probability tensor contains either inf, nan or element < 0")
    if probs_2d.shape[-1] and np.any(probs_2d.sum(axis=-1) <= 0):
        raise ValueError(f"{op}: invalid multinomial distribution (sum of probabilities <= 0)")


def sample_categorical(probs_2d: np.ndarray, num_samples: int, rng: np.random.Generator) -> np.ndarray:
    """Draw category indices for every row of non-negative weights at once (inverse CDF).

    Each draw is one uniform u in [0, 1) and the index is the first k with cdf[k] > u, found by a
    binary search vectorised over all draws and rows: log2(K) passes, memory (num_samples, B), no
    loop over rows. Weights need not sum to 1; zero-weight categories are never drawn.

    Args:
        probs_2d : np.ndarray [shape=(B, K)], finite, >= 0, each row with a positive sum.
        num_samples : int >= 0, draws per row.
        rng : the generator to draw from.

    Returns:
        np.ndarray [shape=(num_samples, B), dtype=int64].
    """
    cdf = np.cumsum(probs_2d, axis=-1, dtype=np.float64)  # (B, K)
    cdf /= cdf[:, -1:]  # the last entry exactly 1, so every u < 1 finds an index
    n_rows, k = cdf.shape
    u = rng.random((num_samples, n_rows))  # (S, B)
    lo = np.zeros(u.shape, dtype=np.int64)
    hi = np.full(u.shape, k - 1, dtype=np.int64)
    rows = np.arange(n_rows)
    while True:
        active = lo < hi
        if not active.any():
            return lo
        mid = (lo + hi) // 2
        right = cdf[rows, mid] > u  # the answer is at mid or left of it
        hi = np.where(active & right, mid, hi)
        lo = np.where(active & ~right, mid + 1, lo)
