"""Streaming inference: RNN, LSTM and GRU run on bare arrays when no gradient can be asked for.

Stepping a layer one time step at a time under ``no_grad`` (state carried) must equal
running the whole sequence, the inference path must equal the graph path for every
structural option (lengths, packing, directions, layers, initial states, layouts), bad
input must raise exactly what the graph path raises, and a call that can be asked for a
gradient must still build the graph.
"""
import pickle

import numpy as np
import pytest

import rnnbp
from rnnbp import nn
from rnnbp.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

KINDS = {
    "lstm": nn.LSTM,
    "lstm_proj": lambda *a, **kw: nn.LSTM(*a, proj_size=3, **kw),
    "gru": nn.GRU,
    "rnn_tanh": lambda *a, **kw: nn.RNN(*a, nonlinearity="tanh", **kw),
    "rnn_relu": lambda *a, **kw: nn.RNN(*a, nonlinearity="relu", **kw),
}
I, H = 4, 5


def _make(kind, seed=0, **kw):
    rnnbp.manual_seed(seed)
    return KINDS[kind](I, H, dtype=rnnbp.float64, **kw)


def _spy(layer):
    """Count the layer runs of the array path on this instance: the driver's (``_infer``) and the
    streamed step's short way (``inference.plain_forward``, through ``_steppers``)."""
    calls = []
    infer, steppers = layer._infer, layer._steppers

    def counted(*args):
        calls.append(args[:2])
        return infer(*args)

    def counted_steppers(*args):
        runs = steppers(*args)
        if runs is None:
            return None

        def counted_run(layer_index, run):
            def call(*a, **kw):
                calls.append(("plain", layer_index))
                return run(*a, **kw)
            return call
        return [counted_run(k, run) for k, run in enumerate(runs)]

    layer._infer, layer._steppers = counted, counted_steppers
    return calls


def _graph_path(layer):
    """Force the graph path on this instance (the reference the array path must equal)."""
    layer._has_inference = lambda: False
    return layer


def _states(result):
    states = result[1]
    return states if isinstance(states, tuple) else (states,)


def _random_state(layer, batch, rng, requires_grad=False):
    shapes = layer._state_shapes(batch)
    states = [rnnbp.tensor(rng.standard_normal(s), requires_grad=requires_grad) for s in shapes]
    return tuple(states) if len(states) == 2 else states[0]


def _assert_same(a, b, tol=1e-12):
    """Outputs and states of two forward results agree (float64, to ``tol``)."""
    out_a, out_b = a[0], b[0]
    if isinstance(out_a, tuple):  # PackedSequence
        np.testing.assert_array_equal(out_a.batch_sizes, out_b.batch_sizes)
        for u, v in zip(out_a[2:], out_b[2:]):
            assert (u is None and v is None) or np.array_equal(u, v)
        out_a, out_b = out_a.data, out_b.data
    assert out_a.shape == out_b.shape and out_a.dtype == out_b.dtype
    np.testing.assert_allclose(out_a.numpy(), out_b.numpy(), rtol=tol, atol=tol)
    for s, t in zip(_states(a), _states(b), strict=True):
        assert s.shape == t.shape and s.dtype == t.dtype
        np.testing.assert_allclose(s.numpy(), t.numpy(), rtol=tol, atol=tol)


# ------------------------------------------------------------------ stepping
@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("layout", ["time_major", "batch_first", "unbatched"])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_stepping_equals_the_whole_sequence(kind, layout, num_layers):
    """One step per call, state carried, under no_grad: the whole sequence's output and final state."""
    layer = _make(kind, num_layers=num_layers, batch_first=layout == "batch_first")
    layer.eval()
    calls = _spy(layer)
    rng = np.random.default_rng(1)
    T, B = 6, 3
    shape = {"time_major": (T, B, I), "batch_first": (B, T, I), "unbatched": (T, I)}[layout]
    x = rnnbp.tensor(rng.standard_normal(shape))
    hx = _random_state(layer, None if layout == "unbatched" else B, rng)
    time_axis = 1 if layout == "batch_first" else 0
    given = [s.numpy().copy() for s in (hx if isinstance(hx, tuple) else (hx,))]
    with rnnbp.no_grad():
        whole = layer(x, hx)
        steps, state = [], hx
        for t in range(T):
            x_t = x[:, t:t + 1] if time_axis else x[t:t + 1]
            out, state = layer(x_t, state)
            steps.append(out.numpy())
    assert len(calls) == (T + 1) * num_layers  # every call took the array path
    for s, g in zip(hx if isinstance(hx, tuple) else (hx,), given):
        np.testing.assert_array_equal(s.numpy(), g)  # the caller's state is read, never written
    np.testing.assert_allclose(np.concatenate(steps, axis=time_axis), whole[0].numpy(), rtol=1e-12, atol=1e-12)
    final = state if isinstance(state, tuple) else (state,)
    for s, w in zip(final, _states(whole), strict=True):
        np.testing.assert_allclose(s.numpy(), w.numpy(), rtol=1e-12, atol=1e-12)
    # ... and the graph path agrees with both.
    reference = _graph_path(_make(kind, num_layers=num_layers, batch_first=layout == "batch_first"))(x, hx)
    _assert_same(whole, reference)


def test_streaming_from_no_state_and_float32():
    """The first call starts from zeros; float32 stays float32 and matches the graph path."""
    rnnbp.manual_seed(0)
    layer = nn.LSTM(I, H)
    x = rnnbp.tensor(np.random.default_rng(0).standard_normal((5, 1, I)).astype(np.float32))
    with rnnbp.no_grad():
        state, outs = None, []
        for t in range(5):
            out, state = layer(x[t:t + 1], state)
            outs.append(out)
    assert outs[0].dtype == np.float32 and state[0].dtype == np.float32 and state[1].dtype == np.float32
    assert state[0].shape == (1, 1, H) and not outs[0].requires_grad and outs[0].grad_fn is None
    whole = layer(x)
    np.testing.assert_allclose(np.concatenate([o.numpy() for o in outs]), whole[0].numpy(), rtol=1e-5, atol=1e-6)


# ------------------------------------------------- array path == graph path
CASES = {
    "default": dict(),
    "no_bias": dict(layer=dict(bias=False)),
    "bidirectional": dict(layer=dict(bidirectional=True)),
    "deep_bidirectional_state": dict(layer=dict(num_layers=2, bidirectional=True), state=True),
    "ragged": dict(lengths=[4, 1, 5, 0]),
    "ragged_sorted": dict(lengths=[5, 3, 3, 1]),
    "ragged_full": dict(lengths=[5, 5, 5, 5]),
    "ragged_deep_bidirectional_state": dict(layer=dict(num_layers=2, bidirectional=True), state=True,
                                            lengths=[4, 1, 5, 0]),
    "batch_first_ragged_state": dict(layer=dict(batch_first=True), state=True, lengths=[2, 5, 3, 4]),
    "packed": dict(packed=True),
    "packed_deep_bidirectional_state": dict(layer=dict(num_layers=2, bidirectional=True), state=True, packed=True),
    "unbatched_bidirectional_state": dict(layer=dict(bidirectional=True, num_layers=2), state=True, unbatched=True),
    "numpy_backend": dict(layer=dict(backend="numpy", bidirectional=True), lengths=[4, 1, 5, 0]),
}


def _case_inputs(layer, case, rng):
    T, B = 5, 4
    if case.get("unbatched"):
        x = rnnbp.tensor(rng.standard_normal((T, I)))
    elif layer.batch_first:
        x = rnnbp.tensor(rng.standard_normal((B, T, I)))
    else:
        x = rnnbp.tensor(rng.standard_normal((T, B, I)))
    hx = _random_state(layer, None if case.get("unbatched") else B, rng) if case.get("state") else None
    lengths = np.array(case["lengths"]) if "lengths" in case else None
    if case.get("packed"):
        x = pack_padded_sequence(x, np.array([3, 5, 1, 4]), enforce_sorted=False)
    return x, hx, lengths


@pytest.mark.parametrize("kind", ["lstm", "lstm_proj", "gru", "rnn_tanh"])
@pytest.mark.parametrize("case", list(CASES))
def test_array_path_equals_graph_path(kind, case):
    opts = CASES[case]
    lean = _make(kind, **opts.get("layer", {}))
    graph = _graph_path(_make(kind, **opts.get("layer", {})))
    calls = _spy(lean)
    x, hx, lengths = _case_inputs(lean, opts, np.random.default_rng(3))
    with rnnbp.no_grad():
        got = lean(x, hx, lengths=lengths) if lengths is not None else lean(x, hx)
    assert len(calls) == lean.num_layers * lean.num_directions
    expected = graph(x, hx, lengths=lengths) if lengths is not None else graph(x, hx)
    _assert_same(got, expected)
    if case == "packed":
        padded, lens = pad_packed_sequence(got[0])
        np.testing.assert_array_equal(lens, [3, 5, 1, 4])


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_frozen_layer_with_grad_mode_on_takes_the_array_path(kind):
    """Nothing requires grad: the array path runs even with grad mode on, and outputs are plain tensors."""
    layer = _make(kind, num_layers=2)
    for p in layer.parameters():
        p.requires_grad_(False)
    calls = _spy(layer)
    x = rnnbp.tensor(np.random.default_rng(0).standard_normal((4, 2, I)))
    out, state = layer(x)
    assert len(calls) == 2 and out.grad_fn is None and not out.requires_grad
    _assert_same((out, state), _graph_path(_make(kind, num_layers=2))(x))


def test_frozen_layer_keeps_the_name_of_a_non_differentiable_input():
    """A backward from the output names the op that stopped the gradient, as on the graph path."""
    messages = []
    for force_graph in (False, True):
        layer = _make("gru")
        for p in layer.parameters():
            p.requires_grad_(False)
        if force_graph:
            _graph_path(layer)
        a = rnnbp.tensor(np.random.default_rng(0).standard_normal((3, 2, I)), requires_grad=True)
        out, _ = layer((a > 0).double())
        with pytest.raises(RuntimeError) as err:
            out.sum().backward()
        messages.append(str(err.value))
    assert messages[0] == messages[1]


# ------------------------------------------------------------ graph when asked
@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn_tanh"])
@pytest.mark.parametrize("what", ["input", "state", "parameters"])
def test_anything_requiring_grad_builds_the_graph(kind, what):
    layer = _make(kind)
    if what != "parameters":
        for p in layer.parameters():
            p.requires_grad_(False)
    calls = _spy(layer)
    rng = np.random.default_rng(0)
    x = rnnbp.tensor(rng.standard_normal((3, 2, I)), requires_grad=what == "input")
    hx = _random_state(layer, 2, rng, requires_grad=what == "state")
    with rnnbp.no_grad():
        with rnnbp.enable_grad():
            out, _ = layer(x, hx)
    assert not calls and out.grad_fn is not None
    out.sum().backward()
    leaf = {"input": x, "state": hx[0] if isinstance(hx, tuple) else hx, "parameters": layer.weight_hh_l0}[what]
    assert leaf.grad is not None and np.any(leaf.grad.numpy() != 0)


def test_dropout_in_training_mode_under_no_grad_stays_on_the_graph_path():
    """Dropout between layers still applies under no_grad in train() mode, with the same draws."""
    results = []
    for grad in (False, True):
        rnnbp.manual_seed(0)
        layer = nn.LSTM(I, H, num_layers=2, dropout=0.5, dtype=rnnbp.float64)
        calls = _spy(layer)
        x = rnnbp.tensor(np.random.default_rng(0).standard_normal((4, 2, I)))
        rnnbp.manual_seed(7)
        with rnnbp.set_grad_enabled(grad):
            results.append(layer(x))
        assert not calls
    _assert_same(results[0], results[1], tol=0)
    rnnbp.manual_seed(0)
    plain = nn.LSTM(I, H, num_layers=2, dtype=rnnbp.float64)
    with rnnbp.no_grad():
        undropped = plain(x)[0].numpy()
    assert not np.allclose(results[0][0].numpy(), undropped)  # dropout did act
    layer.eval()  # in eval mode dropout is off and the array path runs
    calls = _spy(layer)
    with rnnbp.no_grad():
        layer(x)
    assert len(calls) == 2


def test_gradient_probe_keeps_the_graph_path():
    from rnnbp.nn.recurrent import record_state_grads
    layer = _make("lstm")
    calls = _spy(layer)
    x = rnnbp.tensor(np.random.default_rng(0).standard_normal((4, 2, I)))
    with record_state_grads(layer):
        out, _ = layer(x)
    assert not calls and out.grad_fn is not None


def test_unfused_layer_keeps_the_tape():
    layer = _make("gru", fused=False)
    calls = _spy(layer)
    with rnnbp.no_grad():
        out, _ = layer(rnnbp.tensor(np.ones((2, 1, I))))
    assert not calls and out.shape == (2, 1, H)


def test_custom_recurrent_runs_under_no_grad():
    rnnbp.manual_seed(0)
    layer = nn.Recurrent(nn.GRUCell, I, H, num_layers=2).double()
    x = rnnbp.tensor(np.random.default_rng(0).standard_normal((3, 2, I)))
    with rnnbp.no_grad():
        out, h = layer(x)
    assert out.grad_fn is None and out.shape == (3, 2, H) and h.shape == (2, 2, H)


def test_module_pickled_without_the_name_cache_still_runs():
    """Modules saved before the per-module parameter-name cache existed load and run."""
    layer = _make("lstm", num_layers=2, bidirectional=True)
    x = rnnbp.tensor(np.random.default_rng(0).standard_normal((3, 2, I)))
    with rnnbp.no_grad():
        expected = layer(x)
    state = layer.__dict__.copy()
    state.pop("_layer_param_names", None)
    old = object.__new__(type(layer))
    old.__setstate__(state)
    restored = pickle.loads(pickle.dumps(old))
    with rnnbp.no_grad():
        _assert_same(restored(x), expected, tol=0)
    assert restored(x)[0].grad_fn is not None


def test_parameters_replaced_or_cast_after_a_call_are_used():
    layer = _make("gru")
    x = rnnbp.tensor(np.random.default_rng(0).standard_normal((3, 1, I)))
    with rnnbp.no_grad():
        before = layer(x)[0].numpy()
        layer.weight_hh_l0 = nn.Parameter(np.zeros((3 * H, H)))
        after = layer(x)[0].numpy()
        layer.float()
        single = layer(x.float())[0]
    assert not np.allclose(before, after)
    assert single.dtype == np.float32
    np.testing.assert_allclose(single.numpy(), after, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------ bad input
def _bad_calls(layer):
    """(description, call) pairs, each of which must raise."""
    x = np.zeros((3, 2, I))
    good_h = np.zeros((1, 2, H))
    state = (good_h, good_h) if layer.has_cell_state else good_h
    calls = {
        "4-D input": lambda: layer(np.zeros((3, 2, 1, I))),
        "1-D input": lambda: layer(np.zeros(I)),
        "feature size": lambda: layer(np.zeros((3, 2, I + 1))),
        "empty": lambda: layer(np.zeros((0, 2, I))),
        "dtype": lambda: layer(np.zeros((3, 2, I), dtype=np.float32)),
        "list input": lambda: layer([[["a"]]]),
        "h shape": lambda: layer(x, (np.zeros((1, 3, H)), good_h) if layer.has_cell_state else np.zeros((1, 3, H))),
        "h dtype": lambda: layer(x, (good_h.astype(np.float32), good_h) if layer.has_cell_state
                                 else good_h.astype(np.float32)),
        "h None": lambda: layer(x, (None, good_h) if layer.has_cell_state else [None]),
        "h scalar": lambda: layer(x, (rnnbp.tensor(1.0),) * 2 if layer.has_cell_state else rnnbp.tensor(1.0)),
        "h integer": lambda: layer(x, (good_h.astype(int), good_h) if layer.has_cell_state else good_h.astype(int)),
        "h strings": lambda: layer(x, (["a"], good_h) if layer.has_cell_state else ["a"]),
        "hx kind": lambda: layer(x, good_h if layer.has_cell_state else (good_h,)),
        "hx length": lambda: layer(x, (good_h,) * 3),
        "unbatched state shape": lambda: layer(np.zeros((3, I)), state),
        "unbatched lengths": lambda: layer(np.zeros((3, I)), lengths=np.array([3])),
        "lengths long": lambda: layer(x, lengths=np.array([4, 1])),
        "lengths count": lambda: layer(x, lengths=np.array([3, 1, 1])),
        "lengths float": lambda: layer(x, lengths=np.array([3.0, 1.0])),
        "packed and lengths": lambda: layer(pack_padded_sequence(rnnbp.tensor(x), np.array([3, 2])),
                                            lengths=np.array([3, 2])),
        "packed dtype": lambda: layer(pack_padded_sequence(rnnbp.tensor(x.astype(np.float32)), np.array([3, 2]))),
        "packed state": lambda: layer(pack_padded_sequence(rnnbp.tensor(x), np.array([2, 3]), enforce_sorted=False),
                                      (np.zeros((1, 1, H)),) * 2 if layer.has_cell_state else np.zeros((1, 1, H))),
    }
    if layer.has_cell_state:
        calls["c shape"] = lambda: layer(x, (good_h, np.zeros((1, 2, H + 1))))
    return calls


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn_tanh"])
def test_bad_input_raises_the_same_under_no_grad(kind):
    layer = _make(kind)
    calls = _bad_calls(layer)
    for what, call in calls.items():
        with pytest.raises((TypeError, ValueError)) as with_grad:
            call()
        with rnnbp.no_grad():
            with pytest.raises((TypeError, ValueError)) as without:
                call()
        assert type(without.value) is type(with_grad.value), what
        assert str(without.value) == str(with_grad.value), what


# ------------------------------------------------ the streamed step's short way
@pytest.mark.parametrize("kind", ["lstm", "lstm_proj", "gru", "rnn_relu"])
def test_streamed_step_takes_the_short_way_and_sees_weight_updates(kind):
    """``inference.plain_forward``: one compiled call per layer (no driver), its weights bound once but
    every in-place update (an optimizer step) and every replaced array seen at the next step."""
    layer = _make(kind, num_layers=2).eval()
    reference = _graph_path(_make(kind, num_layers=2)).eval()
    calls = _spy(layer)
    rng = np.random.default_rng(5)
    x = rnnbp.tensor(rng.standard_normal((1, 2, I)))
    state = _random_state(layer, 2, rng)
    with rnnbp.no_grad():
        _assert_same(layer(x, state), reference(x, state))
        assert calls == [("plain", 0), ("plain", 1)]  # the short way: the driver's _infer never ran
        for target in (layer, reference):
            target.weight_hh_l1._data *= 1.5  # in place, as an optimizer step
        _assert_same(layer(x, state), reference(x, state))
        for target in (layer, reference):
            target.weight_ih_l0 = nn.Parameter(target.weight_ih_l0.numpy() * -1.0)  # replaced
        _assert_same(layer(x, state), reference(x, state))
    assert len(calls) == 6


def test_streamed_step_follows_changes_to_the_module():
    """What the short way worked out once (``inference.StreamPlan``) is dropped when the module changes:
    train() (dropout between layers applies), a rate set (zoneout), a backend, a probe-like attribute."""
    layer = _make("lstm", num_layers=2, dropout=0.5).eval()
    reference = _graph_path(_make("lstm", num_layers=2, dropout=0.5)).eval()
    calls = _spy(layer)
    rng = np.random.default_rng(8)
    x = rnnbp.tensor(rng.standard_normal((1, 2, I)))
    state = _random_state(layer, 2, rng)
    with rnnbp.no_grad():
        _assert_same(layer(x, state), reference(x, state))
        assert calls == [("plain", 0), ("plain", 1)]
        layer.train()  # dropout between the layers: the graph path, with its random draws
        rnnbp.manual_seed(3)
        got = layer(x, state)
        rnnbp.manual_seed(3)
        _assert_same(got, reference.train()(x, state))
        assert len(calls) == 2
        layer.eval(), reference.eval()
        layer(x, state)
        assert len(calls) == 4
        layer.zoneout = reference.zoneout = 0.25  # applies in evaluation too (its expectation)
        _assert_same(layer(x, state), reference(x, state))
        assert len(calls) == 4
        layer.zoneout = 0.0
        layer(x, state)
        assert calls[-2:] == [("plain", 0), ("plain", 1)]


def test_streamed_step_falls_back_to_the_driver_when_it_cannot_bind_the_weights():
    """A non-contiguous weight, the NumPy backend or a list state: the driver's way, same numbers."""
    layer = _make("lstm").eval()
    reference = _graph_path(_make("lstm")).eval()
    calls = _spy(layer)
    rng = np.random.default_rng(6)
    x = rnnbp.tensor(rng.standard_normal((1, 2, I)))
    state = _random_state(layer, 2, rng)
    with rnnbp.no_grad():
        layer.weight_hh_l0._data = np.asfortranarray(layer.weight_hh_l0._data)
        _assert_same(layer(x, state), reference(x, state))
        layer.backend = "numpy"
        _assert_same(layer(x, state), reference(x, state))
        layer.backend = "auto"
        _assert_same(layer(x, list(state)), reference(x, state))
    assert calls == [(0, 0)] * 3  # (layer, direction) of the driver's _infer each time


@pytest.mark.parametrize("copier", ["deepcopy", "pickle"])
def test_a_copy_of_a_streamed_layer_runs_its_own_weights(copier):
    """The bound steppers are closures over the parameters' arrays: a deep copy or a pickle must not
    keep the original's (a deep copy would otherwise run the original's weights)."""
    import copy
    layer = _make("gru", num_layers=2).eval()
    rng = np.random.default_rng(7)
    x = rnnbp.tensor(rng.standard_normal((1, 2, I)))
    state = _random_state(layer, 2, rng)
    with rnnbp.no_grad():
        layer(x, state)  # binds the steppers
        twin = copy.deepcopy(layer) if copier == "deepcopy" else pickle.loads(pickle.dumps(layer))
        expected = layer(x, state)
        layer.weight_hh_l0._data *= 3.0  # the original changes; the copy must not see it
        _assert_same(twin(x, state), expected, tol=0)


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn_tanh"])
def test_bad_tensor_states_raise_the_same_on_the_short_way(kind):
    """States given as Tensors reach the short way's checks (``_bad_calls`` gives arrays, which it
    leaves to the driver): each wrong one raises the driver's error, word for word."""
    layer = _make(kind).eval()
    x = rnnbp.tensor(np.zeros((1, 2, I)))
    h, wide, narrow = rnnbp.tensor(np.zeros((1, 2, H))), rnnbp.tensor(np.zeros((1, 2, H + 1))), \
        rnnbp.tensor(np.zeros((1, 2, H), np.float32))
    cell = layer.has_cell_state
    bad = {
        "one-tuple": (h,),
        "three-tuple": (h, h, h),
        "bare tensor": h if cell else None,
        "h shape": (wide, h) if cell else wide,
        "c shape": (h, wide) if cell else None,
        "h dtype": (narrow, h) if cell else narrow,
        "x dtype": "x",
    }
    for what, hx in bad.items():
        if hx is None:
            continue
        inp, hx = (x.float(), (h, h) if cell else h) if isinstance(hx, str) else (x, hx)
        with pytest.raises((TypeError, ValueError)) as with_grad:
            layer(inp, hx)
        with rnnbp.no_grad():
            with pytest.raises((TypeError, ValueError)) as without:
                layer(inp, hx)
        assert type(without.value) is type(with_grad.value) and str(without.value) == str(with_grad.value), what


def test_short_way_with_a_missing_bias_or_an_overriding_subclass_takes_the_driver():
    """A parameter set to None, or a subclass that runs its layers its own way: the driver's way."""
    rng = np.random.default_rng(8)
    x = rnnbp.tensor(rng.standard_normal((1, 2, I)))
    layer, reference = _make("lstm").eval(), _graph_path(_make("lstm")).eval()
    state = _random_state(layer, 2, rng)
    layer.bias_ih_l0 = None
    reference.bias_ih_l0 = None
    with rnnbp.no_grad():
        _assert_same(layer(x, state), reference(x, state))

    seen = []

    class Doubled(nn.GRU):
        def _kernel_inference(self, x, state, params, batch_sizes):
            seen.append(x.shape)
            out, (h_n,) = super()._kernel_inference(x, state, params, batch_sizes)
            return out * 2, (h_n,)

    rnnbp.manual_seed(0)
    doubled = Doubled(I, H, dtype=rnnbp.float64).eval()
    with rnnbp.no_grad():
        out, _ = doubled(x, rnnbp.tensor(np.zeros((1, 2, H))))
        plain, _ = _make("gru").eval()(x, rnnbp.tensor(np.zeros((1, 2, H))))
    assert seen == [(1, 2, I)]
    np.testing.assert_allclose(out.numpy(), 2 * plain.numpy(), rtol=1e-12)
