"""The unrolling engine: full and truncated BPTT(k1, k2) over any recurrent model.

* :func:`unroll` runs any cell (built in or written from primitive ops) over time on the tape.
* :class:`TBPTT` trains a model over a stream or a batch of variable-length sequences with
  truncated backpropagation through time, gradient clipping, NaN/Inf checks and diagnostics.
* :func:`record_state_grads` shows ||dL/dh_t|| at every step (vanishing and exploding gradients).
"""
from ..nn.recurrent.probes import StateGradProbe, record_state_grads
from .checks import NonFiniteError
from .engine import TBPTT, Carry, RunResult, Update
from .losses import sequence_cross_entropy, sequence_mse
from .unroll import unroll

__all__ = ["TBPTT", "Carry", "NonFiniteError", "RunResult", "StateGradProbe", "Update", "record_state_grads",
           "sequence_cross_entropy", "sequence_mse", "unroll"]
