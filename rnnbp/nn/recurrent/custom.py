"""Any cell in the stacked, bidirectional, variable-length driver: a new cell costs only its step.

:class:`Recurrent` is Keras's ``RNN(cell)`` layer with PyTorch's call convention:
give it a factory that builds one cell per layer and direction, and it runs
them exactly as ``nn.LSTM`` runs its fused kernels (same arguments, shapes,
``lengths`` and ``PackedSequence`` handling, reverse direction within each
sequence's length, dropout between layers).

How a layer runs: by default (``fused=True``, as for ``nn.LSTM``) the cell's step is
recorded once and replayed over the sequence as one autograd node, with what depends
only on the input hoisted out of the time loop, the runs of elementwise ops compiled
into one loop each and the weight gradients formed once over all steps
(:mod:`rnnbp.nn.recurrent.traced`): the tape's results at close to the fused kernels'
speed. A step that is not a fixed sequence of ops (Python decisions on the
sequence's values, for one) runs unrolled step by step on the tape instead, with a
warning saying why; ``fused=False`` always uses the tape (the reference).

A cell is a Module with PyTorch's cell call ``cell(x_t, hx) -> hx'``: x_t (B, I),
hx one tensor (B, H) or a tuple of tensors (h first); the step's output is h.
Its ``state_size`` attribute (an int, or a tuple of ints for several tensors)
says what state it carries; without one, the state is a single (B, hidden_size).
"""
from __future__ import annotations

import warnings
from typing import Callable


from ...validation import check_int, check_probability
from .driver import StackedRecurrence
from .kernels import backends
from .kernels.common import Workspace
from ..module import Module
from .tape import run_on_tape
from .trace.record import Untraceable
from .traced import fell_back, run_traced
from .layernorm_layers import fused_kernel_for


class Recurrent(StackedRecurrence):
    """A multi-layer, optionally bidirectional recurrent network of user-supplied cells.

    Args:
        cell_factory : callable ``(input_size, hidden_size) -> cell Module``, called once per
            layer and direction (e.g. ``nn.LSTMCell`` or ``nn.LayerNormLSTMCell``).
        input_size : int > 0, features of the input.
        hidden_size : int > 0, passed to the factory.
        num_layers : int > 0.  batch_first : input and output are (N, L, *).
        dropout : probability of dropout on each layer's output except the last's (training only).
        bidirectional : run a second direction from each sequence's end.
        fused : record each cell's step once and replay it as one node per layer and direction
            (see the module docstring); False unrolls the cell on the tape, as ``nn.LSTM(fused=False)``
            does. PyTorch has no such switch for a user's cell (the closest is compiling a loop
            over the cell with TorchScript or ``torch.compile``).
        backend : 'auto' | 'numba' | 'numpy', as for ``nn.LSTM``: 'numba' compiles the replay's runs
            of elementwise ops, 'numpy' replays them op by op (the reference), 'auto' compiles
            when numba imports and compiles (float32 and float64), else NumPy.

    Submodules are named ``cell_l{k}`` and ``cell_l{k}_reverse``, so a state dict reads
    ``cell_l0.weight_ih`` and so on. Shapes as in :mod:`rnnbp.nn.recurrent.driver`; forward returns
    ``(output, h_n)`` for a one-tensor state and ``(output, (h_n, c_n, ...))`` otherwise.

    Example::

        lstm = nn.Recurrent(nn.LayerNormLSTMCell, 13, 32, num_layers=2, bidirectional=True)
        output, (h_n, c_n) = lstm(x, lengths=lengths)
    """

    def __init__(self, cell_factory: Callable[[int, int], Module], input_size: int, hidden_size: int,
                 num_layers: int = 1, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, fused: bool = True, backend: str = "auto"):
        super().__init__()
        for arg, value in (("input_size", input_size), ("hidden_size", hidden_size), ("num_layers", num_layers)):
            check_int("Recurrent", arg, value)
        check_probability("Recurrent", "dropout", dropout)
        if dropout > 0 and num_layers == 1:
            warnings.warn(f"Recurrent: dropout={dropout} has no effect with num_layers=1 (dropout acts between "
                          "recurrent layers)", UserWarning, stacklevel=2)
        if not callable(cell_factory):
            raise TypeError(f"Recurrent: cell_factory must be callable (input_size, hidden_size) -> cell, "
                            f"got {type(cell_factory).__name__}")
        self.input_size, self.hidden_size, self.num_layers = int(input_size), int(hidden_size), int(num_layers)
        self.batch_first, self.dropout, self.bidirectional = bool(batch_first), float(dropout), bool(bidirectional)
        self.num_directions = 2 if bidirectional else 1
        self.fused, self.backend = bool(fused), backends.check(backend)
        layer_in = self.input_size
        for layer in range(self.num_layers):
            for direction in range(self.num_directions):
                cell = cell_factory(layer_in, self.hidden_size)
                if not isinstance(cell, Module):
                    raise TypeError(f"Recurrent: cell_factory must return an nn.Module, got {type(cell).__name__}")
                setattr(self, self._cell_name(layer, direction), cell)
            sizes = self._sizes_of(cell)
            layer_in = sizes[0] * self.num_directions

    @staticmethod
    def _cell_name(layer: int, direction: int) -> str:
        return f"cell_l{layer}" + ("_reverse" if direction else "")

    def _sizes_of(self, cell) -> tuple[int, ...]:
        size = getattr(cell, "state_size", self.hidden_size)
        return tuple(int(s) for s in size) if isinstance(size, (tuple, list)) else (int(size),)

    def _state_sizes(self) -> tuple[int, ...]:
        return self._sizes_of(self.cell_l0)

    def _single_state(self) -> bool:
        return not isinstance(getattr(self.cell_l0, "state_size", self.hidden_size), (tuple, list))

    def _pack_states(self, states: tuple):
        return states[0] if self._single_state() else states

    def _param_dtype(self):
        for p in self.parameters():
            return p.dtype
        return None

    def _run(self, layer, direction, x, state, batch_sizes, record=None):
        cell = getattr(self, self._cell_name(layer, direction))
        if self._single_state():
            step = lambda x_t, s: (cell(x_t, s[0]),)  # noqa: E731
        else:
            step = lambda x_t, s: tuple(cell(x_t, s))  # noqa: E731
        if not getattr(self, "fused", True):  # (modules pickled before the switch existed replay too)
            return run_on_tape(step, x, state, batch_sizes, record)
        kernel = fused_kernel_for(cell)
        if kernel is not None:  # a library layer-norm cell: its own fused kernel, not a trace
            workspace = self.__dict__.get("_workspace")
            if workspace is None:  # made on first use, as the kernels' buffers are reused across calls
                workspace = self._workspace = Workspace()
            return kernel(cell, x, state, batch_sizes, record, getattr(self, "backend", "auto"), workspace)
        result = run_traced(cell, step, x, state, batch_sizes, record, getattr(self, "backend", "auto"))
        if not isinstance(result, Untraceable):
            return result
        out = run_on_tape(step, x, state, batch_sizes, record)
        fell_back(cell, x, state, result)
        return out

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        for arg, default in (("num_layers", 1), ("batch_first", False), ("dropout", 0.0), ("bidirectional", False),
                             ("fused", True), ("backend", "auto")):
            value = getattr(self, arg, default)
            if value != default:
                s += f", {arg}={value}"
        return s
