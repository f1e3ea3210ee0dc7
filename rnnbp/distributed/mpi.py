"""The process group over MPI: rank, world size, and the few collectives data-parallel training needs.

One process group per program, the world of ``mpiexec -n K python script.py``. mpi4py is
imported only by :func:`init_process_group`, and only when an MPI launcher started the process
with more than one rank: a script run plainly (or with ``-n 1``) is a world of one, never loads
MPI, and everything in rnnbp runs exactly as without this module.

Collectives take NumPy buffers (mpi4py's upper-case, pickle-free calls) except the object ones
(:func:`broadcast_object_list`, :func:`all_gather_object`, :func:`gather_object` with PyTorch's
signatures; :func:`allgather`, :func:`gather` and :func:`from_rank0` returning their results),
which pickle small Python objects between this program's own ranks.
"""
from __future__ import annotations

import os
import pickle
import sys
from typing import Callable

import numpy as np

from ..autograd.tensor import Tensor

# Environment variables through which MPI launchers tell a process how many ranks were started:
# MPICH's and Intel MPI's hydra (and Slurm's PMI-2), Open MPI, MVAPICH.
_LAUNCHER_SIZE_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")

_INSTALL_HINT = ("pip install 'rnnbp[mpi]' (mpi4py and the mpich wheel, which brings mpiexec; or mpi4py "
                 "built against a system MPI)")


class _Group:
    """The default process group: None until :func:`init_process_group`."""

    initialized = False
    comm = None  # an mpi4py communicator when size > 1, else None
    MPI = None  # the mpi4py.MPI module when size > 1
    rank = 0
    size = 1


_group = _Group()
_grad_buffers: dict = {}  # (dtype, n) -> the flat buffer average_gradients reuses step after step


class ReduceOp:
    """Reduction operations of :func:`all_reduce`, by PyTorch's names."""

    SUM = "sum"
    MAX = "max"
    MIN = "min"
    AVG = "avg"


# ------------------------------------------------------------ the process group
def is_available() -> bool:
    """Whether mpi4py can be imported (checked without importing it)."""
    import importlib.util

    return importlib.util.find_spec("mpi4py") is not None


def launched_world_size() -> int | None:
    """How many ranks an MPI launcher says it started (from its environment variables), or None."""
    for name in _LAUNCHER_SIZE_VARS:
        value = os.environ.get(name)
        if value and value.isdigit():
            return int(value)
    return None


def init_process_group(backend: str | None = "mpi", *, comm=None) -> None:
    """Join the ranks started by ``mpiexec -n K``: every rank calls it once, before training.

    Under an MPI launcher with K > 1 ranks this imports mpi4py, takes ``MPI.COMM_WORLD`` and
    makes an uncaught exception on any rank abort all of them (``MPI_Abort``) instead of leaving
    the others waiting in a collective forever. Otherwise (a plain ``python script.py``, or
    ``-n 1``) the group is a world of one: rank 0, size 1, no MPI loaded, nothing changes.

    Args:
        backend : "mpi" (default) or None; the only backend there is.
        comm : an mpi4py communicator to use instead of ``MPI.COMM_WORLD`` (e.g. a split one).

    Raises:
        ValueError: another backend ("gloo", "nccl").
        RuntimeError: the group is already initialized.
        ImportError: launched with K > 1 ranks but mpi4py is not installed.
    """
    if backend not in (None, "mpi"):
        raise ValueError(f"init_process_group: backend {backend!r} is not available; rnnbp runs over MPI only "
                         "(backend='mpi')")
    if _group.initialized:
        raise RuntimeError("init_process_group: trying to initialize the default process group twice "
                           "(call destroy_process_group() first)")
    if comm is None:
        launched = launched_world_size()
        if launched is not None and launched > 1:
            MPI = _import_mpi()
            comm = MPI.COMM_WORLD
    if comm is not None:
        from mpi4py import MPI

        _group.rank, _group.size = comm.Get_rank(), comm.Get_size()
        launched = launched_world_size()
        if comm is MPI.COMM_WORLD and launched is not None and launched != _group.size:
            _group.rank, _group.size = 0, 1
            raise RuntimeError(
                f"init_process_group: the launcher started {launched} ranks but MPI sees {comm.Get_size()}: this "
                f"mpiexec belongs to another MPI than the one mpi4py loaded ({MPI.Get_library_version()[:40]!r}); "
                "run the mpiexec installed beside this Python (python -m rnnbp.distributed -n K script.py finds it)")
        if _group.size > 1:
            _group.comm, _group.MPI = comm, MPI
            _abort_on_uncaught_exception(comm)
    _group.initialized = True


def destroy_process_group() -> None:
    """Forget the group (rank 0 of 1 again). MPI itself stays up until the program exits."""
    if _group.comm is not None and getattr(sys.excepthook, "_rnnbp_abort", False):
        sys.excepthook = sys.excepthook._previous
    _group.initialized, _group.comm, _group.MPI, _group.rank, _group.size = False, None, None, 0, 1
    _grad_buffers.clear()


def is_initialized() -> bool:
    """Whether :func:`init_process_group` was called (and the group not destroyed since)."""
    return _group.initialized


def get_rank() -> int:
    """This process's rank, 0..K-1; 0 in a world of one or before :func:`init_process_group`."""
    return _group.rank


def get_world_size() -> int:
    """K, the number of ranks; 1 in a world of one or before :func:`init_process_group`."""
    return _group.size


def active() -> bool:
    """Whether this process trains with others (an initialized group of more than one rank)."""
    return _group.comm is not None


def is_main_process() -> bool:
    """Rank 0 (always true in a world of one): the rank that writes checkpoints, metrics and logs."""
    return _group.rank == 0


def barrier() -> None:
    """Wait until every rank gets here."""
    if _group.comm is not None:
        _group.comm.Barrier()


# ------------------------------------------------------------- collectives
def broadcast(tensor: Tensor, src: int = 0) -> Tensor:
    """Overwrite ``tensor`` on every rank with rank ``src``'s values, in place (PyTorch's ``broadcast``)."""
    if _group.comm is not None:
        _bcast_array_into(tensor, _check_src("broadcast", src))
    return tensor


def all_reduce(tensor: Tensor, op: str = ReduceOp.SUM) -> Tensor:
    """Replace ``tensor`` on every rank by the reduction over ranks, in place (PyTorch's ``all_reduce``).

    ``op``: ReduceOp.SUM (default), MAX, MIN or AVG (the mean over ranks).
    """
    if op not in (ReduceOp.SUM, ReduceOp.MAX, ReduceOp.MIN, ReduceOp.AVG):
        raise ValueError(f"all_reduce: op must be ReduceOp.SUM, MAX, MIN or AVG, got {op!r}")
    if not isinstance(tensor, Tensor):
        raise TypeError(f"all_reduce: expected a Tensor, got {type(tensor).__name__}")
    if _group.comm is None:
        return tensor
    MPI = _group.MPI
    buf = np.ascontiguousarray(tensor._data)
    mpi_op = {ReduceOp.SUM: MPI.SUM, ReduceOp.AVG: MPI.SUM, ReduceOp.MAX: MPI.MAX, ReduceOp.MIN: MPI.MIN}[op]
    out = np.empty_like(buf)
    _group.comm.Allreduce(buf, out, op=mpi_op)
    if op == ReduceOp.AVG:
        out /= _group.size
    _set_array(tensor, out)
    return tensor


def broadcast_object_list(object_list: list, src: int = 0) -> None:
    """Replace the items of ``object_list`` on every rank by rank ``src``'s, in place (pickled)."""
    if not isinstance(object_list, list):
        raise TypeError(f"broadcast_object_list: expected a list, got {type(object_list).__name__}")
    if _group.comm is not None:
        object_list[:] = _group.comm.bcast(object_list if _group.rank == src else None,
                                           root=_check_src("broadcast_object_list", src))


def all_gather_object(object_list: list, obj) -> None:
    """Fill ``object_list`` (one slot per rank) with every rank's ``obj``, on every rank (pickled)."""
    _check_slots("all_gather_object", object_list)
    object_list[:] = allgather(obj)


def gather_object(obj, object_gather_list: list | None = None, dst: int = 0) -> None:
    """Fill ``object_gather_list`` (one slot per rank) on rank ``dst`` with every rank's ``obj`` (pickled).

    The other ranks pass None (PyTorch's signature).
    """
    dst = _check_src("gather_object", dst)
    if _group.rank == dst:
        _check_slots("gather_object", object_gather_list)
    gathered = gather(obj, dst)
    if _group.rank == dst:
        object_gather_list[:] = gathered


def allgather(obj) -> list:
    """``[obj of rank 0, obj of rank 1, ...]`` on every rank (pickled); ``[obj]`` in a world of one."""
    if _group.comm is None:
        return [obj]
    return _group.comm.allgather(obj)


def gather(obj, dst: int = 0) -> list | None:
    """``[obj of each rank]`` on rank ``dst``, None on the others (pickled); ``[obj]`` in a world of one."""
    if _group.comm is None:
        return [obj]
    return _group.comm.gather(obj, root=_check_src("gather", dst))


def from_rank0(fn: Callable, *args, **kwargs):
    """Call ``fn(*args, **kwargs)`` on rank 0 only and give its result to every rank.

    What reading a file that only rank 0 may see needs (a checkpoint on rank 0's disk). An
    exception ``fn`` raises is raised on every rank, so no rank is left waiting for the others.
    In a world of one it is just the call.
    """
    if _group.comm is None:
        return fn(*args, **kwargs)
    if _group.rank == 0:
        try:
            value = fn(*args, **kwargs)
        except Exception as exc:
            _group.comm.bcast((False, _picklable(exc)), root=0)
            raise
        _group.comm.bcast((True, value), root=0)
        return value
    ok, value = _group.comm.bcast(None, root=0)
    if not ok:
        raise value
    return value


def any_rank(flag: bool) -> bool:
    """True on every rank if ``flag`` is true on any rank (one small allreduce)."""
    if _group.comm is None:
        return bool(flag)
    buf = np.array([1 if flag else 0], dtype=np.int64)
    _group.comm.Allreduce(_group.MPI.IN_PLACE, buf, op=_group.MPI.SUM)
    return bool(buf[0])


def max_over_ranks(values) -> np.ndarray:
    """The elementwise maximum of an int64 vector over ranks (one small allreduce)."""
    buf = np.array(values, dtype=np.int64)
    if _group.comm is not None:
        _group.comm.Allreduce(_group.MPI.IN_PLACE, buf, op=_group.MPI.MAX)
    return buf


# --------------------------------------------------------- data-parallel steps
def broadcast_parameters(parameters, src: int = 0) -> None:
    """Give every rank rank ``src``'s parameters (and, for a Module, its buffers), in place.

    Data-parallel training starts from the same weights everywhere; after that, averaged
    gradients and the same optimizer keep them equal. A no-op in a world of one.

    Args:
        parameters : an ``nn.Module`` (its parameters and buffers) or an iterable of Tensors.
    """
    if _group.comm is None:
        return
    src = _check_src("broadcast_parameters", src)
    for t in _tensors(parameters, "broadcast_parameters", buffers=True):
        _bcast_array_into(t, src)


def average_gradients(parameters, weight: float | None = None) -> float:
    """Average every parameter's gradient over the ranks, with ONE allreduce over a flat buffer.

    Call it after ``loss.backward()`` and before clipping and ``optimizer.step()``. All
    gradients (and, after them, a flag per parameter and the weight) are packed into one
    contiguous buffer, summed over ranks in place, unpacked and divided: every rank ends with
    the same gradients, those of the mean loss over all ranks' items when each rank's loss is a
    mean over its own items. A parameter whose gradient is None on every rank stays None (the
    optimizer skips it, as in one process); one that has a gradient somewhere gets the average,
    None counting as zeros.

    Args:
        parameters : an ``nn.Module`` or an iterable of Tensors (``model.parameters()``).
        weight : None (default): the plain mean over ranks (the sum divided by the world size),
            right when every rank's loss averages the same number of items. A float >= 0 (e.g. the
            number of items or valid tokens behind this rank's mean loss): the weighted mean
            ``sum_r weight_r * grad_r / sum_r weight_r``, right for uneven shards or masks; a rank
            with weight 0 joins without contributing.

    Returns:
        float: the divisor used, ``sum_r weight_r`` (or the world size); 0.0 when every weight was
        0, in which case the gradients are left as they were (there is nothing to average).
        In a world of one: ``weight`` (or 1.0), gradients untouched.
    """
    if _group.comm is None:
        return 1.0 if weight is None else float(weight)
    params = _tensors(parameters, "average_gradients")
    if weight is not None and not (float(weight) >= 0 and np.isfinite(float(weight))):
        raise ValueError(f"average_gradients: weight must be a finite number >= 0, got {weight!r}")
    dtype = np.result_type(*[p._data.dtype for p in params]) if params else np.dtype(np.float64)
    sizes = [p._data.size for p in params]
    n = sum(sizes)
    buf = _grad_buffers.get((dtype, n, len(params)))
    if buf is None:
        buf = _grad_buffers[(dtype, n, len(params))] = np.empty(n + len(params) + 1, dtype=dtype)
    flags = buf[n:n + len(params)]
    offset = 0
    for i, (p, size) in enumerate(zip(params, sizes)):
        segment = buf[offset:offset + size]
        if p._grad is None:
            segment.fill(0)
            flags[i] = 0
        else:
            if weight is None:
                segment[...] = p._grad.reshape(-1)
            else:
                np.multiply(p._grad.reshape(-1), weight, out=segment, casting="unsafe")
            flags[i] = 1
        offset += size
    buf[-1] = 1.0 if weight is None else float(weight)
    _group.comm.Allreduce(_group.MPI.IN_PLACE, buf, op=_group.MPI.SUM)
    total = float(buf[-1])
    if total == 0:
        return 0.0
    offset = 0
    for i, (p, size) in enumerate(zip(params, sizes)):
        segment = buf[offset:offset + size].reshape(p._data.shape)
        offset += size
        if flags[i] == 0:
            continue  # no rank has a gradient for it
        g = p._grad
        if g is None or not (g.flags.writeable and g.flags.c_contiguous and g.shape == p._data.shape):
            g = p._grad = np.empty(p._data.shape, dtype=p._data.dtype)
        np.divide(segment, total, out=g, casting="unsafe")
    return total


# ------------------------------------------------------------------ helpers
def _import_mpi():
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise ImportError(f"rnnbp.distributed: this process was started by an MPI launcher with "
                          f"{launched_world_size()} ranks, but mpi4py is not installed: {_INSTALL_HINT}") from exc
    return MPI


def _abort_on_uncaught_exception(comm) -> None:
    """Print an uncaught exception as usual, then MPI_Abort every rank (as ``python -m mpi4py`` does)."""
    previous = sys.excepthook

    def hook(kind, value, tb):
        previous(kind, value, tb)
        try:
            sys.stderr.write(f"rnnbp.distributed: uncaught {kind.__name__} on rank {comm.Get_rank()}; "
                             "aborting every rank\n")
            sys.stderr.flush()
        finally:
            comm.Abort(1)

    hook._rnnbp_abort, hook._previous = True, previous
    sys.excepthook = hook


def _check_src(op: str, src) -> int:
    if not isinstance(src, (int, np.integer)) or isinstance(src, bool) or not 0 <= src < _group.size:
        raise ValueError(f"{op}: src must be a rank in [0, {_group.size - 1}], got {src!r}")
    return int(src)


def _check_slots(op: str, slots) -> None:
    if not isinstance(slots, list) or len(slots) != _group.size:
        got = f"a list of {len(slots)}" if isinstance(slots, list) else type(slots).__name__
        raise ValueError(f"{op}: expected a list with one slot per rank ({_group.size}), got {got}")


def _tensors(parameters, op: str, buffers: bool = False) -> list:
    """The Tensors of a Module (parameters, and buffers if asked) or of an iterable, each once."""
    if callable(getattr(parameters, "parameters", None)):
        module = parameters
        items = list(module.parameters())
        if buffers and callable(getattr(module, "buffers", None)):
            items += [b for b in module.buffers() if isinstance(b, Tensor)]
    elif isinstance(parameters, Tensor):
        items = [parameters]
    else:
        try:
            items = list(parameters)
        except TypeError:
            raise TypeError(f"{op}: expected an nn.Module or an iterable of Tensors (model.parameters()), got "
                            f"{type(parameters).__name__}") from None
    seen, out = set(), []
    for i, t in enumerate(items):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: parameters[{i}] is {type(t).__name__}, not a Tensor")
        if id(t) not in seen:
            seen.add(id(t))
            out.append(t)
    return out


def _bcast_array_into(t: Tensor, src: int) -> None:
    a = t._data
    if a.flags.c_contiguous and a.flags.writeable:
        _group.comm.Bcast(a, root=src)
    else:
        buf = np.ascontiguousarray(a).copy()
        _group.comm.Bcast(buf, root=src)
        _set_array(t, buf)


def _set_array(t: Tensor, values: np.ndarray) -> None:
    if t._data.flags.writeable:
        t._data[...] = values
    else:
        t._data = values.astype(t._data.dtype, copy=False)


def _picklable(exc: BaseException) -> BaseException:
    """``exc`` if it survives pickling, else a RuntimeError carrying its type and message."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # noqa: BLE001
        return RuntimeError(f"on rank 0: {type(exc).__name__}: {exc}")
