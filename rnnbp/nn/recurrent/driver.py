"""The recurrent driver: layers, directions, dropout, initial states and variable lengths around any cell.

Everything a stacked recurrent network does besides its cell lives here, once:
``batch_first`` and unbatched inputs, initial states and their checks, a
``lengths`` argument or a ``PackedSequence``, sorting the batch by length (so
that the rows still running at each step are a prefix), reversing each sequence
within its own length for the second direction, dropout between layers, and
stacking the final states. A subclass says only how one layer runs in one
direction (:meth:`StackedRecurrence._run`) and what its state holds
(:meth:`StackedRecurrence._state_sizes`): :class:`~rnnbp.nn.RNNBase` runs fused
kernels over PyTorch's flat parameters, :class:`~rnnbp.nn.Recurrent` unrolls
cells that users write.

The driver's steps move data through an ``ops`` namespace: :class:`GraphOps`
records each step on the tape (the training path); a subclass that can also run
a layer on bare arrays (:meth:`StackedRecurrence._infer`) gets the same steps on
ndarrays (``inference.ArrayOps``) whenever no gradient can be asked for, so that
one streamed time step costs its arithmetic and little else (see ``inference``).

Dimensions: L sequence length, N batch, H_in input size, H_out the size of h,
D = 2 if bidirectional else 1, S the number of state tensors (1, or 2 for (h, c)).

* input (L, N, H_in), or (N, L, H_in) with ``batch_first``, or (L, H_in) unbatched
* each state tensor (D * num_layers, N, size); h first
* output (L, N, D * H_out): each step's last-layer h, both directions concatenated;
  zero past each sequence's length
* final states: each sequence's state after its own last step (for the reverse
  direction, after step 0); a sequence of length 0 keeps its initial state
"""
from __future__ import annotations

import numpy as np

from ...autograd import creation, grad_mode
from ...autograd.ops import cat, stack
from ...autograd.tensor import Tensor
from .. import functional as F
from . import inference
from .kernels.common import batch_sizes_from_lengths
from .kernels.reorder import PermuteAxis, ReverseWithinLengths, reversal_index
from ..module import Module
from .packing import PackedSequence, as_index_array, as_index_tensor, check_lengths, pack_in_order, padded_arrays


class GraphOps:
    """The driver's data movement on Tensors, each step an autograd op (the path that can train).

    ``inference.ArrayOps`` has the same names on ndarrays; the driver's steps are written once
    against either.
    """

    @staticmethod
    def of(t: Tensor):
        """A checked Tensor (input or initial state) as the driver holds it."""
        return t

    @staticmethod
    def tensor(x) -> Tensor:
        """What the driver holds, as a Tensor (for packing)."""
        return x

    @staticmethod
    def add_batch(x):
        return x.unsqueeze(1)

    @staticmethod
    def drop_batch(x):
        return x.squeeze(1)

    @staticmethod
    def swap_time_batch(x):
        return x.transpose(0, 1)

    @staticmethod
    def permute(x, order):
        return PermuteAxis.apply(x, order=order, axis=1)

    @staticmethod
    def reverse(x, index):
        """Reverse time within each sequence's length (plain reversal when all lengths are full)."""
        return x[::-1] if index is None else ReverseWithinLengths.apply(x, index=index)

    @staticmethod
    def cat(xs):
        return xs[0] if len(xs) == 1 else cat(xs, dim=2)

    @staticmethod
    def stack(xs):
        return stack(xs, dim=0)

    @staticmethod
    def dropout(x, p):
        return F.dropout(x, p)

    @staticmethod
    def run(module, layer, direction, x, state, batch_sizes):
        record = None
        if module._probe is not None:
            probe, name = module._probe
            record = probe.recorder((name, layer, direction))
        return module._run(layer, direction, x, state, batch_sizes, record)


class StackedRecurrence(Module):
    """Base of every multi-layer, bidirectional, variable-length recurrent module.

    Subclasses set ``input_size``, ``num_layers``, ``batch_first``, ``dropout``,
    ``bidirectional`` and ``num_directions`` and implement ``_state_sizes``,
    ``_run`` and ``_param_dtype``; ``_has_inference`` and ``_infer`` optionally.
    """

    _probe = None  # (StateGradProbe, module name) while nn.recurrent.probes.record_state_grads is active

    # ------------------------------------------------------------------ hooks
    def _state_sizes(self) -> tuple[int, ...]:
        """Feature size of each state tensor, h first."""
        raise NotImplementedError

    def _run(self, layer: int, direction: int, x, state: tuple, batch_sizes, record=None):
        """One layer in one direction over a time-major, length-sorted batch.

        Shape: x (T, B, features), each state (B, size) -> (output (T, B, H_out), final state tuple).
        ``record(t, dL/dh_t)``, when given, receives the gradient at each step's h in backward.
        """
        raise NotImplementedError

    def _has_inference(self) -> bool:
        """Whether ``_infer`` can stand in for ``_run`` when no gradient is wanted."""
        return False

    def _infer(self, layer: int, direction: int, x: np.ndarray, state: tuple, batch_sizes):
        """``_run`` on ndarrays, without a graph: same shapes, fresh arrays out."""
        raise NotImplementedError

    def _param_dtype(self):
        raise NotImplementedError

    def _begin_call(self, T: int, B: int, rows, hx, dtype) -> None:
        """Called once per forward before the layers run (regularisation masks, ``nn.RNNBase``).

        ``rows[i]``: the caller's batch row at the driver's row i (None: the same order);
        ``hx``: the caller's initial state, as given (None: zeros).
        """

    def _end_call(self) -> None:
        """Called after the layers ran (or failed)."""

    def _pack_states(self, states: tuple):
        """What forward returns as the final state: one tensor, or the tuple."""
        return states[0] if len(states) == 1 else states

    # ------------------------------------------------------------- checking
    def _state_shapes(self, batch: int | None) -> list[tuple]:
        """Shape of each initial or final state tensor: (D * num_layers, N, size), or without N unbatched."""
        lead = self._state_lead(batch)
        return [lead + (size,) for size in self._state_sizes()]

    def _state_lead(self, batch: int | None) -> tuple:
        """The state shapes without their feature size: (D * num_layers, N), or (D * num_layers,) unbatched."""
        n = self.num_layers * self.num_directions
        return (n,) if batch is None else (n, batch)

    @staticmethod
    def _state_labels(n: int) -> tuple:
        return ("h_0",) if n == 1 else ("h_0", "c_0") if n == 2 else tuple(f"state {i}" for i in range(n))

    def _initial_state(self, hx, batch: int | None, dtype) -> tuple:
        """The initial states as Tensors (the caller's own when given), checked against ``_state_shapes``.

        Every streamed step checks its carried state here, so the accepting path builds nothing
        it does not need; messages are made only on failure.
        """
        if hx is None:
            return tuple(creation.zeros(s, dtype=dtype) for s in self._state_shapes(batch))
        sizes = self._state_sizes()
        if len(sizes) > 1:
            if not isinstance(hx, (tuple, list)) or len(hx) != len(sizes):
                kind = "a pair" if len(sizes) == 2 else f"a tuple of {len(sizes)}"
                raise TypeError(f"{type(self).__name__}: hx must be {kind} "
                                f"({', '.join(self._state_labels(len(sizes)))}), got {type(hx).__name__}")
            states = hx
        else:
            if isinstance(hx, (tuple, list)):
                raise TypeError(f"{type(self).__name__}: hx must be one tensor h_0, got a {type(hx).__name__}")
            states = (hx,)
        lead = self._state_lead(batch)
        out = []
        for s, size in zip(states, sizes):
            shape = lead + (size,)
            if not isinstance(s, Tensor):
                if s is None:
                    raise TypeError(f"{type(self).__name__}: {self._state_labels(len(sizes))[len(out)]} is None; "
                                    f"give a tensor of shape {shape}, or hx=None for zero initial states")
                s = Tensor(s)
            if s._data.shape != shape or s._data.dtype != dtype:
                label = self._state_labels(len(sizes))[len(out)]
                if s._data.shape != shape:
                    raise ValueError(f"{type(self).__name__}: expected {label} of shape {shape}, got {s.shape}")
                raise TypeError(f"{type(self).__name__}: {label} has dtype {s.dtype} but the input has dtype {dtype}")
            out.append(s)
        return tuple(out)

    def _check_input(self, x) -> None:
        a = x._data
        if a.ndim not in (2, 3):
            raise ValueError(f"{type(self).__name__}: expected a 3-D input (L, N, H_in) or (N, L, H_in) with "
                             f"batch_first, or 2-D unbatched (L, H_in); got shape {x.shape}")
        if a.shape[-1] != self.input_size:
            raise ValueError(f"{type(self).__name__}: input.size(-1) must be equal to input_size. Expected "
                             f"{self.input_size}, got {x.shape[-1]} (input shape {x.shape})")
        if a.size == 0:
            raise ValueError(f"{type(self).__name__}: expected a non-empty input (sequence length and batch larger "
                             f"than 0), got shape {x.shape}")
        dtype = self._param_dtype()
        if dtype is not None and a.dtype != dtype:
            raise TypeError(f"{type(self).__name__}: input dtype {x.dtype} differs from the parameters' {dtype}; "
                            "cast the input or call .to(dtype) on the layer")

    def _sort_by_length(self, lengths, T: int, B: int):
        """(order, sorted_lengths, batch_sizes) for a ``lengths`` argument.

        ``order`` sorts the batch longest first (None when it already is); ``batch_sizes``
        counts the rows running at each step (None, like everything else, when every
        sequence runs all T steps).
        """
        if lengths is None:
            return None, None, None
        lengths = check_lengths(lengths, T, B, type(self).__name__)
        if not np.any(lengths != T):
            return None, None, None
        order = np.argsort(-lengths, kind="stable")
        if np.array_equal(order, np.arange(B)):
            order = None
        sorted_lengths = lengths if order is None else lengths[order]
        return order, sorted_lengths, batch_sizes_from_lengths(sorted_lengths, T)

    # -------------------------------------------------------------- forward
    def forward(self, input, hx=None, lengths=None):
        """Run all layers and directions. Returns (output, h_n), or (output, (h_n, c_n)) with a cell state.

        ``lengths`` (N,) gives each sequence's length in a padded batch (0 allowed: that
        sequence keeps its state); with a ``PackedSequence`` input the output is packed the same way.
        """
        if isinstance(input, PackedSequence):
            if lengths is not None:
                raise ValueError(f"{type(self).__name__}: give lengths or a PackedSequence, not both")
            ops = self._ops(input.data, hx)
            output, states = self._forward_packed(input, hx, ops)
            source = input.data
        else:
            x = input if isinstance(input, Tensor) else Tensor(input)
            self._check_input(x)
            ops = self._ops(x, hx)
            output, states = self._forward_padded(ops.of(x), hx, lengths, x._data.ndim == 3,
                                                  not self.batch_first, ops)
            source = x
        if ops is not GraphOps:
            output, states = inference.as_tensors(output, states, source, hx)
        return output, self._pack_states(states)

    def _arithmetic_only(self) -> bool:
        """Whether a call without gradients may run on arrays: the layers can (``_has_inference``)
        and nothing else is asked of it (no dropout between layers, no gradient probe)."""
        return self._has_inference() and self._probe is None and \
            not (self.dropout and self.training and self.num_layers > 1)

    def _ops(self, x, hx):
        """GraphOps, or ArrayOps when this call cannot be asked for a gradient and runs nothing but
        the layers' arithmetic (``_arithmetic_only``)."""
        if not self._arithmetic_only():
            return GraphOps
        if grad_mode._enabled and inference.wants_grad(self, x, hx):
            return GraphOps
        return inference.ArrayOps

    def _forward_packed(self, packed: PackedSequence, hx, ops):
        """A packed batch is already sorted longest first: it is padded in that order, run
        without any reordering, and packed again; only the states move between the caller's
        order and the sorted one."""
        padded, sorted_lengths = padded_arrays(PackedSequence(packed.data, packed.batch_sizes))
        self._check_input(padded)
        order, inverse = as_index_array(packed.sorted_indices), as_index_array(packed.unsorted_indices)
        if hx is not None and order is not None:
            states = self._initial_state(hx, padded.shape[1], padded.dtype)
            hx = self._pack_states(tuple(ops.permute(ops.of(s), order) for s in states))
        output, states = self._forward_padded(ops.of(padded), hx, sorted_lengths, True, True, ops, batch_order=order)
        if order is not None:
            states = tuple(ops.permute(s, inverse) for s in states)
        out = pack_in_order(ops.tensor(output), sorted_lengths, None)._replace(
            sorted_indices=as_index_tensor(packed.sorted_indices), unsorted_indices=as_index_tensor(packed.unsorted_indices))
        return out, states

    def _forward_padded(self, x, hx, lengths, batched: bool, time_major: bool, ops, batch_order=None):
        """The layers over a padded batch ``x`` (in ``ops``' representation) -> (output, final states).

        ``batch_order``: the caller's row at each row of ``x`` when ``x`` is already reordered (packed)."""
        if not batched:
            x = ops.add_batch(x)
        elif not time_major:
            x = ops.swap_time_batch(x)  # (L, N, H_in) from here on
        T, B = x.shape[0], x.shape[1]
        if batched:
            state = tuple(map(ops.of, self._initial_state(hx, B, x.dtype)))
        else:
            if lengths is not None:
                raise ValueError(f"{type(self).__name__}: lengths need a batched input (L, N, H_in)")
            # Checked in the caller's unbatched shapes, then given the batch axis of size 1.
            state = tuple(ops.add_batch(ops.of(s)) for s in self._initial_state(hx, None, x.dtype))
        order, sorted_lengths, batch_sizes = self._sort_by_length(lengths, T, B)
        if order is not None:
            x = ops.permute(x, order)
            state = tuple(ops.permute(s, order) for s in state)
        reverse_index = reversal_index(sorted_lengths, T) if self.bidirectional and batch_sizes is not None else None
        self._begin_call(T, B, order if order is not None else batch_order, hx, x.dtype)
        try:
            output, states = self._layers(x, state, batch_sizes, reverse_index, ops)
        finally:
            self._end_call()
        if order is not None:
            inverse = np.argsort(order)
            output = ops.permute(output, inverse)
            states = tuple(ops.permute(s, inverse) for s in states)
        if not batched:
            return ops.drop_batch(output), tuple(ops.drop_batch(s) for s in states)
        if not time_major:
            output = ops.swap_time_batch(output)
        return output, states

    def _layers(self, x, state, batch_sizes, reverse_index, ops):
        """Every layer and direction over the driver's time-major, length-sorted batch -> (output, final states)."""
        finals = []  # each layer and direction's final state tuple
        layer_input = x
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(self.num_directions):
                k = layer * self.num_directions + direction
                s0 = tuple([s[k] for s in state])
                inp = layer_input if direction == 0 else ops.reverse(layer_input, reverse_index)
                out, s_n = ops.run(self, layer, direction, inp, s0, batch_sizes)
                outputs.append(out if direction == 0 else ops.reverse(out, reverse_index))
                finals.append(s_n)
            layer_input = ops.cat(outputs)
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_input = ops.dropout(layer_input, self.dropout)

        return layer_input, tuple(map(ops.stack, zip(*finals)))
