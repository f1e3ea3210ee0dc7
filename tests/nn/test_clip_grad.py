"""clip_grad_norm_ and clip_grad_value_: the returned pre-clip norm, the in-place scaling,
inf norms, non-finite gradients, dtypes, and parity with torch.nn.utils."""
import math

import numpy as np
import pytest

from rnnbp.autograd.tensor import Tensor
from rnnbp.nn.parameter import Parameter
from rnnbp.nn.utils import clip_grad_norm_, clip_grad_value_


def make_params(seed=0, dtype=np.float64, scale=1.0):
    rng = np.random.default_rng(seed)
    params = []
    for shape in [(3, 4), (5,), (2, 2, 2)]:
        p = Parameter(np.zeros(shape, dtype=dtype))
        p.grad = (scale * rng.standard_normal(shape)).astype(dtype)
        params.append(p)
    return params


def global_norm(grads, p):
    flat = np.concatenate([np.asarray(g, dtype=np.float64).ravel() for g in grads])
    if p == math.inf:
        return np.max(np.abs(flat))
    return np.sum(np.abs(flat) ** p) ** (1.0 / p)


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
def test_returns_pre_clip_norm_and_clips_to_max_norm(norm_type):
    params = make_params(seed=1, scale=5.0)
    before = [p.grad.numpy().copy() for p in params]
    arrays = [p.grad.numpy() for p in params]
    expected = global_norm(before, norm_type)
    max_norm = 0.25 * expected
    total = clip_grad_norm_(params, max_norm, norm_type=norm_type)
    assert isinstance(total, Tensor) and total.numpy().shape == ()
    np.testing.assert_allclose(total.numpy(), expected, rtol=1e-12)
    after = global_norm([p.grad.numpy() for p in params], norm_type)
    assert after <= max_norm
    np.testing.assert_allclose(after, max_norm, rtol=1e-5)
    # Every gradient is scaled by the same factor max_norm / (total + 1e-6), in place.
    coef = max_norm / (expected + 1e-6)
    for p, g0, arr in zip(params, before, arrays):
        assert p._grad is arr
        np.testing.assert_allclose(p.grad.numpy(), g0 * coef, rtol=1e-12)


def test_no_clipping_under_the_limit():
    params = make_params(seed=2)
    before = [p.grad.numpy().copy() for p in params]
    expected = global_norm(before, 2)
    total = clip_grad_norm_(params, max_norm=expected * 1.01)
    np.testing.assert_allclose(total.numpy(), expected, rtol=1e-12)
    for p, g0 in zip(params, before):
        np.testing.assert_array_equal(p.grad.numpy(), g0)


def test_float32_grads_give_float32_norm_and_stay_float32():
    params = make_params(seed=3, dtype=np.float32, scale=10.0)
    expected = global_norm([p.grad.numpy() for p in params], 2)
    total = clip_grad_norm_(params, max_norm=1.0)
    assert total.numpy().dtype == np.float32
    np.testing.assert_allclose(total.numpy(), expected, rtol=1e-5)
    assert all(p.grad.numpy().dtype == np.float32 for p in params)
    assert global_norm([p.grad.numpy() for p in params], 2) <= 1.0 + 1e-6


def test_single_tensor_generator_and_none_grads():
    p = Parameter(np.array([3.0, 4.0]))
    p.grad = np.array([3.0, 4.0])
    total = clip_grad_norm_(p, max_norm=1.0)
    assert float(total.numpy()) == 5.0
    np.testing.assert_allclose(p.grad.numpy(), [3.0 / (5 + 1e-6), 4.0 / (5 + 1e-6)])

    params = make_params(seed=4)
    skipped = Parameter(np.ones(3))
    expected = global_norm([q.grad.numpy() for q in params], 2)
    total = clip_grad_norm_((q for q in params + [skipped]), max_norm=100.0)
    np.testing.assert_allclose(total.numpy(), expected, rtol=1e-12)
    assert skipped.grad is None

    empty = clip_grad_norm_([Parameter(np.ones(2))], max_norm=1.0)
    assert float(empty.numpy()) == 0.0


def test_inf_norm_is_the_largest_entry():
    a, b = Parameter(np.zeros(3)), Parameter(np.zeros(2))
    a.grad, b.grad = np.array([0.5, -7.0, 2.0]), np.array([3.0, -1.0])
    total = clip_grad_norm_([a, b], max_norm=3.5, norm_type="inf")
    assert float(total.numpy()) == 7.0
    coef = 3.5 / (7.0 + 1e-6)
    np.testing.assert_allclose(a.grad.numpy(), np.array([0.5, -7.0, 2.0]) * coef)
    assert np.max(np.abs(np.concatenate([a.grad.numpy(), b.grad.numpy()]))) <= 3.5


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_error_if_nonfinite(bad):
    params = make_params(seed=5)
    params[1].grad.numpy()[2] = bad
    before = [p.grad.numpy().copy() for p in params]
    with pytest.raises(RuntimeError, match=r"total norm of order 2.0 .* is non-finite"):
        clip_grad_norm_(params, max_norm=1.0, error_if_nonfinite=True)
    for p, g0 in zip(params, before):  # nothing was scaled before the error
        np.testing.assert_array_equal(p.grad.numpy(), g0)
    total = clip_grad_norm_(params, max_norm=1.0)  # the default: no error, norm returned as is
    assert not np.isfinite(total.numpy())


def test_bad_max_norm_raises():
    with pytest.raises(ValueError, match="max_norm must be >= 0, got -1.0"):
        clip_grad_norm_(make_params(), max_norm=-1)


def test_clip_grad_value():
    a, b, c = Parameter(np.zeros(4)), Parameter(np.zeros((2, 2), dtype=np.float32)), Parameter(np.zeros(2))
    a.grad = np.array([-3.0, -0.5, 0.2, 9.0])
    b.grad = np.array([[1.5, -1.5], [0.0, 0.9]], dtype=np.float32)
    arr = a.grad.numpy()
    clip_grad_value_([a, b, c], clip_value=1.0)
    assert a._grad is arr
    np.testing.assert_array_equal(a.grad.numpy(), [-1.0, -0.5, 0.2, 1.0])
    np.testing.assert_array_equal(b.grad.numpy(), np.array([[1.0, -1.0], [0.0, 0.9]], dtype=np.float32))
    assert b.grad.numpy().dtype == np.float32 and c.grad is None
    clip_grad_value_(a, 0.1)
    np.testing.assert_array_equal(a.grad.numpy(), [-0.1, -0.1, 0.1, 0.1])
    with pytest.raises(ValueError, match="clip_value must be >= 0, got -1.0"):
        clip_grad_value_(a, -1)


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 0.5, math.inf])
@pytest.mark.parametrize("scale", [0.1, 10.0])
def test_matches_torch(norm_type, scale):
    torch = pytest.importorskip("torch")
    params = make_params(seed=6, scale=scale)
    tparams = []
    for p in params:
        t = torch.zeros(p.numpy().shape, dtype=torch.float64, requires_grad=True)
        t.grad = torch.from_numpy(p.grad.numpy().copy())
        tparams.append(t)
    expected = torch.nn.utils.clip_grad_norm_(tparams, max_norm=1.0, norm_type=norm_type)
    total = clip_grad_norm_(params, max_norm=1.0, norm_type=norm_type)
    np.testing.assert_allclose(total.numpy(), expected.item(), rtol=1e-12)
    for p, t in zip(params, tparams):
        np.testing.assert_allclose(p.grad.numpy(), t.grad.numpy(), rtol=1e-12)
    torch.nn.utils.clip_grad_value_(tparams, 0.05)
    clip_grad_value_(params, 0.05)
    for p, t in zip(params, tparams):
        np.testing.assert_allclose(p.grad.numpy(), t.grad.numpy(), rtol=1e-12)
        assert np.max(np.abs(p.grad.numpy())) <= 0.05
