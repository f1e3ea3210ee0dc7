"""huber_loss / smooth_l1_loss and HuberLoss / SmoothL1Loss: gradchecks, PyTorch parity, errors."""
import warnings

import numpy as np
import pytest

from rnnbp import Tensor
from rnnbp.autograd import gradcheck
from rnnbp.autograd.ops.loss import huber_loss, smooth_l1_loss
from rnnbp.nn.loss import HuberLoss, SmoothL1Loss

REDUCTIONS = ["none", "mean", "sum"]
SHAPES = [(7,), (3, 4), (2, 3, 2), ()]
DELTAS = [1.0, 0.5, 2.0, 0.1, 3]
BETAS = [1.0, 0.5, 2.0, 0.1, 0.0]


def _pair(shape, seed=0, spread=2.0):
    """Input and target whose differences straddle the thresholds but never sit on them."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * spread
    t = rng.standard_normal(shape)
    return x, t


def _loss(kind):
    return huber_loss if kind == "huber" else smooth_l1_loss


def _kw(kind, value):
    return {"delta": value} if kind == "huber" else {"beta": value}


CASES = [("huber", d) for d in DELTAS] + [("smooth_l1", b) for b in BETAS]


# --------------------------------------------------------------- gradchecks
@pytest.mark.parametrize("kind, value", CASES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", SHAPES)
def test_gradcheck_input_and_target(kind, value, reduction, shape):
    x, t = _pair(shape, seed=len(shape))
    xs = [Tensor(x, requires_grad=True), Tensor(t, requires_grad=True)]
    f = _loss(kind)
    assert gradcheck(lambda a, b: f(a, b, reduction=reduction, **_kw(kind, value)), xs)


def test_gradcheck_weighted_huber():
    x, t = _pair((3, 4))
    w = np.random.default_rng(5).uniform(0.1, 2.0, (3, 4))
    for reduction in REDUCTIONS:
        xs = [Tensor(x, requires_grad=True), Tensor(t, requires_grad=True), Tensor(w, requires_grad=True)]
        assert gradcheck(lambda a, b, c: huber_loss(a, b, reduction=reduction, delta=0.7, weight=c), xs)


# ----------------------------------------------------------- PyTorch parity
def _torch_run(torch, kind, x, t, reduction, value, weight=None):
    import torch.nn.functional as F
    tx = torch.tensor(x, requires_grad=True)
    tt = torch.tensor(t, requires_grad=True)
    if kind == "huber":
        kw = {"weight": torch.tensor(weight)} if weight is not None else {}
        out = F.huber_loss(tx, tt, reduction=reduction, delta=value, **kw)
    else:
        out = F.smooth_l1_loss(tx, tt, reduction=reduction, beta=value)
    return out, tx, tt


@pytest.mark.parametrize("kind, value", CASES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_forward_and_backward_match_torch(kind, value, reduction, shape, dtype):
    torch = pytest.importorskip("torch")
    x, t = _pair(shape, seed=7)
    x, t = x.astype(dtype), t.astype(dtype)
    ax, at = Tensor(x, requires_grad=True), Tensor(t, requires_grad=True)
    ours = _loss(kind)(ax, at, reduction=reduction, **_kw(kind, value))
    theirs, tx, tt = _torch_run(torch, kind, x, t, reduction, value)
    assert ours.dtype == dtype and ours.shape == tuple(theirs.shape)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(ours._data, theirs.detach().numpy(), rtol=tol, atol=tol)
    direction = np.random.default_rng(2).standard_normal(ours.shape).astype(dtype)
    (ours * Tensor(direction)).sum().backward()
    (theirs * torch.tensor(direction)).sum().backward()
    assert ax.grad.dtype == dtype and at.grad.dtype == dtype
    np.testing.assert_allclose(ax.grad._data, tx.grad.numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(at.grad._data, tt.grad.numpy(), rtol=tol, atol=tol)


@pytest.mark.parametrize("kind, value", CASES)
def test_gradient_at_the_kinks_matches_torch(kind, value):
    """Differences of exactly 0 and exactly +-threshold: the one-sided choices PyTorch makes."""
    torch = pytest.importorskip("torch")
    v = float(value)
    x = np.array([0.0, v, -v, 2 * v + 1, -(2 * v + 1), 0.25 * v])
    t = np.zeros_like(x)
    ax = Tensor(x, requires_grad=True)
    ours = _loss(kind)(ax, Tensor(t), reduction="sum", **_kw(kind, value))
    ours.backward()
    theirs, tx, _ = _torch_run(torch, kind, x, t, "sum", value)
    theirs.backward()
    np.testing.assert_allclose(ours._data, theirs.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(ax.grad._data, tx.grad.numpy(), rtol=1e-12)


def test_smooth_l1_with_beta_zero_is_l1():
    from rnnbp.autograd.ops.loss import l1_loss
    x, t = _pair((3, 4))
    for reduction in REDUCTIONS:
        np.testing.assert_array_equal(smooth_l1_loss(Tensor(x), Tensor(t), reduction=reduction, beta=0.0)._data,
                                      l1_loss(Tensor(x), Tensor(t), reduction=reduction)._data)


def test_huber_is_delta_times_smooth_l1():
    x, t = _pair((3, 4))
    for d in (0.3, 1.0, 2.5):
        np.testing.assert_allclose(huber_loss(Tensor(x), Tensor(t), reduction="none", delta=d)._data,
                                   d * smooth_l1_loss(Tensor(x), Tensor(t), reduction="none", beta=d)._data,
                                   rtol=1e-12)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_weighted_huber_matches_torch(reduction):
    torch = pytest.importorskip("torch")
    x, t = _pair((3, 4))
    w = np.random.default_rng(5).uniform(0.1, 2.0, (3, 4))
    ax, at = Tensor(x, requires_grad=True), Tensor(t, requires_grad=True)
    ours = huber_loss(ax, at, reduction=reduction, delta=0.7, weight=Tensor(w))
    theirs, tx, tt = _torch_run(torch, "huber", x, t, reduction, 0.7, weight=w)
    np.testing.assert_allclose(ours._data, theirs.detach().numpy(), rtol=1e-12)
    ours.sum().backward()
    theirs.sum().backward()
    np.testing.assert_allclose(ax.grad._data, tx.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(at.grad._data, tt.grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize("kind", ["huber", "smooth_l1"])
def test_empty_mean_is_nan_with_zero_gradient_like_torch(kind):
    torch = pytest.importorskip("torch")
    for value in ((1.0, 0.0) if kind == "smooth_l1" else (1.0,)):
        ax = Tensor(np.zeros(0), requires_grad=True)
        ours = _loss(kind)(ax, Tensor(np.zeros(0)), **_kw(kind, value))
        theirs, _, _ = _torch_run(torch, kind, np.zeros(0), np.zeros(0), "mean", value)
        assert np.isnan(ours.item()) and np.isnan(theirs.item())
        ours.backward()
        assert ax.grad.shape == (0,)


# ------------------------------------------------------------------ modules
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_modules_match_torch(reduction):
    torch = pytest.importorskip("torch")
    x, t = _pair((4, 3))
    for ours_mod, theirs_mod in [
        (HuberLoss(reduction=reduction, delta=0.4), torch.nn.HuberLoss(reduction=reduction, delta=0.4)),
        (HuberLoss(reduction=reduction), torch.nn.HuberLoss(reduction=reduction)),
        (SmoothL1Loss(reduction=reduction, beta=0.4), torch.nn.SmoothL1Loss(reduction=reduction, beta=0.4)),
        (SmoothL1Loss(reduction=reduction, beta=0.0), torch.nn.SmoothL1Loss(reduction=reduction, beta=0.0)),
    ]:
        np.testing.assert_allclose(ours_mod(Tensor(x), Tensor(t))._data,
                                   theirs_mod(torch.tensor(x), torch.tensor(t)).numpy(), rtol=1e-12)


def test_module_attributes_and_repr():
    assert repr(HuberLoss()) == "HuberLoss()"
    assert repr(HuberLoss(reduction="sum", delta=2.0)) == "HuberLoss(reduction='sum', delta=2.0)"
    assert repr(SmoothL1Loss(beta=0.5)) == "SmoothL1Loss(beta=0.5)"
    m = SmoothL1Loss(reduction="none", beta=0)
    assert m.reduction == "none" and m.beta == 0.0
    assert HuberLoss(delta=3).delta == 3.0


def test_smooth_l1_module_legacy_reduction_arguments():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = SmoothL1Loss(size_average=False)
    assert m.reduction == "sum"
    assert any(issubclass(w.category, DeprecationWarning) for w in caught)
    with pytest.warns(DeprecationWarning):
        assert SmoothL1Loss(reduce=False).reduction == "none"


# ------------------------------------------------------------------- errors
X = Tensor(np.zeros((2, 3)))


@pytest.mark.parametrize("call, error, match", [
    (lambda: huber_loss(X, X, delta=0.0), ValueError, r"huber_loss: delta must be positive, got 0.0"),
    (lambda: huber_loss(X, X, delta=-1.0), ValueError, r"huber_loss: delta must be positive, got -1.0"),
    (lambda: huber_loss(X, X, delta=float("nan")), ValueError, r"huber_loss: delta must be positive, got nan"),
    (lambda: huber_loss(X, X, delta="1"), TypeError, r"huber_loss: delta must be a number"),
    (lambda: smooth_l1_loss(X, X, beta=-0.5), ValueError, r"smooth_l1_loss: beta must be non-negative, got -0.5"),
    (lambda: huber_loss(X, X, reduction="avg"), ValueError,
     r"huber_loss: reduction must be 'none', 'mean' or 'sum', got 'avg'"),
    (lambda: smooth_l1_loss(X, X, reduction="avg"), ValueError, r"smooth_l1_loss: reduction must be"),
    (lambda: huber_loss(X, Tensor(np.zeros(3))), ValueError,
     r"huber_loss: target shape \(3,\) differs from input shape \(2, 3\)"),
    (lambda: smooth_l1_loss(X, Tensor(np.zeros((3, 2)))), ValueError,
     r"smooth_l1_loss: target shape \(3, 2\) differs from input shape \(2, 3\)"),
    (lambda: huber_loss(Tensor(np.zeros(3, dtype=np.int64)), Tensor(np.zeros(3))), TypeError,
     r"huber_loss: expected a floating-point input \(predictions\), got int64"),
    (lambda: smooth_l1_loss(Tensor(np.zeros(3, dtype=np.int64)), Tensor(np.zeros(3))), TypeError,
     r"smooth_l1_loss: expected a floating-point input"),
    (lambda: huber_loss(X, X, weight=np.ones(3)), ValueError,
     r"huber_loss: weight of shape \(3,\) must have the input's shape \(2, 3\)"),
    (lambda: HuberLoss(delta=0), ValueError, r"HuberLoss: delta must be positive, got 0.0"),
    (lambda: SmoothL1Loss(beta=-1), ValueError, r"SmoothL1Loss: beta must be non-negative, got -1.0"),
    (lambda: HuberLoss(reduction="avg"), ValueError, r"HuberLoss: reduction must be"),
    (lambda: SmoothL1Loss(reduction="avg"), ValueError, r"SmoothL1Loss: reduction must be"),
])
def test_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()
