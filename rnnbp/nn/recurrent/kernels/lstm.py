"""Fused LSTM layer: the whole sequence as one node, with a hand-written BPTT backward.

Equations (PyTorch's, gate order i, f, g, o), for each step t::

    [i, f, g, o] = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh
    i, f, o = sigmoid(i), sigmoid(f), sigmoid(o);  g = tanh(g)
    c_t = f * c_{t-1} + i * g
    r_t = o * tanh(c_t)
    h_t = r_t W_hr^T     with a projection (proj_size > 0), else h_t = r_t

Backward, from dh_t (the output's gradient plus the next step's) and the
carried dc::

    dr = dh_t W_hr   (or dh_t);    do = dr * tanh(c_t)
    dc = dc + dr * o * (1 - tanh(c_t)^2)
    di = dc * g;  df = dc * c_{t-1};  dg = dc * i;  then dc <- dc * f
    dgates = [di i(1-i), df f(1-f), dg (1-g^2), do o(1-o)]
    dh_{t-1} = dgates W_hh

and, once over all steps, dW_ih = dgates^T x, dW_hh = dgates^T h_{t-1},
db = sum dgates, dW_hr = dh^T r, dx = dgates W_ih.

Two implementations of the same layer. With numba (backend 'numba', or 'auto'
where numba runs, float32 and float64), ``compiled_lstm`` runs each direction of
the recurrence as one compiled call over the whole sequence. Otherwise, and
whenever a gradient probe records dL/dh_t (a Python callback per step), a Python
loop runs over the steps with ``backends``' step arithmetic; with
``numpy_steps`` this is the reference the compiled loops are tested against.
"""
from __future__ import annotations

import numpy as np

from ....autograd.function import Function
from . import backends, compiled_lstm
from .common import (active_rows, allocator, carried_gradient, final_states, forward_steps, lengths_from_batch_sizes,
                     project_inputs, reverse_steps, weight_grads, zero_padding, zone, zone_split)
from .compiled_lstm import ZONE, c_order, or_empty, weights


class LSTMLayer(Function):
    """One LSTM layer in one direction over a time-major, length-sorted batch.

    ``backend``: 'auto', 'numpy' or 'numba' (see ``backends``; numba runs the compiled
    whole-sequence loops of ``compiled_lstm``).
    Inputs: x (T, B, I), h0 (B, P), c0 (B, H), w_ih (4H, I), w_hh (4H, P),
    b_ih (4H,) or None, b_hh (4H,) or None, w_hr (P, H) or None; P = H without
    a projection. ``batch_sizes``: running rows per step (None: all B, all T).
    ``record(t, dh_t)``: called with each step's dL/dh_t during backward (the per-step path runs).

    Outputs: out (T, B, P) (zero past each row's length), h_n (B, P), c_n (B, H).
    ``out`` is a view of a buffer the backward reads: writing into its array changes the
    gradients (as writing into PyTorch's ``.data`` would).

    Regularisation inside the recurrence (``nn.recurrent.regularization``; None: off, and the
    layer runs exactly as without): ``rec_mask`` (B, P) multiplies h_{t-1} where it enters
    W_hh (recurrent dropout, the carried h itself unmasked); ``zone_h`` (T, B, P) and ``zone_c``
    (T, B, H) mix each new state with the previous one, h_t <- (1 - zone_h[t]) h_t + zone_h[t] h_{t-1}
    (zoneout: bool per unit and step in training, the rate itself in eval, or floats).
    """

    @staticmethod
    def forward(ctx, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, batch_sizes=None, backend="auto",
                workspace=None, record=None, rec_mask=None, zone_h=None, zone_c=None):
        T, B, _ = x.shape
        H = w_hh.shape[0] // 4
        P = h0.shape[1]
        dtype = x.dtype
        empty, _ = allocator(workspace)
        sizes = active_rows(batch_sizes, T, B)
        x = zero_padding(x, sizes)
        loops = compiled_lstm.loops_for(backend, dtype) if record is None else None
        rows = xh = None
        if loops is not None:
            x = c_order(x)
            rows = np.asarray(sizes, dtype=np.int64)
            # The loops write every position a reader sees: the buffers may start uninitialised.
            gates = empty((T, B, 4 * H), dtype)  # [i, f, g, o] activations
            hs = empty((T + 1, B, P), dtype)
            cs = empty((T + 1, B, H), dtype)
            tanh_cs = empty((T, B, H), dtype)
            rs = empty((T, B, H), dtype) if w_hr is not None else None
            xh = empty((T, B, x.shape[2] + P), dtype)  # [x_t, h_{t-1}] (masked with recurrent dropout)
            hms = None  # the per-step path's masked h_{t-1}: xh holds it here
            hs[0], cs[0] = h0, c0
            loops["forward"](x.reshape(T * B, -1), *weights(w_ih, w_hh, b_ih, b_hh, w_hr, dtype), rows, gates, hs, cs,
                             tanh_cs, or_empty(rs, dtype, 3), or_empty(rec_mask, dtype, 2),
                             or_empty(zone_h, ZONE, 3), or_empty(zone_c, ZONE, 3),
                             compiled_lstm.stacked_weights(w_ih, w_hh), xh)
            order = None
        else:
            gates, hs, cs, tanh_cs, rs, order, hms = _forward_steps(x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, sizes,
                                                                    backends.steps(backend, dtype), workspace,
                                                                    rec_mask, zone_h, zone_c)
        lengths = lengths_from_batch_sizes(batch_sizes, B)
        h_n, c_n = final_states(hs, lengths), final_states(cs, lengths)
        ctx.record = record
        ctx.saved = (x, w_ih, w_hh, w_hr, gates, hs, cs, tanh_cs, rs, sizes, rows, order, loops, backend, workspace)
        ctx.regularization = (rec_mask, hms, zone_h, zone_c)
        ctx.xh = xh
        return hs[1:], h_n, c_n

    @staticmethod
    def backward(ctx, d_out, d_hn, d_cn):
        x, w_ih, w_hh, w_hr, gates, hs, cs, tanh_cs, rs, sizes, rows, order, loops, backend, workspace = ctx.saved
        T, B, _ = x.shape
        H = w_hh.shape[0] // 4
        P = hs.shape[2]
        dtype = x.dtype
        need = ctx.needs_input_grad
        dh = carried_gradient(d_hn, (B, P), dtype)
        dc = carried_gradient(d_cn, (B, H), dtype)
        if loops is None:
            return _backward_steps(ctx, d_out, dh, dc, backends.steps(backend, dtype))
        empty, _ = allocator(workspace)
        dgates = empty((T, B, 4 * H), dtype)  # written in full by the loop (zero on padding)
        dh_steps = empty((T, B, P), dtype) if w_hr is not None else None
        rec_mask, hms, zone_h, zone_c = ctx.regularization
        d_b = np.empty(4 * H, np.float64) if (need[5] or need[6]) else None  # summed in float64
        loops["backward"](gates, cs, tanh_cs, c_order(w_hh), or_empty(w_hr, dtype, 2), dh, dc,
                          or_empty(d_out, dtype, 3), rows, dgates, or_empty(dh_steps, dtype, 3),
                          or_empty(rec_mask, dtype, 2), or_empty(zone_h, ZONE, 3), or_empty(zone_c, ZONE, 3),
                          or_empty(d_b, np.dtype(np.float64), 1))
        d_x = np.empty(x.shape, dtype) if need[0] else None
        d_wih = np.empty(w_ih.shape, dtype) if need[3] else None
        d_whh = np.empty(w_hh.shape, dtype) if need[4] else None
        d_whr = np.empty(w_hr.shape, dtype) if (w_hr is not None and need[7]) else None
        loops["gradients"](dgates, ctx.xh, c_order(w_ih), or_empty(dh_steps, dtype, 3), or_empty(rs, dtype, 3),
                           or_empty(None if d_x is None else d_x.reshape(T * B, -1), dtype, 2),
                           or_empty(d_wih, dtype, 2), or_empty(d_whh, dtype, 2), or_empty(d_whr, dtype, 2))
        if d_b is not None:
            d_b = d_b.astype(dtype)
        d_bih = d_b if need[5] else None
        d_bhh = None if not need[6] else (d_b.copy() if need[5] else d_b)
        return d_x, dh if need[1] else None, dc if need[2] else None, d_wih, d_whh, d_bih, d_bhh, d_whr


def _internal_weights(w_ih, w_hh, b_ih, b_hh):
    """The per-step path's weights: gate order [i, f, o, g] (the three sigmoid gates one block),
    the i, f, o rows halved so that one tanh serves all four (see ``numpy_steps``).

    Returns (order (4H,), w_in (4H, I), w_rec_t (P, 4H), bias (4H,) or None).
    """
    H = w_hh.shape[0] // 4
    order = np.r_[0:2 * H, 3 * H:4 * H, 2 * H:3 * H]
    half = np.ones(4 * H, dtype=w_ih.dtype)
    half[:3 * H] = 0.5
    bias = None if b_ih is None else (b_ih + b_hh)[order] * half
    return order, w_ih[order] * half[:, None], (w_hh[order] * half[:, None]).T, bias


def _step(steps, g, rec, h_prev, w_rec_t, c_prev, c, tc, r, h, w_hr):
    """One step of the per-step path over b rows: rec = h_prev W_hh^T, then ``steps.lstm_forward``
    (g <- activations, c, tc = tanh c, r = o tc), then h = r W_hr^T with a projection (else r is h)."""
    np.matmul(h_prev, w_rec_t, out=rec)
    steps.lstm_forward(g, rec, c_prev, c, tc, r)
    if w_hr is not None:
        np.matmul(r, w_hr.T, out=h)


def _forward_steps(x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, sizes, steps, workspace, rec_mask=None, zone_h=None,
                   zone_c=None):
    """The forward with a Python loop over steps and ``steps``' gate arithmetic, in the internal
    gate order. Returns (gates, hs, cs, tanh_cs, rs, order, hms): the buffers backward reads
    (hms: the masked h_{t-1} with recurrent dropout, else None)."""
    T, B, _ = x.shape
    H = w_hh.shape[0] // 4
    P = h0.shape[1]
    dtype = x.dtype
    empty, zeros = allocator(workspace)
    padded = zeros if any(b < B for b in sizes) else empty  # ragged: positions no step writes must be 0
    order, w_in, w_rec_t, bias = _internal_weights(w_ih, w_hh, b_ih, b_hh)
    gates = project_inputs(x, w_in, bias, empty)  # (T, B, 4H); activations in place
    hs = padded((T + 1, B, P), dtype)
    cs = empty((T + 1, B, H), dtype)
    tanh_cs = empty((T, B, H), dtype)
    rs = padded((T, B, H), dtype) if w_hr is not None else None  # read in full by dW_hr
    hs[0], cs[0] = h0, c0
    hms = padded((T + 1, B, P), dtype) if rec_mask is not None else None
    recurrent = np.empty((B, 4 * H), dtype=dtype)
    for t, b in forward_steps(sizes):
        r = hs[t + 1, :b] if w_hr is None else rs[t, :b]
        h_in = hs[t, :b]
        if rec_mask is not None:
            h_in = np.multiply(h_in, rec_mask[:b], out=hms[t, :b])
        _step(steps, gates[t, :b], recurrent[:b], h_in, w_rec_t, cs[t, :b], cs[t + 1, :b], tanh_cs[t, :b], r,
              hs[t + 1, :b], w_hr)
        if zone_c is not None:
            zone(cs[t + 1, :b], cs[t, :b], zone_c[t, :b])
        if zone_h is not None:
            zone(hs[t + 1, :b], hs[t, :b], zone_h[t, :b])
    return gates, hs, cs, tanh_cs, rs, order, hms


def _backward_steps(ctx, d_out, dh, dc, steps):
    """The backward with a Python loop over steps (the NumPy reference, and the path that records
    dL/dh_t for a gradient probe), from ``_forward_steps``' buffers."""
    x, w_ih, w_hh, w_hr, gates, hs, cs, tanh_cs, rs, sizes, _, order, _, _, workspace = ctx.saved
    T, B, _ = x.shape
    H = w_hh.shape[0] // 4
    P = hs.shape[2]
    dtype = x.dtype
    need = ctx.needs_input_grad
    empty, zeros = allocator(workspace)
    padded = zeros if any(b < B for b in sizes) else empty
    dgates = padded((T, B, 4 * H), dtype)
    dh_steps = padded((T, B, P), dtype) if w_hr is not None else None
    w_hh_k = w_hh[order]  # unscaled, internal gate order
    rec_mask, hms, zone_h, zone_c = ctx.regularization
    for t, b, dh_t in reverse_steps(sizes, dh, d_out, ctx.record):
        carry_h = None if zone_h is None else zone_split(dh_t, zone_h[t, :b])
        carry_c = None if zone_c is None else zone_split(dc[:b], zone_c[t, :b])
        if w_hr is not None:
            dh_steps[t, :b] = dh_t
            dr = dh_t @ w_hr  # (b, H)
        else:
            dr = dh_t
        steps.lstm_backward(gates[t, :b], cs[t, :b], tanh_cs[t, :b], dr, dc[:b], dgates[t, :b])
        np.matmul(dgates[t, :b], w_hh_k, out=dh[:b])
        if rec_mask is not None:
            dh[:b] *= rec_mask[:b]
        if carry_h is not None:
            dh[:b] += carry_h
        if carry_c is not None:
            dc[:b] += carry_c
    back = np.argsort(order)  # internal gate order -> PyTorch's
    d_x, d_wih = weight_grads(dgates, x, w_ih[order], need[0], need[3])
    d_wih = None if d_wih is None else d_wih[back]
    h_prev = hs if hms is None else hms
    d_whh = (dgates.reshape(T * B, -1).T @ h_prev[:T].reshape(T * B, P))[back] if need[4] else None
    d_b = dgates.sum(axis=(0, 1))[back] if (need[5] or need[6]) else None
    d_whr = None
    if w_hr is not None and need[7]:
        d_whr = dh_steps.reshape(T * B, P).T @ rs.reshape(T * B, H)
    return (d_x, dh if need[1] else None, dc if need[2] else None, d_wih, d_whh,
            d_b if need[5] else None, d_b.copy() if need[6] else None, d_whr)


def lstm_inference(x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, batch_sizes=None, backend="auto", workspace=None):
    """The LSTM layer's forward for inference only (no graph, nothing kept for a backward).

    Arrays as in :class:`LSTMLayer`; returns (out (T, B, P), h_n (B, P), c_n (B, H)).
    ``out`` is a fresh array the caller owns; beyond it, memory is the state plus a bounded
    projection chunk (``compiled_lstm.INFERENCE_CHUNK`` gate items), never the (T, B, 4H)
    training buffers. The compiled path prepares nothing per call (it reads the weights as
    they are), so a streamed step (T = 1) costs little more than its arithmetic.
    ``workspace`` is accepted for symmetry with the layer and not used.
    """
    dtype = x.dtype
    T, B, I = x.shape
    h = h0.copy() if h0.dtype == dtype else h0.astype(dtype, order="C")  # fresh C-ordered copies, updated in
    c = c0.copy() if c0.dtype == dtype else c0.astype(dtype, order="C")  # place: h_n, c_n
    run = lstm_stepper(w_ih, w_hh, b_ih, b_hh, w_hr, backend, dtype)
    if run is None:
        out = np.empty((T, B, h0.shape[1]), dtype)
        chunk = max(1, compiled_lstm.INFERENCE_CHUNK // (4 * c.shape[1] * max(B, 1)))
        _inference_steps(x, h, c, w_ih, w_hh, b_ih, b_hh, w_hr, active_rows(batch_sizes, T, B),
                         backends.steps(backend, dtype), out, chunk)
        return out, h, c
    sizes = compiled_lstm.ALL_ROWS if batch_sizes is None else np.asarray(batch_sizes, dtype=np.int64)
    if x.flags.c_contiguous:
        return run(x, h, c, sizes), h, c
    out = np.empty((T, B, h0.shape[1]), dtype)
    chunk = max(1, compiled_lstm.INFERENCE_CHUNK // (4 * c.shape[1] * max(B, 1)))
    for t0 in range(0, T, chunk):  # a view (reversed, or batch-first): copied one chunk at a time
        t1 = min(T, t0 + chunk)
        run(np.ascontiguousarray(x[t0:t1]), h, c, sizes[t0:t1] if batch_sizes is not None else sizes, out[t0:t1])
    return out, h, c


def lstm_stepper(w_ih, w_hh, b_ih, b_hh, w_hr, backend="auto", dtype=None):
    """The compiled inference loop with these weights bound: ``run(x, h, c, sizes=ALL_ROWS, out=None) -> out``,
    or None where numba does not run ``backend`` for ``dtype`` (default: the weights').

    x (T, B, I) C-contiguous; h (B, P), c (B, H) C-contiguous, the initial state in and the
    final state out (updated in place); sizes (T,) rows running at each step, or ALL_ROWS;
    out (T, B, P), allocated when not given. The weights are bound as they are (copied only if
    not C-contiguous), so that a caller stepping a layer many times (``nn.recurrent.inference``)
    prepares them once and each call costs the loop and little else.
    """
    dtype = np.dtype(dtype or w_ih.dtype)
    loops = compiled_lstm.loops_for(backend, dtype)
    if loops is None:
        return None
    loop, (w_ih, w_hh, b_ih, b_hh, w_hr) = loops["inference"], weights(w_ih, w_hh, b_ih, b_hh, w_hr, dtype)
    rows, chunk, transposed = w_hh.shape[0], compiled_lstm.INFERENCE_CHUNK, compiled_lstm.transposed
    no_copy = transposed(w_hh, 1)  # a few steps: no copy of W_hh^T

    def run(x, h, c, sizes=compiled_lstm.ALL_ROWS, out=None):
        T, B, I = x.shape
        if out is None:
            out = np.empty((T, B, h.shape[1]), dtype)
        loop(x.reshape(T * B, I), w_ih, w_hh, b_ih, b_hh, w_hr, sizes, h, c, out, max(1, chunk // (rows * B)),
             no_copy if T < 8 else transposed(w_hh, T))
        return out
    return run


def _inference_steps(x, h, c, w_ih, w_hh, b_ih, b_hh, w_hr, sizes, steps, out, chunk):
    """``lstm_inference`` with a Python loop over steps: h, c (the state, updated in place), out
    (T, B, P) filled; the inputs projected ``chunk`` steps at a time."""
    T, B, I = x.shape
    H = c.shape[1]
    dtype = x.dtype
    _, w_in, w_rec_t, bias = _internal_weights(w_ih, w_hh, b_ih, b_hh)
    chunk = max(1, min(chunk, T))
    g = np.empty((chunk, B, 4 * H), dtype)
    rec = np.empty((B, 4 * H), dtype)
    c_new, tc = np.empty((B, H), dtype), np.empty((B, H), dtype)
    r = np.empty((B, H), dtype) if w_hr is not None else None
    for t0 in range(0, T, chunk):
        t1 = min(T, t0 + chunk)
        gates = g[:t1 - t0]
        np.matmul(x[t0:t1].reshape(-1, I), w_in.T, out=gates.reshape(-1, 4 * H))
        if bias is not None:
            gates += bias
        for t in range(t0, t1):
            b = sizes[t]
            if b:
                r_t = out[t, :b] if w_hr is None else r[:b]
                _step(steps, gates[t - t0, :b], rec[:b], h[:b], w_rec_t, c[:b], c_new[:b], tc[:b], r_t, out[t, :b],
                      w_hr)
                c[:b] = c_new[:b]
                h[:b] = out[t, :b]
            out[t, b:] = 0
