"""Recording ||dL/dh_t|| at every step of a recurrent layer, the view of vanishing and exploding gradients.

dL/dh_t here is the *total* gradient at the hidden state of step t: what reaches
it from that step's output plus what flows back from step t + 1 through the
recurrence. Its norm against t shows how far back a loss still reaches. The
fused kernels compute it in their backward loop anyway and hand it to a probe;
the tape path (cells unrolled step by step) passes each step's h through
:class:`ProbeGrad`, an identity whose backward reports the gradient it sees.

A :class:`StateGradProbe` is attached to the recurrent modules of a model only
while :func:`record_state_grads` is active, so nothing changes outside it.
"""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from ...autograd.function import Function


class StateGradProbe:
    """Per-step norms of dL/dh_t, keyed by (module name, layer, direction).

    ``norms[key]`` is a float64 array (T,) over the time steps of the direction's own
    order (the reverse direction's step 0 is each sequence's last step); NaN where no
    gradient was recorded. The norm is over the batch and hidden axes together.
    """

    def __init__(self):
        self.norms: dict[tuple, np.ndarray] = {}
        self.offset = 0  # added to the steps of recorders made from now on (a sequence run in pieces)

    def recorder(self, key: tuple):
        """A callable ``(t, grad (b, H)) -> None`` that records ``||grad||`` at step ``offset + t`` under ``key``."""
        offset = self.offset

        def record(t: int, grad: np.ndarray) -> None:
            t += offset
            row = self.norms.get(key)
            if row is None or len(row) <= t:
                grown = np.full(max(t + 1, 2 * (0 if row is None else len(row))), np.nan)
                if row is not None:
                    grown[:len(row)] = row
                self.norms[key] = row = grown
            g = grad.astype(np.float64, copy=False).ravel()
            row[t] = np.sqrt(g @ g)

        return record

    def clear(self) -> None:
        self.norms.clear()

    def trimmed(self) -> dict[tuple, np.ndarray]:
        """``norms`` with trailing never-recorded steps cut off."""
        out = {}
        for key, row in self.norms.items():
            seen = np.flatnonzero(~np.isnan(row))
            out[key] = row[:seen[-1] + 1].copy() if len(seen) else row[:0].copy()
        return out


class ProbeGrad(Function):
    """Identity in forward; backward reports the incoming gradient to ``record(t, grad)``."""

    @staticmethod
    def forward(ctx, x, record=None, t=0):
        ctx.record, ctx.t = record, t
        return x.view()

    @staticmethod
    def backward(ctx, grad):
        ctx.record(ctx.t, grad)
        return grad


@contextmanager
def record_state_grads(model):
    """Attach one :class:`StateGradProbe` to every recurrent driver in ``model`` for the block.

    Usage::

        with record_state_grads(model) as probe:
            loss = loss_fn(model(x)[0], y)
            loss.backward()
        probe.trimmed()   # {(module name, layer, direction): ||dL/dh_t|| for each t}
    """
    from .driver import StackedRecurrence

    probe = StateGradProbe()
    drivers = [(name, m) for name, m in model.named_modules() if isinstance(m, StackedRecurrence)]
    for name, m in drivers:
        m._probe = (probe, name)
    try:
        yield probe
    finally:
        for _, m in drivers:
            m._probe = None
