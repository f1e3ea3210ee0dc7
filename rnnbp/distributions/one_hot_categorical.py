"""``OneHotCategorical``: a :class:`Categorical` whose samples are one-hot vectors
(``torch.distributions.OneHotCategorical``), and its straight-through reparameterised variant."""
from __future__ import annotations

from ..autograd import ops
from ..autograd.creation import eye
from ..autograd.tensor import Size, Tensor
from . import constraints
from .categorical import Categorical
from .distribution import Distribution
from .utils import as_size

__all__ = ["OneHotCategorical", "OneHotCategoricalStraightThrough"]


class OneHotCategorical(Distribution):
    """A categorical distribution over one-hot vectors of length K.

    Shape: ``probs``/``logits`` (*batch_shape, K) as for :class:`Categorical`; event_shape (K,);
    ``sample(sample_shape)`` gives one-hot vectors in the parameters' dtype, of shape
    ``sample_shape + batch_shape + (K,)``; ``log_prob(value)`` reads the class at each vector's 1.

    Args:
        probs : Tensor [shape=(*B, K)], relative probabilities.
        logits : Tensor [shape=(*B, K)], unnormalised log-probabilities.
        validate_args : bool or None (see :class:`Distribution`).
    """

    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}
    support = constraints.one_hot
    has_enumerate_support = True

    def __init__(self, probs: Tensor | None = None, logits: Tensor | None = None, validate_args: bool | None = None):
        self._categorical = Categorical(probs, logits)
        batch_shape = self._categorical.batch_shape
        event_shape = self._categorical.param_shape[-1:]
        super().__init__(batch_shape, event_shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(OneHotCategorical, _instance)
        batch_shape = as_size(batch_shape, "batch_shape")
        new._categorical = self._categorical.expand(batch_shape)
        Distribution.__init__(new, batch_shape, self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @property
    def _param(self) -> Tensor:
        return self._categorical._param

    @property
    def probs(self) -> Tensor:
        return self._categorical.probs

    @property
    def logits(self) -> Tensor:
        return self._categorical.logits

    @property
    def mean(self) -> Tensor:
        return self._categorical.probs

    @property
    def mode(self) -> Tensor:
        """The most probable class as a one-hot vector, in the parameters' dtype."""
        probs = self._categorical.probs
        return ops.one_hot(ops.argmax(probs, dim=-1), probs.shape[-1]).to(probs.dtype)

    @property
    def variance(self) -> Tensor:
        return self._categorical.probs * (1 - self._categorical.probs)

    @property
    def param_shape(self) -> Size:
        return self._categorical.param_shape

    def sample(self, sample_shape=Size(), *, generator=None) -> Tensor:
        probs = self._categorical.probs
        indices = self._categorical.sample(sample_shape, generator=generator)
        return ops.one_hot(indices, self._categorical._num_events).to(probs.dtype)

    def log_prob(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        return self._categorical.log_prob(ops.argmax(value, dim=-1))

    def entropy(self) -> Tensor:
        return self._categorical.entropy()

    def enumerate_support(self, expand: bool = True) -> Tensor:
        """The K one-hot vectors along dim 0: shape (K,) + batch_shape + (K,)."""
        n = self.event_shape[0]
        values = eye(n, dtype=self._param.dtype).reshape((n,) + (1,) * len(self.batch_shape) + (n,))
        if expand:
            values = ops.expand(values, (n,) + tuple(self.batch_shape) + (n,))
        return values


class OneHotCategoricalStraightThrough(OneHotCategorical):
    """A :class:`OneHotCategorical` whose ``rsample`` passes gradients straight through to ``probs``
    (Bengio et al., 2013): the value is the one-hot draw, the gradient that of ``probs``."""

    has_rsample = True

    def rsample(self, sample_shape=Size(), *, generator=None) -> Tensor:
        samples = self.sample(sample_shape, generator=generator)
        probs = self._categorical.probs
        return samples + (probs - probs.detach())
