"""Unroll a one-step cell over time on the autograd tape (the composed, reference path).

Equivalent to this loop, with rows that have ended keeping their state::

    for t in range(T):
        state = step(x[t], state)
        out[t] = state[0]

Variable lengths use the same convention as the fused kernels: rows sorted
longest first, ``batch_sizes[t]`` rows still running at step t. Outputs past a
row's length are zero and its final state is the one after its last step.
"""
from __future__ import annotations

from ...autograd import creation
from ...autograd.ops import cat, stack
from .probes import ProbeGrad


def run_on_tape(step, x, state: tuple, batch_sizes=None, record=None):
    """Run ``step(x_t, state) -> new state tuple`` over x (T, B, I); return (outputs (T, B, H), final state).

    The output at each step is the first state component (h). ``record(t, dL/dh_t)``,
    when given, sees the total gradient at each step's h in backward (see ``nn.recurrent.probes``).
    """
    T, B = x.shape[0], x.shape[1]
    outputs = []
    for t in range(T):
        b = B if batch_sizes is None else int(batch_sizes[t])
        if b == 0:
            outputs.append(creation.zeros((B,) + state[0].shape[1:], dtype=state[0].dtype))
            continue
        if b == B:
            state = _probed(tuple(step(x[t], state)), record, t)
            outputs.append(state[0])
            continue
        new = _probed(tuple(step(x[t, :b], tuple(s[:b] for s in state))), record, t)
        state = tuple(cat([n, s[b:]], dim=0) for n, s in zip(new, state))
        pad = creation.zeros((B - b,) + new[0].shape[1:], dtype=new[0].dtype)
        outputs.append(cat([new[0], pad], dim=0))
    return stack(outputs, dim=0), state


def _probed(state: tuple, record, t: int) -> tuple:
    """``state`` with h passed through a gradient probe (unchanged when there is no recorder)."""
    if record is None:
        return state
    return (ProbeGrad.apply(state[0], record=record, t=t),) + state[1:]
