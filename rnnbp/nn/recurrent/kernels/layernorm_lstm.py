"""Fused layer-norm LSTM layer: the whole sequence as one node, with a hand-written BPTT backward.

Equations (``nn.LayerNormLSTMCell``'s, gate order i, f, g, o), for each step t::

    a_t = LN_ih(x_t W_ih^T) + b                        # all steps at once, before the loop
    [i, f, g, o] = a_t + LN_hh(h_{t-1} W_hh^T)         # LN over 4H; i, f, o sigmoid, g tanh
    c_t = f * c_{t-1} + i * g
    h_t = o * tanh(LN_c(c_t))                           # LN over H

Backward, from dh_t (the output's gradient plus the next step's) and the carried dc::

    dy = dh_t * o * (1 - tanh^2);   do = dh_t * tanh(LN_c(c_t))
    dc = dc + LN_c backward of dy   (``layernorm.normalise_backward``; d gain_c, d shift_c summed)
    di = dc * g;  df = dc * c_{t-1};  dg = dc * i;  then dc <- dc * f
    da_t = [di i(1-i), df f(1-f), dg (1-g^2), do o(1-o)]      (the gates' pre-activations)
    dhg_t = LN_hh backward of da_t;   dh_{t-1} = dhg_t W_hh

and once over all steps: dW_hh = dhg^T h_{t-1}, the LN_ih backward of da and through it
dW_ih and dx (``layernorm.input_backward``; the compiled loops take LN_ih's backward row by
row inside the recurrence, leaving dW_ih and dx one product each); the gate bias,
``layernorm_ih.bias`` and ``layernorm_hh.bias`` all get sum da.

Two implementations: the compiled whole-sequence loops of ``layernorm_compiled`` (numba
for float32 and float64, no gradient probe), and a Python loop over the steps in NumPy
(``backend='numpy'``, or when a probe records dL/dh_t), the reference the loops are tested
against. The loops keep less: x W_ih^T as it is with its rows' means (not x_hat), and the
means of c_t (not LN_c's normalised c_t nor its tanh, which their backward forms again
to the bit); the NumPy path keeps x_hat, c_hat and tanh(LN_c(c_t)) (see ``ctx.saved``).
"""
from __future__ import annotations

import numpy as np

from ....autograd.function import Function
from . import layernorm_compiled
from .common import (active_rows, allocator, carried_gradient, final_states, forward_steps, lengths_from_batch_sizes,
                     reverse_steps, zero_padding)
from .compiled_lstm import c_order, or_empty
from .layernorm import compiled, input_backward, input_forward, normalise, normalise_backward, param_grads


def _shift(shift_ih, shift_hh, bias) -> np.ndarray:
    """What the compiled loops add to the gates after the two layer norms' gains: shift_ih + shift_hh + bias."""
    shift = shift_ih + shift_hh
    return shift if bias is None else shift + bias


def _sigmoid(v):
    return 0.5 * (1.0 + np.tanh(0.5 * v))  # no overflow for large |v|


class LayerNormLSTMLayer(Function):
    """One layer-norm LSTM layer in one direction over a time-major, length-sorted batch.

    Inputs: x (T, B, I), h0 (B, H), c0 (B, H), w_ih (4H, I), w_hh (4H, H), bias (4H,) or None,
    gain_ih, shift_ih, gain_hh, shift_hh (4H,), gain_c, shift_c (H,) (the LNs' weight and bias).
    ``batch_sizes``: running rows per step (None: all B, all T). ``eps``: the LNs' eps.
    ``backend``: 'auto' | 'numba' | 'numpy'. ``record(t, dh_t)``: the gradient probe's callback.

    Outputs: out (T, B, H) (zero past each row's length), h_n (B, H), c_n (B, H). ``out`` is a view
    of a buffer the backward reads.
    """

    @staticmethod
    def forward(ctx, x, h0, c0, w_ih, w_hh, bias, gain_ih, shift_ih, gain_hh, shift_hh, gain_c, shift_c,
                batch_sizes=None, eps=1e-5, backend="auto", workspace=None, record=None):
        T, B, _ = x.shape
        H = h0.shape[1]
        dtype = x.dtype
        empty, zeros = allocator(workspace)
        sizes = active_rows(batch_sizes, T, B)
        x = c_order(zero_padding(x, sizes))
        fast = compiled(backend, dtype, record)
        padded = empty if fast or all(b == B for b in sizes) else zeros  # the loops write every position read
        hs, cs = padded((T + 1, B, H), dtype), empty((T + 1, B, H), dtype)
        h_hat, rstd_h, rstd_c = empty((T, B, 4 * H), dtype), empty((T, B), dtype), empty((T, B), dtype)
        hs[0], cs[0] = h0, c0
        if fast:  # the loops keep x W_ih^T as it is in x_hat, and the means of it and of c instead of c_hat, tanh_cs
            x_hat, a = empty((T, B, 4 * H), dtype), empty((T, B, 4 * H), dtype)
            means, rstd_x = (empty((T, B), dtype), empty((T, B), dtype)), empty((T, B), dtype)
            c_hat = tanh_cs = None
            layernorm_compiled.loops()["lstm_forward"](
                x.reshape(T * B, -1), c_order(w_ih), np.ascontiguousarray(w_hh.T), c_order(gain_ih), c_order(gain_hh),
                _shift(shift_ih, shift_hh, bias), c_order(gain_c), c_order(shift_c), float(eps),
                np.asarray(sizes, np.int64), hs, cs, x_hat, means[0], rstd_x, a, h_hat, rstd_h, means[1], rstd_c)
        else:
            c_hat, tanh_cs = empty((T, B, H), dtype), empty((T, B, H), dtype)
            a, x_hat, rstd_x = input_forward(x, w_ih, bias, gain_ih, shift_ih, eps)
            means = None
            for t, b in forward_steps(sizes):
                _step(a[t, :b], hs[t, :b], cs[t, :b], w_hh, gain_hh, shift_hh, gain_c, shift_c, eps, h_hat[t, :b],
                      rstd_h[t, :b], cs[t + 1, :b], c_hat[t, :b], rstd_c[t, :b], tanh_cs[t, :b], hs[t + 1, :b])
        lengths = lengths_from_batch_sizes(batch_sizes, B)
        ctx.record = record
        ctx.saved = (x, w_ih, w_hh, gain_ih, gain_hh, gain_c, a, x_hat, rstd_x, hs, cs, h_hat, rstd_h, c_hat, rstd_c,
                     tanh_cs, sizes, fast, workspace, shift_c, means)
        return hs[1:], final_states(hs, lengths), final_states(cs, lengths)

    @staticmethod
    def backward(ctx, d_out, d_hn, d_cn):
        (x, w_ih, w_hh, gain_ih, gain_hh, gain_c, a, x_hat, rstd_x, hs, cs, h_hat, rstd_h, c_hat, rstd_c, tanh_cs,
         sizes, fast, workspace, shift_c, means) = ctx.saved
        T, B, _ = x.shape
        H = hs.shape[2]
        dtype = x.dtype
        need = ctx.needs_input_grad
        empty, zeros = allocator(workspace)
        dh = carried_gradient(d_hn, (B, H), dtype)
        dc = carried_gradient(d_cn, (B, H), dtype)
        if fast:
            loops = layernorm_compiled.loops()
            dxg, dhg = empty((T, B, 4 * H), dtype), empty((T, B, 4 * H), dtype)
            acc = np.zeros((5, 4 * H))
            loops["lstm_backward"](a, cs, x_hat, means[0], rstd_x, h_hat, rstd_h, means[1], rstd_c, c_order(w_hh),
                                   c_order(gain_ih), c_order(gain_hh), c_order(gain_c), c_order(shift_c), dh, dc,
                                   or_empty(d_out, dtype, 3), np.asarray(sizes, np.int64), dxg, dhg, acc)
            d_gi, d_gh, d_shift, d_gc, d_bc = (acc[k].astype(dtype) for k in range(5))
            d_gc, d_bc = d_gc[:H], d_bc[:H]
            d_x = np.empty(x.shape, dtype) if need[0] else None
            d_wih = np.empty(w_ih.shape, dtype) if need[3] else None
            d_whh = np.empty(w_hh.shape, dtype) if need[4] else None
            loops["lstm_gradients"](dxg, x.reshape(T * B, -1), c_order(w_ih), dhg, hs,
                                    or_empty(None if d_x is None else d_x.reshape(T * B, -1), dtype, 2),
                                    or_empty(d_wih, dtype, 2), or_empty(d_whh, dtype, 2))
        else:
            padded = zeros if any(b < B for b in sizes) else empty
            da, dhg = padded((T, B, 4 * H), dtype), padded((T, B, 4 * H), dtype)
            d_gh, d_gc, d_bc = np.zeros(4 * H, dtype), np.zeros(H, dtype), np.zeros(H, dtype)
            for t, b, dh_t in reverse_steps(sizes, dh, d_out, ctx.record):
                _step_backward(a[t, :b], cs[t, :b], h_hat[t, :b], rstd_h[t, :b], c_hat[t, :b], rstd_c[t, :b],
                               tanh_cs[t, :b], gain_hh, gain_c, dh_t, dc[:b], da[t, :b], dhg[t, :b],
                               [d_gh, d_gc, d_bc])
                np.matmul(dhg[t, :b], w_hh, out=dh[:b])
            d_x, d_wih, d_gi, d_shift = input_backward(da, x, w_ih, x_hat, rstd_x, gain_ih, need[0], need[3])
            d_whh = dhg.reshape(T * B, -1).T @ hs[:T].reshape(T * B, H) if need[4] else None
        head = [d_x, dh if need[1] else None, dc if need[2] else None, d_wih, d_whh]
        return tuple(head + param_grads(need, 5, [d_shift, d_gi, d_shift, d_gh, d_shift, d_gc, d_bc]))


def _step(a, h_prev, c_prev, w_hh, gain_hh, shift_hh, gain_c, shift_c, eps, h_hat, rstd_h, c, c_hat, rstd_c, tanh_c,
          h):
    """One step of the NumPy path over the running rows: a (b, 4H) the input side in, [i, f, g, o] out;
    writes the step's buffers (h_hat, rstd_h, c, c_hat, rstd_c, tanh_c) and h."""
    H = h.shape[1]
    h_hat[...], rstd_h[...] = normalise(h_prev @ w_hh.T, eps)
    a += h_hat * gain_hh + shift_hh
    a[:, :2 * H] = _sigmoid(a[:, :2 * H])
    a[:, 2 * H:3 * H] = np.tanh(a[:, 2 * H:3 * H])
    a[:, 3 * H:] = _sigmoid(a[:, 3 * H:])
    i, f, g, o = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
    c[...] = f * c_prev + i * g
    c_hat[...], rstd_c[...] = normalise(c, eps)
    tanh_c[...] = np.tanh(c_hat * gain_c + shift_c)
    h[...] = o * tanh_c


def _step_backward(a, c_prev, h_hat, rstd_h, c_hat, rstd_c, tanh_c, gain_hh, gain_c, dh, dc, da, dhg, acc):
    """One step of the NumPy path's backward over the running rows: from dh (b, H) and the carried dc
    (updated in place to dL/dc_{t-1}), writes da (b, 4H) and dhg (b, 4H); acc = (d gain_hh, d gain_c,
    d shift_c) summed in place."""
    H = dh.shape[1]
    i, f, g, o = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
    dy = dh * o * (1 - tanh_c * tanh_c)
    acc[1] += (dy * c_hat).sum(axis=0)
    acc[2] += dy.sum(axis=0)
    dc += normalise_backward(dy * gain_c, c_hat, rstd_c)
    da[:, :H] = dc * g * i * (1 - i)
    da[:, H:2 * H] = dc * c_prev * f * (1 - f)
    da[:, 2 * H:3 * H] = dc * i * (1 - g * g)
    da[:, 3 * H:] = dh * tanh_c * o * (1 - o)
    dc *= f
    acc[0] += (da * h_hat).sum(axis=0)
    dhg[...] = normalise_backward(da * gain_hh, h_hat, rstd_h)


def layernorm_lstm_inference(x, h0, c0, *params, batch_sizes=None, eps=1e-5, backend="auto"):
    """The layer's forward on bare arrays with no graph (``nn.LayerNormLSTM``'s no-grad path).

    Arrays as in :class:`LayerNormLSTMLayer` -> (out (T, B, H), h_n, c_n), fresh arrays. Compiled, it
    keeps nothing for a backward: memory is the state, the output and a bounded chunk of the input
    side (``layernorm_compiled.INFERENCE_CHUNK`` gate items). The NumPy path runs the training
    forward on fresh buffers.
    """
    dtype = x.dtype
    if not compiled(backend, dtype, None):
        ctx = type("Ctx", (), {})()
        return LayerNormLSTMLayer.forward(ctx, x, h0, c0, *params, batch_sizes=batch_sizes, eps=eps,
                                          backend=backend)
    T, B, I = x.shape
    H = c0.shape[1]
    h, c = h0.astype(dtype, order="C", copy=True), c0.astype(dtype, order="C", copy=True)  # updated in place
    out = np.empty((T, B, H), dtype)
    sizes = layernorm_compiled.ALL_ROWS if batch_sizes is None else np.asarray(batch_sizes, dtype=np.int64)
    w_ih, w_hh, bias, gain_ih, shift_ih, gain_hh, shift_hh, gain_c, shift_c = params
    chunk = max(1, layernorm_compiled.INFERENCE_CHUNK // (4 * H * max(B, 1)))
    layernorm_compiled.loops()["lstm_inference"](
        c_order(x).reshape(T * B, I), c_order(w_ih), c_order(w_hh), c_order(gain_ih), c_order(gain_hh),
        _shift(shift_ih, shift_hh, bias), c_order(gain_c), c_order(shift_c), float(eps), sizes, h, c, out, chunk)
    return out, h, c
