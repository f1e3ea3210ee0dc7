"""Run rnnbp's joblib work (feature extraction, cross-validation folds, sweeps) on a Dask cluster.

Everything in rnnbp that fans out does so with ``joblib.Parallel`` (for example
:func:`rnnbp.data.extract_features`), and joblib sends its tasks to whichever backend is
active. :func:`dask_backend` makes that joblib's Dask backend for a block::

    from rnnbp.parallel import dask_backend

    with dask_backend("local"):                  # a LocalCluster: worker processes on this machine
        feats = extract_features(paths)
    with dask_backend("tcp://scheduler:8786"):   # a running cluster (dask scheduler / dask worker)
        feats = extract_features(paths)

Results are the same as in one process: each task computes the same numbers wherever it
runs, and joblib returns them in submission order. Tasks run in other processes, so they
must not rely on this process's state (set seeds and thread limits inside the task). On a
remote cluster the workers need rnnbp installed and the files at the same paths (a shared
file system), and what a task writes (checkpoints, say) lands on the worker's disk.

Needs the ``dask`` extra (``pip install rnnbp[dask]``: dask and distributed), imported
only when a cluster is asked for.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

__all__ = ["dask_backend", "LOCAL"]

LOCAL = "local"  # the address meaning: start a LocalCluster on this machine


def _import_distributed():
    try:
        import distributed
    except ImportError as exc:
        raise ImportError("rnnbp.parallel.dask_backend needs dask and distributed, which are not installed: "
                          "pip install rnnbp[dask]  (or: pip install \"dask[distributed]\")") from exc
    return distributed


def _joblib_backend(client):
    """joblib's Dask backend on ``client``, active for a ``with`` block."""
    try:
        from joblib import parallel_config  # joblib >= 1.3
    except ImportError:  # joblib 1.1-1.2
        from joblib import parallel_backend as parallel_config
    return parallel_config("dask", client=client)


@contextlib.contextmanager
def dask_backend(address=LOCAL, *, n_workers: int | None = None, threads_per_worker: int = 1,
                 timeout: float = 10.0) -> Iterator:
    """Run every ``joblib.Parallel`` in the block on a Dask cluster; yields the ``distributed.Client``.

    Inside the block, ``n_jobs`` of a ``Parallel`` no longer counts local processes: joblib
    uses all the cluster's worker threads.

    Args:
        address : "local", a scheduler address, a ``distributed.Client``, or None.
            ``"local"``: start a ``distributed.LocalCluster`` on this machine (worker processes,
            listening on 127.0.0.1 only, no dashboard), closed with its client on exit.
            ``"tcp://host:8786"`` (or ``"host:8786"``): connect to that running scheduler; the
            client is closed on exit, the cluster left running. A connected ``Client``: used
            as it is and left open. None: nothing changes (joblib's own backend), yields None;
            so a CLI can pass its ``--dask`` value straight through.
        n_workers : int > 0 or None. "local" only: worker processes (None: one per core).
        threads_per_worker : int > 0. "local" only: threads per worker process (1: a worker
            computes one task at a time, and its BLAS uses one thread).
        timeout : float > 0. Seconds to wait for the scheduler to answer.

    Yields:
        distributed.Client, or None when ``address`` is None.

    Raises:
        ImportError: dask or distributed is not installed (``pip install rnnbp[dask]``).
        OSError: the scheduler at ``address`` does not answer within ``timeout``; names it.
    """
    if address is None:
        yield None
        return
    distributed = _import_distributed()
    if isinstance(address, distributed.Client):
        with _joblib_backend(address):
            yield address
        return
    if not isinstance(address, str) or not address:
        raise TypeError(f"dask_backend: address must be 'local', a scheduler address such as "
                        f"'tcp://scheduler:8786', a distributed.Client or None, got {address!r}")
    for name, value in (("n_workers", n_workers), ("threads_per_worker", threads_per_worker)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise ValueError(f"dask_backend: {name} must be an int > 0, got {value!r}")

    with contextlib.ExitStack() as stack:
        if address == LOCAL:
            cluster = distributed.LocalCluster(n_workers=n_workers, threads_per_worker=threads_per_worker,
                                               processes=True, host="127.0.0.1", dashboard_address=None)
            stack.callback(cluster.close)
            client = distributed.Client(cluster, timeout=timeout, set_as_default=False)
        else:
            try:
                client = distributed.Client(address, timeout=timeout, set_as_default=False)
            except OSError as exc:  # distributed raises OSError (TimeoutError) when nobody answers
                raise OSError(f"dask_backend: no Dask scheduler answers at {address!r} within {timeout} s "
                              f"({type(exc).__name__}: {exc}); start one (dask scheduler; dask worker "
                              f"{address}) or pass 'local'") from exc
        stack.callback(client.close)
        with _joblib_backend(client):
            yield client
