"""Backward hooks, PyTorch's semantics: ``Tensor.register_hook`` (non-leaf: the total gradient before it
propagates; leaf: each backward's gradient before ``.grad``), with ``retain_grad``, ``autograd.grad``,
the custom-Function bridge and the fused LSTM; ``Module.register_full_backward_hook`` and
``register_full_backward_pre_hook``. Hand-computed expectations first, then the same scenarios
against PyTorch (values the hooks see, the order they run in, ``.grad`` after backward)."""
import warnings

import numpy as np
import pytest

import rnnbp
from rnnbp import nn
from rnnbp.autograd.custom_function import Function
from rnnbp.autograd.hooks import HookError, RemovableHandle


def _t(values, requires_grad=True):
    return rnnbp.tensor(np.asarray(values, dtype=np.float64), requires_grad=requires_grad)


def _recorder(log, name, scale=None):
    """A hook that logs (name, values) and, with ``scale``, returns the gradient times it."""
    def hook(g):
        log.append((name, g.numpy().tolist()))
        return None if scale is None else g * scale
    return hook


# ---------------------------------------------------------------------------------- tensor hooks
def test_non_leaf_hook_sees_the_summed_gradient_once_and_its_result_flows_on():
    log = []
    x = _t([1.0, 2.0])
    y = x * 3.0
    y.retain_grad()  # registered first, yet keeps the hooked gradient (PyTorch runs it after the hooks)
    y.register_hook(_recorder(log, "h1", scale=10.0))
    y.register_hook(_recorder(log, "h2"))
    ((y * y).sum() + y.sum()).backward()
    # dL/dy = 2y + 1 = [7, 13]; h2 sees h1's result; dL/dx = 3 * 10 * [7, 13]
    assert log == [("h1", [7.0, 13.0]), ("h2", [70.0, 130.0])]
    np.testing.assert_array_equal(y.grad.numpy(), [70.0, 130.0])
    np.testing.assert_array_equal(x.grad.numpy(), [210.0, 390.0])


def test_leaf_hook_sees_each_backward_before_accumulation_and_once_for_all_uses():
    log = []
    w = _t([1.0, 2.0])
    w.register_hook(lambda g: (log.append(("w", g.numpy().tolist(), None if w.grad is None else w.grad.tolist())),
                               g * 2.0)[1])
    (w * w + w.exp() * 0.0).sum().backward()  # w reaches three nodes: the hook runs once, on the total
    (3.0 * w).sum().backward()
    assert log == [("w", [2.0, 4.0], None), ("w", [3.0, 3.0], [4.0, 8.0])]
    np.testing.assert_array_equal(w.grad.numpy(), [4.0 + 6.0, 8.0 + 6.0])


def test_hooks_run_in_order_and_handles_take_them_off():
    log = []
    x = _t([1.0])
    first = x.register_hook(lambda g: log.append("first"))
    x.register_hook(lambda g: log.append("second"))
    assert isinstance(first, RemovableHandle)
    (x * 2.0).sum().backward()
    first.remove()
    first.remove()  # twice is harmless
    with x.register_hook(lambda g: g * 100.0):
        pass  # removed on leaving the block
    (x * 2.0).sum().backward()
    assert log == ["first", "second", "second"]
    np.testing.assert_array_equal(x.grad.numpy(), [4.0])


def test_a_hook_changing_its_argument_in_place_changes_only_that_gradient():
    x, y = _t([1.0, 1.0]), _t([1.0, 1.0])
    z = x + y  # AddBackward hands the same array to both inputs
    x.register_hook(lambda g: g.mul_(5.0))
    zz = z * 1.0
    zz.register_hook(lambda g: g.add_(1.0))  # in place on a non-leaf: counts downstream too
    zz.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [10.0, 10.0])
    np.testing.assert_array_equal(y.grad.numpy(), [2.0, 2.0])


def test_a_tensor_a_hook_returns_is_never_shared_with_grad():
    fixed = _t([1.0, 1.0], requires_grad=False)
    x = _t([0.0, 0.0])
    x.register_hook(lambda g: fixed)
    (x * 2.0).sum().backward()
    (x * 2.0).sum().backward()  # accumulates into .grad in place
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0])
    np.testing.assert_array_equal(fixed.numpy(), [1.0, 1.0])


def test_hooks_run_with_gradient_recording_off_and_root_hooks_run():
    modes = []
    x = _t([1.0, 2.0])
    loss = (x * 2.0).sum()
    loss.register_hook(lambda g: (modes.append(rnnbp.is_grad_enabled()), g * 5.0)[1])
    loss.backward()
    assert modes == [False]
    np.testing.assert_array_equal(x.grad.numpy(), [10.0, 10.0])


def test_leaf_backward_and_grad_of_a_leaf_run_its_hooks():
    v = _t([0.0, 0.0, 0.0])
    v.register_hook(lambda g: g * 2.0)
    v.backward(rnnbp.tensor(np.array([1.0, 2.0, 3.0])))
    np.testing.assert_array_equal(v.grad.numpy(), [2.0, 4.0, 6.0])
    (g,) = rnnbp.autograd.grad(v, v, np.ones(3))
    np.testing.assert_array_equal(g.numpy(), [2.0, 2.0, 2.0])


def _chain_with_hooks(lib, log):
    """x -> y = 2x -> z = 3y -> out = sum(z^2), with hooks z*5, y*7, x*2 and y, z retained."""
    x = lib.tensor([1.0, 2.0], dtype=lib.float64, requires_grad=True)
    x.register_hook(lambda g: (log.append(("x", g.tolist())), g * 2)[1])
    y = x * 2
    z = y * 3
    z.register_hook(lambda g: (log.append(("z", g.tolist())), g * 5)[1])
    y.register_hook(lambda g: (log.append(("y", g.tolist())), g * 7)[1])
    y.retain_grad()
    z.retain_grad()
    return x, y, z, (z * z).sum()


def _grad_scenario(lib):
    log, results = [], []
    x, y, z, out = _chain_with_hooks(lib, log)
    for inputs in ([x, z], [z], [y]):
        grads = lib.autograd.grad(out, inputs, retain_graph=True)
        results.append(([g.tolist() for g in grads], list(log), z.grad.tolist(), y.grad.tolist(), x.grad))
        log.clear()
    return results


def test_autograd_grad_runs_hooks_captures_in_pytorch_order_and_retains():
    (both, z_only, y_only) = _grad_scenario(rnnbp)
    # dz = 2z = [12, 24], hooked 60/120; dy = 3*60 -> hooked *7; dx = 2*1260 -> hooked *2.
    # z's node must run for x, so z is captured before its hook (PyTorch's engine does the same)
    assert both[0] == [[5040.0, 10080.0], [12.0, 24.0]]
    assert both[1] == [("z", [12.0, 24.0]), ("y", [180.0, 360.0]), ("x", [2520.0, 5040.0])]
    assert both[2:] == ([60.0, 120.0], [1260.0, 2520.0], None)  # retained, post-hook; leaf .grad untouched
    assert z_only[0] == [[60.0, 120.0]] and z_only[1] == [("z", [12.0, 24.0])]  # only captured: after hooks
    assert y_only[0] == [[1260.0, 2520.0]] and y_only[3] == [2520.0, 5040.0]  # retained grads accumulate


def test_hooks_follow_pytorch_through_an_in_place_change():
    log = []
    x = _t([1.0, 1.0])
    y = x * 2.0
    y.register_hook(_recorder(log, "before"))  # stays with the old value
    y.retain_grad()  # moves to the new value
    y.mul_(3.0)
    y.register_hook(_recorder(log, "after"))
    (y * rnnbp.tensor(np.array([1.0, 2.0]))).sum().backward()
    assert log == [("after", [1.0, 2.0]), ("before", [3.0, 6.0])]
    np.testing.assert_array_equal(y.grad.numpy(), [1.0, 2.0])
    np.testing.assert_array_equal(x.grad.numpy(), [6.0, 12.0])


def test_output_without_gradient_does_not_call_its_hook():
    log = []
    a = _t([1.0, 2.0, 3.0, 4.0])
    p, q = a.split(2)
    q.register_hook(_recorder(log, "q"))  # PyTorch calls it with None: a documented difference
    p.register_hook(_recorder(log, "p"))
    p.sum().backward()
    assert log == [("p", [1.0, 1.0])]


def test_bad_hooks_are_refused_with_shapes_and_types_named():
    with pytest.raises(RuntimeError, match="cannot register a hook on a tensor that doesn't require gradient"):
        rnnbp.tensor([1.0]).register_hook(lambda g: g)
    with pytest.raises(ValueError, match=r"doesn't require gradient \(shape \(1,\)"):
        rnnbp.tensor([1.0]).register_hook(lambda g: g)
    with pytest.raises(TypeError, match="register_hook: a hook must be callable, got int"):
        _t([1.0]).register_hook(3)
    for leaf in (True, False):
        x = _t([1.0, 2.0])
        target = x if leaf else x * 2.0

        def wide(g):
            return rnnbp.ones(3, dtype=rnnbp.float64)
        target.register_hook(wide)
        with pytest.raises(HookError, match=r"hook 'wide' changed the shape .* has shape \(2,\), the hook returned "
                                            r"a gradient of shape \(3,\)"):
            (target * 1.0).sum().backward()
    x = _t([1.0, 2.0])
    x.register_hook(lambda g: g.float())
    with pytest.raises(RuntimeError, match="changed the dtype of the gradient: the tensor is float64, the hook "
                                           "returned float32"):
        (x * 1.0).sum().backward()
    y = _t([1.0]) * 2.0
    y.register_hook(lambda g: 3)
    with pytest.raises(TypeError, match="returned int; a tensor hook returns a Tensor"):
        y.sum().backward()


class _Square(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return 2 * x * grad


def test_hooks_around_a_custom_function():
    log = []
    x = _t([1.0, 3.0])
    x.register_hook(_recorder(log, "x"))
    y = _Square.apply(x)
    y.register_hook(_recorder(log, "y", scale=10.0))
    y.sum().backward()
    assert log == [("y", [1.0, 1.0]), ("x", [20.0, 60.0])]
    np.testing.assert_array_equal(x.grad.numpy(), [20.0, 60.0])


def test_hooks_on_a_fused_lstm_see_the_composed_gradients():
    rnnbp.manual_seed(0)
    seen = {}
    grads = []
    for fused in (True, False):
        lstm = nn.LSTM(3, 4, backend="numpy").double()  # the fused node, without numba's start-up
        lstm.fused = fused
        rnnbp.manual_seed(1)
        lstm.load_state_dict({k: np.random.default_rng(2).standard_normal(v.shape) for k, v in lstm.state_dict().items()})
        x = rnnbp.tensor(np.random.default_rng(3).standard_normal((5, 2, 3)), requires_grad=True)
        lstm.weight_hh_l0.register_hook(lambda g, f=fused: seen.__setitem__(("w", f), g.numpy().copy()))
        out, (h, c) = lstm(x)
        out.register_hook(lambda g, f=fused: seen.__setitem__(("out", f), g.numpy().copy()))
        h.register_hook(lambda g: g * 0.0)  # cuts the h path
        (out.pow(2).sum() + (h * c).sum()).backward()
        grads.append(x.grad.numpy())
    np.testing.assert_allclose(seen[("w", True)], seen[("w", False)], atol=1e-12)
    np.testing.assert_allclose(seen[("out", True)], seen[("out", False)], atol=1e-12)
    np.testing.assert_allclose(grads[0], grads[1], atol=1e-12)


# ---------------------------------------------------------------------------------- module hooks
def _linear(w, b):
    lin = nn.Linear(2, 2).double()
    lin.load_state_dict({"weight": np.array(w, dtype=np.float64), "bias": np.array(b, dtype=np.float64)})
    return lin


def test_full_backward_hook_sees_and_replaces_grad_input_and_the_pre_hook_grad_output():
    lin = _linear([[1.0, 2.0], [3.0, 4.0]], [0.0, 0.0])
    log = []
    lin.register_full_backward_pre_hook(lambda m, go: (log.append(("pre", go[0].tolist())), (go[0] * 2.0,))[1])
    lin.register_full_backward_hook(
        lambda m, gi, go: (log.append(("full", m is lin, gi[0].tolist(), go[0].tolist())), (gi[0] * 10.0,))[1])
    x = _t([[1.0, 1.0]])
    lin(x).sum().backward()
    # grad_output [1, 1] doubled by the pre-hook; grad_input = [2, 2] @ W = [8, 12]; x gets it times 10
    assert log == [("pre", [[1.0, 1.0]]), ("full", True, [[8.0, 12.0]], [[2.0, 2.0]])]
    np.testing.assert_array_equal(x.grad.numpy(), [[80.0, 120.0]])
    np.testing.assert_array_equal(lin.weight.grad.numpy(), [[2.0, 2.0], [2.0, 2.0]])


class _Mixed(nn.Module):
    def forward(self, a, k, b, unused):
        return a * b * k, a + b


def test_grad_input_and_grad_output_entries_follow_pytorch():
    m = _Mixed()
    seen = []
    m.register_full_backward_pre_hook(lambda mod, go: seen.append(("pre", [None if g is None else g.tolist() for g in go])))
    m.register_full_backward_hook(lambda mod, gi, go: seen.append(("full", [None if g is None else g.tolist() for g in gi])))
    a, b, unused = _t([1.0, 2.0]), _t([3.0, 4.0], requires_grad=False), _t([5.0, 6.0])
    p, q = m(a, 2.0, b, unused)
    p.sum().backward()  # q gets no gradient: None in grad_output
    # a number -> None; a Tensor without grad, and one the output does not use -> zeros (PyTorch's)
    assert seen == [("pre", [[1.0, 1.0], None]), ("full", [[6.0, 8.0], None, [0.0, 0.0], [0.0, 0.0]])]
    np.testing.assert_array_equal(unused.grad.numpy(), [0.0, 0.0])


def test_tuple_output_of_an_lstm_and_a_module_whose_inputs_need_no_grad():
    lstm = nn.LSTM(2, 3, backend="numpy")
    seen = []
    lstm.register_full_backward_pre_hook(lambda m, go: seen.append(("pre", [None if g is None else g.shape for g in go])))
    lstm.register_full_backward_hook(lambda m, gi, go: seen.append(("full", [None if g is None else g.shape for g in gi])))
    x = rnnbp.randn(4, 1, 2, requires_grad=True)
    out, (h, c) = lstm(x)
    (out.sum() + h.sum()).backward()
    assert seen == [("pre", [(4, 1, 3), None]), ("full", [(4, 1, 2)])]  # (h, c) is not a Tensor: None
    seen.clear()
    out, _ = lstm(rnnbp.randn(4, 1, 2))
    with pytest.warns(UserWarning, match="Full backward hook is firing when gradients are computed with respect "
                                         "to module outputs since no inputs require gradients"):
        out.sum().backward()
    assert seen == [("pre", [(4, 1, 3), None]), ("full", [None])]
    assert lstm.weight_ih_l0.grad is not None


def test_hook_order_around_a_module():
    lin = nn.Linear(2, 2)
    log = []
    lin.register_full_backward_hook(lambda *a: log.append("full"))
    lin.register_full_backward_pre_hook(lambda *a: log.append("pre"))
    lin.weight.register_hook(lambda g: log.append("weight"))
    x = rnnbp.ones(1, 2, requires_grad=True)
    x2 = x * 1.0
    x2.register_hook(lambda g: log.append("x2"))
    y = lin(x2)
    y.register_hook(lambda g: log.append("y"))
    y.sum().backward()
    assert log == ["y", "pre", "weight", "full", "x2"]  # PyTorch's order


def test_module_hooks_go_away_and_are_not_set_up_without_grad():
    lin = nn.Linear(2, 2)
    calls = []
    full = lin.register_full_backward_hook(lambda *a: calls.append("full"))
    pre = lin.register_full_backward_pre_hook(lambda *a: calls.append("pre"))
    with rnnbp.no_grad():
        assert lin(rnnbp.ones(1, 2)).grad_fn is None
    x = rnnbp.ones(1, 2, requires_grad=True)
    out = lin(x)
    assert repr(out.grad_fn) == "<BackwardHookFunctionBackward>"  # PyTorch's name for the node
    out.sum().backward()
    full.remove()
    pre.remove()
    lin.register_forward_hook(lambda *a: None)  # forward hooks alone add no node
    out = lin(x)
    assert "BackwardHookFunction" not in repr(out.grad_fn)
    out.sum().backward()
    assert calls == ["pre", "full"]


def test_bad_module_hooks_are_refused():
    x = rnnbp.ones(1, 2, requires_grad=True)
    with pytest.raises(TypeError, match="Linear: a hook must be callable, got int"):
        nn.Linear(2, 2).register_full_backward_hook(3)
    with pytest.raises(NotImplementedError, match="register_backward_hook.*use register_full_backward_hook"):
        nn.Linear(2, 2).register_backward_hook(lambda *a: None)
    cases = [
        ("register_full_backward_hook", lambda m, gi, go: (gi[0], gi[0]),
         "Backward hook '<lambda>' returned an invalid number of grad_input, got 2, but expected 1"),
        ("register_full_backward_pre_hook", lambda m, go: (go[0], go[0]),
         "Backward pre hook '<lambda>' returned an invalid number of grad_output, got 2, but expected 1"),
        ("register_full_backward_hook", lambda m, gi, go: (rnnbp.ones(3),),
         r"returned grad_input\[0\] of shape \(3,\), but that tensor has shape \(1, 2\)"),
        ("register_full_backward_pre_hook", lambda m, go: (rnnbp.ones(2, 2),),
         r"returned grad_output\[0\] of shape \(2, 2\), but that tensor has shape \(1, 2\)"),
    ]
    for method, hook, message in cases:
        lin = nn.Linear(2, 2)
        getattr(lin, method)(hook)
        with pytest.raises(HookError, match=message):
            lin(x).sum().backward()
    lin = nn.Linear(2, 2)
    lin.register_full_backward_hook(lambda m, gi, go: (rnnbp.ones(1, 2),))
    with pytest.warns(UserWarning), pytest.raises(HookError, match="no input of the module requires grad"):
        lin(rnnbp.ones(1, 2)).sum().backward()


def test_stand_in_maps_torch_utils_hooks():
    from rnnbp.torch import MODULES

    assert MODULES["torch.utils.hooks"] == "rnnbp.autograd.hooks"


# ------------------------------------------------------------------------------- against PyTorch
def _tensor_scenario(lib):
    """Hooks on leaves and non-leaves, retain_grad, an intermediate used twice, two backwards."""
    log = []
    x = lib.tensor([1.0, -2.0, 0.5], dtype=lib.float64, requires_grad=True)
    w = lib.tensor([0.3, 0.7, -1.1], dtype=lib.float64, requires_grad=True)
    w.register_hook(lambda g: log.append(("w", g.tolist())))
    x.register_hook(lambda g: (log.append(("x", g.tolist())), g.clamp(-1.0, 1.0))[1])
    h = (x * w).tanh()
    h.retain_grad()
    h.register_hook(lambda g: (log.append(("h", g.tolist())), g * 3)[1])
    s = h.sum()
    s.register_hook(lambda g: log.append(("s", g.tolist())))
    loss = (h * h).sum() + s * w.sum()
    loss.backward(retain_graph=True)
    first = (list(log), x.grad.tolist(), w.grad.tolist(), h.grad.tolist())
    log.clear()
    loss.backward()
    return first, (list(log), x.grad.tolist(), w.grad.tolist(), h.grad.tolist())


def _module_scenario(lib):
    lib.manual_seed(0)
    net = lib.nn.Sequential(lib.nn.Linear(3, 4), lib.nn.Tanh(), lib.nn.Linear(4, 2)).double()
    rng = np.random.default_rng(0)
    net.load_state_dict({k: lib.tensor(rng.standard_normal(tuple(v.shape))) for k, v in net.state_dict().items()})
    log = []

    def values(gs):
        return [None if g is None else np.round(g.numpy(), 12).tolist() for g in gs]
    for i, m in enumerate(net):
        m.register_full_backward_pre_hook(lambda mod, go, i=i: log.append(("pre", i, values(go))))
        m.register_full_backward_hook(lambda mod, gi, go, i=i: log.append(("full", i, values(gi), values(go))))
    net[1].register_full_backward_hook(lambda mod, gi, go: (gi[0] * 0.5,))
    net[2].register_full_backward_pre_hook(lambda mod, go: (go[0] + 1.0,))
    x = lib.tensor(rng.standard_normal((5, 3)), requires_grad=True)
    net(x).pow(2).sum().backward()
    return log, np.round(x.grad.numpy(), 12).tolist(), np.round(net[0].weight.grad.numpy(), 12).tolist()


def test_tensor_hooks_match_pytorch():
    torch = pytest.importorskip("torch")
    ours, theirs = _tensor_scenario(rnnbp), _tensor_scenario(torch)
    for a, b in zip(ours, theirs):
        assert [name for name, _ in a[0]] == [name for name, _ in b[0]]
        for (_, u), (_, v) in zip(a[0], b[0]):
            np.testing.assert_allclose(u, v, rtol=1e-12)
        for u, v in zip(a[1:], b[1:]):
            np.testing.assert_allclose(u, v, rtol=1e-12)


def test_autograd_grad_with_hooks_matches_pytorch():
    torch = pytest.importorskip("torch")
    assert _grad_scenario(rnnbp) == _grad_scenario(torch)


def test_module_hooks_match_pytorch():
    torch = pytest.importorskip("torch")
    ours, theirs = _module_scenario(rnnbp), _module_scenario(torch)
    assert [e[:2] for e in ours[0]] == [e[:2] for e in theirs[0]]
    for a, b in zip(ours[0], theirs[0]):
        for u, v in zip(a[2:], b[2:]):
            for p, q in zip(u, v):
                assert (p is None) == (q is None)
                if p is not None:
                    np.testing.assert_allclose(p, q, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours[2], theirs[2], rtol=1e-10, atol=1e-12)


def _lstm_scenario(lib, state, x_np):
    lstm = lib.nn.LSTM(3, 4, num_layers=2).double()
    if lib is rnnbp:
        lstm.backend = "numpy"  # the fused node, without numba's start-up
    lstm.load_state_dict({k: lib.tensor(v) for k, v in state.items()})
    seen = {}
    x = lib.tensor(x_np, requires_grad=True)
    lstm.weight_hh_l1.register_hook(lambda g: seen.__setitem__("w", g.numpy().copy()))
    lstm.weight_ih_l0.register_hook(lambda g: g * 0.5)
    lstm.register_full_backward_pre_hook(lambda m, go: seen.__setitem__("pre", (go[0].numpy().copy(), go[1])))
    lstm.register_full_backward_hook(lambda m, gi, go: (seen.__setitem__("gi", gi[0].numpy().copy()), (gi[0] * 2,))[1])
    out, (h, c) = lstm(x)
    out.register_hook(lambda g: seen.__setitem__("out", g.numpy().copy()))
    h.register_hook(lambda g: seen.__setitem__("h", g.numpy().copy()))
    (out.pow(2).sum() + (h * c).sum()).backward()
    return seen, x.grad.numpy(), lstm.weight_ih_l0.grad.numpy(), lstm.weight_hh_l1.grad.numpy()


def test_lstm_hooks_match_pytorch():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    state = {k: v.detach().double().numpy() for k, v in torch.nn.LSTM(3, 4, num_layers=2).state_dict().items()}
    x_np = np.random.default_rng(0).standard_normal((5, 2, 3))
    ours, theirs = _lstm_scenario(rnnbp, state, x_np), _lstm_scenario(torch, state, x_np)
    assert sorted(ours[0]) == sorted(theirs[0]) == ["gi", "h", "out", "pre", "w"]
    assert ours[0]["pre"][1] is None and theirs[0]["pre"][1] is None
    np.testing.assert_allclose(ours[0]["pre"][0], theirs[0]["pre"][0], atol=1e-12)
    for key in ("gi", "h", "out", "w"):
        np.testing.assert_allclose(ours[0][key], theirs[0][key], atol=1e-12)
    for a, b in zip(ours[1:], theirs[1:]):
        np.testing.assert_allclose(a, b, atol=1e-12)


def test_a_hook_removed_by_an_earlier_one_still_runs_in_that_backward():
    # PyTorch runs the hooks a tensor had when its gradient was reached.
    x = rnnbp.ones(2, requires_grad=True)
    y = x * 3
    handles = {}
    handles[1] = y.register_hook(lambda g: handles[2].remove())
    handles[2] = y.register_hook(lambda g: g * 100)
    y.sum().backward(retain_graph=True)
    np.testing.assert_array_equal(x.grad.numpy(), [300.0, 300.0])
    x.grad = None
    y.sum().backward()  # removed for the next backward
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 3.0])


def test_a_hook_removing_those_of_another_output_of_the_same_op_takes_effect_at_once():
    # PyTorch gives each output its turn (in the order their first hooks came) with the hooks it has
    # then: a hook on b removing a's, which has not had its turn yet, means a's does not run.
    x = rnnbp.arange(4.0, requires_grad=True)
    a, b = (x * 1).chunk(2)
    handles = {}
    b.register_hook(lambda g: handles["a"].remove())
    handles["a"] = a.register_hook(lambda g: g * 100)
    b.register_hook(lambda g: g * 10)
    ((a + b) * 3).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 3.0, 30.0, 30.0])


def test_a_module_returning_a_dict_warns_and_its_backward_still_runs():
    class Dict(nn.Module):
        def forward(self, x):
            return {"y": x * 2}

    module, calls = Dict(), []
    module.register_full_backward_hook(lambda *args: calls.append(args))
    x = rnnbp.ones(2, requires_grad=True)
    with pytest.warns(UserWarning, match="module output should be a Tensor or a tuple"):
        out = module(x)
    out["y"].sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0])
    assert calls == []  # as PyTorch: the hook is not called
