"""Elementwise ops: arithmetic with broadcasting, and the pointwise nonlinearities.

Binary ops broadcast like NumPy; their backward sums each gradient back to its
input's shape with :func:`unbroadcast`.
"""
from __future__ import annotations

import math

import numpy as np

from ..function import Function, unbroadcast


def _broadcast_error(op: str, a, b) -> ValueError:
    return ValueError(
        f"{op}: cannot broadcast shapes {np.shape(a)} and {np.shape(b)} "
        "(trailing sizes must match or be 1)"
    )


def _binary(op: str, fn, a, b):
    """``fn(a, b)``, with NumPy's errors re-raised naming ``op``, the shapes and dtypes.

    Only a real shape mismatch is called a broadcast error: e.g. ``int ** -1`` fails in NumPy
    with "Integers to negative integer powers are not allowed", which is passed on as the cause.
    """
    try:
        return fn(a, b)
    except (ValueError, TypeError) as exc:
        try:
            np.broadcast_shapes(np.shape(a), np.shape(b))
        except ValueError:
            raise _broadcast_error(op, a, b) from None
        kind = ValueError if isinstance(exc, ValueError) else TypeError  # NumPy's subclasses need other args
        raise kind(
            f"{op}: {exc} (operands of shape {np.shape(a)} and {np.shape(b)}, "
            f"dtypes {np.result_type(a)} and {np.result_type(b)})"
        ) from None


class Add(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = (np.shape(a), np.shape(b))
        return _binary("add", np.add, a, b)

    @staticmethod
    def backward(ctx, grad):
        sa, sb = ctx.shapes
        na, nb = ctx.needs_input_grad
        return (unbroadcast(grad, sa) if na else None, unbroadcast(grad, sb) if nb else None)


class Sub(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = (np.shape(a), np.shape(b))
        return _binary("sub", np.subtract, a, b)

    @staticmethod
    def backward(ctx, grad):
        sa, sb = ctx.shapes
        na, nb = ctx.needs_input_grad
        return (unbroadcast(grad, sa) if na else None, unbroadcast(-grad, sb) if nb else None)


class Mul(Function):
    @staticmethod
    def forward(ctx, a, b):
        na, nb = ctx.needs_input_grad
        ctx.a = a if nb else None
        ctx.b = b if na else None
        ctx.shapes = (np.shape(a), np.shape(b))
        return _binary("mul", np.multiply, a, b)

    @staticmethod
    def backward(ctx, grad):
        sa, sb = ctx.shapes
        ga = unbroadcast(grad * ctx.b, sa) if ctx.b is not None else None
        gb = unbroadcast(grad * ctx.a, sb) if ctx.a is not None else None
        return ga, gb


class Div(Function):
    @staticmethod
    def forward(ctx, a, b):
        out = _binary("div", np.divide, a, b)
        ctx.b = b
        ctx.out = out if ctx.needs_input_grad[1] else None
        ctx.shapes = (np.shape(a), np.shape(b))
        return out

    @staticmethod
    def backward(ctx, grad):
        sa, sb = ctx.shapes
        na, nb = ctx.needs_input_grad
        ga_full = grad / ctx.b
        ga = unbroadcast(ga_full, sa) if na else None
        gb = unbroadcast(-ga_full * ctx.out, sb) if nb else None
        return ga, gb


class Pow(Function):
    """a ** b; d/da = b a^(b-1), d/db = a^b log a, with PyTorch's choices at the edges.

    d/da is 0 where b == 0 (so ``x ** 0`` at x = 0 has gradient 0, not NaN). d/db is 0 where
    a == 0 and b >= 0 (the limit of a^b log a); for a negative base log a is NaN and stays NaN.
    """

    @staticmethod
    def forward(ctx, a, b):
        out = _binary("pow", np.power, a, b)
        ctx.a, ctx.b, ctx.out = a, b, out
        ctx.shapes = (np.shape(a), np.shape(b))
        return out

    @staticmethod
    def backward(ctx, grad):
        a, b, out = ctx.a, ctx.b, ctx.out
        sa, sb = ctx.shapes
        na, nb = ctx.needs_input_grad
        ga = gb = None
        with np.errstate(divide="ignore", invalid="ignore"):  # 0 ** -1, log(0), log(-1): inf and NaN wanted
            if na:
                ga = unbroadcast(np.where(b == 0, 0, grad * b * np.power(a, b - 1)), sa)
            if nb:
                gb = unbroadcast(np.where((a == 0) & (b >= 0), 0, grad * out * np.log(a)), sb)
        return ga, gb


class Neg(Function):
    @staticmethod
    def forward(ctx, x):
        return np.negative(x)

    @staticmethod
    def backward(ctx, grad):
        return -grad


class Exp(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.y = np.exp(x)
        return ctx.y

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.y


class Log(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.x = x
        with np.errstate(divide="ignore", invalid="ignore"):  # log(0) = -inf, log(-1) = nan, silently as PyTorch
            return np.log(x)

    @staticmethod
    def backward(ctx, grad):
        return grad / ctx.x


class Sqrt(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.y = np.sqrt(x)
        return ctx.y

    @staticmethod
    def backward(ctx, grad):
        return grad / (2 * ctx.y)


class Sin(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.x = x
        return np.sin(x)

    @staticmethod
    def backward(ctx, grad):
        return grad * np.cos(ctx.x)


class Cos(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.x = x
        return np.cos(x)

    @staticmethod
    def backward(ctx, grad):
        return -grad * np.sin(ctx.x)


class Abs(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.x = x
        return np.abs(x)

    @staticmethod
    def backward(ctx, grad):
        return grad * np.sign(ctx.x)


class Tanh(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.y = np.tanh(x)
        return ctx.y

    @staticmethod
    def backward(ctx, grad):
        y = ctx.y
        return grad * (1 - y * y)


def sigmoid_array(x: np.ndarray) -> np.ndarray:
    """Overflow-free logistic function: 1/(1+e^-x) = (1 + tanh(x/2)) / 2."""
    y = np.tanh(x * 0.5)
    y += 1
    y *= 0.5
    return y


class Sigmoid(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.y = sigmoid_array(x)
        return ctx.y

    @staticmethod
    def backward(ctx, grad):
        y = ctx.y
        return grad * (y * (1 - y))


class ReLU(Function):
    @staticmethod
    def forward(ctx, x):
        y = np.maximum(x, 0)
        ctx.y = y
        return y

    @staticmethod
    def backward(ctx, grad):
        return grad * (ctx.y > 0)


class LeakyReLU(Function):
    @staticmethod
    def forward(ctx, x, negative_slope=0.01):
        if x.dtype.kind == "f":  # a NumPy float64 slope must not promote float32
            negative_slope = x.dtype.type(negative_slope)
        ctx.positive = x > 0
        ctx.slope = negative_slope
        return np.where(ctx.positive, x, x * negative_slope)

    @staticmethod
    def backward(ctx, grad):
        return np.where(ctx.positive, grad, grad * ctx.slope)


class Softplus(Function):
    """log(1 + e^(beta x)) / beta, linear where beta x > threshold (PyTorch's definition)."""

    @staticmethod
    def forward(ctx, x, beta=1.0, threshold=20.0):
        if x.dtype.kind == "f":  # a NumPy float64 beta must not promote float32
            beta = x.dtype.type(beta)
        bx = x * beta
        ctx.bx, ctx.linear = bx, bx > threshold
        return np.where(ctx.linear, x, np.logaddexp(0, bx) / beta).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        return np.where(ctx.linear, grad, grad * sigmoid_array(ctx.bx))


class SiLU(Function):
    """x sigmoid(x) (swish); d/dx = s (1 + x (1 - s)) with s = sigmoid(x)."""

    @staticmethod
    def forward(ctx, x):
        s = sigmoid_array(x)
        ctx.x, ctx.s = x, s
        return x * s

    @staticmethod
    def backward(ctx, grad):
        s = ctx.s
        return grad * (s * (1 + ctx.x * (1 - s)))


class ELU(Function):
    """x where x > 0, else alpha (e^x - 1); d/dx = alpha e^x there (at 0 too, as PyTorch)."""

    @staticmethod
    def forward(ctx, x, alpha=1.0):
        alpha = x.dtype.type(alpha)
        ctx.positive = x > 0
        ctx.slope = alpha * np.exp(np.minimum(x, 0))  # alpha e^x on the negative side
        return np.where(ctx.positive, x, alpha * np.expm1(np.minimum(x, 0)))

    @staticmethod
    def backward(ctx, grad):
        return np.where(ctx.positive, grad, grad * ctx.slope)


class Log1p(Function):
    """log(1 + x), accurate near 0; d/dx = 1 / (1 + x)."""

    @staticmethod
    def forward(ctx, x):
        ctx.x = x
        with np.errstate(divide="ignore", invalid="ignore"):  # -inf at -1, nan below, silently as PyTorch
            return np.log1p(x)

    @staticmethod
    def backward(ctx, grad):
        return grad / (1 + ctx.x)


_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)
_SQRT_2_OVER_PI = math.sqrt(2 / math.pi)


class GELU(Function):
    """x Phi(x) (exact, with erf) or its tanh approximation, as ``torch.nn.GELU``."""

    @staticmethod
    def forward(ctx, x, approximate="none"):
        ctx.x, ctx.approximate = x, approximate
        if approximate == "tanh":
            inner = _SQRT_2_OVER_PI * (x + 0.044715 * x**3)
            ctx.t = np.tanh(inner)
            return 0.5 * x * (1 + ctx.t)
        from scipy.special import erf

        ctx.cdf = 0.5 * (1 + erf(x * _SQRT_HALF))
        return x * ctx.cdf

    @staticmethod
    def backward(ctx, grad):
        x = ctx.x
        if ctx.approximate == "tanh":
            t = ctx.t
            dinner = _SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x)
            return grad * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * dinner)
        pdf = _INV_SQRT_2PI * np.exp(-0.5 * x * x)
        return grad * (ctx.cdf + x * pdf)


class Clamp(Function):
    """Clip ``x`` to [lo, hi] (either may be None), all three broadcast together; PyTorch's gradients.

    x gets the gradient where lo <= x <= hi; lo where x < lo (and lo < hi); hi where x > hi
    (or hi < lo, where the result is hi). NaN in ``x`` passes through.
    """

    @staticmethod
    def forward(ctx, x, lo=None, hi=None):
        try:
            out = np.clip(x, lo, hi)
        except ValueError:
            shapes = ", ".join(str(np.shape(v)) for v in (x, lo, hi) if v is not None)
            raise ValueError(f"clamp: cannot broadcast the input and bounds of shapes {shapes}") from None
        nx, nlo, nhi = ctx.needs_input_grad
        inside = True
        if lo is not None:
            inside = inside & (x >= lo)
        if hi is not None:
            inside = inside & (x <= hi)
        ctx.shapes = (np.shape(x), np.shape(lo), np.shape(hi))
        ctx.x_mask = inside if nx else None
        ctx.lo_mask = ctx.hi_mask = None
        if nlo:
            ctx.lo_mask = x < lo if hi is None else (x < lo) & (lo < hi)
        if nhi:
            ctx.hi_mask = x > hi if lo is None else (x > hi) | (hi < lo)
        return out

    @staticmethod
    def backward(ctx, grad):
        sx, slo, shi = ctx.shapes
        zero = np.zeros((), dtype=grad.dtype)
        gx = unbroadcast(np.where(ctx.x_mask, grad, zero), sx) if ctx.x_mask is not None else None
        glo = unbroadcast(np.where(ctx.lo_mask, grad, zero), slo) if ctx.lo_mask is not None else None
        ghi = unbroadcast(np.where(ctx.hi_mask, grad, zero), shi) if ctx.hi_mask is not None else None
        return gx, glo, ghi


class Remainder(Function):
    """a mod b for floating operands: ``mode`` 'remainder' has the sign of b (Python's %, np.mod),
    'fmod' the sign of a (C's fmod). d/da = 1, d/db = -floor(a / b) (or -trunc(a / b) for fmod)."""

    @staticmethod
    def forward(ctx, a, b, mode="remainder"):
        ctx.a, ctx.b, ctx.mode = a, b, mode
        with np.errstate(invalid="ignore", divide="ignore"):  # x mod 0 is NaN, silently as PyTorch
            r = np.fmod(a, b)
            if mode == "remainder":  # fmod moved to b's sign; a zero keeps fmod's sign, as PyTorch's
                r = np.where((r != 0) & ((r < 0) != (b < 0)), r + b, r)
        return np.asarray(r)

    @staticmethod
    def backward(ctx, grad):
        na, nb = ctx.needs_input_grad
        ga = unbroadcast(grad, np.shape(ctx.a)) if na else None
        gb = None
        if nb:
            quotient = (np.floor if ctx.mode == "remainder" else np.trunc)(np.true_divide(ctx.a, ctx.b))
            gb = unbroadcast(-grad * quotient, np.shape(ctx.b))
        return ga, gb


class Maximum(Function):
    """Elementwise max; at ties the gradient is split evenly (PyTorch's rule).

    ``Minimum`` differs only in which array picks the result and which comparison wins.
    """

    op, pick, wins = "maximum", np.maximum, np.greater

    @classmethod
    def _forward(cls, ctx, a, b):
        out = _binary(cls.op, cls.pick, a, b)
        ctx.share_a = (cls.wins(a, b) + 0.5 * np.equal(a, b)).astype(out.dtype)
        ctx.shapes = (np.shape(a), np.shape(b))
        return out

    @staticmethod
    def forward(ctx, a, b):
        return type(ctx)._forward(ctx, a, b)

    @staticmethod
    def backward(ctx, grad):
        sa, sb = ctx.shapes
        na, nb = ctx.needs_input_grad
        ga = unbroadcast(grad * ctx.share_a, sa) if na else None
        gb = unbroadcast(grad * (1 - ctx.share_a), sb) if nb else None
        return ga, gb


class Minimum(Maximum):
    """Elementwise min; at ties the gradient is split evenly (PyTorch's rule)."""

    op, pick, wins = "minimum", np.minimum, np.less


class Where(Function):
    """cond ? a : b, broadcasting all three; ``cond`` gets no gradient."""

    @staticmethod
    def forward(ctx, cond, a, b):
        cond = np.asarray(cond, dtype=bool)
        try:
            out = np.where(cond, a, b)
        except ValueError:
            raise ValueError(
                f"where: cannot broadcast shapes {np.shape(cond)}, {np.shape(a)} and {np.shape(b)}"
            ) from None
        ctx.cond = cond
        ctx.shapes = (np.shape(a), np.shape(b))
        return out

    @staticmethod
    def backward(ctx, grad):
        _, na, nb = ctx.needs_input_grad
        sa, sb = ctx.shapes
        zero = np.zeros((), dtype=grad.dtype)
        ga = unbroadcast(np.where(ctx.cond, grad, zero), sa) if na else None
        gb = unbroadcast(np.where(ctx.cond, zero, grad), sb) if nb else None
        return None, ga, gb


class Cast(Function):
    """Change between floating dtypes; the gradient is cast back."""

    @staticmethod
    def forward(ctx, x, dtype):
        ctx.in_dtype = x.dtype
        return x.astype(dtype)

    @staticmethod
    def backward(ctx, grad):
        return grad.astype(ctx.in_dtype)
