"""The fused layer-norm LSTM and GRU (nn.LayerNormLSTM, nn.LayerNormGRU) and nn.LayerNormGRUCell.

Fused (compiled loops, and the NumPy per-step reference) against the composed cells on the tape
(``fused=False`` and ``nn.Recurrent`` with the same state dict), gradcheck, float32, the layer-norm
statistics' widths, the no-grad path, the gradient probe, dropout between layers.
"""
import copy
import pickle

import numpy as np
import pytest

import rnnbp
from rnnbp import nn
from rnnbp.autograd import gradcheck
from rnnbp.nn.recurrent.kernels import numba_steps
from rnnbp.nn.recurrent.kernels.layernorm_gru import LayerNormGRULayer
from rnnbp.nn.recurrent.kernels.layernorm_lstm import LayerNormLSTMLayer
from rnnbp.nn.recurrent.layernorm_gru import LayerNormGRUCell
from rnnbp.nn.recurrent.layernorm_layers import LayerNormGRU, LayerNormLSTM
from rnnbp.nn.recurrent.layernorm_lstm import LayerNormLSTMCell
from rnnbp.nn.recurrent.packing import pack_padded_sequence, pad_packed_sequence
from rnnbp.nn.recurrent.probes import record_state_grads

BACKENDS = ["numpy"] + (["numba"] if numba_steps.available() else [])
KINDS = {"lstm": (LayerNormLSTM, LayerNormLSTMCell, 2), "gru": (LayerNormGRU, LayerNormGRUCell, 1)}


def _sigmoid(a):
    return 1 / (1 + np.exp(-a))


def _layer_norm(a, w, b, eps=1e-5):
    return (a - a.mean(axis=-1, keepdims=True)) / np.sqrt(a.var(axis=-1, keepdims=True) + eps) * w + b


def _perturb_layernorms(module, seed=100):
    """Move every LN gain and bias off 1 and 0 (so that a wrong gain or bias shows)."""
    rng = np.random.default_rng(seed)
    for name, p in module.named_parameters():
        if "layernorm" in name:
            p.numpy()[...] += 0.3 * rng.standard_normal(p.shape)
    return module


def _layer(kind, input_size=3, hidden=4, seed=0, **kw):
    cls = KINDS[kind][0]
    rnnbp.manual_seed(seed)
    return _perturb_layernorms(cls(input_size, hidden, dtype=np.float64, **kw), seed + 100)


def _run(module, x, h0, lengths=None, batch_first=False, packed=False, seed=5):
    """Forward and backward with a random loss on the output and final states ->
    [output, states..., dx, dh0..., then every parameter's gradient in named order]."""
    for p in module.parameters():
        p.grad = None
    xt = rnnbp.tensor(x.copy(), requires_grad=True)
    hs = [rnnbp.tensor(h.copy(), requires_grad=True) for h in h0] if h0 is not None else []
    hx = None if h0 is None else (tuple(hs) if len(hs) > 1 else hs[0])
    if packed:
        out, st = module(pack_padded_sequence(xt, lengths, batch_first=batch_first, enforce_sorted=False), hx)
        out, _ = pad_packed_sequence(out, batch_first=batch_first, total_length=x.shape[1 if batch_first else 0])
    else:
        out, st = module(xt, hx, lengths=lengths)
    st = st if isinstance(st, tuple) else (st,)
    rng = np.random.default_rng(seed)
    loss = (out * rnnbp.tensor(rng.standard_normal(out.shape))).sum()
    for s in st:
        loss = loss + (s * rnnbp.tensor(rng.standard_normal(s.shape))).sum()
    loss.backward()
    grads = [xt.grad.numpy()] + [h.grad.numpy() for h in hs]
    return [out.numpy()] + [s.numpy() for s in st] + grads + [p.grad.numpy() for _, p in module.named_parameters()]


def _assert_close(got, want, rtol=1e-10, atol=1e-12):
    assert len(got) == len(want)
    for k, (a, b) in enumerate(zip(got, want)):
        assert a.shape == b.shape, k
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=f"item {k}")


def _inputs(kind, T=6, B=4, I=3, H=4, D=2, L=2, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((T, B, I))
    h0 = [rng.standard_normal((D * L, B, H)) for _ in range(KINDS[kind][2])]
    return x, h0


# ------------------------------------------------------------------------------------ LayerNormGRUCell
def _ln_gru_reference(cell, x, h):
    p = {k: v.numpy() for k, v in cell.state_dict().items()}
    a = _layer_norm(x @ p["weight_ih"].T, p["layernorm_ih.weight"], p["layernorm_ih.bias"])
    if "bias" in p:
        a = a + p["bias"]
    u = _layer_norm(h @ p["weight_hh"].T, p["layernorm_hh.weight"], p["layernorm_hh.bias"])
    H = h.shape[-1]
    r, z = _sigmoid(a[:, :H] + u[:, :H]), _sigmoid(a[:, H:2 * H] + u[:, H:2 * H])
    n = np.tanh(a[:, 2 * H:] + r * u[:, 2 * H:])
    return (1 - z) * n + z * h


@pytest.mark.parametrize("bias", [True, False])
def test_layernorm_gru_cell_matches_the_equations(bias):
    rnnbp.manual_seed(0)
    cell = _perturb_layernorms(LayerNormGRUCell(3, 4, bias=bias).double())
    rng = np.random.default_rng(1)
    x, h = rng.standard_normal((2, 3)), rng.standard_normal((2, 4))
    np.testing.assert_allclose(cell(rnnbp.tensor(x), rnnbp.tensor(h)).numpy(), _ln_gru_reference(cell, x, h),
                               rtol=1e-12, atol=1e-14)
    h1 = cell(rnnbp.tensor(x[0]))  # unbatched, zero state
    assert h1.shape == (4,)
    np.testing.assert_allclose(h1.numpy(), _ln_gru_reference(cell, x[:1], np.zeros((1, 4)))[0], rtol=1e-12,
                               atol=1e-14)


def test_layernorm_gru_cell_parameters_gradcheck_and_errors():
    rnnbp.manual_seed(0)
    cell = LayerNormGRUCell(3, 5)
    assert {k: v.shape for k, v in cell.state_dict().items()} == {
        "weight_ih": (15, 3), "weight_hh": (15, 5), "bias": (15,), "layernorm_ih.weight": (15,),
        "layernorm_ih.bias": (15,), "layernorm_hh.weight": (15,), "layernorm_hh.bias": (15,)}
    assert cell.state_size == 5 and cell.weight_ih.dtype == np.float32
    assert "bias" not in LayerNormGRUCell(3, 4, bias=False).state_dict()
    assert repr(LayerNormGRUCell(3, 4, bias=False, eps=1e-3)).startswith("LayerNormGRUCell(3, 4, bias=False, eps=0.001")
    cell = _perturb_layernorms(LayerNormGRUCell(3, 3).double())
    rng = np.random.default_rng(0)
    x, h = (rnnbp.tensor(rng.standard_normal(s), requires_grad=True) for s in [(2, 3), (2, 3)])
    assert gradcheck(lambda x, h, *p: cell(x, h), [x, h] + list(cell.parameters()))
    with pytest.raises(TypeError, match=r"LayerNormGRUCell: hx must be one tensor h, got a tuple"):
        cell(x, (h, h))
    with pytest.raises(ValueError, match=r"LayerNormGRUCell: expected h of shape \(2, 3\) .* got \(2, 4\)"):
        cell(x, rnnbp.zeros(2, 4, dtype=np.float64))


# ------------------------------------------------------------------------------ fused equals composed
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("case", ["plain", "bidirectional_ragged", "no_bias_batch_first", "packed", "zero_state"])
def test_fused_equals_composed_float64(kind, backend, case):
    bidirectional = case in ("bidirectional_ragged", "packed")
    batch_first = case == "no_bias_batch_first"
    layer = _layer(kind, num_layers=2, bidirectional=bidirectional, batch_first=batch_first,
                   bias=case != "no_bias_batch_first", backend=backend)
    D = 2 if bidirectional else 1
    x, h0 = _inputs(kind, D=D)
    if batch_first:
        x = x.swapaxes(0, 1).copy()
    h0 = None if case == "zero_state" else h0
    lengths = np.array([4, 5, 0, 2]) if case == "bidirectional_ragged" else \
        np.array([3, 6, 1, 5]) if case == "packed" else None
    kw = dict(lengths=lengths, batch_first=batch_first, packed=case == "packed")
    got = _run(layer, x, h0, **kw)
    composed = copy.deepcopy(layer)
    composed.fused = False
    want = _run(composed, x, h0, **kw)
    _assert_close(got, want)
    # The same parameters in the composed cells run by nn.Recurrent (fused=False: on the tape).
    cell_class = KINDS[kind][1]
    rec = nn.Recurrent(lambda i, h: cell_class(i, h, bias=layer.bias, dtype=np.float64), 3, 4, num_layers=2,
                       bidirectional=bidirectional, batch_first=batch_first, fused=False)
    rec.load_state_dict(layer.state_dict())
    _assert_close(_run(rec, x, h0, **kw), want, rtol=0, atol=0)
    if lengths is not None and not kw["packed"]:  # zero past each length
        out = got[0]
        assert not np.any(out[np.arange(x.shape[0])[:, None] >= lengths[None, :]])


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_state_dict_moves_both_ways_with_recurrent(kind):
    layer = _layer(kind, num_layers=2, bidirectional=True)
    rec = nn.Recurrent(lambda i, h: KINDS[kind][1](i, h, dtype=np.float64), 3, 4, num_layers=2, bidirectional=True)
    assert set(rec.state_dict()) == set(layer.state_dict())
    rec.load_state_dict(layer.state_dict())
    back = KINDS[kind][0](3, 4, num_layers=2, bidirectional=True, dtype=np.float64)
    back.load_state_dict(rec.state_dict())
    x, h0 = _inputs(kind)
    hx = tuple(map(rnnbp.tensor, h0)) if kind == "lstm" else rnnbp.tensor(h0[0])
    a, b = back(rnnbp.tensor(x), hx)[0].numpy(), layer(rnnbp.tensor(x), hx)[0].numpy()
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(rec(rnnbp.tensor(x), hx)[0].numpy(), a, rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------------------------------ gradcheck
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_fused_gradcheck_bidirectional_ragged(kind, backend):
    layer = _layer(kind, input_size=2, hidden=2, num_layers=2, bidirectional=True, backend=backend)
    rng = np.random.default_rng(0)
    T, B = 4, 3
    lengths = np.array([2, 4, 0])
    x = rnnbp.tensor(rng.standard_normal((T, B, 2)), requires_grad=True)
    h0 = [rnnbp.tensor(rng.standard_normal((4, B, 2)), requires_grad=True) for _ in range(KINDS[kind][2])]
    params = list(layer.parameters())

    def fn(x, *rest):
        hx = tuple(rest[:len(h0)]) if len(h0) > 1 else rest[0]
        out, st = layer(x, hx, lengths=lengths)
        return (out,) + (st if isinstance(st, tuple) else (st,))

    assert gradcheck(fn, [x] + h0 + params, atol=1e-6, rtol=1e-4)


# ------------------------------------------------------------------------------------------- float32
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_fused_float32_close_to_composed_float64(kind, backend):
    layer64 = _layer(kind, num_layers=2, bidirectional=True, backend=backend)
    layer32 = copy.deepcopy(layer64).float()
    x, h0 = _inputs(kind, T=12, B=5, H=4)
    lengths = np.array([12, 3, 7, 0, 12])
    layer64.fused = False
    want = _run(layer64, x, h0, lengths=lengths)
    got = _run(layer32, x.astype(np.float32), [h.astype(np.float32) for h in h0], lengths=lengths)
    assert all(g.dtype == np.float32 for g in got)
    # Relative to each array's scale: float32 layer norms over few items are ill-conditioned (the
    # composed float32 cells on the tape are off by up to 1.6e-4 in such cases too).
    for k, (a, b) in enumerate(zip(got, want)):
        assert np.abs(a - b).max() <= 5e-4 * max(1.0, np.abs(b).max()), k


# ------------------------------------------------------------------------------- statistics and widths
@pytest.mark.parametrize("backend", BACKENDS)
def test_layernorm_statistics_are_per_row_over_the_full_width(backend):
    """x_hat and h_hat are normalised per (step, row) over all 4H (3H) gate items, c_hat over H:
    mean 0 and variance var / (var + eps) in every row, while single gate blocks are not centred."""
    rng = np.random.default_rng(0)
    T, B, I, H = 5, 3, 4, 6
    sizes = np.array([3, 3, 2, 2, 1])  # ragged: lengths 5, 4, 2
    for kind, layer_fn, G in (("lstm", LayerNormLSTMLayer, 4 * H), ("gru", LayerNormGRULayer, 3 * H)):
        x = rng.standard_normal((T, B, I)) * 3 + 1
        states = [rng.standard_normal((B, H)) for _ in range(KINDS[kind][2])]
        weights = [rng.standard_normal((G, I)), rng.standard_normal((G, H)), rng.standard_normal(G)]
        lns = [rng.standard_normal(n) for n in ([G] * 4 + ([H] * 2 if kind == "lstm" else []))]
        ctx = type("Ctx", (), {})()
        layer_fn.forward(ctx, x, *states, *weights, *lns, batch_sizes=sizes, eps=1e-5, backend=backend)
        where = {"x_hat": 7, "h_hat": 11, "c_hat": 13} if kind == "lstm" else {"x_hat": 6, "h_hat": 9}
        saved = {name: ctx.saved[k] for name, k in where.items()}  # (see the layers' ctx.saved)
        if kind == "lstm" and ctx.saved[-1] is not None:  # compiled: x W_ih^T and c kept, with their means
            (mean_x, mean_c), rstd_x, rstd_c = ctx.saved[-1], ctx.saved[8], ctx.saved[14]
            saved["x_hat"] = (saved["x_hat"].reshape(-1, G) - mean_x.reshape(-1, 1)) * rstd_x.reshape(-1, 1)
            saved["c_hat"] = (ctx.saved[10][1:].reshape(-1, H) - mean_c.reshape(-1, 1)) * rstd_c.reshape(-1, 1)
        running = np.arange(B)[None, :] < sizes[:, None]  # (T, B)
        for name, buf in saved.items():
            width = H if name == "c_hat" else G
            rows = buf.reshape(-1, width)[running.ravel()]
            assert rows.shape == (running.sum(), width)
            np.testing.assert_allclose(rows.mean(axis=1), 0, atol=1e-12, err_msg=name)
            np.testing.assert_allclose(rows.var(axis=1), 1, atol=1e-3, err_msg=name)
            if width == G:
                assert np.abs(rows[:, :H].mean(axis=1)).max() > 0.05, name  # not normalised per gate block
        # x_hat against a NumPy layer norm of x W_ih^T over the last axis, row by row
        xw = x.reshape(T * B, I) @ weights[0].T
        want = (xw - xw.mean(1, keepdims=True)) / np.sqrt(xw.var(1, keepdims=True) + 1e-5)
        np.testing.assert_allclose(saved["x_hat"].reshape(T * B, G)[running.ravel()], want[running.ravel()],
                                   rtol=1e-10, atol=1e-12)


# -------------------------------------------------------------------------- other paths through the layer
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_no_grad_path_equals_graph_path(kind, backend, monkeypatch):
    from rnnbp.nn.recurrent.kernels import layernorm_compiled
    monkeypatch.setattr(layernorm_compiled, "INFERENCE_CHUNK", 40)  # the input side a step or two at a time
    layer = _layer(kind, num_layers=2, bidirectional=True, backend=backend)
    x, h0 = _inputs(kind)
    hx = tuple(map(rnnbp.tensor, h0)) if kind == "lstm" else rnnbp.tensor(h0[0])
    lengths = np.array([4, 6, 0, 2])
    out, st = layer(rnnbp.tensor(x), hx, lengths=lengths)
    with rnnbp.no_grad():
        out2, st2 = layer(rnnbp.tensor(x), hx, lengths=lengths)
    np.testing.assert_allclose(out2.numpy(), out.numpy(), rtol=1e-13, atol=1e-14)
    for a, b in zip(st2 if kind == "lstm" else (st2,), st if kind == "lstm" else (st,)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-13, atol=1e-14)
    # unbatched
    u, _ = layer(rnnbp.tensor(x[:, 0]))
    np.testing.assert_allclose(u.numpy(), layer(rnnbp.tensor(x[:, :1]))[0].numpy()[:, 0], rtol=1e-13)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_gradient_probe_sees_the_same_dh_as_the_tape(kind):
    layer = _layer(kind, num_layers=2, bidirectional=True)
    composed = copy.deepcopy(layer)
    composed.fused = False
    x, h0 = _inputs(kind)
    norms = []
    for m in (layer, composed):
        with record_state_grads(m) as probe:
            _run(m, x, h0, lengths=np.array([4, 6, 0, 2]))
        norms.append(probe.trimmed())
    assert set(norms[0]) == set(norms[1]) and len(norms[0]) == 4
    for key in norms[0]:
        np.testing.assert_allclose(norms[0][key], norms[1][key], rtol=1e-10)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_dropout_between_layers_matches_the_tape(kind):
    layer = _layer(kind, num_layers=2, dropout=0.5)
    composed = copy.deepcopy(layer)
    composed.fused = False
    x, h0 = _inputs(kind, D=1)
    rnnbp.manual_seed(3)
    got = _run(layer, x, h0)
    rnnbp.manual_seed(3)
    _assert_close(got, _run(composed, x, h0))
    layer.eval()
    with rnnbp.no_grad():
        a = layer(rnnbp.tensor(x))[0].numpy()
    np.testing.assert_array_equal(a, layer(rnnbp.tensor(x))[0].numpy())


def test_arguments_repr_pickle_and_errors():
    lstm = LayerNormLSTM(3, 4, num_layers=2, bidirectional=True, eps=1e-3, bias=False)
    assert repr(lstm).startswith("LayerNormLSTM(3, 4, num_layers=2, bias=False, bidirectional=True, eps=0.001")
    assert lstm.cell(1, 1) is lstm.cell_l1_reverse and lstm.cell_l1_reverse.weight_ih.shape == (16, 8)
    assert lstm.cell_l0.eps == 1e-3 and lstm.cell_l0.bias is None
    gru = LayerNormGRU(3, 4, batch_first=True)
    out, h = gru(rnnbp.zeros(2, 5, 3))
    assert out.shape == (2, 5, 4) and h.shape == (1, 2, 4) and out.dtype == np.float32
    out, (h, c) = lstm(rnnbp.zeros(5, 2, 3))
    assert out.shape == (5, 2, 8) and h.shape == c.shape == (4, 2, 4)
    restored = pickle.loads(pickle.dumps(lstm))
    x = rnnbp.randn(5, 2, 3)
    np.testing.assert_array_equal(restored(x)[0].numpy(), lstm(x)[0].numpy())
    with pytest.raises(ValueError, match="LayerNormGRU: input.size\\(-1\\) must be equal to input_size"):
        gru(rnnbp.zeros(2, 5, 4))
    with pytest.raises(TypeError, match="LayerNormLSTM: hx must be a pair"):
        lstm(rnnbp.zeros(5, 2, 3), rnnbp.zeros(4, 2, 4))
    with pytest.raises(ValueError, match="LayerNormGRU: eps must be"):
        LayerNormGRU(3, 4, eps=0)
    with pytest.warns(UserWarning, match="dropout=0.5 has no effect"):
        LayerNormLSTM(3, 4, dropout=0.5)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("use", ["output", "final_h"])
def test_gradients_from_the_output_or_the_final_state_alone(kind, use):
    """Backward with one of the kernel's outputs unused (its gradient None) equals the tape's."""
    grads = []
    for fused in (True, False):
        layer = _layer(kind, bidirectional=True, fused=fused)
        x = rnnbp.tensor(_inputs(kind)[0], requires_grad=True)
        out, st = layer(x, lengths=np.array([4, 5, 0, 2]))
        h_n = st[0] if kind == "lstm" else st
        ((out if use == "output" else h_n) ** 2).sum().backward()
        grads.append([x.grad.numpy()] + [p.grad.numpy() for p in layer.parameters()])
    _assert_close(*grads)


# ------------------------------------------- nn.Recurrent of a library layer-norm cell
@pytest.mark.parametrize("cell_class, kernel_name", [(nn.LayerNormLSTMCell, "lstm_kernel"),
                                                     (nn.LayerNormGRUCell, "gru_kernel")])
def test_recurrent_of_a_library_layernorm_cell_runs_the_fused_kernel(cell_class, kernel_name, monkeypatch):
    """``nn.Recurrent(nn.LayerNormLSTMCell, ...)`` runs the fused kernel (no trace), equal to the cell on
    the tape to 1e-10 in float64, outputs, states and every gradient; a subclass or a cell whose layer
    norm was swapped is not handed to the kernel."""
    from rnnbp.nn.recurrent import layernorm_layers

    calls = []
    kernel = getattr(layernorm_layers, kernel_name)
    monkeypatch.setattr(layernorm_layers, kernel_name, lambda *a, **k: calls.append(1) or kernel(*a, **k))

    def make(fused):
        rnnbp.manual_seed(3)
        return nn.Recurrent(lambda i, h: cell_class(i, h, dtype=np.float64), 4, 5, num_layers=2,
                            bidirectional=True, fused=fused)

    rng = np.random.default_rng(4)
    x_data = rng.standard_normal((6, 3, 4))
    lengths = np.array([6, 2, 4])
    results = []
    for fused in (True, False):
        layer = make(fused)
        x = rnnbp.tensor(x_data, requires_grad=True)
        out, state = layer(x, lengths=lengths)
        states = state if isinstance(state, tuple) else (state,)
        (out.sum() + sum((s * s).sum() for s in states)).backward()
        results.append([out.numpy(), *[s.numpy() for s in states], x.grad.numpy()] +
                       [p.grad.numpy() for p in layer.parameters()])
    assert len(calls) == 4  # 2 layers x 2 directions, the fused run only
    for a, b in zip(*results, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)
    assert any(np.any(g != 0) for g in results[0][-3:])

    assert layernorm_layers.fused_kernel_for(type("Mine", (cell_class,), {})(4, 5)) is None
    swapped = cell_class(4, 5)
    swapped.layernorm_ih = nn.LayerNorm(swapped.layernorm_ih.weight.shape[0], eps=1e-3)
    assert layernorm_layers.fused_kernel_for(swapped) is None
    assert layernorm_layers.fused_kernel_for(cell_class(4, 5)) is not None
