"""clip_grad_norm_ on huge (or tiny) but finite gradients: the norm never overflows or underflows."""
from __future__ import annotations

import math

import numpy as np
import pytest

from rnnbp import nn, optim
from rnnbp.bptt import TBPTT
from rnnbp.nn.parameter import Parameter
from rnnbp.nn.utils import clip_grad_norm_, clip_grad_value_

F32_MAX = float(np.finfo(np.float32).max)


def _params(*grads, dtype):
    params = []
    for g in grads:
        p = Parameter(np.zeros(len(g), dtype=dtype))
        p.grad = np.array(g, dtype=dtype)
        params.append(p)
    return params


def test_float32_norm_past_the_float32_range_is_returned_and_clipped():
    (p,) = _params([3e38, 3e38], dtype=np.float32)
    total = clip_grad_norm_([p], max_norm=1.0)
    assert math.isfinite(float(total.item()))
    assert float(total.item()) == pytest.approx(math.sqrt(2) * 3e38, rel=1e-7)
    assert float(total.item()) > F32_MAX and total.numpy().dtype == np.float64  # float32 cannot hold it
    assert p.grad.numpy().dtype == np.float32
    np.testing.assert_allclose(p.grad.numpy(), [math.sqrt(0.5)] * 2, rtol=1e-6)


def test_float32_norm_over_many_parameters_that_each_fit():
    params = _params([2e38], [-2e38], [2e38, 1.0], dtype=np.float32)
    total = clip_grad_norm_(params, max_norm=3.0)
    assert float(total.item()) == pytest.approx(math.sqrt(3) * 2e38, rel=1e-7)
    flat = np.concatenate([p.grad.numpy().astype(np.float64) for p in params])
    assert np.linalg.norm(flat) == pytest.approx(3.0, rel=1e-6)
    np.testing.assert_allclose(flat[:3], [math.sqrt(3), -math.sqrt(3), math.sqrt(3)], rtol=1e-6)


@pytest.mark.parametrize("big", [1e308, 1.5e308])
def test_float64_near_the_top_of_its_range(big):
    (p,) = _params([big, -big], dtype=np.float64)
    total = float(clip_grad_norm_([p], max_norm=2.0).item())
    if big * math.sqrt(2) < np.finfo(np.float64).max:
        assert total == pytest.approx(math.sqrt(2) * big, rel=1e-14)
    else:  # the norm itself is past float64: inf, yet the gradients are still scaled right, not zeroed
        assert total == math.inf
    np.testing.assert_allclose(p.grad.numpy(), [math.sqrt(2), -math.sqrt(2)], rtol=1e-12)


def test_tiny_float64_gradients_do_not_underflow_to_a_zero_norm():
    (p,) = _params([3e-200, 4e-200], dtype=np.float64)
    total = float(clip_grad_norm_([p], max_norm=1.0).item())
    assert total == pytest.approx(5e-200, rel=1e-14)
    np.testing.assert_array_equal(p.grad.numpy(), [3e-200, 4e-200])  # under the limit: untouched


@pytest.mark.parametrize("norm_type", [1.0, 3.0, 0.5, math.inf])
def test_other_norms_of_huge_float32_gradients(norm_type):
    (p,) = _params([3e38, 3e38], dtype=np.float32)
    total = float(clip_grad_norm_([p], max_norm=1.0, norm_type=norm_type).item())
    expected = 3e38 * (2 ** (1 / norm_type) if norm_type != math.inf else 1.0)
    assert total == pytest.approx(expected, rel=1e-7)
    got = np.abs(p.grad.numpy().astype(np.float64))
    reached = got.max() if norm_type == math.inf else np.sum(got ** norm_type) ** (1 / norm_type)
    assert reached == pytest.approx(1.0, rel=1e-5)


def test_error_if_nonfinite_is_about_the_gradients_not_the_dtype():
    (p,) = _params([3e38, 3e38], dtype=np.float32)
    clip_grad_norm_([p], max_norm=1.0, error_if_nonfinite=True)  # finite gradients: no error
    (q,) = _params([3e38, np.inf], dtype=np.float32)
    with pytest.raises(RuntimeError, match="is non-finite"):
        clip_grad_norm_([q], max_norm=1.0, error_if_nonfinite=True)


@pytest.mark.parametrize("values", [[np.nan, 1.0], [1.0, np.nan], [np.inf, np.nan], [1.0, np.inf]])
def test_nonfinite_gradients_behave_as_in_torch(values):
    torch = pytest.importorskip("torch")
    params = _params(values[:1], values[1:], dtype=np.float32)  # NaN first or last across tensors
    ts = [torch.zeros(1, requires_grad=True) for _ in range(2)]
    for t, v in zip(ts, values):
        t.grad = torch.tensor([v], dtype=torch.float32)
    expected = torch.nn.utils.clip_grad_norm_(ts, max_norm=1.0)
    total = clip_grad_norm_(params, max_norm=1.0)
    np.testing.assert_array_equal(total.numpy(), expected.numpy())
    for p, t in zip(params, ts):
        np.testing.assert_array_equal(p.grad.numpy(), t.grad.numpy())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("foreach", [None, True, False])
def test_ordinary_gradients_still_match_torch_and_foreach_is_accepted(dtype, foreach):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal(s).astype(dtype) * 10 for s in [(3, 4), (5,), (2, 2, 2)]]
    params = _params(*[g.ravel() for g in grads], dtype=dtype)
    ts = [torch.zeros(g.size, dtype=getattr(torch, np.dtype(dtype).name), requires_grad=True) for g in grads]
    for t, g in zip(ts, grads):
        t.grad = torch.from_numpy(g.ravel().copy())
    expected = torch.nn.utils.clip_grad_norm_(ts, max_norm=1.0, foreach=foreach)
    total = clip_grad_norm_(params, max_norm=1.0, foreach=foreach)
    rtol = 1e-12 if dtype == np.float64 else 1e-6
    assert total.numpy().dtype == dtype
    np.testing.assert_allclose(total.numpy(), expected.numpy(), rtol=rtol)
    for p, t in zip(params, ts):
        np.testing.assert_allclose(p.grad.numpy(), t.grad.numpy(), rtol=rtol)
    torch.nn.utils.clip_grad_value_(ts, 0.05, foreach=foreach)
    clip_grad_value_(params, 0.05, foreach=foreach)
    for p, t in zip(params, ts):
        np.testing.assert_array_equal(p.grad.numpy(), t.grad.numpy())


class _Huge(nn.Module):
    """out = x * (a + b); with the loss below each parameter's gradient is exactly 3e38 (float32)."""

    def __init__(self):
        super().__init__()
        self.a = Parameter(np.zeros(1, dtype=np.float32))
        self.b = Parameter(np.zeros(1, dtype=np.float32))

    def forward(self, x, hx=None):
        return x * self.a + x * self.b, hx


def _huge_loss(out, target):
    n, N = out.shape[:2]
    return out.reshape(n, N) * 3e38


@pytest.mark.parametrize("clip_norm", [None, 1.0])
def test_tbptt_reports_the_same_finite_norm_with_and_without_clipping(clip_norm):
    model = _Huge()
    seen = []
    engine = TBPTT(model, _huge_loss, optim.SGD(model.parameters(), lr=1.0), k1=1, clip_norm=clip_norm,
                   on_update=lambda e, u: seen.append(u))
    x = np.ones((1, 1, 1), dtype=np.float32)
    engine.run(x, np.zeros((1, 1, 1), dtype=np.float32))
    (update,) = seen
    assert update.grad_norm == pytest.approx(math.sqrt(2) * 3e38, rel=1e-7)
    if clip_norm is not None:
        assert update.clipped
        # Clipped to norm 1, then one SGD step of lr 1: each parameter moves by -1/sqrt(2).
        np.testing.assert_allclose(model.a.numpy(), [-math.sqrt(0.5)], rtol=1e-6)
        np.testing.assert_allclose(model.b.numpy(), [-math.sqrt(0.5)], rtol=1e-6)
