"""``Bernoulli``: 1 with probability p, else 0 (``torch.distributions.Bernoulli``)."""
from __future__ import annotations

import math

from ..autograd import ops
from ..autograd.creation import arange, bernoulli
from ..autograd.grad_mode import no_grad
from ..autograd.tensor import Size, Tensor
from . import constraints
from .distribution import Distribution
from .utils import NUMBER_TYPES, as_size, broadcast_all, lazy_property, logits_to_probs, probs_to_logits, softplus_exact

__all__ = ["Bernoulli"]


class Bernoulli(Distribution):
    """Independent coin flips, from probabilities of 1 or from log-odds (not both).

    log p(y) = -(1 - y) x - softplus(-x) with x the logits (PyTorch's ``-binary_cross_entropy_with_logits``,
    term by term), accurate for large |x| where log(p) and log(1 - p) would round to 0 or -inf.

    Shape: ``probs``/``logits`` any shape, which is the batch_shape (() for a number); event_shape ();
    ``sample(sample_shape)`` gives 0./1. in the parameter's dtype, shape ``sample_shape + batch_shape``.

    Args:
        probs : number or Tensor in [0, 1], the probability of 1.
        logits : number or Tensor, the log-odds log(p / (1 - p)).
        validate_args : bool or None (see :class:`Distribution`).
    """

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.boolean
    has_enumerate_support = True

    def __init__(self, probs=None, logits=None, validate_args: bool | None = None):
        if (probs is None) == (logits is None):
            raise ValueError("Either `probs` or `logits` must be specified, but not both.")
        if probs is not None:
            is_scalar = isinstance(probs, NUMBER_TYPES)
            (self.probs,) = broadcast_all(probs)
        else:
            is_scalar = isinstance(logits, NUMBER_TYPES)
            (self.logits,) = broadcast_all(logits)
        self._param = self.probs if probs is not None else self.logits
        super().__init__(Size() if is_scalar else Size(self._param.shape), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(Bernoulli, _instance)
        batch_shape = as_size(batch_shape, "batch_shape")
        if "probs" in self.__dict__:
            new.probs = ops.expand(self.probs, batch_shape)
            new._param = new.probs
        if "logits" in self.__dict__:
            new.logits = ops.expand(self.logits, batch_shape)
            new._param = new.logits
        Distribution.__init__(new, batch_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @property
    def mean(self) -> Tensor:
        return self.probs

    @property
    def mode(self) -> Tensor:
        """1 where p > 1/2, 0 where p < 1/2, NaN at exactly 1/2 (no single mode)."""
        with no_grad():
            mode = (self.probs >= 0.5).to(self.probs.dtype)
            return ops.where(self.probs == 0.5, math.nan, mode)

    @property
    def variance(self) -> Tensor:
        return self.probs * (1 - self.probs)

    @lazy_property
    def logits(self) -> Tensor:
        return probs_to_logits(self.probs, is_binary=True)

    @lazy_property
    def probs(self) -> Tensor:
        return logits_to_probs(self.logits, is_binary=True)

    @property
    def param_shape(self) -> Size:
        return Size(self._param.shape)

    def sample(self, sample_shape=Size(), *, generator=None) -> Tensor:
        shape = self._extended_shape(sample_shape)
        with no_grad():
            return bernoulli(ops.expand(self.probs, shape), generator=generator)

    def log_prob(self, value) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        logits, value = broadcast_all(self.logits, value)
        return -(1 - value) * logits - softplus_exact(-logits)

    def entropy(self) -> Tensor:
        """-p log p - (1 - p) log(1 - p) = (1 - p) x + softplus(-x), shape ``batch_shape``."""
        logits = self.logits
        return (1 - self.probs) * logits + softplus_exact(-logits)

    def enumerate_support(self, expand: bool = True) -> Tensor:
        """0. and 1. along dim 0, in the parameter's dtype: shape (2,) + batch_shape."""
        values = arange(2, dtype=self._param.dtype).reshape((-1,) + (1,) * len(self._batch_shape))
        if expand:
            values = ops.expand(values, (2,) + tuple(self._batch_shape))
        return values
