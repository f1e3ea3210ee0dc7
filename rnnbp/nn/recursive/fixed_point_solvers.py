"""The two solves behind ``nn.FixedPoint``: the forward iteration and the adjoint linear system.

Forward: h_{k+1} = f(x, h_k) until max|h_{k+1} - h_k| <= tol. Backward (recurrent
backpropagation, Almeida 1987, Pineda 1987): given g = dL/dh*, solve

    v = g + J^T v,      J = df/dh at (x, h*),

by the Neumann / Almeida-Pineda iteration v_{k+1} = g + J^T v_k, or by a Krylov
solver from ``scipy.sparse.linalg`` on (I - J^T) v = g. Either way J^T is only
ever applied to a vector, by a vector-Jacobian product through one step of f.
Each solve returns a :class:`SolveInfo`; callers decide whether a solve that did
not converge raises :class:`NotConvergedError`.
"""
from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

KRYLOV_METHODS = ("gmres", "bicgstab")
ADJOINT_METHODS = ("neumann",) + KRYLOV_METHODS
# GMRES keeps `restart` Krylov vectors of the size of h: the one memory cost of the
# backward that is not O(1), bounded here and independent of the forward iterations.
GMRES_RESTART = 20


@dataclass
class SolveInfo:
    """How one solve of a fixed-point layer went (``FixedPoint.last_forward`` / ``last_backward``).

    ``iterations`` counts evaluations of f (forward) or vector-Jacobian products through
    one step of f (backward, the extra one that measures a Krylov solver's final residual
    included). ``residual`` is, forward, max|h_k - h_{k-1}| over every unit of every row of
    the batch; backward, the relative residual ||g + J^T v - v||_2 / ||g||_2 of the adjoint
    system (for "neumann", the last update ||v_k - v_{k-1}||_2 / ||g||_2, which is the
    residual of v_{k-1}). A Krylov solve counts as ``converged`` when scipy reports success
    and the true residual is within 10 tol (scipy tests a residual it updates by recurrence,
    which drifts from the true one in float32).
    """

    stage: str        # "forward" or "backward"
    method: str       # "iteration", "bptt" (forward); "neumann", "gmres", "bicgstab" (backward)
    iterations: int
    residual: float
    tol: float
    converged: bool


class FixedPointError(RuntimeError):
    """A fixed-point solve failed; ``stage`` says which one and ``info`` (or None) how far it got."""

    def __init__(self, message: str, stage: str, info: SolveInfo | None = None):
        super().__init__(message)
        self.stage, self.info = stage, info


class NotConvergedError(FixedPointError):
    """A fixed-point solve hit its iteration limit with the residual above its tolerance."""


_FORWARD_HINT = (
    "the map is probably not contractive enough: lower the norm of its recurrent weights (e.g. "
    "FixedPointRNNCell(max_norm=0.9)), or raise max_iter or tol; strict=False returns the last iterate "
    "with a warning instead"
)


def not_converged_message(info: SolveInfo, max_iter: int) -> str:
    """The message of :class:`NotConvergedError` for ``info``: what, how far, and what to change."""
    if info.stage == "forward":
        return (
            f"FixedPoint forward did not converge: max|h_k - h_(k-1)| = {info.residual:.3g} after "
            f"{info.iterations} iterations (max_iter={max_iter}), tol={info.tol:g}; {_FORWARD_HINT}"
        )
    hint = ("raise backward_max_iter or backward_tol, or lower the norm of the recurrent weights; "
            "strict=False accepts the last iterate with a warning instead")
    if info.method == "neumann" and info.residual > 1.0:
        hint = ("the residual grew, so the Neumann iteration diverges: J = df/dh at the fixed point has "
                "spectral radius >= 1 (an unstable fixed point); backward='gmres' may still solve the "
                "system, or lower the norm of the recurrent weights")
    return (
        f"FixedPoint backward ({info.method}) did not converge: relative residual "
        f"||g + J^T v - v|| / ||g|| = {info.residual:.3g} after {info.iterations} vector-Jacobian products "
        f"(backward_max_iter={max_iter}), backward_tol={info.tol:g}; {hint}"
    )


def iterate(step: Callable, h, tol: float, max_iter: int, method: str = "iteration"):
    """Run h <- step(h) until max|step(h) - h| <= tol or ``max_iter`` steps; returns (h, SolveInfo).

    ``step`` maps a Tensor to a Tensor of the same shape (recorded on the tape or not:
    that is the caller's grad mode). A NaN or Inf raises :class:`FixedPointError` at once.
    """
    residual = math.inf
    for k in range(1, max_iter + 1):
        new = step(h)
        diff = new._data - h._data
        residual = float(np.max(np.abs(diff))) if diff.size else 0.0
        if not math.isfinite(residual):
            raise FixedPointError(
                f"FixedPoint forward: f(x, h) produced NaN or Inf at iteration {k} of {max_iter}; the iteration "
                f"diverges or the input x holds NaN/Inf; {_FORWARD_HINT}",
                "forward",
                SolveInfo("forward", method, k, residual, tol, False),
            )
        h = new
        if residual <= tol:
            return h, SolveInfo("forward", method, k, residual, tol, True)
    return h, SolveInfo("forward", method, max_iter, residual, tol, False)


def solve_adjoint(vjp: Callable[[np.ndarray], np.ndarray], g: np.ndarray, method: str, tol: float,
                  max_iter: int) -> tuple[np.ndarray, SolveInfo]:
    """Solve v = g + J^T v for v, where ``vjp(u)`` returns J^T u; returns (v, SolveInfo).

    Args:
        vjp: u (shape of h) -> J^T u (shape of h), one vector-Jacobian product through f.
        g: dL/dh*, the gradient arriving at the fixed point.
        method: "neumann" or a Krylov solver of ``scipy.sparse.linalg`` in ``KRYLOV_METHODS``.
        tol: relative residual ||g + J^T v - v||_2 / ||g||_2 to reach.
        max_iter: budget of vector-Jacobian products.
    """
    if not np.all(np.isfinite(g)):
        raise FixedPointError(
            "FixedPoint backward: the incoming gradient dL/dh* holds NaN or Inf (it comes from the layers "
            "and loss after the fixed point, not from the adjoint solve)",
            "backward",
        )
    g_norm = float(np.linalg.norm(g))
    if g_norm == 0.0:
        return np.zeros_like(g), SolveInfo("backward", method, 0, 0.0, tol, True)
    if method == "neumann":
        v, info = _neumann(vjp, g, g_norm, tol, max_iter)
    else:
        v, info = _krylov(vjp, g, g_norm, method, tol, max_iter)
    if not (math.isfinite(info.residual) and np.all(np.isfinite(v))):
        raise FixedPointError(
            f"FixedPoint backward ({method}): the adjoint v became NaN or Inf after {info.iterations} "
            "vector-Jacobian products; the adjoint iteration diverges (J = df/dh at the fixed point has "
            "spectral radius >= 1): lower the norm of the recurrent weights or use backward='gmres'",
            "backward",
            info,
        )
    return v, info


def _neumann(vjp, g, g_norm, tol, max_iter):
    """v_{k+1} = g + J^T v_k from v_0 = g: the partial sums of the Neumann series sum_k (J^T)^k g."""
    v, residual = g, math.inf
    for k in range(1, max_iter + 1):
        new = g + vjp(v)
        with np.errstate(over="ignore", invalid="ignore"):  # a diverging series is reported, not warned
            residual = float(np.linalg.norm(new - v)) / g_norm
        v = new
        if not math.isfinite(residual):
            return v, SolveInfo("backward", "neumann", k, residual, tol, False)
        if residual <= tol:
            return v, SolveInfo("backward", "neumann", k, residual, tol, True)
    return v, SolveInfo("backward", "neumann", max_iter, residual, tol, False)


def _krylov(vjp, g, g_norm, method, tol, max_iter):
    """(I - J^T) v = g by a Krylov solver of scipy, J^T applied through a LinearOperator."""
    from scipy.sparse import linalg as sla

    shape, dtype, count = g.shape, g.dtype, [0]

    def matvec(u):
        count[0] += 1
        u = np.asarray(u, dtype=dtype).reshape(shape)
        return (u - vjp(u)).ravel()

    n = g.size
    operator = sla.LinearOperator((n, n), matvec=matvec, dtype=dtype)
    solver = getattr(sla, method)
    kwargs = {_rtol_name(solver): tol, "atol": 0.0, "x0": g.ravel().copy()}
    budget = max(max_iter, 4) - 1  # one product is kept for the final residual
    if method == "gmres":
        # scipy counts restart cycles: one product for the initial residual, then restart + 1 a cycle.
        restart = min(GMRES_RESTART, budget - 2)
        kwargs.update(restart=restart, maxiter=max(1, (budget - 1) // (restart + 1)))
    else:  # bicgstab: one product for the initial residual, then two per iteration
        kwargs.update(maxiter=max(1, (budget - 1) // 2))
    flat, status = solver(operator, g.ravel(), **kwargs)
    v = np.asarray(flat, dtype=dtype).reshape(shape)
    # The solver's own test uses its recurrence for the residual; measure the true one.
    residual = float(np.linalg.norm(g - matvec(v).reshape(shape))) / g_norm
    converged = status == 0 and residual <= 10 * tol  # slack for float32 round-off in the recurrence
    return v, SolveInfo("backward", method, count[0], residual, tol, converged)


def _rtol_name(solver) -> str:
    """scipy >= 1.12 calls the relative tolerance ``rtol``; older releases call it ``tol``."""
    return "rtol" if "rtol" in inspect.signature(solver).parameters else "tol"
