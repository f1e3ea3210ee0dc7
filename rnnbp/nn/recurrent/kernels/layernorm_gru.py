"""Fused layer-norm GRU layer: the whole sequence as one node, with a hand-written BPTT backward.

Equations (``nn.LayerNormGRUCell``'s, gate order r, z, n), for each step t::

    a_t = LN_ih(x_t W_ih^T) + b                        # all steps at once, before the loop
    u_t = LN_hh(h_{t-1} W_hh^T)                        # LN over 3H
    r = sigmoid(a_r + u_r),  z = sigmoid(a_z + u_z),  n = tanh(a_n + r * u_n)
    h_t = n + z * (h_{t-1} - n)

Backward, from dh_t (the output's gradient plus the next step's)::

    dn' = dh_t (1 - z)(1 - n^2);  dr' = dn' u_n r (1 - r);  dz' = dh_t (h_{t-1} - n) z (1 - z)
    da_t = [dr', dz', dn']                 (the input side's gradient)
    du_t = [dr', dz', dn' r]               (LN_hh's output's)
    dhg_t = LN_hh backward of du_t;   dh_{t-1} = dh_t z + dhg_t W_hh

and once over all steps dW_hh = dhg^T h_{t-1} and the input side's backward
(``layernorm.input_backward``): the gate bias and ``layernorm_ih.bias`` get sum da,
``layernorm_hh.bias`` sum du.

Implementations as in ``layernorm_lstm``: ``layernorm_compiled``'s loops, or the NumPy
loop over steps (the reference, and the gradient probe's path).
"""
from __future__ import annotations

import numpy as np

from ....autograd.function import Function
from . import layernorm_compiled
from .common import (active_rows, allocator, carried_gradient, final_states, forward_steps, lengths_from_batch_sizes,
                     reverse_steps, zero_padding)
from .compiled_lstm import c_order, or_empty
from .layernorm import compiled, input_backward, input_forward, normalise, normalise_backward, param_grads
from .layernorm_lstm import _sigmoid


class LayerNormGRULayer(Function):
    """One layer-norm GRU layer in one direction over a time-major, length-sorted batch.

    Inputs: x (T, B, I), h0 (B, H), w_ih (3H, I), w_hh (3H, H), bias (3H,) or None,
    gain_ih, shift_ih, gain_hh, shift_hh (3H,) (the LNs' weight and bias). ``batch_sizes``,
    ``eps``, ``backend``, ``workspace``, ``record`` as for ``LayerNormLSTMLayer``.

    Outputs: out (T, B, H) (zero past each row's length), h_n (B, H). ``out`` is a view of a
    buffer the backward reads.
    """

    @staticmethod
    def forward(ctx, x, h0, w_ih, w_hh, bias, gain_ih, shift_ih, gain_hh, shift_hh, batch_sizes=None, eps=1e-5,
                backend="auto", workspace=None, record=None):
        T, B, _ = x.shape
        H = h0.shape[1]
        dtype = x.dtype
        empty, zeros = allocator(workspace)
        sizes = active_rows(batch_sizes, T, B)
        x = c_order(zero_padding(x, sizes))
        fast = compiled(backend, dtype, record)
        padded = empty if fast or all(b == B for b in sizes) else zeros
        hs = padded((T + 1, B, H), dtype)
        h_hat, rstd_h, u_n = empty((T, B, 3 * H), dtype), empty((T, B), dtype), empty((T, B, H), dtype)
        hs[0] = h0
        if fast:
            loops = layernorm_compiled.loops()
            x_hat, rstd_x, a = empty((T * B, 3 * H), dtype), empty((T * B,), dtype), empty((T, B, 3 * H), dtype)
            loops["input_forward"](x.reshape(T * B, -1), c_order(w_ih), or_empty(bias, dtype, 1), c_order(gain_ih),
                                   c_order(shift_ih), float(eps), x_hat, rstd_x, a.reshape(T * B, -1))
            loops["gru_forward"](a, np.ascontiguousarray(w_hh.T), c_order(gain_hh), c_order(shift_hh), float(eps),
                                 np.asarray(sizes, np.int64), hs, h_hat, rstd_h, u_n)
        else:
            a, x_hat, rstd_x = input_forward(x, w_ih, bias, gain_ih, shift_ih, eps)
            for t, b in forward_steps(sizes):
                _step(a[t, :b], hs[t, :b], w_hh, gain_hh, shift_hh, eps, h_hat[t, :b], rstd_h[t, :b], u_n[t, :b],
                      hs[t + 1, :b])
        ctx.record = record
        ctx.saved = (x, w_ih, w_hh, gain_ih, gain_hh, a, x_hat, rstd_x, hs, h_hat, rstd_h, u_n, sizes, fast, workspace)
        return hs[1:], final_states(hs, lengths_from_batch_sizes(batch_sizes, B))

    @staticmethod
    def backward(ctx, d_out, d_hn):
        x, w_ih, w_hh, gain_ih, gain_hh, a, x_hat, rstd_x, hs, h_hat, rstd_h, u_n, sizes, fast, workspace = ctx.saved
        T, B, _ = x.shape
        H = hs.shape[2]
        dtype = x.dtype
        need = ctx.needs_input_grad
        empty, zeros = allocator(workspace)
        dh = carried_gradient(d_hn, (B, H), dtype)
        if fast:
            loops = layernorm_compiled.loops()
            da, dhg = empty((T, B, 3 * H), dtype), empty((T, B, 3 * H), dtype)
            acc = np.zeros((2, 3 * H))
            loops["gru_backward"](a, hs, h_hat, rstd_h, u_n, c_order(w_hh), c_order(gain_hh), dh,
                                  or_empty(d_out, dtype, 3), np.asarray(sizes, np.int64), da, dhg,
                                  np.empty((B, 3 * H), dtype), acc)
            d_gh, d_bh = acc[0].astype(dtype), acc[1].astype(dtype)
            d_x = np.empty(x.shape, dtype) if need[0] else None
            d_wih = np.empty(w_ih.shape, dtype) if need[2] else None
            acc_in = np.zeros((2, 3 * H))
            loops["input_backward"](da.reshape(T * B, -1), x_hat, rstd_x, c_order(gain_ih), x.reshape(T * B, -1),
                                    c_order(w_ih), empty((T * B, 3 * H), dtype),
                                    or_empty(None if d_x is None else d_x.reshape(T * B, -1), dtype, 2),
                                    or_empty(d_wih, dtype, 2), acc_in)
            d_gi, d_shift = acc_in[0].astype(dtype), acc_in[1].astype(dtype)
            d_whh = None
            if need[3]:
                d_whh = np.empty(w_hh.shape, dtype)
                loops["recurrent_gradient"](dhg, hs, d_whh)
        else:
            padded = zeros if any(b < B for b in sizes) else empty
            da, dhg = padded((T, B, 3 * H), dtype), padded((T, B, 3 * H), dtype)
            d_gh, d_bh = np.zeros(3 * H, dtype), np.zeros(3 * H, dtype)
            for t, b, dh_t in reverse_steps(sizes, dh, d_out, ctx.record):
                _step_backward(a[t, :b], hs[t, :b], h_hat[t, :b], rstd_h[t, :b], u_n[t, :b], gain_hh, dh_t, da[t, :b],
                               dhg[t, :b], [d_gh, d_bh])
                dh[:b] += dhg[t, :b] @ w_hh
            d_x, d_wih, d_gi, d_shift = input_backward(da, x, w_ih, x_hat, rstd_x, gain_ih, need[0], need[2])
            d_whh = dhg.reshape(T * B, -1).T @ hs[:T].reshape(T * B, H) if need[3] else None
        head = [d_x, dh if need[1] else None, d_wih, d_whh]
        return tuple(head + param_grads(need, 4, [d_shift, d_gi, d_shift, d_gh, d_bh]))


def _step(a, h_prev, w_hh, gain_hh, shift_hh, eps, h_hat, rstd_h, u_n, h):
    """One step of the NumPy path over the running rows: a (b, 3H) the input side in, [r, z, n] out;
    writes h_hat, rstd_h, u_n and h."""
    H = h.shape[1]
    h_hat[...], rstd_h[...] = normalise(h_prev @ w_hh.T, eps)
    u = h_hat * gain_hh + shift_hh
    a[:, :2 * H] = _sigmoid(a[:, :2 * H] + u[:, :2 * H])
    u_n[...] = u[:, 2 * H:]
    r, z = a[:, :H], a[:, H:2 * H]
    a[:, 2 * H:] = np.tanh(a[:, 2 * H:] + r * u_n)
    n = a[:, 2 * H:]
    h[...] = n + z * (h_prev - n)


def _step_backward(a, h_prev, h_hat, rstd_h, u_n, gain_hh, dh, da, dhg, acc):
    """One step of the NumPy path's backward over the running rows: dh (b, H) in, dh * z out (the direct
    path to h_{t-1}); writes da and dhg (b, 3H); acc = (d gain_hh, d shift_hh) summed in place."""
    H = dh.shape[1]
    r, z, n = a[:, :H], a[:, H:2 * H], a[:, 2 * H:]
    dn = dh * (1 - z) * (1 - n * n)
    da[:, 2 * H:] = dn
    da[:, :H] = dn * u_n * r * (1 - r)
    da[:, H:2 * H] = dh * (h_prev - n) * z * (1 - z)
    du = da.copy()
    du[:, 2 * H:] *= r
    acc[0] += (du * h_hat).sum(axis=0)
    acc[1] += du.sum(axis=0)
    dhg[...] = normalise_backward(du * gain_hh, h_hat, rstd_h)
    dh *= z


def layernorm_gru_inference(x, h0, *params, batch_sizes=None, eps=1e-5, backend="auto"):
    """The layer's forward on bare arrays with no graph (``nn.LayerNormGRU``'s no-grad path).

    Arrays as in :class:`LayerNormGRULayer` -> (out (T, B, H), h_n), fresh arrays; memory as in
    ``layernorm_lstm.layernorm_lstm_inference``.
    """
    dtype = x.dtype
    if not compiled(backend, dtype, None):
        ctx = type("Ctx", (), {})()
        return LayerNormGRULayer.forward(ctx, x, h0, *params, batch_sizes=batch_sizes, eps=eps, backend=backend)
    T, B, I = x.shape
    H = h0.shape[1]
    h = h0.astype(dtype, order="C", copy=True)  # updated in place
    out = np.empty((T, B, H), dtype)
    sizes = layernorm_compiled.ALL_ROWS if batch_sizes is None else np.asarray(batch_sizes, dtype=np.int64)
    w_ih, w_hh, bias, *lns = params
    chunk = max(1, layernorm_compiled.INFERENCE_CHUNK // (3 * H * max(B, 1)))
    layernorm_compiled.loops()["gru_inference"](
        c_order(x).reshape(T * B, I), c_order(w_ih), c_order(w_hh), or_empty(bias, dtype, 1),
        *map(c_order, lns), float(eps), sizes, h, out, chunk)
    return out, h
