"""Recurrent layers: fused kernels against the cells composed from primitive ops, gradchecks,
variable lengths, long sequences, dtypes and error messages."""
import itertools

import numpy as np
import pytest

import rnnbp
from rnnbp import nn
from rnnbp.autograd import gradcheck

KINDS = {
    "rnn_tanh": lambda **kw: nn.RNN(nonlinearity="tanh", **kw),
    "rnn_relu": lambda **kw: nn.RNN(nonlinearity="relu", **kw),
    "lstm": nn.LSTM,
    "gru": nn.GRU,
}

# (kind, options) pairs: every cell under each structural option, plus LSTM projection.
OPTIONS = [
    dict(),
    dict(bias=False),
    dict(num_layers=2),
    dict(bidirectional=True),
    dict(batch_first=True),
    dict(num_layers=2, bidirectional=True, with_state=True),
    dict(ragged=True),
    dict(num_layers=2, bidirectional=True, ragged=True, with_state=True),
]
CONFIGS = [(k, o) for k in KINDS for o in OPTIONS]
CONFIGS += [("lstm", dict(proj_size=2)), ("lstm", dict(proj_size=2, num_layers=2, bidirectional=True,
                                                        ragged=True, with_state=True))]
# LSTM and GRU kernels again with the other step backend ('auto' picks numba where it is installed).
CONFIGS += [(k, dict(o, backend="numpy")) for k, o in CONFIGS if k in ("lstm", "gru")]
LENGTHS = np.array([4, 1, 5, 0])  # unsorted, with a sequence of length 0


def _ids(config):
    kind, opts = config
    return kind + "-" + ("-".join(f"{k}={v}" for k, v in opts.items()) or "default")


def _make(kind, opts, input_size=3, hidden=3, seed=0):
    opts = dict(opts)
    for key in ("ragged", "with_state"):
        opts.pop(key, None)
    rnnbp.manual_seed(seed)
    fused = KINDS[kind](input_size=input_size, hidden_size=hidden, **opts).double()
    opts.pop("backend", None)
    composed = KINDS[kind](input_size=input_size, hidden_size=hidden, fused=False, **opts).double()
    composed.load_state_dict(fused.state_dict())
    return fused, composed


def _inputs(layer, opts, T=5, B=4, seed=1):
    rng = np.random.default_rng(seed)
    shape = (B, T, layer.input_size) if layer.batch_first else (T, B, layer.input_size)
    x = rnnbp.tensor(rng.standard_normal(shape), requires_grad=True)
    hx = None
    if opts.get("with_state"):
        shapes = layer._state_shapes(B)
        states = [rnnbp.tensor(rng.standard_normal(s), requires_grad=True) for s in shapes]
        hx = tuple(states) if layer.has_cell_state else states[0]
    lengths = LENGTHS if opts.get("ragged") else None
    return x, hx, lengths


def _flat(result):
    output, states = result
    states = states if isinstance(states, tuple) else (states,)
    return (output,) + states


def _run_and_grads(layer, x, hx, lengths, directions):
    for p in layer.parameters():
        p.grad = None
    leaves = [x] + ([] if hx is None else list(hx if isinstance(hx, tuple) else (hx,)))
    for t in leaves:
        t.grad = None
    outs = _flat(layer(x, hx, lengths=lengths))
    loss = sum((o * rnnbp.tensor(d)).sum() for o, d in zip(outs, directions))
    loss.backward()
    grads = {name: p.grad.numpy().copy() for name, p in layer.named_parameters()}
    grads.update({f"input{i}": t.grad.numpy().copy() for i, t in enumerate(leaves)})
    return [o.numpy().copy() for o in outs], grads


@pytest.mark.parametrize("config", CONFIGS, ids=_ids)
def test_fused_equals_composed(config):
    """Outputs, final states and every gradient agree to 1e-10 relative (float64)."""
    kind, opts = config
    fused, composed = _make(kind, opts)
    x, hx, lengths = _inputs(fused, opts)
    rng = np.random.default_rng(2)
    directions = [rng.standard_normal(o.shape) for o in _flat(fused(x, hx, lengths=lengths))]
    outs_f, grads_f = _run_and_grads(fused, x, hx, lengths, directions)
    outs_c, grads_c = _run_and_grads(composed, x, hx, lengths, directions)
    for a, b in zip(outs_f, outs_c):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    assert grads_f.keys() == grads_c.keys()
    for name in grads_f:
        np.testing.assert_allclose(grads_f[name], grads_c[name], rtol=1e-10, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("config", CONFIGS, ids=_ids)
def test_fused_gradcheck(config):
    kind, opts = config
    fused, _ = _make(kind, opts, input_size=2, hidden=3)
    x, hx, lengths = _inputs(fused, opts, T=5, B=4)
    states = [] if hx is None else list(hx if isinstance(hx, tuple) else (hx,))
    params = list(fused.parameters())

    def fn(x, *rest):
        given = rest[:len(states)]
        state = None if not given else (tuple(given) if fused.has_cell_state else given[0])
        return _flat(fused(x, state, lengths=lengths))

    assert gradcheck(fn, [x] + states + params, atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("cell_cls", [nn.RNNCell, nn.LSTMCell, nn.GRUCell])
@pytest.mark.parametrize("bias", [True, False])
def test_cell_gradcheck(cell_cls, bias):
    rnnbp.manual_seed(0)
    cell = cell_cls(3, 4, bias=bias).double()
    rng = np.random.default_rng(0)
    x = rnnbp.tensor(rng.standard_normal((2, 3)), requires_grad=True)
    h = rnnbp.tensor(rng.standard_normal((2, 4)), requires_grad=True)
    c = rnnbp.tensor(rng.standard_normal((2, 4)), requires_grad=True)
    params = list(cell.parameters())
    if cell_cls is nn.LSTMCell:
        assert gradcheck(lambda x, h, c, *p: cell(x, (h, c)), [x, h, c] + params)
    else:
        assert gradcheck(lambda x, h, *p: cell(x, h), [x, h] + params)


def test_cells_unbatched_and_default_state():
    rnnbp.manual_seed(0)
    cell = nn.LSTMCell(3, 4)
    x = rnnbp.randn(3)
    h, c = cell(x)
    hb, cb = cell(x.unsqueeze(0))
    assert h.shape == (4,) and c.shape == (4,)
    np.testing.assert_allclose(h.numpy(), hb.numpy()[0])
    gru = nn.GRUCell(3, 4)
    assert gru(rnnbp.randn(2, 3)).shape == (2, 4)


@pytest.mark.parametrize("kind", list(KINDS))
def test_each_sequence_alone_gives_the_same_outputs_states_and_gradients(kind):
    """Ragged batch vs each row run alone with its own length: padding changes nothing."""
    opts = dict(num_layers=2, bidirectional=True)
    lengths = np.array([3, 5, 1, 4])
    layer, _ = _make(kind, opts)
    rng = np.random.default_rng(5)
    T, B = 5, 4
    xs = rng.standard_normal((T, B, layer.input_size))
    d_out = rng.standard_normal((T, B, 2 * layer.hidden_size))
    d_out[np.arange(T)[:, None] >= lengths[None, :]] = 0  # padded outputs are constants
    x = rnnbp.tensor(xs, requires_grad=True)
    out, states = layer(x, lengths=lengths)
    h_n = states[0] if layer.has_cell_state else states
    (out * rnnbp.tensor(d_out)).sum().backward()
    assert np.all(out.numpy()[np.arange(T)[:, None] >= lengths[None, :]] == 0)
    batch_grads = {n: p.grad.numpy().copy() for n, p in layer.named_parameters()}
    total = {n: np.zeros_like(g) for n, g in batch_grads.items()}
    for b in range(B):
        layer.zero_grad()
        L = lengths[b]
        xb = rnnbp.tensor(xs[:L, b:b + 1], requires_grad=True)
        out_b, states_b = layer(xb)
        hb = states_b[0] if layer.has_cell_state else states_b
        np.testing.assert_allclose(out_b.numpy()[:, 0], out.numpy()[:L, b], rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(hb.numpy()[:, 0], h_n.numpy()[:, b], rtol=1e-12, atol=1e-13)
        (out_b * rnnbp.tensor(d_out[:L, b:b + 1])).sum().backward()
        np.testing.assert_allclose(xb.grad.numpy()[:, 0], x.grad.numpy()[:L, b], rtol=1e-10, atol=1e-12)
        for n, p in layer.named_parameters():
            total[n] += p.grad.numpy()
    for n in batch_grads:
        np.testing.assert_allclose(batch_grads[n], total[n], rtol=1e-10, atol=1e-12, err_msg=n)


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn_tanh"])
@pytest.mark.parametrize("fused_flag", [True, False])
def test_long_sequence_2000_steps(kind, fused_flag):
    rnnbp.manual_seed(0)
    layer = KINDS[kind](input_size=4, hidden_size=8, fused=fused_flag)
    x = rnnbp.randn(2000, 2, 4, requires_grad=True)
    out, _ = layer(x)
    out[-1].sum().backward()
    assert out.shape == (2000, 2, 8) and np.all(np.isfinite(x.grad.numpy()))
    assert all(np.all(np.isfinite(p.grad.numpy())) for p in layer.parameters())
    assert np.abs(x.grad.numpy()[-1]).sum() > 0


@pytest.mark.parametrize("kind", list(KINDS))
def test_float32_stays_float32(kind):
    rnnbp.manual_seed(0)
    layer = KINDS[kind](input_size=3, hidden_size=4, num_layers=2, bidirectional=True)
    x = rnnbp.randn(5, 2, 3, requires_grad=True)
    out, states = layer(x, lengths=np.array([5, 2]))
    assert out.dtype == np.float32
    for s in states if isinstance(states, tuple) else (states,):
        assert s.dtype == np.float32
    out.sum().backward()
    assert x.grad.numpy().dtype == np.float32
    assert all(p.grad.numpy().dtype == np.float32 for p in layer.parameters())


def test_batch_first_and_unbatched_agree_with_time_major():
    rnnbp.manual_seed(0)
    tm = nn.GRU(3, 4, num_layers=2)
    bf = nn.GRU(3, 4, num_layers=2, batch_first=True)
    bf.load_state_dict(tm.state_dict())
    x = rnnbp.randn(6, 2, 3)
    out_tm, h_tm = tm(x)
    out_bf, h_bf = bf(x.transpose(0, 1))
    np.testing.assert_allclose(out_bf.numpy(), out_tm.numpy().transpose(1, 0, 2), rtol=1e-6)
    np.testing.assert_allclose(h_bf.numpy(), h_tm.numpy(), rtol=1e-6)
    out_1, h_1 = tm(x[:, 0])
    np.testing.assert_allclose(out_1.numpy(), out_tm.numpy()[:, 0], rtol=1e-6)
    assert h_1.shape == (2, 4)


def test_dropout_between_layers_only_in_training():
    rnnbp.manual_seed(0)
    layer = nn.LSTM(3, 4, num_layers=2, dropout=0.5)
    x = rnnbp.randn(5, 2, 3)
    a, _ = layer(x)
    b, _ = layer(x)
    assert not np.allclose(a.numpy(), b.numpy())
    layer.eval()
    c, _ = layer(x)
    d, _ = layer(x)
    np.testing.assert_array_equal(c.numpy(), d.numpy())


def test_unused_outputs_get_no_gradient_and_states_only_loss_works():
    rnnbp.manual_seed(0)
    layer = nn.LSTM(3, 4)
    x = rnnbp.randn(5, 2, 3, dtype=np.float64, requires_grad=True)
    layer.double()
    _, (h_n, _) = layer(x)
    h_n.sum().backward()
    assert np.abs(x.grad.numpy()).sum() > 0


@pytest.mark.parametrize("kind", list(KINDS))
def test_bad_input_names_the_layer_and_shapes(kind):
    layer = KINDS[kind](input_size=3, hidden_size=4, num_layers=2)
    name = type(layer).__name__
    with pytest.raises(ValueError, match=rf"{name}.*Expected 3, got 5.*\(6, 2, 5\)"):
        layer(rnnbp.randn(6, 2, 5))
    bad_h = rnnbp.zeros(1, 2, 4)
    hx = (bad_h, rnnbp.zeros(2, 2, 4)) if layer.has_cell_state else bad_h
    with pytest.raises(ValueError, match=rf"{name}: expected h_0 of shape \(2, 2, 4\), got \(1, 2, 4\)"):
        layer(rnnbp.randn(6, 2, 3), hx)
    with pytest.raises(ValueError, match=rf"{name}: lengths must be between 0 and the sequence length 6"):
        layer(rnnbp.randn(6, 2, 3), lengths=np.array([7, 2]))
    with pytest.raises(ValueError, match=rf"{name}: lengths has 3 entries but the batch has 2"):
        layer(rnnbp.randn(6, 2, 3), lengths=np.array([6, 2, 1]))
    with pytest.raises(TypeError, match="dtype"):
        layer(rnnbp.randn(6, 2, 3, dtype=np.float64))


def test_constructor_arguments_are_validated():
    with pytest.raises(ValueError, match="hidden_size"):
        nn.LSTM(3, 0)
    with pytest.raises(ValueError, match="proj_size"):
        nn.GRU(3, 4, proj_size=2)
    with pytest.raises(ValueError, match="proj_size has to be smaller"):
        nn.LSTM(3, 4, proj_size=4)
    with pytest.raises(ValueError, match="dropout"):
        nn.RNN(3, 4, dropout=1.5)
    with pytest.raises(ValueError, match="nonlinearity"):
        nn.RNN(3, 4, nonlinearity="sigmoid")


def test_parameter_names_and_shapes_follow_pytorch():
    layer = nn.LSTM(3, 5, num_layers=2, bidirectional=True, proj_size=2)
    shapes = {k: v.shape for k, v in layer.state_dict().items()}
    assert shapes["weight_ih_l0"] == (20, 3) and shapes["weight_hh_l0"] == (20, 2)
    assert shapes["weight_ih_l1_reverse"] == (20, 4) and shapes["weight_hr_l1_reverse"] == (2, 5)
    assert list(shapes)[:5] == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "weight_hr_l0"]
    assert len(shapes) == 2 * 2 * 5
    assert "bias_ih_l0" not in nn.GRU(3, 4, bias=False).state_dict()


def test_unbatched_input_rejects_lengths_and_accepts_array_state():
    layer = nn.GRU(3, 4)
    with pytest.raises(ValueError, match="lengths need a batched input"):
        layer(rnnbp.randn(5, 3), lengths=[2])
    out, h = layer(rnnbp.randn(5, 3), np.zeros((1, 4), dtype=np.float32))
    assert out.shape == (5, 4) and h.shape == (1, 4)


def test_packed_output_keeps_the_input_row_order_for_tied_lengths():
    from rnnbp.nn.utils.rnn import PackedSequence

    layer = nn.LSTM(2, 3)
    data = rnnbp.randn(6, 2)
    packed = PackedSequence(data, np.array([2, 2, 2]), np.array([1, 0]), np.array([1, 0]))
    out, _ = layer(packed)
    np.testing.assert_array_equal(out.sorted_indices, [1, 0])
    np.testing.assert_array_equal(out.batch_sizes, [2, 2, 2])


class _NaNEmpty:
    """Stands in for numpy inside a kernel module: np.empty returns NaN-filled arrays,
    so any read of a buffer position that was never written shows up as NaN."""

    def __getattr__(self, name):
        return getattr(np, name)

    @staticmethod
    def empty(shape, dtype=float):
        return np.full(shape, np.nan, dtype=dtype)


@pytest.mark.parametrize("kind,opts", [("lstm", dict(proj_size=2)), ("lstm", {}), ("gru", {}), ("rnn_tanh", {})])
def test_kernels_never_read_unwritten_buffers_or_padding(monkeypatch, kind, opts):
    """Ragged batch with NaN in the padding of x and NaN in every uninitialised buffer:
    every gradient stays finite and equals the composed path's."""
    from rnnbp.nn.recurrent.kernels import common, elman, gru, lstm

    for module in (common, elman, gru, lstm):
        monkeypatch.setattr(module, "np", _NaNEmpty())
    fused, composed = _make(kind, dict(opts, num_layers=2, bidirectional=True))
    rng = np.random.default_rng(3)
    xs = rng.standard_normal((5, 3, fused.input_size))
    lengths = np.array([5, 2, 0])
    xs[np.arange(5)[:, None] >= lengths[None, :]] = np.nan
    grads = []
    for layer in (fused, composed):
        x = rnnbp.tensor(xs, requires_grad=True)
        out, _ = layer(x, lengths=lengths)
        out.sum().backward()
        grads.append({n: p.grad.numpy().copy() for n, p in layer.named_parameters()})
        assert np.all(np.isfinite(out.numpy()))
    for name in grads[0]:
        assert np.all(np.isfinite(grads[0][name])), name
        np.testing.assert_allclose(grads[0][name], grads[1][name], rtol=1e-10, atol=1e-12, err_msg=name)


def test_double_backward_with_retain_graph_doubles_the_gradients():
    fused, _ = _make("lstm", dict(proj_size=2, bidirectional=True))
    x = rnnbp.tensor(np.random.default_rng(0).standard_normal((4, 3, 3)), requires_grad=True)
    out, (h, c) = fused(x, lengths=np.array([4, 1, 3]))
    loss = out.sum() + h.sum() + c.sum()
    loss.backward(retain_graph=True)
    once = {n: p.grad.numpy().copy() for n, p in fused.named_parameters()}
    loss.backward()
    for n, p in fused.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), 2 * once[n], rtol=1e-12, err_msg=n)


def test_packed_input_is_checked_like_a_padded_one():
    from rnnbp.nn.utils.rnn import pack_sequence

    layer = nn.GRU(3, 4)
    with pytest.raises(TypeError, match="dtype"):
        layer(pack_sequence([rnnbp.randn(3, 3, dtype=np.float64)]))
    with pytest.raises(ValueError, match="Expected 3, got 5"):
        layer(pack_sequence([rnnbp.randn(3, 5)]))


def test_unbatched_state_is_validated_in_the_callers_shape():
    with pytest.raises(ValueError, match=r"expected h_0 of shape \(1, 4\), got \(1, 1, 4\)"):
        nn.GRU(3, 4)(rnnbp.randn(5, 3), rnnbp.zeros(1, 1, 4))
    with pytest.raises(TypeError, match="pair"):
        nn.LSTM(3, 4)(rnnbp.randn(5, 3), rnnbp.zeros(1, 4))
    with pytest.raises(ValueError, match="non-empty"):
        nn.GRU(3, 4)(rnnbp.randn(0, 2, 3))
    with pytest.raises(ValueError, match="proj_size"):
        nn.LSTM(3, 4, proj_size=2.5)
    with pytest.warns(UserWarning, match="no effect"):
        nn.LSTM(3, 4, dropout=0.5)


@pytest.mark.skipif(not __import__("rnnbp.nn.recurrent.kernels.numba_steps", fromlist=["x"]).available(),
                    reason="numba is not installed")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_numba_steps_equal_numpy_steps(dtype):
    """Each fused step function of the numba backend against its NumPy twin, on the same buffers."""
    from rnnbp.nn.recurrent.kernels import numba_steps, numpy_steps

    rng = np.random.default_rng(0)
    b, H = 5, 7
    tol = dict(rtol=1e-6, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-13, atol=1e-14)
    f = lambda *shape: rng.standard_normal(shape).astype(dtype)  # noqa: E731
    g, rec, c_prev = f(b, 4 * H), f(b, 4 * H), f(b, H)
    outs = []
    for steps in (numpy_steps, numba_steps):
        gg, c, tc, h = g.copy(), np.empty((b, H), dtype), np.empty((b, H), dtype), np.empty((b, H), dtype)
        steps.lstm_forward(gg, rec, c_prev, c, tc, h)
        dr, dc, dg = f(b, H) * 0 + 0.3, np.full((b, H), 0.2, dtype), np.empty((b, 4 * H), dtype)
        steps.lstm_backward(gg, c_prev, tc, dr, dc, dg)
        outs.append((gg, c, tc, h, dc, dg))
    for a, b_ in zip(*outs):
        assert a.dtype == dtype
        np.testing.assert_allclose(a, b_, **tol)
    g3, rec3, hp = f(b, 3 * H), f(b, 3 * H), f(b, H)
    outs = []
    for steps in (numpy_steps, numba_steps):
        gg, a, h = g3.copy(), np.empty((b, H), dtype), np.empty((b, H), dtype)
        steps.gru_forward(gg, rec3, f(H) * 0 + 0.1, hp, a, h)
        dh, d_in, d_rec = np.full((b, H), 0.4, dtype), np.empty((b, 3 * H), dtype), np.empty((b, 3 * H), dtype)
        steps.gru_backward(gg, a, hp, dh, d_in, d_rec)
        outs.append((gg, a, h, dh, d_in, d_rec))
    for a, b_ in zip(*outs):
        np.testing.assert_allclose(a, b_, **tol)


def test_backend_argument_is_checked():
    with pytest.raises(ValueError, match="backend must be one of"):
        nn.LSTM(3, 4, backend="cuda")
    assert "backend=numpy" in repr(nn.GRU(3, 4, backend="numpy"))


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("ragged", [False, True])
def test_workspace_reuse_never_overwrites_live_buffers(kind, ragged):
    """The layer reuses its (T, B, .) buffers across calls, but never one that an output,
    or a graph still waiting for backward, holds."""
    layer, reference = _make(kind, dict(bidirectional=True))
    rng = np.random.default_rng(4)
    lengths = np.array([5, 2, 4]) if ragged else None
    xs = [rnnbp.tensor(rng.standard_normal((5, 3, 3)), requires_grad=True) for _ in range(3)]
    outs = [layer(x, lengths=lengths)[0] for x in xs[:2]]           # two graphs alive at once
    kept = [o.numpy().copy() for o in outs]
    outs[1].sum().backward()                                         # backward in reverse order
    g1 = {n: p.grad.numpy().copy() for n, p in layer.named_parameters()}
    layer.zero_grad()
    outs[0].sum().backward()
    g0 = {n: p.grad.numpy().copy() for n, p in layer.named_parameters()}
    with rnnbp.no_grad():
        layer(xs[2], lengths=lengths)                                # a third call may reuse freed buffers
    for o, k in zip(outs, kept):
        np.testing.assert_array_equal(o.numpy(), k)                  # outputs held by the caller are intact
    for x, g in zip(xs[:2], (g0, g1)):
        reference.zero_grad()
        reference(x.detach(), lengths=lengths)[0].sum().backward()
        for n, p in reference.named_parameters():
            np.testing.assert_allclose(g[n], p.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=n)
    size = len(layer._workspace._buffers)
    for _ in range(3):
        layer(xs[0], lengths=lengths)[0].sum().backward()
    assert 0 < len(layer._workspace._buffers) <= size  # warm: steps reuse, the pool does not grow


def test_workspace_does_not_grow_when_lengths_change_and_is_not_copied():
    import copy
    import pickle

    rnnbp.manual_seed(0)
    layer = nn.LSTM(3, 8, num_layers=2, bidirectional=True)
    sizes = []
    for T in [5, 9, 7, 12, 5, 9, 7, 12, 5, 9]:
        layer(rnnbp.randn(T, 4, 3))[0].sum().backward()
        sizes.append(len(layer._workspace._buffers))
    # One step's worth of buffers at most, whatever the length: a new length replaces idle buffers.
    assert max(sizes) == sizes[0] and min(sizes) > 0
    assert copy.deepcopy(layer)._workspace._buffers == []
    assert pickle.loads(pickle.dumps(layer))._workspace._buffers == []


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_auto_backend_handles_float16_and_falls_back_when_numba_fails(monkeypatch, kind):
    from rnnbp.nn.recurrent.kernels import backends, numba_steps

    rnnbp.manual_seed(0)
    auto = KINDS[kind](input_size=3, hidden_size=4)
    plain = KINDS[kind](input_size=3, hidden_size=4, backend="numpy")
    plain.load_state_dict(auto.state_dict())
    x16 = rnnbp.randn(5, 2, 3).to(np.float16)
    auto.to(np.float16), plain.to(np.float16)
    np.testing.assert_array_equal(auto(x16)[0].numpy(), plain(x16)[0].numpy())  # numpy steps for float16
    auto.float(), plain.float()

    def broken():
        raise ImportError("numba is broken here")

    monkeypatch.setattr(numba_steps, "compiled", broken)
    monkeypatch.setattr(numba_steps, "available", lambda: True)
    monkeypatch.setattr(backends, "_auto_failed", False)
    x = rnnbp.randn(5, 2, 3)
    with pytest.warns(RuntimeWarning, match="numba could not compile"):
        out = auto(x)[0]
    np.testing.assert_allclose(out.numpy(), plain(x)[0].numpy(), rtol=1e-6)
    explicit = KINDS[kind](input_size=3, hidden_size=4, backend="numba")
    with pytest.raises(ImportError, match="broken"):
        explicit(x)
