"""rnnbp.autograd.grad: torch.autograd.grad's contract (Tensors out, no .grad touched) on the same walk as backward."""
from __future__ import annotations

import numpy as np
import pytest

import rnnbp
from rnnbp.autograd import Function, GraphFreedError, Tensor, grad


def _leaves(seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    x = Tensor(rng.standard_normal((4, 3)).astype(dtype), requires_grad=True)
    w = Tensor(rng.standard_normal((5, 3)).astype(dtype), requires_grad=True)
    b = Tensor(rng.standard_normal(5).astype(dtype), requires_grad=True)
    return x, w, b


def _net(x, w, b):
    """Two outputs sharing an intermediate h: y (4, 5) and a scalar s."""
    h = (x @ w.T + b).tanh()  # (4, 5)
    y = h * h.sigmoid()
    s = (h.exp().sum() + (x * x).mean()).log()
    return h, y, s


def test_equals_backward_on_leaves_and_leaves_grad_untouched():
    x, w, b = _leaves()
    _, y, s = _net(x, w, b)
    loss = (y * 0.3).sum() + s
    gx, gw, gb = grad(loss, [x, w, b], retain_graph=True)
    assert x.grad is None and w.grad is None and b.grad is None
    loss.backward()
    for got, leaf in zip((gx, gw, gb), (x, w, b)):
        np.testing.assert_array_equal(got, leaf.grad.numpy())
        assert got is not leaf.grad.numpy()


def test_existing_grads_and_other_leaves_are_not_touched():
    x, w, b = _leaves()
    w.grad = np.full(w.shape, 7.0)
    before = w.grad.numpy().copy()
    _, y, _ = _net(x, w, b)
    (gx,) = grad(y.sum(), x)
    np.testing.assert_array_equal(w.grad.numpy(), before)
    assert x.grad is None and b.grad is None and gx.shape == x.shape


def test_intermediate_input_gets_the_gradient_retain_grad_would_give():
    x, w, b = _leaves()
    h, y, s = _net(x, w, b)
    g_y = np.random.default_rng(1).standard_normal(y.shape)
    gh, gx = grad([y, s], [h, x], grad_outputs=[g_y, None], retain_graph=True)
    h.retain_grad()
    y.backward(g_y, retain_graph=True)
    s.backward()
    np.testing.assert_allclose(gh, h.grad.numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(gx, x.grad.numpy(), rtol=1e-12, atol=1e-14)


def test_only_the_gradients_asked_for_are_computed():
    """Each node is told which of its inputs lead to a requested tensor (and told again next time)."""
    seen = []

    class Scale(Function):
        @staticmethod
        def forward(ctx, a, c):
            ctx.a, ctx.c = a, c
            return a * c

        @staticmethod
        def backward(ctx, g):
            seen.append(ctx.needs_input_grad)
            return (g * ctx.c if ctx.needs_input_grad[0] else None,
                    g * ctx.a if ctx.needs_input_grad[1] else None)

    a = Tensor(np.arange(3.0), requires_grad=True)
    c = Tensor(np.ones(3), requires_grad=True)
    out = Scale.apply(a, c).sum()
    (ga,) = grad(out, a, retain_graph=True)
    (gc,) = grad(out, c, retain_graph=True)
    out.backward()
    assert seen == [(True, False), (False, True), (True, True)]
    np.testing.assert_array_equal(ga, np.ones(3))
    np.testing.assert_array_equal(gc, np.arange(3.0))


def test_unused_input_raises_unless_allowed():
    x, w, b = _leaves()
    unused = Tensor(np.ones(2), requires_grad=True)
    out = (x @ w.T).sum()
    with pytest.raises(RuntimeError, match=r"inputs\[1\] \(shape \(2,\)\) was not used.*allow_unused=True"):
        grad(out, [x, unused], retain_graph=True)
    gx, gu, gb = grad(out, [x, unused, b], allow_unused=True)
    assert gu is None and gb is None and gx.shape == x.shape


def test_retain_graph():
    x, w, b = _leaves()
    out = (x @ w.T + b).tanh().sum()
    first = grad(out, [x, w], retain_graph=True)
    second = grad(out, [x, w])
    for g1, g2 in zip(first, second):
        np.testing.assert_array_equal(g1, g2)
    with pytest.raises(GraphFreedError, match="retain_graph=True"):
        grad(out, [x, w])


def test_same_input_twice_and_output_as_input():
    x, _, _ = _leaves()
    y = x * 2.0
    g1, g2 = grad(y.sum(), [x, x])
    np.testing.assert_array_equal(g1, g2)
    assert g1 is not g2
    g = np.random.default_rng(0).standard_normal(x.shape)
    np.testing.assert_array_equal(grad(x, x, grad_outputs=g)[0], g)
    y = x * 2.0
    np.testing.assert_array_equal(grad(y, y, grad_outputs=g)[0], g)


def test_shared_gradient_arrays_are_handed_out_separately():
    """x + y passes one array to both inputs; writing into one result must not change the other."""
    x, _, _ = _leaves()
    y = Tensor(np.zeros(x.shape), requires_grad=True)
    gx, gy = grad((x + y).sum(), [x, y])
    gx += 1.0
    np.testing.assert_array_equal(gy, np.ones(x.shape))


def test_dtype_is_kept():
    x, w, b = _leaves(dtype=np.float32)
    _, y, _ = _net(x, w, b)
    gx, gw = grad(y, [x, w], grad_outputs=np.ones(y.shape))  # float64 grad_outputs are cast
    assert gx.dtype == np.float32 and gw.dtype == np.float32


@pytest.mark.parametrize("call, error, match", [
    (lambda x, y: grad(y, x), RuntimeError, r"implicitly created only for one-element outputs.*\(4, 5\)"),
    (lambda x, y: grad(y, x, grad_outputs=np.ones((5, 4))), ValueError, r"grad_outputs\[0\] has shape \(5, 4\)"),
    (lambda x, y: grad(y.sum(), Tensor(np.ones(3))), RuntimeError, r"inputs\[0\].*does not require grad"),
    (lambda x, y: grad(Tensor(np.ones(3)).sum(), x), RuntimeError, r"outputs\[0\].*does not require grad"),
    (lambda x, y: grad(y.sum(), [x, x.numpy()]), TypeError, r"inputs\[1\] must be a Tensor, got ndarray"),
    (lambda x, y: grad([y, y], x, grad_outputs=[None]), ValueError, "1 grad_outputs for 2 outputs"),
])
def test_bad_calls_raise(call, error, match):
    x, w, b = _leaves()
    _, y, _ = _net(x, w, b)
    with pytest.raises(error, match=match):
        call(x, y)


def test_matches_torch_autograd_grad():
    torch = pytest.importorskip("torch")
    x, w, b = _leaves(seed=3)
    tx, tw, tb = (torch.tensor(t.numpy(), requires_grad=True) for t in (x, w, b))
    g_y = np.random.default_rng(4).standard_normal((4, 5))

    h, y, s = _net(x, w, b)
    ours = grad([y, s], [h, w, b], grad_outputs=[g_y, None])

    th = torch.tanh(tx @ tw.T + tb)
    ty = th * torch.sigmoid(th)
    ts = torch.log(th.exp().sum() + (tx * tx).mean())
    theirs = torch.autograd.grad([ty, ts], [th, tw, tb], grad_outputs=[torch.from_numpy(g_y), None])
    for got, want in zip(ours, theirs):
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-12, atol=1e-14)


def test_grad_is_exported_from_the_package():
    assert rnnbp.autograd.grad is grad


def test_a_freed_branch_raises_even_when_it_does_not_lead_to_the_inputs():
    """Documented divergence from torch.autograd.grad.numpy(): what is behind a freed node is unknown."""
    x = rnnbp.tensor(np.ones(3), requires_grad=True)
    y = rnnbp.tensor(np.ones(3), requires_grad=True)
    z = y * 2.0
    z.sum().backward()
    with pytest.raises(GraphFreedError, match="already freed"):
        grad((x * 3.0 + z).sum(), x)


def test_grad_returns_tensors_as_torch():
    """torch.autograd.grad gives Tensors: g.std() is the unbiased std, not NumPy's ddof=0."""
    x = rnnbp.tensor([1.0, 2.0, 3.0], dtype=rnnbp.float64, requires_grad=True)
    (g,) = grad((x ** 2).sum(), x)
    assert isinstance(g, rnnbp.Tensor) and not g.requires_grad
    assert g.tolist() == [2.0, 4.0, 6.0] and g.std().item() == 2.0
    with pytest.raises(NotImplementedError, match="create_graph=True"):
        grad((x ** 2).sum(), x, create_graph=True)
