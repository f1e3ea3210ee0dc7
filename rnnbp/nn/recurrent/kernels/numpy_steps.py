"""Per-step gate arithmetic of the LSTM and GRU kernels, apart from their matrix products.

Every function works in place on views of the kernels' (T, B, .) buffers:
b running rows, H units.
"""
from __future__ import annotations

import numpy as np


def sigmoid_(a: np.ndarray) -> None:
    """In-place logistic function, overflow-free: (1 + tanh(a/2)) / 2."""
    a *= 0.5
    np.tanh(a, out=a)
    a += 1
    a *= 0.5


def lstm_forward(g, rec, c_prev, c, tc, h):
    """One LSTM step in the kernel's internal gate order [i, f, o, g].

    g (b, 4H) holds x W_ih^T + b with the i, f, o rows' pre-activations already halved
    (their weight rows were scaled by 1/2, which is exact), rec the same for h W_hh^T.
    Then one tanh over all four gates gives g = tanh(p) and, for i, f, o,
    sigmoid(p) = (1 + tanh(p / 2)) / 2. In place: g <- [i, f, o, g] activations;
    c = f c_prev + i g; tc = tanh c; h = o tc.
    """
    H = c.shape[1]
    g += rec
    np.tanh(g, out=g)
    s = g[:, :3 * H]
    s *= 0.5
    s += 0.5
    i, f, o, gg = g[:, :H], g[:, H:2 * H], g[:, 2 * H:3 * H], g[:, 3 * H:]
    np.multiply(f, c_prev, out=c)
    c += i * gg
    np.tanh(c, out=tc)
    np.multiply(o, tc, out=h)


def lstm_backward(g, c_prev, tc, dr, dc, dg):
    """From dr = dL/d(o tanh c) and the carried dc (b, H): gradients at the (unscaled)
    pre-activations dg (b, 4H), internal order [i, f, o, g]; dc <- dc f."""
    H = dc.shape[1]
    i, f, o, gg = g[:, :H], g[:, H:2 * H], g[:, 2 * H:3 * H], g[:, 3 * H:]
    dc += dr * o * (1 - tc * tc)
    np.multiply(dc, gg, out=dg[:, :H])
    np.multiply(dc, c_prev, out=dg[:, H:2 * H])
    np.multiply(dr, tc, out=dg[:, 2 * H:3 * H])
    s = g[:, :3 * H]
    dg[:, :3 * H] *= s * (1 - s)
    dgg = dg[:, 3 * H:]
    np.multiply(gg, gg, out=dgg)
    np.subtract(1, dgg, out=dgg)
    dgg *= i
    dgg *= dc
    dc *= f


def gru_forward(g, rec, b_hn, h_prev, a, h, work=None):
    """g (b, 3H) = x W_ih^T + b_ih (+ b_hr, b_hz), rec = h W_hh^T -> r, z, n in place;
    a = rec_n + b_hn; h = n + z (h_prev - n). ``work``: scratch of >= 3bH items, which only
    the numba steps use."""
    H = h.shape[1]
    rz = g[:, :2 * H]
    rz += rec[:, :2 * H]
    sigmoid_(rz)
    r, z, n = g[:, :H], g[:, H:2 * H], g[:, 2 * H:]
    np.add(rec[:, 2 * H:], b_hn, out=a)
    n += r * a
    np.tanh(n, out=n)
    np.subtract(h_prev, n, out=h)
    h *= z
    h += n


def gru_backward(g, a, h_prev, dh, d_in, d_rec, d_a=None):
    """From dh (b, H): gate gradients on the input side d_in and the recurrent side d_rec
    (b, 3H each); dh <- dh z (the direct path to h_prev). d_a (b, H), if given, gets a
    copy of d_rec's n block (da)."""
    H = dh.shape[1]
    r, z, n = g[:, :H], g[:, H:2 * H], g[:, 2 * H:]
    dn = d_in[:, 2 * H:]
    np.multiply(n, n, out=dn)
    np.subtract(1, dn, out=dn)
    dn *= 1 - z
    dn *= dh
    dz = d_in[:, H:2 * H]
    np.subtract(h_prev, n, out=dz)
    dz *= dh
    dz *= z * (1 - z)
    dr = d_in[:, :H]
    np.multiply(dn, a, out=dr)
    dr *= r * (1 - r)
    d_rec[:, :2 * H] = d_in[:, :2 * H]
    np.multiply(dn, r, out=d_rec[:, 2 * H:])
    if d_a is not None:
        d_a[...] = d_rec[:, 2 * H:]
    dh *= z
