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


# torch.Generator().initial_seed(): the seed of every new Generator until manual_seed.
DEFAULT_GENERATOR_SEED = 67280421310721


class Generator(np.random.Generator):
    """``torch.Generator``: a NumPy generator that can be reseeded in place with ``manual_seed``.

    ``rnnbp.Generator().manual_seed(42)`` is what PyTorch scripts pass as ``generator=`` (to
    ``random_split``, ``DataLoader``, ``randn``); being an ``np.random.Generator``, it is accepted
    everywhere rnnbp takes one.
    """

    def __init__(self, device="cpu"):
        from .device import as_device

        as_device(device)
        # As torch.Generator(): a new generator starts from one fixed default seed (so it is
        # reproducible without manual_seed), and initial_seed() tells the seed used.
        super().__init__(np.random.PCG64(DEFAULT_GENERATOR_SEED))
        self._seed = DEFAULT_GENERATOR_SEED

    def manual_seed(self, seed: int) -> "Generator":
        """Restart the stream from ``seed``; returns self."""
        self.bit_generator.state = np.random.PCG64(int(seed)).state
        self._seed = int(seed)
        return self

    def initial_seed(self):
        return self._seed

    def get_state(self) -> dict:
        return self.bit_generator.state

    def set_state(self, state: dict) -> "Generator":
        self.bit_generator.state = state
        return self
