"""blas_threads: the BLAS thread pool limited for a block of code.

Recurrent and recursive nets multiply small matrices once per step or level. On a
machine whose cores other processes also use, a multi-threaded BLAS then spends its
time waiting for its own threads: on the 2-core machine the README's figures come
from, two OpenBLAS threads were 5-10x slower than one whenever another process held
a core. The demos run under ``blas_threads(1)`` by default.
"""
from __future__ import annotations

from contextlib import contextmanager


@contextmanager
def blas_threads(n: int | None):
    """Run the block with at most ``n`` BLAS threads; None or 0 leaves the pool as it is.

    Uses threadpoolctl (it comes with scikit-learn, which librosa brings); without it,
    the block runs unchanged.

    Example::

        with rnnbp.blas_threads(1):
            trainer.fit(10)
    """
    if not n:
        yield
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=n, user_api="blas"):
        yield
