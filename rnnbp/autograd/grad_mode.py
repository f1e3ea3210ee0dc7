"""Grad mode: the one global switch, as in PyTorch.

While grad mode is off, ops run their forward only and record nothing, so no
graph (and none of its saved arrays) is kept. ``no_grad`` and ``enable_grad``
work as context managers and as decorators, and restore the previous mode on
exit, exceptions included.
"""
from __future__ import annotations

import functools

_enabled = True


def is_grad_enabled() -> bool:
    """Whether ops currently record the graph."""
    return _enabled


def _set(mode: bool) -> None:
    global _enabled
    _enabled = bool(mode)


class _GradModeContext:
    _mode: bool

    def __enter__(self):
        self._previous = is_grad_enabled()
        _set(self._mode)
        return self

    def __exit__(self, *exc):
        _set(self._previous)
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__():
                return fn(*args, **kwargs)

        return wrapper


class set_grad_enabled:
    """Set grad mode to ``mode`` at once; as a context manager, restore the previous mode on exit.

    ``with rnnbp.set_grad_enabled(phase == "train"): ...`` works as in PyTorch.
    """

    def __init__(self, mode: bool):
        self._previous = is_grad_enabled()
        _set(mode)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        _set(self._previous)
        return False


class no_grad(_GradModeContext):
    """Context manager / decorator that turns graph recording off (inference, updates)."""

    _mode = False


class enable_grad(_GradModeContext):
    """Context manager / decorator that turns graph recording on inside ``no_grad``."""

    _mode = True
