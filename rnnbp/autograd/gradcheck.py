"""Gradient checking: analytic backward against central differences, in float64.

Each output ``y_k`` is projected on a fixed random direction ``v_k`` so that one
backward per output gives the full vector-Jacobian product, and each input
element is perturbed by +-eps to estimate the same quantity numerically:

    analytic[i][j] = d(sum_k <v_k, y_k>)/d x_i[j]       (from backward)
    numeric[i][j]  = (L(x_i[j] + eps) - L(x_i[j] - eps)) / (2 eps)

A random projection of the outputs catches any wrong Jacobian entry with
probability one. ``fast_mode=True`` also projects the inputs on a random
direction (two forward passes in all), for ops too big for the full check.
"""
from __future__ import annotations

import numpy as np

from .tensor import Tensor


class GradcheckError(RuntimeError):
    """The analytic gradient disagrees with the numerical one."""


def _as_tuple(outputs) -> tuple:
    return outputs if isinstance(outputs, (tuple, list)) else (outputs,)


def _projected(fn, inputs, directions) -> float:
    outs = _as_tuple(fn(*inputs))
    return float(sum(np.sum(o._data * v) for o, v in zip(outs, directions) if v is not None))


def gradcheck(fn, inputs, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              fast_mode: bool = False, seed: int = 0, raise_exception: bool = True) -> bool:
    """Check the analytic gradients of ``fn`` at ``inputs`` against central differences.

    Args:
        fn: callable taking the tensors in ``inputs`` and returning a Tensor or a tuple of them.
        inputs: sequence of Tensors; those with ``requires_grad`` are checked and must be float64.
        eps: perturbation for the central differences.
        atol, rtol: the check passes where ``|analytic - numeric| <= atol + rtol * |numeric|``.
        fast_mode: compare one random directional derivative per input instead of every element.
        seed: seed of the random projections.
        raise_exception: raise :class:`GradcheckError` on failure (else return False).

    Returns:
        True when every checked gradient agrees.
    """
    inputs = tuple(inputs)
    checked = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input requires grad, so there is nothing to check")
    for i in checked:
        if inputs[i].dtype != np.float64:
            raise TypeError(
                f"gradcheck: input {i} is {inputs[i].dtype}; gradcheck needs float64 inputs "
                "(float32 round-off swamps the finite differences): pass x.double()"
            )
    rng = np.random.default_rng(seed)
    outputs = _as_tuple(fn(*inputs))
    directions = [rng.standard_normal(o.shape) if o.requires_grad else None for o in outputs]
    if all(v is None for v in directions):
        raise GradcheckError("gradcheck: no output of fn requires grad")

    # Analytic: one backward of the projected outputs.
    for i in checked:
        inputs[i]._grad = None
    total = None
    for o, v in zip(outputs, directions):
        if v is not None:
            term = (o * Tensor(v)).sum()
            total = term if total is None else total + term
    total.backward()
    analytic = {}
    for i in checked:
        g = inputs[i]._grad
        if g is not None and g.dtype != np.float64:
            raise GradcheckError(f"gradcheck: gradient of input {i} is {g.dtype}, expected float64")
        analytic[i] = np.zeros(inputs[i].shape) if g is None else g.copy()
        inputs[i]._grad = None

    def fail(msg: str) -> bool:
        if raise_exception:
            raise GradcheckError(msg)
        return False

    if fast_mode:
        for i in checked:
            x = inputs[i]._data
            d = rng.standard_normal(x.shape)
            original = x.copy()
            x += eps * d
            plus = _projected(fn, inputs, directions)
            x[...] = original - eps * d
            minus = _projected(fn, inputs, directions)
            x[...] = original
            numeric = (plus - minus) / (2 * eps)
            exact = float(np.sum(analytic[i] * d))
            if not abs(exact - numeric) <= atol + rtol * abs(numeric):
                return fail(
                    f"gradcheck: directional derivative of the outputs along a random direction of "
                    f"input {i} (shape {x.shape}): analytic {exact:.10g}, numeric {numeric:.10g}"
                )
        return True

    for i in checked:
        x = inputs[i]._data
        numeric = np.zeros(x.shape)
        flat, nflat = x.reshape(-1), numeric.reshape(-1)
        if not np.shares_memory(flat, x):
            raise TypeError(f"gradcheck: input {i} must be a contiguous array")
        for j in range(flat.size):
            original = flat[j]
            flat[j] = original + eps
            plus = _projected(fn, inputs, directions)
            flat[j] = original - eps
            minus = _projected(fn, inputs, directions)
            flat[j] = original
            nflat[j] = (plus - minus) / (2 * eps)
        error = np.abs(analytic[i] - numeric) - (atol + rtol * np.abs(numeric))
        # A non-finite error (NaN/Inf on either side) is a failure, not a pass.
        if error.size and (not np.all(np.isfinite(error)) or np.max(error) > 0):
            worst = np.unravel_index(np.nanargmax(np.where(np.isfinite(error), error, np.inf)), x.shape)
            which = "the output" if len(outputs) == 1 else f"the {len(outputs)} outputs (projected)"
            return fail(
                f"gradcheck: gradient of {which} with respect to input {i} (shape {x.shape}) is wrong; "
                f"worst element {tuple(int(w) for w in worst)}: analytic {analytic[i][worst]:.10g}, "
                f"numeric {numeric[worst]:.10g} (atol={atol}, rtol={rtol})"
            )
    return True
