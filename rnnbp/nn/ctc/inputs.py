"""Checking and normalising what the CTC loss and decoders are given, one message style for both.

Every check names the function the user called (``op``), the argument, what was expected and
what came; problems found per batch element are listed together (up to a few), not one by one.
"""
from __future__ import annotations

import numbers

import numpy as np

from ...autograd.tensor import Tensor
from ...validation import check_int

_SHOWN = 5  # batch elements listed in a message before "and k more"


def array_of(value) -> np.ndarray:
    """The ndarray behind a Tensor, or ``np.asarray(value)`` (lists, tuples, ints, arrays)."""
    return value._data if isinstance(value, Tensor) else np.asarray(value)


def elements(indices) -> str:
    """'batch element 2', 'batch elements 0, 3' or 'batch elements 0, 1, 2, 3, 4 and 7 more'."""
    indices = [int(i) for i in indices]
    shown = ", ".join(str(i) for i in indices[:_SHOWN])
    more = f" and {len(indices) - _SHOWN} more" if len(indices) > _SHOWN else ""
    return f"batch element{'s' if len(indices) > 1 else ''} {shown}{more}"


def check_log_probs(op: str, log_probs) -> tuple[Tensor, bool]:
    """``log_probs`` as a float32 or float64 Tensor (T, N, C) or (T, C), and whether it is unbatched (T, C)."""
    if not isinstance(log_probs, Tensor):
        log_probs = Tensor(np.asarray(log_probs))
    data = log_probs._data
    if data.dtype not in (np.float32, np.float64):
        raise TypeError(f"{op}: log_probs must be a floating-point tensor (float32 or float64), got dtype {data.dtype}")
    if data.ndim not in (2, 3):
        raise ValueError(
            f"{op}: log_probs must have shape (T, N, C), or (T, C) for one unbatched sequence, "
            f"got shape {data.shape} ({data.ndim}-D)"
        )
    if data.size == 0:
        raise ValueError(f"{op}: log_probs must not be empty, got shape {data.shape}")
    return log_probs, data.ndim == 2


def check_blank(op: str, blank, n_classes: int) -> int:
    """``blank`` as an int in [0, C)."""
    blank = check_int(op, "blank", blank, minimum=None)
    if not 0 <= blank < n_classes:
        raise ValueError(
            f"{op}: blank must be a class index in [0, C) = [0, {n_classes}) for log_probs with C = {n_classes} "
            f"classes, got {blank}"
        )
    return int(blank)


def check_lengths(op: str, name: str, value, batch: int, unbatched: bool, high: int | None = None,
                  high_what: str = "") -> np.ndarray:
    """Lengths as an int64 array (N,), each in [0, high] (``high_what`` says what bounds them).

    ``value`` is a Tensor, array, list or tuple of ints; an int or a 0-d Tensor too when ``unbatched``.
    """
    arr = array_of(value)
    if arr.dtype == object and all(isinstance(v, (numbers.Integral, np.integer)) for v in arr.ravel()):
        arr = arr.astype(np.int64)  # a list mixing Python and NumPy ints
    if arr.dtype.kind not in "iu" and arr.size:  # bools, floats, strings (an empty list is float64)
        raise TypeError(f"{op}: {name} must be integers (a tensor, list or tuple of ints), got {value!r}")
    arr = arr.astype(np.int64, copy=False)
    if unbatched and arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1 or arr.shape[0] != batch:
        raise ValueError(
            f"{op}: {name} must have one length per batch element, shape ({batch},), got shape {arr.shape}"
            + (" (log_probs is unbatched (T, C): give one length)" if unbatched else "")
        )
    low_bad = np.flatnonzero(arr < 0)
    if low_bad.size:
        raise ValueError(f"{op}: {name} must be >= 0; {elements(low_bad)} have {arr[low_bad].tolist()}")
    high_bad = np.flatnonzero(arr > high) if high is not None else ()
    if len(high_bad):
        raise ValueError(
            f"{op}: {name} must be at most {high} ({high_what}); {elements(high_bad)} "
            f"{'has' if high_bad.size == 1 else 'have'} {arr[high_bad].tolist()}"
        )
    return arr
