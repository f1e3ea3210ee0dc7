"""nn.Recurrent (any cell in the stacked driver) and nn.LayerNormLSTMCell.

Built-in cells in nn.Recurrent against the fused layers with the same weights
(outputs, final states and every gradient, float64), gradchecks of the
layer-normalised LSTM alone and stacked, error messages, state dicts, dtypes
and state-gradient probes.
"""
import re

import numpy as np
import pytest

import rnnbp
from rnnbp import nn
from rnnbp.autograd import gradcheck
from rnnbp.nn.recurrent.probes import record_state_grads
from rnnbp.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

# kind -> (fused layer, the cell that computes the same step)
KINDS = {
    "lstm": (nn.LSTM, nn.LSTMCell),
    "gru": (nn.GRU, nn.GRUCell),
    "rnn": (nn.RNN, nn.RNNCell),
}
OPTIONS = [
    dict(num_layers=2, bidirectional=True, ragged=True, with_state=True),
    dict(num_layers=2, bidirectional=True, batch_first=True, ragged=True),
    dict(bidirectional=True, batch_first=True, with_state=True),
    dict(num_layers=2, ragged=True),
]
LENGTHS = np.array([4, 1, 5, 0])  # unsorted, with a sequence of length 0
TOL = dict(rtol=1e-10, atol=1e-12)


def _ids(opts):
    return "-".join(f"{k}={v}" for k, v in opts.items())


def _cell_key(key: str) -> str:
    """Fused layer's state-dict key -> nn.Recurrent's: weight_ih_l1_reverse -> cell_l1_reverse.weight_ih."""
    m = re.fullmatch(r"(weight_ih|weight_hh|bias_ih|bias_hh)_l(\d+)(_reverse)?", key)
    assert m, key
    return f"cell_l{m[2]}{m[3] or ''}.{m[1]}"


def _pair(kind, opts, input_size=3, hidden=4, seed=0):
    """(fused layer, nn.Recurrent of the matching cell) with the same float64 weights."""
    opts = {k: v for k, v in opts.items() if k not in ("ragged", "with_state")}
    fused_cls, cell_cls = KINDS[kind]
    rnnbp.manual_seed(seed)
    fused = fused_cls(input_size, hidden, **opts).double()
    rec = nn.Recurrent(cell_cls, input_size, hidden, **opts).double()
    rec.load_state_dict({_cell_key(k): v for k, v in fused.state_dict().items()})  # strict: names must match
    return fused, rec


def _inputs(layer, opts, T=5, B=4, seed=1):
    rng = np.random.default_rng(seed)
    shape = (B, T, layer.input_size) if layer.batch_first else (T, B, layer.input_size)
    x = rnnbp.tensor(rng.standard_normal(shape), requires_grad=True)
    states = []
    if opts.get("with_state"):
        states = [rnnbp.tensor(rng.standard_normal(s), requires_grad=True) for s in layer._state_shapes(B)]
    lengths = LENGTHS if opts.get("ragged") else None
    return x, states, lengths


def _hx(states):
    return None if not states else states[0] if len(states) == 1 else tuple(states)


def _flat(result):
    output, states = result
    if hasattr(output, "batch_sizes"):  # PackedSequence
        output = output.data
    return (output,) + (states if isinstance(states, tuple) else (states,))


def _outs_and_grads(layer, run, leaves, directions, rename=lambda k: k):
    """Run, backpropagate sum <output_k, direction_k>, and collect outputs and all gradients."""
    layer.zero_grad()
    for t in leaves:
        t.grad = None
    outs = _flat(run())
    loss = sum((o * rnnbp.tensor(d)).sum() for o, d in zip(outs, directions))
    loss.backward()
    grads = {rename(n): p.grad.numpy().copy() for n, p in layer.named_parameters()}
    grads.update({f"leaf{i}": t.grad.numpy().copy() for i, t in enumerate(leaves)})
    return [o.numpy().copy() for o in outs], grads


def _assert_same(a, b):
    outs_a, grads_a = a
    outs_b, grads_b = b
    assert len(outs_a) == len(outs_b)
    for i, (u, v) in enumerate(zip(outs_a, outs_b)):
        np.testing.assert_allclose(u, v, err_msg=f"output {i}", **TOL)
    assert grads_a.keys() == grads_b.keys()
    for name in grads_a:
        assert np.any(grads_a[name] != 0), f"{name}: gradient is all zero, the comparison proves nothing"
        np.testing.assert_allclose(grads_a[name], grads_b[name], err_msg=name, **TOL)


# --------------------------------------------------------------------------- built-in cells vs fused
@pytest.mark.parametrize("opts", OPTIONS, ids=_ids)
@pytest.mark.parametrize("kind", list(KINDS))
def test_recurrent_of_builtin_cell_equals_fused_layer(kind, opts):
    """Outputs, final states and every gradient (parameters, input, h_0/c_0) to 1e-10 relative."""
    fused, rec = _pair(kind, opts)
    x, states, lengths = _inputs(fused, opts)
    rng = np.random.default_rng(2)
    probe = _flat(fused(x, _hx(states), lengths=lengths))
    directions = [rng.standard_normal(o.shape) for o in probe]
    leaves = [x] + states
    got = _outs_and_grads(rec, lambda: rec(x, _hx(states), lengths=lengths), leaves, directions)
    want = _outs_and_grads(fused, lambda: fused(x, _hx(states), lengths=lengths), leaves, directions, _cell_key)
    _assert_same(got, want)
    if lengths is not None:  # padding stays zero, and a length-0 row keeps its initial state
        out = got[0][0] if not rec.batch_first else got[0][0].transpose(1, 0, 2)
        assert np.all(out[np.arange(out.shape[0])[:, None] >= lengths[None, :]] == 0)
        h0 = states[0].numpy() if states else np.zeros_like(got[0][1])
        np.testing.assert_array_equal(got[0][1][:, 3], h0[:, 3])


@pytest.mark.parametrize("kind", list(KINDS))
def test_recurrent_of_builtin_cell_equals_fused_layer_on_packed_input(kind):
    opts = dict(num_layers=2, bidirectional=True, with_state=True)
    fused, rec = _pair(kind, opts)
    x, states, _ = _inputs(fused, opts)
    lengths = np.array([2, 5, 1, 3])  # packing needs lengths >= 1

    def run(layer):
        return lambda: layer(pack_padded_sequence(x, lengths, enforce_sorted=False), _hx(states))

    rng = np.random.default_rng(3)
    directions = [rng.standard_normal(o.shape) for o in _flat(run(fused)())]
    got = _outs_and_grads(rec, run(rec), [x] + states, directions)
    want = _outs_and_grads(fused, run(fused), [x] + states, directions, _cell_key)
    _assert_same(got, want)
    packed_out, _ = rec(pack_padded_sequence(x, lengths, enforce_sorted=False), _hx(states))
    padded, out_lengths = pad_packed_sequence(packed_out)
    np.testing.assert_array_equal(out_lengths, lengths)
    padded_out, _ = rec(x, _hx(states), lengths=lengths)
    np.testing.assert_allclose(padded.numpy(), padded_out.numpy(), **TOL)


def test_recurrent_unbatched_input_equals_batch_of_one():
    fused, rec = _pair("lstm", dict(num_layers=2, bidirectional=True))
    x = rnnbp.tensor(np.random.default_rng(4).standard_normal((5, 3)))
    out, (h, c) = rec(x)
    out_b, (h_b, c_b) = rec(x.unsqueeze(1))
    assert out.shape == (5, 8) and h.shape == (4, 4) and c.shape == (4, 4)
    np.testing.assert_allclose(out.numpy(), out_b.numpy()[:, 0], **TOL)
    np.testing.assert_allclose(h.numpy(), h_b.numpy()[:, 0], **TOL)
    np.testing.assert_allclose(c.numpy(), fused(x)[1][1].numpy(), **TOL)


# --------------------------------------------------------------------------- LayerNormLSTMCell
def _layer_norm(a, w, b, eps=1e-5):
    mean = a.mean(axis=-1, keepdims=True)
    var = a.var(axis=-1, keepdims=True)
    return (a - mean) / np.sqrt(var + eps) * w + b


def _sigmoid(a):
    return 1 / (1 + np.exp(-a))


def _ln_lstm_reference(cell, x, h, c):
    """The cell's equations in plain NumPy, with non-trivial LN gains and biases."""
    p = {k: v.numpy() for k, v in cell.state_dict().items()}
    gates = (_layer_norm(x @ p["weight_ih"].T, p["layernorm_ih.weight"], p["layernorm_ih.bias"])
             + _layer_norm(h @ p["weight_hh"].T, p["layernorm_hh.weight"], p["layernorm_hh.bias"]))
    if "bias" in p:
        gates = gates + p["bias"]
    i, f, g, o = np.split(gates, 4, axis=-1)
    c2 = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
    h2 = _sigmoid(o) * np.tanh(_layer_norm(c2, p["layernorm_c.weight"], p["layernorm_c.bias"]))
    return h2, c2


def _ln_cell(input_size=3, hidden=4, bias=True, seed=0):
    """A float64 LayerNormLSTMCell whose LN gains and biases are moved off 1 and 0."""
    rnnbp.manual_seed(seed)
    cell = nn.LayerNormLSTMCell(input_size, hidden, bias=bias).double()
    rng = np.random.default_rng(seed + 100)
    for name, p in cell.named_parameters():
        if name.startswith("layernorm"):
            p.numpy()[...] += 0.3 * rng.standard_normal(p.shape)
    return cell


@pytest.mark.parametrize("bias", [True, False])
def test_layernorm_lstm_cell_matches_the_equations(bias):
    cell = _ln_cell(bias=bias)
    rng = np.random.default_rng(1)
    x, h, c = rng.standard_normal((2, 3)), rng.standard_normal((2, 4)), rng.standard_normal((2, 4))
    h2, c2 = cell(rnnbp.tensor(x), (rnnbp.tensor(h), rnnbp.tensor(c)))
    want_h, want_c = _ln_lstm_reference(cell, x, h, c)
    np.testing.assert_allclose(h2.numpy(), want_h, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(c2.numpy(), want_c, rtol=1e-12, atol=1e-14)
    # unbatched, and the default zero state
    h1, c1 = cell(rnnbp.tensor(x[0]))
    want_h, want_c = _ln_lstm_reference(cell, x[:1], np.zeros((1, 4)), np.zeros((1, 4)))
    assert h1.shape == (4,) and c1.shape == (4,)
    np.testing.assert_allclose(h1.numpy(), want_h[0], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(c1.numpy(), want_c[0], rtol=1e-12, atol=1e-14)


def test_layernorm_lstm_cell_parameters_and_init():
    rnnbp.manual_seed(0)
    cell = nn.LayerNormLSTMCell(3, 16)
    shapes = {k: v.shape for k, v in cell.state_dict().items()}
    assert shapes == {
        "weight_ih": (64, 3), "weight_hh": (64, 16), "bias": (64,),
        "layernorm_ih.weight": (64,), "layernorm_ih.bias": (64,),
        "layernorm_hh.weight": (64,), "layernorm_hh.bias": (64,),
        "layernorm_c.weight": (16,), "layernorm_c.bias": (16,),
    }
    assert cell.state_size == (16, 16)
    for name in ("weight_ih", "weight_hh", "bias"):
        p = getattr(cell, name).numpy()
        assert p.dtype == np.float32 and np.abs(p).max() <= 0.25 and p.std() > 0.1, name
    for ln in (cell.layernorm_ih, cell.layernorm_hh, cell.layernorm_c):
        assert np.all(ln.weight.numpy() == 1) and np.all(ln.bias.numpy() == 0)
    no_bias = nn.LayerNormLSTMCell(3, 4, bias=False)
    assert no_bias.bias is None and "bias" not in no_bias.state_dict()
    assert "bias=False" in repr(no_bias) and "eps=0.001" in repr(nn.LayerNormLSTMCell(3, 4, eps=1e-3))
    gen = lambda: np.random.default_rng(7)  # noqa: E731
    a, b = nn.LayerNormLSTMCell(3, 4, generator=gen()), nn.LayerNormLSTMCell(3, 4, generator=gen())
    np.testing.assert_array_equal(a.weight_hh.numpy(), b.weight_hh.numpy())
    assert nn.LayerNormLSTMCell(3, 4, dtype=np.float64).layernorm_c.weight.dtype == np.float64


@pytest.mark.parametrize("bias", [True, False])
def test_layernorm_lstm_cell_gradcheck(bias):
    cell = _ln_cell(input_size=3, hidden=3, bias=bias)
    rng = np.random.default_rng(0)
    x, h, c = (rnnbp.tensor(rng.standard_normal(s), requires_grad=True) for s in [(2, 3), (2, 3), (2, 3)])
    params = list(cell.parameters())
    assert len(params) == (9 if bias else 8)
    assert gradcheck(lambda x, h, c, *p: cell(x, (h, c)), [x, h, c] + params)


def test_layernorm_lstm_stacked_bidirectional_ragged_gradcheck():
    """Through nn.Recurrent: 2 layers, both directions, unsorted lengths with a 0."""
    rnnbp.manual_seed(0)
    rec = nn.Recurrent(nn.LayerNormLSTMCell, 2, 2, num_layers=2, bidirectional=True).double()
    rng = np.random.default_rng(0)
    for name, p in rec.named_parameters():
        if "layernorm" in name:
            p.numpy()[...] += 0.3 * rng.standard_normal(p.shape)
    T, B = 4, 3
    lengths = np.array([2, 4, 0])
    x = rnnbp.tensor(rng.standard_normal((T, B, 2)), requires_grad=True)
    h0, c0 = (rnnbp.tensor(rng.standard_normal((4, B, 2)), requires_grad=True) for _ in range(2))
    named = dict(rec.named_parameters())
    few = [named[k] for k in ("cell_l0.weight_hh", "cell_l1_reverse.layernorm_hh.weight",
                              "cell_l0_reverse.layernorm_c.bias", "cell_l1.bias")]

    def fn(x, h0, c0, *params):
        out, (h_n, c_n) = rec(x, (h0, c0), lengths=lengths)
        return out, h_n, c_n

    assert gradcheck(fn, [x, h0, c0] + few, atol=1e-6, rtol=1e-4)
    # every parameter, along one random direction each
    assert gradcheck(fn, [x, h0, c0] + list(named.values()), atol=1e-6, rtol=1e-4, fast_mode=True)


def test_layernorm_lstm_cell_errors_name_the_cell_and_shapes():
    cell = nn.LayerNormLSTMCell(3, 4)
    with pytest.raises(ValueError, match=r"LayerNormLSTMCell: input has 5 features \(shape \(2, 5\)\), "
                                         r"expected input_size=3"):
        cell(rnnbp.randn(2, 5))
    with pytest.raises(ValueError, match=r"LayerNormLSTMCell: expected input of shape \(B, 3\) or \(3,\), "
                                         r"got \(1, 2, 3\)"):
        cell(rnnbp.randn(1, 2, 3))
    with pytest.raises(ValueError, match=r"LayerNormLSTMCell: expected c of shape \(2, 4\) .* got \(2, 5\)"):
        cell(rnnbp.randn(2, 3), (rnnbp.zeros(2, 4), rnnbp.zeros(2, 5)))
    with pytest.raises(ValueError, match=r"LayerNormLSTMCell: expected h of shape \(4,\) .* got \(1, 4\)"):
        cell(rnnbp.randn(3), (rnnbp.zeros(1, 4), rnnbp.zeros(4)))
    with pytest.raises(TypeError, match=r"LayerNormLSTMCell: hx must be a pair \(h, c\), got Tensor"):
        cell(rnnbp.randn(2, 3), rnnbp.zeros(2, 4))
    for kwargs, arg in [(dict(hidden_size=0), "hidden_size"), (dict(input_size=2.5), "input_size"),
                        (dict(eps=0.0), "eps"), (dict(eps=float("nan")), "eps")]:
        full = dict(input_size=3, hidden_size=4) | kwargs
        with pytest.raises(ValueError, match=rf"LayerNormLSTMCell: {arg} must be"):
            nn.LayerNormLSTMCell(**full)


# --------------------------------------------------------------------------- Recurrent contract
def test_recurrent_errors_name_the_class_and_the_shapes():
    gru = nn.Recurrent(nn.GRUCell, 3, 4, num_layers=2)
    with pytest.raises(ValueError, match=r"Recurrent: input.size\(-1\) must be equal to input_size. "
                                         r"Expected 3, got 5 \(input shape \(6, 2, 5\)\)"):
        gru(rnnbp.randn(6, 2, 5))
    with pytest.raises(ValueError, match=r"Recurrent: expected h_0 of shape \(2, 2, 4\), got \(1, 2, 4\)"):
        gru(rnnbp.randn(6, 2, 3), rnnbp.zeros(1, 2, 4))
    with pytest.raises(ValueError, match=r"Recurrent: lengths must be between 0 and the sequence length 6, "
                                         r"got min 2 and max 7"):
        gru(rnnbp.randn(6, 2, 3), lengths=np.array([7, 2]))
    with pytest.raises(ValueError, match=r"Recurrent: lengths has 3 entries but the batch has 2"):
        gru(rnnbp.randn(6, 2, 3), lengths=np.array([6, 2, 1]))
    with pytest.raises(TypeError, match=r"Recurrent: input dtype float64 differs from the parameters' float32"):
        gru(rnnbp.randn(6, 2, 3, dtype=np.float64))
    lstm = nn.Recurrent(nn.LayerNormLSTMCell, 3, 4, bidirectional=True)
    with pytest.raises(TypeError, match=r"Recurrent: hx must be a pair \(h_0, c_0\), got Tensor"):
        lstm(rnnbp.randn(6, 2, 3), rnnbp.zeros(2, 2, 4))
    with pytest.raises(ValueError, match=r"Recurrent: expected c_0 of shape \(2, 2, 4\), got \(2, 4\)"):
        lstm(rnnbp.randn(6, 2, 3), (rnnbp.zeros(2, 2, 4), rnnbp.zeros(2, 4)))


def test_recurrent_constructor_arguments_are_validated():
    with pytest.raises(ValueError, match="Recurrent: hidden_size must be a positive integer, got 0"):
        nn.Recurrent(nn.GRUCell, 3, 0)
    with pytest.raises(ValueError, match="Recurrent: num_layers must be a positive integer, got 1.5"):
        nn.Recurrent(nn.GRUCell, 3, 4, num_layers=1.5)
    with pytest.raises(ValueError, match=r"Recurrent: dropout must be a probability in \[0, 1\], got 1.5"):
        nn.Recurrent(nn.GRUCell, 3, 4, dropout=1.5)
    with pytest.raises(TypeError, match="Recurrent: cell_factory must be callable"):
        nn.Recurrent("gru", 3, 4)
    with pytest.raises(TypeError, match="Recurrent: cell_factory must return an nn.Module, got function"):
        nn.Recurrent(lambda i, h: (lambda x, s: s), 3, 4)


def test_recurrent_state_dict_round_trip():
    rnnbp.manual_seed(0)
    source = nn.Recurrent(nn.LayerNormLSTMCell, 3, 4, num_layers=2, bidirectional=True)
    rnnbp.manual_seed(1)
    target = nn.Recurrent(nn.LayerNormLSTMCell, 3, 4, num_layers=2, bidirectional=True)
    keys = list(source.state_dict())
    assert "cell_l1_reverse.layernorm_c.weight" in keys and "cell_l0.weight_ih" in keys and len(keys) == 36
    assert source.state_dict()["cell_l1.weight_ih"].shape == (16, 8)
    x, lengths = rnnbp.randn(5, 3, 3), np.array([5, 2, 3])
    before = target(x, lengths=lengths)[0].numpy()
    assert not np.allclose(before, source(x, lengths=lengths)[0].numpy())
    target.load_state_dict(source.state_dict())
    out_s, (h_s, c_s) = source(x, lengths=lengths)
    out_t, (h_t, c_t) = target(x, lengths=lengths)
    np.testing.assert_array_equal(out_s.numpy(), out_t.numpy())
    np.testing.assert_array_equal(c_s.numpy(), c_t.numpy())
    with pytest.raises(RuntimeError, match='Missing key.*"cell_l1_reverse.bias"'):
        target.load_state_dict({k: v for k, v in source.state_dict().items() if k != "cell_l1_reverse.bias"})


@pytest.mark.parametrize("factory", [nn.LayerNormLSTMCell, nn.GRUCell], ids=["layernorm_lstm", "gru"])
def test_recurrent_float32_in_float32_out_and_grads(factory):
    rnnbp.manual_seed(0)
    rec = nn.Recurrent(factory, 3, 4, num_layers=2, bidirectional=True, batch_first=True)
    x = rnnbp.randn(3, 5, 3, requires_grad=True)
    h0 = rnnbp.randn(4, 3, 4, requires_grad=True)
    hx = (h0, rnnbp.randn(4, 3, 4)) if factory is nn.LayerNormLSTMCell else h0
    out, states = rec(x, hx, lengths=np.array([5, 2, 0]))
    states = states if isinstance(states, tuple) else (states,)
    assert out.dtype == np.float32 and out.shape == (3, 5, 8)
    assert all(s.dtype == np.float32 and s.shape == (4, 3, 4) for s in states)
    (out.sum() + states[0].sum() * 0.5).backward()
    assert x.grad.numpy().dtype == np.float32 and h0.grad.numpy().dtype == np.float32
    for name, p in rec.named_parameters():
        assert p.grad is not None and p.grad.numpy().dtype == np.float32, name


def test_recurrent_dropout_acts_between_layers_only_in_training():
    rnnbp.manual_seed(0)
    rec = nn.Recurrent(nn.GRUCell, 3, 4, num_layers=2, dropout=0.5)
    x = rnnbp.randn(5, 2, 3)
    assert not np.allclose(rec(x)[0].numpy(), rec(x)[0].numpy())
    rec.eval()
    np.testing.assert_array_equal(rec(x)[0].numpy(), rec(x)[0].numpy())


# --------------------------------------------------------------------------- probes
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_state_grad_probes_agree_between_recurrent_and_fused(kind):
    opts = dict(num_layers=2, bidirectional=True, ragged=True, with_state=True)
    fused, rec = _pair(kind, opts)
    x, states, lengths = _inputs(fused, opts)
    d = np.random.default_rng(5).standard_normal((5, 4, 8))
    norms = []
    for layer in (fused, rec):
        model = nn.Sequential(layer)  # the probe keys carry the submodule's name
        with record_state_grads(model) as probe:
            out, _ = layer(x, _hx(states), lengths=lengths)
            (out * rnnbp.tensor(d)).sum().backward()
        norms.append(probe.trimmed())
        assert layer._probe is None  # detached after the block
    fused_norms, rec_norms = norms
    assert sorted(fused_norms) == sorted(rec_norms) == [("0", k, j) for k in range(2) for j in range(2)]
    for key in fused_norms:
        assert len(fused_norms[key]) == 5 and np.all(fused_norms[key] > 0), key
        np.testing.assert_allclose(rec_norms[key], fused_norms[key], err_msg=str(key), **TOL)
