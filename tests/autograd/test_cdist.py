"""cdist: gradchecks for every p and route, PyTorch parity (values, gradients, compute modes, batch
broadcasting, empty inputs), zero-distance gradients, dtypes, errors."""
import math
from types import SimpleNamespace

import numpy as np
import pytest

import rnnbp
from rnnbp import Tensor
from rnnbp.autograd import gradcheck
from rnnbp.autograd.ops.distance import cdist

OURS = SimpleNamespace(cdist=cdist, tensor=rnnbp.tensor)
MODES = ("use_mm_for_euclid_dist_if_necessary", "use_mm_for_euclid_dist", "donot_use_mm_for_euclid_dist")


def _theirs():
    torch = pytest.importorskip("torch")
    return SimpleNamespace(cdist=torch.cdist, tensor=torch.tensor)


# name -> (p, compute_mode, x1 shape, x2 shape). Standard normal values: no two coordinates tie and no
# difference is 0, so every p is differentiable there.
CASES = {
    "p2-2d": (2.0, MODES[0], (4, 3), (5, 3)),
    "p2-mm": (2.0, MODES[1], (4, 3), (5, 3)),
    "p2-mm-if-necessary-large": (2.0, MODES[0], (27, 2), (3, 2)),
    "p2-never-mm-large": (2.0, MODES[2], (27, 2), (3, 2)),
    "p2-batch": (2.0, MODES[0], (2, 3, 4), (2, 5, 4)),
    "p2-batch-broadcast": (2.0, MODES[0], (2, 1, 3, 2), (3, 4, 2)),
    "p2-mm-batch-broadcast": (2.0, MODES[1], (2, 1, 3, 2), (3, 4, 2)),
    "p1": (1.0, MODES[0], (3, 4), (2, 4)),
    "p0.5": (0.5, MODES[0], (3, 4), (2, 4)),
    "p1.5": (1.5, MODES[0], (3, 4), (2, 4)),
    "p3": (3.0, MODES[0], (3, 4), (2, 4)),
    "p3-batch-broadcast": (3.0, MODES[0], (1, 3, 2), (2, 2, 2)),
    "pinf": (math.inf, MODES[0], (3, 4), (2, 4)),
    "pinf-batch": (math.inf, MODES[0], (2, 3, 4), (1, 2, 4)),
    "p0": (0.0, MODES[0], (3, 4), (2, 4)),
    "p-int-3": (3, MODES[0], (3, 2), (4, 2)),
}


def _arrays(name):
    rng = np.random.default_rng(sum(map(ord, name)))
    _, _, s1, s2 = CASES[name]
    return rng.standard_normal(s1), rng.standard_normal(s2)


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradcheck(name):
    p, mode, _, _ = CASES[name]
    a, b = (Tensor(x, requires_grad=True) for x in _arrays(name))
    assert gradcheck(lambda x1, x2: cdist(x1, x2, p, mode), [a, b])


def _run(m, p, mode, arrays):
    xs = [m.tensor(a, requires_grad=True) for a in arrays]
    out = m.cdist(*xs, p=p, compute_mode=mode)
    values = np.array(out.detach().numpy())
    direction = np.random.default_rng(1).standard_normal(values.shape)
    (out * m.tensor(direction)).sum().backward()
    return values, [np.array(x.grad.numpy()) for x in xs]


def _compare(p, mode, arrays, tol=1e-12):
    ours_out, ours_grads = _run(OURS, p, mode, arrays)
    torch_out, torch_grads = _run(_theirs(), p, mode, arrays)
    assert ours_out.shape == torch_out.shape
    np.testing.assert_allclose(ours_out, torch_out, rtol=tol, atol=tol)
    for a, b in zip(ours_grads, torch_grads):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


@pytest.mark.parametrize("name", sorted(CASES))
def test_forward_and_backward_match_torch(name):
    p, mode, _, _ = CASES[name]
    _compare(p, mode, _arrays(name))


@pytest.mark.parametrize("p", [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, math.inf])
def test_ties_and_zero_differences_match_torch(p):
    """Integer coordinates: equal rows (distance 0), zero coordinate differences and tied maxima, where
    the norms are not differentiable and PyTorch's conventions decide; every route of p = 2."""
    rng = np.random.default_rng(int(p * 10) if p != math.inf else 99)
    a, b = rng.integers(-2, 3, (6, 3)).astype(float), rng.integers(-2, 3, (5, 3)).astype(float)
    b[0] = a[0]
    for mode in (MODES if p == 2.0 else MODES[:1]):
        _compare(p, mode, (a, b))


def test_zero_distance_sends_no_gradient():
    """Identical rows: dist 0, and their pair adds nothing to either gradient (p = 2 by both routes)."""
    x = np.array([[1.0, 2.0], [0.5, -1.0]])
    for mode in (MODES[1], MODES[2]):
        for p in (2.0, 1.5, 3.0):
            a, b = Tensor(x.copy(), requires_grad=True), Tensor(x[:1].copy(), requires_grad=True)
            d = cdist(a, b, p, mode)
            assert d.numpy()[0, 0] == 0.0
            d.backward(np.array([[1.0], [0.0]]))   # only the zero-distance pair carries a gradient
            assert np.isfinite(a.grad.numpy()).all()
            np.testing.assert_array_equal(a.grad.numpy(), 0.0)
            np.testing.assert_array_equal(b.grad.numpy(), 0.0)


def test_values_against_a_direct_formula():
    """Without PyTorch: the p-norm of every difference, and the mm route for p = 2."""
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal((2, 30, 3)), rng.standard_normal((2, 4, 3))
    diff = a[:, :, None, :] - b[:, None, :, :]
    for p, expected in [(1.0, np.abs(diff).sum(-1)), (2.0, np.sqrt((diff ** 2).sum(-1))),
                        (3.0, (np.abs(diff) ** 3).sum(-1) ** (1 / 3)), (math.inf, np.abs(diff).max(-1)),
                        (0.0, (diff != 0).sum(-1).astype(float))]:
        for mode in MODES:
            np.testing.assert_allclose(cdist(Tensor(a), Tensor(b), p, mode).numpy(), expected, rtol=1e-10, atol=1e-12)


def test_pinf_ties_each_get_the_whole_gradient_like_torch():
    a, b = Tensor(np.array([[0.0, 1.0, 3.0]]), requires_grad=True), Tensor(np.array([[3.0, 4.0, 0.0]]))
    cdist(a, b, p=math.inf).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [[-1.0, -1.0, 1.0]])


def test_p0_counts_differences_and_has_zero_gradient():
    a = Tensor(np.array([[0.0, 1.0, 3.0]]), requires_grad=True)
    d = cdist(a, Tensor(np.array([[0.0, 4.0, 0.0], [0.0, 1.0, 3.0]])), p=0)
    np.testing.assert_array_equal(d.numpy(), [[2.0, 0.0]])
    d.sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), 0.0)


def test_empty_inputs_and_shapes_match_torch():
    torch = pytest.importorskip("torch")
    for s1, s2 in [((0, 3), (2, 3)), ((2, 3), (0, 3)), ((2, 0), (4, 0)), ((0, 2, 3), (2, 3)),
                   ((4, 1, 2, 3), (5, 4, 3))]:
        for p in (0.0, 2.0, math.inf):
            a, b = Tensor(np.ones(s1), requires_grad=True), Tensor(np.zeros(s2), requires_grad=True)
            ours = cdist(a, b, p)
            theirs = torch.cdist(torch.ones(s1, dtype=torch.float64), torch.zeros(s2, dtype=torch.float64), p)
            assert ours.shape == tuple(theirs.shape)
            np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
            ours.sum().backward()
            assert a.grad.shape == s1 and b.grad.shape == s2


def test_float32_in_float32_out_and_gradients():
    rng = np.random.default_rng(0)
    for mode in (MODES[1], MODES[2]):
        for p in (1.0, 2.0, 3.0):
            a = Tensor(rng.standard_normal((3, 2)).astype(np.float32), requires_grad=True)
            b = Tensor(rng.standard_normal((4, 2)).astype(np.float32), requires_grad=True)
            d = cdist(a, b, p, mode)
            assert d.dtype == np.float32
            d.sum().backward()
            assert a.grad.dtype == np.float32 and b.grad.dtype == np.float32


def test_registered_under_torch_names():
    assert rnnbp.cdist is cdist and rnnbp.autograd.ops.cdist is cdist


X = Tensor(np.zeros((2, 3)))


@pytest.mark.parametrize("call, error, match", [
    (lambda: cdist(Tensor(np.zeros(3)), X), ValueError, r"cdist: x1 must have at least 2 dims .*got shape \(3,\)"),
    (lambda: cdist(X, Tensor(np.zeros(3))), ValueError, r"cdist: x2 must have at least 2 dims"),
    (lambda: cdist(X, Tensor(np.zeros((2, 4)))), ValueError,
     r"cdist: x1 of shape \(2, 3\) and x2 of shape \(2, 4\) must have the same number of columns M .*3 and 4"),
    (lambda: cdist(X, X, p=-1), ValueError, r"cdist: p must be >= 0 .*got -1.0"),
    (lambda: cdist(X, X, p=float("nan")), ValueError, r"cdist: p must be >= 0 .*got nan"),
    (lambda: cdist(X, X, p="2"), TypeError, r"cdist: p must be a number, got '2'"),
    (lambda: cdist(Tensor(np.zeros((2, 3), np.int64)), X), TypeError, r"cdist: x1 must be float32 or float64 .*int64"),
    (lambda: cdist(X, Tensor(np.zeros((2, 3), np.float16))), TypeError,
     r"cdist: x2 must be float32 or float64 .*float16"),
    (lambda: cdist(X, Tensor(np.zeros((2, 3), np.float32))), TypeError,
     r"cdist: x1 and x2 must have the same dtype, got float64 and float32"),
    (lambda: cdist(Tensor(np.zeros((2, 2, 3))), Tensor(np.zeros((3, 2, 3)))), ValueError,
     r"cdist: the batch dims of x1 \(2,\) and x2 \(3,\) do not broadcast"),
    (lambda: cdist(X, X, compute_mode="bad"), ValueError, r"cdist: compute_mode must be one of .*got 'bad'"),
])
def test_errors_name_the_op_and_the_shapes(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_torch_refuses_the_same_inputs():
    """The inputs the error table refuses, PyTorch refuses too (float16 included, on the CPU)."""
    torch = pytest.importorskip("torch")
    z = torch.zeros(2, 3)
    for call in (lambda: torch.cdist(torch.zeros(3), z), lambda: torch.cdist(z, torch.zeros(2, 4)),
                 lambda: torch.cdist(z, z, p=-1.0), lambda: torch.cdist(z, z, p=float("nan")),
                 lambda: torch.cdist(z.long(), z.long()), lambda: torch.cdist(z.half(), z.half()),
                 lambda: torch.cdist(z, z.double()), lambda: torch.cdist(torch.zeros(2, 2, 3), torch.zeros(3, 2, 3)),
                 lambda: torch.cdist(z, z, compute_mode="bad")):
        with pytest.raises((RuntimeError, ValueError)):
            call()
