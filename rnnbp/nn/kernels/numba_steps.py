"""The LSTM and GRU step arithmetic with numba: the same functions as ``numpy_steps``.

NumPy runs each elementwise op of a step as its own pass, and on the gate blocks
of a (b, 4H) buffer those passes are strided and slow. Here everything but tanh
is fused into one compiled loop per step, which LLVM vectorises because it is
pure arithmetic. tanh stays with NumPy, whose float32 tanh is SIMD (numba would
call a scalar libm tanh, 50x slower without Intel's SVML). The loops run on one
thread: numba's worker threads and the BLAS threads would spin against each
other on every step.

The loops keep IEEE semantics (no fastmath), so results match ``numpy_steps`` up
to the order of operations; the tests check the two against each other.
numba comes with librosa; ``available()`` says whether it imports.
"""
from __future__ import annotations

import importlib.util

import numpy as np



def available() -> bool:
    """Whether numba is installed (found without importing it, so building a layer stays cheap)."""
    return importlib.util.find_spec("numba") is not None


_loops = None


def compiled() -> dict:
    """The fused loops, compiled (or loaded from numba's on-disk cache) on first use."""
    global _loops
    if _loops is None:
        try:
            _loops = _compile(cache=True)
        except RuntimeError:  # no writable cache location (read-only install and home)
            _loops = _compile(cache=False)
    return _loops


def _compile(cache: bool):
    import numba

    half, one = np.float32(0.5), np.float32(1.0)  # float32 constants keep float32 math in float32
    jit = numba.njit(cache=cache, nogil=True)

    @jit
    def lstm_cell(g, c_prev, c):
        """g (b, 4H) = [tanh(p_i/2), tanh(p_f/2), tanh(p_o/2), tanh(p_g)] -> i, f, o sigmoids in place;
        c = f c_prev + i g."""
        b, H = c.shape
        for row in range(b):
            gr, cp, cr = g[row], c_prev[row], c[row]
            for j in range(3 * H):
                gr[j] = half * gr[j] + half
            for j in range(H):
                cr[j] = gr[H + j] * cp[j] + gr[j] * gr[3 * H + j]

    @jit
    def lstm_backward(g, c_prev, tc, dr, dc, dg):
        b, H = dc.shape
        for row in range(b):
            gr, cp, tr, d, dcr, dgr = g[row], c_prev[row], tc[row], dr[row], dc[row], dg[row]
            for j in range(H):
                i, f, o, gg, t = gr[j], gr[H + j], gr[2 * H + j], gr[3 * H + j], tr[j]
                dct = dcr[j] + d[j] * o * (one - t * t)
                dgr[j] = dct * gg * i * (one - i)
                dgr[H + j] = dct * cp[j] * f * (one - f)
                dgr[2 * H + j] = d[j] * t * o * (one - o)
                dgr[3 * H + j] = dct * i * (one - gg * gg)
                dcr[j] = dct * f

    @jit
    def gru_backward(g, a, h_prev, dh, d_in, d_rec):
        b, H = dh.shape
        for row in range(b):
            gr, ar, hp, dhr, di, drc = g[row], a[row], h_prev[row], dh[row], d_in[row], d_rec[row]
            for j in range(H):
                r, z, n, d = gr[j], gr[H + j], gr[2 * H + j], dhr[j]
                dn = d * (one - z) * (one - n * n)
                dz = d * (hp[j] - n) * z * (one - z)
                drr = dn * ar[j] * r * (one - r)
                di[j], di[H + j], di[2 * H + j] = drr, dz, dn
                drc[j], drc[H + j], drc[2 * H + j] = drr, dz, dn * r
                dhr[j] = d * z

    @jit
    def gru_pre(g, rec, b_hn, a):
        """r, z pre-activations halved (for sigmoid via tanh); a = h W_hn^T + b_hn."""
        b, H = a.shape
        for row in range(b):
            gr, rr, ar = g[row], rec[row], a[row]
            for j in range(2 * H):
                gr[j] = half * (gr[j] + rr[j])
            for j in range(H):
                ar[j] = rr[2 * H + j] + b_hn[j]

    @jit
    def gru_mid(g, a):
        """tanh(p/2) -> r, z sigmoids in place; n's pre-activation x W_in^T + b_in + r * a."""
        b, H = a.shape
        for row in range(b):
            gr, ar = g[row], a[row]
            for j in range(H):
                r = half * gr[j] + half
                gr[j] = r
                gr[H + j] = half * gr[H + j] + half
                gr[2 * H + j] = gr[2 * H + j] + r * ar[j]

    @jit
    def gru_out(g, h_prev, h):
        """h = n + z (h_prev - n)."""
        b, H = h.shape
        for row in range(b):
            gr, hp, hr = g[row], h_prev[row], h[row]
            for j in range(H):
                n = gr[2 * H + j]
                hr[j] = n + gr[H + j] * (hp[j] - n)

    return {"lstm_cell": lstm_cell, "lstm_backward": lstm_backward, "gru_backward": gru_backward,
            "gru_pre": gru_pre, "gru_mid": gru_mid, "gru_out": gru_out}


def lstm_forward(g, rec, c_prev, c, tc, h):
    """As ``numpy_steps.lstm_forward`` (internal gate order [i, f, o, g], i/f/o rows halved)."""
    H = c.shape[1]
    g += rec
    np.tanh(g, out=g)
    compiled()["lstm_cell"](g, c_prev, c)
    np.tanh(c, out=tc)
    np.multiply(g[:, 2 * H:3 * H], tc, out=h)


def lstm_backward(g, c_prev, tc, dr, dc, dg):
    """As ``numpy_steps.lstm_backward``."""
    compiled()["lstm_backward"](g, c_prev, tc, dr, dc, dg)


def gru_forward(g, rec, b_hn, h_prev, a, h):
    """As ``numpy_steps.gru_forward``."""
    H = h.shape[1]
    loops = compiled()
    loops["gru_pre"](g, rec, b_hn, a)
    np.tanh(g[:, :2 * H], out=g[:, :2 * H])
    loops["gru_mid"](g, a)
    np.tanh(g[:, 2 * H:], out=g[:, 2 * H:])
    loops["gru_out"](g, h_prev, h)


def gru_backward(g, a, h_prev, dh, d_in, d_rec):
    """As ``numpy_steps.gru_backward``."""
    compiled()["gru_backward"](g, a, h_prev, dh, d_in, d_rec)
