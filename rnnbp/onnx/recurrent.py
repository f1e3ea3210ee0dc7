"""nn.RNN, nn.LSTM and nn.GRU as ONNX's own RNN, LSTM and GRU operators, one node per layer.

What differs between PyTorch's layout and ONNX's, and how it is mapped:

* gate order: PyTorch's LSTM rows i, f, g, o become ONNX's i, o, f, c; GRU's r, z, n become
  z, r, h. The GRU node has ``linear_before_reset=1``: PyTorch applies r to (W_hn h + b_hn).
* weights: W (D, G*H, H_in), R (D, G*H, H) and B (D, 2*G*H) = [b_ih, b_hh] per direction,
  D = 2 for ``direction="bidirectional"`` (forward first, as in PyTorch).
* layers: a chain of nodes; each node's Y (T, D, N, H) becomes PyTorch's (T, N, D*H) for the
  next layer (Transpose + Reshape). h_0 / c_0 (D*layers, N, H) are sliced per layer and the
  final states (D, N, H) of the layers concatenated back, in PyTorch's layer-major order.
* ``batch_first`` inputs and outputs are transposed around the chain; an unbatched (L, H_in)
  input gets a batch axis of 1 and loses it again.
* ``lengths`` (N,) becomes ``sequence_lens`` (int32): ONNX Runtime then, as rnnbp, leaves the
  outputs past each row's length zero, runs the reverse direction from each row's own last step,
  and returns each row's state after its own last step. Not the same: a length of 0, which
  rnnbp allows (the row keeps its initial state), and which ONNX Runtime refuses when run.
* ``nonlinearity="relu"`` of nn.RNN is the node's ``activations``; ``proj_size`` has no ONNX
  counterpart and is refused; dropout between layers is off (the export is in eval mode).
* dtype: float64 layers export valid ONNX, but ONNX Runtime's CPU RNN/LSTM/GRU kernels run
  float32 only (a warning says so): ``model.float()`` before exporting.
"""
from __future__ import annotations

import warnings

import numpy as np

from .. import nn
from .builder import Value
from .errors import ExportError
from .registry import converts

# rows of PyTorch's gate blocks, in the order ONNX wants them
_GATE_ORDER = {"LSTM": (0, 3, 1, 2), "GRU": (1, 0, 2), "RNN": (0,)}


def _kind(m) -> str:
    return "LSTM" if isinstance(m, nn.LSTM) else "GRU" if isinstance(m, nn.GRU) else "RNN"


def _reorder(w: np.ndarray, kind: str, hidden: int) -> np.ndarray:
    """Gate blocks of (G*H, ...) rows from PyTorch's order into ONNX's."""
    blocks = [w[g * hidden:(g + 1) * hidden] for g in _GATE_ORDER[kind]]
    return np.concatenate(blocks, axis=0)


def _layer_weights(m, g, layer: int, kind: str):
    """(W, R, B or None) initializers of one layer, directions stacked on axis 0."""
    H, D = m.hidden_size, m.num_directions
    sfx = [f"_l{layer}" + ("_reverse" if d else "") for d in range(D)]

    def stacked(prefix):
        return np.stack([_reorder(getattr(m, prefix + s)._data, kind, H) for s in sfx])

    W = g.constant(stacked("weight_ih"), name=f"l{layer}.W")  # (D, G*H, H_in)
    R = g.constant(stacked("weight_hh"), name=f"l{layer}.R")  # (D, G*H, H)
    if not m.bias:
        return W, R, None
    B = np.concatenate([stacked("bias_ih"), stacked("bias_hh")], axis=1)  # (D, 2*G*H)
    return W, R, g.constant(B, name=f"l{layer}.B")


def _states(m, g, hx, kind: str, unbatched: bool) -> list:
    """[h_0, c_0] (or [h_0]) as Values (D*layers, N, H), or Nones."""
    count = 2 if kind == "LSTM" else 1
    if hx is None:
        return [None] * count
    if kind == "LSTM":
        if not isinstance(hx, (tuple, list)) or len(hx) != 2:
            raise ExportError(f"rnnbp.onnx.export: LSTM {g.where} takes hx as a pair (h_0, c_0), got "
                              f"{type(hx).__name__}")
        states = list(hx)
    else:
        states = [hx]
    for s in states:
        if s is not None and not isinstance(s, Value):
            raise ExportError(f"rnnbp.onnx.export: {kind} {g.where}: initial states must be model inputs "
                              f"(tensors in args), got {type(s).__name__}")
    return [g.unsqueeze(s, [1]) if (s is not None and unbatched) else s for s in states]


def _check_input(m, g, x, kind) -> int:
    shape = g.shape(x)
    if shape is None or len(shape) not in (2, 3):
        raise ExportError(f"rnnbp.onnx.export: {kind} {g.where} expects a 3-D input (L, N, H_in) (or 2-D "
                          f"unbatched), got shape {shape}")
    if isinstance(shape[-1], int) and shape[-1] != m.input_size:
        raise ExportError(f"rnnbp.onnx.export: {kind} {g.where} has input_size {m.input_size}, got an input "
                          f"of shape {shape}")
    return len(shape)


@converts(nn.RNN, nn.LSTM, nn.GRU)
def recurrent(m, g, input, hx=None, lengths=None):
    """(output, h_n) or (output, (h_n, c_n)), as the module's forward returns them."""
    kind = _kind(m)
    if not isinstance(input, Value):
        raise ExportError(f"rnnbp.onnx.export: {kind} {g.where} can be exported on a padded tensor input "
                          f"(with lengths= for ragged rows), got {type(input).__name__}")
    if getattr(m, "proj_size", 0):
        raise ExportError(f"rnnbp.onnx.export: LSTM {g.where} has proj_size={m.proj_size}; ONNX's LSTM "
                          "operator has no projection, so it cannot be exported")
    for rate in ("zoneout", "zoneout_cell"):
        if getattr(m, rate, 0):
            raise ExportError(f"rnnbp.onnx.export: {kind} {g.where} has {rate}={getattr(m, rate)}; in eval it "
                              f"mixes each step's state with the previous one, which ONNX's {kind} operator "
                              "cannot do, so it cannot be exported (the dropout rates are fine: identities in eval)")
    unbatched = _check_input(m, g, input, kind) == 2
    if m.weight_ih_l0.dtype != np.float32:
        warnings.warn(f"rnnbp.onnx.export: {kind} {g.where} has {m.weight_ih_l0.dtype} weights; ONNX Runtime runs "
                      f"{kind} in float32 only (call .float() on the model before exporting to run it there)",
                      UserWarning, stacklevel=2)
    if lengths is not None and not isinstance(lengths, Value):
        lengths = g.constant(np.asarray(lengths, dtype=np.int64), name="lengths")
    if unbatched and lengths is not None:
        raise ExportError(f"rnnbp.onnx.export: {kind} {g.where}: lengths need a batched input (L, N, H_in)")
    states = _states(m, g, hx, kind, unbatched)

    x = g.unsqueeze(input, [1]) if unbatched else g.transpose(input, [1, 0, 2]) if m.batch_first else input
    seq_lens = g.cast(lengths, np.int32) if lengths is not None else None
    H, D, L = m.hidden_size, m.num_directions, m.num_layers
    attrs = dict(hidden_size=H, direction="bidirectional" if D == 2 else "forward")
    if kind == "GRU":
        attrs["linear_before_reset"] = 1
    if kind == "RNN":
        attrs["activations"] = ["Relu" if m.nonlinearity == "relu" else "Tanh"] * D
    finals = [[] for _ in states]
    empty = None  # rows of length 0, where rnnbp keeps the initial state and ONNX Runtime returns zeros
    if seq_lens is not None and any(s is not None for s in states):
        empty = g.unsqueeze(g.op("Equal", seq_lens, g.constant(np.zeros(1, np.int32), name="zero")), [0, 2])
    for layer in range(L):
        W, R, B = _layer_weights(m, g, layer, kind)
        init = [None if s is None else g.slice(s, [layer * D], [(layer + 1) * D], [0]) for s in states]
        outs = g.op(kind, x, W, R, B, seq_lens, *init, outputs=1 + len(states), **attrs)
        y = outs[0]  # (T, D, N, H)
        for j, s_n in enumerate(outs[1:]):  # (D, N, H)
            finals[j].append(s_n if empty is None or init[j] is None else g.op("Where", empty, init[j], s_n))
        if D == 1:
            x = g.squeeze(y, [1])  # (T, N, H)
        else:
            x = g.reshape(g.transpose(y, [0, 2, 1, 3]), [0, 0, -1])  # (T, N, D*H)
    final = [g.concat(f, axis=0) for f in finals]  # (D*L, N, H), layer-major
    output = x
    if unbatched:
        output = g.squeeze(output, [1])
        final = [g.squeeze(s, [1]) for s in final]
    elif m.batch_first:
        output = g.transpose(output, [1, 0, 2])
    return (output, tuple(final)) if kind == "LSTM" else (output, final[0])
