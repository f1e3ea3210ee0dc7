"""Fused Tree-LSTM levels: one graph node per level, with the backward written out.

Each op takes the level's projected inputs ``p = x W_ih^T + b`` (M, G), computed for
every node of a batch in one product, and the children's states, and returns (h, c)
of the M nodes: the recurrent products and all gate arithmetic happen inside one
node, whose backward is the hand-derived gradient (tested against the same cells
composed from primitive ops, in float64). Gates as in ``nn.LSTM``, i first, then the
forget gates, then g and o, so i is p[:, :H], g p[:, -2H:-H] and o p[:, -H:]::

    leaves:     c = sigma(i) tanh(g)
    N-ary:      [i, f_1..f_N, g, o] += [h_1 .. h_N] W_hh^T,     c = sigma(i) tanh(g) + sum_k sigma(f_k) c_k
    Child-Sum:  [i, ., g, o] += (sum_k h_k) W_hh^T,  f_k = p_f + h_k U_f^T (U_f = W_hh[H:2H]),  c as above
    then h = sigma(o) tanh(c)

Shapes: p (M, G); h_kids, c_kids (M, K, H), zero rows where a node has fewer children.
"""
from __future__ import annotations

import numpy as np

from ...autograd.function import Function
from ..recurrent.kernels.numpy_steps import sigmoid_


def _activate(p, hsz):
    """sigma(i), tanh(g), sigma(o) from the pre-activations' i, g, o blocks (copies)."""
    i = p[:, :hsz].copy()
    sigmoid_(i)
    g = np.tanh(p[:, -2 * hsz:-hsz])
    o = p[:, -hsz:].copy()
    sigmoid_(o)
    return i, g, o


def _finish(ctx, i, g, o, c):
    tc = np.tanh(c)
    ctx.i, ctx.g, ctx.o, ctx.tc = i, g, o, tc
    return o * tc, c


def _backward_igo(ctx, dh, dc_out):
    """dL/dc and the pre-activation gradients of i, g, o (dh or dc_out may be None)."""
    i, g, o, tc = ctx.i, ctx.g, ctx.o, ctx.tc
    if dh is None:
        dh = np.zeros_like(tc)
    dc = dh * o * (1 - tc * tc)
    if dc_out is not None:
        dc += dc_out
    d_i = dc * g * i * (1 - i)
    d_g = dc * i * (1 - g * g)
    d_o = dh * tc * o * (1 - o)
    return dc, d_i, d_g, d_o


class TreeLSTMLeaves(Function):
    """Leaves: (h, c) (M, H) from p (M, G) alone."""

    @staticmethod
    def forward(ctx, p, hidden_size):
        ctx.hsz, ctx.width = hidden_size, p.shape[1]
        i, g, o = _activate(p, hidden_size)
        return _finish(ctx, i, g, o, i * g)

    @staticmethod
    def backward(ctx, dh, dc_out):
        _, d_i, d_g, d_o = _backward_igo(ctx, dh, dc_out)
        hsz = ctx.hsz
        dp = np.zeros((d_i.shape[0], ctx.width), dtype=d_i.dtype)
        dp[:, :hsz], dp[:, -2 * hsz:-hsz], dp[:, -hsz:] = d_i, d_g, d_o
        return dp


class NaryTreeLSTMLevel(Function):
    """N-ary level: p (M, (N+3)H), h_kids and c_kids (M, N, H), weight_hh ((N+3)H, N*H) -> (h, c)."""

    @staticmethod
    def forward(ctx, p, h_kids, c_kids, weight_hh):
        m, n, hsz = h_kids.shape
        h_flat = h_kids.reshape(m, n * hsz)
        pre = p + h_flat @ weight_hh.T
        i, g, o = _activate(pre, hsz)
        f = pre[:, hsz:(n + 1) * hsz].reshape(m, n, hsz)  # a view of pre, which is ours
        sigmoid_(f)
        c = i * g + np.einsum("mkh,mkh->mh", f, c_kids)
        ctx.f, ctx.c_kids, ctx.h_flat, ctx.weight_hh = f, c_kids, h_flat, weight_hh
        return _finish(ctx, i, g, o, c)

    @staticmethod
    def backward(ctx, dh, dc_out):
        dc, d_i, d_g, d_o = _backward_igo(ctx, dh, dc_out)
        f, c_kids = ctx.f, ctx.c_kids
        m, n, hsz = f.shape
        dpre = np.empty((m, (n + 3) * hsz), dtype=dc.dtype)
        dpre[:, :hsz], dpre[:, -2 * hsz:-hsz], dpre[:, -hsz:] = d_i, d_g, d_o
        dpre[:, hsz:(n + 1) * hsz] = (dc[:, None, :] * c_kids * f * (1 - f)).reshape(m, n * hsz)
        need_p, need_h, need_c, need_w = ctx.needs_input_grad
        dh_kids = (dpre @ ctx.weight_hh).reshape(m, n, hsz) if need_h else None
        dc_kids = dc[:, None, :] * f if need_c else None
        dw = dpre.T @ ctx.h_flat if need_w else None
        return (dpre if need_p else None), dh_kids, dc_kids, dw


class ChildSumTreeLSTMLevel(Function):
    """Child-Sum level: p (M, 4H), h_kids and c_kids (M, K, H), weight_hh (4H, H) -> (h, c)."""

    @staticmethod
    def forward(ctx, p, h_kids, c_kids, weight_hh):
        m, k, hsz = h_kids.shape
        h_sum = h_kids.sum(axis=1)
        w_i, w_f, w_go = weight_hh[:hsz], weight_hh[hsz:2 * hsz], weight_hh[2 * hsz:]
        i = p[:, :hsz] + h_sum @ w_i.T
        sigmoid_(i)
        go = p[:, 2 * hsz:] + h_sum @ w_go.T
        g = np.tanh(go[:, :hsz])
        o = go[:, hsz:]
        sigmoid_(o)
        f = (h_kids.reshape(m * k, hsz) @ w_f.T).reshape(m, k, hsz)
        f += p[:, None, hsz:2 * hsz]
        sigmoid_(f)
        c = i * g + np.einsum("mkh,mkh->mh", f, c_kids)
        ctx.f, ctx.h_kids, ctx.c_kids, ctx.h_sum, ctx.weight_hh = f, h_kids, c_kids, h_sum, weight_hh
        return _finish(ctx, i, g, o, c)

    @staticmethod
    def backward(ctx, dh, dc_out):
        dc, d_i, d_g, d_o = _backward_igo(ctx, dh, dc_out)
        f, h_kids, c_kids, w = ctx.f, ctx.h_kids, ctx.c_kids, ctx.weight_hh
        m, k, hsz = f.shape
        d_f = dc[:, None, :] * c_kids * f * (1 - f)        # (M, K, H), per child
        d_igo = np.concatenate([d_i, d_g, d_o], axis=1)   # the rows of W_hh that see the sum of h
        w_igo = np.concatenate([w[:hsz], w[2 * hsz:]], axis=0)
        need_p, need_h, need_c, need_w = ctx.needs_input_grad
        dp = None
        if need_p:
            dp = np.empty((m, 4 * hsz), dtype=dc.dtype)
            dp[:, :hsz], dp[:, 2 * hsz:3 * hsz], dp[:, 3 * hsz:] = d_i, d_g, d_o
            dp[:, hsz:2 * hsz] = d_f.sum(axis=1)
        dh_kids = None
        if need_h:
            dh_kids = (d_f.reshape(m * k, hsz) @ w[hsz:2 * hsz]).reshape(m, k, hsz)
            dh_kids += (d_igo @ w_igo)[:, None, :]
        dc_kids = dc[:, None, :] * f if need_c else None
        dw = None
        if need_w:
            dw = np.empty_like(w)
            dw_igo = d_igo.T @ ctx.h_sum
            dw[:hsz], dw[2 * hsz:] = dw_igo[:hsz], dw_igo[hsz:]
            dw[hsz:2 * hsz] = d_f.reshape(m * k, hsz).T @ h_kids.reshape(m * k, hsz)
        return dp, dh_kids, dc_kids, dw
