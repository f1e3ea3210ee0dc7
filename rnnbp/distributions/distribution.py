"""``Distribution``: the base class of rnnbp's probability distributions, with PyTorch's surface."""
from __future__ import annotations

import warnings

from ..autograd import ops
from ..autograd.grad_mode import no_grad
from ..autograd.tensor import Size, Tensor
from . import constraints
from .utils import as_size, lazy_property

__all__ = ["Distribution"]


class Distribution:
    """A batch of probability distributions over events of one shape.

    Shapes: a draw ``sample(sample_shape)`` has shape ``sample_shape + batch_shape + event_shape``;
    ``log_prob(value)`` takes a value whose rightmost dims are ``event_shape`` (the dims left of
    them broadcast with ``batch_shape``) and returns one number per event; ``entropy()`` and the
    moments have ``batch_shape`` (+ ``event_shape`` for the moments). ``log_prob``, ``entropy``,
    ``rsample`` and ``kl_divergence`` are built from rnnbp's differentiable ops, so they backpropagate
    to the parameters; ``sample`` does not (it runs under ``no_grad``).

    Random draws come from ``generator`` (a ``np.random.Generator``, an rnnbp addition that PyTorch's
    ``sample`` does not take) or else from the default generator that ``rnnbp.manual_seed`` reseeds:
    reproducible, but a different stream from PyTorch's.

    Args:
        batch_shape : tuple of int, the shape over which parameters are batched.
        event_shape : tuple of int, the shape of a single sample.
        validate_args : bool or None. True checks the parameters against ``arg_constraints`` now and
            every ``log_prob`` value against ``support``, raising ValueError; None takes the default,
            which is on unless Python runs with ``-O`` (PyTorch's rule).
    """

    has_rsample = False
    has_enumerate_support = False
    # PyTorch's API makes this a class-level default (set_default_validate_args), so it is one here.
    _validate_args = __debug__

    @staticmethod
    def set_default_validate_args(value: bool) -> None:
        """Turn argument validation on or off for every distribution made later without ``validate_args``."""
        if value not in (True, False):
            raise ValueError(f"set_default_validate_args: expected True or False, got {value!r}")
        Distribution._validate_args = value

    def __init__(self, batch_shape=Size(), event_shape=Size(), validate_args: bool | None = None):
        self._batch_shape = as_size(batch_shape, "batch_shape")
        self._event_shape = as_size(event_shape, "event_shape")
        if validate_args is not None:
            self._validate_args = validate_args
        if self._validate_args:
            try:
                arg_constraints = self.arg_constraints
            except NotImplementedError:
                arg_constraints = {}
                warnings.warn(
                    f"{self.__class__} does not define `arg_constraints`. Please set `arg_constraints = {{}}` "
                    "or initialize the distribution with `validate_args=False` to turn off validation.",
                    stacklevel=2,
                )
            for param, constraint in arg_constraints.items():
                if constraints.is_dependent(constraint):
                    continue  # cannot be checked on its own
                if param not in self.__dict__ and isinstance(getattr(type(self), param, None), lazy_property):
                    continue  # the other parameterisation, not computed yet (logits of a probs Categorical)
                value = getattr(self, param)
                if not bool(constraint.check(value).all()):
                    raise ValueError(
                        f"Expected parameter {param} ({type(value).__name__} of shape {tuple(value.shape)}) "
                        f"of distribution {self!r} to satisfy the constraint {constraint!r}, "
                        f"but found invalid values:\n{value}"
                    )
        super().__init__()

    def expand(self, batch_shape, _instance=None):
        """A new distribution with the parameters expanded (not copied) to ``batch_shape``; no re-validation."""
        raise NotImplementedError(f"{type(self).__name__} does not implement expand")

    @property
    def batch_shape(self) -> Size:
        """The shape over which parameters are batched."""
        return self._batch_shape

    @property
    def event_shape(self) -> Size:
        """The shape of a single sample."""
        return self._event_shape

    @property
    def arg_constraints(self) -> dict:
        """Parameter name -> the :class:`~constraints.Constraint` it must satisfy."""
        raise NotImplementedError(f"{type(self).__name__} does not define arg_constraints")

    @property
    def support(self):
        """The :class:`~constraints.Constraint` every sample satisfies."""
        raise NotImplementedError(f"{type(self).__name__} does not define support")

    @property
    def mean(self) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not implement mean")

    @property
    def mode(self) -> Tensor:
        raise NotImplementedError(f"{self.__class__} does not implement mode")

    @property
    def variance(self) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not implement variance")

    @property
    def stddev(self) -> Tensor:
        return self.variance.sqrt()

    def sample(self, sample_shape=Size(), *, generator=None) -> Tensor:
        """A draw of shape ``sample_shape + batch_shape + event_shape``, outside the graph."""
        with no_grad():
            if generator is None:  # a subclass's rsample may not take the keyword
                return self.rsample(sample_shape)
            return self.rsample(sample_shape, generator=generator)

    def rsample(self, sample_shape=Size(), *, generator=None) -> Tensor:
        """A reparameterised draw (differentiable with respect to the parameters), where ``has_rsample``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement rsample (has_rsample is False): "
                                  "use sample(), and log_prob for score-function gradients")

    def log_prob(self, value: Tensor) -> Tensor:
        """The log density (or mass) at ``value``; shape: ``value``'s batch dims broadcast with ``batch_shape``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement log_prob")

    def cdf(self, value: Tensor) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not implement cdf")

    def icdf(self, value: Tensor) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not implement icdf")

    def enumerate_support(self, expand: bool = True) -> Tensor:
        """Every value of a discrete support along dim 0: shape ``(cardinality,) + batch_shape + event_shape``
        (``expand=False``: the batch dims of size 1)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement enumerate_support")

    def entropy(self) -> Tensor:
        """The entropy, of shape ``batch_shape``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement entropy")

    def perplexity(self) -> Tensor:
        """exp(entropy), of shape ``batch_shape``."""
        return ops.exp(self.entropy())

    def _extended_shape(self, sample_shape=Size()) -> Size:
        """``sample_shape + batch_shape + event_shape``: the shape of a draw."""
        return Size(as_size(sample_shape) + self._batch_shape + self._event_shape)

    def _validate_sample(self, value) -> None:
        """Refuse a ``log_prob``/``cdf`` value that is not a Tensor, whose rightmost dims are not
        ``event_shape``, that does not broadcast with ``batch_shape``, or that is outside the support."""
        if not isinstance(value, Tensor):
            raise ValueError("The value argument to log_prob must be a Tensor")
        actual = Size(value.shape)
        event_start = len(actual) - len(self._event_shape)
        if actual[event_start:] != self._event_shape:
            raise ValueError(f"The right-most size of value must match event_shape: {actual} vs {self._event_shape}.")
        expected = self._batch_shape + self._event_shape
        for i, j in zip(reversed(actual), reversed(expected)):
            if i != 1 and j != 1 and i != j:
                raise ValueError(
                    f"Value is not broadcastable with batch_shape+event_shape: {actual} vs {Size(expected)}."
                )
        try:
            support = self.support
        except NotImplementedError:
            warnings.warn(
                f"{self.__class__} does not define `support` to enable sample validation. Please initialize "
                "the distribution with `validate_args=False` to turn off validation.",
                stacklevel=2,
            )
            return
        if not bool(support.check(value).all()):
            raise ValueError(
                f"Expected value argument ({type(value).__name__} of shape {tuple(value.shape)}) to be within "
                f"the support ({support!r}) of the distribution {self!r}, but found invalid values:\n{value}"
            )

    def _get_checked_instance(self, cls, _instance=None):
        """The blank instance ``expand`` fills: ``_instance``, or a new object of this class."""
        if _instance is None and type(self).__init__ != cls.__init__:
            raise NotImplementedError(
                f"Subclass {self.__class__.__name__} of {cls.__name__} that defines a custom __init__ method "
                "must also define a custom .expand() method."
            )
        return self.__new__(type(self)) if _instance is None else _instance

    def __repr__(self) -> str:
        try:
            names = [k for k in self.arg_constraints if k in self.__dict__]
        except NotImplementedError:
            names = []
        args = ", ".join(
            f"{p}: {self.__dict__[p] if self.__dict__[p].numel() == 1 else self.__dict__[p].size()}" for p in names
        )
        return f"{self.__class__.__name__}({args})"
