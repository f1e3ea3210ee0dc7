"""Fused Elman RNN layer: the whole sequence as one node, with a hand-written BPTT backward.

Equations (PyTorch's ``nn.RNN``)::

    h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh),   act = tanh or relu

Backward: d_pre = (dh_t) * act'(h_t), dh_{t-1} = d_pre W_hh, and one matrix
product per weight over all steps.
"""
from __future__ import annotations

import numpy as np

from ....autograd.function import Function
from .common import (active_rows, allocator, carried_gradient, final_states, forward_steps, lengths_from_batch_sizes,
                     project_inputs, reverse_steps, weight_grads, zero_padding)


class ElmanLayer(Function):
    """One Elman layer in one direction over a time-major, length-sorted batch.

    Inputs: x (T, B, I), h0 (B, H), w_ih (H, I), w_hh (H, H), b_ih (H,) or None,
    b_hh (H,) or None; ``nonlinearity`` 'tanh' or 'relu'.
    Outputs: out (T, B, H) (zero past each row's length), h_n (B, H). ``out`` is a view of
    a buffer the backward reads: writing into its array changes the gradients.
    """

    @staticmethod
    def forward(ctx, x, h0, w_ih, w_hh, b_ih, b_hh, batch_sizes=None, nonlinearity="tanh", workspace=None, record=None):
        T, B, _ = x.shape
        H = w_hh.shape[0]
        bias = None if b_ih is None else b_ih + b_hh
        empty, zeros = allocator(workspace)
        pre = project_inputs(x, w_ih, bias, empty)  # (T, B, H)
        hs = (zeros if batch_sizes is not None else empty)((T + 1, B, H), x.dtype)
        hs[0] = h0
        w_hh_t = w_hh.T
        sizes = active_rows(batch_sizes, T, B)
        x = zero_padding(x, sizes)
        for t, b in forward_steps(sizes):
            h = hs[t + 1, :b]
            np.matmul(hs[t, :b], w_hh_t, out=h)
            h += pre[t, :b]
            if nonlinearity == "tanh":
                np.tanh(h, out=h)
            else:
                np.maximum(h, 0, out=h)
        lengths = lengths_from_batch_sizes(batch_sizes, B)
        ctx.record = record
        ctx.saved = (x, w_ih, w_hh, hs, sizes, nonlinearity, workspace)
        return hs[1:], final_states(hs, lengths)

    @staticmethod
    def backward(ctx, d_out, d_hn):
        x, w_ih, w_hh, hs, sizes, nonlinearity, workspace = ctx.saved
        T, B, _ = x.shape
        H = w_hh.shape[0]
        need = ctx.needs_input_grad
        dh = carried_gradient(d_hn, (B, H), x.dtype)
        empty, zeros = allocator(workspace)
        d_pre = (zeros if any(b < B for b in sizes) else empty)((T, B, H), x.dtype)
        for t, b, dh_t in reverse_steps(sizes, dh, d_out, ctx.record):
            dp = d_pre[t, :b]
            h = hs[t + 1, :b]
            if nonlinearity == "tanh":
                np.multiply(h, h, out=dp)
                np.subtract(1, dp, out=dp)
                dp *= dh_t
            else:
                np.multiply(dh_t, h > 0, out=dp)
            np.matmul(dp, w_hh, out=dh[:b])
        d_x, d_wih = weight_grads(d_pre, x, w_ih, need[0], need[2])
        d_whh = d_pre.reshape(T * B, H).T @ hs[:T].reshape(T * B, H) if need[3] else None
        d_b = d_pre.sum(axis=(0, 1)) if (need[4] or need[5]) else None
        return (d_x, dh if need[1] else None, d_wih, d_whh,
                d_b if need[4] else None, d_b.copy() if need[5] else None)


def elman_inference(x, h0, w_ih, w_hh, b_ih, b_hh, batch_sizes=None, nonlinearity="tanh", backend="auto",
                    workspace=None):
    """The Elman layer's forward for inference only (no graph, nothing kept for a backward).

    Arrays as in :class:`ElmanLayer`; returns (out (T, B, H), h_n (B, H)). Contract: ``out`` is a
    fresh array the caller owns; beyond it, memory is the state plus a bounded projection chunk.
    """
    ctx = ElmanLayer.__new__(ElmanLayer)
    out, h_n = ElmanLayer.forward(ctx, x, h0, w_ih, w_hh, b_ih, b_hh, batch_sizes, nonlinearity, None)
    return out.copy(), h_n
