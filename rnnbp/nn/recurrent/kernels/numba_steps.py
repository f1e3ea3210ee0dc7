"""The LSTM and GRU step arithmetic with numba: the same functions as ``numpy_steps``.

NumPy runs each elementwise op of a step as its own pass, and on the gate blocks
of a (b, 4H) buffer those passes are strided and slow. Here everything but tanh
is fused into compiled loops, which LLVM vectorises because they are pure
arithmetic (but see the note above the loops on how they must store).
tanh stays with NumPy, whose float32 tanh is SIMD (numba would call a scalar
libm tanh, 50x slower without Intel's SVML); the GRU runs it on contiguous
scratch, as NumPy's tanh is about twice as slow per item on strided gate blocks.
The loops run on one thread: numba's worker threads and the BLAS threads would
spin against each other on every step.

The loops keep IEEE semantics (no fastmath), so results match ``numpy_steps`` up
to the order of operations; the tests check the two against each other.
numba comes with librosa; ``available()`` says whether it imports.
"""
from __future__ import annotations

import functools
import importlib.util

import numpy as np


@functools.cache
def available() -> bool:
    """Whether numba is installed (found without importing it, so building a layer stays cheap;
    looked up once: every streamed step asks)."""
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

    # The loops store to each gate block of a (b, 4H) or (b, 3H) row in a j-loop of its own: LLVM
    # does not vectorise a loop that stores to one array at offsets H apart (it cannot rule out that
    # H is shorter than a vector), and such a loop runs scalar, 2-6x slower. Loads at such offsets,
    # and stores to distinct arrays, are fine. A row (4H floats) stays in L1 across its loops.

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
    def lstm_out(g, tc, h):
        """h = o tc (NumPy's multiply is over twice as slow on the strided o block)."""
        b, H = h.shape
        for row in range(b):
            gr, tr, hr = g[row], tc[row], h[row]
            for j in range(H):
                hr[j] = gr[2 * H + j] * tr[j]

    @jit
    def lstm_backward(g, c_prev, tc, dr, dc, dg):
        """dg = [di', df', do', dg'] (see ``lstm``); dc <- (dc + dr o (1 - tc^2)) f."""
        b, H = dc.shape
        for row in range(b):
            gr, cp, tr, d, dcr, dgr = g[row], c_prev[row], tc[row], dr[row], dc[row], dg[row]
            for j in range(H):  # dc += dr o (1 - tc^2); di'
                i, o, gg, t = gr[j], gr[2 * H + j], gr[3 * H + j], tr[j]
                dct = dcr[j] + d[j] * o * (one - t * t)
                dcr[j] = dct
                dgr[j] = dct * gg * i * (one - i)
            for j in range(H):  # df'
                f = gr[H + j]
                dgr[H + j] = dcr[j] * cp[j] * f * (one - f)
            for j in range(H):  # do'
                o = gr[2 * H + j]
                dgr[2 * H + j] = d[j] * tr[j] * o * (one - o)
            for j in range(H):  # dg'; dc <- dc f
                i, gg, dct = gr[j], gr[3 * H + j], dcr[j]
                dgr[3 * H + j] = dct * i * (one - gg * gg)
                dcr[j] = dct * gr[H + j]

    @jit
    def gru_backward(g, a, h_prev, dh, d_in, d_rec, d_a):
        """d_in = [dr', dz', dn'], d_rec = [dr', dz', da], d_a = da (see ``gru``); dh <- dh z."""
        b, H = dh.shape
        for row in range(b):
            gr, ar, hp, dhr = g[row], a[row], h_prev[row], dh[row]
            di, drc, dar = d_in[row], d_rec[row], d_a[row]
            for j in range(H):  # dr'
                r, z, n = gr[j], gr[H + j], gr[2 * H + j]
                dn = dhr[j] * (one - z) * (one - n * n)
                dr = dn * ar[j] * r * (one - r)
                di[j] = dr
                drc[j] = dr
            for j in range(H):  # dz'
                z, n = gr[H + j], gr[2 * H + j]
                dz = dhr[j] * (hp[j] - n) * z * (one - z)
                di[H + j] = dz
                drc[H + j] = dz
            for j in range(H):  # dn', da; dh <- dh z
                r, z, n, d = gr[j], gr[H + j], gr[2 * H + j], dhr[j]
                dn = d * (one - z) * (one - n * n)
                da = dn * r
                di[2 * H + j] = dn
                drc[2 * H + j] = da
                dar[j] = da
                dhr[j] = d * z

    @jit
    def gru_pre(g, rec, b_hn, s, a):
        """s = (p_r, p_z) / 2 (pre-activations halved, for sigmoid via tanh); a = h W_hn^T + b_hn."""
        b, H = a.shape
        for row in range(b):
            gr, rr, sr, ar = g[row], rec[row], s[row], a[row]
            for j in range(2 * H):
                sr[j] = half * (gr[j] + rr[j])
            for j in range(H):
                ar[j] = rr[2 * H + j] + b_hn[j]

    @jit
    def gru_mid(g, s, a, p_n):
        """From s = tanh(p/2) of r, z: n's pre-activation p_n = x W_in^T + b_in + r * a."""
        b, H = a.shape
        for row in range(b):
            gr, sr, ar, pr = g[row], s[row], a[row], p_n[row]
            for j in range(H):
                pr[j] = gr[2 * H + j] + (half * sr[j] + half) * ar[j]

    @jit
    def gru_out(s, n, h_prev, g, h):
        """g <- [r, z, n]; h = n + z (h_prev - n)."""
        b, H = h.shape
        for row in range(b):
            sr, nr, hp, gr, hr = s[row], n[row], h_prev[row], g[row], h[row]
            for j in range(2 * H):
                gr[j] = half * sr[j] + half
            for j in range(H):
                nj = nr[j]
                gr[2 * H + j] = nj
                hr[j] = nj + (half * sr[H + j] + half) * (hp[j] - nj)

    return {"lstm_cell": lstm_cell, "lstm_out": lstm_out, "lstm_backward": lstm_backward,
            "gru_backward": gru_backward, "gru_pre": gru_pre, "gru_mid": gru_mid, "gru_out": gru_out}


def lstm_forward(g, rec, c_prev, c, tc, h):
    """As ``numpy_steps.lstm_forward`` (internal gate order [i, f, o, g], i/f/o rows halved)."""
    g += rec
    np.tanh(g, out=g)
    loops = compiled()
    loops["lstm_cell"](g, c_prev, c)
    np.tanh(c, out=tc)
    loops["lstm_out"](g, tc, h)


def lstm_backward(g, c_prev, tc, dr, dc, dg):
    """As ``numpy_steps.lstm_backward``."""
    compiled()["lstm_backward"](g, c_prev, tc, dr, dc, dg)


def _gru_work(work, b, H, dtype):
    """Two C-contiguous scratch blocks, (b, 2H) for r, z and (b, H) for n, from ``work`` (>= b*3H items)."""
    flat = np.empty(3 * b * H, dtype) if work is None else work.reshape(-1)
    return flat[:2 * b * H].reshape(b, 2 * H), flat[2 * b * H:3 * b * H].reshape(b, H)


def gru_forward(g, rec, b_hn, h_prev, a, h, work=None):
    """As ``numpy_steps.gru_forward``. Both tanh calls run on contiguous scratch from ``work``:
    s = tanh([p_r, p_z] / 2) (b, 2H), then p_n -> n (b, H); the last loop writes r, z, n into g."""
    b, H = h.shape
    loops = compiled()
    s, p_n = _gru_work(work, b, H, h.dtype)
    loops["gru_pre"](g, rec, b_hn, s, a)
    np.tanh(s, out=s)
    loops["gru_mid"](g, s, a, p_n)
    np.tanh(p_n, out=p_n)
    loops["gru_out"](s, p_n, h_prev, g, h)


def gru_backward(g, a, h_prev, dh, d_in, d_rec, d_a=None):
    """As ``numpy_steps.gru_backward``."""
    compiled()["gru_backward"](g, a, h_prev, dh, d_in, d_rec, np.empty_like(dh) if d_a is None else d_a)
