"""Regularisation inside the fused recurrent layers: variational dropout, zoneout and DropConnect.

``nn.RNN``, ``nn.LSTM`` and ``nn.GRU`` take four rates, all 0 (off) by default; at 0 the
layer runs exactly as it does without them (the same kernels, the same numbers):

``input_dropout`` (Keras' ``dropout``; AWD-LSTM's ``dropouti`` for the first layer, ``dropouth``
    between layers, both variational): one mask per sequence (batch row) over each layer's input
    features, the same at every step (Gal & Ghahramani 2016). PyTorch's ``dropout`` already means
    dropout between layers (a fresh mask at every step) and keeps that meaning here. The input
    is masked before the input projection of all steps (one elementwise product, no kernel change).
``recurrent_dropout`` (Keras' ``recurrent_dropout``): one mask per sequence over h_{t-1}
    where it enters the recurrent product h_{t-1} W_hh^T, the same at every step (Gal's
    variational LSTM); the carried state (c, the GRU's direct path z h_{t-1}, the output) is
    not masked. Inside the kernels' recurrence, with its hand-written backward.
``zoneout`` (Krueger et al. 2016; ``zoneout_cell`` for an LSTM's c, the same rate by default):
    each unit keeps its previous value with probability p at each step,
    h_t = (1 - d_t) h_new + d_t h_{t-1}, d_t ~ Bernoulli(p) per unit, step and row in training;
    in eval d_t = p, the expected value h_t = p h_{t-1} + (1 - p) h_new. Keras and AWD-LSTM
    have none; zoneout changes what eval computes (the others are identities in eval).
``weight_dropout`` (DropConnect on W_hh, Wan et al. 2013; AWD-LSTM's ``wdrop``/``WeightDrop``):
    one mask over the hidden-to-hidden weights per forward call, W_hh * M / (1 - p); the gradient
    reaches W_hh through the same mask.

The dropout masks are inverted (kept units scaled by 1 / (1 - p)), so eval needs no rescaling
and is the plain layer. Zoneout's training masks are bool (True: the unit keeps its previous
value), drawn from random bytes (:func:`bernoulli`): a quarter of the memory of float masks
and a third of the drawing time; the kernels take bool or float (the rate in eval, or masks
given with ``set_masks``) zoneout masks alike. Masks are drawn in training from rnnbp's default generator (or the
layer's ``generator=``, which then seeds both initialisation and masks); eval draws nothing
and is deterministic.

Masks and truncated BPTT. A sequence cut into chunks (``bptt.TBPTT``, or a loop carrying
``hx``) must see one variational mask across its chunks. The layer keeps its input and
recurrent masks (per layer, direction and batch row, in the caller's batch order) and reuses
them when a forward is given, as ``hx``, a final state this layer returned since it drew them
(itself, detached, or a view of it: its memory is checked), which is what TBPTT and a loop
carrying the state do from their second chunk on. Any other forward starts new sequences and
draws new masks: ``hx`` None (zeros), a state made anew (``torch.zeros(...)`` each batch, as
PyTorch programs do), another batch size, or after :meth:`RNNBase.reset_masks`. Zoneout (per step) and
DropConnect (per forward, as AWD-LSTM) are drawn at every forward. ``layer.last_masks`` holds
the masks of the last training forward; ``layer.set_masks(masks)`` fixes them (tests, and
replaying a forward) until ``reset_masks()``.

Masks work with layers (each layer and direction has its own), directions, ``lengths`` and
``PackedSequence`` (rows are permuted with the batch; zoneout's per-step masks follow each
direction's own steps), and with ``fused=False``, which composes the same computation from
primitive ops on the tape (:func:`run_composed`), the reference the kernels are tested against.
"""
from __future__ import annotations

import weakref
from typing import NamedTuple

import numpy as np

from ...autograd import creation
from ...autograd.function import Function
from ...autograd.ops import cat, stack
from ...autograd.random import get_generator
from ...autograd.tensor import Tensor
from ...validation import check_probability
from .. import functional as F
from .cells import lstm_cell, rnn_cell

RATES = ("input_dropout", "recurrent_dropout", "zoneout", "zoneout_cell", "weight_dropout")


class LayerMasks(NamedTuple):
    """One layer and direction's masks (None: that regularisation is off), caller's batch order.

    input (N, H_in_layer), recurrent (N, H_out): inverted dropout masks (0 or 1 / (1 - p));
    weight (G*H, H_out): DropConnect's mask on W_hh; zone_h (L, N, H_out), zone_c (L, N, H):
    zoneout's keep-previous indicators (bool in training, True: keep; the rate in eval; or
    floats given with ``set_masks``), step t of this direction's own order.
    """
    input: np.ndarray | None = None
    recurrent: np.ndarray | None = None
    weight: np.ndarray | None = None
    zone_h: np.ndarray | None = None
    zone_c: np.ndarray | None = None

    def astype(self, dtype) -> "LayerMasks":
        """The masks in ``dtype`` (themselves where they already are); bool zoneout masks stay bool."""
        return LayerMasks(*(a if a is None or a.dtype == bool else a.astype(dtype, copy=False) for a in self))

    def rows(self, index) -> "LayerMasks":
        """The masks for the batch rows ``index`` (the driver's length-sorted order); None: as they are."""
        if index is None:
            return self
        take = lambda m, axis: None if m is None else np.take(m, index, axis=axis)  # noqa: E731
        return LayerMasks(take(self.input, 0), take(self.recurrent, 0), self.weight, take(self.zone_h, 1),
                          take(self.zone_c, 1))


def check_rates(owner: str, has_cell_state: bool, input_dropout, recurrent_dropout, zoneout, zoneout_cell,
                weight_dropout) -> dict:
    """The rates as floats in [0, 1) (zoneout in [0, 1]); ``zoneout_cell`` defaults to ``zoneout``."""
    rates = {}
    for name, value in (("input_dropout", input_dropout), ("recurrent_dropout", recurrent_dropout),
                        ("weight_dropout", weight_dropout)):
        value = check_probability(owner, name, value)
        if value >= 1:
            raise ValueError(f"{owner}: {name} must be < 1 (a rate of 1 drops everything), got {value}")
        rates[name] = value
    rates["zoneout"] = check_probability(owner, "zoneout", zoneout)
    if zoneout_cell is not None and not has_cell_state:
        raise ValueError(f"{owner}: zoneout_cell is for the LSTM's cell state; use zoneout")
    rates["zoneout_cell"] = rates["zoneout"] if zoneout_cell is None else \
        check_probability(owner, "zoneout_cell", zoneout_cell)
    if not has_cell_state:
        rates["zoneout_cell"] = 0.0
    return rates


def rates(module) -> dict:
    """A layer's rates by name (``RATES``); a module made before they existed has them all 0."""
    return {name: getattr(module, name, 0.0) or 0.0 for name in RATES}


def bernoulli(rng, shape, p: float) -> np.ndarray:
    """Independent indicators, True with probability p (exactly, for any float p), bool of ``shape``.

    Each is U < p for a uniform U drawn as base-256 digits and compared with p's digit by digit:
    one random byte per indicator (``rng.bytes``, 4 per 32-bit draw), and the next digits only for
    the ones whose digits so far equal p's (1 in 256 per digit). A third of the time of
    ``rng.random(dtype=float32) < p`` (which resolves p to 2^-24 only) for a (T, B, H) mask.
    """
    count = int(np.prod(shape))
    if p >= 1:
        return np.ones(shape, bool)
    digits = np.frombuffer(rng.bytes(count), np.uint8)
    scaled = p * 256.0  # exact: p's next digit and the rest, both exact in float64
    digit = int(scaled)
    keep = digits < digit
    tied = digits == digit
    rest = scaled - digit
    if rest > 0:  # (p's digits are exhausted otherwise: a tie is U >= p)
        n_tied = int(np.count_nonzero(tied))
        if n_tied:
            keep[tied] = bernoulli(rng, (n_tied,), rest)
    return keep.reshape(shape)


def _dropout_mask(rng, shape, p: float, dtype) -> np.ndarray:
    """An inverted dropout mask: 1 / (1 - p) with probability 1 - p, else 0."""
    keep = rng.random(shape) >= p
    return keep.astype(dtype) * np.asarray(1.0 / (1.0 - p), dtype=dtype)


class MaskRows(Function):
    """x * mask broadcast over the leading (time) axis: (L, N, F) * (N, F) -> (L, N, F).

    Variational dropout of a layer's input: one mask per row for every step.
    """

    @staticmethod
    def forward(ctx, x, mask=None):
        ctx.mask = mask
        return x * mask

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.mask


class MaskWeight(Function):
    """w * mask (DropConnect): the gradient reaches w through the same mask. Shape: (G*H, P)."""

    @staticmethod
    def forward(ctx, w, mask=None):
        ctx.mask = mask
        return w * mask

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.mask


class Regularizer:
    """A recurrent layer's masks (see the module docstring for when masks are drawn); the rates
    are the layer's attributes (``RATES``).

    ``begin(...)`` runs once per forward that regularises (``active``), before the layers: it
    returns the masks of every layer and direction for this call in the driver's row order
    ({(layer, direction): LayerMasks}).
    """

    def __init__(self, generator=None):
        self.generator = generator
        self.kept = None  # {(layer, direction): (input, recurrent, N)}: masks carried across chunks, caller order
        self.fixed = None  # masks given with set_masks, used verbatim until reset
        self.last = None  # the last training forward's masks, caller order
        self.states = []  # weak references to the final-state arrays returned since the kept masks were drawn

    def __getstate__(self):
        # Neither the last call's (T, N, H) zoneout masks nor weak references go into copies and pickles.
        return {**self.__dict__, "last": None, "states": []}

    def returned(self, states) -> None:
        """Note the final states a training forward returned (a Tensor or a tuple of them)."""
        first = states[0] if isinstance(states, (tuple, list)) else states
        if self.kept is not None and isinstance(first, Tensor):
            self.states = [r for r in self.states if r() is not None] + [weakref.ref(first._data)]

    def carries(self, hx) -> bool:
        """Whether ``hx`` continues sequences this layer ran: its first state shares memory with a
        final state returned since the kept masks were drawn."""
        if hx is None:
            return False
        first = hx[0] if isinstance(hx, (tuple, list)) and hx else hx
        array = first._data if isinstance(first, Tensor) else first
        if not isinstance(array, np.ndarray):
            return False
        return any(a is not None and np.may_share_memory(array, a) for a in (r() for r in self.states))

    @staticmethod
    def active(module, training: bool) -> bool:
        """Whether ``module`` (its rates) regularises a forward in this mode. Cheap: a streamed
        step asks it on every call."""
        d = module.__dict__
        return bool(d.get("zoneout") or d.get("zoneout_cell") or
                    (training and (d.get("input_dropout") or d.get("recurrent_dropout") or d.get("weight_dropout"))))

    def reset(self) -> None:
        self.kept = None
        self.fixed = None
        self.states = []

    def begin(self, module, T: int, B: int, rows, carried: bool, dtype):
        """The masks of this call, rows in the driver's order (``rows[i]``: the caller's row at row i)."""
        training = module.training
        if not training:
            masks = self._eval_masks(module, T, B, dtype)
        elif self.fixed is not None:
            masks = self.fixed
            self._check_fixed(module, masks, T, B)
            masks = {key: m.astype(dtype) for key, m in masks.items()}
        else:
            masks = self._draw(module, T, B, carried, dtype)
        if training:
            self.last = masks
        return {key: m.rows(rows) for key, m in masks.items()}

    def _sizes(self, module, layer: int):
        """(layer input size, H_out, H, gate rows) of one layer."""
        h_out = module.proj_size or module.hidden_size
        layer_in = module.input_size if layer == 0 else h_out * module.num_directions
        return layer_in, h_out, module.hidden_size, module.gates * module.hidden_size

    def _keys(self, module):
        return [(layer, d) for layer in range(module.num_layers) for d in range(module.num_directions)]

    def _zone(self, shape, p, rng, dtype):
        """Zoneout's mask of ``shape``: bool indicators drawn from ``rng``, or in eval (``rng`` None)
        the rate itself in ``dtype``; None for p = 0."""
        if p <= 0:
            return None
        if rng is None:  # eval: the expectation
            return np.full(shape, p, dtype=dtype)
        return bernoulli(rng, shape, p)

    def _eval_masks(self, module, T, B, dtype) -> dict:
        r = rates(module)
        out = {}
        for layer, d in self._keys(module):
            _, h_out, H, _ = self._sizes(module, layer)
            out[(layer, d)] = LayerMasks(zone_h=self._zone((T, B, h_out), r["zoneout"], None, dtype),
                                         zone_c=self._zone((T, B, H), r["zoneout_cell"], None, dtype))
        return out

    def _draw(self, module, T, B, carried: bool, dtype) -> dict:
        r = rates(module)
        rng = get_generator(self.generator)
        keep = carried and self.kept is not None and next(iter(self.kept.values()))[2] == B
        if not keep:
            self.kept = {}
            self.states = []
        out = {}
        for layer, d in self._keys(module):
            layer_in, h_out, H, rows = self._sizes(module, layer)
            if keep:  # (in the layer's dtype, should it have changed since)
                m_in, m_rec = (None if m is None else m.astype(dtype, copy=False) for m in self.kept[(layer, d)][:2])
            else:
                m_in = _dropout_mask(rng, (B, layer_in), r["input_dropout"], dtype) if r["input_dropout"] else None
                m_rec = _dropout_mask(rng, (B, h_out), r["recurrent_dropout"], dtype) \
                    if r["recurrent_dropout"] else None
                self.kept[(layer, d)] = (m_in, m_rec, B)
            w = _dropout_mask(rng, (rows, h_out), r["weight_dropout"], dtype) if r["weight_dropout"] else None
            out[(layer, d)] = LayerMasks(m_in, m_rec, w, self._zone((T, B, h_out), r["zoneout"], rng, dtype),
                                         self._zone((T, B, H), r["zoneout_cell"], rng, dtype))
        return out

    def _check_fixed(self, module, masks: dict, T: int, B: int) -> None:
        name = type(module).__name__
        for key in self._keys(module):
            if key not in masks:
                raise ValueError(f"{name}: set_masks lacks layer {key[0]} direction {key[1]}")
            layer_in, h_out, H, rows = self._sizes(module, key[0])
            m = masks[key]
            want = {"input": (B, layer_in), "recurrent": (B, h_out), "weight": (rows, h_out),
                    "zone_h": (T, B, h_out), "zone_c": (T, B, H)}
            for field, shape in want.items():
                a = getattr(m, field)
                if a is not None and a.shape != shape:
                    raise ValueError(f"{name}: set_masks {field} of layer {key[0]} direction {key[1]} has shape "
                                     f"{a.shape}, expected {shape} for this input")


def as_masks(masks: dict) -> dict:
    """``set_masks``' argument as {(layer, direction): LayerMasks} of ndarrays (Tensors accepted)."""
    out = {}
    for key, m in masks.items():
        if not isinstance(m, LayerMasks):
            m = LayerMasks(**m) if isinstance(m, dict) else LayerMasks(*m)
        out[tuple(key)] = LayerMasks(*(None if a is None else np.asarray(a._data if isinstance(a, Tensor) else a)
                                       for a in m))
    return out


def masked_params(x, params: tuple, masks: LayerMasks):
    """x and (w_ih, w_hh, ...) with input dropout and DropConnect applied (each one autograd op)."""
    if masks.input is not None:
        x = MaskRows.apply(x, mask=masks.input.astype(x.dtype, copy=False))
    if masks.weight is not None:
        params = (params[0], MaskWeight.apply(params[1], mask=masks.weight)) + tuple(params[2:])
    return x, params


# ------------------------------------------------------------------ the composed reference (fused=False)
def _gru_step(x, h, h_in, w_ih, w_hh, b_ih, b_hh):
    """``cells.gru_cell`` with the recurrent product taken of h_in (the masked h_{t-1}); h_new."""
    xr, xz, xn = F.linear(x, w_ih, b_ih).chunk(3, dim=1)
    hr, hz, hn = F.linear(h_in, w_hh, b_hh).chunk(3, dim=1)
    r = (xr + hr).sigmoid()
    z = (xz + hz).sigmoid()
    n = (xn + r * hn).tanh()
    return n + z * (h - n)


def run_composed(kind: str, x, state: tuple, params: tuple, masks: LayerMasks, batch_sizes=None,
                 nonlinearity: str = "tanh"):
    """One layer and direction, regularised, composed from primitive ops step by step on the tape.

    kind: 'lstm', 'gru' or 'rnn'; x (T, B, I) in the driver's row order; state tuple of (B, .);
    params (w_ih, w_hh, b_ih, b_hh, w_hr); masks in the same row order. Returns (output (T, B, H_out),
    final state tuple), as ``tape.run_on_tape``.
    """
    x, params = masked_params(x, params, masks)
    w_ih, w_hh, b_ih, b_hh, w_hr = params
    T, B = x.shape[0], x.shape[1]
    outputs = []
    for t in range(T):
        b = B if batch_sizes is None else int(batch_sizes[t])
        if b == 0:
            outputs.append(creation.zeros((B,) + state[0].shape[1:], dtype=state[0].dtype))
            continue
        prev = state if b == B else tuple(s[:b] for s in state)
        h = prev[0]
        h_in = h if masks.recurrent is None else h * Tensor(masks.recurrent[:b])
        xt = x[t] if b == B else x[t, :b]
        if kind == "lstm":
            new = list(lstm_cell(xt, (h_in, prev[1]), w_ih, w_hh, b_ih, b_hh, w_hr))
        elif kind == "gru":
            new = [_gru_step(xt, h, h_in, w_ih, w_hh, b_ih, b_hh)]
        else:
            new = [rnn_cell(xt, h_in, w_ih, w_hh, b_ih, b_hh, nonlinearity)]
        for i, z in enumerate((masks.zone_h, masks.zone_c)[:len(new)]):
            if z is not None:
                z_t = z[t, :b].astype(new[i].dtype, copy=False)  # (bool in training)
                new[i] = new[i] * Tensor(1 - z_t) + prev[i] * Tensor(z_t)
        if b == B:
            state = tuple(new)
            outputs.append(state[0])
            continue
        state = tuple(cat([n, s[b:]], dim=0) for n, s in zip(new, state))
        pad = creation.zeros((B - b,) + new[0].shape[1:], dtype=new[0].dtype)
        outputs.append(cat([new[0], pad], dim=0))
    return stack(outputs, dim=0), state
