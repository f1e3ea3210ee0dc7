"""Loss functions as fused ops, with PyTorch's semantics and hand-written backwards.

Each loss is one :class:`Function`: the forward computes the per-element losses
and their reduction, the backward writes the gradient in closed form. For
cross-entropy that is ``(softmax(x) * sum_c q_c - q) * scale``, where ``q`` is the
weighted target distribution (one-hot, smoothed, or given as probabilities) and
``scale`` the upstream gradient over the normaliser. One node per loss instead of
a log_softmax, an index, a multiply and a mean keeps the graph short and the
memory to one (M, C) array.

Layouts follow ``torch.nn.functional``: the class axis of cross-entropy and NLL
inputs is axis 1, so the input is (N, C), (C,) or (N, C, d1, d2, ...) and class
index targets are (N,), () or (N, d1, d2, ...). Inside the ops the class axis is
moved last and the rest flattened to M = N * d1 * d2 * ... rows.

``weight`` and ``pos_weight`` are constants (no gradient flows to them), as in
PyTorch's fused losses. Targets given as float Tensors that require grad receive
a gradient (probability targets of cross-entropy, BCE targets, MSE/L1 targets).
All arithmetic runs in the input's dtype: float32 in gives float32 out and grads.
"""
from __future__ import annotations

import numpy as np

from ..function import Function
from ..tensor import Tensor
from .elementwise import Cast, Mul
from .nn import log_softmax_array
from .reduce import Mean, Sum

_REDUCTIONS = ("none", "mean", "sum")


# ------------------------------------------------------------------ helpers
def _check_reduction(op: str, reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{op}: reduction must be 'none', 'mean' or 'sum', got {reduction!r}")


def _float_input(op: str, x, what: str) -> Tensor:
    """``x`` as a Tensor of floating dtype (arrays are wrapped, never copied)."""
    if not isinstance(x, Tensor):
        x = Tensor(x)
    if x._data.dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating-point input ({what}), got {x._data.dtype}")
    return x


def _float_operand(x, dtype: np.dtype):
    """A float target or weight in ``dtype``: Tensors keep their graph (cast if needed)."""
    if isinstance(x, Tensor):
        if x._data.dtype == dtype:
            return x
        if x.requires_grad:
            return Cast.apply(x, dtype=dtype)
        return x._data.astype(dtype)
    return np.asarray(x).astype(dtype, copy=False)


def _constant(x, dtype: np.dtype | None = None):
    """A constant operand (weight, pos_weight) as an array of ``dtype``, or None."""
    if x is None:
        return None
    arr = np.asarray(x._data if isinstance(x, Tensor) else x)
    return arr if dtype is None else arr.astype(dtype, copy=False)


def _to_rows(a: np.ndarray) -> np.ndarray:
    """(C,) -> (1, C); (N, C) as is; (N, C, d1, ...) -> (N*d1*..., C) with classes last."""
    if a.ndim == 1:
        return a[None]
    if a.ndim == 2:
        return a
    return np.moveaxis(a, 1, -1).reshape(-1, a.shape[1])


def _from_rows(rows: np.ndarray, shape: tuple) -> np.ndarray:
    """Inverse of :func:`_to_rows`: (M, C) back to ``shape`` with classes on axis 1."""
    if len(shape) <= 2:
        return rows.reshape(shape)
    moved = rows.reshape((shape[0],) + shape[2:] + (shape[1],))
    return np.ascontiguousarray(np.moveaxis(moved, -1, 1))


def _reduce(loss: np.ndarray, reduction: str, norm, out_shape: tuple, dtype) -> np.ndarray:
    """Per-element losses -> the reduced loss; ``norm`` is the 'mean' denominator."""
    if reduction == "none":
        return loss.reshape(out_shape)
    total = loss.sum(dtype=dtype)
    if reduction == "sum":
        return np.asarray(total, dtype=dtype)
    if 0 < abs(norm) < np.inf:  # a finite nonzero denominator: no 0/0 or inf/inf to silence
        return np.asarray(total / dtype.type(norm), dtype=dtype)
    with np.errstate(invalid="ignore", divide="ignore"):  # 0/0 is NaN, as in PyTorch
        return np.asarray(total / dtype.type(norm), dtype=dtype)


def _scale(grad: np.ndarray, reduction: str, norm, dtype) -> np.ndarray:
    """dL/d(per-element loss): the upstream gradient, flattened or divided by ``norm``.

    A 'mean' over nothing (every target ignored, or zero total weight) has a NaN
    loss but zero gradients, as PyTorch's NLL backward gives.
    """
    if reduction == "none":
        return grad.reshape(-1)
    if reduction == "mean":
        if norm == 0:
            return np.zeros((), dtype=dtype)
        return grad / dtype.type(norm)
    return grad


def _class_shapes(op: str, shape: tuple) -> tuple:
    """Number of classes and the shape of a class-index target for an input of ``shape``."""
    if len(shape) == 0:
        raise ValueError(f"{op}: expected an input of shape (C,), (N, C) or (N, C, d1, ...), got a scalar")
    if len(shape) == 1:
        return shape[0], ()
    return shape[1], (shape[0],) + shape[2:]


def _class_weight(op: str, weight, n_classes: int, dtype) -> np.ndarray | None:
    weight = _constant(weight, dtype)
    if weight is not None and weight.shape != (n_classes,):
        raise ValueError(
            f"{op}: weight must have shape ({n_classes},), one value per class, got {weight.shape}"
        )
    return weight


def _check_indices(op: str, target: np.ndarray, n_classes: int, ignore_index: int) -> None:
    bad = (target != ignore_index) & ((target < 0) | (target >= n_classes))
    if bad.any():
        value = target[bad].flat[0]
        raise IndexError(
            f"{op}: target class index {value} is out of range for {n_classes} classes "
            f"(expected 0 <= target < {n_classes}, or ignore_index={ignore_index}); "
            f"{int(bad.sum())} target(s) out of range"
        )


def _index_rows(target: np.ndarray, weight, ignore_index: int, dtype):
    """Flattened targets with ignored ones set to class 0, and each row's weight w[y] (0 if ignored)."""
    t = target.reshape(-1)
    valid = (t != ignore_index).astype(dtype)  # 1.0 / 0.0 in the loss dtype: bool * float is float64
    safe = np.where(valid, t, 0)
    w_y = valid if weight is None else weight[safe] * valid
    return safe, valid, w_y


# ----------------------------------------------------------- cross-entropy
class CrossEntropy(Function):
    """Cross-entropy of logits against class indices or class probabilities, fused.

    With q the weighted target distribution of a row (Shape: M rows, C classes)::

        class indices:   q_c = (1 - eps) w_y [c == y] + (eps / C) w_c      (0 if y is ignored)
        probabilities:   q_c = ((1 - eps) t_c + eps / C) w_c
        loss            = -sum_c q_c log_softmax(x)_c
        dloss/dx_c      = softmax(x)_c sum_k q_k - q_c
        dloss/dt_c      = -(1 - eps) w_c log_softmax(x)_c                 (probabilities)

    'mean' divides by sum of w_y over non-ignored rows (class indices) or by M
    (probabilities), as PyTorch does.
    """

    @staticmethod
    def forward(ctx, x, target, weight=None, ignore_index=-100, reduction="mean",
                label_smoothing=0.0, probabilities=False, plain=False):
        dtype = x.dtype
        n_classes, out_shape = _class_shapes("cross_entropy", x.shape)
        eps = label_smoothing
        logp = log_softmax_array(_to_rows(x), 1)  # (M, C)
        ctx.plain = plain
        if plain:
            # The common case, in fewer steps (same numbers): class indices, every one valid,
            # no class weights, no smoothing, so q is one-hot and each row weighs 1.
            safe = target.reshape(-1).copy()  # the caller may write into its target before backward
            loss = -logp[np.arange(logp.shape[0]), safe]
            norm = logp.shape[0]
            ctx.safe = safe
        elif probabilities:
            q = _to_rows(target)
            if eps:
                q = q * (1 - eps) + eps / n_classes
            if weight is not None:
                q = q * weight
            loss = -(q * logp).sum(axis=1)
            norm = logp.shape[0]
            ctx.q = q
        else:
            safe, valid, w_y = _index_rows(target, weight, ignore_index, dtype)
            rows = np.arange(logp.shape[0])
            loss = -(1 - eps) * w_y * logp[rows, safe]
            if eps:
                smooth = -(logp.sum(axis=1) if weight is None else logp @ weight)
                loss = loss + (eps / n_classes) * valid * smooth
            # An ignored row adds nothing, even when its logits are NaN or Inf (0 * NaN would be NaN).
            loss = np.where(valid > 0, loss, dtype.type(0))
            norm = w_y.sum()
            ctx.safe, ctx.valid, ctx.w_y = safe, valid, w_y
        ctx.logp, ctx.weight, ctx.norm, ctx.eps = logp, weight, norm, eps
        ctx.reduction, ctx.probabilities, ctx.shape = reduction, probabilities, x.shape
        return _reduce(loss, reduction, norm, out_shape, dtype)

    @staticmethod
    def backward(ctx, grad):
        logp, weight, eps = ctx.logp, ctx.weight, ctx.eps
        n_rows, n_classes = logp.shape
        scale = _scale(grad, ctx.reduction, ctx.norm, logp.dtype)
        scale_rows = scale[:, None] if scale.ndim else scale
        need_x, need_t = ctx.needs_input_grad[:2]
        gx = gt = None
        if ctx.plain:
            if need_x:
                gx = np.exp(logp)  # softmax(x) - onehot(y), times the scale
                gx[np.arange(n_rows), ctx.safe] -= 1
                gx *= scale_rows
                return _from_rows(gx, ctx.shape), None
        elif ctx.probabilities:
            if need_x:
                q = ctx.q
                gx = np.exp(logp) * q.sum(axis=1, keepdims=True) - q
            if need_t:
                gt = logp * (-(1 - eps)) if weight is None else logp * (-(1 - eps) * weight)
                gt = _from_rows(gt * scale_rows, ctx.shape)
        elif need_x:
            w_y, valid = ctx.w_y, ctx.valid
            w_sum = float(n_classes if weight is None else weight.sum())
            total = (1 - eps) * w_y + (eps / n_classes) * w_sum * valid  # sum_c q_c per row
            gx = np.exp(logp) * total[:, None]
            gx[np.arange(n_rows), ctx.safe] -= (1 - eps) * w_y
            if eps:
                w = 1 if weight is None else weight
                gx -= (eps / n_classes) * valid[:, None] * w
            gx[valid == 0] = 0  # ignored rows get no gradient, NaN logits or not
        if gx is not None:
            gx = _from_rows(gx * scale_rows, ctx.shape)
        return gx, gt


def cross_entropy(input, target, weight=None, ignore_index: int = -100, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy between logits and class indices or class probabilities, as in PyTorch.

    Softmax over the class axis (axis 1, or 0 for a 1-D input) and the negative
    log-likelihood in one op whose backward is written by hand.

    Args:
        input: Tensor [shape=(N, C), (C,) or (N, C, d1, ...)] of unnormalised logits.
        target: class indices, integer dtype [shape=(N,), () or (N, d1, ...)], values in
            [0, C) or ``ignore_index``; or class probabilities, floating dtype with the
            input's shape (a Tensor that requires grad gets a gradient).
        weight: optional array [shape=(C,)] rescaling each class's loss (a constant).
        ignore_index : int. Class-index targets equal to it add nothing to the loss or the
            'mean' denominator. Not supported for probability targets (must be negative).
        reduction : 'none' | 'mean' | 'sum'. 'mean' divides by the sum of ``weight[target]``
            over non-ignored targets (their count without weights); for probability
            targets by the number of rows N*d1*..., weights or not.
        label_smoothing : float in [0, 1]. The target becomes (1 - eps) * target +
            eps / C * uniform; with weights, the uniform part is weighted per class.

    Returns:
        Tensor of the input's dtype: a scalar, or the per-row losses for 'none'
        [shape=(N,), () or (N, d1, ...)].
    """
    op = "cross_entropy"
    _check_reduction(op, reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{op}: label_smoothing must be in [0, 1], got {label_smoothing}")
    x = _float_input(op, input, "logits")
    n_classes, index_shape = _class_shapes(op, x.shape)
    dtype = x._data.dtype
    w = _class_weight(op, weight, n_classes, dtype)
    t = target._data if isinstance(target, Tensor) else np.asarray(target)
    if t.dtype.kind in "iu":
        if t.shape != index_shape:
            raise ValueError(
                f"{op}: expected a class-index target of shape {index_shape} for input of shape "
                f"{x.shape}, got {t.shape}"
            )
        # Every target a valid class (and none ignored) allows the plain path, with no weights or smoothing.
        plain = (w is None and not label_smoothing and t.size > 0 and t.min() >= 0 and t.max() < n_classes
                 and not (0 <= ignore_index < n_classes and (t == ignore_index).any()))
        if not plain:
            _check_indices(op, t, n_classes, ignore_index)
        return CrossEntropy.apply(x, t, weight=w, ignore_index=ignore_index, reduction=reduction,
                                  label_smoothing=float(label_smoothing), plain=plain)
    if t.dtype.kind != "f" or t.shape != x.shape:
        raise ValueError(
            f"{op}: expected target of integer dtype (class indices) or floating dtype with the "
            f"input's shape (class probabilities), got {t.dtype} of shape {t.shape} "
            f"(input shape {x.shape})"
        )
    if ignore_index >= 0:
        raise ValueError(
            f"{op}: ignore_index={ignore_index} is not supported for class-probability targets; "
            "give zero probability rows or use class-index targets"
        )
    return CrossEntropy.apply(x, _float_operand(target, dtype), weight=w, reduction=reduction,
                              label_smoothing=float(label_smoothing), probabilities=True)


# ----------------------------------------------------------------------- NLL
class NLLLoss(Function):
    """Negative log-likelihood of log-probabilities: loss = -w_y x_y (0 if y is ignored).

    Backward scatters ``-w_y * scale`` into each row's target class. 'mean' divides by
    sum of w_y over non-ignored rows.
    """

    @staticmethod
    def forward(ctx, x, target, weight=None, ignore_index=-100, reduction="mean"):
        dtype = x.dtype
        _, out_shape = _class_shapes("nll_loss", x.shape)
        rows = _to_rows(x)  # (M, C)
        safe, valid, w_y = _index_rows(target, weight, ignore_index, dtype)
        # An ignored row adds nothing, even when its log-probabilities are NaN (0 * NaN would be NaN).
        with np.errstate(invalid="ignore"):  # 0 * inf in an ignored row; where() drops it
            loss = np.where(valid > 0, -w_y * rows[np.arange(rows.shape[0]), safe], dtype.type(0))
        norm = w_y.sum()
        ctx.safe, ctx.w_y, ctx.norm, ctx.reduction = safe, w_y, norm, reduction
        ctx.shape, ctx.n_classes = x.shape, rows.shape[1]
        return _reduce(loss, reduction, norm, out_shape, dtype)

    @staticmethod
    def backward(ctx, grad):
        w_y = ctx.w_y
        scale = _scale(grad, ctx.reduction, ctx.norm, w_y.dtype)
        gx = np.zeros((w_y.shape[0], ctx.n_classes), dtype=w_y.dtype)
        gx[np.arange(w_y.shape[0]), ctx.safe] = -w_y * scale
        return _from_rows(gx, ctx.shape), None


def nll_loss(input, target, weight=None, ignore_index: int = -100, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of log-probabilities (e.g. from log_softmax), as in PyTorch.

    Args:
        input: Tensor [shape=(N, C), (C,) or (N, C, d1, ...)] of log-probabilities.
        target: class indices of integer dtype [shape=(N,), () or (N, d1, ...)].
        weight: optional array [shape=(C,)] rescaling each class (a constant).
        ignore_index : int. Targets equal to it add nothing, not even to the denominator.
        reduction : 'none' | 'mean' | 'sum'; 'mean' divides by sum of weight[target]
            over non-ignored targets.

    Returns:
        Tensor of the input's dtype: a scalar, or per-row losses for 'none'.
    """
    op = "nll_loss"
    _check_reduction(op, reduction)
    x = _float_input(op, input, "log-probabilities")
    n_classes, index_shape = _class_shapes(op, x.shape)
    w = _class_weight(op, weight, n_classes, x._data.dtype)
    t = target._data if isinstance(target, Tensor) else np.asarray(target)
    if t.dtype.kind not in "iu":
        raise ValueError(
            f"{op}: expected target of integer dtype (class indices), got {t.dtype} of shape {t.shape}"
        )
    if t.shape != index_shape:
        raise ValueError(
            f"{op}: expected a class-index target of shape {index_shape} for input of shape "
            f"{x.shape}, got {t.shape}"
        )
    _check_indices(op, t, n_classes, ignore_index)
    return NLLLoss.apply(x, t, weight=w, ignore_index=ignore_index, reduction=reduction)


# ------------------------------------------------------------- elementwise
def _same_shape(op: str, x: Tensor, t) -> None:
    if x.shape != np.shape(t):
        raise ValueError(
            f"{op}: target shape {np.shape(t)} differs from input shape {x.shape}; "
            "they must be equal (reshape one of them; no broadcasting is done)"
        )


def _pair(op: str, input, target, what: str):
    x = _float_input(op, input, what)
    t = _float_operand(target, x._data.dtype)
    _same_shape(op, x, t)
    return x, t


class MSELoss(Function):
    """loss = (x - t)^2 elementwise. Backward: 2 (x - t) for x, the negative for t."""

    @staticmethod
    def forward(ctx, x, t, reduction="mean"):
        diff = x - t
        ctx.diff, ctx.reduction = diff, reduction
        return _reduce(diff * diff, reduction, diff.size, diff.shape, x.dtype)

    @staticmethod
    def backward(ctx, grad):
        diff = ctx.diff
        g = 2 * diff * _scale(grad, ctx.reduction, diff.size, diff.dtype).reshape(
            diff.shape if ctx.reduction == "none" else ())
        nx, nt = ctx.needs_input_grad
        return (g if nx else None), (-g if nt else None)


class L1Loss(Function):
    """loss = |x - t| elementwise. Backward: sign(x - t) (0 where x == t, as in PyTorch)."""

    @staticmethod
    def forward(ctx, x, t, reduction="mean"):
        diff = x - t
        ctx.sign, ctx.reduction = np.sign(diff), reduction
        return _reduce(np.abs(diff), reduction, diff.size, diff.shape, x.dtype)

    @staticmethod
    def backward(ctx, grad):
        sign = ctx.sign
        g = sign * _scale(grad, ctx.reduction, sign.size, sign.dtype).reshape(
            sign.shape if ctx.reduction == "none" else ())
        nx, nt = ctx.needs_input_grad
        return (g if nx else None), (-g if nt else None)


def mse_loss(input, target, reduction: str = "mean") -> Tensor:
    """Mean squared error (x - t)^2, reduced. Shapes must be equal (PyTorch would broadcast with a warning)."""
    _check_reduction("mse_loss", reduction)
    x, t = _pair("mse_loss", input, target, "predictions")
    return MSELoss.apply(x, t, reduction=reduction)


def l1_loss(input, target, reduction: str = "mean") -> Tensor:
    """Mean absolute error |x - t|, reduced. Shapes must be equal."""
    _check_reduction("l1_loss", reduction)
    x, t = _pair("l1_loss", input, target, "predictions")
    return L1Loss.apply(x, t, reduction=reduction)


class HuberLoss(Function):
    """Huber loss with threshold ``delta`` > 0, elementwise on d = x - t::

        loss     = 0.5 d^2                   where |d| < delta
                 = delta (|d| - 0.5 delta)   elsewhere
        dloss/dx = clip(d, -delta, delta);   dloss/dt = -dloss/dx

    Quadratic near zero, linear (slope delta) in the tails: outliers pull with bounded force.
    """

    @staticmethod
    def forward(ctx, x, t, reduction="mean", delta=1.0):
        diff = x - t
        delta = x.dtype.type(delta)
        z = np.abs(diff)
        loss = np.where(z < delta, diff * diff * x.dtype.type(0.5), delta * (z - x.dtype.type(0.5) * delta))
        ctx.diff, ctx.delta, ctx.reduction = diff, delta, reduction
        return _reduce(loss, reduction, diff.size, diff.shape, x.dtype)

    @staticmethod
    def backward(ctx, grad):
        diff = ctx.diff
        scale = _scale(grad, ctx.reduction, diff.size, diff.dtype).reshape(
            diff.shape if ctx.reduction == "none" else ())
        g = np.clip(diff, -ctx.delta, ctx.delta) * scale
        nx, nt = ctx.needs_input_grad
        return (g if nx else None), (-g if nt else None)


class SmoothL1Loss(Function):
    """Smooth L1 loss with threshold ``beta`` > 0, elementwise on d = x - t::

        loss     = 0.5 d^2 / beta            where |d| < beta
                 = |d| - 0.5 beta            elsewhere
        dloss/dx = clip(d / beta, -1, 1);    dloss/dt = -dloss/dx

    Huber loss divided by beta (equal to it for beta = 1). ``beta = 0`` is L1 and goes to
    :class:`L1Loss`, as PyTorch does.
    """

    @staticmethod
    def forward(ctx, x, t, reduction="mean", beta=1.0):
        diff = x - t
        beta = x.dtype.type(beta)
        z = np.abs(diff)
        half = x.dtype.type(0.5)
        loss = np.where(z < beta, half * diff * diff / beta, z - half * beta)
        ctx.diff, ctx.beta, ctx.reduction = diff, beta, reduction
        return _reduce(loss, reduction, diff.size, diff.shape, x.dtype)

    @staticmethod
    def backward(ctx, grad):
        diff = ctx.diff
        scale = _scale(grad, ctx.reduction, diff.size, diff.dtype).reshape(
            diff.shape if ctx.reduction == "none" else ())
        g = np.clip(diff / ctx.beta, -1, 1).astype(diff.dtype, copy=False) * scale
        nx, nt = ctx.needs_input_grad
        return (g if nx else None), (-g if nt else None)


def _threshold(op: str, name: str, value, allow_zero: bool) -> float:
    """``delta`` / ``beta`` as a float, positive (or, if ``allow_zero``, non-negative)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{op}: {name} must be a number, got {value!r}")
    value = float(value)
    if not (value >= 0 if allow_zero else value > 0):  # NaN fails too
        kind = "non-negative" if allow_zero else "positive"
        raise ValueError(f"{op}: {name} must be {kind}, got {value}")
    return value


def huber_loss(input, target, reduction: str = "mean", delta: float = 1.0, weight=None) -> Tensor:
    """Huber loss: squared error below ``delta``, ``delta``-scaled absolute error above, as in PyTorch.

    Args:
        input: Tensor of predictions, any shape (*), floating dtype.
        target: the input's shape (*) (a Tensor that requires grad gets a gradient).
        reduction : 'none' | 'mean' | 'sum'; 'mean' divides by the number of elements.
        delta : float > 0. Where |input - target| reaches it the loss turns linear with slope
            ``delta``, so large errors (outliers) get a bounded gradient.
        weight: optional per-element weights of the input's shape (PyTorch 2.13's extension):
            the per-element losses are multiplied by it before reducing ('mean' stays the plain
            mean over elements); a Tensor that requires grad gets a gradient.

    Returns:
        Tensor of the input's dtype: a scalar, or the input's shape (*) for 'none'.
    """
    op = "huber_loss"
    _check_reduction(op, reduction)
    delta = _threshold(op, "delta", delta, allow_zero=False)
    x, t = _pair(op, input, target, "predictions")
    if weight is None:
        return HuberLoss.apply(x, t, reduction=reduction, delta=delta)
    if tuple(np.shape(weight._data if isinstance(weight, Tensor) else weight)) != x.shape:
        raise ValueError(
            f"{op}: weight of shape {np.shape(weight)} must have the input's shape {x.shape}"
        )
    w = _float_operand(weight, x._data.dtype)
    weighted = Mul.apply(HuberLoss.apply(x, t, reduction="none", delta=delta), w)
    if reduction == "none":
        return weighted
    return Sum.apply(weighted) if reduction == "sum" else Mean.apply(weighted)


def smooth_l1_loss(input, target, reduction: str = "mean", beta: float = 1.0) -> Tensor:
    """Smooth L1 loss: ``0.5 d^2 / beta`` where ``|d| < beta``, else ``|d| - 0.5 beta``, as in PyTorch.

    Args:
        input: Tensor of predictions, any shape (*), floating dtype.
        target: the input's shape (*) (a Tensor that requires grad gets a gradient).
        reduction : 'none' | 'mean' | 'sum'; 'mean' divides by the number of elements.
        beta : float >= 0. Below it the loss is quadratic, so the gradient shrinks smoothly
            to 0 at d = 0; ``beta=0`` is exactly :func:`l1_loss`. Equals ``huber_loss / beta``.

    Returns:
        Tensor of the input's dtype: a scalar, or the input's shape (*) for 'none'.
    """
    op = "smooth_l1_loss"
    _check_reduction(op, reduction)
    beta = _threshold(op, "beta", beta, allow_zero=True)
    x, t = _pair(op, input, target, "predictions")
    if beta == 0.0:
        return L1Loss.apply(x, t, reduction=reduction)
    return SmoothL1Loss.apply(x, t, reduction=reduction, beta=beta)


def _softplus_neg(x: np.ndarray) -> np.ndarray:
    """log(1 + exp(-x)) without overflow: max(-x, 0) + log1p(exp(-|x|))."""
    return np.maximum(-x, 0) + np.log1p(np.exp(-np.abs(x)))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(x))  # in (0, 1]: never overflows
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


class BCEWithLogits(Function):
    """Binary cross-entropy on logits, with p = pos_weight and w = weight::

        loss     = w [(1 - t) x + (1 + (p - 1) t) softplus(-x)]
        dloss/dx = w [(1 - t) - (1 + (p - 1) t) sigmoid(-x)]      (= w (sigmoid(x) - t) if p = 1)
        dloss/dt = w [-x + (p - 1) softplus(-x)]

    softplus(-x) = max(-x, 0) + log1p(exp(-|x|)) is finite for any finite x.
    """

    @staticmethod
    def forward(ctx, x, t, weight=None, pos_weight=None, reduction="mean"):
        sp = _softplus_neg(x)
        if pos_weight is None:
            loss = (1 - t) * x + sp
        else:
            loss = (1 - t) * x + ((pos_weight - 1) * t + 1) * sp
        if weight is not None:
            loss = loss * weight
        ctx.x, ctx.t, ctx.sp, ctx.weight, ctx.pos_weight = x, t, sp, weight, pos_weight
        ctx.reduction = reduction
        return _reduce(loss, reduction, x.size, x.shape, x.dtype)

    @staticmethod
    def backward(ctx, grad):
        x, t, weight, pw = ctx.x, ctx.t, ctx.weight, ctx.pos_weight
        scale = _scale(grad, ctx.reduction, x.size, x.dtype).reshape(x.shape if ctx.reduction == "none" else ())
        if weight is not None:
            scale = scale * weight
        nx, nt = ctx.needs_input_grad
        gx = gt = None
        if nx:
            if pw is None:
                gx = (_sigmoid(x) - t) * scale
            else:
                gx = ((1 - t) - ((pw - 1) * t + 1) * _sigmoid(-x)) * scale
        if nt:
            gt = (-x * scale) if pw is None else (-x + (pw - 1) * ctx.sp) * scale
        return gx, gt


def binary_cross_entropy_with_logits(input, target, weight=None, reduction: str = "mean",
                                     pos_weight=None) -> Tensor:
    """Sigmoid and binary cross-entropy in one stable op, as in PyTorch.

    Args:
        input: Tensor of logits, any shape.
        target: floats in [0, 1] of the input's shape (a Tensor that requires grad gets a gradient).
        weight: optional array broadcastable to the input's shape, rescaling each element (a constant).
        reduction : 'none' | 'mean' | 'sum'; 'mean' divides by the number of elements.
        pos_weight: optional array broadcastable to the input's shape (usually [shape=(C,)] for
            input (N, C)): the weight of positive examples, > 1 raises recall (a constant).

    Returns:
        Tensor of the input's dtype: a scalar, or the input's shape for 'none'.
    """
    op = "binary_cross_entropy_with_logits"
    _check_reduction(op, reduction)
    x, t = _pair(op, input, target, "logits")
    dtype = x._data.dtype
    w, pw = _constant(weight, dtype), _constant(pos_weight, dtype)
    for name, arr in (("weight", w), ("pos_weight", pw)):
        if arr is not None:
            try:
                ok = np.broadcast_shapes(arr.shape, x.shape) == x.shape
            except ValueError:
                ok = False
            if not ok:
                raise ValueError(f"{op}: {name} of shape {arr.shape} does not broadcast to input shape {x.shape}")
    return BCEWithLogits.apply(x, t, weight=w, pos_weight=pw, reduction=reduction)
