"""What the fused layer-norm LSTM and GRU share: row-wise layer norm and the input side over all steps.

Layer norm of one row v (G,), as ``F.layer_norm`` (biased variance, eps inside the root)::

    v_hat = (v - mean(v)) * rstd,   rstd = 1 / sqrt(mean((v - mean(v))^2) + eps)
    y = v_hat * gain + shift

and its backward, from dy::

    d_gain += dy * v_hat;   d_shift += dy
    dv = rstd * (dv_hat - mean(dv_hat) - v_hat * mean(dv_hat * v_hat)),   dv_hat = dy * gain

The input side of a layer-norm cell depends on x only, so it runs once over all T * B
rows before the recurrence (one matrix product, one vectorised layer norm) and its
backward once after it (one layer-norm backward, then dx and dW_ih as one product
each). These are the NumPy versions (the reference, and the per-step path's);
``layernorm_compiled`` has the same in numba.

Inputs of both layers, after x, the initial states and the weights: the gate bias
``bias`` (or None), then (gain, shift) of ``layernorm_ih`` and of ``layernorm_hh``
(and, for the LSTM, of ``layernorm_c``), in the cells' parameter order.
"""
from __future__ import annotations

import numpy as np

from . import backends, numba_steps


def normalise(v: np.ndarray, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """Layer norm over the last axis without gain and shift. Shape: (..., G) -> (v_hat (..., G), rstd (...))."""
    centred = v - v.mean(axis=-1, keepdims=True)
    rstd = 1.0 / np.sqrt((centred * centred).mean(axis=-1) + eps)
    return centred * rstd[..., None], rstd.astype(v.dtype, copy=False)


def normalise_backward(dv_hat: np.ndarray, v_hat: np.ndarray, rstd: np.ndarray) -> np.ndarray:
    """dL/dv from dL/dv_hat. Shape: (..., G), (..., G), (...) -> (..., G)."""
    m1 = dv_hat.mean(axis=-1, keepdims=True)
    m2 = (dv_hat * v_hat).mean(axis=-1, keepdims=True)
    return rstd[..., None] * (dv_hat - m1 - v_hat * m2)


def input_forward(x: np.ndarray, w_ih: np.ndarray, bias, gain: np.ndarray, shift: np.ndarray, eps: float):
    """The input side for all steps: a = LN_ih(x W_ih^T) + bias.

    Shape: x (T, B, I), w_ih (G, I) -> (a (T, B, G), x_hat (T*B, G), rstd (T*B,)).
    """
    T, B, I = x.shape
    x_hat, rstd = normalise(x.reshape(T * B, I) @ w_ih.T, eps)
    a = x_hat * gain + shift
    if bias is not None:
        a += bias
    return a.reshape(T, B, -1), x_hat, rstd


def input_backward(da: np.ndarray, x: np.ndarray, w_ih: np.ndarray, x_hat: np.ndarray, rstd: np.ndarray,
                   gain: np.ndarray, need_x: bool, need_w: bool):
    """Gradients through the input side from da = dL/da (T, B, G), each one pass over all steps.

    Returns (d_x (T, B, I) or None, d_wih (G, I) or None, d_gain (G,), d_shift (G,)); d_shift is
    also the gate bias's gradient.
    """
    T, B, G = da.shape
    d2 = da.reshape(T * B, G)
    d_gain = (d2 * x_hat).sum(axis=0)
    d_shift = d2.sum(axis=0)
    dxg = normalise_backward(d2 * gain, x_hat, rstd)  # dL/d(x W_ih^T), (T*B, G)
    d_x = (dxg @ w_ih).reshape(x.shape) if need_x else None
    d_w = dxg.T @ x.reshape(T * B, -1) if need_w else None
    return d_x, d_w, d_gain, d_shift


def compiled(backend: str, dtype, record) -> bool:
    """Whether the compiled loops run: numba for ``backend`` and ``dtype`` (see ``backends``), and no
    gradient probe (whose per-step callback needs the Python loop over steps)."""
    return record is None and backends.steps(backend, dtype) is numba_steps


def param_grads(need, first: int, grads) -> list:
    """The gradients of the inputs from index ``first`` on, each a fresh array where asked for, else None.

    ``grads``: one array per input (the same array may stand for several inputs; it is copied then).
    """
    out, seen = [], set()
    for k, g in enumerate(grads):
        if not need[first + k] or g is None:
            out.append(None)
            continue
        out.append(g.copy() if id(g) in seen else g)
        seen.add(id(g))
    return out
