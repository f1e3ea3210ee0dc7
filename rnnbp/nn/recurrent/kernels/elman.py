"""Fused Elman RNN layer: the whole sequence as one node, with a hand-written BPTT backward.

Equations (PyTorch's ``nn.RNN``)::

    h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh),   act = tanh or relu

Backward: d_pre = (dh_t) * act'(h_t), dh_{t-1} = d_pre W_hh, and one matrix
product per weight over all steps.
"""
from __future__ import annotations

import numpy as np

from ....autograd.function import Function
from . import compiled_elman
from .compiled_gru import ALL_ROWS, INFERENCE_CHUNK, ZONE, c_order, or_empty, recurrent_weights
from .common import (active_rows, allocator, carried_gradient, final_states, forward_steps, lengths_from_batch_sizes,
                     project_inputs, reverse_steps, weight_grads, zero_padding, zone, zone_split)


_NONLINEARITIES = ("tanh", "relu")


def _relu(nonlinearity: str) -> bool:
    if nonlinearity not in _NONLINEARITIES:
        raise ValueError(f"ElmanLayer: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
    return nonlinearity == "relu"


class ElmanLayer(Function):
    """One Elman layer in one direction over a time-major, length-sorted batch.

    Inputs: x (T, B, I), h0 (B, H), w_ih (H, I), w_hh (H, H), b_ih (H,) or None,
    b_hh (H,) or None; ``nonlinearity`` 'tanh' or 'relu'. ``backend``: 'numpy' runs a
    Python loop over the steps with NumPy; 'numba' (or 'auto' where numba runs, see
    ``backends``) the compiled whole-sequence loops of ``compiled_elman``. With a gradient
    probe (``record``) the backward runs step by step in NumPy, to hand each dL/dh_t to it.
    Outputs: out (T, B, H) (zero past each row's length), h_n (B, H). ``out`` is a view of
    a buffer the backward reads: writing into its array changes the gradients.

    Regularisation inside the recurrence (``nn.recurrent.regularization``; None: off, and the
    layer runs exactly as without): ``rec_mask`` (B, H) multiplies h_{t-1} where it enters W_hh
    (recurrent dropout); ``zone_h`` (T, B, H): zoneout, h_t <- (1 - zone_h[t]) a_t + zone_h[t] h_{t-1},
    a_t the activation. The backward reads a_t where zone_h[t] < 1: for a bool (0/1) ``zone_h`` that
    is h_t itself, else the forward keeps every a_t (T, B, H) (see ``_keeps_activations``).
    """

    @staticmethod
    def forward(ctx, x, h0, w_ih, w_hh, b_ih, b_hh, batch_sizes=None, nonlinearity="tanh", backend="auto",
                workspace=None, record=None, rec_mask=None, zone_h=None):
        T, B, _ = x.shape
        H = w_hh.shape[0]
        dtype = x.dtype
        relu = _relu(nonlinearity)
        empty, zeros = allocator(workspace)
        sizes = active_rows(batch_sizes, T, B)
        x = zero_padding(x, sizes)
        loops = compiled_elman.loops_for(backend, dtype)
        w_back = None  # what the compiled backward multiplies by: (W_hh, a copy of W_hh^T or a stand-in)
        padded = empty if loops is not None or batch_sizes is None else zeros
        hms = None if rec_mask is None else padded((T + 1, B, H), dtype)  # the masked h_{t-1}
        acts = padded((T, B, H), dtype) if _keeps_activations(zone_h) else None  # activations before zoneout
        if loops is not None:
            x = c_order(x)
            hs = empty((T + 1, B, H), dtype)
            hs[0] = h0
            w, w_t_forward, w_t_backward = recurrent_weights(w_hh, loops, T)
            loops["forward"](x.reshape(T * B, -1), c_order(w_ih), w, w_t_forward, or_empty(b_ih, dtype, 1),
                             or_empty(b_hh, dtype, 1), np.asarray(sizes, dtype=np.int64), hs, relu,
                             or_empty(rec_mask, dtype, 2), or_empty(hms, dtype, 3), or_empty(zone_h, ZONE, 3),
                             or_empty(acts, dtype, 3))
            w_back = (w, w_t_backward)
        else:
            hs = _forward_steps(x, h0, w_ih, w_hh, b_ih, b_hh, batch_sizes, sizes, relu, empty, zeros,
                                rec_mask, hms, zone_h, acts)
        lengths = lengths_from_batch_sizes(batch_sizes, B)
        ctx.record = record
        ctx.saved = (x, w_ih, w_hh, hs, sizes, relu, loops, w_back, workspace)
        ctx.regularization = (rec_mask, hms, zone_h, acts)
        return hs[1:], final_states(hs, lengths)

    @staticmethod
    def backward(ctx, d_out, d_hn):
        x, w_ih, w_hh, hs, sizes, relu, loops, w_back, workspace = ctx.saved
        T, B, _ = x.shape
        H = w_hh.shape[0]
        dtype = x.dtype
        need = ctx.needs_input_grad
        dh = carried_gradient(d_hn, (B, H), dtype)
        if loops is None or ctx.record is not None:
            return _backward_steps(ctx, d_out, dh)
        empty, _ = allocator(workspace)
        d_pre = empty((T, B, H), dtype)
        rec_mask, hms, zone_h, acts = ctx.regularization
        loops["backward"](hs, *w_back, dh, or_empty(d_out, dtype, 3), np.asarray(sizes, dtype=np.int64), relu, d_pre,
                          or_empty(rec_mask, dtype, 2), or_empty(zone_h, ZONE, 3), or_empty(acts, dtype, 3))
        d_x = np.empty(x.shape, dtype) if need[0] else None
        d_wih = np.empty(w_ih.shape, dtype) if need[2] else None
        d_whh = np.empty(w_hh.shape, dtype) if need[3] else None
        d_b = np.empty(H, dtype) if (need[4] or need[5]) else None
        loops["gradients"](d_pre, x.reshape(T * B, -1), hs if hms is None else hms, c_order(w_ih),
                           or_empty(None if d_x is None else d_x.reshape(T * B, -1), dtype, 2),
                           or_empty(d_wih, dtype, 2), or_empty(d_whh, dtype, 2), or_empty(d_b, dtype, 1))
        return (d_x, dh if need[1] else None, d_wih, d_whh,
                d_b if need[4] else None, d_b.copy() if need[5] else None)


def _keeps_activations(zone_h) -> bool:
    """Whether zoneout's backward needs the activations a_t saved apart from h_t: for fractional
    masks (eval's rate, masks given as floats). Where a bool mask keeps h_{t-1}, a_t gets no
    gradient, and elsewhere h_t = a_t."""
    return zone_h is not None and zone_h.dtype != bool


def _forward_steps(x, h0, w_ih, w_hh, b_ih, b_hh, batch_sizes, sizes, relu, empty, zeros, rec_mask=None, hms=None,
                   zone_h=None, acts=None):
    """The forward with a Python loop over steps, in NumPy (the reference). Returns hs (T+1, B, H);
    fills hms (the masked h_{t-1}) with recurrent dropout and acts (the activations; or None) with zoneout."""
    T, B, _ = x.shape
    H = w_hh.shape[0]
    bias = None if b_ih is None else b_ih + b_hh
    pre = project_inputs(x, w_ih, bias, empty)  # (T, B, H)
    hs = (zeros if batch_sizes is not None else empty)((T + 1, B, H), x.dtype)
    hs[0] = h0
    w_hh_t = w_hh.T
    for t, b in forward_steps(sizes):
        h = hs[t + 1, :b]
        h_in = hs[t, :b] if rec_mask is None else np.multiply(hs[t, :b], rec_mask[:b], out=hms[t, :b])
        np.matmul(h_in, w_hh_t, out=h)
        h += pre[t, :b]
        if relu:
            np.maximum(h, 0, out=h)
        else:
            np.tanh(h, out=h)
        if zone_h is not None:
            if acts is not None:
                acts[t, :b] = h
            zone(h, hs[t, :b], zone_h[t, :b])
    return hs


def _backward_steps(ctx, d_out, dh):
    """The backward with a Python loop over steps, in NumPy (the reference, and the path that
    records dL/dh_t for a gradient probe)."""
    x, w_ih, w_hh, hs, sizes, relu, _, _, workspace = ctx.saved
    T, B, _ = x.shape
    H = w_hh.shape[0]
    need = ctx.needs_input_grad
    empty, zeros = allocator(workspace)
    d_pre = (zeros if any(b < B for b in sizes) else empty)((T, B, H), x.dtype)
    rec_mask, hms, zone_h, acts = ctx.regularization
    for t, b, dh_t in reverse_steps(sizes, dh, d_out, ctx.record):
        carry = None if zone_h is None else zone_split(dh_t, zone_h[t, :b])
        dp = d_pre[t, :b]
        h = hs[t + 1, :b] if acts is None else acts[t, :b]
        if relu:
            np.multiply(dh_t, h > 0, out=dp)
        else:
            np.multiply(h, h, out=dp)
            np.subtract(1, dp, out=dp)
            dp *= dh_t
        np.matmul(dp, w_hh, out=dh[:b])
        if rec_mask is not None:
            dh[:b] *= rec_mask[:b]
        if carry is not None:
            dh[:b] += carry
    d_x, d_wih = weight_grads(d_pre, x, w_ih, need[0], need[2])
    h_prev = hs if hms is None else hms
    d_whh = d_pre.reshape(T * B, H).T @ h_prev[:T].reshape(T * B, H) if need[3] else None
    d_b = d_pre.sum(axis=(0, 1)) if (need[4] or need[5]) else None
    return (d_x, dh if need[1] else None, d_wih, d_whh,
            d_b if need[4] else None, d_b.copy() if need[5] else None)


def elman_inference(x, h0, w_ih, w_hh, b_ih, b_hh, batch_sizes=None, nonlinearity="tanh", backend="auto",
                    workspace=None):
    """The Elman layer's forward for inference only (no graph, nothing kept for a backward).

    Arrays as in :class:`ElmanLayer`; returns (out (T, B, H), h_n (B, H)). Contract: ``out`` is a
    fresh array the caller owns; beyond it, memory is the state (the compiled path projects the
    inputs into ``out`` itself; the NumPy path runs the training forward and copies its output).
    """
    dtype = x.dtype
    run = elman_stepper(w_ih, w_hh, b_ih, b_hh, nonlinearity, backend, dtype)
    if run is None:
        ctx = ElmanLayer.__new__(ElmanLayer)
        out, h_n = ElmanLayer.forward(ctx, x, h0, w_ih, w_hh, b_ih, b_hh, batch_sizes, nonlinearity, "numpy", None)
        return out.copy(), h_n
    T, B, I = x.shape
    sizes = ALL_ROWS if batch_sizes is None else np.asarray(batch_sizes, dtype=np.int64)
    state = np.array(h0, dtype=dtype, order="C")  # a fresh copy: h_n
    if x.flags.c_contiguous:
        return run(x, state, sizes), state
    out = np.empty((T, B, state.shape[1]), dtype)
    chunk = max(1, INFERENCE_CHUNK // (B * I))
    for t0 in range(0, T, chunk):  # a view (reversed, or batch-first): copied one bounded chunk at a time
        t1 = min(T, t0 + chunk)
        run(np.ascontiguousarray(x[t0:t1]), state, sizes[t0:t1] if batch_sizes is not None else sizes, out[t0:t1])
    return out, state


def elman_stepper(w_ih, w_hh, b_ih, b_hh, nonlinearity="tanh", backend="auto", dtype=None):
    """The compiled inference loop with these weights bound: ``run(x, h, sizes=ALL_ROWS, out=None) -> out``,
    or None where numba does not run ``backend`` for ``dtype`` (default: the weights'). As
    ``lstm.lstm_stepper``: h (B, H) C-contiguous is updated in place to the final state."""
    dtype = np.dtype(dtype or w_ih.dtype)
    loops = compiled_elman.loops_for(backend, dtype)
    if loops is None:
        return None
    loop, relu = loops["inference"], _relu(nonlinearity)
    w_in, bias_in, bias_hid = c_order(w_ih), or_empty(b_ih, dtype, 1), or_empty(b_hh, dtype, 1)
    w_hh = c_order(w_hh)
    H = w_hh.shape[0]

    def run(x, h, sizes=ALL_ROWS, out=None):
        T, B, I = x.shape
        if out is None:
            out = np.empty((T, B, H), dtype)
        w, w_t, _ = recurrent_weights(w_hh, loops, T, training=False)
        loop(x.reshape(T * B, I), w_in, w, w_t, bias_in, bias_hid, sizes, h, out, relu)
        return out
    return run