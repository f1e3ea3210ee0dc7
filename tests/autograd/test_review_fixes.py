"""Regression tests for review findings: var with N <= correction, flatten's dims, pow's gradient at
0 and for negative bases, embedding's negative padding_idx, max/min with NaN, and errors that name
the op instead of leaking NumPy's or Python's."""
from __future__ import annotations

import inspect
import warnings

import numpy as np
import pytest

import rnnbp
from rnnbp.autograd import Tensor, gradcheck, ops
from rnnbp.nn import functional as F


def t(*shape, dtype=np.float64, seed=0) -> Tensor:
    return Tensor(np.random.default_rng(seed).standard_normal(shape).astype(dtype), requires_grad=True)


@pytest.fixture
def no_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


# --------------------------------------------------------------------- 2. var
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_var_backward_with_n_at_most_correction_gives_nan_not_zerodivision(dtype, no_warnings):
    x = rnnbp.randn(1, dtype=dtype, requires_grad=True, generator=np.random.default_rng(0))
    v = x.var()
    v.backward()
    assert v.dtype == dtype and np.isnan(v.item())
    assert x.grad.numpy().dtype == dtype and np.isnan(x.grad.numpy()).all()
    y = t(2, 1, dtype=dtype)
    y.var(dim=1, keepdim=True).sum().backward()
    assert y.grad.numpy().dtype == dtype and np.isnan(y.grad.numpy()).all()
    z = Tensor(np.array([1.0, 3.0], dtype=dtype), requires_grad=True)
    ops.var(z, correction=2).backward()  # centred values are +-1: +-inf, as PyTorch
    np.testing.assert_array_equal(z.grad.numpy(), [-np.inf, np.inf])


def test_var_matches_torch_when_n_equals_correction():
    torch = pytest.importorskip("torch")
    x = t(1)
    x.var().backward()
    tx = torch.tensor(x.numpy(), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tx.var().backward()
    np.testing.assert_array_equal(np.isnan(x.grad.numpy()), np.isnan(tx.grad.numpy()))


# ----------------------------------------------------------------- 3. flatten
@pytest.mark.parametrize("args, bad", [((3,), 3), ((0, 2), 2), ((-3,), -3), ((0, -3), -3)])
def test_flatten_rejects_out_of_range_dims(args, bad):
    with pytest.raises(IndexError) as info:
        t(2, 3).flatten(*args)
    message = str(info.value)
    for fragment in ("flatten", f"dim {bad}", "(2, 3)"):
        assert fragment in message, message


def test_flatten_rejects_start_after_end_and_keeps_valid_cases():
    with pytest.raises(ValueError, match="flatten: start_dim 2 comes after end_dim 1"):
        t(2, 3, 4).flatten(2, 1)
    assert t(2, 3, 4).flatten(1).shape == (2, 12)
    assert t(2, 3, 4).flatten(-2, -1).shape == (2, 12)
    assert t(2, 3, 4).flatten(1, 1).shape == (2, 3, 4)
    assert t().flatten().shape == (1,) and t().flatten(0, -1).shape == (1,)
    with pytest.raises(IndexError, match="flatten"):
        t().flatten(1)


# -------------------------------------------------------------------- 4. pow
def test_pow_zero_exponent_at_zero_base_has_zero_gradient(no_warnings):
    x = Tensor(np.zeros(3), requires_grad=True)
    (x ** 0).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0, 0, 0])
    x32 = Tensor(np.zeros(2, np.float32), requires_grad=True)
    (x32 ** Tensor(np.zeros(2, np.float32))).sum().backward()
    assert x32.grad.numpy().dtype == np.float32 and (x32.grad.numpy() == 0).all()


def test_pow_gradients_follow_torch_at_zero_and_negative_bases():
    a_np, b_np = np.array([0.0, 0.0, -1.0, 2.0, 0.0]), np.array([0.0, -1.0, 2.0, 1.5, 2.0])
    a, b = Tensor(a_np, requires_grad=True), Tensor(b_np, requires_grad=True)
    with np.errstate(divide="ignore"):  # the forward's 0 ** -1 = inf warns in NumPy; the backward must not
        out = (a ** b).sum()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out.backward()
    # d/db: 0 where a == 0 and b >= 0; NaN for a negative base (not hidden); -inf for 0 ** -1.
    assert b.grad.numpy()[0] == 0 and b.grad.numpy()[4] == 0 and b.grad.numpy()[1] == -np.inf and np.isnan(b.grad.numpy()[2])
    np.testing.assert_allclose(b.grad.numpy()[3], 2.0 ** 1.5 * np.log(2.0))
    np.testing.assert_array_equal(a.grad.numpy()[[0, 1, 2, 4]], [0, -np.inf, -2, 0])
    torch = pytest.importorskip("torch")
    ta, tb = torch.tensor(a_np, requires_grad=True), torch.tensor(b_np, requires_grad=True)
    (ta ** tb).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy(), equal_nan=True)
    np.testing.assert_allclose(b.grad.numpy(), tb.grad.numpy(), equal_nan=True)


def test_pow_scalar_base_gradient_matches_torch():
    torch = pytest.importorskip("torch")
    e_np = np.array([-1.0, 0.0, 2.0])
    for base in (0.0, 2.0, -2.0):
        e = Tensor(e_np, requires_grad=True)
        with np.errstate(all="ignore"):
            (base ** e).sum().backward()
        te = torch.tensor(e_np, requires_grad=True)
        (base ** te).sum().backward()
        np.testing.assert_allclose(e.grad.numpy(), te.grad.numpy(), equal_nan=True, err_msg=f"base {base}")


def test_pow_still_passes_gradcheck():
    a = Tensor(np.array([0.7, 1.3, 2.0]), requires_grad=True)
    b = Tensor(np.array([-1.5, 0.0, 2.5]), requires_grad=True)
    gradcheck(lambda p, q: p ** q, [a, b])


# -------------------------------------------------------------- 5. embedding
@pytest.mark.parametrize("padding_idx", [-1, 3, -4, 0])
def test_embedding_negative_padding_idx_gets_no_gradient(padding_idx):
    w = t(4, 2)
    idx = np.array([[0, 3], [3, 1]])
    F.embedding(idx, w, padding_idx=padding_idx).sum().backward()
    row = padding_idx % 4
    assert (w.grad.numpy()[row] == 0).all()
    expected = np.zeros((4, 2))
    np.add.at(expected, idx.reshape(-1), 1.0)
    expected[row] = 0
    np.testing.assert_array_equal(w.grad.numpy(), expected)


def test_embedding_padding_idx_out_of_range_raises():
    with pytest.raises(ValueError, match="embedding: padding_idx -5 .* 4 embeddings"):
        F.embedding(np.array([0]), t(4, 2), padding_idx=-5)
    with pytest.raises(ValueError, match="embedding: padding_idx 4"):
        F.embedding(np.array([0]), t(4, 2), padding_idx=4)


# --------------------------------------------------------------- 6. max/min
@pytest.mark.parametrize("mode", ["max", "min"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_max_min_with_nan_route_the_gradient_to_the_nans(mode, dtype, no_warnings):
    x = Tensor(np.array([1.0, np.nan, 3.0, np.nan], dtype=dtype), requires_grad=True)
    out = getattr(x, mode)()
    assert np.isnan(out.item())
    out.backward()
    assert x.grad.numpy().dtype == dtype
    np.testing.assert_array_equal(x.grad.numpy(), [0, 0.5, 0, 0.5])


@pytest.mark.parametrize("mode", ["max", "min"])
def test_max_min_ties_share_in_the_input_dtype(mode, no_warnings):
    x = Tensor(np.array([3.0, 1.0, 3.0, 1.0, 3.0], np.float32), requires_grad=True)
    out = getattr(x, mode)()
    share = out.grad_fn.share
    assert share.dtype == np.float32
    out.backward()
    expected = np.array([1, 0, 1, 0, 1]) / 3 if mode == "max" else np.array([0, 1, 0, 1, 0]) / 2
    np.testing.assert_allclose(x.grad.numpy(), expected)
    torch = pytest.importorskip("torch")
    for data in ([1.0, np.nan, 3.0, np.nan], [3.0, 1.0, 3.0]):
        xa = Tensor(np.array(data), requires_grad=True)
        tx = torch.tensor(data, requires_grad=True)
        getattr(xa, mode)().backward()
        getattr(tx, mode)().backward()
        np.testing.assert_array_equal(xa.grad.numpy(), tx.grad.numpy())


# --------------------------------------------------------------- 7. errors
ERROR_INPUTS = [
    ("linear-bias", lambda: ops.linear(t(3, 4), t(2, 4), t(3)), ValueError,
     ["linear", "bias", "(3,)", "(2,)", "(2, 4)"]),
    ("linear-bias-2d", lambda: ops.linear(t(3, 4), t(2, 4), t(1, 2)), ValueError, ["linear", "bias", "(1, 2)"]),
    ("linear-weight-1d", lambda: ops.linear(t(3, 4), t(4)), ValueError, ["linear", "weight", "(4,)", "2-D"]),
    ("stack-dim", lambda: ops.stack([t(2, 3), t(2, 3)], dim=3), IndexError, ["stack", "dim 3", "(2, 3)"]),
    ("stack-dim-neg", lambda: ops.stack([t(2, 3), t(2, 3)], dim=-4), IndexError, ["stack", "dim -4"]),
    ("transpose", lambda: t(2, 3).transpose(0, 2), IndexError, ["transpose", "dim 2", "(2, 3)"]),
    ("transpose-neg", lambda: t(2, 3).transpose(-3, 1), IndexError, ["transpose", "dim -3", "(2, 3)"]),
    ("mT-1d", lambda: t(3).mT, IndexError, ["transpose", "dim -2", "(3,)"]),
    ("chunk-dim", lambda: ops.chunk(t(4, 2), 2, dim=2), IndexError, ["chunk", "dim 2", "(4, 2)"]),
    ("split-dim-neg", lambda: ops.split(t(4, 2), 2, dim=-3), IndexError, ["split", "dim -3", "(4, 2)"]),
    ("argmax-dim", lambda: ops.argmax(t(3, 2), 2), IndexError, ["argmax", "dim 2", "(3, 2)"]),
    ("argmin-dim", lambda: t(3, 2).argmin(-3), IndexError, ["argmin", "dim -3", "(3, 2)"]),
    ("argmax-tuple", lambda: ops.argmax(t(3, 2), (0, 1)), TypeError, ["argmax", "(0, 1)"]),
    ("softmax-tuple", lambda: t(3, 2).softmax((0, 1)), TypeError, ["softmax", "int", "(0, 1)"]),
    ("log_softmax-tuple", lambda: ops.log_softmax(t(3, 2), (0,)), TypeError, ["log_softmax", "int", "(0,)"]),
    ("logsumexp-tuple-range", lambda: ops.logsumexp(t(3, 2), (0, 2)), IndexError, ["logsumexp", "dim 2"]),
    ("expand-new-minus-one", lambda: t(3).expand(-1, 3), ValueError, ["expand", "-1", "(3,)", "(-1, 3)"]),
    ("expand-fewer", lambda: t(2, 3).expand(3), ValueError, ["expand", "(2, 3)", "(3,)"]),
    ("expand-negative", lambda: t(3).expand(-2), ValueError, ["expand", "-2"]),
    ("layer_norm-weight", lambda: F.layer_norm(t(2, 3), (3,), weight=t(4)), ValueError,
     ["layer_norm: weight of shape (4,) does not match normalized_shape (3,)"]),
    ("layer_norm-bias", lambda: F.layer_norm(t(2, 3), (3,), bias=t(2, 3)), ValueError,
     ["layer_norm: bias of shape (2, 3) does not match normalized_shape (3,)"]),
    ("pow-int-negative", lambda: rnnbp.tensor([1, 2]) ** -1, ValueError,
     ["pow", "Integers to negative integer powers are not allowed"]),
    ("sub-bool", lambda: Tensor(np.array([True])) - Tensor(np.array([False])), TypeError,
     ["sub", "boolean subtract", "(1,)"]),
    ("clamp-bad-bound-shape", lambda: ops.clamp(t(2, 3), min=t(4)), ValueError, ["clamp", "(2, 3)", "(4,)"]),
]


@pytest.mark.parametrize("thunk, exc, fragments", [pytest.param(*row[1:], id=row[0]) for row in ERROR_INPUTS])
def test_error_inputs_name_the_op(thunk, exc, fragments):
    with pytest.raises(exc) as info:
        thunk()
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} missing from {message!r}"


def test_pow_error_is_not_called_a_broadcast_error():
    with pytest.raises(ValueError) as info:
        rnnbp.tensor([1, 2]) ** -1
    assert "broadcast" not in str(info.value)
    with pytest.raises(ValueError, match="broadcast"):
        t(2, 3) ** t(4)


def test_broadcast_error_has_no_unused_parameter():
    from rnnbp.autograd.ops import elementwise

    assert list(inspect.signature(elementwise._broadcast_error).parameters) == ["op", "a", "b"]


def test_valid_dims_still_work_after_the_checks():
    x = t(2, 3)
    assert x.transpose(-1, 0).shape == (3, 2) and x.mT.shape == (3, 2)
    assert t().transpose(0, -1).shape == ()
    assert ops.stack([x, x], dim=-1).shape == (2, 3, 2) and ops.stack([x, x], dim=2).shape == (2, 3, 2)
    assert [c.shape for c in ops.chunk(x, 2, dim=-1)] == [(2, 2), (2, 1)]
    assert ops.argmax(x, -1).shape == (2,) and ops.argmin(x, 0, keepdim=True).shape == (1, 3)
    assert ops.argmax(t(), 0).item() == 0
    assert t(1, 3).expand(2, -1).shape == (2, 3) and t(3).expand(2, 3).shape == (2, 3)
    assert t(3).expand(2, -1).shape == (2, 3)


def test_logsumexp_accepts_a_tuple_of_dims_like_torch():
    x = t(2, 3, 4)
    out = ops.logsumexp(x, (0, 2))
    assert out.shape == (3,)
    np.testing.assert_allclose(out.numpy(), np.log(np.exp(x.numpy()).sum(axis=(0, 2))))
    assert ops.logsumexp(x, (0, -1), keepdim=True).shape == (1, 3, 1)
    gradcheck(lambda a: ops.logsumexp(a, (0, 2)), [x])
    gradcheck(lambda a: ops.logsumexp(a, (1, 0), keepdim=True), [t(2, 3)])
    torch = pytest.importorskip("torch")
    np.testing.assert_allclose(out.numpy(), torch.logsumexp(torch.tensor(x.numpy()), (0, 2)).numpy())


def test_clamp_with_tensor_bounds_matches_torch():
    torch = pytest.importorskip("torch")
    x_np = np.array([[0.0, 1.0, 2.0, 3.0], [-1.0, 1.5, 0.5, 4.0]])
    lo_np, hi_np = np.array([1.0, 1.0, 1.0, 1.0]), np.array([[2.0], [0.5]])
    for lo_given, hi_given in [(True, True), (True, False), (False, True)]:
        x = Tensor(x_np, requires_grad=True)
        lo = Tensor(lo_np, requires_grad=True) if lo_given else None
        hi = Tensor(hi_np, requires_grad=True) if hi_given else None
        out = ops.clamp(x, lo, hi)
        tx = torch.tensor(x_np, requires_grad=True)
        tlo = torch.tensor(lo_np, requires_grad=True) if lo_given else None
        thi = torch.tensor(hi_np, requires_grad=True) if hi_given else None
        tout = torch.clamp(tx, tlo, thi)
        np.testing.assert_array_equal(out.numpy(), tout.detach().numpy())
        w = np.arange(out.numpy().size).reshape(out.shape) + 1.0
        (out * w).sum().backward()
        (tout * torch.tensor(w)).sum().backward()
        np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())
        if lo_given:
            np.testing.assert_array_equal(lo.grad.numpy(), tlo.grad.numpy())
        if hi_given:
            np.testing.assert_array_equal(hi.grad.numpy(), thi.grad.numpy())


def test_clamp_with_constant_tensor_bounds_and_dtypes():
    x = Tensor(np.array([-2.0, 0.0, 2.0], np.float32), requires_grad=True)
    out = x.clamp(Tensor(np.array([-1.0, -1.0, -1.0], np.float32)), Tensor(np.float32(1.0)))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out.numpy(), [-1, 0, 1])
    out.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0, 1, 0])
    assert ops.clamp(x, np.float64(-1.0), 1).dtype == np.float32
    assert ops.clamp(x, min=Tensor(np.zeros(3))).dtype == np.float64  # a float64 tensor promotes, as in torch
    gradcheck(lambda a, lo, hi: ops.clamp(a, lo, hi),
              [t(3, 2), Tensor(np.full((1, 2), -0.5), requires_grad=True), Tensor(np.array(0.6), requires_grad=True)])
