"""Layer-normalised GRU cell (Ba, Kiros & Hinton 2016, "Layer Normalization", applied to a GRU).

As in :class:`~rnnbp.nn.LayerNormLSTMCell`, the input and recurrent projections
are normalised separately, each by its own LayerNorm over all 3H gate
pre-activations. The cell is composed from primitive ops only, so autograd gives
its full BPTT gradients; :class:`~rnnbp.nn.LayerNormGRU` runs the same equations
as one fused kernel per layer and direction, with these cells' parameters.
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


class LayerNormGRUCell(Module):
    """A GRU cell with layer normalisation on the input and on the recurrent projection.

    PyTorch's gate order r, z, n; each LN has its own learnable gain and bias::

        a = LN_ih(x W_ih^T) + b                      # (B, 3H), LN over all 3H
        u = LN_hh(h W_hh^T)                          # (B, 3H), LN over all 3H
        r = sigmoid(a_r + u_r),  z = sigmoid(a_z + u_z)
        n = tanh(a_n + r * u_n)
        h' = (1 - z) * n + z * h

    The reset gate multiplies the whole normalised recurrent term of n, LN bias
    included, as PyTorch's GRU multiplies (h W_hn^T + b_hn): the n block of
    ``layernorm_hh.bias`` plays b_hn and ``b`` plays b_ih (for r and z, b_ih + b_hh).
    The state h is not normalised (it is the output, and it stays in [-1, 1]).
    ``b`` is redundant with the LN biases in exact arithmetic; it is kept (and
    ``bias=False`` drops it) for parity with :class:`~rnnbp.nn.LayerNormLSTMCell`.

    Args:
        input_size : int > 0, features I of x.
        hidden_size : int > 0, size H of h.
        bias : learn the gate bias ``b``.
        eps : float > 0, added to the variance in every LayerNorm.
        dtype : parameter dtype (float32 by default).  generator : for the initialisation.

    Parameters: ``weight_ih`` (3H, I), ``weight_hh`` (3H, H), ``bias`` (3H,) (None with
    ``bias=False``), all U(-1/sqrt(H), 1/sqrt(H)); submodules ``layernorm_ih`` and
    ``layernorm_hh`` (LayerNorm(3H)), gains 1, biases 0.

    Shape: input (B, I) or (I,); hx (B, H) or (H,), zeros when omitted -> h' like hx.
    ``state_size`` is H, for :class:`~rnnbp.nn.Recurrent`.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, eps: float = 1e-5,
                 dtype=None, generator=None):
        super().__init__()
        name = type(self).__name__
        for arg, value in (("input_size", input_size), ("hidden_size", hidden_size)):
            check_int(name, arg, value)
        check_number(name, "eps", eps, 0.0, low_open=True)
        self.input_size, self.hidden_size, self.eps = int(input_size), int(hidden_size), float(eps)
        self.state_size = self.hidden_size
        dtype = np.dtype(dtype or default_dtype())
        H = self.hidden_size
        self.weight_ih = Parameter(np.empty((3 * H, self.input_size), dtype=dtype))
        self.weight_hh = Parameter(np.empty((3 * H, H), dtype=dtype))
        if bias:
            self.bias = Parameter(np.empty(3 * H, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.layernorm_ih = LayerNorm(3 * H, eps=self.eps, dtype=dtype)
        self.layernorm_hh = LayerNorm(3 * H, eps=self.eps, dtype=dtype)
        self.reset_parameters(generator)

    def reset_parameters(self, generator=None) -> None:
        """Weights and ``bias`` ~ U(-1/sqrt(H), 1/sqrt(H)) as in PyTorch's cells; LN gains 1, biases 0."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in (self.weight_ih, self.weight_hh, self.bias):
            if p is not None:
                init.uniform_(p, -bound, bound, generator=generator)
        for ln in (self.layernorm_ih, self.layernorm_hh):
            init.ones_(ln.weight)
            init.zeros_(ln.bias)

    def forward(self, input, hx=None):
        name = type(self).__name__
        if not isinstance(input, Tensor):
            raise TypeError(f"{name}: input must be a Tensor, got {type(input).__name__}")
        batched = check_cell_input(name, input, self.input_size)
        if hx is not None:
            if isinstance(hx, (tuple, list)):
                raise TypeError(f"{name}: hx must be one tensor h, got a {type(hx).__name__}")
            check_states(name, input, (hx,), ("h",), self.hidden_size, batched)
        x = input if batched else input.unsqueeze(0)
        if hx is None:
            h = creation.zeros((x.shape[0], self.hidden_size), dtype=x.dtype)
        else:
            h = hx if batched else hx.unsqueeze(0)
        a = self.layernorm_ih(F.linear(x, self.weight_ih))
        if self.bias is not None:
            a = a + self.bias  # (B, 3H)
        u = self.layernorm_hh(F.linear(h, self.weight_hh))  # (B, 3H)
        a_r, a_z, a_n = a.chunk(3, dim=1)
        u_r, u_z, u_n = u.chunk(3, dim=1)
        r, z = (a_r + u_r).sigmoid(), (a_z + u_z).sigmoid()
        n = (a_n + r * u_n).tanh()
        h_next = n + z * (h - n)  # = (1 - z) n + z h
        return h_next if batched else h_next.squeeze(0)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.bias is None:
            s += ", bias=False"
        if self.eps != 1e-5:
            s += f", eps={self.eps}"
        return s
