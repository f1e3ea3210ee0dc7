"""The CTC forward-backward recursions in log space, over a whole batch.

Notation (Graves et al., 2006). Batch element n has T_n input steps, log-probabilities
``lp[t, n, k]`` and a target l of length S_n, extended with blanks b to

    l' = (b, l_1, b, l_2, ..., b, l_S, b),    L_n = 2 S_n + 1 states.

A state s may be entered from s, from s - 1, and from s - 2 when l'_s is a label unlike
l'_{s-2} (the *skip*: a blank between two different labels may be left out)::

    alpha_t(s) = logsumexp(alpha_{t-1}(s), alpha_{t-1}(s-1), [alpha_{t-1}(s-2)]) + lp_t(l'_s)
    beta_t(s)  = logsumexp(beta_{t+1}(s),  beta_{t+1}(s+1),  [beta_{t+1}(s+2)])  + lp_t(l'_s)
    log p(l | x) = logaddexp(alpha_{T_n-1}(L_n-1), alpha_{T_n-1}(L_n-2))

Both recursions start from a virtual step, alpha_{-1} = (0, -inf, -inf, ...) and beta_{T_n} = 0 at
s = L_n - 1 only, so the two legal first states (s = 0, 1) and last states (s = L_n - 1, L_n - 2)
fall out of the recursion with no special case, for any S_n >= 0 and T_n >= 0.

alpha and beta both contain lp_t(l'_s), so the posterior probability of being in state s at step t
(the *occupation*) is

    gamma_t(s) = exp(alpha_t(s) + beta_t(s) - lp_t(l'_s) - log p),    sum_s gamma_t(s) = 1,

and the exact derivative of the loss -log p with respect to lp[t, n, k] is
-sum_{s: l'_s = k} gamma_t(s) for t < T_n, and 0 for the padded steps t >= T_n.

Two implementations with one interface, chosen by ``backend``:

* ``numpy``: a loop over time; each step updates the (N, L) states of the whole batch with a few
  array operations (``np.logaddexp`` handles -inf, so impossible states need no masking).
* ``numba``: compiled loops over batch element, time and state, visiting only the states that can
  still be on a complete path (s <= 2t + 1 and s >= L_n - 2 (T_n - t)). Faster for the small
  batches of sequence training, where NumPy's per-call overhead dominates; same results up to
  the order of the additions (tested).

``auto`` (what :func:`rnnbp.nn.functional.ctc_loss` uses) takes numba when it imports and
compiles, and otherwise NumPy, warning once.
"""
from __future__ import annotations

import importlib.util
import warnings

import numpy as np

BACKENDS = ("auto", "numba", "numpy")
_auto_failed = False
_kernels = None


# ------------------------------------------------------------------ extended labels
def extend_targets(targets: np.ndarray, target_lengths: np.ndarray, blank: int):
    """The blank-extended labels l' and where a skip (s - 2 -> s) is allowed.

    Args:
        targets : np.ndarray [shape=(N, S), integer]. Entries at or past ``target_lengths[n]``
            are padding and ignored.
        target_lengths : np.ndarray [shape=(N,), integer], each in [0, S].
        blank : int. The blank class.

    Returns:
        ext : np.ndarray [shape=(N, 2S+1), intp]: l' per element, blank in the padded states.
        skip : np.ndarray [shape=(N, 2S+1), bool]: True where state s may be entered from s - 2.
    """
    n, s_max = targets.shape
    valid = np.arange(s_max) < target_lengths[:, None]  # (N, S)
    ext = np.full((n, 2 * s_max + 1), blank, dtype=np.intp)
    ext[:, 1::2] = np.where(valid, targets, blank)
    skip = np.zeros(ext.shape, dtype=bool)
    # Label k (state 2k+1) may follow label k-1 directly unless they are equal.
    skip[:, 3::2] = valid[:, 1:] & (ext[:, 3::2] != ext[:, 1:-2:2])
    return ext, skip


def repeats(targets: np.ndarray, target_lengths: np.ndarray) -> np.ndarray:
    """Number of adjacent equal labels per element: each needs a blank between, so one more step.

    An alignment of a target of length S with R repeats needs at least S + R input steps.
    """
    s_max = targets.shape[1]
    if s_max < 2:
        return np.zeros(targets.shape[0], dtype=np.int64)
    both_valid = np.arange(1, s_max) < target_lengths[:, None]  # (N, S-1)
    return ((targets[:, 1:] == targets[:, :-1]) & both_valid).sum(axis=1)


# ------------------------------------------------------------------ backend choice
def numba_available() -> bool:
    """Whether numba is installed (found without importing it)."""
    return importlib.util.find_spec("numba") is not None


def _wants_numba(backend: str) -> bool:
    """Whether to try the numba kernels for ``backend``; an explicit 'numba' must be installed."""
    if backend not in BACKENDS:
        raise ValueError(f"ctc_loss: backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "numba" and not numba_available():
        raise ImportError("ctc_loss: backend='numba' needs numba (pip install numba), or use backend='numpy'")
    return backend == "numba" or (backend == "auto" and not _auto_failed and numba_available())


def _run_numba(kernel: str, backend: str, *args) -> bool:
    """Run a compiled kernel (compiled for these argument types on first use); whether it ran.

    Under 'auto' a failure to import or compile warns once and returns False (the caller then
    runs NumPy, for this and every later call); under 'numba' it raises.
    """
    global _auto_failed
    try:
        compiled()[kernel](*args)
    except Exception as exc:
        if backend == "numba":
            raise
        _auto_failed = True
        warnings.warn(f"rnnbp: numba could not compile the CTC recursions ({type(exc).__name__}: {exc}); "
                      "using NumPy instead", RuntimeWarning, stacklevel=4)
        return False
    return True


# ------------------------------------------------------------------ public entry points
def log_likelihood(lp: np.ndarray, ext: np.ndarray, skip: np.ndarray, input_lengths: np.ndarray,
                   target_lengths: np.ndarray, backend: str = "auto"):
    """log p(l | x) per element, and the forward variables the gradient needs.

    Args:
        lp : np.ndarray [shape=(T, N, C), float32 or float64]. Log-probabilities (need not be normalised).
        ext, skip : from :func:`extend_targets`, [shape=(N, L)].
        input_lengths : np.ndarray [shape=(N,), integer], each in [0, T].
        target_lengths : np.ndarray [shape=(N,), integer]; L_n = 2 target_lengths[n] + 1 <= L.
        backend : 'auto' | 'numba' | 'numpy'.

    Returns:
        log_p : np.ndarray [shape=(N,), lp.dtype]; -inf where no alignment has a nonzero probability.
        alpha : np.ndarray [shape=(T+1, N, L), lp.dtype]; alpha[t + 1] is alpha_t, alpha[0] the
            virtual start. Only what :func:`grad` needs is defined: the numba backend leaves -inf
            in states that cannot be on a complete path.
    """
    if _wants_numba(backend):
        alpha = np.full((lp.shape[0] + 1,) + ext.shape, -np.inf, dtype=lp.dtype)
        log_p = np.empty(ext.shape[0], dtype=lp.dtype)
        if _run_numba("alpha", backend, lp, ext, skip, input_lengths.astype(np.int64),
                      target_lengths.astype(np.int64), alpha, log_p):
            return log_p, alpha
    return _log_likelihood_numpy(lp, ext, skip, input_lengths, target_lengths)


def grad(lp: np.ndarray, ext: np.ndarray, skip: np.ndarray, input_lengths: np.ndarray,
         target_lengths: np.ndarray, alpha: np.ndarray, log_p: np.ndarray, backend: str = "auto") -> np.ndarray:
    """PyTorch's gradient of the per-element loss -log p with respect to ``lp``, unscaled.

    ``exp(lp[t, n, k]) - sum_{s: l'_s = k} gamma_t(s)`` for t < T_n and 0 for t >= T_n: the exact
    derivative plus exp(lp), which is the exact derivative with respect to the logits when
    ``lp = log_softmax(logits)`` (see :mod:`rnnbp.nn.ctc.loss`). An entry with lp = -inf gets 0.
    Elements with an infinite loss (log_p = -inf) are left at 0 here; the caller decides (NaN or 0).

    Returns: np.ndarray [shape=(T, N, C), lp.dtype].
    """
    finite = np.isfinite(log_p)
    if _wants_numba(backend):
        out = np.zeros(lp.shape, dtype=lp.dtype)
        # (alpha from either backend will do: they agree on every state that is on a complete path)
        if _run_numba("grad", backend, lp, ext, skip, input_lengths.astype(np.int64),
                      target_lengths.astype(np.int64), alpha, log_p, finite, out):
            return out
    return _grad_numpy(lp, ext, skip, input_lengths, target_lengths, alpha, log_p, finite)


# ------------------------------------------------------------------ NumPy
def _log_likelihood_numpy(lp, ext, skip, input_lengths, target_lengths):
    t_max, n = lp.shape[:2]
    L = ext.shape[1]
    dtype = lp.dtype
    neg_inf = dtype.type(-np.inf)
    lp_ext = np.take_along_axis(lp, ext[None], axis=2)  # (T, N, L): lp_t(l'_s)
    skip_bias = np.where(skip, dtype.type(0), neg_inf)  # 0 where s-2 -> s is allowed, -inf elsewhere
    alpha = np.empty((t_max + 1, n, L), dtype=dtype)
    alpha[0] = neg_inf
    alpha[0, :, 0] = 0
    # buf[:, 2:] holds alpha_{t-1}, so buf[:, 1:-1] and buf[:, :-2] are it shifted by 1 and 2 states.
    buf = np.full((n, L + 2), neg_inf, dtype=dtype)
    for t in range(t_max):
        buf[:, 2:] = alpha[t]
        a = np.logaddexp(buf[:, 2:], buf[:, 1:-1])
        np.logaddexp(a, buf[:, :-2] + skip_bias, out=a)
        np.add(a, lp_ext[t], out=alpha[t + 1])
    rows = np.arange(n)
    last = 2 * target_lengths  # L_n - 1
    final = alpha[input_lengths, rows]  # (N, L): alpha_{T_n - 1}, or the virtual start when T_n = 0
    log_p = np.logaddexp(final[rows, last], np.where(last >= 1, final[rows, np.maximum(last - 1, 0)], neg_inf))
    return log_p.astype(dtype, copy=False), alpha


def _grad_numpy(lp, ext, skip, input_lengths, target_lengths, alpha, log_p, finite):
    t_max, n, c = lp.shape
    L = ext.shape[1]
    dtype = lp.dtype
    neg_inf = dtype.type(-np.inf)
    lp_ext = np.take_along_axis(lp, ext[None], axis=2)  # (T, N, L)
    # Skips read forwards: state s is left for s + 2 when s + 2 may be entered by a skip.
    skip_bias = np.full((n, L), neg_inf, dtype=dtype)
    skip_bias[:, :-2] = np.where(skip[:, 2:], dtype.type(0), neg_inf)
    end = np.full((n, L), neg_inf, dtype=dtype)
    end[np.arange(n), 2 * target_lengths] = 0  # the virtual beta_{T_n}
    beta = np.full((t_max + 1, n, L), neg_inf, dtype=dtype)
    beta[t_max] = np.where((input_lengths == t_max)[:, None], end, neg_inf)
    buf = np.full((n, L + 2), neg_inf, dtype=dtype)
    for t in range(t_max - 1, -1, -1):
        # Elements whose last step is t start here; the others carry beta_{t+1} (all -inf past T_n).
        buf[:, :L] = np.where((input_lengths == t + 1)[:, None], end, beta[t + 1]) if t + 1 < t_max else beta[t + 1]
        b = np.logaddexp(buf[:, :L], buf[:, 1:L + 1])
        np.logaddexp(b, buf[:, 2:] + skip_bias, out=b)
        np.add(b, lp_ext[t], out=beta[t])
    ab = alpha[1:] + beta[:t_max]  # (T, N, L); -inf off every complete path, and for t >= T_n
    safe_log_p = np.where(finite, log_p, dtype.type(0))
    with np.errstate(invalid="ignore"):  # ab - lp_ext is -inf - -inf where lp = -inf; masked next
        log_gamma = np.where(ab == neg_inf, neg_inf, ab - lp_ext) - safe_log_p[None, :, None]
    gamma = np.exp(log_gamma)
    gamma[:, ~finite] = 0
    # Sum the occupations of the states that emit each class: one bincount over (t, n, l'_s).
    index = (np.arange(t_max)[:, None, None] * n + np.arange(n)[None, :, None]) * c + ext[None]
    occupation = np.bincount(index.ravel(), weights=gamma.ravel(), minlength=t_max * n * c).reshape(lp.shape)
    active = (np.arange(t_max)[:, None] < input_lengths[None, :]) & finite[None, :]  # (T, N)
    out = np.where(active[..., None], np.exp(lp), dtype.type(0)) - occupation.astype(dtype)
    return out.astype(dtype, copy=False)


# ------------------------------------------------------------------ numba
def compiled() -> dict:
    """The compiled kernels of :mod:`.numba_kernels` (imports numba on first use)."""
    global _kernels
    if _kernels is None:
        from . import numba_kernels

        _kernels = {"alpha": numba_kernels.alpha_kernel, "grad": numba_kernels.grad_kernel}
    return _kernels
