"""The Elman RNN's recurrences compiled whole: forward, backward and inference each one numba call per sequence.

``elman.ElmanLayer`` with backend 'numba' (or 'auto' where numba runs) calls these
instead of a Python loop over time steps; see ``compiled_gru`` for the common
design (SciPy's BLAS called from the loop, the activation fused into the same
pass, padding rows zeroed by the loops, the recurrent weight in the layout BLAS
is fastest with, one thread, compiled on first use) and its helpers.

The forward projects the inputs straight into the state buffer (hs[1:] = x W_ih^T)
and adds each step's h_{t-1} W_hh^T onto it (BLAS with beta = 1), so it needs no
buffer beyond the states it saves. ``relu``: 0 for tanh, 1 for relu.
"""
from __future__ import annotations

import numpy as np

from . import backends, numba_steps
from .compiled_gru import _transpose

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

    # Globals, not closures, for what the loops call: see compiled_gru._compile.
    global _gemm, _gemm_tn, _gemm_nt, _tanh, _bias_of, _activate, _recurrent, _carried, _zone, _zoned_pre, _mask_add
    jit = numba.njit(cache=cache, nogil=True)
    _zone, _zoned_pre, _mask_add = jit(_zone_py), jit(_zoned_pre_py), jit(_mask_add_py)
    _gemm, _gemm_tn, _gemm_nt = blas.functions(nt=True)
    _tanh, _ = fast_math.functions()
    _bias_of, _activate = jit(_bias_of_py), jit(_activate_py)
    _recurrent, _carried = jit(_recurrent_product), jit(_carried_product)
    return {"forward": jit(_forward), "backward": jit(_backward), "gradients": jit(_gradients),
            "inference": jit(_inference), "transpose": jit(_transpose)}


# ------------------------------------------------------------------------------------------------
# The loops, as plain Python (compiled by ``_compile``).

_ZERO, _ONE = np.float32(0.0), np.float32(1.0)
_gemm = _gemm_tn = _gemm_nt = _tanh = _bias_of = _activate = _recurrent = _carried = None  # bound by _compile
_zone = _zoned_pre = _mask_add = None


def _zone_py(new, prev, z, b):
    """Zoneout over rows :b: new <- (1 - z) new + z prev. This and ``_mask_add`` are
    ``compiled_lstm``'s zone and mask_add: each compiled module keeps its own copy,
    since numba's cache of a loop does not see a change in another file."""
    n = new.shape[1]
    for row in range(b):
        nr, pr, zr = new[row], prev[row], z[row]
        for j in range(n):
            nr[j] = nr[j] * (_ONE - zr[j]) + pr[j] * zr[j]


def _zoned_pre_py(dh, h, z, d_pre, b, relu):
    """One step of the backward with zoneout, rows :b, in one pass: d_pre <- act'(h) dh (1 - z), the
    gradient at the pre-activation, and dh <- dh z, zoneout's direct path to h_{t-1} (to which the
    product with W_hh is added). h (., H): the activation (h_t itself where z < 1 for 0/1 masks)."""
    H = dh.shape[1]
    for row in range(b):
        hr, dhr, zr, dp = h[row], dh[row], z[row], d_pre[row]
        if relu:
            for j in range(H):
                v = dhr[j]
                d = v * (_ONE - zr[j])
                dp[j] = d if hr[j] > _ZERO else _ZERO
                dhr[j] = v * zr[j]
        else:
            for j in range(H):
                v = dhr[j]
                dp[j] = (_ONE - hr[j] * hr[j]) * (v * (_ONE - zr[j]))
                dhr[j] = v * zr[j]


def _mask_add_py(d, m, carry, b, use_mask, use_carry):
    """Rows :b: d <- d m (if use_mask) + carry (if use_carry)."""
    n = d.shape[1]
    for row in range(b):
        dr = d[row]
        if use_mask:
            mr = m[row]
            for j in range(n):
                dr[j] *= mr[j]
        if use_carry:
            cr = carry[row]
            for j in range(n):
                dr[j] += cr[j]


def _bias_of_py(b_ih, b_hh, H, dtype_of):
    """b_ih + b_hh (H,); zero-length arrays mean no bias."""
    bias = np.zeros(H, dtype_of.dtype)
    if b_ih.shape[0]:
        bias[:] = b_ih
    if b_hh.shape[0]:
        for j in range(H):
            bias[j] += b_hh[j]
    return bias


def _activate_py(h, bias, b, relu):
    """h[:b] <- act(h + bias) in place."""
    H = h.shape[1]
    for row in range(b):
        hr = h[row]
        if relu:
            for j in range(H):
                v = hr[j] + bias[j]
                hr[j] = _ZERO if v < _ZERO else v
        else:
            for j in range(H):
                hr[j] = _tanh(hr[j] + bias[j])


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


def _forward(x2, w_ih, w_hh, w_t, b_ih, b_hh, sizes, hs, relu, rmask, hms, zh, acts):
    """hs (T+1, B, H) with hs[0] = h0 <- every step's h, zero past each row's length.
    x2 (T*B, I); sizes (T,); w_t: W_hh^T or (0, 0) (``compiled_gru.recurrent_weights``).
    Regularisation (zero-size arrays switch each off): rmask (B, H) masks h_{t-1} where it enters
    W_hh (recurrent dropout), hms (T+1, B, H) <- the masked h_{t-1} (zero on padding); zh (T, B, H):
    zoneout, h_t <- (1 - zh_t) act_t + zh_t h_{t-1} (bool or float), with acts (T, B, H) <- act_t for
    the backward, or zero-size where it needs none (``elman._keeps_activations``)."""
    T1, B, H = hs.shape
    T = T1 - 1
    drop = rmask.shape[0] > 0
    zone_h = zh.shape[0] > 0
    keep_acts = acts.shape[0] > 0
    _gemm_nt(x2, w_ih, hs.reshape(T1 * B, H)[B:], 1.0, 0.0)
    bias = _bias_of(b_ih, b_hh, H, hs)
    for t in range(T):
        b = sizes[t]
        if b:
            if drop:
                for row in range(b):
                    hp, mr, hm = hs[t, row], rmask[row], hms[t, row]
                    for j in range(H):
                        hm[j] = hp[j] * mr[j]
                _recurrent(hms[t, :b], w_hh, w_t, hs[t + 1, :b], 1.0)
            else:
                _recurrent(hs[t, :b], w_hh, w_t, hs[t + 1, :b], 1.0)
            _activate(hs[t + 1], bias, b, relu)
            if keep_acts:
                acts[t, :b] = hs[t + 1, :b]
            if zone_h:
                _zone(hs[t + 1], hs[t], zh[t], b)
        hs[t + 1, b:] = 0
        if drop:
            hms[t, b:] = 0


def _backward(hs, w_hh, w_t, dh, d_out, sizes, relu, d_pre, rmask, zh, acts):
    """BPTT over t = T-1 .. 0. dh (B, H): dL/dh_n in, dL/dh0 out; d_out (T, B, H) or (0, 0, 0) for
    none; w_t: W_hh^T or (0, 0). Writes d_pre (T, B, H), the gradient at the pre-activations, zero
    on padding. rmask, zh, acts: ``_forward``'s regularisation (or zero-size; without acts, the
    activation where zh_t < 1 is h_t)."""
    T, B, H = d_pre.shape
    has_out = d_out.shape[0] > 0
    drop = rmask.shape[0] > 0
    zone_h = zh.shape[0] > 0
    keep_acts = acts.shape[0] > 0
    tmp = np.empty((B if drop and zone_h else 0, H), d_pre.dtype)  # d_pre W_hh before the mask
    for t in range(T - 1, -1, -1):
        b = sizes[t]
        d_pre[t, b:] = 0
        if b == 0:
            continue
        if has_out:
            for row in range(b):
                dhr, do = dh[row], d_out[t, row]
                for j in range(H):
                    dhr[j] += do[j]
        if zone_h:  # dh_{t-1} = dh_t z + (d_pre W_hh) m
            _zoned_pre(dh, acts[t] if keep_acts else hs[t + 1], zh[t], d_pre[t], b, relu)
            if drop:
                _carried(d_pre[t, :b], w_hh, w_t, tmp[:b], 0.0)
                for row in range(b):
                    dhr, tr, mr = dh[row], tmp[row], rmask[row]
                    for j in range(H):
                        dhr[j] += tr[j] * mr[j]
            else:
                _carried(d_pre[t, :b], w_hh, w_t, dh[:b], 1.0)
            continue
        for row in range(b):
            hr, dhr, dp = hs[t + 1, row], dh[row], d_pre[t, row]
            if relu:
                for j in range(H):
                    dp[j] = dhr[j] if hr[j] > _ZERO else _ZERO
            else:
                for j in range(H):
                    dp[j] = (_ONE - hr[j] * hr[j]) * dhr[j]
        _carried(d_pre[t, :b], w_hh, w_t, dh[:b], 0.0)  # dh_{t-1} = d_pre W_hh
        if drop:  # (d_pre W_hh) m
            _mask_add(dh, rmask, dh, b, True, False)


def _gradients(d_pre, x2, hs, w_ih, d_x, d_wih, d_whh, d_b):
    """d_x (T*B, I) = d_pre W_ih; d_wih = d_pre^T x; d_whh = d_pre^T h_prev; d_b = sum d_pre.
    An output of size 0 is skipped."""
    T, B, H = d_pre.shape
    d2 = d_pre.reshape(T * B, H)
    if d_x.size:
        _gemm(d2, w_ih, d_x, 1.0, 0.0)
    if d_wih.size:
        _gemm_tn(d2, x2, d_wih, 1.0, 0.0)
    if d_whh.size:
        _gemm_tn(d2, hs.reshape((T + 1) * B, H)[:T * B], d_whh, 1.0, 0.0)
    if d_b.size:
        d_b[:] = 0
        for row in range(T * B):
            dr = d2[row]
            for j in range(H):
                d_b[j] += dr[j]


def _inference(x2, w_ih, w_hh, w_t, b_ih, b_hh, sizes, state, out, relu):
    """The forward without saving anything: out (T, B, H) <- each step's h (zero past each row's
    length), state (B, H): h0 in, each row's final h out. The projection is written into ``out``
    itself. sizes (T,), or (0,) when every row runs every step."""
    T, B, H = out.shape
    _gemm_nt(x2, w_ih, out.reshape(T * B, H), 1.0, 0.0)
    bias = _bias_of(b_ih, b_hh, H, out)
    ragged = sizes.shape[0] > 0
    for t in range(T):
        b = sizes[t] if ragged else B
        if b:
            _recurrent(state[:b], w_hh, w_t, out[t, :b], 1.0)
            _activate(out[t], bias, b, relu)
            state[:b] = out[t, :b]
        out[t, b:] = 0
