"""The CTC recursions of :mod:`.recursions` as numba-compiled loops (imported only when used).

Loops over batch element, step and state, visiting only the states that can be on a complete path:
reachable from the start (s <= 2t + 1) and still able to reach the end (s >= L_n - 2 (T_n - t)).
Other states stay -inf. The kernels are module-level functions so that numba's on-disk cache
(``cache=True``) finds them again in a new process; they keep IEEE semantics (no fastmath) and
run on one thread.
"""
from __future__ import annotations

import math

import numba
import numpy as np

_jit = numba.njit(cache=True, nogil=True)


@numba.njit(cache=True, inline="always")
def logaddexp(a, b):
    """log(exp(a) + exp(b)) without overflow; -inf when both are -inf."""
    if a < b:
        a, b = b, a
    if b == -np.inf:
        return a
    return a + math.log1p(math.exp(b - a))


@_jit
def alpha_kernel(lp, ext, skip, input_lengths, target_lengths, alpha, log_p):
    """alpha (T+1, N, L), prefilled with -inf, gets the forward variables; log_p (N,) the log-likelihoods."""
    n_batch = lp.shape[1]
    for n in range(n_batch):
        t_n = input_lengths[n]
        l_n = 2 * target_lengths[n] + 1
        alpha[0, n, 0] = 0
        for t in range(t_n):
            lo = max(0, l_n - 2 * (t_n - t))
            hi = min(l_n, 2 * t + 2)
            prev = alpha[t, n]
            cur = alpha[t + 1, n]
            for s in range(lo, hi):
                a = prev[s]
                if s >= 1:
                    a = logaddexp(a, prev[s - 1])
                if skip[n, s]:
                    a = logaddexp(a, prev[s - 2])
                cur[s] = a + lp[t, n, ext[n, s]]
        final = alpha[t_n, n]
        if l_n == 1:
            log_p[n] = final[0]
        else:
            log_p[n] = logaddexp(final[l_n - 1], final[l_n - 2])


@_jit
def grad_kernel(lp, ext, skip, input_lengths, target_lengths, alpha, log_p, finite, out):
    """out (T, N, C), prefilled with 0, gets exp(lp) - occupation for t < T_n of the finite elements."""
    n_batch = lp.shape[1]
    n_classes = lp.shape[2]
    L = ext.shape[1]
    nxt = np.empty(L + 2, dtype=lp.dtype)  # beta_{t+1}, two -inf states past the end for s+1, s+2
    cur = np.empty(L + 2, dtype=lp.dtype)
    for n in range(n_batch):
        if not finite[n]:
            continue
        t_n = input_lengths[n]
        l_n = 2 * target_lengths[n] + 1
        nll = -log_p[n]
        nxt[:] = -np.inf
        nxt[l_n - 1] = 0  # the virtual beta_{T_n}
        for t in range(t_n - 1, -1, -1):
            lo = max(0, l_n - 2 * (t_n - t))
            hi = min(l_n, 2 * t + 2)
            cur[:] = -np.inf
            g = out[t, n]
            for k in range(n_classes):
                g[k] = math.exp(lp[t, n, k])
            for s in range(lo, hi):
                b = logaddexp(nxt[s], nxt[s + 1])
                if s + 2 < l_n and skip[n, s + 2]:
                    b = logaddexp(b, nxt[s + 2])
                k = ext[n, s]
                y = lp[t, n, k]
                b += y
                cur[s] = b
                ab = alpha[t + 1, n, s] + b
                if ab != -np.inf:
                    g[k] -= math.exp(ab - y + nll)
            nxt, cur = cur, nxt
