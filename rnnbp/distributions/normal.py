"""``Normal``: the Gaussian N(loc, scale^2), reparameterisable (``torch.distributions.Normal``)."""
from __future__ import annotations

import math

from ..autograd import ops
from ..autograd import random as _random
from ..autograd.grad_mode import no_grad
from ..autograd.tensor import Size, Tensor
from . import constraints
from .distribution import Distribution
from .utils import NUMBER_TYPES, as_size, broadcast_all

__all__ = ["Normal"]

_LOG_SQRT_2PI = math.log(math.sqrt(2 * math.pi))


class Normal(Distribution):
    """The normal distribution with mean ``loc`` and standard deviation ``scale``.

    log p(x) = -(x - loc)^2 / (2 scale^2) - log(scale) - log(sqrt(2 pi));
    ``rsample`` is loc + eps scale with eps ~ N(0, 1) drawn in ``loc``'s dtype, so gradients reach
    loc and scale (the reparameterisation trick).

    Shape: ``loc`` and ``scale`` broadcast together to the batch_shape (() when both are numbers);
    event_shape (); ``sample(sample_shape)`` has shape ``sample_shape + batch_shape``.

    Args:
        loc : number or Tensor, the mean.
        scale : number or Tensor > 0, the standard deviation.
        validate_args : bool or None (see :class:`Distribution`).
    """

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.real
    has_rsample = True

    def __init__(self, loc, scale, validate_args: bool | None = None):
        self.loc, self.scale = broadcast_all(loc, scale)
        scalar = isinstance(loc, NUMBER_TYPES) and isinstance(scale, NUMBER_TYPES)
        super().__init__(Size() if scalar else Size(self.loc.shape), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(Normal, _instance)
        batch_shape = as_size(batch_shape, "batch_shape")
        new.loc = ops.expand(self.loc, batch_shape)
        new.scale = ops.expand(self.scale, batch_shape)
        Distribution.__init__(new, batch_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @property
    def mean(self) -> Tensor:
        return self.loc

    @property
    def mode(self) -> Tensor:
        return self.loc

    @property
    def stddev(self) -> Tensor:
        return self.scale

    @property
    def variance(self) -> Tensor:
        return self.stddev.pow(2)

    def sample(self, sample_shape=Size(), *, generator=None) -> Tensor:
        with no_grad():
            return self.rsample(sample_shape, generator=generator)

    def rsample(self, sample_shape=Size(), *, generator=None) -> Tensor:
        """loc + eps scale, eps ~ N(0, 1) of shape ``sample_shape + batch_shape``; differentiable."""
        shape = self._extended_shape(sample_shape)
        eps = _random.get_generator(generator).standard_normal(shape).astype(self.loc.dtype)
        return self.loc + Tensor(eps) * self.scale

    def log_prob(self, value) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        var = self.scale ** 2
        return -((value - self.loc) ** 2) / (2 * var) - self.scale.log() - _LOG_SQRT_2PI

    def cdf(self, value):
        raise NotImplementedError("Normal.cdf is not available on rnnbp: it needs a differentiable erf, "
                                  "which rnnbp's ops do not have")

    def icdf(self, value):
        raise NotImplementedError("Normal.icdf is not available on rnnbp: it needs a differentiable erfinv, "
                                  "which rnnbp's ops do not have")

    def entropy(self) -> Tensor:
        """1/2 + log(sqrt(2 pi)) + log(scale), shape ``batch_shape``."""
        return 0.5 + 0.5 * math.log(2 * math.pi) + ops.log(self.scale)
