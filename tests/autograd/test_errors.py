"""Inputs that must raise (PyTorch OpInfo ``error_inputs``), and gradcheck's own failures."""
from __future__ import annotations

import re

import numpy as np
import pytest

from rnnbp.autograd import Function, GradcheckError, Tensor, gradcheck, ops


def t(*shape, dtype=np.float64) -> Tensor:
    return Tensor(np.random.default_rng(0).standard_normal(shape).astype(dtype), requires_grad=True)


ERROR_INPUTS = [
    # (id, thunk, exception, fragments the message must contain)
    ("matmul", lambda: t(3, 4) @ t(5, 6), ValueError, ["matmul", "(3, 4)", "(5, 6)", "4 and 5"]),
    ("matmul-1d", lambda: ops.matmul(t(3), t(4)), ValueError, ["matmul", "(3,)", "(4,)"]),
    ("matmul-batch", lambda: t(2, 3, 4) @ t(3, 4, 5), ValueError, ["matmul", "(2, 3, 4)", "(3, 4, 5)", "batch"]),
    ("matmul-scalar", lambda: t() @ t(2), ValueError, ["matmul", "()", "(2,)"]),
    ("add", lambda: t(2, 3) + t(4), ValueError, ["add", "(2, 3)", "(4,)"]),
    ("sub", lambda: t(2, 3) - t(4), ValueError, ["sub", "(2, 3)", "(4,)"]),
    ("mul", lambda: t(2, 3) * t(4), ValueError, ["mul", "(2, 3)", "(4,)"]),
    ("div", lambda: t(2, 3) / t(4), ValueError, ["div", "(2, 3)", "(4,)"]),
    ("pow", lambda: t(2, 3) ** t(4), ValueError, ["pow", "(2, 3)", "(4,)"]),
    ("mul-const", lambda: t(2, 3) * np.ones(4), ValueError, ["mul", "(2, 3)", "(4,)"]),
    ("maximum", lambda: ops.maximum(t(2, 3), t(4)), ValueError, ["maximum", "(2, 3)", "(4,)"]),
    ("minimum", lambda: ops.minimum(t(2, 3), t(4)), ValueError, ["minimum", "(2, 3)", "(4,)"]),
    ("where", lambda: ops.where(np.ones((2, 3), bool), t(2, 3), t(4)), ValueError, ["where", "(2, 3)", "(4,)"]),
    ("compare", lambda: t(2, 3) < t(4), ValueError, ["lt", "(2, 3)", "(4,)"]),
    ("linear", lambda: ops.linear(t(3, 4), t(2, 5)), ValueError, ["linear", "(3, 4)", "(2, 5)"]),
    ("reshape", lambda: t(3, 4).reshape(5, 3), ValueError, ["reshape", "(3, 4)", "(5, 3)", "12"]),
    ("view", lambda: t(3, 4).view(-1, 5), ValueError, ["reshape", "(3, 4)", "(-1, 5)"]),
    ("expand", lambda: t(2, 3).expand(4, 3), ValueError, ["expand", "(2, 3)", "(4, 3)"]),
    ("permute", lambda: t(2, 3).permute(0, 0), ValueError, ["permute", "(0, 0)", "(2, 3)"]),
    ("permute-out-of-range", lambda: t(2, 3).permute(0, 3), ValueError, ["permute", "(0, 3)", "(2, 3)"]),
    ("cat", lambda: ops.cat([t(2, 3), t(2, 4)]), ValueError, ["cat", "(2, 3)", "(2, 4)"]),
    ("cat-ndim", lambda: ops.cat([t(2, 3), t(3)]), ValueError, ["cat", "(2, 3)", "(3,)"]),
    ("cat-dim", lambda: ops.cat([t(2, 3), t(2, 3)], dim=2), IndexError, ["cat", "dim 2", "(2, 3)"]),
    ("cat-empty", lambda: ops.cat([]), ValueError, ["cat", "non-empty"]),
    ("stack", lambda: ops.stack([t(2, 3), t(3, 2)]), ValueError, ["stack", "(2, 3)", "(3, 2)"]),
    ("split", lambda: ops.split(t(5, 2), [2, 2]), ValueError, ["split", "[2, 2]", "5"]),
    ("split-size", lambda: ops.split(t(5, 2), 0), ValueError, ["split", "positive"]),
    ("split-dim", lambda: ops.split(t(5, 2), 1, dim=2), IndexError, ["split", "dim 2", "(5, 2)"]),
    ("chunk", lambda: ops.chunk(t(4), 0), ValueError, ["chunk", "positive"]),
    ("getitem", lambda: t(3, 2)[5], IndexError, ["getitem", "(3, 2)"]),
    ("getitem-array", lambda: t(3, 2)[[0, 7]], IndexError, ["getitem", "(3, 2)"]),
    ("sum-dim", lambda: t(3, 2).sum(dim=2), IndexError, ["sum", "dim 2", "2 dimensions"]),
    ("mean-dim", lambda: t(3, 2).mean(dim=(0, -3)), IndexError, ["mean", "dim -3"]),
    ("var-dim", lambda: t(3, 2).var(dim=5), IndexError, ["var", "dim 5"]),
    ("max-dim", lambda: t(3, 2).max(dim=2), IndexError, ["max", "dim 2"]),
    ("max-dim-tuple", lambda: t(3, 2).max(dim=(0, 1)), TypeError, ["max", "(0, 1)"]),
    ("max-empty", lambda: t(0, 2).max(), ValueError, ["max", "(0, 2)"]),
    ("softmax-dim", lambda: t(3, 2).softmax(dim=2), IndexError, ["softmax", "dim 2"]),
    ("log_softmax-dim", lambda: ops.log_softmax(t(3), 1), IndexError, ["log_softmax", "dim 1"]),
    ("logsumexp-dim", lambda: ops.logsumexp(t(3), -2), IndexError, ["logsumexp", "dim -2"]),
    ("squeeze-dim", lambda: t(3, 1).squeeze(2), IndexError, ["squeeze", "dim 2"]),
    ("unsqueeze-dim", lambda: t(3, 1).unsqueeze(3), IndexError, ["unsqueeze", "dim 3"]),
    ("gelu", lambda: ops.gelu(t(2), approximate="erf"), ValueError, ["gelu", "'erf'"]),
    ("clamp", lambda: ops.clamp(t(2)), ValueError, ["clamp", "min", "max"]),
    ("dropout", lambda: ops.dropout(t(2), 1.5), ValueError, ["dropout", "1.5"]),
    ("backward-gradient-shape", lambda: (t(2) * 2.0).backward(np.ones(3)), ValueError, ["backward", "(3,)", "(2,)"]),
    ("requires-grad-int", lambda: Tensor(np.arange(2), requires_grad=True), TypeError, ["requires_grad", "int64"]),
]


@pytest.mark.parametrize("thunk, exc, fragments", [pytest.param(*row[1:], id=row[0]) for row in ERROR_INPUTS])
def test_error_inputs(thunk, exc, fragments):
    with pytest.raises(exc) as info:
        thunk()
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} missing from {message!r}"


# ---------------------------------------------------------------- gradcheck itself
class SquareOffByOne(Function):
    """x**2 whose backward is wrong at exactly one element, (1, 0)."""

    @staticmethod
    def forward(ctx, x):
        ctx.x = x
        return x * x

    @staticmethod
    def backward(ctx, grad):
        g = 2 * ctx.x * grad
        g[1, 0] += 0.5
        return g


class MulWrongSecond(Function):
    """a*b whose gradient for b is wrong everywhere (uses b instead of a)."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.a, ctx.b = a, b
        return a * b

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.b, grad * ctx.b


class SqrtZeroGrad(Function):
    """sqrt with a finite made-up gradient: at x = 0 the numerical derivative is NaN."""

    @staticmethod
    def forward(ctx, x):
        with np.errstate(invalid="ignore"):
            return np.sqrt(x)

    @staticmethod
    def backward(ctx, grad):
        return grad * 0.0


def test_gradcheck_refuses_float32():
    x = t(3, dtype=np.float32)
    with pytest.raises(TypeError, match="float64"):
        gradcheck(lambda a: a * 2.0, [x])


def test_gradcheck_needs_an_input_that_requires_grad():
    with pytest.raises(ValueError, match="nothing to check"):
        gradcheck(lambda a: a * 2.0, [Tensor(np.ones(2))])


def test_gradcheck_detects_a_wrong_backward_and_names_input_and_worst_index():
    x = t(3, 2)
    with pytest.raises(GradcheckError) as info:
        gradcheck(SquareOffByOne.apply, [x])
    message = str(info.value)
    assert "input 0" in message and "(1, 0)" in message and "(3, 2)" in message
    assert re.search(r"analytic -?[\d.]+.*numeric -?[\d.]+", message)
    assert gradcheck(SquareOffByOne.apply, [x], raise_exception=False) is False
    assert gradcheck(lambda a: a * a, [x])  # the right backward passes at the same point


def test_gradcheck_names_the_wrong_input():
    a, b = t(2, 3), t(2, 3) + 3.0
    b = Tensor(b.numpy(), requires_grad=True)
    with pytest.raises(GradcheckError, match="input 1"):
        gradcheck(MulWrongSecond.apply, [a, b])
    # With only the first input checked, the wrong second gradient goes unnoticed.
    assert gradcheck(MulWrongSecond.apply, [a, Tensor(b.numpy())])


def test_gradcheck_fast_mode_detects_a_wrong_backward():
    x = t(6, 5)
    with pytest.raises(GradcheckError, match="input 0"):
        gradcheck(SquareOffByOne.apply, [x], fast_mode=True)
    a, b = t(4, 3), Tensor(t(4, 3).data + 2.0, requires_grad=True)
    with pytest.raises(GradcheckError, match="input 1"):
        gradcheck(MulWrongSecond.apply, [a, b], fast_mode=True)
    assert gradcheck(lambda a, b: a * b, [a, b], fast_mode=True)


def test_gradcheck_fails_on_a_nan_numerical_derivative():
    x = Tensor(np.zeros(2), requires_grad=True)
    with pytest.raises(GradcheckError, match="input 0"):
        gradcheck(SqrtZeroGrad.apply, [x])


def test_gradcheck_reports_which_output_of_several():
    x = t(3)

    def two_outputs(a):
        return SquareOffByOne.apply(a.reshape(3, 1).expand(3, 2)), a * 2.0

    with pytest.raises(GradcheckError, match="2 outputs"):
        gradcheck(two_outputs, [x])


def test_wrong_gradient_shape_from_a_backward_is_caught():
    class BadShape(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, grad):
            return grad.sum(axis=0)

    with pytest.raises(RuntimeError, match=r"BadShape.*\(2,\).*\(3, 2\)"):
        BadShape.apply(t(3, 2)).sum().backward()


def test_wrong_gradient_count_from_a_backward_is_caught():
    class TooMany(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, grad):
            return grad, grad

    with pytest.raises(RuntimeError, match="TooMany.backward returned 2 gradients for 1 inputs"):
        TooMany.apply(t(2)).sum().backward()
