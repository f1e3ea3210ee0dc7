"""The one default random generator; ``manual_seed`` reseeds it.

Everything random in rnnbp (initialisation, dropout, shuffling) takes an
optional ``np.random.Generator`` and otherwise draws from this one, so a single
``rnnbp.manual_seed(seed)`` makes a run reproducible.
"""
from __future__ import annotations

import numpy as np

_default = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed the default generator and return it."""
    global _default
    _default = np.random.default_rng(seed)
    return _default


def default_generator() -> np.random.Generator:
    """The generator used where no ``generator`` argument is given."""
    return _default


def get_generator(generator: np.random.Generator | None) -> np.random.Generator:
    """``generator``, or the default one when it is None; anything else is refused with its type."""
    if generator is None:
        return _default
    if not isinstance(generator, np.random.Generator):
        raise TypeError(f"generator must be a numpy.random.Generator (e.g. np.random.default_rng(seed)) or None, "
                        f"got {type(generator).__name__}")
    return generator
