"""Argument checks shared by the whole package, phrased one way everywhere.

Each check takes the owner (the class or function a user called), the argument's name and its
value, returns the value normalised (a Python int or float), and otherwise raises an error that
names all three, as scikit-learn's ``check_scalar`` does:

    ``Linear: in_features must be a positive integer, got 0``
    ``SGD: lr must be a number, got str '0.1'``

A value of the wrong type (a string, a bool where a number is meant) is an ``ArgumentTypeError``
(both a ``TypeError`` and a ``ValueError``); a number out of range is a ``ValueError``. Imports nothing of rnnbp, so any layer can use it.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = ["ArgumentTypeError", "check_int", "check_number", "check_probability", "check_int_range"]


class ArgumentTypeError(TypeError, ValueError):
    """An argument of the wrong type: a TypeError, and a ValueError for code that catches bad values."""


def _got(value) -> str:
    return f"{type(value).__name__} {value!r}" if isinstance(value, (str, bytes)) else repr(value)


def check_int(owner: str, name: str, value, minimum: int | None = 1, maximum: int | None = None,
              allow_none: bool = False) -> int | None:
    """``value`` as an int in [minimum, maximum]; bools, floats and strings are refused."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)):
        kind = "a positive integer" if minimum == 1 and maximum is None else "an integer"
        raise ArgumentTypeError(f"{owner}: {name} must be {kind}{' or None' if allow_none else ''}, got {_got(value)}")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        if minimum == 1 and maximum is None:
            wanted = "a positive integer"
        elif maximum is None:
            wanted = f"an integer >= {minimum}"
        elif minimum is None:
            wanted = f"an integer <= {maximum}"
        else:
            wanted = f"an integer in [{minimum}, {maximum}]"
        raise ValueError(f"{owner}: {name} must be {wanted}, got {value!r}")
    return int(value)


def check_number(owner: str, name: str, value, low: float | None = None, high: float | None = None, *,
                 low_open: bool = False, high_open: bool = False, allow_none: bool = False,
                 finite: bool = True) -> float | None:
    """``value`` as a float in the interval given by ``low`` / ``high`` (closed unless ``*_open``).

    NaN is always refused, and so is +-inf when ``finite``.
    """
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, np.floating, np.integer)):
        raise ArgumentTypeError(f"{owner}: {name} must be a number{' or None' if allow_none else ''}, got {_got(value)}")
    value = float(value)
    bad = math.isnan(value) or (finite and math.isinf(value))
    if low is not None and (value <= low if low_open else value < low):
        bad = True
    if high is not None and (value >= high if high_open else value > high):
        bad = True
    if bad:
        if low is None and high is None:
            wanted = "a finite number" if finite else "a number (not NaN)"
        else:
            left = "(" if low_open or low is None else "["
            right = ")" if high_open or high is None else "]"
            lo = "-inf" if low is None else f"{low:g}"
            hi = "inf" if high is None else f"{high:g}"
            wanted = f"in {left}{lo}, {hi}{right}"
        raise ValueError(f"{owner}: {name} must be {wanted}, got {value!r}")
    return value


def check_probability(owner: str, name: str, value) -> float:
    """``value`` as a float in [0, 1]."""
    value = check_number(owner, name, value, finite=False)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{owner}: {name} must be a probability in [0, 1], got {value!r}")
    return value


def check_int_range(owner: str, name: str, value) -> tuple[int, int]:
    """An int ``k`` or a pair ``(low, high)`` of ints as ``(low, high)`` (``k`` -> ``(k, k)``); bounds unchecked."""
    if isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, bool):
        return int(value), int(value)
    try:
        pair = tuple(value)
    except TypeError:
        pair = ()
    if len(pair) != 2 or any(isinstance(v, bool) or not isinstance(v, (numbers.Integral, np.integer)) for v in pair):
        raise ValueError(f"{owner}: {name} must be an int or a pair (low, high) of ints, got {value!r}")
    return int(pair[0]), int(pair[1])
