"""Running products, extremes and log-sum-exps along one dim: ``cumprod``, ``cummax``, ``cummin``,
``logcumsumexp``, with PyTorch's names, signatures, dtypes and gradients. (``cumsum``, the running
sum, lives with the counting ops in :mod:`.counting`; these follow its conventions.)

Each differentiable scan is one ``Function``, forward and backward side by side:

* ``cumprod``: ``dL/dx_k = sum_{i >= k} g_i prod_{j <= i, j != k} x_j``. Without zeros that is
  the reversed cumulative sum of ``g * y`` over ``x``; with zeros a division by ``x`` is wrong, so
  the backward splits each lane at its first zero ``z1`` (and second ``z2``), as PyTorch's
  ``cumprod_backward`` does: before ``z1`` the division is safe (it only sums outputs before the
  zero), at ``z1`` the gradient is ``y_{z1-1} * sum_{z1 <= i < z2} g_i prod_{z1 < j <= i} x_j``,
  after ``z1`` it is 0.
* ``cummax`` / ``cummin``: each output copies one input, so its gradient goes to that input (a
  scatter-add of the upstream gradient at the returned indices).
* ``logcumsumexp``: ``dL/dx_k = sum_{i >= k} g_i exp(x_k - y_i)``, summed in the log domain over
  the positive and negative parts of ``g`` separately (TensorFlow's and PyTorch's formula), so no
  ``exp`` overflows however large or small the inputs.

dtypes as in PyTorch: integer and bool inputs to ``cumprod`` multiply in int64 (a constant result);
``cummax``/``cummin`` keep the input's dtype and return int64 indices; ``logcumsumexp`` takes floats
only. float32 and float16 running products and log-sum-exps accumulate in float64 and float32 and
round each output once, as PyTorch's CPU kernels do.
"""
from __future__ import annotations

import numpy as np

from ..dtypes import as_dtype
from ..function import Function
from ..tensor import Tensor, ValuesIndices
from .promotion import cast, check_dim, constant_result

__all__ = ["cummax", "cummin", "cumprod", "logcumsumexp"]

# The dtype a running product or log-sum-exp accumulates in (PyTorch's CPU ``acc_type``).
_ACCUMULATE = {np.dtype(np.float16): np.dtype(np.float32), np.dtype(np.float32): np.dtype(np.float64)}


def _tensor(x) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


def _reversed_cumsum(a: np.ndarray, axis: int) -> np.ndarray:
    """``out_k = sum_{i >= k} a_i`` along ``axis``."""
    return np.flip(np.cumsum(np.flip(a, axis), axis=axis, dtype=a.dtype), axis)


def _scan(ufunc, x: np.ndarray, axis: int) -> np.ndarray:
    """``ufunc.accumulate`` along ``axis`` in the accumulation dtype, rounded back to ``x``'s."""
    acc = _ACCUMULATE.get(x.dtype, x.dtype)
    return ufunc.accumulate(x.astype(acc, copy=False), axis=axis, dtype=acc).astype(x.dtype, copy=False)


# ------------------------------------------------------------------ cumprod
def _cumprod_grad(x: np.ndarray, y: np.ndarray, g: np.ndarray, axis: int) -> np.ndarray:
    """dL/dx of ``y = cumprod(x)`` along ``axis`` for upstream ``g``; exact where ``x`` holds zeros.

    Shape: x, y, g (*) with at least 2 entries along ``axis``.
    """
    w = y * g
    is_zero = x == 0
    if not is_zero.any():
        return _reversed_cumsum(w, axis) / x
    zeros_so_far = np.cumsum(is_zero, axis=axis)       # 0 before the first zero, 1 from it to the second
    before = zeros_so_far == 0                          # k < z1: dividing by x_k is safe there
    with np.errstate(divide="ignore", invalid="ignore"):
        head = _reversed_cumsum(np.where(before, w, 0), axis) / np.where(before, x, 1)
    gx = np.where(before, head, 0).astype(g.dtype, copy=False)
    first = is_zero & (zeros_so_far == 1)               # k = z1 (no entry in a lane without zeros)
    between = (zeros_so_far == 1) & ~first              # z1 < j < z2
    partial = np.cumprod(np.where(between, x, 1), axis=axis, dtype=x.dtype)   # prod_{z1 < j <= i} x_j
    tail = (partial * np.where(zeros_so_far == 1, g, 0)).sum(axis=axis, keepdims=True)  # over z1 <= i < z2
    z1 = np.argmax(is_zero, axis=axis, keepdims=True)
    prefix = np.take_along_axis(y, np.maximum(z1 - 1, 0), axis=axis)          # y_{z1-1} = prod_{j < z1} x_j
    prefix = np.where(z1 == 0, 1, prefix).astype(g.dtype, copy=False)
    return np.where(first, tail * prefix, gx)


class CumProd(Function):
    """Running product along ``axis``: ``out[..., i, ...] = prod_{j <= i} x[..., j, ...]``.

    Backward: see :func:`_cumprod_grad` (correct with one zero or several in a lane).
    """

    @staticmethod
    def forward(ctx, x, axis):
        y = x.copy() if x.ndim == 0 else _scan(np.multiply, x, axis)
        ctx.x, ctx.y, ctx.axis = x, y, axis
        return y

    @staticmethod
    def backward(ctx, grad):
        x, axis = ctx.x, ctx.axis
        if x.ndim == 0 or x.shape[axis] <= 1 or x.size == 0:
            return grad  # y = x there
        return _cumprod_grad(x, ctx.y, grad, axis)


def cumprod(x, dim, *, dtype=None) -> Tensor:
    """The cumulative product of ``x`` along ``dim`` (``torch.cumprod``). Shape: the input's.

    ``dtype``: cast the input to it first (a float-to-float cast keeps the gradient, which comes
    back in the input's dtype). Without it, integer and bool inputs multiply in int64 as in
    PyTorch, a constant result; floats keep their dtype. The gradient is exact where ``x`` holds
    zeros (no division by ``x``). A 0-d tensor accepts dim 0 or -1 and is returned as a copy.
    """
    x = _tensor(x)
    axis = check_dim(dim, x.ndim, x.shape, "cumprod")
    if dtype is not None:
        x = cast(x, as_dtype(dtype))
    elif x.dtype.kind in "biu":
        x = cast(x, np.int64)
    if x.dtype.kind != "f":
        data = x._data
        return constant_result(data.copy() if data.ndim == 0 else np.cumprod(data, axis=axis, dtype=data.dtype),
                               "cumprod (integer)")
    return CumProd.apply(x, axis=axis)


# ------------------------------------------------------------- cummax / cummin
class CumExtreme(Function):
    """Running max or min along ``axis``; the output is the values, ``ctx.indices`` where they came from.

    Each output equals the input at its index, so backward scatter-adds the gradient there.
    """

    @staticmethod
    def forward(ctx, x, axis, values, indices):
        ctx.indices, ctx.axis = indices, axis
        return values  # computed once by the caller, which also needs them for the indices

    @staticmethod
    def backward(ctx, grad):
        indices, axis = ctx.indices, ctx.axis
        if grad.ndim == 0 or grad.size == 0:
            return grad
        # One lane per row of a (rows, n) view: a flat bincount adds every gradient to its source.
        g = np.moveaxis(grad, axis, -1)
        idx = np.moveaxis(indices, axis, -1)
        n = g.shape[-1]
        rows = np.arange(g.size // max(n, 1)).reshape(g.shape[:-1] + (1,)) * n
        flat = np.bincount((rows + idx).ravel(), weights=g.ravel(), minlength=g.size)
        return np.moveaxis(flat.astype(grad.dtype, copy=False).reshape(g.shape), -1, axis)


class CumMax(CumExtreme):
    """``cummax``'s node (its own class, so errors and ``grad_fn`` name it)."""


class CumMin(CumExtreme):
    """``cummin``'s node."""


def _cumextreme_values(x: np.ndarray, axis: int, mode: str) -> np.ndarray:
    if x.ndim == 0:
        return x.copy()
    return (np.maximum if mode == "max" else np.minimum).accumulate(x, axis=axis)


def _cumextreme_indices(x: np.ndarray, values: np.ndarray, axis: int) -> np.ndarray:
    """PyTorch's index rule: position i takes over where ``x_i`` ties or beats the running extreme
    (so ties give the last index), or is NaN (a NaN takes over and stays; later NaNs take over)."""
    if x.ndim == 0:
        return np.zeros((), dtype=np.int64)
    takes_over = x == values
    if x.dtype.kind == "f":
        takes_over |= np.isnan(x)
    shape = [1] * x.ndim
    shape[axis] = x.shape[axis]
    positions = np.where(takes_over, np.arange(x.shape[axis], dtype=np.int64).reshape(shape), 0)
    return np.maximum.accumulate(positions, axis=axis) if x.size else positions


def _cumextreme(x, dim, mode: str) -> ValuesIndices:
    op = f"cum{mode}"
    x = _tensor(x)
    axis = check_dim(dim, x.ndim, x.shape, op)
    data = x._data
    values = _cumextreme_values(data, axis, mode)
    indices = _cumextreme_indices(data, values, axis)
    index_tensor = constant_result(indices, f"{op} indices")
    if data.dtype.kind != "f":
        return ValuesIndices(constant_result(values, f"{op} (integer)"), index_tensor)
    cls = CumMax if mode == "max" else CumMin
    return ValuesIndices(cls.apply(x, axis=axis, values=values, indices=indices), index_tensor)


def cummax(x, dim) -> ValuesIndices:
    """The running maximum of ``x`` along ``dim`` and where each came from (``torch.cummax``).

    Returns the named tuple ``(values, indices)``, both of the input's shape: values in the
    input's dtype (differentiable for floats), indices int64. Ties take the later index, and a
    NaN takes over from where it appears (later NaNs take over in turn), as in PyTorch. The
    gradient of each value goes to the entry its index names.
    """
    return _cumextreme(x, dim, "max")


def cummin(x, dim) -> ValuesIndices:
    """The running minimum of ``x`` along ``dim`` and where each came from (``torch.cummin``).

    As :func:`cummax`, with the minimum: ties take the later index, NaNs take over.
    """
    return _cumextreme(x, dim, "min")


# ------------------------------------------------------------- logcumsumexp
def _logcumsumexp_array(x: np.ndarray, axis: int) -> np.ndarray:
    """``log(cumsum(exp(x)))`` along ``axis`` without overflow: a running ``logaddexp``."""
    if x.ndim == 0:
        return x.copy()
    return _scan(np.logaddexp, x, axis)


def _reversed_logcumsumexp(a: np.ndarray, axis: int) -> np.ndarray:
    return np.flip(_logcumsumexp_array(np.flip(a, axis), axis), axis)


class LogCumSumExp(Function):
    """``y_i = log sum_{j <= i} exp(x_j)`` along ``axis``.

    Backward: ``dL/dx_k = exp(x_k) sum_{i >= k} g_i exp(-y_i)``, as
    ``exp(x_k + rlcse(log g+ - y)_k) - exp(x_k + rlcse(log g- - y)_k)`` with ``rlcse`` the reversed
    logcumsumexp and ``g+``, ``g-`` the positive and negative parts of ``g`` (``log 0`` stands in as
    the dtype's lowest value): every exponent stays bounded. A lane whose first entries are all -inf
    gets a NaN gradient there (the derivative is undefined), as in PyTorch.
    """

    @staticmethod
    def forward(ctx, x, axis):
        y = _logcumsumexp_array(x, axis)
        ctx.x, ctx.y, ctx.axis = x, y, axis
        return y

    @staticmethod
    def backward(ctx, grad):
        if grad.ndim == 0 or grad.size == 0:
            return grad
        x, y, axis = ctx.x, ctx.y, ctx.axis
        lowest = np.finfo(grad.dtype).min
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            log_abs = np.log(np.abs(grad))
            positive = np.where(grad > 0, log_abs, lowest) - y
            negative = np.where(grad < 0, log_abs, lowest) - y
            return (np.exp(_reversed_logcumsumexp(positive, axis) + x)
                    - np.exp(_reversed_logcumsumexp(negative, axis) + x))


def logcumsumexp(x, dim) -> Tensor:
    """``log(cumsum(exp(x), dim))`` computed without overflow (``torch.logcumsumexp``).

    Shape: the input's. Floating inputs only (PyTorch implements no integer version either);
    differentiable. Used for running normalisers in log space (CTC-like recursions, log-domain
    attention over prefixes).
    """
    x = _tensor(x)
    axis = check_dim(dim, x.ndim, x.shape, "logcumsumexp")
    if x.dtype.kind != "f":
        raise TypeError(
            f"logcumsumexp: expected a floating-point tensor, got dtype {x.dtype} (shape {x.shape}); "
            "cast it first, e.g. x.float()"
        )
    return LogCumSumExp.apply(x, axis=axis)
