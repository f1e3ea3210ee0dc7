"""Arrays an op saved for backward must not change underneath it, and backward frees the graph."""
import gc
import weakref

import numpy as np
import pytest

import rnnbp
from rnnbp import nn, optim


def test_backward_after_optimizer_step_is_refused():
    rnnbp.manual_seed(0)
    a, b = nn.Linear(2, 3), nn.Linear(3, 1)
    y = b(a(rnnbp.randn(1, 2))).sum()
    b.weight.grad = np.ones_like(b.weight.data)
    optim.SGD(b.parameters(), lr=10.0).step()
    with pytest.raises(RuntimeError, match=r"Linear .*modified in place.*optimizer.step"):
        y.backward()


def test_backward_after_init_or_load_state_dict_is_refused():
    lin = nn.Linear(2, 2)
    y = lin(rnnbp.randn(3, 2)).sum()
    nn.init.zeros_(lin.bias)
    with pytest.raises(RuntimeError, match="modified in place"):
        y.backward()
    y = lin(rnnbp.randn(3, 2)).sum()
    lin.load_state_dict(nn.Linear(2, 2).state_dict())
    with pytest.raises(RuntimeError, match="modified in place"):
        y.backward()


@pytest.mark.parametrize("alias", ["detach", "state_dict", "init_on_state_dict"])
def test_an_in_place_change_through_a_detached_alias_is_refused_too(alias):
    """PyTorch's detach() and state_dict() values share the parameter's version counter."""
    lin = nn.Linear(2, 1)
    x = rnnbp.randn(3, 2, requires_grad=True)
    y = (lin(x) * lin(x)).sum()
    if alias == "detach":
        lin.weight.detach().detach().mul_(0)  # a detached tensor's detach() shares the same counter
    elif alias == "state_dict":
        lin.state_dict()["weight"].copy_(rnnbp.zeros(1, 2))
    else:
        nn.init.zeros_(lin.state_dict()["weight"])
    assert np.all(lin.weight.numpy() == 0)  # the write went through, shared memory
    with pytest.raises(RuntimeError, match="modified in place"):
        y.backward()


def test_a_kept_detached_loss_does_not_keep_its_graph():
    x = rnnbp.randn(3, requires_grad=True)
    y = x * 2.0
    kept = [(y * y).sum().detach()]  # losses.append(loss.detach()), as training loops do
    alive = weakref.ref(y)
    del y
    gc.collect()
    assert alive() is None and kept[0].item() >= 0


def test_a_target_written_after_forward_does_not_change_the_gradient():
    x = rnnbp.tensor(np.random.default_rng(0).standard_normal((5, 4)), requires_grad=True)
    t = rnnbp.tensor([0, 3, 1, 2, 2])
    loss = nn.functional.cross_entropy(x, t)
    t[0] = 1
    loss.backward()
    g = x.grad.numpy()
    assert g[0, 0] < 0 and g[0, 1] > 0  # the gradient of the target the loss was computed with


def test_fresh_forward_after_step_is_fine():
    lin = nn.Linear(2, 1)
    opt = optim.SGD(lin.parameters(), lr=0.1)
    x = rnnbp.randn(4, 2)
    start = lin.weight._version
    for _ in range(3):
        opt.zero_grad()
        lin(x).sum().backward()
        opt.step()
    assert lin.weight._version == start + 3


def test_activations_are_freed_after_backward_even_if_the_loss_is_kept():
    x = rnnbp.randn(4, 4, requires_grad=True)
    hidden = x.tanh()
    ref = weakref.ref(hidden)
    loss = (hidden * 2).sum()
    del hidden
    loss.backward()
    gc.collect()
    assert ref() is None and loss.item() is not None


def test_np_array_of_a_tensor_is_a_copy():
    lin = nn.Linear(2, 2)
    snap = np.array(lin.weight)
    assert not np.shares_memory(snap, lin.weight.data)
    np.testing.assert_array_equal(snap, lin.weight.data)
    assert np.asarray(lin.weight) is not None  # asarray may share; only np.array must copy


def test_set_grad_enabled_is_a_context_manager():
    x = rnnbp.randn(2, requires_grad=True)
    with rnnbp.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert (x * 2).requires_grad
    with rnnbp.set_grad_enabled(True):
        assert (x * 2).requires_grad
    rnnbp.set_grad_enabled(False)
    assert not rnnbp.is_grad_enabled()
    rnnbp.set_grad_enabled(True)
    assert rnnbp.is_grad_enabled()


def test_linear_refuses_a_float64_input_to_a_float32_layer():
    with pytest.raises(TypeError, match=r"linear: input of shape \(5, 4\) is float64 but the weight \(8, 4\)"):
        nn.Linear(4, 8)(rnnbp.tensor(np.random.default_rng(0).random((5, 4))))
