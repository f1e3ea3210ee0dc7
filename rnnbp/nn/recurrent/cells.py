"""Recurrent cells built from primitive ops: one time step, on the autograd tape.

These are the reference the fused kernels are tested against, and what users
step by hand (sampling, custom loops). Each functional step takes the weights in
PyTorch's layout; the Cell modules own them under PyTorch's names
(``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh``).

Shapes: x (B, I), h and c (B, H) (h is (B, P) with an LSTM projection).
"""
from __future__ import annotations

import math

import numpy as np

from ...autograd.device import as_device
from ...autograd import creation
from ...autograd.tensor import Tensor
from ...autograd.dtypes import default_dtype
from ...validation import check_int
from .. import functional as F
from .. import init
from ..module import Module
from ..parameter import Parameter


def rnn_cell(x, h, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity: str = "tanh"):
    """h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh), act = tanh or relu."""
    pre = F.linear(x, w_ih, b_ih) + F.linear(h, w_hh, b_hh)
    return pre.tanh() if nonlinearity == "tanh" else pre.relu()


def lstm_cell(x, state, w_ih, w_hh, b_ih=None, b_hh=None, w_hr=None):
    """One LSTM step (gate order i, f, g, o); returns (h', c').

    c' = f * c + i * g,  h' = o * tanh(c')  (then h' W_hr^T with a projection).
    """
    h, c = state
    gates = F.linear(x, w_ih, b_ih) + F.linear(h, w_hh, b_hh)  # (B, 4H)
    i, f, g, o = gates.chunk(4, dim=1)
    c_next = f.sigmoid() * c + i.sigmoid() * g.tanh()
    h_next = o.sigmoid() * c_next.tanh()
    if w_hr is not None:
        h_next = F.linear(h_next, w_hr)
    return h_next, c_next


def gru_cell(x, h, w_ih, w_hh, b_ih=None, b_hh=None):
    """One GRU step (gate order r, z, n): n = tanh(x W_in^T + b_in + r * (h W_hn^T + b_hn)),
    h' = (1 - z) * n + z * h."""
    xr, xz, xn = F.linear(x, w_ih, b_ih).chunk(3, dim=1)
    hr, hz, hn = F.linear(h, w_hh, b_hh).chunk(3, dim=1)
    r = (xr + hr).sigmoid()
    z = (xz + hz).sigmoid()
    n = (xn + r * hn).tanh()
    return n + z * (h - n)


def check_states(name: str, x, states, labels: tuple, hidden_size: int, batched: bool) -> None:
    """Each state a Tensor of shape (B, hidden_size) for a batched input x (B, I), else (hidden_size,)."""
    expected = (x.shape[0], hidden_size) if batched else (hidden_size,)
    for what, s in zip(labels, states):
        if not isinstance(s, Tensor):
            raise TypeError(f"{name}: {what} must be a Tensor, got {type(s).__name__}")
        if s.shape != expected:
            raise ValueError(f"{name}: expected {what} of shape {expected} for input of shape {x.shape}, "
                             f"got {s.shape}")


def check_cell_input(name: str, x, input_size: int) -> bool:
    """A cell's input must be (B, input_size) or (input_size,); returns whether it is batched."""
    if x.ndim not in (1, 2):
        raise ValueError(f"{name}: expected input of shape (B, {input_size}) or ({input_size},), got {x.shape}")
    if x.shape[-1] != input_size:
        raise ValueError(f"{name}: input has {x.shape[-1]} features (shape {x.shape}), expected input_size={input_size}")
    return x.ndim == 2


def add_cell_parameters(cell: Module, rows: int, hh_cols: int, bias: bool, dtype=None) -> None:
    """Give ``cell`` PyTorch's cell parameters, uninitialised: weight_ih (rows, cell.input_size),
    weight_hh (rows, hh_cols) and, with ``bias``, bias_ih and bias_hh (rows,); else those two are None."""
    dtype = np.dtype(dtype or default_dtype())
    cell.weight_ih = Parameter(np.empty((rows, cell.input_size), dtype=dtype))
    cell.weight_hh = Parameter(np.empty((rows, hh_cols), dtype=dtype))
    for name in ("bias_ih", "bias_hh"):
        cell.register_parameter(name, Parameter(np.empty(rows, dtype=dtype)) if bias else None)


def reset_cell_parameters(cell: Module, generator=None) -> None:
    """Every parameter of ``cell`` ~ U(-1/sqrt(H), 1/sqrt(H)), H = cell.hidden_size, as PyTorch initialises cells."""
    bound = 1.0 / math.sqrt(cell.hidden_size)
    for p in cell.parameters():
        init.uniform_(p, -bound, bound, generator=generator)


class _CellBase(Module):
    """Parameters and argument checks shared by the three cells.

    ``state_size`` (Keras's name) tells a driver such as ``nn.Recurrent`` what state the
    cell carries: an int for one tensor h, a tuple of sizes for several (h first).
    """

    gates = 1

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None,
                 generator=None):
        super().__init__()
        as_device(device)  # the CPU: anything else is refused by name
        name = type(self).__name__
        input_size = check_int(name, "input_size", input_size)
        hidden_size = check_int(name, "hidden_size", hidden_size)
        self.input_size, self.hidden_size, self.bias = int(input_size), int(hidden_size), bool(bias)
        self.state_size = self.hidden_size
        add_cell_parameters(self, self.gates * hidden_size, hidden_size, bias, dtype)
        self.reset_parameters(generator)

    def reset_parameters(self, generator=None) -> None:
        """Every weight and bias ~ U(-1/sqrt(H), 1/sqrt(H)), as in PyTorch."""
        reset_cell_parameters(self, generator)

    def _check(self, x, h, what: str = "hx"):
        """Validate shapes; returns whether x is batched."""
        name = type(self).__name__
        batched = check_cell_input(name, x, self.input_size)
        if h is not None:
            expected = (x.shape[0], self.hidden_size) if batched else (self.hidden_size,)
            if h.shape != expected:
                raise ValueError(f"{name}: expected {what} of shape {expected}, got {h.shape}")
        return batched

    def _zeros(self, x, batched: bool):
        shape = (x.shape[0], self.hidden_size) if batched else (self.hidden_size,)
        return creation.zeros(shape, dtype=x.dtype)

    def extra_repr(self) -> str:
        extra = "" if self.bias else ", bias=False"
        return f"{self.input_size}, {self.hidden_size}{extra}"


def _batched(t, batched: bool):
    return t if batched else t.unsqueeze(0)


def _unbatched(t, batched: bool):
    return t if batched else t.squeeze(0)


class RNNCell(_CellBase):
    """Elman cell: h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh) (or relu).

    Shape: input (B, I) or (I,); hx (B, H) or (H,), zeros when omitted -> h' like hx.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh",
                 device=None, dtype=None, generator=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNNCell: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__(input_size, hidden_size, bias, device=device, dtype=dtype, generator=generator)
        self.nonlinearity = nonlinearity

    def forward(self, input, hx=None):
        batched = self._check(input, hx)
        h = self._zeros(input, batched) if hx is None else hx
        out = rnn_cell(_batched(input, batched), _batched(h, batched), self.weight_ih, self.weight_hh,
                       self.bias_ih, self.bias_hh, self.nonlinearity)
        return _unbatched(out, batched)


class LSTMCell(_CellBase):
    """LSTM cell (gate order i, f, g, o): returns (h', c').

    Shape: input (B, I) or (I,); hx a pair (h, c) of (B, H) or (H,), zeros when omitted.
    """

    gates = 4

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None,
                 generator=None):
        super().__init__(input_size, hidden_size, bias, device=device, dtype=dtype, generator=generator)
        self.state_size = (self.hidden_size, self.hidden_size)

    def forward(self, input, hx=None):
        if hx is not None and (not isinstance(hx, (tuple, list)) or len(hx) != 2):
            raise TypeError("LSTMCell: hx must be a pair (h, c)")
        batched = self._check(input, None if hx is None else hx[0], "h")
        if hx is not None:
            self._check(input, hx[1], "c")
        h, c = (self._zeros(input, batched),) * 2 if hx is None else hx
        h_next, c_next = lstm_cell(_batched(input, batched), (_batched(h, batched), _batched(c, batched)),
                                   self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        return _unbatched(h_next, batched), _unbatched(c_next, batched)


class GRUCell(_CellBase):
    """GRU cell (gate order r, z, n, with r multiplying W_hn h + b_hn).

    Shape: input (B, I) or (I,); hx (B, H) or (H,), zeros when omitted -> h' like hx.
    """

    gates = 3

    def forward(self, input, hx=None):
        batched = self._check(input, hx)
        h = self._zeros(input, batched) if hx is None else hx
        out = gru_cell(_batched(input, batched), _batched(h, batched), self.weight_ih, self.weight_hh,
                       self.bias_ih, self.bias_hh)
        return _unbatched(out, batched)
