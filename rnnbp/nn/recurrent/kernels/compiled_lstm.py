"""The LSTM's recurrences compiled whole: forward, backward and inference each one numba call per sequence.

``lstm.LSTMLayer`` with backend 'numba' (or 'auto' where numba runs) calls these
instead of a Python loop over time steps. Each loop calls SciPy's BLAS directly
(``blas``): in training, each step's gates are one product [x_t, h_{t-1}] [W_ih^T; W_hh^T]
(the inputs and the carried state side by side in one buffer, which the weight
gradients then read in one product too), and the gate arithmetic runs in the same
pass, row by row while the row is in cache; inference projects the inputs of a
chunk of steps at once and adds each step's h W_hh^T. The products over all steps
(weight gradients, dx) go through the same BLAS, so one thread pool serves the
whole kernel.

Layout: PyTorch's gate order [i, f, g, o] and its weights as they are (no
reordered or scaled copy); a training call stacks [W_ih^T; W_hh^T] once. Equations are ``lstm``'s;
the arithmetic matches ``numpy_steps`` up to the order of operations (no fastmath,
IEEE semantics), and float64 matches the NumPy path to rounding. The activations
are ``fast_math``'s scalar ``sigmoid`` and ``tanh`` (vectorised in float32, libm in float64).

Ragged batches (``sizes[t]`` running rows, a prefix, see ``common``): rows that
have ended keep their state and get no work. The loops write every position a
later reader sees (h and r zero past each row's length, gradients zero on
padding), so the callers can hand them uninitialised buffers.

The loops run on one thread (BLAS may use its own). They are compiled on first use
for the dtype at hand, or loaded from numba's on-disk cache. They are module-level
functions that reach each other, the BLAS products and the activations through module
globals, which ``_compile`` binds: numba's cache key hashes a closure's contents, and
a closure over another compiled function (whose pickle holds a per-process uuid) would
never hit the cache. (Numba does not see a change of a global's value: after editing
``fast_math``, clear this module's cache files, ``__pycache__/compiled_lstm.*.nb?``.)
"""
from __future__ import annotations

import numpy as np

from . import backends, numba_steps

# The inference path projects the inputs a chunk of steps at a time: at most this many gate items,
# (steps * B, 4H) (1 MB in float32), and at least one step.
INFERENCE_CHUNK = 1 << 18

# Stand-ins for absent arrays (no bias, no projection, no output gradient, a gradient not asked
# for), so that the compiled loops see one type per argument: EMPTY[ndim][dtype]. An absent zoneout
# mask is a bool one (``ZONE``), as in training: each further signature of a loop costs seconds of
# compiling on first use.
EMPTY = {ndim: {np.dtype(d): np.empty((0,) * ndim, d) for d in (np.float32, np.float64, bool)} for ndim in (1, 2, 3)}
ZONE = np.dtype(bool)
ALL_ROWS = np.empty(0, np.int64)  # inference ``sizes``: every row runs every step

_loops = None
_ONE = np.float32(1.0)  # float32 constants keep float32 arithmetic in float32 (and are exact in float64)
_LOOPS = ("bias_sum", "cell", "cell_backward", "_carried_product", "zone", "zone_split", "mask_add", "forward",
          "backward", "gradients", "inference")
_REASSOCIATED = ("_row_products",)  # compiled with fastmath: sums in any order, as BLAS's are

# Bound by ``_compile`` (importing numba costs about half a second, so not at import time):
gemm = gemm_tn = gemm_nt = None  # blas: c = a @ b, a.T @ b, a @ b.T (alpha, beta)
sigmoid = tanh = None            # fast_math's scalar activations


def c_order(a: np.ndarray) -> np.ndarray:
    """``a`` C-contiguous (itself when it already is): the compiled loops take one layout."""
    return a if a.flags.c_contiguous else np.ascontiguousarray(a)


def or_empty(a: np.ndarray | None, dtype: np.dtype, ndim: int) -> np.ndarray:
    """``a`` C-contiguous, or a zero-size stand-in with ``ndim`` dimensions for None."""
    return EMPTY[ndim][dtype] if a is None else c_order(a)


def transposed(w_hh: np.ndarray, steps: int) -> np.ndarray:
    """A row-major copy of W_hh^T for ``_carried_product`` (BLAS multiplies by it faster than by W_hh
    transposed; see ``compiled_gru.SMALL_WEIGHTS``), or a zero-size stand-in below 8 steps, where
    the copy would cost more than it saves (a streamed step)."""
    return np.ascontiguousarray(w_hh.T) if steps >= 8 else EMPTY[2][w_hh.dtype]


def stacked_weights(w_ih: np.ndarray, w_hh: np.ndarray) -> np.ndarray:
    """[W_ih^T; W_hh^T] (I+P, 4H), C-ordered: the right operand of ``forward``'s one product per step."""
    I = w_ih.shape[1]
    w_cat = np.empty((I + w_hh.shape[1], w_ih.shape[0]), w_ih.dtype)
    w_cat[:I] = w_ih.T
    w_cat[I:] = w_hh.T
    return w_cat


def weights(w_ih, w_hh, b_ih, b_hh, w_hr, dtype: np.dtype) -> tuple:
    """(w_ih, w_hh, b_ih, b_hh, w_hr) as the loops take them: as they are (C-contiguous), absent ones as stand-ins."""
    e1 = EMPTY[1][dtype]
    return (c_order(w_ih), c_order(w_hh), e1 if b_ih is None else c_order(b_ih), e1 if b_hh is None else c_order(b_hh),
            EMPTY[2][dtype] if w_hr is None else c_order(w_hr))


def loops_for(backend: str, dtype) -> dict | None:
    """The compiled loops when ``backend`` runs numba for ``dtype`` (see ``backends``), else None."""
    if backends.steps(backend, dtype) is not numba_steps:
        return None
    return loops()


def loops() -> dict:
    """{'forward', 'backward', 'gradients', 'inference'} and the step arithmetic
    ('cell', 'cell_backward'), compiled (or loaded from numba's cache) on first use."""
    global _loops
    if _loops is None:
        try:
            _loops = _compile(cache=True)
        except RuntimeError:  # no writable cache location (read-only install and home)
            _loops = _compile(cache=False)
    return _loops


def _compile(cache: bool) -> dict:
    """Bind the BLAS products and activations, then make each loop below a numba dispatcher."""
    global gemm, gemm_tn, gemm_nt, sigmoid, tanh
    import numba

    from . import fast_math
    from .blas import functions

    gemm, gemm_tn, gemm_nt = functions(nt=True)
    tanh, sigmoid = fast_math.functions()
    jit = numba.njit(cache=cache, nogil=True)
    module = globals()
    source = {name: getattr(module[name], "py_func", module[name]) for name in _LOOPS + _REASSOCIATED}
    compiled = {name: (numba.njit(cache=cache, nogil=True, fastmath=True) if name in _REASSOCIATED else jit)(fn)
                for name, fn in source.items()}  # raises before any rebinding
    module.update(compiled)  # the loops call each other through these globals
    return compiled


# The loops. As in numba_steps: each j-loop stores to one gate block only, so that LLVM can
# vectorise it (a loop storing to one array at offsets H apart is left scalar); loads at such
# offsets, and stores to distinct arrays, are fine. A row (4H items) stays in L1 across its loops.


def bias_sum(b_ih, b_hh, G):
    """b_ih + b_hh (G,); a zero-length array means no bias."""
    bias = np.zeros(G, b_ih.dtype)
    if b_ih.shape[0]:
        for j in range(G):
            bias[j] = b_ih[j] + b_hh[j]
    return bias


def cell(g, bias, c_prev, c, tc, r, b):
    """One step over rows :b. g (., 4H) = x W_ih^T + h W_hh^T -> [i, f, g, o] activations in place
    (with ``bias`` added); c = f c_prev + i g; tc = tanh c; r = o tc."""
    H = c.shape[1]
    for row in range(b):
        gr, cp, cr, tr, rr = g[row], c_prev[row], c[row], tc[row], r[row]
        for j in range(H):
            gr[j] = sigmoid(gr[j] + bias[j])
        for j in range(H):
            gr[H + j] = sigmoid(gr[H + j] + bias[H + j])
        for j in range(H):
            gr[2 * H + j] = tanh(gr[2 * H + j] + bias[2 * H + j])
        for j in range(H):
            gr[3 * H + j] = sigmoid(gr[3 * H + j] + bias[3 * H + j])
        for j in range(H):
            cj = gr[H + j] * cp[j] + gr[j] * gr[2 * H + j]
            cr[j] = cj
            tj = tanh(cj)
            tr[j] = tj
            rr[j] = gr[3 * H + j] * tj


def cell_backward(g, c_prev, tc, dr, dc, dg, b):
    """Rows :b. From dr = dL/d(o tanh c) and the carried dc: dg (., 4H) = the gradient at the
    pre-activations [di', df', dg', do']; dc <- (dc + dr o (1 - tc^2)) f."""
    H = dc.shape[1]
    for row in range(b):
        gr, cp, tr, d, dcr, dgr = g[row], c_prev[row], tc[row], dr[row], dc[row], dg[row]
        for j in range(H):  # dc += dr o (1 - tc^2); di'
            i, gg, o, t = gr[j], gr[2 * H + j], gr[3 * H + j], tr[j]
            dct = dcr[j] + d[j] * o * (_ONE - t * t)
            dcr[j] = dct
            dgr[j] = dct * gg * i * (_ONE - i)
        for j in range(H):  # df'
            f = gr[H + j]
            dgr[H + j] = dcr[j] * cp[j] * f * (_ONE - f)
        for j in range(H):  # dg'
            i, gg = gr[j], gr[2 * H + j]
            dgr[2 * H + j] = dcr[j] * i * (_ONE - gg * gg)
        for j in range(H):  # do'; dc <- dc f
            o = gr[3 * H + j]
            dgr[3 * H + j] = d[j] * tr[j] * o * (_ONE - o)
            dcr[j] = dcr[j] * gr[H + j]


def _carried_product(h, w_hh, w_t, g):
    """g += h W_hh^T, through the copy of W_hh^T when there is one."""
    if w_t.shape[0] > 0:
        gemm(h, w_t, g, 1.0, 1.0)
    else:
        gemm_nt(h, w_hh, g, 1.0, 1.0)


def _row_products(w_ih, x, w_hh, h, g):
    """g (4H,) = W_ih x + W_hh h for a batch of one, x (I,), h (P,): four weight rows at a time (4H
    is a multiple of 4), each weight read once. A streamed step's cost is this memory traffic;
    BLAS's products of one row took about 1 us more per step (I = 40, H = 128)."""
    I, P = x.shape[0], h.shape[0]
    for j in range(0, g.shape[0], 4):
        a0 = a1 = a2 = a3 = g.dtype.type(0)
        u0, u1, u2, u3 = w_ih[j], w_ih[j + 1], w_ih[j + 2], w_ih[j + 3]
        for k in range(I):
            v = x[k]
            a0 += u0[k] * v
            a1 += u1[k] * v
            a2 += u2[k] * v
            a3 += u3[k] * v
        u0, u1, u2, u3 = w_hh[j], w_hh[j + 1], w_hh[j + 2], w_hh[j + 3]
        for k in range(P):
            v = h[k]
            a0 += u0[k] * v
            a1 += u1[k] * v
            a2 += u2[k] * v
            a3 += u3[k] * v
        g[j], g[j + 1], g[j + 2], g[j + 3] = a0, a1, a2, a3


def forward(x2, w_ih, w_hh, b_ih, b_hh, w_hr, sizes, gates, hs, cs, tanh_cs, rs, rmask, zh, zc, w_cat, xh):
    """x2 (T*B, I); sizes (T,). gates (T, B, 4H) <- [i, f, g, o]; hs (T+1, B, P) and cs (T+1, B, H), with
    hs[0] = h0 and cs[0] = c0 set, <- every step's h (zero past each row's length) and c; tanh_cs
    (T, B, H) <- tanh c; rs (T, B, H) <- o tanh c with a projection (w_hr (P, H)), zero past each
    row's length, else rs and w_hr are zero-size and r is h.

    Each step's gates come from one product, [x_t, h_{t-1}] @ w_cat: xh (T, B, I+P) <- [x_t, h_{t-1}]
    (zero past each row's length; the backward's operand for the weight gradients), w_cat (I+P, 4H)
    = [W_ih^T; W_hh^T] C-ordered (``stacked_weights``). One product of depth I+P per step ran faster than
    one over all steps for x W_ih^T and one of depth P per step (the x W_ih^T of one step would not
    fill BLAS's blocks).

    Regularisation (``regularization``; zero-size arrays switch each off): rmask (B, P) masks
    h_{t-1} before W_hh (recurrent dropout; xh holds the masked h); zh (T, B, P), zc (T, B, H):
    zoneout, h_t <- (1 - zh_t) h_t + zh_t h_{t-1} and the same for c (bool per unit in training;
    floats: the rate in eval, or masks given)."""
    T, B, G = gates.shape
    P = hs.shape[2]
    I = x2.shape[1]
    proj = w_hr.shape[0] > 0
    drop = rmask.shape[0] > 0
    zone_h = zh.shape[0] > 0
    zone_c = zc.shape[0] > 0
    for t in range(T):
        for row in range(B):
            xr, dst = x2[t * B + row], xh[t, row]
            for k in range(I):
                dst[k] = xr[k]
    bias = bias_sum(b_ih, b_hh, G)
    for t in range(T):
        b = sizes[t]
        for row in range(B):
            dst = xh[t, row, I:]
            if row >= b:
                dst[:] = 0
            elif drop:
                hp, mr = hs[t, row], rmask[row]
                for j in range(P):
                    dst[j] = hp[j] * mr[j]
            else:
                hp = hs[t, row]
                for j in range(P):
                    dst[j] = hp[j]
        if b:
            gemm(xh[t, :b], w_cat, gates[t, :b], 1.0, 0.0)
            r = rs[t] if proj else hs[t + 1]
            cell(gates[t], bias, cs[t], cs[t + 1], tanh_cs[t], r, b)
            if proj:
                gemm_nt(rs[t, :b], w_hr, hs[t + 1, :b], 1.0, 0.0)
            if zone_c:
                zone(cs[t + 1], cs[t], zc[t], b)
            if zone_h:
                zone(hs[t + 1], hs[t], zh[t], b)
        hs[t + 1, b:] = 0
        if proj:
            rs[t, b:] = 0


def zone(new, prev, z, b):
    """Zoneout over rows :b: new <- (1 - z) new + z prev."""
    n = new.shape[1]
    for row in range(b):
        nr, pr, zr = new[row], prev[row], z[row]
        for j in range(n):
            nr[j] = nr[j] * (_ONE - zr[j]) + pr[j] * zr[j]


def zone_split(d, z, carry, b):
    """Zoneout's backward over rows :b: carry <- d z (to the previous state), d <- d (1 - z)."""
    n = d.shape[1]
    for row in range(b):
        dr, zr, cr = d[row], z[row], carry[row]
        for j in range(n):
            v = dr[j]
            cr[j] = v * zr[j]
            dr[j] = v * (_ONE - zr[j])


def mask_add(d, m, carry, b, use_mask, use_carry):
    """Rows :b: d <- d m (recurrent dropout's mask, if use_mask) + carry (zoneout's direct path, if use_carry)."""
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


def backward(gates, cs, tanh_cs, w_hh, w_hr, dh, dc, d_out, sizes, dgates, dh_steps, rmask, zh, zc, d_b):
    """BPTT over t = T-1 .. 0. dh (B, P), dc (B, H): dL/dh_n, dL/dc_n in, dL/dh0, dL/dc0 out (rows
    carry their own gradient until their last step); d_out (T, B, P), or zero-size for none.
    Writes dgates (T, B, 4H) and, with a projection, dh_steps (T, B, P) <- each step's dL/dh_t
    before zoneout; both zero on padding. rmask, zh, zc: ``forward``'s regularisation (or zero-size).
    d_b (4H,) float64 <- sum of dgates, added up while each step's rows are in cache (zero-size: not asked)."""
    T, B, G = gates.shape
    H = G // 4
    P = dh.shape[1]
    proj = w_hr.shape[0] > 0
    has_out = d_out.shape[0] > 0
    drop = rmask.shape[0] > 0
    zone_h = zh.shape[0] > 0
    zone_c = zc.shape[0] > 0
    sum_b = d_b.shape[0] > 0
    if sum_b:
        d_b[:] = 0
    carry_h = np.empty((B if zone_h else 0, P), gates.dtype)  # zoneout's direct path to h_{t-1}
    carry_c = np.empty((B if zone_c else 0, H), gates.dtype)
    dr = np.empty((B, H), gates.dtype) if proj else dh  # dL/d(o tanh c) of one step
    for t in range(T - 1, -1, -1):
        b = sizes[t]
        dgates[t, b:] = 0
        if proj:
            dh_steps[t, b:] = 0
        if b == 0:
            continue
        if has_out:
            for row in range(b):
                dhr, do = dh[row], d_out[t, row]
                for j in range(dhr.shape[0]):
                    dhr[j] += do[j]
        if zone_h:
            zone_split(dh, zh[t], carry_h, b)
        if zone_c:
            zone_split(dc, zc[t], carry_c, b)
        if proj:
            dh_steps[t, :b] = dh[:b]
            gemm(dh[:b], w_hr, dr[:b], 1.0, 0.0)
        cell_backward(gates[t], cs[t], tanh_cs[t], dr, dc, dgates[t], b)
        if sum_b:
            for row in range(b):
                dgr = dgates[t, row]
                for j in range(G):
                    d_b[j] += dgr[j]
        gemm(dgates[t, :b], w_hh, dh[:b], 1.0, 0.0)  # dh_{t-1} = dgates W_hh
        if drop or zone_h:
            mask_add(dh, rmask, carry_h, b, drop, zone_h)
        if zone_c:
            mask_add(dc, rmask, carry_c, b, False, True)


def gradients(dgates, xh, w_ih, dh_steps, rs, d_x, d_wih, d_whh, d_whr):
    """The products over all steps: d_x (T*B, I) = dgates W_ih; d_wih = dgates^T x and d_whh = dgates^T
    h_prev, from ``forward``'s xh = [x, h_prev] (one product when both are asked for, then copied
    out); d_whr = dh_steps^T rs. An output of size 0 is skipped."""
    T, B, G = dgates.shape
    I = w_ih.shape[1]
    d2 = dgates.reshape(T * B, G)
    xh2 = xh.reshape(T * B, xh.shape[2])
    if d_x.size:
        gemm(d2, w_ih, d_x, 1.0, 0.0)
    if d_wih.size and d_whh.size:
        d_w = np.empty((G, xh2.shape[1]), dgates.dtype)
        gemm_tn(d2, xh2, d_w, 1.0, 0.0)
        for j in range(G):
            d_wih[j] = d_w[j, :I]
            d_whh[j] = d_w[j, I:]
    elif d_wih.size:
        gemm_tn(d2, xh2[:, :I], d_wih, 1.0, 0.0)
    elif d_whh.size:
        gemm_tn(d2, xh2[:, I:], d_whh, 1.0, 0.0)
    if d_whr.size:
        gemm_tn(dh_steps.reshape(T * B, dh_steps.shape[2]), rs.reshape(T * B, rs.shape[2]), d_whr, 1.0, 0.0)


def inference(x2, w_ih, w_hh, b_ih, b_hh, w_hr, sizes, h, c, out, chunk, w_t):
    """The forward without saving anything: out (T, B, P) <- each step's h (zero past each row's
    length); h (B, P), c (B, H): the initial state in, each row's final state out. x2 (T*B, I) is
    projected ``chunk`` steps at a time (a batch of one: row by row with each step, ``_row_products``).
    sizes (T,), or (0,) when every row runs every step. w_t: W_hh^T or zero-size, as in ``forward``."""
    T, B, P = out.shape
    H = c.shape[1]
    G = 4 * H
    proj = w_hr.shape[0] > 0
    bias = bias_sum(b_ih, b_hh, G)
    steps = max(1, min(chunk, T))
    g = np.empty((steps * B, G), out.dtype)
    c_new = np.empty((B, H), out.dtype)
    tc = np.empty((B, H), out.dtype)
    r = np.empty((B if proj else 0, H), out.dtype)
    ragged = sizes.shape[0] > 0
    for t0 in range(0, T, steps):
        t1 = min(T, t0 + steps)
        if B > 1:
            gemm_nt(x2[t0 * B:t1 * B], w_ih, g[:(t1 - t0) * B], 1.0, 0.0)
        for t in range(t0, t1):
            b = sizes[t] if ragged else B
            if b:
                gt = g[(t - t0) * B:(t - t0 + 1) * B]
                if B == 1:
                    _row_products(w_ih, x2[t], w_hh, h[0], gt[0])
                else:
                    _carried_product(h[:b], w_hh, w_t, gt[:b])
                cell(gt, bias, c, c_new, tc, r if proj else out[t], b)
                c[:b] = c_new[:b]
                if proj:
                    gemm_nt(r[:b], w_hr, out[t, :b], 1.0, 0.0)
                h[:b] = out[t, :b]
            out[t, b:] = 0
