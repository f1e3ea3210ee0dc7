"""Which implementation runs the fused kernels.

'numpy': a Python loop over the steps with ``numpy_steps`` (the reference).
'numba': each layer's whole-sequence forward and backward as compiled loops
(``compiled_*``); when a gradient probe records dL/dh_t at every step, the loop
over steps is Python's again with the gate arithmetic of ``numba_steps``. 'auto'
uses numba when it imports and compiles, for float32 and float64, and otherwise
falls back to NumPy with one warning.
"""
from __future__ import annotations

import warnings

import numpy as np

from . import numba_steps, numpy_steps

BACKENDS = ("auto", "numba", "numpy")
_COMPILED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_auto_failed = False


def check(backend: str) -> str:
    """Validate a backend name; an explicit 'numba' must be installed."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "numba" and not numba_steps.available():
        raise ImportError("backend='numba' needs numba (pip install numba), or use backend='numpy'")
    return backend


def steps(backend: str, dtype):
    """The step functions to use for ``backend`` on arrays of ``dtype``."""
    global _auto_failed
    if backend == "numpy" or np.dtype(dtype) not in _COMPILED_DTYPES:
        return numpy_steps
    if backend == "numba":
        numba_steps.compiled()  # errors surface: numba was asked for by name
        return numba_steps
    if _auto_failed or not numba_steps.available():
        return numpy_steps
    try:
        numba_steps.compiled()
    except Exception as exc:  # a broken or incompatible numba must not break training
        _auto_failed = True
        warnings.warn(f"rnnbp: numba could not compile the recurrent step loops ({type(exc).__name__}: {exc}); "
                      "using the NumPy steps instead", RuntimeWarning, stacklevel=2)
        return numpy_steps
    return numba_steps
