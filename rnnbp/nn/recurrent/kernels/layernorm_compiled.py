"""The layer-norm LSTM's and GRU's recurrences compiled whole: one numba call per sequence and direction.

``layernorm_lstm.LayerNormLSTMLayer`` and ``layernorm_gru.LayerNormGRULayer`` call
these when numba runs (backend 'numba', or 'auto' where numba compiles) and no
gradient probe asks for a Python callback per step. Equations and buffers are those
modules'; ``layernorm`` has the row-wise layer norm they use. Per call:

* the input side, once over all T * B rows: x W_ih^T as one BLAS product (``blas``),
  then its layer norm row by row (``input_forward``); in backward, the layer norm's
  backward row by row, then dx and dW_ih as one product each (``input_backward``);
* the recurrence: each step's h W_hh^T as one BLAS product straight into the step's
  buffer, then per row (while it is in cache) the recurrent layer norm, the gates, and
  for the LSTM the cell state's layer norm; backward the same in reverse, each step's
  dL/dh_{t-1} one product with W_hh;
* dW_hh as one product over all steps (``gemm_tn``);
* for inference (no graph), the same steps (``_lstm_row``, ``_gru_row``) with the input side
  formed a chunk of steps at a time and nothing kept for a backward (``*_inference``).

Row statistics (means, variances, the sums of the gains' gradients) accumulate in
float64; everything else runs in the arrays' dtype, with ``fast_math``'s activations.
Ragged batches: ``sizes[t]`` running rows (a prefix); rows that have ended keep their
state and get no work; h is zero past each row's length and the gradients' buffers
are zero on padding, so the callers may pass uninitialised buffers.

Compiled on first use per dtype or loaded from numba's cache. As in ``compiled_lstm``,
the loops reach BLAS, the activations and each other through module globals bound by
``_compile`` (a closure over a compiled function would defeat the cache).
"""
from __future__ import annotations

import math

import numpy as np

_ONE = np.float32(1.0)  # float32 constants keep float32 arithmetic in float32 (and are exact in float64)
_loops = None
# Bound by _compile:
_gemm = _gemm_tn = _gemm_nt = _sigmoid = _tanh = _row_stats = _ln_backward_row = _lstm_row = _gru_row = None
_LOOPS = ("input_forward", "input_backward", "recurrent_gradient", "lstm_forward", "lstm_backward",
          "lstm_inference", "gru_forward", "gru_backward", "gru_inference")
# The inference loops form the input side at most this many gate items at a time ((steps * B, G),
# 1 MB in float32), and at least one step.
INFERENCE_CHUNK = 1 << 18
ALL_ROWS = np.empty(0, np.int64)  # inference ``sizes``: every row runs every step


def loops() -> dict:
    """The compiled loops by name (``_LOOPS``), compiled or loaded from numba's cache on first use."""
    global _loops
    if _loops is None:
        try:
            _loops = _compile(cache=True)
        except RuntimeError:  # no writable cache location
            _loops = _compile(cache=False)
    return _loops


def _compile(cache: bool) -> dict:
    import numba

    from . import blas, fast_math

    global _gemm, _gemm_tn, _gemm_nt, _sigmoid, _tanh, _row_stats, _ln_backward_row, _lstm_row, _gru_row
    jit = numba.njit(cache=cache, nogil=True)
    _gemm, _gemm_tn, _gemm_nt = blas.functions(nt=True)
    _tanh, _sigmoid = fast_math.functions()
    # The row statistics' sums may be reassociated (so that they vectorise): float64 sums of at most a
    # few thousand items, whose order changes them by rounding only. No activation is called there.
    stats = numba.njit(cache=cache, nogil=True, fastmath={"reassoc", "nsz", "contract"})
    _row_stats, _ln_backward_row = stats(_row_stats_py), stats(_ln_backward_row_py)
    _lstm_row, _gru_row = jit(_lstm_row_py), jit(_gru_row_py)
    module = globals()
    source = {name: getattr(module[name], "py_func", module[name]) for name in _LOOPS}
    compiled = {name: jit(fn) for name, fn in source.items()}
    module.update(compiled)  # the inference loops call input_forward through this global
    return compiled


# ------------------------------------------------------------------------------ layer norm of one row
def _row_stats_py(v, eps):
    """(mean, rstd) of the row v (G,) in v's dtype, rstd = 1 / sqrt(var + eps); the sums in float64."""
    G = v.shape[0]
    s = 0.0
    for j in range(G):
        s += v[j]
    mean = s / G
    q = 0.0
    for j in range(G):
        d = v[j] - mean
        q += d * d
    return v.dtype.type(mean), v.dtype.type(1.0 / math.sqrt(q / G + eps))


def _ln_backward_row_py(dy, v_hat, rstd, gain, dv, acc_gain):
    """dv (G,) <- dL/dv of a layer norm from dy = dL/d(output) (G,); acc_gain (G,) += dy * v_hat."""
    G = dy.shape[0]
    s1 = 0.0
    s2 = 0.0
    for j in range(G):
        d = dy[j] * gain[j]
        s1 += d
        s2 += d * v_hat[j]
        acc_gain[j] += dy[j] * v_hat[j]
    m1 = dv.dtype.type(s1 / G)
    m2 = dv.dtype.type(s2 / G)
    for j in range(G):
        dv[j] = rstd * (dy[j] * gain[j] - m1 - v_hat[j] * m2)


# ------------------------------------------------------------------------------------ the input side
def input_forward(x2, w_ih, bias, gain, shift, eps, x_hat, rstd, a2):
    """x_hat (N, G) <- normalised x2 W_ih^T, rstd (N,); a2 (N, G) <- x_hat gain + shift + bias
    (``bias`` zero-size for none). x2 (N, I)."""
    N, G = x_hat.shape
    has_bias = bias.shape[0] > 0
    _gemm_nt(x2, w_ih, x_hat, 1.0, 0.0)
    for row in range(N):
        xr, ar = x_hat[row], a2[row]
        m, rs = _row_stats(xr, eps)
        rstd[row] = rs
        for j in range(G):
            v = (xr[j] - m) * rs
            xr[j] = v
            ar[j] = v * gain[j] + shift[j]
        if has_bias:
            for j in range(G):
                ar[j] += bias[j]


def input_backward(da2, x_hat, rstd, gain, x2, w_ih, dxg, d_x, d_wih, acc):
    """From da2 = dL/da (N, G): dxg (N, G) <- dL/d(x W_ih^T); acc (2, G) float64 += [sum da x_hat,
    sum da]; d_x (N, I) = dxg W_ih and d_wih (G, I) = dxg^T x2 (each skipped when of size 0)."""
    N, G = da2.shape
    gain_acc, shift_acc = acc[0], acc[1]
    for row in range(N):
        dr = da2[row]
        _ln_backward_row(dr, x_hat[row], rstd[row], gain, dxg[row], gain_acc)
        for j in range(G):
            shift_acc[j] += dr[j]
    if d_x.size:
        _gemm(dxg, w_ih, d_x, 1.0, 0.0)
    if d_wih.size:
        _gemm_tn(dxg, x2, d_wih, 1.0, 0.0)


def recurrent_gradient(dhg, hs, d_whh):
    """d_whh (G, H) = sum over steps of dhg_t^T h_{t-1}: one product. dhg (T, B, G), hs (T+1, B, H)."""
    T, B, G = dhg.shape
    H = hs.shape[2]
    _gemm_tn(dhg.reshape(T * B, G), hs.reshape((T + 1) * B, H)[:T * B], d_whh, 1.0, 0.0)


# ------------------------------------------------------------------------------------------- LSTM
def _lstm_row_py(gr, hh, cp, cr, ch, tr, hr, gain_hh, shift_hh, gain_c, shift_c, eps):
    """One row of one step. gr (4H,): the input side in, [i, f, g, o] out; hh (4H,): h_{t-1} W_hh^T in,
    its normalised value out; cp: c_{t-1}; cr <- c_t; ch <- LN_c's normalised c_t; tr <- tanh(LN_c(c_t));
    hr <- h_t. Returns (rstd of hh, rstd of c_t)."""
    G = gr.shape[0]
    H = G // 4
    m, rs_h = _row_stats(hh, eps)
    for j in range(G):
        v = (hh[j] - m) * rs_h
        hh[j] = v
        gr[j] = gr[j] + v * gain_hh[j] + shift_hh[j]
    for j in range(2 * H):
        gr[j] = _sigmoid(gr[j])
    for j in range(H):
        gr[2 * H + j] = _tanh(gr[2 * H + j])
    for j in range(H):
        gr[3 * H + j] = _sigmoid(gr[3 * H + j])
    for j in range(H):
        cj = gr[H + j] * cp[j] + gr[j] * gr[2 * H + j]
        cr[j] = cj
        ch[j] = cj
    m, rs_c = _row_stats(ch, eps)
    for j in range(H):
        v = (ch[j] - m) * rs_c
        ch[j] = v
        tj = _tanh(v * gain_c[j] + shift_c[j])
        tr[j] = tj
        hr[j] = gr[3 * H + j] * tj
    return rs_h, rs_c


def lstm_forward(a, w_hh_t, gain_hh, shift_hh, gain_c, shift_c, eps, sizes, hs, cs, h_hat, rstd_h, c_hat, rstd_c,
                 tanh_cs):
    """a (T, B, 4H): the input side in, [i, f, g, o] activations out. w_hh_t (H, 4H): a row-major copy of
    W_hh^T, which BLAS multiplies by faster than W_hh transposed (``compiled_gru.recurrent_weights``). hs, cs (T+1, B, H) with [0] set
    <- every step's h (zero past each row's length) and c; h_hat (T, B, 4H), rstd_h (T, B) <- the
    recurrent layer norm's; c_hat (T, B, H), rstd_c (T, B) <- the cell state's; tanh_cs <- tanh(LN_c(c))."""
    T = a.shape[0]
    for t in range(T):
        b = sizes[t]
        if b:
            _gemm(hs[t, :b], w_hh_t, h_hat[t, :b], 1.0, 0.0)
        for row in range(b):
            rstd_h[t, row], rstd_c[t, row] = _lstm_row(a[t, row], h_hat[t, row], cs[t, row], cs[t + 1, row],
                                                       c_hat[t, row], tanh_cs[t, row], hs[t + 1, row], gain_hh,
                                                       shift_hh, gain_c, shift_c, eps)
        hs[t + 1, b:] = 0


def lstm_inference(x2, w_ih, w_hh, bias, gain_ih, shift_ih, gain_hh, shift_hh, gain_c, shift_c, eps, sizes, h, c,
                   out, chunk):
    """The forward keeping nothing for a backward: out (T, B, H) <- every step's h (zero past each row's
    length); h, c (B, H): the initial state in, each row's final state out. x2 (T*B, I), its input side
    formed ``chunk`` steps at a time; sizes (T,), or (0,) when every row runs every step."""
    T, B, H = out.shape
    G = 4 * H
    steps = max(1, min(chunk, T))
    x_hat, rstd, a = np.empty((steps * B, G), out.dtype), np.empty(steps * B, out.dtype), \
        np.empty((steps * B, G), out.dtype)
    hh, c_new = np.empty((B, G), out.dtype), np.empty((B, H), out.dtype)
    ch, tr = np.empty(H, out.dtype), np.empty(H, out.dtype)
    ragged = sizes.shape[0] > 0
    for t0 in range(0, T, steps):
        t1 = min(T, t0 + steps)
        n = (t1 - t0) * B
        input_forward(x2[t0 * B:t1 * B], w_ih, bias, gain_ih, shift_ih, eps, x_hat[:n], rstd[:n], a[:n])
        for t in range(t0, t1):
            b = sizes[t] if ragged else B
            if b:
                _gemm_nt(h[:b], w_hh, hh[:b], 1.0, 0.0)
            for row in range(b):
                _lstm_row(a[(t - t0) * B + row], hh[row], c[row], c_new[row], ch, tr, out[t, row], gain_hh, shift_hh,
                          gain_c, shift_c, eps)
            c[:b] = c_new[:b]
            h[:b] = out[t, :b]
            out[t, b:] = 0


def lstm_backward(a, cs, h_hat, rstd_h, c_hat, rstd_c, tanh_cs, w_hh, gain_hh, gain_c, dh, dc, d_out, sizes, da,
                  dhg, dy, acc):
    """BPTT over t = T-1 .. 0. dh, dc (B, H): dL/dh_n, dL/dc_n in, dL/dh0, dL/dc0 out; d_out (T, B, H)
    or zero-size. Writes da (T, B, 4H) = dL/d(gate pre-activations) and dhg (T, B, 4H) = dL/d(h W_hh^T),
    zero on padding; dy (B, H) scratch; acc (3, 4H) float64 += [sum da h_hat, sum dy c_hat, sum dy]
    (the last two in their first H columns), dy = dL/d(LN_c output)."""
    T, B, G = a.shape
    H = G // 4
    has_out = d_out.shape[0] > 0
    acc_hh, acc_gc, acc_bc = acc[0], acc[1], acc[2]
    for t in range(T - 1, -1, -1):
        b = sizes[t]
        da[t, b:] = 0
        dhg[t, b:] = 0
        for row in range(b):
            gr, cp, ch, tr, dhr, dcr, dar, dyr = a[t, row], cs[t, row], c_hat[t, row], tanh_cs[t, row], dh[row], \
                dc[row], da[t, row], dy[row]
            if has_out:
                do = d_out[t, row]
                for j in range(H):
                    dhr[j] += do[j]
            for j in range(H):
                tj = tr[j]
                d = dhr[j] * gr[3 * H + j] * (_ONE - tj * tj)
                dyr[j] = d
                acc_bc[j] += d
            # dc += dL/dc through LN_c (dar's first H items as scratch)
            _ln_backward_row(dyr, ch, rstd_c[t, row], gain_c, dar, acc_gc)
            for j in range(H):
                dcr[j] += dar[j]
            for j in range(H):  # di'
                i = gr[j]
                dar[j] = dcr[j] * gr[2 * H + j] * i * (_ONE - i)
            for j in range(H):  # df'
                f = gr[H + j]
                dar[H + j] = dcr[j] * cp[j] * f * (_ONE - f)
            for j in range(H):  # dg'
                g = gr[2 * H + j]
                dar[2 * H + j] = dcr[j] * gr[j] * (_ONE - g * g)
            for j in range(H):  # do'
                o = gr[3 * H + j]
                dar[3 * H + j] = dhr[j] * tr[j] * o * (_ONE - o)
            for j in range(H):  # dc <- dc f
                dcr[j] = dcr[j] * gr[H + j]
            _ln_backward_row(dar, h_hat[t, row], rstd_h[t, row], gain_hh, dhg[t, row], acc_hh)
        if b:
            _gemm(dhg[t, :b], w_hh, dh[:b], 1.0, 0.0)  # dh_{t-1} = dhg W_hh


# -------------------------------------------------------------------------------------------- GRU
def _gru_row_py(gr, hh, hp, hr, ur, gain_hh, shift_hh, eps):
    """One row of one step. gr (3H,): the input side in, [r, z, n] out; hh (3H,): h_{t-1} W_hh^T in,
    its normalised value out; hp: h_{t-1}; hr <- h_t; ur <- u_n. Returns the rstd of hh."""
    G = gr.shape[0]
    H = G // 3
    m, rs = _row_stats(hh, eps)
    for j in range(G):
        hh[j] = (hh[j] - m) * rs
    for j in range(2 * H):
        gr[j] = _sigmoid(gr[j] + hh[j] * gain_hh[j] + shift_hh[j])
    for j in range(H):
        ur[j] = hh[2 * H + j] * gain_hh[2 * H + j] + shift_hh[2 * H + j]
    for j in range(H):
        gr[2 * H + j] = _tanh(gr[2 * H + j] + gr[j] * ur[j])
    for j in range(H):
        n = gr[2 * H + j]
        hr[j] = n + gr[H + j] * (hp[j] - n)
    return rs


def gru_forward(a, w_hh_t, gain_hh, shift_hh, eps, sizes, hs, h_hat, rstd_h, u_n):
    """a (T, B, 3H): the input side in, [r, z, n] activations out; w_hh_t (H, 3H): W_hh^T, row-major. hs (T+1, B, H) with hs[0] set <- every
    step's h (zero past each row's length); h_hat (T, B, 3H), rstd_h (T, B) <- the recurrent layer
    norm's; u_n (T, B, H) <- the n block of LN_hh(h W_hh^T) (what r multiplies)."""
    T = a.shape[0]
    for t in range(T):
        b = sizes[t]
        if b:
            _gemm(hs[t, :b], w_hh_t, h_hat[t, :b], 1.0, 0.0)
        for row in range(b):
            rstd_h[t, row] = _gru_row(a[t, row], h_hat[t, row], hs[t, row], hs[t + 1, row], u_n[t, row], gain_hh,
                                      shift_hh, eps)
        hs[t + 1, b:] = 0


def gru_inference(x2, w_ih, w_hh, bias, gain_ih, shift_ih, gain_hh, shift_hh, eps, sizes, h, out, chunk):
    """The forward keeping nothing for a backward, as ``lstm_inference``: out (T, B, H); h (B, H) the
    initial state in, each row's final state out."""
    T, B, H = out.shape
    G = 3 * H
    steps = max(1, min(chunk, T))
    x_hat, rstd, a = np.empty((steps * B, G), out.dtype), np.empty(steps * B, out.dtype), \
        np.empty((steps * B, G), out.dtype)
    hh, ur = np.empty((B, G), out.dtype), np.empty(H, out.dtype)
    ragged = sizes.shape[0] > 0
    for t0 in range(0, T, steps):
        t1 = min(T, t0 + steps)
        n = (t1 - t0) * B
        input_forward(x2[t0 * B:t1 * B], w_ih, bias, gain_ih, shift_ih, eps, x_hat[:n], rstd[:n], a[:n])
        for t in range(t0, t1):
            b = sizes[t] if ragged else B
            if b:
                _gemm_nt(h[:b], w_hh, hh[:b], 1.0, 0.0)
            for row in range(b):
                _gru_row(a[(t - t0) * B + row], hh[row], h[row], out[t, row], ur, gain_hh, shift_hh, eps)
            h[:b] = out[t, :b]
            out[t, b:] = 0


def gru_backward(a, hs, h_hat, rstd_h, u_n, w_hh, gain_hh, dh, d_out, sizes, da, dhg, du, acc):
    """BPTT over t = T-1 .. 0. dh (B, H): dL/dh_n in, dL/dh0 out; d_out (T, B, H) or zero-size.
    Writes da (T, B, 3H) = [dr', dz', dn'] (the input side's gradient) and dhg (T, B, 3H) =
    dL/d(h W_hh^T), zero on padding; du (B, 3H) scratch = dL/dLN_hh(.) = [dr', dz', dn' r];
    acc (2, 3H) float64 += [sum du h_hat, sum du]."""
    T, B, G = a.shape
    H = G // 3
    has_out = d_out.shape[0] > 0
    acc_hh, acc_bh = acc[0], acc[1]
    for t in range(T - 1, -1, -1):
        b = sizes[t]
        da[t, b:] = 0
        dhg[t, b:] = 0
        for row in range(b):
            gr, hp, ur, dhr, dar, dur = a[t, row], hs[t, row], u_n[t, row], dh[row], da[t, row], du[row]
            if has_out:
                do = d_out[t, row]
                for j in range(H):
                    dhr[j] += do[j]
            for j in range(H):  # dn'
                z, n = gr[H + j], gr[2 * H + j]
                dn = dhr[j] * (_ONE - z) * (_ONE - n * n)
                dar[2 * H + j] = dn
                dur[2 * H + j] = dn * gr[j]
            for j in range(H):  # dr'
                r = gr[j]
                d = dar[2 * H + j] * ur[j] * r * (_ONE - r)
                dar[j] = d
                dur[j] = d
            for j in range(H):  # dz'
                z, n = gr[H + j], gr[2 * H + j]
                d = dhr[j] * (hp[j] - n) * z * (_ONE - z)
                dar[H + j] = d
                dur[H + j] = d
            for j in range(H):  # the direct path: dh_{t-1} = dh z + ...
                dhr[j] = dhr[j] * gr[H + j]
            for j in range(G):
                acc_bh[j] += dur[j]
            _ln_backward_row(dur, h_hat[t, row], rstd_h[t, row], gain_hh, dhg[t, row], acc_hh)
        if b:
            _gemm(dhg[t, :b], w_hh, dh[:b], 1.0, 1.0)  # dh_{t-1} = dh z + dhg W_hh
