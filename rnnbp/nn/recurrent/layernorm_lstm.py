"""Layer-normalised LSTM cell (Ba, Kiros & Hinton 2016, "Layer Normalization", sec. 3.1).

Normalising the input and recurrent projections separately keeps the gate
pre-activations at a fixed scale whatever the magnitude of x and h, which
steadies training of deep or long recurrences; normalising the cell state
before its tanh keeps h' from saturating as c grows. The cell is composed from
primitive ops only (``F.linear``, ``F.layer_norm``), so autograd gives its full
BPTT gradients; run it over sequences with :class:`~rnnbp.nn.Recurrent` or
:func:`rnnbp.bptt.unroll`. :class:`~rnnbp.nn.LayerNormLSTM` runs the same
equations as fused kernels over stacks of these cells (its state dict is
``nn.Recurrent(nn.LayerNormLSTMCell, ...)``'s).
"""
from __future__ import annotations

import math

import numpy as np

from ...autograd import creation
from ...autograd.tensor import Tensor
from ...autograd.dtypes import default_dtype
from ...validation import check_int, check_number
from .. import functional as F
from .. import init
from ..module import Module
from ..normalization import LayerNorm
from ..parameter import Parameter
from .cells import check_cell_input, check_states


class LayerNormLSTMCell(Module):
    """An LSTM cell with layer normalisation on both projections and on the cell state.

    Gate order i, f, g, o as in PyTorch; each LN has its own learnable gain and bias::

        gates = LN_ih(x W_ih^T) + LN_hh(h W_hh^T) + b          # (B, 4H), LN over all 4H
        i, f, o = sigmoid(.), g = tanh(.)   (the four H-wide chunks of gates)
        c' = f * c + i * g
        h' = o * tanh(LN_c(c'))                                # LN over H

    c' itself is carried un-normalised, as in the paper's equations. The LN biases
    already shift the gates, so ``b`` is redundant in exact arithmetic; it is kept
    (and ``bias=False`` drops it) for parity with the other cells.

    Args:
        input_size : int > 0, features I of x.
        hidden_size : int > 0, size H of h and c.
        bias : learn the gate bias ``b``.
        eps : float > 0, added to the variance in every LayerNorm.
        dtype : parameter dtype (float32 by default).  generator : for the initialisation.

    Parameters: ``weight_ih`` (4H, I), ``weight_hh`` (4H, H), ``bias`` (4H,) (None with
    ``bias=False``), all U(-1/sqrt(H), 1/sqrt(H)); submodules ``layernorm_ih`` and
    ``layernorm_hh`` (LayerNorm(4H)) and ``layernorm_c`` (LayerNorm(H)), gains 1, biases 0.

    Shape: input (B, I) or (I,); hx a pair (h, c) of (B, H) or (H,), zeros when omitted
    -> (h', c') like hx. ``state_size`` is (H, H), for :class:`~rnnbp.nn.Recurrent`.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, eps: float = 1e-5,
                 dtype=None, generator=None):
        super().__init__()
        name = type(self).__name__
        for arg, value in (("input_size", input_size), ("hidden_size", hidden_size)):
            check_int(name, arg, value)
        check_number(name, "eps", eps, 0.0, low_open=True)
        self.input_size, self.hidden_size, self.eps = int(input_size), int(hidden_size), float(eps)
        self.state_size = (self.hidden_size, self.hidden_size)
        dtype = np.dtype(dtype or default_dtype())
        H = self.hidden_size
        self.weight_ih = Parameter(np.empty((4 * H, self.input_size), dtype=dtype))
        self.weight_hh = Parameter(np.empty((4 * H, H), dtype=dtype))
        if bias:
            self.bias = Parameter(np.empty(4 * H, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.layernorm_ih = LayerNorm(4 * H, eps=self.eps, dtype=dtype)
        self.layernorm_hh = LayerNorm(4 * H, eps=self.eps, dtype=dtype)
        self.layernorm_c = LayerNorm(H, eps=self.eps, dtype=dtype)
        self.reset_parameters(generator)

    def reset_parameters(self, generator=None) -> None:
        """Weights and ``bias`` ~ U(-1/sqrt(H), 1/sqrt(H)) as in PyTorch's cells; LN gains 1, biases 0."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in (self.weight_ih, self.weight_hh, self.bias):
            if p is not None:
                init.uniform_(p, -bound, bound, generator=generator)
        for ln in (self.layernorm_ih, self.layernorm_hh, self.layernorm_c):
            init.ones_(ln.weight)
            init.zeros_(ln.bias)

    def _check(self, x, hx) -> bool:
        """Validate input and state shapes; returns whether the input is batched."""
        name = type(self).__name__
        if not isinstance(x, Tensor):
            raise TypeError(f"{name}: input must be a Tensor, got {type(x).__name__}")
        batched = check_cell_input(name, x, self.input_size)
        if hx is None:
            return batched
        if not isinstance(hx, (tuple, list)) or len(hx) != 2:
            raise TypeError(f"{name}: hx must be a pair (h, c), got {type(hx).__name__}")
        check_states(name, x, hx, ("h", "c"), self.hidden_size, batched)
        return batched

    def forward(self, input, hx=None):
        batched = self._check(input, hx)
        x = input if batched else input.unsqueeze(0)
        if hx is None:
            h = c = creation.zeros((x.shape[0], self.hidden_size), dtype=x.dtype)
        else:
            h, c = (s if batched else s.unsqueeze(0) for s in hx)
        gates = self.layernorm_ih(F.linear(x, self.weight_ih)) + self.layernorm_hh(F.linear(h, self.weight_hh))
        if self.bias is not None:
            gates = gates + self.bias  # (B, 4H)
        i, f, g, o = gates.chunk(4, dim=1)
        c_next = f.sigmoid() * c + i.sigmoid() * g.tanh()  # (B, H)
        h_next = o.sigmoid() * self.layernorm_c(c_next).tanh()
        if not batched:
            return h_next.squeeze(0), c_next.squeeze(0)
        return h_next, c_next

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.bias is None:
            s += ", bias=False"
        if self.eps != 1e-5:
            s += f", eps={self.eps}"
        return s
