"""Recurrent layers: nn.RNN (Elman), nn.LSTM and nn.GRU, with PyTorch's arguments, names and layouts.

The driver (``nn.recurrent.driver.StackedRecurrence``) handles what every stacked
recurrent module shares: layers, directions, dropout between layers,
``batch_first``, initial states and variable lengths (a ``lengths`` argument or
a ``PackedSequence``). :class:`RNNBase` adds PyTorch's flat parameters and names
and runs each layer and direction as one fused kernel; a subclass gives only its
gate count, its kernel (and the kernel's inference function, which the driver runs
on bare arrays when no gradient can be asked for: ``nn.recurrent.inference``) and
its one-step function built from primitive ops. A plain streamed step under ``no_grad``
skips the driver for the kernel's compiled loop with the weights bound
(``inference.plain_forward``, ``_steppers``).

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

Regularisation inside the fused kernels, all off by default (``regularization``):
``input_dropout`` and ``recurrent_dropout`` (variational: one mask per sequence, Keras'
``dropout`` and ``recurrent_dropout``), ``zoneout`` (and ``zoneout_cell`` for the LSTM's c) and
``weight_dropout`` (DropConnect on W_hh, AWD-LSTM's WeightDrop); masks are kept across the
chunks of a sequence while the state the layer returned is carried back in as ``hx``
(``reset_masks()`` starts new ones).
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from ...autograd.device import as_device
from ...autograd.dtypes import default_dtype
from ...validation import check_int, check_probability
from .. import init
from .driver import StackedRecurrence
from .kernels import backends
from .kernels.common import Workspace
from .kernels.elman import ElmanLayer, elman_inference, elman_stepper
from .kernels.gru import GRULayer, gru_inference, gru_stepper
from .kernels.lstm import LSTMLayer, lstm_inference, lstm_stepper
from ..parameter import Parameter
from . import inference, regularization
from .cells import gru_cell, lstm_cell, rnn_cell
from .tape import run_on_tape


class RNNBase(StackedRecurrence):
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
        backend : 'auto' | 'numba' | 'numpy': who runs the kernels. 'numpy' is a Python loop over
            the steps (the reference); 'numba' compiles each layer's whole-sequence forward and
            backward (``kernels/compiled_*``); 'auto' uses numba when it imports and compiles
            (float32 and float64), else NumPy.
        dtype : parameter dtype (float32 by default).
        generator : for the initialisation and, with regularisation, the masks (default: rnnbp's
            default generator).
        input_dropout : variational dropout of each layer's input, one mask per sequence and
            feature for all steps (Keras' ``dropout``; AWD-LSTM's ``dropouti``/``dropouth``). Not
            PyTorch's ``dropout``, which keeps its meaning (between layers, fresh at every step).
        recurrent_dropout : variational dropout of h_{t-1} where it enters h_{t-1} W_hh^T, one mask
            per sequence (Keras' ``recurrent_dropout``, Gal & Ghahramani 2016); the carried state
            is not masked.
        zoneout : per unit and step, keep the previous h with this probability (Krueger et al.
            2016); in eval h_t = p h_{t-1} + (1 - p) h_new. Keras and AWD-LSTM have no zoneout.
        zoneout_cell : LSTM only, zoneout of c (default: ``zoneout``).
        weight_dropout : DropConnect on W_hh, one mask per forward (Wan et al. 2013; AWD-LSTM's
            ``wdrop``, its WeightDrop).

    The four are off at 0 (the plain kernels run, unchanged), act in training only (but zoneout,
    whose eval is its expectation), and run inside the fused kernels with hand-written backwards
    (see ``nn.recurrent.regularization``, which also says how masks are kept across TBPTT chunks:
    ``reset_masks``, ``set_masks``, ``last_masks``).
    """

    gates = 1
    has_cell_state = False

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 proj_size: int = 0, fused: bool = True, backend: str = "auto", dtype=None, generator=None, *,
                 input_dropout: float = 0.0, recurrent_dropout: float = 0.0, zoneout: float = 0.0,
                 zoneout_cell: float | None = None, weight_dropout: float = 0.0, device=None):
        super().__init__()
        as_device(device)  # the CPU: anything else is refused by name
        name = type(self).__name__
        rates = regularization.check_rates(name, self.has_cell_state, input_dropout, recurrent_dropout, zoneout,
                                           zoneout_cell, weight_dropout)
        for rate_name, value in rates.items():
            setattr(self, rate_name, value)
        self._regularizer = regularization.Regularizer(generator)
        self._call_masks = None
        input_size = check_int(name, "input_size", input_size)
        hidden_size = check_int(name, "hidden_size", hidden_size)
        num_layers = check_int(name, "num_layers", num_layers)
        dropout = check_probability(name, "dropout", dropout)
        proj_size = check_int(name, "proj_size", proj_size, minimum=0)
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
        dtype = np.dtype(dtype or default_dtype())
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

    def flatten_parameters(self) -> None:
        """A no-op kept for PyTorch scripts: rnnbp's kernels read the weights where they are."""

    @property
    def all_weights(self) -> list:
        """The parameters of each layer and direction, as PyTorch's ``all_weights``."""
        return [[getattr(self, name) for name in names] for names in self._flat_weights_names]

    def _param_names(self, layer: int, direction: int) -> tuple:
        """Names of (w_ih, w_hh, b_ih, b_hh, w_hr) of one layer and direction, built once per module."""
        names = self.__dict__.get("_layer_param_names")
        if names is None:  # built lazily: modules pickled before it existed load without it
            names = []
            for k in range(self.num_layers * self.num_directions):
                sfx = f"_l{k // self.num_directions}" + ("_reverse" if k % self.num_directions else "")
                names.append(tuple(f"{p}{sfx}" for p in ("weight_ih", "weight_hh", "bias_ih", "bias_hh",
                                                          "weight_hr")))
            self._layer_param_names = names
        return names[layer * self.num_directions + direction]

    def _layer_params(self, layer: int, direction: int) -> tuple:
        """(w_ih, w_hh, b_ih, b_hh, w_hr) of one layer and direction; absent ones are None."""
        get = self._parameters.get
        return tuple(get(name) for name in self._param_names(layer, direction))

    # -------------------------------------------------------- per-cell hooks
    def _kernel(self, x, state: tuple, params: tuple, batch_sizes, record, **masks):
        """Fused kernel over one layer and direction -> (output, final state tuple).

        ``masks``: rec_mask, zone_h, zone_c for the kernel (see ``regularization``), when regularised."""
        raise NotImplementedError

    def _step(self, params: tuple):
        """The one-step function ``(x_t, state) -> state`` built from primitive ops."""
        raise NotImplementedError

    def _kernel_inference(self, x, state: tuple, params: tuple, batch_sizes):
        """``_kernel`` on ndarrays, for inference: no graph, fresh arrays -> (output, final state tuple)."""
        raise NotImplementedError

    def _stepper(self, params: tuple):
        """The kernel's compiled inference loop with these weights bound (``kernels.*_stepper``), or None.

        It stands for ``_kernel_inference`` of the same class: a subclass overriding that one
        (or ``_infer``) without this one runs its own code, never the bound loop."""
        return None

    # ---------------------------------------------------------- driver hooks
    def _state_sizes(self) -> tuple[int, ...]:
        h = self.proj_size or self.hidden_size
        return (h, self.hidden_size) if self.has_cell_state else (h,)

    def _param_dtype(self):
        return self._parameters["weight_ih_l0"]._data.dtype

    def _run(self, layer, direction, x, state, batch_sizes, record=None):
        params = self._layer_params(layer, direction)
        call_masks = self.__dict__.get("_call_masks")
        masks = None if call_masks is None else call_masks[(layer, direction)]
        if masks is not None:
            if not self.fused:
                return regularization.run_composed(self._kind, x, state, params, masks, batch_sizes,
                                                   getattr(self, "nonlinearity", "tanh"))
            x, params = regularization.masked_params(x, params, masks)
            return self._kernel(x, state, params, batch_sizes, record, rec_mask=masks.recurrent,
                                zone_h=masks.zone_h, zone_c=masks.zone_c)
        if self.fused:
            return self._kernel(x, state, params, batch_sizes, record)
        return run_on_tape(self._step(params), x, state, batch_sizes, record)

    def _has_inference(self) -> bool:
        return self.fused and not regularization.Regularizer.active(self, self.training)

    def __setattr__(self, name: str, value) -> None:
        super().__setattr__(name, value)
        kept = self.__dict__.get("_kept_steppers")
        if kept is not None:
            kept.plan = None  # what a streamed step worked out may no longer hold (``inference.StreamPlan``)

    def _steppers(self, dtype, n_states: int) -> list | None:
        """Each layer's forward direction as its compiled inference loop with the weights bound
        (``kernels.*_stepper``), for ``inference.plain_forward``; None when this call cannot use them
        (dtype, a state count that is not this module's, regularisation, no compiled loops).

        Kept while the parameters hold the same arrays (an in-place update is seen, being the same
        memory; a replaced or non-contiguous array makes them again, or not at all).
        """
        if not self._has_inference() or n_states != (2 if self.has_cell_state else 1):
            return None
        kept = self.__dict__.get("_kept_steppers")
        if kept is None:  # made on first use: modules pickled before it existed load without it
            kept = self._kept_steppers = inference.KeptSteppers()
        config = (self.backend, dtype, self.__dict__.get("nonlinearity"))
        arrays = [None if p is None else p._data for p in self._parameters.values()]
        steppers = kept.lookup(config, arrays)
        if steppers is kept.MISS:
            steppers = self._bind_steppers(arrays, dtype)
            kept.keep(config, arrays, steppers)
        return steppers

    def _bind_steppers(self, arrays: list, dtype) -> list | None:
        """``_stepper`` for each layer's forward direction, or None: a weight that is not
        C-contiguous or not of ``dtype`` (binding a copy would miss in-place updates), no compiled
        loops, or a subclass that runs its layers its own way (its ``_infer`` or
        ``_kernel_inference`` is not the one ``_stepper`` stands for)."""
        owner = lambda name: next(c for c in type(self).__mro__ if name in c.__dict__)  # noqa: E731
        if owner("_infer") is not RNNBase or owner("_kernel_inference") is not owner("_stepper"):
            return None
        if any(a is not None and (not a.flags.c_contiguous or a.dtype != dtype) for a in arrays):
            return None
        steppers = [self._stepper([None if p is None else p._data for p in self._layer_params(layer, 0)])
                    for layer in range(self.num_layers)]
        return None if any(run is None for run in steppers) else steppers

    # ------------------------------------------------------------- forward
    def forward(self, input, hx=None, lengths=None):
        if lengths is None and hx is not None:  # a streamed step takes the short way when it can
            plain = inference.plain_forward(self, input, hx)
            if plain is not None:
                return plain
        output, h_n = super().forward(input, hx, lengths)
        if self.training and regularization.Regularizer.active(self, True):
            self._regularizer.returned(h_n)  # a later forward given this state carries the masks on
        return output, h_n

    def _begin_call(self, T: int, B: int, rows, hx, dtype) -> None:
        if regularization.Regularizer.active(self, self.training):
            reg = self._regularizer
            self._call_masks = reg.begin(self, T, B, rows, reg.carries(hx), dtype)

    def _end_call(self) -> None:
        if self.__dict__.get("_call_masks") is not None:
            self._call_masks = None

    def reset_masks(self) -> None:
        """Forget the kept (and any set) masks: the next training forward draws new ones.

        A forward from ``hx=None`` or from a state this layer did not return starts new masks by
        itself; one given a state it returned keeps them, as TBPTT needs. Call this to start new
        sequences from such a state anyway.
        """
        reg = self.__dict__.get("_regularizer")
        if reg is not None:
            reg.reset()

    def set_masks(self, masks: dict) -> None:
        """Use these masks, as given, in every training forward until ``reset_masks()``.

        ``masks``: {(layer, direction): LayerMasks or a dict of its fields}, in the caller's batch
        order, e.g. ``last_masks`` of this or another layer of the same configuration.
        """
        self._regularizer.fixed = regularization.as_masks(masks)

    @property
    def last_masks(self) -> dict | None:
        """{(layer, direction): LayerMasks} of the last training forward (caller's batch order), or None."""
        reg = self.__dict__.get("_regularizer")
        return None if reg is None else reg.last

    def _infer(self, layer, direction, x, state, batch_sizes):
        """The fused kernel's inference function on the parameters' arrays (read afresh each call)."""
        get = self._parameters.get
        params = [None if p is None else p._data for p in map(get, self._param_names(layer, direction))]
        return self._kernel_inference(x, state, params, batch_sizes)

    def _pack_states(self, states: tuple):
        return states if self.has_cell_state else states[0]

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        for arg, default in (("num_layers", 1), ("bias", True), ("batch_first", False), ("dropout", 0.0),
                             ("bidirectional", False), ("proj_size", 0), ("fused", True), ("backend", "auto"),
                             ("input_dropout", 0.0), ("recurrent_dropout", 0.0), ("zoneout", 0.0),
                             ("weight_dropout", 0.0)):
            value = getattr(self, arg, default)
            if value != default:
                s += f", {arg}={value}"
        return s


class RNN(RNNBase):
    """Elman RNN: h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh) (or relu), stacked and
    optionally bidirectional. ``nonlinearity``: 'tanh' (default) or 'relu'. See :class:`RNNBase`."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 fused: bool = True, backend: str = "auto", dtype=None, generator=None, *,
                 input_dropout: float = 0.0, recurrent_dropout: float = 0.0, zoneout: float = 0.0,
                 weight_dropout: float = 0.0, device=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         fused=fused, backend=backend, dtype=dtype, generator=generator,
                         input_dropout=input_dropout, recurrent_dropout=recurrent_dropout, zoneout=zoneout,
                         weight_dropout=weight_dropout, device=device)
        self.nonlinearity = nonlinearity

    _kind = "rnn"

    def _kernel(self, x, state, params, batch_sizes, record, rec_mask=None, zone_h=None, zone_c=None):
        w_ih, w_hh, b_ih, b_hh, _ = params
        out, h_n = ElmanLayer.apply(x, state[0], w_ih, w_hh, b_ih, b_hh, batch_sizes=batch_sizes,
                                    nonlinearity=self.nonlinearity, backend=self.backend,
                                    workspace=self._workspace, record=record, rec_mask=rec_mask, zone_h=zone_h)
        return out, (h_n,)

    def _kernel_inference(self, x, state, params, batch_sizes):
        w_ih, w_hh, b_ih, b_hh, _ = params
        out, h_n = elman_inference(x, state[0], w_ih, w_hh, b_ih, b_hh, batch_sizes=batch_sizes,
                                   nonlinearity=self.nonlinearity, backend=self.backend, workspace=self._workspace)
        return out, (h_n,)

    def _stepper(self, params):
        w_ih, w_hh, b_ih, b_hh, _ = params
        return elman_stepper(w_ih, w_hh, b_ih, b_hh, self.nonlinearity, self.backend)

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

    _kind = "lstm"

    def _kernel(self, x, state, params, batch_sizes, record, rec_mask=None, zone_h=None, zone_c=None):
        w_ih, w_hh, b_ih, b_hh, w_hr = params
        out, h_n, c_n = LSTMLayer.apply(x, state[0], state[1], w_ih, w_hh, b_ih, b_hh, w_hr,
                                        batch_sizes=batch_sizes, backend=self.backend,
                                        workspace=self._workspace, record=record, rec_mask=rec_mask,
                                        zone_h=zone_h, zone_c=zone_c)
        return out, (h_n, c_n)

    def _kernel_inference(self, x, state, params, batch_sizes):
        w_ih, w_hh, b_ih, b_hh, w_hr = params
        out, h_n, c_n = lstm_inference(x, state[0], state[1], w_ih, w_hh, b_ih, b_hh, w_hr, batch_sizes=batch_sizes,
                                       backend=self.backend, workspace=self._workspace)
        return out, (h_n, c_n)

    def _stepper(self, params):
        return lstm_stepper(*params, self.backend)

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

    _kind = "gru"

    def _kernel(self, x, state, params, batch_sizes, record, rec_mask=None, zone_h=None, zone_c=None):
        w_ih, w_hh, b_ih, b_hh, _ = params
        out, h_n = GRULayer.apply(x, state[0], w_ih, w_hh, b_ih, b_hh, batch_sizes=batch_sizes,
                                  backend=self.backend, workspace=self._workspace, record=record,
                                  rec_mask=rec_mask, zone_h=zone_h)
        return out, (h_n,)

    def _kernel_inference(self, x, state, params, batch_sizes):
        w_ih, w_hh, b_ih, b_hh, _ = params
        out, h_n = gru_inference(x, state[0], w_ih, w_hh, b_ih, b_hh, batch_sizes=batch_sizes, backend=self.backend,
                                 workspace=self._workspace)
        return out, (h_n,)

    def _stepper(self, params):
        w_ih, w_hh, b_ih, b_hh, _ = params
        return gru_stepper(w_ih, w_hh, b_ih, b_hh, self.backend)

    def _step(self, params):
        w_ih, w_hh, b_ih, b_hh, _ = params
        return lambda x, s: (gru_cell(x, s[0], w_ih, w_hh, b_ih, b_hh),)
