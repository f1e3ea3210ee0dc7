"""Recurrent layers: nn.RNN (Elman), nn.LSTM and nn.GRU, with PyTorch's arguments, names and layouts.

One base class, :class:`RNNBase`, handles everything the three share: layers,
directions, dropout between layers, ``batch_first``, initial states, variable
lengths (a ``lengths`` argument or a ``PackedSequence``) and the PyTorch
parameter names. A subclass gives only its gate count, its fused kernel and its
one-step function built from primitive ops.

Dimensions: L sequence length, N batch, H_in input size, H hidden size,
H_out = proj_size or H, D = 2 if bidirectional else 1.

* input (L, N, H_in), or (N, L, H_in) with ``batch_first``, or (L, H_in) unbatched
* h_0 (D * num_layers, N, H_out) and, for LSTM, c_0 (D * num_layers, N, H)
* output (L, N, D * H_out): each step's last-layer h, both directions concatenated;
  zero past each sequence's length
* h_n (D * num_layers, N, H_out), c_n (D * num_layers, N, H): each sequence's
  state after its own last step (for the reverse direction, after step 0)

Parameters of layer k (suffix ``_reverse`` for the reverse direction), G gates:
``weight_ih_l{k}`` (G*H, H_in or D*H_out), ``weight_hh_l{k}`` (G*H, H_out),
``bias_ih_l{k}``, ``bias_hh_l{k}`` (G*H,), and for an LSTM with ``proj_size``,
``weight_hr_l{k}`` (H_out, H); all initialised U(-1/sqrt(H), 1/sqrt(H)).
A state dict moves to the PyTorch class of the same configuration unchanged.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from ..autograd import creation
from ..autograd.ops import cat, stack
from ..autograd.tensor import DEFAULT_DTYPE, Tensor
from . import functional as F
from . import init
from .kernels import backends
from .kernels.common import Workspace, batch_sizes_from_lengths
from .kernels.elman import ElmanLayer
from .kernels.gru import GRULayer
from .kernels.lstm import LSTMLayer
from .kernels.reorder import PermuteAxis, ReverseWithinLengths, reversal_index
from .module import Module
from .parameter import Parameter
from .rnn_cells import gru_cell, lstm_cell, rnn_cell
from .unroll import unroll
from .utils.rnn import PackedSequence, check_lengths, pack_in_order, pad_packed_sequence


class RNNBase(Module):
    """Shared machinery of RNN, LSTM and GRU (see the module docstring for shapes).

    Args:
        input_size : int > 0.  hidden_size : int > 0.  num_layers : int > 0.
        bias : learn b_ih and b_hh.
        batch_first : input and output are (N, L, *) instead of (L, N, *).
        dropout : probability of dropout on each layer's output except the last's (training only).
        bidirectional : run a second direction from each sequence's end.
        proj_size : LSTM only, project h to this size (0: no projection).
        fused : run the fused kernels (default); False runs the cells step by step on the tape,
            the reference the kernels are tested against.
        backend : 'auto' | 'numba' | 'numpy': who runs the LSTM and GRU kernels' per-step gate
            arithmetic. numba fuses it into compiled loops; 'auto' uses numba when it imports and
            compiles (float32 and float64), else NumPy.
        dtype : parameter dtype (float32 by default).  generator : for the initialisation.
    """

    gates = 1
    has_cell_state = False

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 proj_size: int = 0, fused: bool = True, backend: str = "auto", dtype=None, generator=None):
        super().__init__()
        name = type(self).__name__
        for arg, value in (("input_size", input_size), ("hidden_size", hidden_size), ("num_layers", num_layers)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{name}: {arg} must be a positive integer, got {value!r}")
        if not isinstance(dropout, (int, float)) or not 0 <= dropout <= 1 or isinstance(dropout, bool):
            raise ValueError(f"{name}: dropout should be a number in [0, 1], got {dropout!r}")
        if not isinstance(proj_size, (int, np.integer)) or isinstance(proj_size, bool) or proj_size < 0:
            raise ValueError(f"{name}: proj_size should be a non-negative integer, got {proj_size!r}")
        if dropout > 0 and num_layers == 1:
            warnings.warn(f"{name}: dropout={dropout} has no effect with num_layers=1 (dropout acts between "
                          "recurrent layers)", UserWarning, stacklevel=2)
        if proj_size and not self.has_cell_state:
            raise ValueError(f"{name}: proj_size is supported only by LSTM")
        if proj_size >= hidden_size:
            raise ValueError(f"{name}: proj_size has to be smaller than hidden_size, got {proj_size} >= {hidden_size}")
        self.input_size, self.hidden_size, self.num_layers = int(input_size), int(hidden_size), int(num_layers)
        self.bias, self.batch_first, self.dropout = bool(bias), bool(batch_first), float(dropout)
        self.bidirectional, self.proj_size, self.fused = bool(bidirectional), int(proj_size), bool(fused)
        self.backend = backends.check(backend)
        self._workspace = Workspace()  # the kernels' (T, B, .) buffers, reused across calls
        self.num_directions = 2 if bidirectional else 1
        dtype = np.dtype(dtype or DEFAULT_DTYPE)
        out_size = proj_size or hidden_size
        rows = self.gates * hidden_size
        self._flat_weights_names = []
        for layer in range(num_layers):
            layer_in = input_size if layer == 0 else out_size * self.num_directions
            for direction in range(self.num_directions):
                sfx = f"_l{layer}" + ("_reverse" if direction else "")
                shapes = [(f"weight_ih{sfx}", (rows, layer_in)), (f"weight_hh{sfx}", (rows, out_size))]
                if bias:
                    shapes += [(f"bias_ih{sfx}", (rows,)), (f"bias_hh{sfx}", (rows,))]
                if proj_size:
                    shapes.append((f"weight_hr{sfx}", (proj_size, hidden_size)))
                for pname, shape in shapes:
                    setattr(self, pname, Parameter(np.empty(shape, dtype=dtype)))
                self._flat_weights_names.append([p for p, _ in shapes])
        self.reset_parameters(generator)

    def reset_parameters(self, generator=None) -> None:
        """Every weight and bias ~ U(-1/sqrt(H), 1/sqrt(H)), as in PyTorch."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -bound, bound, generator=generator)

    def _layer_params(self, layer: int, direction: int) -> tuple:
        """(w_ih, w_hh, b_ih, b_hh, w_hr) of one layer and direction; absent ones are None."""
        sfx = f"_l{layer}" + ("_reverse" if direction else "")
        get = self._parameters.get
        return (get(f"weight_ih{sfx}"), get(f"weight_hh{sfx}"), get(f"bias_ih{sfx}"), get(f"bias_hh{sfx}"),
                get(f"weight_hr{sfx}"))

    # -------------------------------------------------------- per-cell hooks
    def _kernel(self, x, state: tuple, params: tuple, batch_sizes):
        """Fused kernel over one layer and direction -> (output, final state tuple)."""
        raise NotImplementedError

    def _step(self, params: tuple):
        """The one-step function ``(x_t, state) -> state`` built from primitive ops."""
        raise NotImplementedError

    # ------------------------------------------------------------- checking
    def _state_shapes(self, batch: int | None) -> list[tuple]:
        lead = (self.num_layers * self.num_directions,) + ((batch,) if batch is not None else ())
        shapes = [lead + (self.proj_size or self.hidden_size,)]
        if self.has_cell_state:
            shapes.append(lead + (self.hidden_size,))
        return shapes

    def _initial_state(self, hx, batch: int | None, dtype) -> tuple:
        name = type(self).__name__
        shapes = self._state_shapes(batch)
        if hx is None:
            return tuple(creation.zeros(s, dtype=dtype) for s in shapes)
        if self.has_cell_state:
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise TypeError(f"{name}: hx must be a pair (h_0, c_0), got {type(hx).__name__}")
            states = tuple(hx)
        else:
            if isinstance(hx, (tuple, list)):
                raise TypeError(f"{name}: hx must be one tensor h_0, got a {type(hx).__name__}")
            states = (hx,)
        out = []
        for label, s, shape in zip(("h_0", "c_0"), states, shapes):
            s = s if isinstance(s, Tensor) else Tensor(s)
            if s.shape != shape:
                raise ValueError(f"{name}: expected {label} of shape {shape}, got {s.shape}")
            if s.dtype != dtype:
                raise TypeError(f"{name}: {label} has dtype {s.dtype} but the input has dtype {dtype}")
            out.append(s)
        return tuple(out)

    def _check_input(self, x) -> None:
        name = type(self).__name__
        if x.ndim not in (2, 3):
            raise ValueError(f"{name}: expected a 3-D input (L, N, H_in) or (N, L, H_in) with batch_first, "
                             f"or 2-D unbatched (L, H_in); got shape {x.shape}")
        if x.shape[-1] != self.input_size:
            raise ValueError(f"{name}: input.size(-1) must be equal to input_size. Expected {self.input_size}, "
                             f"got {x.shape[-1]} (input shape {x.shape})")
        if x.numel() == 0:
            raise ValueError(f"{name}: expected a non-empty input (sequence length and batch larger than 0), "
                             f"got shape {x.shape}")
        if x.dtype != self.weight_ih_l0.dtype:
            raise TypeError(f"{name}: input dtype {x.dtype} differs from the parameters' {self.weight_ih_l0.dtype}; "
                            "cast the input or call .to(dtype) on the layer")

    # -------------------------------------------------------------- forward
    def forward(self, input, hx=None, lengths=None):
        """Run all layers and directions. Returns (output, h_n), or (output, (h_n, c_n)) for LSTM.

        ``lengths`` (N,) gives each sequence's length in a padded batch; with a
        ``PackedSequence`` input the output is packed the same way.
        """
        if isinstance(input, PackedSequence):
            if lengths is not None:
                raise ValueError(f"{type(self).__name__}: give lengths or a PackedSequence, not both")
            return self._forward_packed(input, hx)
        x = input if isinstance(input, Tensor) else Tensor(input)
        self._check_input(x)
        batched = x.ndim == 3
        output, states = self._forward_padded(x, hx, lengths, batched, time_major=not self.batch_first)
        return output, self._pack_states(states)

    def _forward_packed(self, packed: PackedSequence, hx):
        """A packed batch is already sorted longest first: it is padded in that order, run
        without any reordering, and packed again; only the states move between the caller's
        order and the sorted one."""
        padded, sorted_lengths = pad_packed_sequence(PackedSequence(packed.data, packed.batch_sizes))
        self._check_input(padded)
        order, inverse = packed.sorted_indices, packed.unsorted_indices
        if hx is not None and order is not None:
            states = self._initial_state(hx, padded.shape[1], padded.dtype)
            states = tuple(PermuteAxis.apply(s, order=order, axis=1) for s in states)
            hx = states if self.has_cell_state else states[0]
        output, states = self._forward_padded(padded, hx, sorted_lengths, batched=True, time_major=True)
        if order is not None:
            states = tuple(PermuteAxis.apply(s, order=inverse, axis=1) for s in states)
        out = pack_in_order(output, sorted_lengths, None)._replace(sorted_indices=order, unsorted_indices=inverse)
        return out, self._pack_states(states)

    def _pack_states(self, states: tuple):
        return states if self.has_cell_state else states[0]

    def _forward_padded(self, x, hx, lengths, batched: bool, time_major: bool):
        if not batched:
            x = x.unsqueeze(1)
        elif not time_major:
            x = x.transpose(0, 1)  # (L, N, H_in) from here on
        T, B = x.shape[0], x.shape[1]
        if batched:
            state = self._initial_state(hx, B, x.dtype)
        else:
            if lengths is not None:
                raise ValueError(f"{type(self).__name__}: lengths need a batched input (L, N, H_in)")
            # Checked in the caller's unbatched shapes, then given the batch axis of size 1.
            state = tuple(s.unsqueeze(1) for s in self._initial_state(hx, None, x.dtype))
        batch_sizes = order = None
        sorted_lengths = np.full(B, T, dtype=np.int64)
        if lengths is not None:
            lengths = check_lengths(lengths, T, B, type(self).__name__)
            if np.any(lengths != T):
                order = np.argsort(-lengths, kind="stable")
                if np.array_equal(order, np.arange(B)):
                    order = None
                else:
                    x = PermuteAxis.apply(x, order=order, axis=1)
                    state = tuple(PermuteAxis.apply(s, order=order, axis=1) for s in state)
                sorted_lengths = lengths if order is None else lengths[order]
                batch_sizes = batch_sizes_from_lengths(sorted_lengths, T)
        reverse_index = reversal_index(sorted_lengths, T) if self.bidirectional and batch_sizes is not None else None

        finals = [[] for _ in state]
        layer_input = x
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(self.num_directions):
                k = layer * self.num_directions + direction
                s0 = tuple(s[k] for s in state)
                inp = layer_input if direction == 0 else self._reverse(layer_input, reverse_index)
                params = self._layer_params(layer, direction)
                if self.fused:
                    out, s_n = self._kernel(inp, s0, params, batch_sizes)
                else:
                    out, s_n = unroll(self._step(params), inp, s0, batch_sizes)
                outputs.append(out if direction == 0 else self._reverse(out, reverse_index))
                for j, s in enumerate(s_n):
                    finals[j].append(s)
            layer_input = outputs[0] if len(outputs) == 1 else cat(outputs, dim=2)
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_input = F.dropout(layer_input, self.dropout)

        output = layer_input
        states = tuple(stack(f, dim=0) for f in finals)
        if order is not None:
            inverse = np.argsort(order)
            output = PermuteAxis.apply(output, order=inverse, axis=1)
            states = tuple(PermuteAxis.apply(s, order=inverse, axis=1) for s in states)
        if not batched:
            return output.squeeze(1), tuple(s.squeeze(1) for s in states)
        if not time_major:
            output = output.transpose(0, 1)
        return output, states

    @staticmethod
    def _reverse(x, index):
        """Reverse time within each sequence's length (plain reversal when all lengths are full)."""
        if index is None:
            return x[::-1]
        return ReverseWithinLengths.apply(x, index=index)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        for arg, default in (("num_layers", 1), ("bias", True), ("batch_first", False), ("dropout", 0.0),
                             ("bidirectional", False), ("proj_size", 0), ("fused", True), ("backend", "auto")):
            value = getattr(self, arg)
            if value != default:
                s += f", {arg}={value}"
        return s


class RNN(RNNBase):
    """Elman RNN: h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh) (or relu), stacked and
    optionally bidirectional. ``nonlinearity``: 'tanh' (default) or 'relu'. See :class:`RNNBase`."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 fused: bool = True, backend: str = "auto", dtype=None, generator=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         fused=fused, backend=backend, dtype=dtype, generator=generator)
        self.nonlinearity = nonlinearity

    def _kernel(self, x, state, params, batch_sizes):
        w_ih, w_hh, b_ih, b_hh, _ = params
        out, h_n = ElmanLayer.apply(x, state[0], w_ih, w_hh, b_ih, b_hh, batch_sizes=batch_sizes,
                                    nonlinearity=self.nonlinearity, workspace=self._workspace)
        return out, (h_n,)

    def _step(self, params):
        w_ih, w_hh, b_ih, b_hh, _ = params
        return lambda x, s: (rnn_cell(x, s[0], w_ih, w_hh, b_ih, b_hh, self.nonlinearity),)

    def extra_repr(self) -> str:
        extra = ", nonlinearity='relu'" if self.nonlinearity == "relu" else ""
        return super().extra_repr() + extra


class LSTM(RNNBase):
    """Long short-term memory (Hochreiter & Schmidhuber 1997), PyTorch's gate order i, f, g, o::

        i, f, o = sigmoid(.), g = tanh(.)  of  x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh
        c_t = f * c_{t-1} + i * g;   h_t = o * tanh(c_t)   (then h_t W_hr^T with proj_size)

    Returns (output, (h_n, c_n)). See :class:`RNNBase` for arguments and shapes.
    """

    gates = 4
    has_cell_state = True

    def _kernel(self, x, state, params, batch_sizes):
        w_ih, w_hh, b_ih, b_hh, w_hr = params
        out, h_n, c_n = LSTMLayer.apply(x, state[0], state[1], w_ih, w_hh, b_ih, b_hh, w_hr,
                                        batch_sizes=batch_sizes, backend=self.backend,
                                        workspace=self._workspace)
        return out, (h_n, c_n)

    def _step(self, params):
        w_ih, w_hh, b_ih, b_hh, w_hr = params
        return lambda x, s: lstm_cell(x, s, w_ih, w_hh, b_ih, b_hh, w_hr)


class GRU(RNNBase):
    """Gated recurrent unit (Cho et al. 2014), PyTorch's gate order r, z, n::

        r, z = sigmoid(.) of x_t W_i^T + b_i + h_{t-1} W_h^T + b_h
        n = tanh(x_t W_in^T + b_in + r * (h_{t-1} W_hn^T + b_hn))
        h_t = (1 - z) * n + z * h_{t-1}

    Returns (output, h_n). See :class:`RNNBase` for arguments and shapes.
    """

    gates = 3

    def _kernel(self, x, state, params, batch_sizes):
        w_ih, w_hh, b_ih, b_hh, _ = params
        out, h_n = GRULayer.apply(x, state[0], w_ih, w_hh, b_ih, b_hh, batch_sizes=batch_sizes,
                                  backend=self.backend, workspace=self._workspace)
        return out, (h_n,)

    def _step(self, params):
        w_ih, w_hh, b_ih, b_hh, _ = params
        return lambda x, s: (gru_cell(x, s[0], w_ih, w_hh, b_ih, b_hh),)
