"""PyTorch's custom-Function protocol (``torch.autograd.Function`` under the stand-in): Tensors in and
out, save_for_backward, needs_input_grad, several outputs, broadcast gradients summed back; float64
gradchecks and the errors a wrong Function gets."""
import numpy as np
import pytest

import rnnbp
from rnnbp.autograd import gradcheck
from rnnbp.autograd.custom_function import Function


class Cube(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return 3 * x * x * grad


class AffineTwoOutputs(Function):
    """y = a * b * scale and a + b, b broadcast along a's leading dims; scale is not a tensor."""

    @staticmethod
    def forward(ctx, a, b, scale):
        ctx.scale = scale
        ctx.save_for_backward(a, b)
        return a * b * scale, a + b

    @staticmethod
    def backward(ctx, g_prod, g_sum):
        a, b = ctx.saved_tensors
        ga = g_prod * b * ctx.scale + g_sum if ctx.needs_input_grad[0] else None
        gb = g_prod * a * ctx.scale + g_sum if ctx.needs_input_grad[1] else None  # shape of a: summed back
        return ga, gb, None


def _leaf(*shape, seed=0):
    return rnnbp.tensor(np.random.default_rng(seed).standard_normal(shape), requires_grad=True)


def test_gradcheck_one_input():
    assert gradcheck(lambda x: Cube.apply(x), [_leaf(3, 2)])


def test_gradcheck_two_outputs_broadcast_and_a_constant_argument():
    a, b = _leaf(4, 3), _leaf(3, seed=1)
    assert gradcheck(lambda a, b: sum(o.sum() * w for o, w in zip(AffineTwoOutputs.apply(a, b, 0.5), (1.0, -2.0))),
                     [a, b])


def test_needs_input_grad_and_no_graph_under_no_grad():
    seen = []

    class Probe(Function):
        @staticmethod
        def forward(ctx, x, y):
            seen.append(ctx.needs_input_grad)
            return x + y

        @staticmethod
        def backward(ctx, g):
            return g, g

    x, y = _leaf(2), rnnbp.ones(2, dtype=rnnbp.float64)
    Probe.apply(x, y).sum().backward()
    assert seen == [(True, False)] and x.grad.tolist() == [1.0, 1.0]
    with rnnbp.no_grad():
        assert not Probe.apply(x, y).requires_grad


def test_matches_torch():
    torch = pytest.importorskip("torch")

    class TorchCube(torch.autograd.Function):
        forward, backward = Cube.forward, Cube.backward

    data = np.random.default_rng(2).standard_normal((3, 2))
    ours = rnnbp.tensor(data, requires_grad=True)
    theirs = torch.tensor(data, requires_grad=True)
    Cube.apply(ours).sum().backward()
    TorchCube.apply(theirs).sum().backward()
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-15)


def test_wrong_functions_are_named():
    class ReturnsArray(Function):
        @staticmethod
        def forward(ctx, x):
            return x.numpy()

    with pytest.raises(TypeError, match="ReturnsArray.forward: output 0 is a ndarray"):
        ReturnsArray.apply(_leaf(2))

    class TooFewGrads(Function):
        @staticmethod
        def forward(ctx, x, y):
            return x * y

        @staticmethod
        def backward(ctx, g):
            return g

    out = TooFewGrads.apply(_leaf(2), _leaf(2, seed=3))
    with pytest.raises(ValueError, match="TooFewGrads.backward returned 1 gradients for 2 inputs"):
        out.sum().backward()


def test_keyword_tensors_keep_their_gradient_and_integer_outputs_get_none():
    class ScaleShift(Function):
        @staticmethod
        def forward(ctx, scale, x, shift=0.0):
            ctx.scale = scale
            return x * scale + shift, x.argmax()

        @staticmethod
        def backward(ctx, grad, grad_index):
            return None, grad * ctx.scale, None

    x = _leaf(3)
    y, index = ScaleShift.apply(2.0, x=x, shift=1.0)
    assert y.requires_grad and not index.requires_grad
    y.sum().backward()
    assert x.grad.tolist() == [2.0, 2.0, 2.0]


def test_marked_non_differentiable_outputs_need_no_grad():
    class SortedPair(Function):
        @staticmethod
        def forward(ctx, x):
            doubled, flags = x * 2.0, (x > 0).double()
            ctx.mark_non_differentiable(flags)
            return doubled, flags

        @staticmethod
        def backward(ctx, grad, grad_flags):
            return grad * 2.0

    doubled, flags = SortedPair.apply(_leaf(3))
    assert doubled.requires_grad and not flags.requires_grad
