"""Argument checks shared by the synthetic data generators; each error names the function and the argument."""
from __future__ import annotations

import numpy as np


def check_int(op: str, name: str, value, minimum: int) -> int:
    """``value`` as an int >= ``minimum``; bools, floats and strings are refused."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{op}: {name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def int_range(op: str, name: str, value) -> tuple[int, int]:
    """An int ``k`` or a pair ``(low, high)`` of ints as ``(low, high)`` (``k`` -> ``(k, k)``); bounds unchecked."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value), int(value)
    try:
        pair = tuple(value)
    except TypeError:
        pair = ()
    if len(pair) != 2 or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in pair):
        raise ValueError(f"{op}: {name} must be an int or a pair (low, high) of ints, got {value!r}")
    return int(pair[0]), int(pair[1])
