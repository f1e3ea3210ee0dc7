"""Tensor and engine behaviour: accumulation, freeing, grad mode, detach, aliasing, long graphs."""
from __future__ import annotations

import sys

import numpy as np
import pytest

import rnnbp
from rnnbp.autograd import (
    GraphFreedError, Tensor, enable_grad, is_grad_enabled, no_grad, ops, set_grad_enabled,
)


def leaf(values, dtype=np.float64) -> Tensor:
    return Tensor(np.array(values, dtype=dtype), requires_grad=True)


# ---------------------------------------------------------------- accumulation and freeing
def test_grad_accumulates_across_backward_calls():
    x = leaf([1.0, 2.0, 3.0])
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 4.0, 6.0])
    (x * 3.0).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [5.0, 7.0, 9.0])


def test_second_backward_through_freed_graph_names_the_op():
    x = leaf(2.0)
    y = x * 3.0
    y.backward()
    with pytest.raises(GraphFreedError, match="Mul") as info:
        y.backward()
    assert isinstance(info.value, RuntimeError)
    assert "retain_graph=True" in str(info.value)


def test_backward_into_a_freed_subgraph_names_the_freed_op():
    x = leaf([1.0, 2.0])
    z = x * 3.0
    z.sum().backward()
    with pytest.raises(GraphFreedError, match="Mul"):
        z.exp().sum().backward()  # Exp and Sum are new; the Mul below them was freed


def test_retain_graph_allows_a_second_backward():
    x = leaf([1.0, -2.0])
    loss = (x.tanh() * x).sum()
    loss.backward(retain_graph=True)
    first = x.grad.numpy().copy()
    loss.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * first)
    with pytest.raises(GraphFreedError, match="Sum"):
        loss.backward()


def test_graph_arrays_are_released_after_backward():
    x = leaf([1.0, 2.0])
    y = x.exp()
    node = y.grad_fn
    assert "y" in vars(node)
    y.sum().backward()
    assert node.freed and not vars(node)


@pytest.mark.parametrize("make, name", [
    (lambda x: x.argmax(), "argmax"),
    (lambda x: ops.argmin(x, 0), "argmin"),
    (lambda x: x > 0, "comparison (gt)"),
    (lambda x: x == 1.0, "comparison (eq)"),
    (lambda x: x.long(), "cast to int64"),
    (lambda x: x.max(dim=0).indices, "max indices"),
], ids=["argmax", "argmin", "gt", "eq", "long", "max-indices"])
def test_backward_through_non_differentiable_result_names_the_op(make, name):
    x = leaf([[1.0, -2.0], [3.0, 0.5]])
    out = make(x)
    assert not out.requires_grad
    with pytest.raises(RuntimeError, match="not differentiable") as info:
        out.sum().backward() if out.ndim else out.backward(np.ones(()))
    assert name in str(info.value)
    with pytest.raises(RuntimeError, match=name.replace("(", r"\(").replace(")", r"\)")):
        (out.float() * 2.0).mean().backward()  # still named further downstream


def test_backward_on_a_constant_says_so():
    with pytest.raises(RuntimeError, match="does not require grad"):
        Tensor(np.ones(2)).sum().backward()
    x = leaf([1.0])
    with no_grad():
        y = x * 2.0
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.sum().backward()


def test_long_chain_backpropagates_without_recursion():
    n = 10_000
    assert n > sys.getrecursionlimit()
    x = leaf(0.3)
    y = x
    for _ in range(n):
        y = y * 1.0001 + 0.0  # two nodes per step: 20,000 in all
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 1.0001 ** n, rtol=1e-9)


def test_long_recurrent_chain_gradient():
    """h_t = tanh(w h_{t-1} + x): the gradient w.r.t. w matches a hand-written BPTT loop."""
    n, w0 = 10_000, 0.9
    w, h = leaf(w0), Tensor(np.array(0.5))
    for _ in range(n):
        h = (w * h + 0.1).tanh()
    h.backward()
    hs = [0.5]
    for _ in range(n):
        hs.append(np.tanh(w0 * hs[-1] + 0.1))
    grad_w, dh = 0.0, 1.0
    for t in range(n, 0, -1):
        da = dh * (1 - hs[t] ** 2)
        grad_w += da * hs[t - 1]
        dh = da * w0
    np.testing.assert_allclose(w.grad.numpy(), grad_w, rtol=1e-10)


# ---------------------------------------------------------------- grad mode
def test_no_grad_context_manager():
    x = leaf([1.0])
    with no_grad():
        assert not is_grad_enabled()
        y = x * 2.0
        with enable_grad():
            assert is_grad_enabled()
            z = x * 2.0
        assert not is_grad_enabled()
    assert is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None
    assert z.requires_grad and z.grad_fn is not None


def test_no_grad_and_enable_grad_as_decorators():
    x = leaf([1.0])

    @no_grad()
    def infer(t):
        assert not is_grad_enabled()
        return t * 2.0

    @enable_grad()
    def train(t):
        return t * 2.0

    assert not infer(x).requires_grad
    assert is_grad_enabled()
    with no_grad():
        assert train(x).requires_grad
        assert not is_grad_enabled()
    assert infer.__name__ == "infer"


def test_grad_mode_restored_after_exception():
    @no_grad()
    def boom():
        raise KeyError("inside")

    with pytest.raises(KeyError):
        boom()
    assert is_grad_enabled()
    with pytest.raises(ValueError):
        with no_grad():
            with enable_grad():
                raise ValueError
    assert is_grad_enabled()
    set_grad_enabled(False)
    try:
        with pytest.raises(ValueError), enable_grad():
            raise ValueError
        assert not is_grad_enabled()
    finally:
        set_grad_enabled(True)


# ---------------------------------------------------------------- detach, requires_grad_, leaves
def test_detach_shares_data_and_cuts_the_graph():
    x = leaf([1.0, 2.0])
    d = x.detach()
    assert not d.requires_grad and d.is_leaf and d.numpy() is x.numpy()
    y = (x * x.detach()).sum()  # d/dx = x, not 2x
    y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 2.0])
    assert not (d * 3.0).requires_grad


def test_requires_grad_():
    x = Tensor(np.ones(2))
    assert not x.requires_grad and x.is_leaf
    assert x.requires_grad_() is x and x.requires_grad
    (x * 2.0).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0])
    x.requires_grad_(False)
    assert not (x * 2.0).requires_grad
    y = leaf([1.0]) * 2.0
    assert not y.is_leaf
    with pytest.raises(RuntimeError, match="leaf"):
        y.requires_grad_(False)
    assert y.requires_grad


def test_leaf_grads_never_alias():
    a, b = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    (a + b).sum().backward()
    assert a._grad is not b._grad and not np.shares_memory(a.grad.numpy(), b.grad.numpy())
    a.grad += 10.0
    np.testing.assert_array_equal(b.grad.numpy(), [1.0, 1.0])
    c, d = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    (c - (-d)).backward(np.array([1.0, 1.0]))
    c.grad *= 0.0
    np.testing.assert_array_equal(d.grad.numpy(), [1.0, 1.0])


def test_leaf_grad_does_not_alias_the_gradient_argument():
    x = leaf([1.0, 2.0])
    g = np.array([1.0, 1.0])
    (x * 1.0).backward(g)
    x.grad += 1.0
    np.testing.assert_array_equal(g, [1.0, 1.0])


def test_leaf_accumulation_does_not_corrupt_a_pending_gradient():
    """Regression: a leaf took over an upstream gradient array that another node still had to
    read, then accumulated into it in place, corrupting that node's gradient."""
    a, b = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    c = b * 3.0
    s = a + c  # a adopts the incoming gradient array that c also receives
    u = a * c  # runs before c: a's accumulation must not write into c's pending gradient
    (s + u).backward(np.ones(2))
    np.testing.assert_array_equal(a.grad.numpy(), 1 + 3 * b.numpy())
    np.testing.assert_array_equal(b.grad.numpy(), 3 * (1 + a.numpy()))


def test_split_with_unused_outputs():
    x = leaf(np.arange(10.0).reshape(5, 2))
    first, middle, last = ops.split(x, [2, 1, 2])
    (first * 2.0).sum().backward()
    expected = np.zeros((5, 2))
    expected[:2] = 2.0
    np.testing.assert_array_equal(x.grad.numpy(), expected)
    x.grad = None
    p = x.chunk(3)
    (p[1] * p[1]).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy()[2:4], 2 * x.numpy()[2:4])
    assert not x.grad.numpy()[:2].any() and not x.grad.numpy()[4:].any()


def test_retain_grad_on_a_non_leaf():
    x = leaf([1.0, -2.0])
    y = x * 3.0
    y.retain_grad()
    h = y.tanh()
    (h * h).sum().backward()
    np.testing.assert_allclose(y.grad.numpy(), 2 * h.numpy() * (1 - h.numpy() ** 2))
    assert h.grad is None
    np.testing.assert_allclose(x.grad.numpy(), 3 * y.grad.numpy())
    y.grad += 1.0  # the retained grad is its own buffer
    np.testing.assert_allclose(x.grad.numpy(), 3 * (y.grad.numpy() - 1.0))


def test_backward_on_a_non_scalar_needs_gradient():
    x = leaf([1.0, 2.0])
    y = x * x
    with pytest.raises(RuntimeError, match="gradient="):
        y.backward()
    with pytest.raises(ValueError, match=r"\(3,\)"):
        y.backward(np.ones(3))
    y.backward(np.array([1.0, 0.5]))
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0])
    z = leaf([[2.0]]) * 3.0
    z.backward()  # one element: implicit gradient 1
    assert z.shape == (1, 1)


def test_backward_on_a_leaf():
    x = leaf([1.0, 2.0])
    x.backward(np.array([3.0, 4.0]))
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 4.0])


def test_diamond_graphs_accumulate():
    a = leaf([0.5, -1.5])
    (a * a + a).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), 2 * a.numpy() + 1)
    a.grad = None
    b = a.exp()
    c = b * b + b.tanh() * b
    c.sum().backward()
    e, t = np.exp(a.numpy()), np.tanh(np.exp(a.numpy()))
    np.testing.assert_allclose(a.grad.numpy(), (2 * e + (1 - t ** 2) * e + t) * e, rtol=1e-12)


def test_shared_subexpression_used_many_times():
    x = leaf(1.3)
    y = x * 2.0
    total = y
    for _ in range(49):
        total = total + y
    total.backward()
    np.testing.assert_allclose(x.grad.numpy(), 100.0)


def test_tensor_basics():
    x = rnnbp.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    assert x.shape == (2, 2) and x.ndim == 2 and x.numel() == 4 and len(x) == 2
    assert x.size() == (2, 2) and x.size(1) == 2 and x.dim() == 2
    assert x.is_leaf and x.grad_fn is None and x.grad is None
    y = x[0] * 2.0
    assert "grad_fn=<MulBackward>" in repr(y) and "requires_grad=True" in repr(x)
    assert float(x[1, 1]) == 4.0 and x[0, 0].item() == 1.0
    assert [r.tolist() for r in x] == [[1.0, 2.0], [3.0, 4.0]]
    assert np.asarray(x).dtype == np.float32
    src = np.ones(2)
    t = rnnbp.tensor(src)
    src[0] = 5.0
    assert t.numpy()[0] == 1.0  # tensor() copies


def test_manual_seed_reproducible():
    rnnbp.manual_seed(3)
    a = rnnbp.randn(4).numpy().copy()
    d1 = ops.dropout(Tensor(np.ones(8)), 0.5).numpy().copy()
    rnnbp.manual_seed(3)
    np.testing.assert_array_equal(rnnbp.randn(4).data, a)
    np.testing.assert_array_equal(ops.dropout(Tensor(np.ones(8)), 0.5).data, d1)
    assert set(np.unique(d1)) <= {0.0, 2.0}


def test_arange():
    assert rnnbp.arange(5, step=2).tolist() == [0, 2, 4]
    assert rnnbp.arange(1, 7, 2).tolist() == [1, 3, 5]
    assert rnnbp.arange(3).dtype == np.int64
