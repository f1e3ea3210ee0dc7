"""inference_mode: its own context manager and decorator, is_inference_mode_enabled, inference tensors
(Tensor.is_inference) and the refusals rnnbp reproduces; the mode flags against PyTorch's."""
import numpy as np
import pytest

import rnnbp
from rnnbp import Tensor
from rnnbp.autograd import grad_mode


def _flags():
    return rnnbp.is_grad_enabled(), rnnbp.is_inference_mode_enabled()


def test_context_sets_and_restores_both_flags_even_on_error():
    assert _flags() == (True, False)
    with rnnbp.inference_mode():
        assert _flags() == (False, True)
        with rnnbp.inference_mode(False):
            assert _flags() == (True, False)
        assert _flags() == (False, True)
    assert _flags() == (True, False)
    with pytest.raises(KeyError):
        with rnnbp.inference_mode():
            raise KeyError("inside")
    assert _flags() == (True, False)


def test_inference_mode_false_turns_grad_on_even_inside_no_grad():
    """As c10::InferenceMode(false): a mode=False block has grad mode on, whatever surrounds it."""
    with rnnbp.no_grad():
        with rnnbp.inference_mode(mode=False):
            assert _flags() == (True, False)
            w = Tensor(np.ones(2), requires_grad=True)
            assert (w * 2).requires_grad
        assert _flags() == (False, False)


def test_ops_inside_record_nothing_and_make_inference_tensors():
    w = Tensor(np.ones(3), requires_grad=True)
    before = rnnbp.ones(3)
    with rnnbp.inference_mode():
        made = rnnbp.zeros(2)
        y = w * 2
        z = before + 1
        leaf = Tensor(np.arange(3.0))
        assert not y.requires_grad and y.grad_fn is None
    assert made.is_inference() and y.is_inference() and z.is_inference() and leaf.is_inference()
    assert not before.is_inference() and not w.is_inference()
    assert not (y + 1).is_inference()  # made outside: a normal tensor, as in PyTorch
    assert y.detach().is_inference() and y.data.is_inference()


def test_inference_tensor_in_place_is_refused_outside_and_allowed_inside():
    with rnnbp.inference_mode():
        a = rnnbp.ones(3)
        a.add_(1)
        a[0] = 5.0
    np.testing.assert_array_equal(a.numpy(), [5.0, 2.0, 2.0])
    for change in (lambda: a.add_(1), lambda: a.zero_(), lambda: a.__setitem__(0, 1.0), lambda: a.cumprod_(0),
                   lambda: a.data.mul_(2)):
        with pytest.raises(RuntimeError, match=r"in-place update of an inference tensor .* outside inference_mode"):
            change()
    np.testing.assert_array_equal(a.numpy(), [5.0, 2.0, 2.0])
    b = a.clone()  # the way out, as PyTorch says
    b.add_(1)
    assert not b.is_inference()
    normal = rnnbp.ones(2)
    with rnnbp.inference_mode():
        normal.add_(1)  # a normal tensor may change inside, and stays normal
    assert not normal.is_inference()


def test_requires_grad_on_inference_tensor_refused_outside_allowed_inside():
    with rnnbp.inference_mode():
        a = rnnbp.ones(2)
        p = rnnbp.nn.Parameter(rnnbp.ones(2))
        assert p.requires_grad and p.is_inference()
    with pytest.raises(RuntimeError, match=r"requires_grad_: setting requires_grad=True on an inference tensor"):
        a.requires_grad_()
    a.requires_grad_(False)  # turning it off is fine


def test_inference_tensor_in_a_later_graph_is_allowed():
    """PyTorch refuses to save an inference tensor for backward; rnnbp, whose every tensor keeps a
    version counter, allows it and gets the gradient right."""
    with rnnbp.inference_mode():
        a = Tensor(np.array([1.0, 2.0, 3.0]))
    w = Tensor(np.array([0.5, -1.0, 2.0]), requires_grad=True)
    (w * a).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), [1.0, 2.0, 3.0])


def test_decorator_forms():
    @rnnbp.inference_mode
    def bare():
        return _flags(), rnnbp.ones(1).is_inference()

    @rnnbp.inference_mode()
    def called():
        return _flags()

    @rnnbp.inference_mode(False)
    def off():
        return _flags()

    assert bare() == ((False, True), True) and bare.__name__ == "bare"
    assert called() == (False, True)
    with rnnbp.inference_mode():
        assert off() == (True, False)
    assert _flags() == (True, False)


def test_decorated_generator_runs_each_step_inside_the_mode():
    @rnnbp.inference_mode()
    def steps(n):
        for _ in range(n):
            received = yield rnnbp.is_inference_mode_enabled()
            assert received is None or received == "ping"
        return "done"

    gen = steps(2)
    assert next(gen) is True
    assert not rnnbp.is_inference_mode_enabled()  # the caller's code between steps runs outside
    assert gen.send("ping") is True
    with pytest.raises(StopIteration) as stop:
        next(gen)
    assert stop.value.value == "done"
    assert list(steps(3)) == [True, True, True]


def test_enable_grad_inside_reports_grad_on():
    """As PyTorch's flags. (PyTorch still records nothing there; rnnbp records, as enable_grad inside
    no_grad does, which its traced recurrent cells rely on.)"""
    with rnnbp.inference_mode():
        with rnnbp.enable_grad():
            assert _flags() == (True, True)
        assert _flags() == (False, True)


def test_clone_and_names():
    ctx = rnnbp.inference_mode(False)
    assert ctx.clone().mode is False and rnnbp.inference_mode().mode is True
    assert rnnbp.inference_mode is not rnnbp.no_grad
    assert rnnbp.autograd.inference_mode is rnnbp.inference_mode is grad_mode.inference_mode
    assert rnnbp.autograd.is_inference_mode_enabled is rnnbp.is_inference_mode_enabled
    with pytest.raises(TypeError, match=r"inference_mode: can only decorate a callable"):
        rnnbp.inference_mode(3)


def test_stand_in_gives_rnnbps_inference_mode():
    import rnnbp.torch as stand_in
    stand_in.install()
    try:
        import torch
        assert torch.inference_mode is rnnbp.inference_mode
        assert torch.is_inference_mode_enabled is rnnbp.is_inference_mode_enabled
        assert torch.autograd.inference_mode is rnnbp.inference_mode
        assert torch.cumprod is rnnbp.cumprod and torch.cdist is rnnbp.cdist
        assert torch.nn.GaussianNLLLoss is rnnbp.nn.GaussianNLLLoss
        assert torch.nn.functional.poisson_nll_loss is rnnbp.nn.functional.poisson_nll_loss
    finally:
        stand_in.uninstall()


def _script(m, record):
    """One sequence of nested modes, run on rnnbp or torch, recording the flags and tensor facts."""
    w = m.ones(2, requires_grad=True)
    record(m.is_grad_enabled(), m.is_inference_mode_enabled())
    with m.inference_mode():
        a = m.ones(2)
        record(m.is_grad_enabled(), m.is_inference_mode_enabled(), a.is_inference(), (w * 2).requires_grad)
        with m.inference_mode(False):
            b = w * 2
            record(m.is_grad_enabled(), m.is_inference_mode_enabled(), b.is_inference(), b.requires_grad)
        with m.no_grad():
            record(m.is_grad_enabled(), m.is_inference_mode_enabled(), m.ones(1).is_inference())
    with m.no_grad():
        with m.inference_mode(mode=False):
            record(m.is_grad_enabled(), m.is_inference_mode_enabled())
        with m.inference_mode(True):
            record(m.is_grad_enabled(), m.is_inference_mode_enabled())
        record(m.is_grad_enabled(), m.is_inference_mode_enabled())
    record(a.is_inference(), a.detach().is_inference(), (a + 1).is_inference(), a.clone().is_inference())


def test_flags_and_tensor_facts_match_torch():
    torch = pytest.importorskip("torch")
    ours, theirs = [], []
    _script(rnnbp, lambda *facts: ours.append(facts))
    _script(torch, lambda *facts: theirs.append(facts))
    assert ours == theirs


def test_refusals_match_torchs():
    torch = pytest.importorskip("torch")
    with torch.inference_mode():
        a = torch.ones(2)
    with pytest.raises(RuntimeError, match="Inplace update to inference tensor outside InferenceMode"):
        a.add_(1)
    with pytest.raises(RuntimeError, match="Setting requires_grad=True on inference tensor outside InferenceMode"):
        a.requires_grad_()
