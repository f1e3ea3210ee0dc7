"""``Uniform``: the flat distribution on [low, high) (``torch.distributions.Uniform``)."""
from __future__ import annotations

import math

import numpy as np

from ..autograd import ops
from ..autograd import random as _random
from ..autograd.grad_mode import no_grad
from ..autograd.tensor import Size, Tensor
from . import constraints
from .distribution import Distribution
from .utils import NUMBER_TYPES, as_size, broadcast_all

__all__ = ["Uniform"]


class Uniform(Distribution):
    """The uniform distribution on the half-open interval [low, high).

    ``rsample`` is low + u (high - low) with u ~ U[0, 1) drawn in ``low``'s dtype, differentiable in
    both bounds; ``log_prob`` is -log(high - low) inside [low, high) and -inf outside.

    Shape: ``low`` and ``high`` broadcast together to the batch_shape (() when both are numbers);
    event_shape (); ``sample(sample_shape)`` has shape ``sample_shape + batch_shape``.

    Args:
        low : number or Tensor, the lower bound (inclusive).
        high : number or Tensor > low, the upper bound (exclusive).
        validate_args : bool or None (see :class:`Distribution`).
    """

    has_rsample = True

    @property
    def arg_constraints(self) -> dict:
        return {"low": constraints.less_than(self.high), "high": constraints.greater_than(self.low)}

    def __init__(self, low, high, validate_args: bool | None = None):
        self.low, self.high = broadcast_all(low, high)
        scalar = isinstance(low, NUMBER_TYPES) and isinstance(high, NUMBER_TYPES)
        super().__init__(Size() if scalar else Size(self.low.shape), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(Uniform, _instance)
        batch_shape = as_size(batch_shape, "batch_shape")
        new.low = ops.expand(self.low, batch_shape)
        new.high = ops.expand(self.high, batch_shape)
        Distribution.__init__(new, batch_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self):
        return constraints.interval(self.low, self.high)

    @property
    def mean(self) -> Tensor:
        return (self.high + self.low) / 2

    @property
    def mode(self) -> Tensor:
        """Every point is a mode: NaN of shape ``batch_shape``."""
        return math.nan * self.high

    @property
    def stddev(self) -> Tensor:
        return (self.high - self.low) / 12 ** 0.5

    @property
    def variance(self) -> Tensor:
        return (self.high - self.low).pow(2) / 12

    def sample(self, sample_shape=Size(), *, generator=None) -> Tensor:
        with no_grad():
            return self.rsample(sample_shape, generator=generator)

    def rsample(self, sample_shape=Size(), *, generator=None) -> Tensor:
        """low + u (high - low), u ~ U[0, 1) of shape ``sample_shape + batch_shape``; differentiable."""
        shape = self._extended_shape(sample_shape)
        u = _random.get_generator(generator).random(shape).astype(self.low.dtype)
        return self.low + Tensor(u) * (self.high - self.low)

    def log_prob(self, value) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        inside = (self.low <= value).to(self.low.dtype) * (self.high > value).to(self.low.dtype)  # a constant
        with np.errstate(divide="ignore"):  # log 0 = -inf outside, as PyTorch
            return ops.log(inside) - ops.log(self.high - self.low)

    def cdf(self, value) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        return ((value - self.low) / (self.high - self.low)).clamp(min=0, max=1)

    def icdf(self, value) -> Tensor:
        return value * (self.high - self.low) + self.low

    def entropy(self) -> Tensor:
        return ops.log(self.high - self.low)
