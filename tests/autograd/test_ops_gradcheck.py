"""Every op of the table passes a float64 gradcheck (central differences, random output projection)."""
from __future__ import annotations

import numpy as np
import pytest

from rnnbp.autograd import GradcheckError, Tensor, gradcheck, ops

try:  # imported as tests.autograd.* when the repo root is on sys.path (python -m pytest), else by folder
    from tests.autograd.autograd_op_cases import CASES, case_params
except ImportError:
    from autograd_op_cases import CASES, case_params


@pytest.mark.parametrize("case", case_params())
def test_gradcheck(case):
    inputs = case.inputs(np.float64)
    assert all(x.dtype == np.float64 and x.requires_grad for x in inputs)
    assert gradcheck(case.fn, inputs)


def test_table_covers_every_op():
    """A new op without a row fails here: each public op name appears in some row's name."""
    names = " ".join(c.name for c in CASES)
    for op in ["add", "sub", "mul", "div", "pow", "neg", "matmul", "linear", "exp", "log", "sqrt", "abs",
               "tanh", "sigmoid", "relu", "leaky_relu", "softplus", "gelu", "clamp", "maximum", "minimum",
               "where", "sum", "mean", "max", "min", "var", "reshape", "view", "transpose", "permute",
               "squeeze", "unsqueeze", "expand", "flatten", "T", "index", "cat", "stack", "split", "chunk",
               "softmax", "log_softmax", "logsumexp", "dropout"]:
        assert op in names, op
    assert len({c.name for c in CASES}) == len(CASES), "row names must be unique"


def test_repeated_indices_accumulate():
    x = Tensor(np.arange(4.0), requires_grad=True)
    x[[0, 0, 2, 0]].sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 0.0, 1.0, 0.0])
    x.grad = None
    x[Tensor(np.array([[3, 3], [3, 1]]))].sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 1.0, 0.0, 3.0])


def test_max_min_with_dim_return_values_and_indices():
    x = Tensor(np.array([[1.0, 5.0], [4.0, 2.0], [3.0, 0.0]]), requires_grad=True)
    values, indices = x.max(dim=0)
    np.testing.assert_array_equal(values.numpy(), [4.0, 5.0])
    np.testing.assert_array_equal(indices.numpy(), [1, 0])
    assert indices.dtype.kind == "i" and not indices.requires_grad
    assert x.min(dim=1, keepdim=True).values.shape == (3, 1)
    assert x.min(dim=1).indices.tolist() == [0, 1, 1]
    values.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[0, 1], [1, 0], [0, 0]])


def test_max_all_ties_share_the_gradient():
    x = Tensor(np.array([2.0, 1.0, 2.0]), requires_grad=True)
    x.max().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.5, 0.0, 0.5])


def test_cast_round_trip_gradcheck():
    """float64 -> float32 -> float64: a larger step, since float32 rounding swamps eps=1e-6."""
    x = Tensor(np.random.default_rng(0).standard_normal((3, 2)), requires_grad=True)
    fn = lambda t: (t.to(np.float32) * 2.0).to(np.float64).exp()  # noqa: E731
    assert fn(x).dtype == np.float64
    assert gradcheck(fn, [x], eps=1e-3, atol=1e-4, rtol=1e-3)
    fn(x).sum().backward()
    assert x.grad.numpy().dtype == np.float64
    np.testing.assert_allclose(x.grad.numpy(), 2 * np.exp(2 * x.numpy()), rtol=1e-6)
    # The same function through float16 is far too coarse to pass: the check can fail.
    coarse = lambda t: (t.to(np.float16) * 2.0).to(np.float64).exp()  # noqa: E731
    with pytest.raises(GradcheckError):
        gradcheck(coarse, [x])


def test_fast_mode_on_a_bigger_op():
    rng = np.random.default_rng(1)
    x = Tensor(rng.standard_normal((16, 24)), requires_grad=True)
    w = Tensor(rng.standard_normal((20, 24)) * 0.2, requires_grad=True)
    b = Tensor(rng.standard_normal(20), requires_grad=True)

    def fn(x, w, b):
        h = ops.linear(x, w, b).tanh()
        return ops.log_softmax(h @ w[:, :20].T, -1), h.var(dim=0)

    assert gradcheck(fn, [x, w, b], fast_mode=True)
    assert gradcheck(fn, [x, w, b], fast_mode=True, seed=7)


def test_gradcheck_inputs_untouched():
    x = Tensor(np.random.default_rng(0).standard_normal((3, 2)), requires_grad=True)
    before = x.numpy().copy()
    gradcheck(lambda t: t.tanh(), [x])
    gradcheck(lambda t: t.tanh(), [x], fast_mode=True)
    np.testing.assert_array_equal(x.numpy(), before)
