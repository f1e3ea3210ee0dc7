"""Which implementation runs the fused kernels' per-step gate arithmetic.

'numpy' (``numpy_steps``) or 'numba' (``numba_steps``: the same functions with
the arithmetic between the tanh calls fused into compiled loops); 'auto' picks
numba when it imports (it comes with librosa), else numpy. The matrix products
are NumPy's either way.
"""
from __future__ import annotations

from . import numba_steps, numpy_steps

BACKENDS = ("auto", "numba", "numpy")


def resolve(backend: str) -> str:
    """'auto' -> 'numba' or 'numpy'; an explicit 'numba' must import."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "auto":
        return "numba" if numba_steps.available() else "numpy"
    if backend == "numba" and not numba_steps.available():
        raise ImportError("backend='numba' needs numba (pip install numba), or use backend='numpy'")
    return backend


def steps(backend: str):
    """The module of step functions for a resolved backend name."""
    return numba_steps if backend == "numba" else numpy_steps
