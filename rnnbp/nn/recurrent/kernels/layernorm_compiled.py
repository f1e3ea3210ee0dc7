"""The layer-norm LSTM's and GRU's recurrences compiled whole: one numba call per sequence and direction.

``layernorm_lstm.LayerNormLSTMLayer`` and ``layernorm_gru.LayerNormGRULayer`` call
these when numba runs (backend 'numba', or 'auto' where numba compiles) and no
gradient probe asks for a Python callback per step. Equations and buffers are those
modules'; ``layernorm`` has the row-wise layer norm they use. Per call:

* the input side's product x W_ih^T once over all T * B rows (one BLAS product, ``blas``);
* the recurrence: each step's h W_hh^T as one BLAS product straight into the step's
  buffer, then per row (while it is in cache) the recurrent layer norm, the gates, and
  for the LSTM the cell state's layer norm; backward the same in reverse, each step's
  dL/dh_{t-1} one product with W_hh;
* the input side's layer norm: the GRU's over all rows before the recurrence
  (``input_forward``) and its backward after it (``input_backward``); the LSTM's inside
  the recurrence's row loops, forward and backward, so that its (T, B, 4H) arrays are
  each passed over once (``lstm_forward``, ``lstm_backward``);
* the weight gradients dW_hh (and dx, dW_ih) as one product each over all steps;
* for inference (no graph), the same steps (``_lstm_row``, ``_gru_row``) with the input side
  formed a chunk of steps at a time and nothing kept for a backward (``*_inference``).

Everything runs in the arrays' dtype, with ``fast_math``'s activations. Row statistics
(means, variances, the layer norms' backward means) are sums in that dtype, reassociated
so that they vectorise (a float32 row is summed in several vector lanes of partial sums,
whose rounding error is far below float32's LN outputs' own); the gains' and shifts'
gradients are summed over each step's rows in that dtype, then over the steps in float64.
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
_gemm = _gemm_tn = _gemm_nt = _sigmoid = _tanh = _row_stats = _ln_backward_row = _ln2_means = _add_product = None
_lstm_row = _lstm_c = _gru_row = None
_LOOPS = ("input_forward", "input_backward", "recurrent_gradient", "lstm_forward", "lstm_backward",
          "lstm_gradients", "lstm_inference", "gru_forward", "gru_backward", "gru_inference")
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

    global _gemm, _gemm_tn, _gemm_nt, _sigmoid, _tanh, _row_stats, _ln_backward_row, _ln2_means, _add_product
    global _lstm_row, _lstm_c, _gru_row
    jit = numba.njit(cache=cache, nogil=True)
    _gemm, _gemm_tn, _gemm_nt = blas.functions(nt=True)
    _tanh, _sigmoid = fast_math.functions()
    # The row statistics' sums may be reassociated (so that they vectorise): sums of at most a few
    # thousand items, whose order changes them by rounding only. No activation is called there.
    stats = numba.njit(cache=cache, nogil=True, fastmath={"reassoc", "nsz", "contract"})
    _row_stats, _ln_backward_row = stats(_row_stats_py), stats(_ln_backward_row_py)
    _ln2_means, _add_product = stats(_ln2_means_py), stats(_add_product_py)
    _lstm_row, _lstm_c, _gru_row = jit(_lstm_row_py), jit(_lstm_c_py), jit(_gru_row_py)
    module = globals()
    source = {name: getattr(module[name], "py_func", module[name]) for name in _LOOPS}
    compiled = {name: jit(fn) for name, fn in source.items()}
    module.update(compiled)  # the inference loops call input_forward through this global
    return compiled


# ------------------------------------------------------------------------------ layer norm of one row
def _row_stats_py(v, eps):
    """(mean, rstd) of the row v (G,) in v's dtype, rstd = 1 / sqrt(var + eps); the sums in v's dtype
    (reassociated: float32 sums of a row run as 32 or more partial sums, as NumPy's pairwise ones do)."""
    G = v.shape[0]
    z = v.dtype.type(0)
    s = z
    for j in range(G):
        s += v[j]
    mean = s / v.dtype.type(G)
    q = z
    for j in range(G):
        d = v[j] - mean
        q += d * d
    return mean, v.dtype.type(1.0 / math.sqrt(float(q) / G + eps))


def _ln_backward_row_py(dy, v_hat, rstd, gain, dv, acc_gain):
    """dv (G,) <- dL/dv of a layer norm from dy = dL/d(output) (G,); acc_gain (G,) += dy * v_hat."""
    G = dy.shape[0]
    z = dv.dtype.type(0)
    s1 = z
    s2 = z
    for j in range(G):
        d = dy[j] * gain[j]
        s1 += d
        s2 += d * v_hat[j]
        acc_gain[j] += dy[j] * v_hat[j]
    m1 = s1 / dv.dtype.type(G)
    m2 = s2 / dv.dtype.type(G)
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
# Per row, everything runs while the row is in cache, the input side's layer norm too (its x W_ih^T
# for all steps is one product before the loop, kept as it is: the backward normalises it again
# rather than the forward writing it back), so that each (T, B, 4H) array is passed over once a
# direction. As in ``compiled_lstm``: each j-loop stores to one gate block of one array (stores at
# offsets H apart keep LLVM from vectorising; so do loops storing to several arrays and reading many,
# whose pairs LLVM would have to check for overlap). The sums live in functions compiled with
# reassociation (``_row_stats``, ``_ln2_means``, ``_add_product``), the activations in functions
# compiled without it.
def _lstm_row_py(xp, hh, gr, cp, cr, ch, tr, hr, gain_ih, gain_hh, shift, gain_c, shift_c, eps):
    """One row of one step. xp (4H,): x_t W_ih^T (left as it is); hh (4H,): h_{t-1} W_hh^T in,
    normalised out; gr <- [i, f, g, o]; ``shift`` (4H,) = shift_ih + shift_hh + bias; cp: c_{t-1};
    cr <- c_t; hr <- h_t; ch, tr (H,) scratch <- LN_c's normalised c_t and tanh(LN_c(c_t)) (``_lstm_c``).
    Returns (mean of xp, rstd of xp, rstd of hh, mean of c_t, rstd of c_t)."""
    G = gr.shape[0]
    H = G // 4
    mx, rs_x = _row_stats(xp, eps)
    mh, rs_h = _row_stats(hh, eps)
    for j in range(G):
        hh[j] = (hh[j] - mh) * rs_h
    # Loops run from 0 with an offset: over range(a, b), a != 0, numba keeps a negative-index
    # check per item and LLVM leaves the loop scalar (3x slower).
    for j in range(2 * H):  # i, f
        gr[j] = _sigmoid(((xp[j] - mx) * rs_x) * gain_ih[j] + hh[j] * gain_hh[j] + shift[j])
    for j in range(H):  # g
        k = 2 * H + j
        gr[k] = _tanh(((xp[k] - mx) * rs_x) * gain_ih[k] + hh[k] * gain_hh[k] + shift[k])
    for j in range(H):  # o
        k = 3 * H + j
        gr[k] = _sigmoid(((xp[k] - mx) * rs_x) * gain_ih[k] + hh[k] * gain_hh[k] + shift[k])
    for j in range(H):
        cr[j] = gr[H + j] * cp[j] + gr[j] * gr[2 * H + j]
    m, rs_c = _row_stats(cr, eps)
    _lstm_c(cr, m, rs_c, gain_c, shift_c, ch, tr)
    for j in range(H):
        hr[j] = gr[3 * H + j] * tr[j]
    return mx, rs_x, rs_h, m, rs_c


def _lstm_c_py(c, mean, rstd, gain_c, shift_c, ch, tr):
    """ch (H,) <- LN_c's normalised c (H,); tr <- tanh(LN_c(c)). The backward forms them again from c
    and its statistics, to the bit, rather than the forward storing them."""
    for j in range(c.shape[0]):
        ch[j] = (c[j] - mean) * rstd
    for j in range(c.shape[0]):
        tr[j] = _tanh(ch[j] * gain_c[j] + shift_c[j])


def lstm_forward(x2, w_ih, w_hh_t, gain_ih, gain_hh, shift, gain_c, shift_c, eps, sizes, hs, cs, x_proj, mean_x,
                 rstd_x, a, h_hat, rstd_h, mean_c, rstd_c):
    """x2 (T*B, I); w_hh_t (H, 4H): a row-major copy of W_hh^T, which BLAS multiplies by faster than
    W_hh transposed (``compiled_gru.recurrent_weights``); shift (4H,) = shift_ih + shift_hh + bias.
    hs, cs (T+1, B, H) with [0] set <- every step's h (zero past each row's length) and c;
    x_proj (T, B, 4H) <- x W_ih^T, mean_x, rstd_x (T, B) <- its layer norm's statistics (its
    normalised value is (x_proj - mean_x) * rstd_x); h_hat (T, B, 4H), rstd_h (T, B) <- the recurrent
    layer norm's; a (T, B, 4H) <- [i, f, g, o]; mean_c, rstd_c (T, B) <- the cell state's layer
    norm's statistics. Statistics are written for running rows only."""
    T, B, G = a.shape
    H = G // 4
    ch, tr = np.empty(H, a.dtype), np.empty(H, a.dtype)
    _gemm_nt(x2, w_ih, x_proj.reshape(T * B, G), 1.0, 0.0)
    for t in range(T):
        b = sizes[t]
        if b:
            _gemm(hs[t, :b], w_hh_t, h_hat[t, :b], 1.0, 0.0)
        for row in range(b):
            mean_x[t, row], rstd_x[t, row], rstd_h[t, row], mean_c[t, row], rstd_c[t, row] = _lstm_row(
                x_proj[t, row], h_hat[t, row], a[t, row], cs[t, row], cs[t + 1, row], ch, tr, hs[t + 1, row], gain_ih,
                gain_hh, shift, gain_c, shift_c, eps)
        hs[t + 1, b:] = 0


def lstm_inference(x2, w_ih, w_hh, gain_ih, gain_hh, shift, gain_c, shift_c, eps, sizes, h, c, out, chunk):
    """The forward keeping nothing for a backward: out (T, B, H) <- every step's h (zero past each row's
    length); h, c (B, H): the initial state in, each row's final state out. x2 (T*B, I), its product
    with W_ih^T formed ``chunk`` steps at a time; sizes (T,), or (0,) when every row runs every step.
    shift as in ``lstm_forward``."""
    T, B, H = out.shape
    G = 4 * H
    steps = max(1, min(chunk, T))
    xp = np.empty((steps * B, G), out.dtype)
    hh, gr, c_new = np.empty((B, G), out.dtype), np.empty(G, out.dtype), np.empty((B, H), out.dtype)
    ch, tr = np.empty(H, out.dtype), np.empty(H, out.dtype)
    ragged = sizes.shape[0] > 0
    for t0 in range(0, T, steps):
        t1 = min(T, t0 + steps)
        _gemm_nt(x2[t0 * B:t1 * B], w_ih, xp[:(t1 - t0) * B], 1.0, 0.0)
        for t in range(t0, t1):
            b = sizes[t] if ragged else B
            if b:
                _gemm_nt(h[:b], w_hh, hh[:b], 1.0, 0.0)
            for row in range(b):
                _lstm_row(xp[(t - t0) * B + row], hh[row], gr, c[row], c_new[row], ch, tr, out[t, row], gain_ih,
                          gain_hh, shift, gain_c, shift_c, eps)
            c[:b] = c_new[:b]
            h[:b] = out[t, :b]
            out[t, b:] = 0


def _ln2_means_py(d, gain_a, xp, mean_a, rstd_a, va, gain_b, vb):
    """What the backward of two layer norms of the same d (G,) needs (gains gain_a, gain_b, normalised
    values va, vb): va <- (xp - mean_a) * rstd_a (the first's, as the forward formed it) and returns
    (mean(d gain_a), mean(d gain_a va), mean(d gain_b), mean(d gain_b vb)), summed in d's dtype."""
    G = d.shape[0]
    z = d.dtype.type(0)
    s1a = z
    s2a = z
    s1b = z
    s2b = z
    for j in range(G):
        u = (xp[j] - mean_a) * rstd_a
        va[j] = u
        p = d[j] * gain_a[j]
        q = d[j] * gain_b[j]
        s1a += p
        s2a += p * u
        s1b += q
        s2b += q * vb[j]
    n = d.dtype.type(G)
    return s1a / n, s2a / n, s1b / n, s2b / n


def _add_product_py(d, v, acc):
    """acc (G,) += d v."""
    for j in range(d.shape[0]):
        acc[j] += d[j] * v[j]


def lstm_backward(a, cs, x_proj, mean_x, rstd_x, h_hat, rstd_h, mean_c, rstd_c, w_hh, gain_ih, gain_hh, gain_c,
                  shift_c, dh, dc, d_out, sizes, dxg, dhg, acc):
    """BPTT over t = T-1 .. 0. dh, dc (B, H): dL/dh_n, dL/dc_n in, dL/dh0, dL/dc0 out; d_out (T, B, H)
    or zero-size; the rest ``lstm_forward``'s. Writes dxg, dhg (T, B, 4H) = dL/d(x W_ih^T), dL/d(h W_hh^T)
    (the two layer norms' backward of da = dL/d(gate pre-activations)), zero on padding. acc (5, 4H)
    float64 += [sum da x_hat, sum da h_hat, sum da, sum dy c_hat, sum dy] (the last two in their first
    H columns), dy = dL/d(LN_c output); each step's sums are formed in the arrays' dtype, then added to acc."""
    T, B, G = a.shape
    H = G // 4
    dt = a.dtype
    has_out = d_out.shape[0] > 0
    da, xu, dy, dcn = np.empty(G, dt), np.empty(G, dt), np.empty(H, dt), np.empty(H, dt)
    ch, tr = np.empty(H, dt), np.empty(H, dt)  # LN_c's normalised c_t and tanh(LN_c(c_t)), formed again
    step = np.empty((5, G), dt)  # this step's sums
    s_x, s_h, s_d, s_gc, s_bc = step[0], step[1], step[2], step[3], step[4]
    for t in range(T - 1, -1, -1):
        b = sizes[t]
        dxg[t, b:] = 0
        dhg[t, b:] = 0
        if b == 0:
            continue
        step[:] = 0
        for row in range(b):
            gr, cp, dhr, dcr = a[t, row], cs[t, row], dh[row], dc[row]
            _lstm_c(cs[t + 1, row], mean_c[t, row], rstd_c[t, row], gain_c, shift_c, ch, tr)
            if has_out:
                do = d_out[t, row]
                for j in range(H):
                    dhr[j] += do[j]
            for j in range(H):
                tj = tr[j]
                dy[j] = dhr[j] * gr[3 * H + j] * (_ONE - tj * tj)
            _ln_backward_row(dy, ch, rstd_c[t, row], gain_c, dcn, s_gc)  # dL/dc_t through LN_c
            for j in range(H):
                dcr[j] += dcn[j]
            for j in range(H):
                s_bc[j] += dy[j]
            for j in range(H):  # di'
                i = gr[j]
                da[j] = dcr[j] * gr[2 * H + j] * i * (_ONE - i)
            for j in range(H):  # df'
                f = gr[H + j]
                da[H + j] = dcr[j] * cp[j] * f * (_ONE - f)
            for j in range(H):  # dg'
                g = gr[2 * H + j]
                da[2 * H + j] = dcr[j] * gr[j] * (_ONE - g * g)
            for j in range(H):  # do'
                o = gr[3 * H + j]
                da[3 * H + j] = dhr[j] * tr[j] * o * (_ONE - o)
            for j in range(H):  # dc <- dc f
                dcr[j] = dcr[j] * gr[H + j]
            xp, hr, dx, dg = x_proj[t, row], h_hat[t, row], dxg[t, row], dhg[t, row]
            mx, rx, rh = mean_x[t, row], rstd_x[t, row], rstd_h[t, row]
            m1x, m2x, m1h, m2h = _ln2_means(da, gain_ih, xp, mx, rx, xu, gain_hh, hr)  # xu <- x_hat
            _add_product(da, xu, s_x)
            _add_product(da, hr, s_h)
            for j in range(G):
                s_d[j] += da[j]
            for j in range(G):
                dx[j] = rx * (da[j] * gain_ih[j] - m1x - xu[j] * m2x)
            for j in range(G):
                dg[j] = rh * (da[j] * gain_hh[j] - m1h - hr[j] * m2h)
        for k in range(5):
            for j in range(G):
                acc[k, j] += step[k, j]
        _gemm(dhg[t, :b], w_hh, dh[:b], 1.0, 0.0)  # dh_{t-1} = dhg W_hh


def lstm_gradients(dxg, x2, w_ih, dhg, hs, d_x, d_wih, d_whh):
    """The products over all steps: d_x (T*B, I) = dxg W_ih, d_wih = dxg^T x2, d_whh = dhg^T h_{t-1}
    (each skipped when of size 0). dxg, dhg (T, B, 4H), hs (T+1, B, H)."""
    T, B, G = dhg.shape
    H = hs.shape[2]
    dx2 = dxg.reshape(T * B, G)
    if d_x.size:
        _gemm(dx2, w_ih, d_x, 1.0, 0.0)
    if d_wih.size:
        _gemm_tn(dx2, x2, d_wih, 1.0, 0.0)
    if d_whh.size:
        _gemm_tn(dhg.reshape(T * B, G), hs.reshape((T + 1) * B, H)[:T * B], d_whh, 1.0, 0.0)


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
    """a (T, B, 3H): the input side in, [r, z, n] activations out; w_hh_t (H, 3H): W_hh^T, row-major.
    hs (T+1, B, H) with hs[0] set <- every step's h (zero past each row's length); h_hat (T, B, 3H),
    rstd_h (T, B) <- the recurrent layer norm's; u_n (T, B, H) <- the n block of LN_hh(h W_hh^T)
    (what r multiplies)."""
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
