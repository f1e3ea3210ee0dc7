"""Fused layer-norm recurrent layers: nn.LayerNormLSTM and nn.LayerNormGRU (Ba, Kiros & Hinton 2016).

Each layer and direction holds one cell (:class:`~rnnbp.nn.LayerNormLSTMCell` or
:class:`~rnnbp.nn.LayerNormGRUCell`) under ``nn.Recurrent``'s names (``cell_l{k}``,
``cell_l{k}_reverse``), so a state dict moves unchanged between
``nn.LayerNormLSTM(...)`` and ``nn.Recurrent(nn.LayerNormLSTMCell, ...)`` of the same
configuration, and each cell can be stepped by hand. The driver
(``nn.recurrent.driver``) adds what every stacked recurrent module does: layers,
directions, dropout between layers, ``batch_first``, initial states, ``lengths`` and
``PackedSequence``. With ``fused=True`` (the default) each layer and direction runs as
one hand-written kernel (``kernels.layernorm_lstm``, ``kernels.layernorm_gru``): the
input projection and its layer norm for all steps at once, the recurrence as one
compiled loop, the weight gradients as one product over all steps; ``fused=False``
steps the cells on the tape, the reference the kernels are tested against.

Shapes as in :mod:`rnnbp.nn.recurrent.driver` (L sequence length, N batch, D directions):
input (L, N, H_in) or (N, L, H_in) with ``batch_first`` or (L, H_in); output (L, N, D * H);
h_0, c_0, h_n, c_n (D * num_layers, N, H).
"""
from __future__ import annotations

import warnings

from ...autograd.device import as_device
from ...validation import check_int, check_number, check_probability
from .driver import StackedRecurrence
from .kernels import backends
from .kernels.common import Workspace
from .kernels.layernorm_gru import LayerNormGRULayer, layernorm_gru_inference
from .kernels.layernorm_lstm import LayerNormLSTMLayer, layernorm_lstm_inference
from .layernorm_gru import LayerNormGRUCell
from .layernorm_lstm import LayerNormLSTMCell
from .tape import run_on_tape
from ..normalization import LayerNorm


class LayerNormRecurrence(StackedRecurrence):
    """What LayerNormLSTM and LayerNormGRU share (see the module docstring).

    Args:
        input_size : int > 0.  hidden_size : int > 0.  num_layers : int > 0.
        bias : the cells' gate bias ``b`` (the LN gains and biases are always learnt).
        batch_first : input and output are (N, L, *).
        dropout : probability of dropout on each layer's output except the last's (training only).
        bidirectional : run a second direction from each sequence's end.
        eps : float > 0, every LayerNorm's eps.
        fused : run the fused kernels (default); False steps the cells on the tape (the reference).
        backend : 'auto' | 'numba' | 'numpy', as for ``nn.LSTM``: 'numba' runs the compiled
            whole-sequence loops, 'numpy' a Python loop over the steps (the reference), 'auto'
            numba where it compiles (float32 and float64).
        dtype : parameter dtype (float32 by default).  generator : for the initialisation.
    """

    cell_class = None

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, eps: float = 1e-5,
                 fused: bool = True, backend: str = "auto", dtype=None, generator=None, *, device=None):
        super().__init__()
        as_device(device)  # the CPU: anything else is refused by name
        name = type(self).__name__
        input_size = check_int(name, "input_size", input_size)
        hidden_size = check_int(name, "hidden_size", hidden_size)
        num_layers = check_int(name, "num_layers", num_layers)
        dropout = check_probability(name, "dropout", dropout)
        check_number(name, "eps", eps, 0.0, low_open=True)
        if dropout > 0 and num_layers == 1:
            warnings.warn(f"{name}: dropout={dropout} has no effect with num_layers=1 (dropout acts between "
                          "recurrent layers)", UserWarning, stacklevel=2)
        self.input_size, self.hidden_size, self.num_layers = int(input_size), int(hidden_size), int(num_layers)
        self.bias, self.batch_first, self.dropout = bool(bias), bool(batch_first), float(dropout)
        self.bidirectional, self.eps, self.fused = bool(bidirectional), float(eps), bool(fused)
        self.backend = backends.check(backend)
        self.num_directions = 2 if bidirectional else 1
        self._workspace = Workspace()
        for layer in range(self.num_layers):
            layer_in = self.input_size if layer == 0 else self.hidden_size * self.num_directions
            for direction in range(self.num_directions):
                setattr(self, self._cell_name(layer, direction),
                        self.cell_class(layer_in, self.hidden_size, bias=self.bias, eps=self.eps, dtype=dtype,
                                        generator=generator))

    @staticmethod
    def _cell_name(layer: int, direction: int) -> str:
        return f"cell_l{layer}" + ("_reverse" if direction else "")

    def cell(self, layer: int, direction: int = 0):
        """The cell of one layer and direction (its parameters are the layer's)."""
        return getattr(self, self._cell_name(layer, direction))

    def reset_parameters(self, generator=None) -> None:
        """Each cell's ``reset_parameters``: weights U(-1/sqrt(H), 1/sqrt(H)), LN gains 1, biases 0."""
        for module in self.children():
            module.reset_parameters(generator)

    @staticmethod
    def _arrays(cell) -> list:
        """The cell's parameters in the kernel's order (``None`` for an absent bias)."""
        raise NotImplementedError

    # ---------------------------------------------------------- driver hooks
    def _param_dtype(self):
        return self.cell_l0.weight_ih._data.dtype

    def _run(self, layer, direction, x, state, batch_sizes, record=None):
        cell = self.cell(layer, direction)
        if self.fused:
            return self._kernel(cell, x, state, batch_sizes, record)
        return run_on_tape(self._step(cell), x, state, batch_sizes, record)

    def _has_inference(self) -> bool:
        return self.fused

    def _infer(self, layer, direction, x, state, batch_sizes):
        cell = self.cell(layer, direction)
        params = [None if p is None else p._data for p in self._arrays(cell)]
        return self._kernel_inference(x, state, params, batch_sizes, cell.eps)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        for arg, default in (("num_layers", 1), ("bias", True), ("batch_first", False), ("dropout", 0.0),
                             ("bidirectional", False), ("eps", 1e-5), ("fused", True), ("backend", "auto")):
            value = getattr(self, arg)
            if value != default:
                s += f", {arg}={value}"
        return s


class LayerNormLSTM(LayerNormRecurrence):
    """A stacked, optionally bidirectional layer-norm LSTM: :class:`~rnnbp.nn.LayerNormLSTMCell`'s equations
    (LN on the input projection, on the recurrent projection and on the cell state) as fused kernels.

    Returns (output, (h_n, c_n)). Arguments in :class:`LayerNormRecurrence`. PyTorch has no
    layer-norm LSTM (an open request since 2018); Keras's ``LayerNormLSTMCell`` (TF Addons)
    normalises the same three places. Example::

        lstm = nn.LayerNormLSTM(13, 64, num_layers=2, bidirectional=True)
        output, (h_n, c_n) = lstm(x, lengths=lengths)
        nn.Recurrent(nn.LayerNormLSTMCell, 13, 64, num_layers=2, bidirectional=True).load_state_dict(
            lstm.state_dict())   # the same network, composed
    """

    cell_class = LayerNormLSTMCell

    def _state_sizes(self):
        return (self.hidden_size, self.hidden_size)

    @staticmethod
    def _arrays(cell):
        return [cell.weight_ih, cell.weight_hh, cell.bias, cell.layernorm_ih.weight, cell.layernorm_ih.bias,
                cell.layernorm_hh.weight, cell.layernorm_hh.bias, cell.layernorm_c.weight, cell.layernorm_c.bias]

    def _kernel(self, cell, x, state, batch_sizes, record):
        return lstm_kernel(cell, x, state, batch_sizes, record, self.backend, self._workspace)

    def _kernel_inference(self, x, state, params, batch_sizes, eps):
        out, h_n, c_n = layernorm_lstm_inference(x, state[0], state[1], *params, batch_sizes=batch_sizes, eps=eps,
                                                 backend=self.backend)
        return out, (h_n, c_n)

    @staticmethod
    def _step(cell):
        return lambda x_t, s: tuple(cell(x_t, s))


class LayerNormGRU(LayerNormRecurrence):
    """A stacked, optionally bidirectional layer-norm GRU: :class:`~rnnbp.nn.LayerNormGRUCell`'s equations
    (LN on the input and on the recurrent projection, r applied to the normalised u_n as PyTorch applies
    it to h W_hn^T + b_hn) as fused kernels.

    Returns (output, h_n). Arguments in :class:`LayerNormRecurrence`; see :class:`LayerNormLSTM` for
    the state-dict round trip with ``nn.Recurrent(nn.LayerNormGRUCell, ...)``.
    """

    cell_class = LayerNormGRUCell

    def _state_sizes(self):
        return (self.hidden_size,)

    @staticmethod
    def _arrays(cell):
        return [cell.weight_ih, cell.weight_hh, cell.bias, cell.layernorm_ih.weight, cell.layernorm_ih.bias,
                cell.layernorm_hh.weight, cell.layernorm_hh.bias]

    def _kernel(self, cell, x, state, batch_sizes, record):
        return gru_kernel(cell, x, state, batch_sizes, record, self.backend, self._workspace)

    def _kernel_inference(self, x, state, params, batch_sizes, eps):
        out, h_n = layernorm_gru_inference(x, state[0], *params, batch_sizes=batch_sizes, eps=eps,
                                           backend=self.backend)
        return out, (h_n,)

    @staticmethod
    def _step(cell):
        return lambda x_t, s: (cell(x_t, s[0]),)


# ------------------------------------------------- one layer of a cell as its fused kernel
def lstm_kernel(cell, x, state, batch_sizes, record, backend="auto", workspace=None):
    """One layer and direction of ``LayerNormLSTMCell`` ``cell`` as the fused kernel.

    Shape: x (T, B, I), state (h, c) each (B, H) -> (out (T, B, H), (h_n, c_n)); ``record`` as in
    ``StackedRecurrence._run``."""
    out, h_n, c_n = LayerNormLSTMLayer.apply(x, state[0], state[1], *LayerNormLSTM._arrays(cell),
                                             batch_sizes=batch_sizes, eps=cell.eps, backend=backend,
                                             workspace=workspace, record=record)
    return out, (h_n, c_n)


def gru_kernel(cell, x, state, batch_sizes, record, backend="auto", workspace=None):
    """One layer and direction of ``LayerNormGRUCell`` ``cell`` as the fused kernel: as ``lstm_kernel``
    with state (h,)."""
    out, h_n = LayerNormGRULayer.apply(x, state[0], *LayerNormGRU._arrays(cell), batch_sizes=batch_sizes,
                                       eps=cell.eps, backend=backend, workspace=workspace, record=record)
    return out, (h_n,)


def fused_kernel_for(cell):
    """The fused kernel (``lstm_kernel`` or ``gru_kernel``) that computes ``cell`` exactly, or None.

    ``nn.Recurrent`` runs a library layer-norm cell through it instead of tracing the cell's ops:
    only an unmodified ``LayerNormLSTMCell`` / ``LayerNormGRUCell`` (that very class, its layer norms
    plain ``LayerNorm``s with affine parameters and the cell's ``eps``); any other cell, a subclass
    included, is traced as it is written.
    """
    kernel = {LayerNormLSTMCell: lstm_kernel, LayerNormGRUCell: gru_kernel}.get(type(cell))
    if kernel is None:
        return None
    norms = list(cell.children())
    if len(norms) != (3 if kernel is lstm_kernel else 2):
        return None
    for norm in norms:
        if type(norm) is not LayerNorm or norm.weight is None or norm.bias is None or norm.eps != cell.eps:
            return None
    return kernel
