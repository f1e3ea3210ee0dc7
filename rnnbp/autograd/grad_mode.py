"""Grad mode: the one global switch, as in PyTorch, and inference mode beside it.

While grad mode is off, ops run their forward only and record nothing, so no
graph (and none of its saved arrays) is kept. ``no_grad`` and ``enable_grad``
work as context managers and as decorators, and restore the previous mode on
exit, exceptions included.

Inference mode (``inference_mode``) is PyTorch's second flag of the same state:
entering it turns grad mode off and marks every tensor made meanwhile as an
*inference tensor* (``Tensor.is_inference()``); ``inference_mode(False)`` turns
it off and grad mode on, as ``c10::InferenceMode(false)`` does. Outside
inference mode an inference tensor refuses in-place changes and
``requires_grad_(True)``, as in PyTorch. PyTorch also refuses to save one for a
backward; rnnbp does not, since every rnnbp tensor keeps a version counter, so
the in-place change PyTorch could no longer detect is detected here.
"""
from __future__ import annotations

import functools
import inspect

_enabled = True
_inference = False


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


def is_inference_mode_enabled() -> bool:
    """Whether inference mode is on (``torch.is_inference_mode_enabled``)."""
    return _inference


class inference_mode:
    """Context manager / decorator for inference: grad mode off, and every tensor made inside is
    an inference tensor (``torch.inference_mode``).

    ``inference_mode(False)`` (or ``mode=False``) turns inference mode off and grad mode *on* for
    its block, even inside ``no_grad``, as in PyTorch. ``@inference_mode`` (no call),
    ``@inference_mode()`` and ``@inference_mode(False)`` decorate functions, and generator
    functions around each step. On exit both modes return to what they were, exceptions included.

    Why use it rather than ``no_grad``: PyTorch scripts do (for evaluation and serving); on rnnbp
    the two run at the same speed, and the inference marking only makes a later misuse (an
    in-place update or ``requires_grad_()`` on such a tensor outside the block) fail as it would
    in PyTorch.
    """

    def __new__(cls, mode=True):
        if mode is None or isinstance(mode, bool):
            return super().__new__(cls)
        return cls()(mode)  # ``@inference_mode`` without a call: ``mode`` is the function

    def __init__(self, mode: bool = True):
        self.mode = bool(mode)

    def __enter__(self):
        global _inference
        self._previous = (_enabled, _inference)
        _set(not self.mode)
        _inference = self.mode
        return self

    def __exit__(self, *exc):
        global _inference
        _set(self._previous[0])
        _inference = self._previous[1]
        return False

    def clone(self) -> "inference_mode":
        """A new context of the same mode (PyTorch's ``clone``)."""
        return self.__class__(self.mode)

    def __call__(self, fn):
        if not callable(fn):
            raise TypeError(f"inference_mode: can only decorate a callable, got {fn!r}")
        mode = self.mode
        if inspect.isgeneratorfunction(fn):
            @functools.wraps(fn)
            def generator(*args, **kwargs):
                gen = fn(*args, **kwargs)
                try:
                    with inference_mode(mode):
                        response = gen.send(None)
                    while True:  # each step of the generator runs inside the mode; the caller's code does not
                        try:
                            request = yield response
                        except GeneratorExit:
                            with inference_mode(mode):
                                gen.close()
                            raise
                        except BaseException as exc:
                            with inference_mode(mode):
                                response = gen.throw(exc)
                        else:
                            with inference_mode(mode):
                                response = gen.send(request)
                except StopIteration as stop:
                    return stop.value

            return generator

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with inference_mode(mode):
                return fn(*args, **kwargs)

        return wrapper
