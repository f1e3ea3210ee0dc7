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
from . import backends
from .common import (active_rows, allocator, carried_gradient, final_states, forward_steps, lengths_from_batch_sizes,
                     project_inputs, reverse_steps, weight_grads, zero_padding)


class GRULayer(Function):
    """One GRU layer in one direction over a time-major, length-sorted batch.

    ``backend``: 'auto', 'numpy' or 'numba' step arithmetic (see ``backends``).
    Inputs: x (T, B, I), h0 (B, H), w_ih (3H, I), w_hh (3H, H), b_ih (3H,) or None,
    b_hh (3H,) or None. ``batch_sizes``: running rows per step (None: all B).
    Outputs: out (T, B, H) (zero past each row's length), h_n (B, H). ``out`` is a view of
    a buffer the backward reads: writing into its array changes the gradients.
    """

    @staticmethod
    def forward(ctx, x, h0, w_ih, w_hh, b_ih, b_hh, batch_sizes=None, backend="auto", workspace=None, record=None):
        T, B, _ = x.shape
        H = w_hh.shape[0] // 3
        dtype = x.dtype
        empty, zeros = allocator(workspace)
        bias = None  # one bias for the input projection: b_hr, b_hz add as b_ir, b_iz do (b_hn is inside r * a)
        if b_ih is not None or b_hh is not None:
            bias = np.zeros(3 * H, dtype=dtype)
            if b_ih is not None:
                bias += b_ih
            if b_hh is not None:
                bias[:2 * H] += b_hh[:2 * H]
        gates = project_inputs(x, w_ih, bias, empty)  # (T, B, 3H); r, z, n activations in place
        hs = (zeros if batch_sizes is not None else empty)((T + 1, B, H), dtype)
        hs[0] = h0
        a_steps = empty((T, B, H), dtype)  # W_hn h_{t-1} + b_hn, needed by backward
        recurrent = np.empty((B, 3 * H), dtype=dtype)
        work = np.empty((B, 3 * H), dtype=dtype)  # the steps' scratch
        b_hn = b_hh[2 * H:] if b_hh is not None else np.zeros(H, dtype=dtype)
        w_hh_t = w_hh.T
        steps = backends.steps(backend, dtype)
        sizes = active_rows(batch_sizes, T, B)
        x = zero_padding(x, sizes)
        for t, b in forward_steps(sizes):
            np.matmul(hs[t, :b], w_hh_t, out=recurrent[:b])
            steps.gru_forward(gates[t, :b], recurrent[:b], b_hn, hs[t, :b], a_steps[t, :b], hs[t + 1, :b], work)
        lengths = lengths_from_batch_sizes(batch_sizes, B)
        h_n = final_states(hs, lengths)
        ctx.record = record
        ctx.saved = (x, w_ih, w_hh, gates, a_steps, hs, sizes, steps, workspace)
        return hs[1:], h_n

    @staticmethod
    def backward(ctx, d_out, d_hn):
        x, w_ih, w_hh, gates, a_steps, hs, sizes, steps, workspace = ctx.saved
        T, B, _ = x.shape
        H = w_hh.shape[0] // 3
        dtype = x.dtype
        need = ctx.needs_input_grad
        dh = carried_gradient(d_hn, (B, H), dtype)
        empty, zeros = allocator(workspace)
        padded = zeros if any(b < B for b in sizes) else empty
        d_in = padded((T, B, 3 * H), dtype)  # gradient at the input-side pre-activations [dr', dz', dn']
        # The recurrent side's gradient [dr', dz', da] repeats d_in but for da, so only da is kept
        # over time; each step's full row lives in a small scratch that stays in cache.
        d_a = padded((T, B, H), dtype)
        d_rec = np.empty((B, 3 * H), dtype=dtype)
        carried = np.empty((B, H), dtype=dtype)
        for t, b, dh_t in reverse_steps(sizes, dh, d_out, ctx.record):
            steps.gru_backward(gates[t, :b], a_steps[t, :b], hs[t, :b], dh_t, d_in[t, :b], d_rec[:b], d_a[t, :b])
            np.matmul(d_rec[:b], w_hh, out=carried[:b])
            dh_t += carried[:b]
        d_x, d_wih = weight_grads(d_in, x, w_ih, need[0], need[2])
        d_whh = None
        if need[3]:
            h_prev = hs[:T].reshape(T * B, H)
            d_whh = np.concatenate([d_in[:, :, :2 * H].reshape(T * B, 2 * H).T @ h_prev,
                                    d_a.reshape(T * B, H).T @ h_prev])
        d_in_sum = d_in.sum(axis=(0, 1)) if (need[4] or need[5]) else None
        d_bih = d_in_sum if need[4] else None
        d_bhh = np.concatenate([d_in_sum[:2 * H], d_a.sum(axis=(0, 1))]) if need[5] else None
        return d_x, dh if need[1] else None, d_wih, d_whh, d_bih, d_bhh


def gru_inference(x, h0, w_ih, w_hh, b_ih, b_hh, batch_sizes=None, backend="auto", workspace=None):
    """The GRU layer's forward for inference only (no graph, nothing kept for a backward).

    Arrays as in :class:`GRULayer`; returns (out (T, B, H), h_n (B, H)). Contract: ``out`` is a
    fresh array the caller owns; beyond it, memory is the state plus a bounded projection chunk.
    """
    ctx = GRULayer.__new__(GRULayer)
    out, h_n = GRULayer.forward(ctx, x, h0, w_ih, w_hh, b_ih, b_hh, batch_sizes, backend, None)
    return out.copy(), h_n
