"""Fixed-point layers trained by recurrent backpropagation (Almeida 1987, Pineda 1987; Liao et al. 2018).

``FixedPoint(f)`` returns the equilibrium h* = f(x, h*) of any module ``f``, found by
iterating h <- f(x, h), and differentiates it *implicitly*: by the implicit function
theorem, with J = df/dh at (x, h*),

    dL/dx = J_x^T v,   dL/dtheta = J_theta^T v,   where   v = dL/dh* + J^T v.

The adjoint v is solved by the same kind of iteration run backwards (the Almeida-Pineda /
Neumann recurrence) or by a Krylov solver of scipy, with J^T applied by vector-Jacobian
products through *one* step of f rebuilt at h*. Nothing of the forward iterations is
kept, so memory does not grow with their number, unlike backpropagation through the
unrolled iterations (``backward="bptt"``, kept as the reference).

``FixedPointRNNCell`` is the common f: h = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh) with
W_hh rescaled so that the map is a contraction and both solves converge.
"""
from __future__ import annotations

import math
import numbers
import warnings

import numpy as np

from ...autograd.engine import grad_arrays as autograd_grad
from ...autograd.function import Function
from ...autograd.grad_mode import enable_grad, no_grad
from ...autograd.ops import maximum
from ...autograd.tensor import Tensor
from ...validation import check_int
from .fixed_point_solvers import (
    ADJOINT_METHODS, FixedPointError, NotConvergedError, SolveInfo, iterate, not_converged_message, solve_adjoint,
)
from ..module import Module
from ..recurrent.cells import RNNCell, rnn_cell

__all__ = ["FixedPoint", "FixedPointRNNCell", "FixedPointError", "NotConvergedError", "SolveInfo"]

BACKWARD_METHODS = ADJOINT_METHODS + ("bptt",)


class FixedPoint(Module):
    """The fixed point h* = f(x, h*) of a module, differentiated by recurrent backpropagation.

    Forward iterates h_{k+1} = f(x, h_k) from h0 without recording a graph, until every
    unit of every row of the batch moves by at most ``tol`` in one step
    (max|h_{k+1} - h_k| <= tol, an absolute test: units of a tanh cell live in [-1, 1]).
    For a map contracting at rate q < 1 the result is then within q / (1 - q) * tol of
    the true fixed point (e.g. 9 tol at q = 0.9), and so, to first order, are the gradients.
    A batch iterates until its slowest row has converged, so each row's result equals what
    it gets alone to within the tolerance, not bit for bit.
    The result is one graph node with inputs x and f's parameters whose backward solves
    the adjoint v = g + J^T v (g = dL/dh*, J = df/dh at h*) and returns J_x^T v and
    J_theta^T v. Only x, h* and one step of f are held for backward, whatever the number
    of forward iterations.

    ``f`` is called like rnnbp's cells, ``f(x, h) -> h'`` (the order of
    ``nn.RNNCell(input, hx)``), so any cell with that call is a valid f; tensors f closes
    over other than its own parameters and x get no gradient. f must be deterministic
    (no dropout in training mode) for the fixed point to exist.

    Args:
        f: Module, the map; its parameters are the ones trained.
        tol : float >= 0: forward tolerance on max|h_{k+1} - h_k|.
        max_iter : int > 0: forward iteration limit (evaluations of f).
        backward: how the gradient is computed:
            ``"neumann"``: the Almeida-Pineda iteration v_{k+1} = g + J^T v_k (converges when
            J contracts, as the forward iteration does; no memory beyond a few vectors);
            ``"gmres"`` / ``"bicgstab"``: ``scipy.sparse.linalg`` on (I - J^T) v = g (fewer
            products when J contracts slowly, and they also solve at fixed points where the
            Neumann series diverges; GMRES keeps up to 20 vectors of h's size);
            ``"bptt"``: record every forward iteration on the tape and backpropagate
            through them all (memory and time grow with the iterations; the reference).
        backward_tol : float > 0: relative residual ||g + J^T v - v||_2 / ||g||_2 to reach;
            defaults to ``tol``.
        backward_max_iter : int > 0: budget of vector-Jacobian products, the Krylov solvers' initial
            and final residuals included (at least 4 for them); defaults to ``max_iter``.
        strict: raise :class:`NotConvergedError` when a solve reaches its limit first (True),
            or warn and use the last iterate (False). NaN or Inf always raises
            :class:`FixedPointError`.

    Shape:
        x: (N, H_in) or what f takes, a Tensor; h0 and the output: (N, H), f's state
        (zeros of (N, f.state_size) when h0 is omitted; h0 only sets where the iteration
        starts and gets no gradient).

    Attributes:
        last_forward: :class:`SolveInfo` of the latest forward (iterations, residual, converged).
        last_backward: :class:`SolveInfo` of the latest adjoint solve (None with "bptt").

    Example::

        layer = nn.FixedPoint(nn.FixedPointRNNCell(64, 32, max_norm=0.9), tol=1e-4)
        h = layer(x)                    # (N, 32), x (N, 64)
        loss = head(h).sum(); loss.backward()
        layer.last_forward.iterations, layer.last_backward.residual
    """

    def __init__(self, f: Module, tol: float = 1e-5, max_iter: int = 200, backward: str = "neumann",
                 backward_tol: float | None = None, backward_max_iter: int | None = None, strict: bool = True):
        super().__init__()
        if not isinstance(f, Module):
            raise TypeError(f"FixedPoint: f must be a Module called as f(x, h) -> h, got {type(f).__name__}")
        if backward not in BACKWARD_METHODS:
            raise ValueError(f"FixedPoint: backward must be one of {BACKWARD_METHODS}, got {backward!r}")
        inherited = backward_tol is None
        backward_tol = tol if inherited else backward_tol
        backward_max_iter = max_iter if backward_max_iter is None else backward_max_iter
        for name, value in (("tol", tol), ("backward_tol", backward_tol)):
            if not isinstance(value, numbers.Real) or isinstance(value, bool) or not 0 <= value < math.inf:
                raise ValueError(f"FixedPoint: {name} must be a finite number >= 0, got {value!r}")
        if backward in ADJOINT_METHODS and backward_tol == 0:
            origin = " (it defaults to tol, which is 0: pass backward_tol)" if inherited else ""
            raise ValueError(f"FixedPoint: backward_tol must be > 0{origin}; a relative residual of 0 is never "
                             "reached")
        for name, value in (("max_iter", max_iter), ("backward_max_iter", backward_max_iter)):
            check_int("FixedPoint", name, value)
        self.f = f
        self.tol, self.max_iter, self.backward = float(tol), int(max_iter), backward
        self.backward_tol, self.backward_max_iter = float(backward_tol), int(backward_max_iter)
        self.strict = bool(strict)
        self.last_forward: SolveInfo | None = None
        self.last_backward: SolveInfo | None = None

    def forward(self, x, h0=None) -> Tensor:
        x = x if isinstance(x, Tensor) else Tensor(x)
        h = self._initial_state(x, h0)
        step = self._step(x)
        if self.backward == "bptt":
            h, info = iterate(step, h, self.tol, self.max_iter, "bptt")
            self.last_forward, self.last_backward = info, None
            self._accept(info, self.max_iter)
            return h
        with no_grad():
            h, info = iterate(step, h, self.tol, self.max_iter)
        self.last_forward = info
        self._accept(info, self.max_iter)
        return _ImplicitFixedPoint.apply(x, *self.f.parameters(), h_star=h._data, layer=self)

    def _initial_state(self, x: Tensor, h0) -> Tensor:
        if h0 is not None:
            h0 = h0.detach() if isinstance(h0, Tensor) else Tensor(h0)
            if not np.all(np.isfinite(h0._data)):
                raise FixedPointError("FixedPoint: h0 holds NaN or Inf", "forward")
            return h0
        size = getattr(self.f, "state_size", None)
        if not isinstance(size, (int, np.integer)):
            raise ValueError(
                f"FixedPoint: pass h0, the state to start from: {type(self.f).__name__} has no integer "
                "state_size to make zeros of"
            )
        return Tensor(np.zeros(x.shape[:-1] + (int(size),), dtype=x.dtype))

    def _step(self, x: Tensor):
        """h -> f(x, h), checking on the first call that f keeps h's shape and dtype."""
        checked = []

        def step(h: Tensor) -> Tensor:
            new = self.f(x, h)
            if not checked:
                if not isinstance(new, Tensor) or new.shape != h.shape or new.dtype != h.dtype:
                    got = (f"shape {new.shape} and dtype {new.dtype}" if isinstance(new, Tensor)
                           else type(new).__name__)
                    raise ValueError(
                        f"FixedPoint: f(x, h) must return a state like h, got {got} for h of shape {h.shape} "
                        f"and dtype {h.dtype}; check h0 (or f's state_size) against f's output"
                    )
                checked.append(True)
            return new

        return step

    def _accept(self, info: SolveInfo, max_iter: int) -> None:
        """Raise (strict) or warn when a solve stopped at its limit."""
        if info.converged:
            return
        message = not_converged_message(info, max_iter)
        if self.strict:
            raise NotConvergedError(message, info.stage, info)
        warnings.warn(message, RuntimeWarning, stacklevel=3)

    def _adjoint_gradients(self, x: np.ndarray, h_star: np.ndarray, g: np.ndarray, needs: tuple) -> tuple:
        """(dL/dx, *dL/dtheta) for dL/dh* = g: solve the adjoint at h*, then one more VJP."""
        params = list(self.f.parameters())
        with enable_grad():
            h = Tensor(h_star, requires_grad=True)
            xt = Tensor(x, requires_grad=needs[0])
            out = self.f(xt, h)  # one step of f at h*, the only graph the backward keeps

        def vjp(u: np.ndarray) -> np.ndarray:  # J^T u
            found = autograd_grad(out, h, u, retain_graph=True, allow_unused=True)[0]
            return np.zeros_like(u) if found is None else found  # None: f ignores h, J = 0

        v, info = solve_adjoint(vjp, g, self.backward, self.backward_tol, self.backward_max_iter)
        self.last_backward = info
        self._accept(info, self.backward_max_iter)
        targets = [t for t, need in zip([xt] + params, needs) if need]
        found = iter(autograd_grad(out, targets, v, allow_unused=True))
        return tuple(next(found) if need else None for need in needs)

    def extra_repr(self) -> str:
        defaults = {"tol": 1e-5, "max_iter": 200, "backward": "neumann", "backward_tol": self.tol,
                    "backward_max_iter": self.max_iter, "strict": True}
        return ", ".join(f"{name}={getattr(self, name)!r}" for name, default in defaults.items()
                         if getattr(self, name) != default)


class _ImplicitFixedPoint(Function):
    """h* as a function of (x, *theta): forward hands out the solved h*, backward solves the adjoint."""

    @staticmethod
    def forward(ctx, x, *params, h_star, layer):
        ctx.x, ctx.h_star, ctx.layer = x, h_star, layer
        return h_star

    @staticmethod
    def backward(ctx, grad):
        return ctx.layer._adjoint_gradients(ctx.x, ctx.h_star, grad, ctx.needs_input_grad)


class FixedPointRNNCell(RNNCell):
    """An Elman cell kept contractive, the usual map of a fixed-point layer.

    h' = act(x W_ih^T + b_ih + h W~_hh^T + b_hh), act = tanh or relu, where each row of
    W~_hh is the row of ``weight_hh`` scaled down, if needed, to an absolute sum of at most
    ``max_norm``:

        W~_hh[i] = weight_hh[i] * max_norm / max(max_norm, sum_j |weight_hh[i, j]|).

    Why: act is 1-Lipschitz elementwise, so ||h'_1 - h'_2||_inf <= ||W~_hh||_inf ||h_1 - h_2||_inf
    <= max_norm ||h_1 - h_2||_inf: with max_norm < 1 the map is a contraction for every x,
    the forward iteration converges (geometrically, at rate max_norm or faster) to a unique
    fixed point, and so does the Neumann adjoint iteration (||J^T||_1 = ||J||_inf <= max_norm).
    The rescaling is part of the graph, so training moves ``weight_hh`` freely and the bound
    holds after every optimizer step. ``max_norm=None`` turns it off (PyTorch's RNNCell).

    Parameters have PyTorch's names and layout (``weight_ih`` (H, I), ``weight_hh`` (H, H),
    ``bias_ih``, ``bias_hh`` (H,)), initialised U(-1/sqrt(H), 1/sqrt(H)); the state dict holds
    the raw ``weight_hh``, :meth:`effective_weight_hh` the matrix used.

    Shape: input (N, I) or (I,); hx (N, H) or (H,), zeros when omitted -> h' like hx.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh",
                 max_norm: float | None = 0.9, dtype=None, generator=None):
        if max_norm is not None and not (isinstance(max_norm, (int, float)) and 0 < max_norm < np.inf):
            raise ValueError(f"FixedPointRNNCell: max_norm must be a positive number or None, got {max_norm!r}")
        super().__init__(input_size, hidden_size, bias, nonlinearity, dtype=dtype, generator=generator)
        self.max_norm = None if max_norm is None else float(max_norm)

    def effective_weight_hh(self) -> Tensor:
        """W~_hh (H, H): ``weight_hh`` with each row's absolute sum capped at ``max_norm``."""
        w = self.weight_hh
        if self.max_norm is None:
            return w
        row_sums = w.abs().sum(dim=1, keepdim=True)  # (H, 1)
        return w * (self.max_norm / maximum(row_sums, self.max_norm))

    def forward(self, input, hx=None):
        batched = self._check(input, hx)
        h = self._zeros(input, batched) if hx is None else hx
        x2 = input if batched else input.unsqueeze(0)
        h2 = h if batched else h.unsqueeze(0)
        out = rnn_cell(x2, h2, self.weight_ih, self.effective_weight_hh(), self.bias_ih, self.bias_hh,
                       self.nonlinearity)
        return out if batched else out.squeeze(0)

    def extra_repr(self) -> str:
        extra = "" if self.max_norm == 0.9 else f", max_norm={self.max_norm}"
        return super().extra_repr() + extra
