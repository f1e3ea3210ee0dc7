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

from ...autograd import creation
from ...autograd.ops import cat, stack
from ...autograd.tensor import Tensor
from .. import functional as F
from .kernels.common import batch_sizes_from_lengths
from .kernels.reorder import PermuteAxis, ReverseWithinLengths, reversal_index
from ..module import Module
from .packing import PackedSequence, check_lengths, pack_in_order, pad_packed_sequence


class StackedRecurrence(Module):
    """Base of every multi-layer, bidirectional, variable-length recurrent module.

    Subclasses set ``input_size``, ``num_layers``, ``batch_first``, ``dropout``,
    ``bidirectional`` and ``num_directions`` and implement ``_state_sizes``,
    ``_run`` and ``_param_dtype``.
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

    def _param_dtype(self):
        raise NotImplementedError

    def _pack_states(self, states: tuple):
        """What forward returns as the final state: one tensor, or the tuple."""
        return states[0] if len(states) == 1 else states

    # ------------------------------------------------------------- checking
    def _state_shapes(self, batch: int | None) -> list[tuple]:
        """Shape of each initial or final state tensor: (D * num_layers, N, size), or without N unbatched."""
        lead = (self.num_layers * self.num_directions,) + ((batch,) if batch is not None else ())
        return [lead + (size,) for size in self._state_sizes()]

    def _initial_state(self, hx, batch: int | None, dtype) -> tuple:
        name = type(self).__name__
        shapes = self._state_shapes(batch)
        if hx is None:
            return tuple(creation.zeros(s, dtype=dtype) for s in shapes)
        labels = ("h_0",) if len(shapes) == 1 else ("h_0", "c_0") if len(shapes) == 2 else \
            tuple(f"state {i}" for i in range(len(shapes)))
        if len(shapes) > 1:
            if not isinstance(hx, (tuple, list)) or len(hx) != len(shapes):
                kind = "a pair" if len(shapes) == 2 else f"a tuple of {len(shapes)}"
                raise TypeError(f"{name}: hx must be {kind} ({', '.join(labels)}), got {type(hx).__name__}")
            states = tuple(hx)
        else:
            if isinstance(hx, (tuple, list)):
                raise TypeError(f"{name}: hx must be one tensor h_0, got a {type(hx).__name__}")
            states = (hx,)
        out = []
        for label, s, shape in zip(labels, states, shapes):
            if s is None:
                raise TypeError(f"{name}: {label} is None; give a tensor of shape {shape}, or hx=None for "
                                "zero initial states")
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
        dtype = self._param_dtype()
        if dtype is not None and x.dtype != dtype:
            raise TypeError(f"{name}: input dtype {x.dtype} differs from the parameters' {dtype}; "
                            "cast the input or call .to(dtype) on the layer")

    # -------------------------------------------------------------- forward
    def forward(self, input, hx=None, lengths=None):
        """Run all layers and directions. Returns (output, h_n), or (output, (h_n, c_n)) with a cell state.

        ``lengths`` (N,) gives each sequence's length in a padded batch (0 allowed: that
        sequence keeps its state); with a ``PackedSequence`` input the output is packed the same way.
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
            hx = self._pack_states(states)
        output, states = self._forward_padded(padded, hx, sorted_lengths, batched=True, time_major=True)
        if order is not None:
            states = tuple(PermuteAxis.apply(s, order=inverse, axis=1) for s in states)
        out = pack_in_order(output, sorted_lengths, None)._replace(sorted_indices=order, unsorted_indices=inverse)
        return out, self._pack_states(states)

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
                record = None
                if self._probe is not None:
                    probe, name = self._probe
                    record = probe.recorder((name, layer, direction))
                out, s_n = self._run(layer, direction, inp, s0, batch_sizes, record)
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
