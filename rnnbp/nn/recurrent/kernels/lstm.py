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
"""
from __future__ import annotations

import numpy as np

from ....autograd.function import Function
from . import backends
from .common import (active_rows, allocator, carried_gradient, final_states, forward_steps, lengths_from_batch_sizes,
                     project_inputs, reverse_steps, weight_grads, zero_padding)


class LSTMLayer(Function):
    """One LSTM layer in one direction over a time-major, length-sorted batch.

    ``backend``: 'auto', 'numpy' or 'numba' step arithmetic (see ``backends``).
    Inputs: x (T, B, I), h0 (B, P), c0 (B, H), w_ih (4H, I), w_hh (4H, P),
    b_ih (4H,) or None, b_hh (4H,) or None, w_hr (P, H) or None; P = H without
    a projection. ``batch_sizes``: running rows per step (None: all B, all T).

    Outputs: out (T, B, P) (zero past each row's length), h_n (B, P), c_n (B, H).
    ``out`` is a view of a buffer the backward reads: writing into its array changes the
    gradients (as writing into PyTorch's ``.data`` would).
    """

    @staticmethod
    def forward(ctx, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, batch_sizes=None, backend="auto",
                workspace=None, record=None):
        T, B, _ = x.shape
        H = w_hh.shape[0] // 4
        P = h0.shape[1]
        dtype = x.dtype
        # Internally the gates run in the order [i, f, o, g], so the three sigmoid gates are one
        # contiguous block, with their rows halved so that one tanh serves all four (see numpy_steps).
        order = np.r_[0:2 * H, 3 * H:4 * H, 2 * H:3 * H]
        half = np.ones(4 * H, dtype=dtype)
        half[:3 * H] = 0.5
        bias = None if b_ih is None else (b_ih + b_hh)[order] * half
        empty, zeros = allocator(workspace)
        padded = zeros if batch_sizes is not None else empty  # ragged: positions no step writes must be 0
        gates = project_inputs(x, w_ih[order] * half[:, None], bias, empty)  # (T, B, 4H); activations in place
        hs = padded((T + 1, B, P), dtype)
        cs = empty((T + 1, B, H), dtype)
        tanh_cs = empty((T, B, H), dtype)
        rs = padded((T, B, H), dtype) if w_hr is not None else None  # read in full by dW_hr
        hs[0], cs[0] = h0, c0
        recurrent = np.empty((B, 4 * H), dtype=dtype)
        w_hh_t = (w_hh[order] * half[:, None]).T
        steps = backends.steps(backend, dtype)
        sizes = active_rows(batch_sizes, T, B)
        x = zero_padding(x, sizes)
        for t, b in forward_steps(sizes):
            np.matmul(hs[t, :b], w_hh_t, out=recurrent[:b])
            r = hs[t + 1, :b] if w_hr is None else rs[t, :b]
            steps.lstm_forward(gates[t, :b], recurrent[:b], cs[t, :b], cs[t + 1, :b], tanh_cs[t, :b], r)
            if w_hr is not None:
                np.matmul(r, w_hr.T, out=hs[t + 1, :b])
        lengths = lengths_from_batch_sizes(batch_sizes, B)
        h_n, c_n = final_states(hs, lengths), final_states(cs, lengths)
        ctx.record = record
        ctx.saved = (x, w_ih, w_hh, w_hr, gates, hs, cs, tanh_cs, rs, sizes, order, steps, workspace)
        return hs[1:], h_n, c_n

    @staticmethod
    def backward(ctx, d_out, d_hn, d_cn):
        x, w_ih, w_hh, w_hr, gates, hs, cs, tanh_cs, rs, sizes, order, steps, workspace = ctx.saved
        T, B, _ = x.shape
        H = w_hh.shape[0] // 4
        P = hs.shape[2]
        dtype = x.dtype
        need = ctx.needs_input_grad
        dh = carried_gradient(d_hn, (B, P), dtype)
        dc = carried_gradient(d_cn, (B, H), dtype)
        empty, zeros = allocator(workspace)
        padded = zeros if any(b < B for b in sizes) else empty
        dgates = padded((T, B, 4 * H), dtype)
        dh_steps = padded((T, B, P), dtype) if w_hr is not None else None
        w_hh_k = w_hh[order]  # unscaled, internal gate order
        for t, b, dh_t in reverse_steps(sizes, dh, d_out, ctx.record):
            if w_hr is not None:
                dh_steps[t, :b] = dh_t
                dr = dh_t @ w_hr  # (b, H)
            else:
                dr = dh_t
            steps.lstm_backward(gates[t, :b], cs[t, :b], tanh_cs[t, :b], dr, dc[:b], dgates[t, :b])
            np.matmul(dgates[t, :b], w_hh_k, out=dh[:b])
        back = np.argsort(order)  # internal gate order -> PyTorch's
        d_x, d_wih = weight_grads(dgates, x, w_ih[order], need[0], need[3])
        d_wih = None if d_wih is None else d_wih[back]
        d_whh = (dgates.reshape(T * B, -1).T @ hs[:T].reshape(T * B, P))[back] if need[4] else None
        d_b = dgates.sum(axis=(0, 1))[back] if (need[5] or need[6]) else None
        d_whr = None
        if w_hr is not None and need[7]:
            d_whr = dh_steps.reshape(T * B, P).T @ rs.reshape(T * B, H)
        return (d_x, dh if need[1] else None, dc if need[2] else None, d_wih, d_whh,
                d_b if need[5] else None, d_b.copy() if need[6] else None, d_whr)


def lstm_inference(x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, batch_sizes=None, backend="auto", workspace=None):
    """The LSTM layer's forward for inference only (no graph, nothing kept for a backward).

    Arrays as in :class:`LSTMLayer`; returns (out (T, B, P), h_n (B, P), c_n (B, H)).
    Contract: ``out`` is a fresh array the caller owns; beyond it, memory is the state (B, H)
    plus a bounded projection chunk, never the (T, B, 4H) training buffers.
    """
    ctx = LSTMLayer.__new__(LSTMLayer)
    out, h_n, c_n = LSTMLayer.forward(ctx, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, batch_sizes, backend, None)
    return out.copy(), h_n, c_n
