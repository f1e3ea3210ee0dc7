"""``Categorical``: one of K classes, from probabilities or logits (``torch.distributions.Categorical``)."""
from __future__ import annotations

import math

import numpy as np

from ..autograd import ops
from ..autograd import random as _random
from ..autograd.creation import arange, full
from ..autograd.tensor import Size, Tensor
from . import constraints
from .distribution import Distribution
from .utils import as_size, check_probability_rows, lazy_property, logits_to_probs, probs_to_logits, sample_categorical

__all__ = ["Categorical"]


def _parameter(value, name: str, cls: str) -> Tensor:
    if not isinstance(value, Tensor):
        raise TypeError(f"{cls}: `{name}` must be a Tensor, got {type(value).__name__} "
                        f"(wrap it with torch.tensor(...))")
    if value.dim() < 1:
        raise ValueError(f"`{name}` parameter must be at least one-dimensional.")
    return value


class Categorical(Distribution):
    """A distribution over the class indices 0 .. K-1, one per batch entry (what ``multinomial`` draws from).

    Give ``probs`` (non-negative, finite, with a positive sum: normalised along the last dim) or
    ``logits`` (any reals, unnormalised log-probabilities: normalised by their logsumexp), not
    both. Both ``.probs`` and ``.logits`` are then available, normalised; the one not given is
    computed on first use (``logits`` = log of the probabilities clamped to [eps, 1 - eps]).

    Shape: ``probs``/``logits`` (*batch_shape, K); event_shape (); ``sample(sample_shape)`` gives int64
    class indices of shape ``sample_shape + batch_shape``; ``log_prob(value)`` takes indices whose
    shape broadcasts with ``batch_shape`` and returns log p[value] of the broadcast shape.

    Args:
        probs : Tensor [shape=(*B, K)], relative probabilities.
        logits : Tensor [shape=(*B, K)], unnormalised log-probabilities.
        validate_args : bool or None (see :class:`Distribution`).
    """

    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}
    has_enumerate_support = True

    def __init__(self, probs: Tensor | None = None, logits: Tensor | None = None, validate_args: bool | None = None):
        if (probs is None) == (logits is None):
            raise ValueError("Either `probs` or `logits` must be specified, but not both.")
        if probs is not None:
            probs = _parameter(probs, "probs", type(self).__name__)
            with np.errstate(divide="ignore", invalid="ignore"):  # a zero sum gives NaN, which validation names
                self.probs = probs / probs.sum(-1, keepdim=True)
        else:
            logits = _parameter(logits, "logits", type(self).__name__)
            with np.errstate(invalid="ignore"):  # an inf logit gives NaN, which validation names
                self.logits = logits - logits.logsumexp(dim=-1, keepdim=True)
        self._param = self.probs if probs is not None else self.logits
        self._num_events = self._param.shape[-1]
        super().__init__(Size(self._param.shape[:-1]), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(Categorical, _instance)
        batch_shape = as_size(batch_shape, "batch_shape")
        param_shape = tuple(batch_shape) + (self._num_events,)
        if "probs" in self.__dict__:
            new.probs = ops.expand(self.probs, param_shape)
            new._param = new.probs
        if "logits" in self.__dict__:
            new.logits = ops.expand(self.logits, param_shape)
            new._param = new.logits
        new._num_events = self._num_events
        Distribution.__init__(new, batch_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @constraints.dependent_property(is_discrete=True, event_dim=0)
    def support(self):
        return constraints.integer_interval(0, self._num_events - 1)

    @lazy_property
    def logits(self) -> Tensor:
        return probs_to_logits(self.probs)

    @lazy_property
    def probs(self) -> Tensor:
        return logits_to_probs(self.logits)

    @property
    def param_shape(self) -> Size:
        return Size(self._param.shape)

    @property
    def mean(self) -> Tensor:
        """Undefined for class labels: NaN of shape ``batch_shape``."""
        return full(self._extended_shape(), math.nan, dtype=self.probs.dtype)

    @property
    def mode(self) -> Tensor:
        """The most probable class (int64, shape ``batch_shape``)."""
        return ops.argmax(self.probs, dim=-1)

    @property
    def variance(self) -> Tensor:
        """Undefined for class labels: NaN of shape ``batch_shape``."""
        return full(self._extended_shape(), math.nan, dtype=self.probs.dtype)

    def sample(self, sample_shape=Size(), *, generator=None) -> Tensor:
        """int64 class indices of shape ``sample_shape + batch_shape``, drawn with replacement."""
        shape = self._extended_shape(sample_shape)
        probs_2d = self.probs._data.reshape(-1, self._num_events)  # (B, K)
        check_probability_rows(probs_2d, "Categorical.sample")
        draws = sample_categorical(probs_2d, as_size(sample_shape).numel(), _random.get_generator(generator))
        return Tensor(draws.reshape(shape))  # (S, B) -> sample_shape + batch_shape

    def log_prob(self, value: Tensor) -> Tensor:
        """log p[value]: ``value`` (int class indices) broadcasts with ``batch_shape``."""
        if self._validate_args:
            self._validate_sample(value)
        value = value.long().unsqueeze(-1)  # (..., 1)
        logits = self.logits
        try:
            shape = np.broadcast_shapes(value.shape, logits.shape)
        except ValueError:
            raise ValueError(f"Categorical.log_prob: value of shape {tuple(value.shape)[:-1]} does not broadcast "
                             f"with batch_shape {tuple(self._batch_shape)}") from None
        index = Tensor(np.broadcast_to(value._data, shape[:-1] + (1,)))
        if logits.shape != shape:
            logits = ops.expand(logits, shape)
        return ops.gather(logits, -1, index).squeeze(-1)

    def entropy(self) -> Tensor:
        """-sum p log p over the classes (a zero probability adds 0), shape ``batch_shape``."""
        min_real = float(np.finfo(self.logits.dtype).min)  # -inf logits would give 0 * -inf = NaN
        logits = ops.clamp(self.logits, min=min_real)
        return -(logits * self.probs).sum(-1)

    def enumerate_support(self, expand: bool = True) -> Tensor:
        """0 .. K-1 along dim 0 (int64): shape (K,) + batch_shape, or (K, 1, ..., 1) with ``expand=False``."""
        values = arange(self._num_events).reshape((-1,) + (1,) * len(self._batch_shape))
        if expand:
            values = ops.expand(values, (self._num_events,) + tuple(self._batch_shape))
        return values
