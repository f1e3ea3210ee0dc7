"""Fused GRU layer: the whole sequence as one node, with a hand-written BPTT backward.

Equations (PyTorch's, gate order r, z, n; r multiplies W_hn h + b_hn)::

    r = sigmoid(x_t W_ir^T + b_ir + h_{t-1} W_hr^T + b_hr)
    z = sigmoid(x_t W_iz^T + b_iz + h_{t-1} W_hz^T + b_hz)
    a = h_{t-1} W_hn^T + b_hn
    n = tanh(x_t W_in^T + b_in + r * a)
    h_t = (1 - z) * n + z * h_{t-1}  =  n + z * (h_{t-1} - n)

Backward, from dh_t (the output's gradient plus the next step's)::

    dn' = dh_t (1 - z)(1 - n^2)         (gradient at n's pre-activation)
    dz' = dh_t (h_{t-1} - n) z (1 - z)
    dr' = dn' a r (1 - r);    da = dn' r
    dx-side gates [dr', dz', dn'];  dh-side gates [dr', dz', da]
    dh_{t-1} = dh_t z + [dr', dz', da] W_hh

Weight gradients are matrix products over all steps: dW_ih = dx-side^T x, and
dW_hh from the same products of its r, z rows (which equal the dx side's) and its
n rows (da) with h_{t-1}, so only da is kept per step beside the dx side.
"""
from __future__ import annotations

import numpy as np

from ....autograd.function import Function
from . import backends, compiled_gru
from .compiled_gru import ZONE, c_order, or_empty
from .common import (active_rows, allocator, carried_gradient, final_states, forward_steps, lengths_from_batch_sizes,
                     project_inputs, reverse_steps, weight_grads, zero_padding, zone, zone_split)


class GRULayer(Function):
    """One GRU layer in one direction over a time-major, length-sorted batch.

    ``backend``: 'numpy' runs a Python loop over the steps with ``numpy_steps`` (the reference);
    'numba', or 'auto' where numba runs (see ``backends``), the compiled whole-sequence loops of
    ``compiled_gru``. With a gradient probe (``record``) the backward runs step by step (with
    ``numba_steps``), to hand each dL/dh_t to it.
    Inputs: x (T, B, I), h0 (B, H), w_ih (3H, I), w_hh (3H, H), b_ih (3H,) or None,
    b_hh (3H,) or None. ``batch_sizes``: running rows per step (None: all B).
    Outputs: out (T, B, H) (zero past each row's length), h_n (B, H). ``out`` is a view of
    a buffer the backward reads: writing into its array changes the gradients.

    Regularisation inside the recurrence (``nn.recurrent.regularization``; None: off, and the
    layer runs exactly as without): ``rec_mask`` (B, H) multiplies h_{t-1} where it enters W_hh
    (recurrent dropout; the direct path z h_{t-1} and the carried h are unmasked); ``zone_h``
    (T, B, H): zoneout, h_t <- (1 - zone_h[t]) h_t + zone_h[t] h_{t-1} (bool in training, or floats).
    """

    @staticmethod
    def forward(ctx, x, h0, w_ih, w_hh, b_ih, b_hh, batch_sizes=None, backend="auto", workspace=None, record=None,
                rec_mask=None, zone_h=None):
        T, B, _ = x.shape
        H = w_hh.shape[0] // 3
        dtype = x.dtype
        empty, zeros = allocator(workspace)
        sizes = active_rows(batch_sizes, T, B)
        x = zero_padding(x, sizes)
        loops = compiled_gru.loops_for(backend, dtype)
        hs = (empty if loops is not None or batch_sizes is None else zeros)((T + 1, B, H), dtype)
        hs[0] = h0
        a_steps = empty((T, B, H), dtype)  # W_hn h_{t-1} + b_hn, needed by backward
        w_back = None  # what the compiled backward multiplies by: (W_hh, a copy of W_hh^T or a stand-in)
        hms = None  # the masked h_{t-1} (recurrent dropout)
        if rec_mask is not None:
            hms = (empty if loops is not None or batch_sizes is None else zeros)((T + 1, B, H), dtype)
        if loops is not None:
            x = c_order(x)
            gates = empty((T, B, 3 * H), dtype)  # r, z, n activations
            w, w_t_forward, w_t_backward = compiled_gru.recurrent_weights(w_hh, loops, T)
            loops["forward"](x.reshape(T * B, -1), c_order(w_ih), w, w_t_forward, or_empty(b_ih, dtype, 1),
                             or_empty(b_hh, dtype, 1), np.asarray(sizes, dtype=np.int64), gates, hs, a_steps,
                             or_empty(rec_mask, dtype, 2), or_empty(hms, dtype, 3), or_empty(zone_h, ZONE, 3))
            w_back = (w, w_t_backward)
        else:
            gates = _forward_steps(x, w_ih, w_hh, b_ih, b_hh, sizes, hs, a_steps, backends.steps(backend, dtype),
                                   empty, rec_mask, hms, zone_h)
        lengths = lengths_from_batch_sizes(batch_sizes, B)
        h_n = final_states(hs, lengths)
        ctx.record = record
        ctx.saved = (x, w_ih, w_hh, gates, a_steps, hs, sizes, loops, w_back, backend, workspace)
        ctx.regularization = (rec_mask, hms, zone_h)
        return hs[1:], h_n

    @staticmethod
    def backward(ctx, d_out, d_hn):
        x, w_ih, w_hh, gates, a_steps, hs, sizes, loops, w_back, backend, workspace = ctx.saved
        T, B, _ = x.shape
        H = w_hh.shape[0] // 3
        dtype = x.dtype
        need = ctx.needs_input_grad
        dh = carried_gradient(d_hn, (B, H), dtype)
        if loops is None or ctx.record is not None:
            return _backward_steps(ctx, d_out, dh, backends.steps(backend, dtype))
        empty, _ = allocator(workspace)
        d_in = empty((T, B, 3 * H), dtype)  # gradient at the input-side pre-activations [dr', dz', dn']
        d_a = empty((T, B, H), dtype)  # and at a (the recurrent side's n block)
        rec_mask, hms, zone_h = ctx.regularization
        loops["backward"](gates, a_steps, hs, *w_back, dh, or_empty(d_out, dtype, 3),
                          np.asarray(sizes, dtype=np.int64), d_in, d_a, or_empty(rec_mask, dtype, 2),
                          or_empty(zone_h, ZONE, 3))
        d_x = np.empty(x.shape, dtype) if need[0] else None
        d_wih = np.empty(w_ih.shape, dtype) if need[2] else None
        d_whh = np.empty(w_hh.shape, dtype) if need[3] else None
        d_bih = np.empty(3 * H, dtype) if need[4] else None
        d_bhh = np.empty(3 * H, dtype) if need[5] else None
        loops["gradients"](d_in, d_a, x.reshape(T * B, -1), hs if hms is None else hms, c_order(w_ih),
                           or_empty(None if d_x is None else d_x.reshape(T * B, -1), dtype, 2),
                           or_empty(d_wih, dtype, 2), or_empty(d_whh, dtype, 2), or_empty(d_bih, dtype, 1),
                           or_empty(d_bhh, dtype, 1))
        return d_x, dh if need[1] else None, d_wih, d_whh, d_bih, d_bhh


def _forward_steps(x, w_ih, w_hh, b_ih, b_hh, sizes, hs, a_steps, steps, empty, rec_mask=None, hms=None,
                   zone_h=None):
    """The forward with a Python loop over steps and ``steps``' gate arithmetic (the NumPy reference).
    Fills hs[1:], a_steps and (with recurrent dropout) hms; returns the gates (T, B, 3H) = [r, z, n]."""
    B = x.shape[1]
    H = hs.shape[2]
    dtype = x.dtype
    bias = None  # one bias for the input projection: b_hr, b_hz add as b_ir, b_iz do (b_hn is inside r * a)
    if b_ih is not None or b_hh is not None:
        bias = np.zeros(3 * H, dtype=dtype)
        if b_ih is not None:
            bias += b_ih
        if b_hh is not None:
            bias[:2 * H] += b_hh[:2 * H]
    gates = project_inputs(x, w_ih, bias, empty)  # (T, B, 3H); r, z, n activations in place
    recurrent = np.empty((B, 3 * H), dtype=dtype)
    work = np.empty((B, 3 * H), dtype=dtype)  # the steps' scratch
    b_hn = b_hh[2 * H:] if b_hh is not None else np.zeros(H, dtype=dtype)
    w_hh_t = w_hh.T
    for t, b in forward_steps(sizes):
        h_in = hs[t, :b] if rec_mask is None else np.multiply(hs[t, :b], rec_mask[:b], out=hms[t, :b])
        np.matmul(h_in, w_hh_t, out=recurrent[:b])
        steps.gru_forward(gates[t, :b], recurrent[:b], b_hn, hs[t, :b], a_steps[t, :b], hs[t + 1, :b], work)
        if zone_h is not None:
            zone(hs[t + 1, :b], hs[t, :b], zone_h[t, :b])
    return gates


def _backward_steps(ctx, d_out, dh, steps):
    """The backward with a Python loop over steps (the NumPy reference, and the path that records
    dL/dh_t for a gradient probe)."""
    x, w_ih, w_hh, gates, a_steps, hs, sizes, _, _, _, workspace = ctx.saved
    T, B, _ = x.shape
    H = w_hh.shape[0] // 3
    dtype = x.dtype
    need = ctx.needs_input_grad
    empty, zeros = allocator(workspace)
    padded = zeros if any(b < B for b in sizes) else empty
    d_in = padded((T, B, 3 * H), dtype)  # gradient at the input-side pre-activations [dr', dz', dn']
    # The recurrent side's gradient [dr', dz', da] repeats d_in but for da, so only da is kept
    # over time; each step's full row lives in a small scratch that stays in cache.
    d_a = padded((T, B, H), dtype)
    d_rec = np.empty((B, 3 * H), dtype=dtype)
    carried = np.empty((B, H), dtype=dtype)
    rec_mask, hms, zone_h = ctx.regularization
    for t, b, dh_t in reverse_steps(sizes, dh, d_out, ctx.record):
        carry = None if zone_h is None else zone_split(dh_t, zone_h[t, :b])
        steps.gru_backward(gates[t, :b], a_steps[t, :b], hs[t, :b], dh_t, d_in[t, :b], d_rec[:b], d_a[t, :b])
        np.matmul(d_rec[:b], w_hh, out=carried[:b])
        if rec_mask is not None:
            carried[:b] *= rec_mask[:b]
        dh_t += carried[:b]
        if carry is not None:
            dh_t += carry
    d_x, d_wih = weight_grads(d_in, x, w_ih, need[0], need[2])
    d_whh = None
    if need[3]:
        h_prev = (hs if hms is None else hms)[:T].reshape(T * B, H)
        d_whh = np.concatenate([d_in[:, :, :2 * H].reshape(T * B, 2 * H).T @ h_prev,
                                d_a.reshape(T * B, H).T @ h_prev])
    d_in_sum = d_in.sum(axis=(0, 1)) if (need[4] or need[5]) else None
    d_bih = d_in_sum if need[4] else None
    d_bhh = np.concatenate([d_in_sum[:2 * H], d_a.sum(axis=(0, 1))]) if need[5] else None
    return d_x, dh if need[1] else None, d_wih, d_whh, d_bih, d_bhh


def gru_inference(x, h0, w_ih, w_hh, b_ih, b_hh, batch_sizes=None, backend="auto", workspace=None):
    """The GRU layer's forward for inference only (no graph, nothing kept for a backward).

    Arrays as in :class:`GRULayer`; returns (out (T, B, H), h_n (B, H)). Contract: ``out`` is a
    fresh array the caller owns; beyond it, memory is the state plus a bounded projection chunk
    (the compiled path; the NumPy path runs the training forward and copies its output).
    """
    dtype = x.dtype
    run = gru_stepper(w_ih, w_hh, b_ih, b_hh, backend, dtype)
    if run is None:
        ctx = GRULayer.__new__(GRULayer)
        out, h_n = GRULayer.forward(ctx, x, h0, w_ih, w_hh, b_ih, b_hh, batch_sizes, "numpy", None)
        return out.copy(), h_n
    T, B, I = x.shape
    sizes = compiled_gru.ALL_ROWS if batch_sizes is None else np.asarray(batch_sizes, dtype=np.int64)
    state = np.array(h0, dtype=dtype, order="C")  # a fresh copy: h_n
    if x.flags.c_contiguous:
        return run(x, state, sizes), state
    out = np.empty((T, B, state.shape[1]), dtype)
    chunk = max(1, compiled_gru.INFERENCE_CHUNK // (3 * state.shape[1] * B))
    for t0 in range(0, T, chunk):  # a view (reversed, or batch-first): copied one chunk at a time
        t1 = min(T, t0 + chunk)
        run(np.ascontiguousarray(x[t0:t1]), state, sizes[t0:t1] if batch_sizes is not None else sizes, out[t0:t1])
    return out, state


def gru_stepper(w_ih, w_hh, b_ih, b_hh, backend="auto", dtype=None):
    """The compiled inference loop with these weights bound: ``run(x, h, sizes=ALL_ROWS, out=None) -> out``,
    or None where numba does not run ``backend`` for ``dtype`` (default: the weights'). As
    ``lstm.lstm_stepper``: h (B, H) C-contiguous is updated in place to the final state."""
    dtype = np.dtype(dtype or w_ih.dtype)
    loops = compiled_gru.loops_for(backend, dtype)
    if loops is None:
        return None
    loop = loops["inference"]
    w_in, bias_in, bias_hid = c_order(w_ih), or_empty(b_ih, dtype, 1), or_empty(b_hh, dtype, 1)
    w_hh = c_order(w_hh)
    H = w_hh.shape[1]

    def run(x, h, sizes=compiled_gru.ALL_ROWS, out=None):
        T, B, I = x.shape
        if out is None:
            out = np.empty((T, B, H), dtype)
        w, w_t, _ = compiled_gru.recurrent_weights(w_hh, loops, T, training=False)
        loop(x.reshape(T * B, I), w_in, w, w_t, bias_in, bias_hid, sizes, h, out,
             max(1, compiled_gru.INFERENCE_CHUNK // (3 * H * B)))
        return out
    return run
