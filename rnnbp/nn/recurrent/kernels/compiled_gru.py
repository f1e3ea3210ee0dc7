"""The GRU's recurrences compiled whole: forward, backward and inference each one numba call per sequence.

``gru.GRULayer`` with backend 'numba' (or 'auto' where numba runs) calls these
instead of a Python loop over time steps. Each loop calls SciPy's BLAS directly
(``blas``: the step's product with W_hh, and the all-steps products for
the input projection and the gradients) and does the step's gate arithmetic in
the same pass, row by row while the row is in cache. Equations and buffers are
``gru``'s; the arithmetic matches ``numpy_steps`` up to the order of operations
(no fastmath, IEEE semantics), and float64 matches the NumPy path to rounding. The
activations are ``fast_math``'s scalar ``sigmoid`` and ``tanh``, inlined: in float32
a vectorised rational approximation (NumPy's separate tanh pass is gone), in
float64 libm's.

Ragged batches (``sizes[t]`` running rows, a prefix): rows that have ended keep
their state and get no work; the buffers' rows past ``sizes[t]`` are zeroed by
the loops (outputs zero past each length, gradients zero on padding), so the
kernels can take their buffers uninitialised.

The loops run on one thread (BLAS may use its own). They are compiled on first use
for the dtype at hand, or loaded from numba's on-disk cache. The helpers above the
loops (stand-ins for absent arrays, ``recurrent_weights``, ``INFERENCE_CHUNK``)
serve ``compiled_elman`` too.
"""
from __future__ import annotations

import numpy as np

from . import backends, numba_steps

# The inference path projects the inputs of at most this many (step, row) gate rows at once:
# (steps * B, 3H) items (1 MB in float32 at 1 << 18), at least one step.
INFERENCE_CHUNK = 1 << 18
# Which layout BLAS multiplies by a recurrent weight fastest in. With NumPy's OpenBLAS 0.3.31
# (SkylakeX kernels, 1 and 2 threads, each product timed alone in a numba loop) h W^T is
# 1.2-1.6x faster as a plain product with a row-major copy of W^T than with W transposed by BLAS, and
# dh W 1.2-2x faster as a plain product with W, at every size from (B, H) = (32, 64) to (64, 512):
# a training step makes one transposed copy (2 ms at 2048 x 512, a few microseconds when small) and
# uses it forward. (SciPy's OpenBLAS 0.3.30, used before, preferred the transposed operands above
# 16K items; SMALL_WEIGHTS keeps that switch, now at a size no layer reaches.)
SMALL_WEIGHTS = 1 << 62

_DTYPES = (np.dtype(np.float32), np.dtype(np.float64), np.dtype(bool))
# Stand-ins for absent arrays (no bias, no output gradient, a gradient not asked for), so that the
# compiled loops see one type per argument. An absent zoneout mask is a bool one (``ZONE``), as in
# training: each further signature of a loop costs seconds of compiling on first use.
EMPTY1 = {d: np.empty(0, d) for d in _DTYPES}
EMPTY2 = {d: np.empty((0, 0), d) for d in _DTYPES}
EMPTY3 = {d: np.empty((0, 0, 0), d) for d in _DTYPES}
ZONE = np.dtype(bool)
ALL_ROWS = np.empty(0, np.int64)  # inference ``sizes``: every row runs every step


def c_order(a: np.ndarray) -> np.ndarray:
    """``a`` C-contiguous (itself when it already is): the compiled loops take one layout."""
    return a if a.flags.c_contiguous else np.ascontiguousarray(a)


def or_empty(a: np.ndarray | None, dtype, ndim: int) -> np.ndarray:
    """``a`` C-contiguous, or a zero-size stand-in with ``ndim`` dimensions for None."""
    if a is None:
        return (EMPTY1, EMPTY2, EMPTY3)[ndim - 1][np.dtype(dtype)]
    return c_order(a)


def recurrent_weights(w_hh: np.ndarray, loops: dict, steps: int, training: bool = True):
    """(w_hh, w_t_forward, w_t_backward) for the loops: W_hh C-ordered, and a C-ordered copy of
    W_hh^T where the forward or the backward multiplies faster with it, else a zero-size stand-in
    (see SMALL_WEIGHTS). Inference copies only for a small W_hh and a sequence of >= 8 steps."""
    w_hh = c_order(w_hh)
    none = EMPTY2[w_hh.dtype]
    small = w_hh.size <= SMALL_WEIGHTS
    if not training:
        return w_hh, (loops["transpose"](w_hh) if small and steps >= 8 else none), none
    w_t = loops["transpose"](w_hh)
    return w_hh, (w_t if small else none), (none if small else w_t)


_loops = None


def loops_for(backend: str, dtype) -> dict | None:
    """The compiled loops when ``backend`` runs numba for ``dtype`` (see ``backends``), else None."""
    if backends.steps(backend, dtype) is not numba_steps:
        return None
    return loops()


def loops() -> dict:
    """{'forward', 'backward', 'gradients', 'inference', 'transpose'}: compiled, or loaded from numba's
    cache, on first use."""
    global _loops
    if _loops is None:
        try:
            _loops = _compile(cache=True)
        except RuntimeError:  # no writable cache location (read-only install and home)
            _loops = _compile(cache=False)
    return _loops


def _compile(cache: bool) -> dict:
    import numba

    from . import blas, fast_math

    # The loops below reach BLAS, the activations and each other through this module's globals, bound
    # here: numba's cache key hashes a function's closure variables, and a compiled function captured
    # in a closure hashes differently in every process (so closures would defeat the cache).
    global _gemm, _gemm_tn, _gemm_nt, _sigmoid, _tanh, _biases, _cell, _recurrent, _carried, _zone
    jit = numba.njit(cache=cache, nogil=True)
    _zone = jit(_zone_py)
    _gemm, _gemm_tn, _gemm_nt = blas.functions(nt=True)
    _tanh, _sigmoid = fast_math.functions()
    _biases, _cell = jit(_biases_py), jit(_cell_py)
    _recurrent, _carried = jit(_recurrent_product), jit(_carried_product)
    return {"forward": jit(_forward), "backward": jit(_backward), "gradients": jit(_gradients),
            "inference": jit(_inference), "transpose": jit(_transpose)}


# ------------------------------------------------------------------------------------------------
# The loops, as plain Python (compiled by ``_compile``). As in numba_steps, a j-loop that stores into
# an array never reads that array at another offset (a store to g[2H + j] beside a load of g[j]):
# LLVM cannot rule out that H is shorter than a vector and leaves such a loop scalar (2-4x slower).

_ONE = np.float32(1.0)  # float32 constants keep float32 arithmetic in float32 (and are exact in float64)
_gemm = _gemm_tn = _gemm_nt = _sigmoid = _tanh = _biases = _cell = _recurrent = _carried = None  # bound by _compile
_zone = None


def _zone_py(new, prev, z, b):
    """Zoneout over rows :b: new <- (1 - z) new + z prev (``compiled_lstm.zone``; each compiled module
    keeps its own copy, since numba's cache of a loop does not see a change in another file)."""
    n = new.shape[1]
    for row in range(b):
        nr, pr, zr = new[row], prev[row], z[row]
        for j in range(n):
            nr[j] = nr[j] * (_ONE - zr[j]) + pr[j] * zr[j]


def _biases_py(b_ih, b_hh, H):
    """(input-side bias (3H,) with b_hr, b_hz folded in, b_hn (H,)); zero-length arrays mean no bias."""
    bias = np.zeros(3 * H, b_ih.dtype)
    b_hn = np.zeros(H, b_ih.dtype)
    if b_ih.shape[0]:
        bias[:] = b_ih
    if b_hh.shape[0]:
        for j in range(2 * H):
            bias[j] += b_hh[j]
        b_hn[:] = b_hh[2 * H:]
    return bias, b_hn


def _cell_py(g, rec, bias, b_hn, h_prev, a, h, b):
    """One step over rows :b. g (., 3H) = x W_ih^T -> [r, z, n] in place; rec = h_prev W_hh^T;
    a = rec_n + b_hn; h = n + z (h_prev - n). (h holds n's pre-activation in between.)"""
    H = h.shape[1]
    for row in range(b):
        gr, rr, hp, ar, hr = g[row], rec[row], h_prev[row], a[row], h[row]
        for j in range(2 * H):
            gr[j] = _sigmoid(gr[j] + bias[j] + rr[j])
        for j in range(H):
            aj = rr[2 * H + j] + b_hn[j]
            ar[j] = aj
            hr[j] = gr[2 * H + j] + bias[2 * H + j] + gr[j] * aj
        for j in range(H):
            gr[2 * H + j] = _tanh(hr[j])
        for j in range(H):
            n = gr[2 * H + j]
            hr[j] = n + gr[H + j] * (hp[j] - n)


def _transpose(w):
    """A C-ordered copy of w.T, in 32 x 32 tiles (NumPy's copy is 3x slower on large weights)."""
    n, m = w.shape
    out = np.empty((m, n), w.dtype)
    for i0 in range(0, n, 32):
        for j0 in range(0, m, 32):
            for i in range(i0, min(i0 + 32, n)):
                for j in range(j0, min(j0 + 32, m)):
                    out[j, i] = w[i, j]
    return out


def _recurrent_product(h, w_hh, w_t, out, beta):
    """out = h W_hh^T + beta out, from the copy of W_hh^T when there is one (w_t.size > 0)."""
    if w_t.size:
        _gemm(h, w_t, out, 1.0, beta)
    else:
        _gemm_nt(h, w_hh, out, 1.0, beta)


def _carried_product(d, w_hh, w_t, out, beta):
    """out = d W_hh + beta out, from the copy of W_hh^T when there is one (w_t.size > 0)."""
    if w_t.size:
        _gemm_nt(d, w_t, out, 1.0, beta)
    else:
        _gemm(d, w_hh, out, 1.0, beta)


def _forward(x2, w_ih, w_hh, w_t, b_ih, b_hh, sizes, gates, hs, a_steps, rmask, hms, zh):
    """gates (T, B, 3H) <- [r, z, n]; hs (T+1, B, H) with hs[0] = h0 <- every step's h (zero past
    each row's length); a_steps (T, B, H) <- W_hn h_{t-1} + b_hn. x2 (T*B, I); sizes (T,);
    w_t: W_hh^T or (0, 0) (``recurrent_weights``).
    Regularisation (zero-size arrays switch each off): rmask (B, H) masks h_{t-1} where it enters
    W_hh (recurrent dropout; the direct path z h_{t-1} is unmasked), hms (T+1, B, H) <- the masked
    h_{t-1} (zero on padding); zh (T, B, H): zoneout, h_t <- (1 - zh_t) h_t + zh_t h_{t-1}."""
    T, B, G = gates.shape
    H = G // 3
    drop = rmask.shape[0] > 0
    zone_h = zh.shape[0] > 0
    _gemm_nt(x2, w_ih, gates.reshape(T * B, G), 1.0, 0.0)
    bias, b_hn = _biases(b_ih, b_hh, H)
    rec = np.empty((B, G), gates.dtype)
    for t in range(T):
        b = sizes[t]
        if b:
            if drop:
                for row in range(b):
                    hp, mr, hm = hs[t, row], rmask[row], hms[t, row]
                    for j in range(H):
                        hm[j] = hp[j] * mr[j]
                _recurrent(hms[t, :b], w_hh, w_t, rec[:b], 0.0)
            else:
                _recurrent(hs[t, :b], w_hh, w_t, rec[:b], 0.0)
            _cell(gates[t], rec, bias, b_hn, hs[t], a_steps[t], hs[t + 1], b)
            if zone_h:
                _zone(hs[t + 1], hs[t], zh[t], b)
        hs[t + 1, b:] = 0
        if drop:
            hms[t, b:] = 0


def _backward(gates, a_steps, hs, w_hh, w_t, dh, d_out, sizes, d_in, d_a, rmask, zh):
    """BPTT over t = T-1 .. 0. dh (B, H): dL/dh_n in, dL/dh0 out (rows carry their own gradient until
    their last step); d_out (T, B, H) or (0, 0, 0) for none; w_t: W_hh^T or (0, 0). Writes
    d_in (T, B, 3H) = [dr', dz', dn'] and d_a (T, B, H) = da, zero on padding. rmask, zh:
    ``_forward``'s regularisation (or zero-size)."""
    T, B, G = gates.shape
    H = G // 3
    d_rec = np.empty((B, G), gates.dtype)  # [dr', dz', da] of one step
    has_out = d_out.shape[0] > 0
    drop = rmask.shape[0] > 0
    zone_h = zh.shape[0] > 0
    carry = np.empty((B if zone_h else 0, H), gates.dtype)  # zoneout's direct path to h_{t-1}
    tmp = np.empty((B if drop else 0, H), gates.dtype)  # [dr', dz', da] W_hh before the mask
    for t in range(T - 1, -1, -1):
        b = sizes[t]
        d_in[t, b:] = 0
        d_a[t, b:] = 0
        if b == 0:
            continue
        for row in range(b):
            gr, ar, hp, dhr = gates[t, row], a_steps[t, row], hs[t, row], dh[row]
            di, drc, dar = d_in[t, row], d_rec[row], d_a[t, row]
            if has_out:
                do = d_out[t, row]
                for j in range(H):
                    dhr[j] += do[j]
            if zone_h:
                zr, cr = zh[t, row], carry[row]
                for j in range(H):
                    v = dhr[j]
                    cr[j] = v * zr[j]
                    dhr[j] = v * (_ONE - zr[j])
            for j in range(H):  # dr'
                r, z, n = gr[j], gr[H + j], gr[2 * H + j]
                dr = dhr[j] * (_ONE - z) * (_ONE - n * n) * ar[j] * r * (_ONE - r)
                di[j] = dr
                drc[j] = dr
            for j in range(H):  # dz'
                z, n = gr[H + j], gr[2 * H + j]
                dz = dhr[j] * (hp[j] - n) * z * (_ONE - z)
                di[H + j] = dz
                drc[H + j] = dz
            for j in range(H):  # dn', da; dh <- dh z (the direct path to h_{t-1})
                r, z, n, d = gr[j], gr[H + j], gr[2 * H + j], dhr[j]
                dn = d * (_ONE - z) * (_ONE - n * n)
                da = dn * r
                di[2 * H + j] = dn
                drc[2 * H + j] = da
                dar[j] = da
                dhr[j] = d * z
        if drop:  # dh_{t-1} = dh_t z + ([dr', dz', da] W_hh) m
            _carried(d_rec[:b], w_hh, w_t, tmp[:b], 0.0)
            for row in range(b):
                dhr, tr, mr = dh[row], tmp[row], rmask[row]
                for j in range(H):
                    dhr[j] += tr[j] * mr[j]
        else:
            _carried(d_rec[:b], w_hh, w_t, dh[:b], 1.0)  # dh_{t-1} = dh_t z + [dr', dz', da] W_hh
        if zone_h:
            for row in range(b):
                dhr, cr = dh[row], carry[row]
                for j in range(H):
                    dhr[j] += cr[j]


def _gradients(d_in, d_a, x2, hs, w_ih, d_x, d_wih, d_whh, d_bih, d_bhh):
    """The products over all steps: d_x (T*B, I) = d_in W_ih; d_wih = d_in^T x; d_whh = [dr', dz']^T h_prev
    over da^T h_prev; d_bih = sum d_in; d_bhh = [sum dr', sum dz', sum da]. An output of size 0 is skipped."""
    T, B, G = d_in.shape
    H = G // 3
    d2 = d_in.reshape(T * B, G)
    a2 = d_a.reshape(T * B, H)
    h_prev = hs.reshape((T + 1) * B, H)[:T * B]
    if d_x.size:
        _gemm(d2, w_ih, d_x, 1.0, 0.0)
    if d_wih.size:
        _gemm_tn(d2, x2, d_wih, 1.0, 0.0)
    if d_whh.size:
        _gemm_tn(d2[:, :2 * H], h_prev, d_whh[:2 * H], 1.0, 0.0)
        _gemm_tn(a2, h_prev, d_whh[2 * H:], 1.0, 0.0)
    if d_bih.size or d_bhh.size:
        s = np.zeros(G, d_in.dtype)
        sa = np.zeros(H, d_in.dtype)
        for row in range(T * B):
            dr, ar = d2[row], a2[row]
            for j in range(G):
                s[j] += dr[j]
            for j in range(H):
                sa[j] += ar[j]
        if d_bih.size:
            d_bih[:] = s
        if d_bhh.size:
            d_bhh[:2 * H] = s[:2 * H]
            d_bhh[2 * H:] = sa


def _inference(x2, w_ih, w_hh, w_t, b_ih, b_hh, sizes, state, out, chunk):
    """The forward without saving anything: out (T, B, H) <- each step's h (zero past each row's
    length), state (B, H): h0 in, each row's final h out. x2 (T*B, I) is projected ``chunk`` steps
    at a time. sizes (T,), or (0,) when every row runs every step."""
    T, B, H = out.shape
    G = 3 * H
    bias, b_hn = _biases(b_ih, b_hh, H)
    steps = min(chunk, T)
    g = np.empty((steps * B, G), out.dtype)
    rec = np.empty((B, G), out.dtype)
    a = np.empty((B, H), out.dtype)
    ragged = sizes.shape[0] > 0
    for t0 in range(0, T, steps):
        t1 = min(T, t0 + steps)
        _gemm_nt(x2[t0 * B:t1 * B], w_ih, g[:(t1 - t0) * B], 1.0, 0.0)
        for t in range(t0, t1):
            b = sizes[t] if ragged else B
            if b:
                _recurrent(state[:b], w_hh, w_t, rec[:b], 0.0)
                _cell(g[(t - t0) * B:(t - t0 + 1) * B], rec, bias, b_hn, state, a, out[t], b)
                state[:b] = out[t, :b]
            out[t, b:] = 0
