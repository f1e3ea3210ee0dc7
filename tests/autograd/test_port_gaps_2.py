"""Names a new user's ported scripts reached for: lerp, dist, true_divide, logspace, nn.PReLU / F.prelu,
nn.init.eye_, Parameter() with no data. Float64 gradchecks and PyTorch parity."""
import numpy as np
import pytest

import rnnbp
from rnnbp.autograd import gradcheck

RNG = np.random.default_rng(0)
A, B, W = RNG.standard_normal((3, 4)), RNG.standard_normal((3, 4)), RNG.uniform(0.1, 0.9, (3, 4))
X = RNG.standard_normal((2, 3, 4))
X[np.abs(X) < 0.05] = 0.3  # away from prelu's kink


def _f64(lib, a, grad=True):
    return lib.tensor(a, dtype=lib.float64, requires_grad=grad)


@pytest.mark.parametrize("op", ["lerp_scalar", "lerp_tensor", "dist2", "dist1", "true_divide", "prelu_one",
                                "prelu_channels"])
def test_gradcheck(op):
    fns = {
        "lerp_scalar": (lambda a, b: rnnbp.lerp(a, b, 0.3), [A, B]),
        "lerp_tensor": (lambda a, b, w: a.lerp(b, w), [A, B, W]),
        "dist2": (lambda a, b: rnnbp.dist(a, b), [A, B]),
        "dist1": (lambda a, b: a.dist(b, 1), [A, B]),
        "true_divide": (lambda a, b: rnnbp.true_divide(a, b), [A, B + 3.0]),
        "prelu_one": (lambda x, w: rnnbp.nn.functional.prelu(x, w), [X, np.array([0.25])]),
        "prelu_channels": (lambda x, w: rnnbp.nn.functional.prelu(x, w), [X, np.array([0.1, -0.2, 0.3])]),
    }
    fn, arrays = fns[op]
    assert gradcheck(fn, [_f64(rnnbp, a) for a in arrays])


def _program(lib):
    a, b, w = _f64(lib, A), _f64(lib, B), _f64(lib, W)
    x = _f64(lib, X)
    prelu = lib.nn.PReLU(3).double()
    eye = lib.nn.init.eye_(lib.empty(3, 4, dtype=lib.float64))
    loss = (lib.lerp(a, b, w) ** 2).sum() + lib.dist(a, b, 3) + lib.true_divide(a, b + 3).sum() \
        + (prelu(x) * x).sum() + (a * eye).sum()
    loss.backward()
    return [loss.detach().numpy(), a.grad.numpy(), b.grad.numpy(), w.grad.numpy(), x.grad.numpy(),
            prelu.weight.grad.numpy(), lib.logspace(-1, 2, 5, base=2.0, dtype=lib.float64).numpy(),
            np.array(lib.nn.Parameter().shape), np.array(lib.nn.Parameter().requires_grad)]


def test_like_pytorch():
    torch = pytest.importorskip("torch")
    for ours, theirs in zip(_program(rnnbp), _program(torch)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="prelu: 2 weights for an input of shape"):
        rnnbp.nn.functional.prelu(rnnbp.zeros(2, 3), rnnbp.ones(2))
    with pytest.raises(ValueError, match="eye_: only tensors with 2 dimensions"):
        rnnbp.nn.init.eye_(rnnbp.zeros(3))
    with pytest.raises(ValueError, match="logspace: number of steps must be non-negative"):
        rnnbp.logspace(0, 1, -1)
