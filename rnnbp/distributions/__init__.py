"""Probability distributions with PyTorch's API (``torch.distributions``), for sampling and for
likelihood-based losses: REINFORCE (``-dist.log_prob(action) * reward``), sampling text from a
model's logits, the reparameterisation trick (``Normal(mu, sigma).rsample()``) and VAE KL terms.

``log_prob``, ``entropy``, ``rsample`` and ``kl_divergence`` are composed from rnnbp's
differentiable ops, so they backpropagate to the parameters. Draws come from the default generator
that ``rnnbp.manual_seed`` reseeds (or a ``generator=`` keyword, an rnnbp addition): reproducible,
but not PyTorch's stream. Sampled class indices are int64 Tensors.

Covered: :class:`Distribution`, :class:`Categorical`, :class:`OneHotCategorical` (and its
straight-through variant), :class:`Bernoulli`, :class:`Normal`, :class:`Uniform`,
:class:`Independent`, :func:`kl_divergence` / :func:`register_kl`, :mod:`constraints`.
"""
from . import constraints, utils  # noqa: F401  (torch.distributions.constraints, .utils)
from .bernoulli import Bernoulli
from .categorical import Categorical
from .distribution import Distribution
from .independent import Independent
from .kl import kl_divergence, register_kl
from .normal import Normal
from .one_hot_categorical import OneHotCategorical, OneHotCategoricalStraightThrough
from .uniform import Uniform

__all__ = [
    "Bernoulli", "Categorical", "Distribution", "Independent", "Normal", "OneHotCategorical",
    "OneHotCategoricalStraightThrough", "Uniform", "constraints", "kl_divergence", "register_kl",
]
