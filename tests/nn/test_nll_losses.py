"""gaussian_nll_loss and poisson_nll_loss (functional and modules): gradchecks, PyTorch parity (values,
gradients, every reduction, var shapes, dtypes), errors."""
from types import SimpleNamespace

import numpy as np
import pytest

import rnnbp
from rnnbp import Tensor, nn
from rnnbp.autograd import gradcheck
import rnnbp.nn.functional as F

OURS = SimpleNamespace(F=F, tensor=rnnbp.tensor)
REDUCTIONS = ("none", "mean", "sum")


def _theirs():
    torch = pytest.importorskip("torch")
    import torch.nn.functional as TF
    return SimpleNamespace(F=TF, tensor=torch.tensor)


EPS = 0.05  # the tables' eps: large enough that a clamped variance keeps the loss (and the differences) moderate


def _var(shape, rng, clamped):
    v = np.abs(rng.standard_normal(shape)) + 0.2
    if clamped and v.size > 2:
        # Below eps: clamped, with the gradient taken at eps (PyTorch's clamp runs under no_grad). The
        # loss is flat there, so only the parity tests use it; central differences would say 0.
        v.flat[1] = 1e-3
    return v


# name -> (input shape, target shape, var shape): heteroscedastic, one var per row (unsqueezed), a dim
# of size 1, target broadcasting, a 0-d var for a 1-D input.
GAUSSIAN = {
    "same": ((4, 3), (4, 3), (4, 3)),
    "per-row": ((4, 3), (4, 3), (4,)),
    "last-dim-1": ((4, 3), (4, 3), (4, 1)),
    "first-dim-1": ((4, 3), (4, 3), (1, 3)),
    "middle-dim-1": ((2, 4, 3), (2, 4, 3), (2, 1, 3)),
    "target-broadcast": ((4, 3), (3,), (4, 3)),
    "target-wider": ((3,), (4, 3), (3,)),
    "0d-var": ((5,), (5,), ()),
}
POISSON = {"same": ((4, 3), (4, 3)), "target-broadcast": ((4, 3), (3,)), "input-broadcast": ((3,), (2, 3))}


def _gaussian_arrays(name, clamped=False):
    rng = np.random.default_rng(sum(map(ord, name)))
    xs, ts, vs = GAUSSIAN[name]
    return rng.standard_normal(xs), rng.standard_normal(ts), _var(vs, rng, clamped)


def _poisson_arrays(name, log_input):
    rng = np.random.default_rng(sum(map(ord, name)) + log_input)
    xs, ts = POISSON[name]
    x = rng.standard_normal(xs) if log_input else np.abs(rng.standard_normal(xs)) + 0.3
    # Counts above and below 1 (full=True adds its term only above), none within a step of 1 (the term
    # jumps there) and none at 0 (PyTorch's target gradient is NaN there with full=True).
    t = rng.integers(0, 5, ts) + np.where(rng.random(ts) < 0.5, 0.25, 0.5)
    return x, t.astype(float)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", sorted(GAUSSIAN))
def test_gaussian_gradcheck(name, reduction):
    # ``full`` only adds a constant; the parity tests cover its value.
    inputs = [Tensor(a, requires_grad=True) for a in _gaussian_arrays(name)]
    assert gradcheck(lambda x, t, v: F.gaussian_nll_loss(x, t, v, full=True, eps=EPS, reduction=reduction), inputs)


@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("log_input", [True, False])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", sorted(POISSON))
def test_poisson_gradcheck(name, reduction, log_input, full):
    inputs = [Tensor(a, requires_grad=True) for a in _poisson_arrays(name, log_input)]
    assert gradcheck(lambda x, t: F.poisson_nll_loss(x, t, log_input=log_input, full=full, reduction=reduction),
                     inputs)


def _run(m, fn, arrays):
    xs = [m.tensor(a, requires_grad=True) for a in arrays]
    out = fn(m.F, *xs)
    values = np.array(out.detach().numpy())
    direction = np.random.default_rng(1).standard_normal(values.shape)
    (out * m.tensor(direction)).sum().backward()
    return values, [np.array(x.grad.numpy()) for x in xs]


def _compare(fn, arrays):
    ours_out, ours_grads = _run(OURS, fn, arrays)
    torch_out, torch_grads = _run(_theirs(), fn, arrays)
    assert ours_out.shape == torch_out.shape
    np.testing.assert_allclose(ours_out, torch_out, rtol=1e-12, atol=1e-12)
    for a, b in zip(ours_grads, torch_grads):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", sorted(GAUSSIAN))
def test_gaussian_matches_torch(name, reduction, full):
    _compare(lambda F_, x, t, v: F_.gaussian_nll_loss(x, t, v, full=full, eps=EPS, reduction=reduction),
             _gaussian_arrays(name, clamped=True))


@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("log_input", [True, False])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", sorted(POISSON))
def test_poisson_matches_torch(name, reduction, log_input, full):
    _compare(lambda F_, x, t: F_.poisson_nll_loss(x, t, log_input=log_input, full=full, reduction=reduction),
             _poisson_arrays(name, log_input))


def test_gaussian_scalar_var_and_positional_arguments_match_torch():
    x, t, _ = _gaussian_arrays("same")
    _compare(lambda F_, a, b: F_.gaussian_nll_loss(a, b, 0.5, True, 1e-3, "sum"), (x, t))
    _compare(lambda F_, a, b: F_.gaussian_nll_loss(a, b, 1e-9), (x, t))  # a number below eps is clamped too


def test_poisson_positional_eps_and_legacy_reduction_match_torch():
    x, t = _poisson_arrays("same", False)
    # PyTorch's order: (input, target, log_input, full, size_average, eps, reduce, reduction).
    _compare(lambda F_, a, b: F_.poisson_nll_loss(a, b, False, False, None, 0.5), (x, t))
    with pytest.warns((DeprecationWarning, UserWarning)):
        _compare(lambda F_, a, b: F_.poisson_nll_loss(a, b, size_average=False), (x, t))
    with pytest.warns(DeprecationWarning):
        assert F.poisson_nll_loss(Tensor(x), Tensor(t), reduce=False).shape == x.shape


@pytest.mark.parametrize("dtypes", [("float32", "float32", "float32"), ("float32", "float64", "float32"),
                                    ("float64", "float32", "float32"), ("float32", "int64", "float32"),
                                    ("int64", "int64", "float32"), ("int64", "int64", "int64")])
def test_result_dtypes_match_torch(dtypes):
    torch = pytest.importorskip("torch")
    import torch.nn.functional as TF
    rng = np.random.default_rng(0)
    x, t, v = (rng.integers(1, 4, (3, 2)).astype(d) for d in dtypes)
    ours = F.gaussian_nll_loss(Tensor(x), Tensor(t), Tensor(v))
    if v.dtype.kind == "i":  # PyTorch's in-place clamp refuses an integer var; rnnbp computes in float32
        with pytest.raises(RuntimeError):
            TF.gaussian_nll_loss(torch.from_numpy(x), torch.from_numpy(t), torch.from_numpy(v))
        assert ours.dtype == np.float32
    else:
        theirs = TF.gaussian_nll_loss(torch.from_numpy(x), torch.from_numpy(t), torch.from_numpy(v))
        assert str(theirs.dtype) == f"torch.{ours.dtype}"
        np.testing.assert_allclose(ours.item(), theirs.item(), rtol=1e-6)
    ours = F.poisson_nll_loss(Tensor(x), Tensor(t))
    theirs = TF.poisson_nll_loss(torch.from_numpy(x), torch.from_numpy(t))
    assert str(theirs.dtype) == f"torch.{ours.dtype}"
    np.testing.assert_allclose(ours.item(), theirs.item(), rtol=1e-6)


def test_float32_gradients_stay_float32():
    rng = np.random.default_rng(2)
    x, t, v = (Tensor(a.astype(np.float32), requires_grad=True) for a in (rng.standard_normal((3, 2)),) * 2
               + (np.abs(rng.standard_normal((3, 2))) + 0.5,))
    F.gaussian_nll_loss(x, t, v).backward()
    F.poisson_nll_loss(x, t, full=True).backward()
    assert x.grad.dtype == t.grad.dtype == v.grad.dtype == np.float32


def test_clamped_variance_gets_the_gradient_at_eps():
    """var < eps is replaced by eps in the loss, and (PyTorch's clamp runs under no_grad) its gradient
    is the one at eps, not 0."""
    v = Tensor(np.array([1e-9]), requires_grad=True)
    loss = F.gaussian_nll_loss(Tensor(np.array([0.0])), Tensor(np.array([1e-3])), v, eps=1e-6)
    np.testing.assert_allclose(loss.item(), 0.5 * (np.log(1e-6) + 1e-6 / 1e-6))
    loss.backward()
    np.testing.assert_allclose(v.grad.numpy(), [0.5 * (1 / 1e-6 - 1e-6 / 1e-12)])


def test_poisson_full_target_gradient_is_zero_at_and_below_one():
    """PyTorch's composite backward gives NaN at target 0 with full=True (0 * log 0); rnnbp gives 0,
    the gradient of the masked Stirling term, plus the finite -input part."""
    x = Tensor(np.array([0.5, 0.2, -0.3]), requires_grad=True)
    t = Tensor(np.array([0.0, 0.5, 1.0]), requires_grad=True)
    F.poisson_nll_loss(x, t, full=True, reduction="sum").backward()
    np.testing.assert_array_equal(t.grad.numpy(), [-0.5, -0.2, 0.3])


# ----------------------------------------------------------------------- modules
def test_modules_match_the_functions_and_torch():
    torch = pytest.importorskip("torch")
    x, t, v = _gaussian_arrays("per-row")
    ours = nn.GaussianNLLLoss(full=True, eps=1e-4, reduction="sum")(Tensor(x), Tensor(t), Tensor(v))
    theirs = torch.nn.GaussianNLLLoss(full=True, eps=1e-4, reduction="sum")(*map(torch.tensor, (x, t, v)))
    np.testing.assert_allclose(ours.item(), theirs.item(), rtol=1e-12)
    x, t = _poisson_arrays("same", False)
    ours = nn.PoissonNLLLoss(False, True, None, 1e-3)(Tensor(x), Tensor(t))
    theirs = torch.nn.PoissonNLLLoss(False, True, None, 1e-3)(*map(torch.tensor, (x, t)))
    np.testing.assert_allclose(ours.item(), theirs.item(), rtol=1e-12)


def test_modules_arguments_and_repr():
    with pytest.raises(TypeError):
        nn.GaussianNLLLoss(True)  # keyword-only, as in PyTorch
    assert repr(nn.GaussianNLLLoss()) == "GaussianNLLLoss()"
    assert repr(nn.GaussianNLLLoss(full=True, reduction="sum")) == "GaussianNLLLoss(reduction='sum', full=True)"
    assert repr(nn.PoissonNLLLoss(log_input=False, eps=0.1)) == "PoissonNLLLoss(log_input=False, eps=0.1)"
    with pytest.raises(ValueError, match=r"GaussianNLLLoss: reduction must be 'none', 'mean' or 'sum'"):
        nn.GaussianNLLLoss(reduction="avg")
    with pytest.warns(DeprecationWarning):
        assert nn.PoissonNLLLoss(size_average=False).reduction == "sum"
    assert nn.GaussianNLLLoss().state_dict() == {} and nn.PoissonNLLLoss().state_dict() == {}


def test_registered_under_torch_names():
    from rnnbp.autograd.ops import likelihood
    assert F.gaussian_nll_loss is likelihood.gaussian_nll_loss and F.poisson_nll_loss is likelihood.poisson_nll_loss
    assert nn.GaussianNLLLoss.__module__ == nn.PoissonNLLLoss.__module__ == "rnnbp.nn.loss"


X43 = Tensor(np.ones((4, 3)))


@pytest.mark.parametrize("call, match", [
    (lambda: F.gaussian_nll_loss(X43, X43, Tensor(np.ones(3))),
     r"gaussian_nll_loss: var is of incorrect size: got shape \(3,\) for input of shape \(4, 3\)"),
    (lambda: F.gaussian_nll_loss(X43, X43, Tensor(np.ones((1, 1)))), r"var is of incorrect size: got shape \(1, 1\)"),
    (lambda: F.gaussian_nll_loss(X43, X43, Tensor(np.ones(()))), r"var is of incorrect size: got shape \(\)"),
    (lambda: F.gaussian_nll_loss(X43, X43, Tensor(-np.ones((4, 3)))),
     r"gaussian_nll_loss: var has negative entry/entries \(smallest -1.0\)"),
    (lambda: F.gaussian_nll_loss(X43, X43, -0.5), r"gaussian_nll_loss: var has negative entry/entries: got -0.5"),
    (lambda: F.gaussian_nll_loss(X43, X43, X43, reduction="avg"),
     r"gaussian_nll_loss: reduction must be 'none', 'mean' or 'sum', got 'avg'"),
    (lambda: F.gaussian_nll_loss(X43, Tensor(np.ones((5, 3))), X43),
     r"gaussian_nll_loss: input of shape \(4, 3\) and target of shape \(5, 3\) do not broadcast"),
    (lambda: F.poisson_nll_loss(X43, Tensor(np.ones((5, 3)))),
     r"poisson_nll_loss: input of shape \(4, 3\) and target of shape \(5, 3\) do not broadcast"),
    (lambda: F.poisson_nll_loss(X43, X43, reduction="avg"), r"poisson_nll_loss: reduction must be"),
])
def test_errors_name_the_op_and_the_shapes(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_torch_refuses_the_same_var_shapes():
    torch = pytest.importorskip("torch")
    import torch.nn.functional as TF
    x = torch.ones(4, 3)
    for var in (torch.ones(3), torch.ones(1, 1), torch.ones(()), -torch.ones(4, 3)):
        with pytest.raises(ValueError):
            TF.gaussian_nll_loss(x, x, var)
