"""Grad mode: the one global switch, as in PyTorch.

While grad mode is off, ops run their forward only and record nothing, so no
graph (and none of its saved arrays) is kept. ``no_grad`` and ``enable_grad``
work as context managers and as decorators, and restore the previous mode in
``finally``.
"""
from __future__ import annotations

import functools

_enabled = True


def is_grad_enabled() -> bool:
    """Whether ops currently record the graph."""
    return _enabled


def set_grad_enabled(mode: bool) -> None:
    global _enabled
    _enabled = bool(mode)


class _GradModeContext:
    _mode: bool

    def __enter__(self):
        self._previous = is_grad_enabled()
        set_grad_enabled(self._mode)
        return self

    def __exit__(self, *exc):
        set_grad_enabled(self._previous)
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__():
                return fn(*args, **kwargs)

        return wrapper


class no_grad(_GradModeContext):
    """Context manager / decorator that turns graph recording off (inference, updates)."""

    _mode = False


class enable_grad(_GradModeContext):
    """Context manager / decorator that turns graph recording on inside ``no_grad``."""

    _mode = True
